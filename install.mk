# What `make install` adds besides the programs, librtrain, the headers and
# rtrain.pc: man pages of the commands, the examples (sources and
# configs) and job scripts under $(pkgdatadir) (share/rtrain/), the
# modulefiles share/modulefiles/rtrain/$(PACKAGE_VERSION) (Tcl) and
# $(PACKAGE_VERSION).lua (Lmod), and the bash completion.

dist_man1_MANS = man/rtrain.1 man/rtrain-run.1 man/rtrain-results.1 man/rtrain-ckpt.1 \
	man/rtrain-data.1 man/rtrain-tune.1 man/rtrain-predict.1

examplesdir = $(pkgdatadir)/examples
examples_DATA = examples/custom_loop.c examples/train_func.c examples/custom_loop.cfg \
	examples/fashion_mnist_mlp.cfg examples/fashion_mnist_quickstart.cfg examples/mnist_mlp.cfg \
	examples/fashion_mnist_cnn.cfg \
	examples/fashion_mnist_resnet18.cfg examples/diabetes_linear.cfg examples/diabetes_mlp.cfg \
	examples/breast_cancer.cfg examples/fashion_mnist_hdf5.cfg examples/regression_torch.cfg \
	examples/regression_keras.cfg examples/tune_fashion_mlp.cfg examples/tune_regression.cfg
examplesdatadir = $(examplesdir)/data
dist_examplesdata_SCRIPTS = examples/data/sklearn_tables.py examples/data/make_regression.py
EXTRA_DIST += examples/custom_loop.c examples/train_func.c examples/custom_loop.cfg \
	examples/diabetes_linear.cfg examples/diabetes_mlp.cfg examples/breast_cancer.cfg \
	examples/fashion_mnist_hdf5.cfg examples/regression_torch.cfg examples/regression_keras.cfg \
	examples/tune_fashion_mlp.cfg examples/tune_regression.cfg

jobsdir = $(pkgdatadir)/jobs
jobs_SCRIPTS = jobs/train.sbatch jobs/tune.sbatch jobs/tune-array.sbatch
jobsslurmdir = $(pkgdatadir)/jobs/slurm
jobsslurm_SCRIPTS = jobs/slurm/multinode.sbatch jobs/slurm/gpu.sbatch \
	jobs/slurm/test-cluster-start.sh jobs/slurm/test-cluster-stop.sh
jobsslurm_DATA = jobs/slurm/slurm.conf.in

# The modulefiles are made by make, not configure, so that they have the
# installation directories as make expands them (a `make prefix=...`
# included); they also find their root from their own place (see the
# templates). Environment Modules reads the Tcl one (VERSION), Lmod the Lua
# one (VERSION.lua) next to it. Both are written in the build directory.
modulefiledir = $(datadir)/modulefiles/rtrain
modulefile_DATA = modulefiles/rtrain/$(PACKAGE_VERSION) modulefiles/rtrain/$(PACKAGE_VERSION).lua
EXTRA_DIST += modulefiles/rtrain.in modulefiles/rtrain.lua.in
CLEANFILES += $(modulefile_DATA)
rt_subst_dirs = sed -e 's|@VERSION[@]|$(PACKAGE_VERSION)|g' -e 's|@prefix[@]|$(prefix)|g' \
	-e 's|@bindir[@]|$(bindir)|g' -e 's|@libdir[@]|$(libdir)|g' \
	-e 's|@includedir[@]|$(includedir)|g' -e 's|@mandir[@]|$(mandir)|g' \
	-e 's|@datadir[@]|$(datadir)|g'
modulefiles/rtrain/$(PACKAGE_VERSION): $(srcdir)/modulefiles/rtrain.in Makefile
	$(AM_V_GEN)$(MKDIR_P) modulefiles/rtrain && \
	$(rt_subst_dirs) $(srcdir)/modulefiles/rtrain.in >$@.tmp && mv $@.tmp $@
modulefiles/rtrain/$(PACKAGE_VERSION).lua: $(srcdir)/modulefiles/rtrain.lua.in Makefile
	$(AM_V_GEN)$(MKDIR_P) modulefiles/rtrain && \
	$(rt_subst_dirs) $(srcdir)/modulefiles/rtrain.lua.in >$@.tmp && mv $@.tmp $@

# Bash completion: one script for all the programs (their names from
# bin_PROGRAMS), installed as completions/rtrain with a link named after
# each other program, the name bash-completion loads it by. It reads the
# options from the programs' --help (see the template). Written in the
# build directory.
bashcompletiondir = $(datadir)/bash-completion/completions
bashcompletion_DATA = completions/rtrain
EXTRA_DIST += completions/rtrain.bash.in
CLEANFILES += completions/rtrain
rt_program_names = for p in $(bin_PROGRAMS); do basename "$$p" "$(EXEEXT)"; done
completions/rtrain: $(srcdir)/completions/rtrain.bash.in Makefile
	$(AM_V_GEN)$(MKDIR_P) completions && \
	progs=`$(rt_program_names) | tr '\n' ' ' | sed 's/ $$//'` && \
	$(rt_subst_dirs) -e "s|@PROGRAMS[@]|$$progs|g" $(srcdir)/completions/rtrain.bash.in >$@.tmp && \
	mv $@.tmp $@
install-data-hook:
	cd "$(DESTDIR)$(bashcompletiondir)" && $(rt_program_names) | while read -r n; do \
	    [ "$$n" = rtrain ] || { rm -f "$$n" && $(LN_S) rtrain "$$n"; } || exit 1; done
uninstall-hook:
	$(rt_program_names) | while read -r n; do [ "$$n" = rtrain ] || \
	    rm -f "$(DESTDIR)$(bashcompletiondir)/$$n"; done

EXTRA_DIST += docs/api.md docs/architecture.md docs/checkpoint-format.md
