# cli: the rtrain program, a thin main over rt_trainer_run (src/train/).
bin_PROGRAMS += src/cli/rtrain
src_cli_rtrain_SOURCES = src/cli/rtrain.c
# -I.../src of the build tree: the generated cli/commit.h (VPATH builds too).
src_cli_rtrain_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_builddir)/src

# src/cli/commit.h: the commit rtrain is built from (rtrain --version), as
# scripts/source-commit.sh finds it (git, else a release tarball's .commit,
# else "unknown"). Looked at by every make; replaced only when it changes,
# so rtrain.c is recompiled only then.
nodist_src_cli_rtrain_SOURCES = src/cli/commit.h
BUILT_SOURCES = src/cli/commit.h
CLEANFILES += src/cli/commit.h
EXTRA_DIST += scripts/source-commit.sh
src/cli/commit.h: rt-commit-force
	@$(MKDIR_P) src/cli
	$(AM_V_GEN)c=$$($(SHELL) '$(top_srcdir)/scripts/source-commit.sh' '$(top_srcdir)') && \
	echo "#define RT_GIT_COMMIT \"$$c\"" >$@.tmp && \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi
rt-commit-force:
.PHONY: rt-commit-force

# A release tarball carries the commit it was made from.
dist-hook: rt-dist-commit
rt-dist-commit:
	$(SHELL) '$(top_srcdir)/scripts/source-commit.sh' '$(top_srcdir)' >'$(distdir)/.commit'
.PHONY: rt-dist-commit
