# comm: the communicator object (rt_comm over MPI) and DDP gradient buckets.
rtraininclude_HEADERS += include/rtrain/comm.h include/rtrain/comm_mpi.h
noinst_HEADERS += src/comm/comm_internal.h
src_librtrain_la_SOURCES += src/comm/comm.c src/comm/comm_mpi.c src/comm/ddp.c

# Gradient all-reduce benchmark: bucketed DDP vs raw MPI_Allreduce (make bench).
EXTRA_PROGRAMS += bench/bench_allreduce
bench_programs += bench/bench_allreduce

# NCCL communicator (rt_comm_nccl): drives the CUDA library's NCCL pieces
# through its table (src/backend/cuda/library.h), loaded with the GPU.
src_librtrain_la_SOURCES += src/comm/comm_nccl.c
