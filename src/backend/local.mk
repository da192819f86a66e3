# backend: the kernel table (include/rtrain/backend.h) and the backends of
# this build: "cpu" (OpenBLAS sgemm + im2col over a thread pool of its own,
# parallel.h) and "naive" (plain loops, the reference the tests compare
# with); host.c holds what the two host-memory backends share.
rtraininclude_HEADERS += include/rtrain/backend.h
noinst_HEADERS += src/backend/backends.h src/backend/host.h \
	src/backend/cpu/kernels.h src/backend/cpu/parallel.h
src_librtrain_la_SOURCES += src/backend/backend.c src/backend/host.c src/backend/fault.c \
	src/backend/cpu/cpu.c src/backend/cpu/linear.c src/backend/cpu/conv2d.c \
	src/backend/cpu/elementwise.c src/backend/cpu/pool.c src/backend/cpu/batchnorm.c \
	src/backend/cpu/update.c src/backend/cpu/parallel.c \
	src/backend/naive/naive.c

check_PROGRAMS += tests/unit/test_kernels
TESTS += tests/unit/test_kernels

# Benchmark, built only by `make bench` (see bench/local.mk).
EXTRA_PROGRAMS += bench/bench_kernels
bench_programs += bench/bench_kernels

# Every backend against the naive one on the CNN example (real FashionMNIST;
# SKIPs without it).
check_PROGRAMS += tests/unit/test_backends
TESTS += tests/unit/test_backends
