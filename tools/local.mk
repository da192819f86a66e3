# tools: rtrain-results, rtrain-ckpt (programs that need no MPI launch).

# rtrain-results reads run directories on a login node: it links only
# jansson and the MPI-free parts of the library it needs (compiled again for
# it), and is linked with the plain C compiler so that it starts without
# mpirun and without libmpi. RT_TOOL_CC can be overridden on the make command
# line (make RT_TOOL_CC=clang). src/tune/asha.c gives it ASHA's rungs and
# cutoffs, computed as rtrain-tune decides (an experiment's rung table).
RT_TOOL_CC = cc
bin_PROGRAMS += tools/rtrain-results
tools_rtrain_results_SOURCES = tools/rtrain-results.c tools/svgplot.c tools/svgplot.h \
	src/run/runfiles.c src/ckpt/retention.c src/core/status.c src/core/util.c \
	src/core/log.c src/core/fault.c src/tune/asha.c
tools_rtrain_results_CFLAGS = $(AM_CFLAGS)
tools_rtrain_results_LDADD = $(JANSSON_LIBS) -lm
tools_rtrain_results_LINK = $(LIBTOOL) $(AM_V_lt) --tag=CC $(AM_LIBTOOLFLAGS) \
	$(LIBTOOLFLAGS) --mode=link $(RT_TOOL_CC) $(tools_rtrain_results_CFLAGS) $(CFLAGS) \
	$(AM_LDFLAGS) $(LDFLAGS) -o $@

# rtrain-ckpt (issue 5): inspect, verify, export, diff checkpoints.
bin_PROGRAMS += tools/rtrain-ckpt
tools_rtrain_ckpt_SOURCES = tools/rtrain-ckpt.c

# rtrain-run (issue 6): the launcher that retries failed runs (mpirun, or
# srun --mpi=pmix inside Slurm) and records attempts.json. It reads the
# config with the library (rt_config_load), linked statically (-static:
# libtool's uninstalled librtrain.a) so that the program is a real binary and
# not a libtool wrapper script, which matters because it looks for rtrain
# next to its own executable.
bin_PROGRAMS += tools/rtrain-run
tools_rtrain_run_SOURCES = tools/rtrain-run.c
tools_rtrain_run_LDFLAGS = -static

# rtrain-data: converts idx, csv and npy data to HDF5 files (chunked,
# shuffle + gzip), prints and verifies such files. Linked with the library
# like rtrain-ckpt (its idx and csv readers, the HDF5 error helpers).
bin_PROGRAMS += tools/rtrain-data
tools_rtrain_data_SOURCES = tools/rtrain-data.c

# rtrain-predict: predictions of a trained model on N ranks into one file
# (a thin main over rt_predict; mpirun, or one rank without it).
bin_PROGRAMS += tools/rtrain-predict
tools_rtrain_predict_SOURCES = tools/rtrain-predict.c
