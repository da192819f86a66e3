# What `make install` adds besides the programs, librtrain, the headers and
# rtrain.pc: man pages of the commands, the examples (sources and
# configs) and job scripts under $(pkgdatadir) (share/rtrain/), and a
# modulefile, share/modulefiles/rtrain/$(PACKAGE_VERSION).

dist_man1_MANS = man/rtrain.1 man/rtrain-run.1 man/rtrain-results.1 man/rtrain-ckpt.1 \
	man/rtrain-data.1 man/rtrain-tune.1 man/rtrain-predict.1

examplesdir = $(pkgdatadir)/examples
examples_DATA = examples/custom_loop.c examples/train_func.c examples/custom_loop.cfg \
	examples/fashion_mnist_mlp.cfg examples/mnist_mlp.cfg examples/fashion_mnist_cnn.cfg \
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

# The modulefile is made by make, not configure, so that it has the
# installation directories as make expands them (a `make prefix=...`
# included); it also finds its root from its own place (see the template).
modulefiledir = $(datadir)/modulefiles/rtrain
modulefile_DATA = modulefiles/rtrain/$(PACKAGE_VERSION)
EXTRA_DIST += modulefiles/rtrain.in
CLEANFILES += modulefiles/rtrain/$(PACKAGE_VERSION)
modulefiles/rtrain/$(PACKAGE_VERSION): $(srcdir)/modulefiles/rtrain.in Makefile
	$(AM_V_GEN)$(MKDIR_P) modulefiles/rtrain && \
	sed -e 's|@VERSION[@]|$(PACKAGE_VERSION)|g' -e 's|@prefix[@]|$(prefix)|g' \
	    -e 's|@bindir[@]|$(bindir)|g' -e 's|@libdir[@]|$(libdir)|g' \
	    -e 's|@includedir[@]|$(includedir)|g' -e 's|@mandir[@]|$(mandir)|g' \
	    -e 's|@datadir[@]|$(datadir)|g' $(srcdir)/modulefiles/rtrain.in >$@.tmp && \
	mv $@.tmp $@

EXTRA_DIST += docs/api.md docs/architecture.md docs/checkpoint-format.md
