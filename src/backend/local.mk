# backend: the kernel table (include/rtrain/backend.h) and the backends of
# this build: "cpu" (OpenBLAS sgemm + im2col over a thread pool of its own,
# parallel.h; convolutions and the linear layers' sgemm through oneDNN when configured with it) and "naive" (plain loops, the reference the tests compare
# with); host.c holds what the two host-memory backends share.
rtraininclude_HEADERS += include/rtrain/backend.h
noinst_HEADERS += src/backend/backends.h src/backend/host.h src/backend/formulas.h \
	src/backend/cpu/kernels.h src/backend/cpu/parallel.h src/backend/cpu/conv2d_dnnl.h
src_librtrain_la_SOURCES += src/backend/backend.c src/backend/host.c src/backend/fault.c \
	src/backend/cpu/cpu.c src/backend/cpu/linear.c src/backend/cpu/conv2d.c \
	src/backend/cpu/elementwise.c src/backend/cpu/pool.c src/backend/cpu/batchnorm.c \
	src/backend/cpu/update.c src/backend/cpu/parallel.c \
	src/backend/naive/naive.c
# oneDNN convolutions of the cpu backend (./configure --with-dnnl)
if HAVE_DNNL
src_librtrain_la_SOURCES += src/backend/cpu/conv2d_dnnl.c
endif

check_PROGRAMS += tests/unit/test_kernels
TESTS += tests/unit/test_kernels

# Benchmark, built only by `make bench` (see bench/local.mk).
EXTRA_PROGRAMS += bench/bench_kernels
bench_programs += bench/bench_kernels

# Every backend against the naive one on the CNN example (real FashionMNIST;
# SKIPs without it).
check_PROGRAMS += tests/unit/test_backends
TESTS += tests/unit/test_backends

# The "cuda" backend: its own shared library (librtrain_cuda), with no MPI or
# HDF5 header in it, so that it can be rebuilt alone against another CUDA or
# cuDNN on a GPU machine (docs/gpu.md). It links librtrain (rt_status,
# logging); librtrain does not link it but loads it with dlopen when a GPU
# is asked for (gpu.c, library.h), so CPU runs never map cuDNN/cuBLAS/NCCL.
# It sits in src/ next to librtrain, where gpu.c looks in the build tree.
# Its C files build with -Werror and its CUDA files with nvcc's
# --Werror=all-warnings, so the GPU code always compiles cleanly, with or
# without a GPU.
EXTRA_DIST += scripts/nvcc-libtool src/backend/cuda/kernels.cu src/backend/cuda/norm_loss.cu
noinst_HEADERS += src/backend/cuda/cuda_internal.h src/backend/cuda/device.h \
	src/backend/cuda/nccl.h src/backend/cuda/library.h
src_librtrain_la_SOURCES += src/backend/gpu.c
if HAVE_CUDA
src_librtrain_cuda_la_SOURCES = src/backend/cuda/device.c \
	src/backend/cuda/linear.c src/backend/cuda/conv.c src/backend/cuda/table.c \
	src/backend/cuda/nccl.c src/backend/cuda/library.c
src_librtrain_cuda_la_CPPFLAGS = -I$(top_srcdir)/include -I$(top_srcdir)/src \
	$(CUDA_CPPFLAGS)
src_librtrain_cuda_la_CFLAGS = $(AM_CFLAGS) -Werror
cuda_objects = src/backend/cuda/kernels.lo src/backend/cuda/norm_loss.lo
src_librtrain_cuda_la_LIBADD = $(cuda_objects) src/librtrain.la $(CUDA_LIBS)
src_librtrain_cuda_la_DEPENDENCIES = $(cuda_objects) src/librtrain.la
src_librtrain_cuda_la_LDFLAGS = -version-info 0:0:0
CLEANFILES += $(cuda_objects) src/backend/cuda/kernels.o src/backend/cuda/norm_loss.o

# --fmad=false: no multiply-add contraction, so elementwise and optimizer
# kernels round as the CPU backend does (bitwise equal results).
NVCCFLAGS = -std=c++17 -O3 --fmad=false $(CUDA_ARCHS) --Werror=all-warnings \
	--compiler-options=-Wall,-Wextra,-Werror -I$(top_srcdir)/include -I$(top_srcdir)/src \
	$(CUDA_CPPFLAGS)
src/backend/cuda/kernels.lo src/backend/cuda/norm_loss.lo: \
	src/backend/cuda/cuda_internal.h include/rtrain/backend.h include/rtrain/core.h
.cu.lo:
	$(AM_V_CC)$(LIBTOOL) $(AM_V_lt) --tag=CC --mode=compile \
	  $(SHELL) $(top_srcdir)/scripts/nvcc-libtool $(NVCC) $(NVCCFLAGS) -c -o $@ $<
endif
SUFFIXES = .cu

# Every entry of the cuda table against the cpu one at ResNet18's shapes
# (SKIPs without a GPU or without the CUDA backend).
check_PROGRAMS += tests/gpu/test_cuda_kernels
TESTS += tests/gpu/test_cuda_kernels
tests_gpu_test_cuda_kernels_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/unit

# The CUDA library is loaded only when a GPU is asked for.
check_PROGRAMS += tests/unit/test_gpu_library
TESTS += tests/unit/test_gpu_library
