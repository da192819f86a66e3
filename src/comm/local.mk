# comm: collectives and DDP gradient buckets.
rtraininclude_HEADERS += include/rtrain/comm.h
src_librtrain_la_SOURCES += src/comm/collectives.c src/comm/ddp.c

# Gradient all-reduce benchmark: bucketed DDP vs raw MPI_Allreduce (make bench).
EXTRA_PROGRAMS += bench/bench_allreduce
bench_programs += bench/bench_allreduce
