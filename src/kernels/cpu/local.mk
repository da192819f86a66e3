# kernels/cpu: float32 NCHW math behind the nn layers (OpenBLAS sgemm + im2col),
# split over a small thread pool of their own (parallel.h).
noinst_HEADERS += src/kernels/cpu/kernels.h src/kernels/cpu/parallel.h
src_librtrain_la_SOURCES += src/kernels/cpu/linear.c src/kernels/cpu/conv2d.c \
	src/kernels/cpu/elementwise.c src/kernels/cpu/pool.c src/kernels/cpu/batchnorm.c \
	src/kernels/cpu/parallel.c

check_PROGRAMS += tests/unit/test_kernels
TESTS += tests/unit/test_kernels

# Benchmark, built only by `make bench` (see bench/local.mk).
EXTRA_PROGRAMS += bench/bench_kernels
bench_programs += bench/bench_kernels
