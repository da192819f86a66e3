# comm: the communicator object (rt_comm over MPI) and DDP gradient buckets.
rtraininclude_HEADERS += include/rtrain/comm.h include/rtrain/comm_mpi.h
noinst_HEADERS += src/comm/comm_internal.h
src_librtrain_la_SOURCES += src/comm/comm.c src/comm/comm_mpi.c src/comm/ddp.c

# Gradient all-reduce benchmark: bucketed DDP vs raw MPI_Allreduce (make bench).
EXTRA_PROGRAMS += bench/bench_allreduce
bench_programs += bench/bench_allreduce

# NCCL communicator (rt_comm_nccl): with the CUDA backend only; it drives
# librtrain_cuda's NCCL pieces through src/backend/cuda/nccl.h.
if HAVE_CUDA
src_librtrain_la_SOURCES += src/comm/comm_nccl.c
endif
EXTRA_DIST += src/comm/comm_nccl.c
