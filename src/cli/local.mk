# cli: the rtrain program, a thin main over rt_trainer_run (src/train/).
bin_PROGRAMS += src/cli/rtrain
src_cli_rtrain_SOURCES = src/cli/rtrain.c
# -I.../src of the build tree: the generated cli/commit.h (VPATH builds too).
src_cli_rtrain_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_builddir)/src

# src/cli/commit.h: the commit rtrain is built from (rtrain --version). From
# git in a git checkout ("-modified" when the tree differs from it), else
# from the .commit file a release tarball carries (written by make dist),
# else "unknown". Looked at by every make; replaced only when it changes,
# so rtrain.c is recompiled only then.
nodist_src_cli_rtrain_SOURCES = src/cli/commit.h
BUILT_SOURCES = src/cli/commit.h
CLEANFILES += src/cli/commit.h
src/cli/commit.h: rt-commit-force
	@$(MKDIR_P) src/cli
	$(AM_V_GEN)c=; \
	if test -e '$(top_srcdir)/.git' && \
	   c=$$(git -C '$(top_srcdir)' rev-parse --short=12 HEAD 2>/dev/null); then \
	  git -C '$(top_srcdir)' diff --quiet HEAD -- 2>/dev/null || c="$$c-modified"; \
	elif test -r '$(top_srcdir)/.commit'; then \
	  c=$$(sed -n '1{s/[^0-9A-Za-z._-]//g;p;}' '$(top_srcdir)/.commit'); \
	fi; \
	test -n "$$c" || c=unknown; \
	echo "#define RT_GIT_COMMIT \"$$c\"" >$@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi
rt-commit-force:
.PHONY: rt-commit-force

# A release tarball carries the commit it was made from.
dist-hook: rt-dist-commit
rt-dist-commit:
	sed -n 's/^#define RT_GIT_COMMIT "\(.*\)"$$/\1/p' src/cli/commit.h >'$(distdir)/.commit'
.PHONY: rt-dist-commit
