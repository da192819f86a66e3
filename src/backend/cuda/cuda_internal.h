/* Internal to the CUDA library (librtrain_cuda): what its files share.
 *
 * The library holds the "cuda" backend table (table.c), the per-process
 * device state (device.c: the GPU this rank drives, its compute stream,
 * cuBLAS and cuDNN handles, a reusable device workspace and a pinned host
 * buffer for small results), cuBLAS products (linear.c), cuDNN
 * convolutions behind a per-layer plan (conv.c), rtrain's own kernels
 * (kernels.cu: elementwise, dropout, pooling, optimizer updates;
 * norm_loss.cu: BatchNorm and losses) and the NCCL communicator pieces
 * that the comm module drives (nccl.c). It includes no MPI or HDF5 header,
 * so it can be rebuilt alone against another CUDA/cuDNN on a GPU machine.
 *
 * Every entry runs on the one compute stream (rt_cuda_stream()) and
 * returns without waiting for the GPU, except where it hands a result to
 * the host (a loss sum, a count), which waits for that stream. Errors of
 * the CUDA runtime, cuBLAS, cuDNN and NCCL become rt_status through the
 * helpers below, with the library's own message, the device and host.
 *
 * Determinism: no kernel here uses floating-point atomics; reductions
 * have a fixed shape (block count and order independent of timing), so a
 * run repeats bit for bit on the same GPU. Elementwise, dropout and
 * optimizer kernels are compiled without FMA contraction (--fmad=false)
 * and compute in the same order as the CPU backend, so they agree with it
 * bit for bit. */
#ifndef RTRAIN_BACKEND_CUDA_INTERNAL_H
#define RTRAIN_BACKEND_CUDA_INTERNAL_H

#include <cuda_runtime.h>
#include "rtrain/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device state (device.c) ----------------------------------------------------
 * rt_cuda_gpu_*: the rt_gpu_* functions of rtrain/backend.h, which librtrain
 * reaches through the library's table (library.h). */
int rt_cuda_gpu_count(void);
rt_status rt_cuda_gpu_uuid(int device, unsigned char uuid[16]);
rt_status rt_cuda_gpu_open(int device, const rt_gpu_opts *opts);
void rt_cuda_gpu_close(void);
void rt_cuda_gpu_describe(char *buf, size_t size);
size_t rt_cuda_gpu_peak_bytes(void);

/* The stream every kernel of the backend is queued on. */
cudaStream_t rt_cuda_stream(void);
/* A device buffer of at least `bytes`, reused by every call (valid until the
 * next call; grows, never shrinks). For reductions' partial results. */
rt_status rt_cuda_workspace(void **ptr, size_t bytes);
/* A pinned host buffer of at least `bytes`, reused likewise, for results a
 * kernel hands to the host (copy into it, then rt_cuda_wait()). */
rt_status rt_cuda_host_buffer(void **ptr, size_t bytes);
/* Waits for the compute stream. */
rt_status rt_cuda_wait(void);
/* The options rt_gpu_open was given. */
const rt_gpu_opts *rt_cuda_opts(void);

/* ---- errors ----------------------------------------------------------------------- */
/* RT_ERR_* from a CUDA runtime error: "<what>: <cudaGetErrorString> (CUDA
 * error N, device D on host H)". RT_OK when e == cudaSuccess. */
rt_status rt_cuda_status(cudaError_t e, const char *what, const char *file, int line);
#define RT_CUDA_CHECK(call, what)                                                   \
    do {                                                                            \
        cudaError_t rt_cuda_e_ = (call);                                            \
        if (rt_cuda_e_ != cudaSuccess)                                              \
            return rt_cuda_status(rt_cuda_e_, (what), __FILE__, __LINE__);          \
    } while (0)
/* After a kernel launch: the launch error, if any, naming the kernel. */
#define RT_CUDA_LAUNCHED(kernel) RT_CUDA_CHECK(cudaGetLastError(), "launching " kernel)

/* Grid size for `count` elements at `threads` per block, capped so that a
 * grid-stride loop covers the rest. */
static inline unsigned rt_cuda_blocks(size_t count, unsigned threads)
{
    size_t b = (count + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : (b > 65535u * 8u ? 65535u * 8u : b));
}

#ifdef __CUDACC__
/* Threads per block of rtrain's kernels (a power of two: the block
 * reductions of norm_loss.cu halve it). */
#define RT_CUDA_THREADS 256u
/* i over [0, count) in a grid-stride loop (size_t: counts may pass 2^31). */
#define RT_CUDA_GRID_STRIDE(i, count)                                              \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (count);    \
         i += (size_t)gridDim.x * blockDim.x)
/* q = i / d and r = i % d for an element index i: in 32 bits when i fits,
 * as every tensor of ResNet18 does, since a 64-bit division is a long
 * software routine on the GPU and the elementwise kernels do one per
 * element. */
static __device__ __forceinline__ void rt_cuda_divmod(size_t i, unsigned d, size_t *q,
                                                      unsigned *r)
{
    if (i <= 0xffffffffu) {
        const unsigned i32 = (unsigned)i;
        *q = i32 / d;
        *r = i32 % d;
    } else {
        *q = i / d;
        *r = (unsigned)(i % d);
    }
}
/* The launch configuration for `count` elements on the backend's stream,
 * and for a given number of blocks. */
#define RT_CUDA_LAUNCH(count) RT_CUDA_BLOCKS(rt_cuda_blocks((count), RT_CUDA_THREADS))
#define RT_CUDA_BLOCKS(blocks) <<<(blocks), RT_CUDA_THREADS, 0, rt_cuda_stream()>>>
#endif

/* ---- memory (device.c) ------------------------------------------------------------ */
rt_status rt_cuda_alloc(void **out, size_t bytes, const char *what);
void rt_cuda_free(void *ptr);
rt_status rt_cuda_upload(void *dst, const void *host_src, size_t bytes);
rt_status rt_cuda_download(void *host_dst, const void *src, size_t bytes);
rt_status rt_cuda_copy(void *dst, const void *src, size_t bytes);
rt_status rt_cuda_synchronize(void);

/* ---- cuBLAS (linear.c) and cuDNN (conv.c) ----------------------------------------- */
rt_status rt_cuda_linear_forward(float *y, const float *x, const float *w, const float *b,
                                 int n, int in, int out);
rt_status rt_cuda_linear_backward(float *dx, float *dw, float *db, const float *dy,
                                  const float *x, const float *w, int n, int in, int out);
rt_status rt_cuda_conv2d_plan(rt_conv_plan **out, const rt_conv_geom *g, int max_batch,
                              size_t *scratch_floats);
void rt_cuda_conv2d_plan_free(rt_conv_plan *p);
rt_status rt_cuda_conv2d_forward(const rt_conv_plan *p, float *y, const float *x,
                                 const float *w, const float *b, float *scratch, int n);
rt_status rt_cuda_conv2d_backward(const rt_conv_plan *p, float *dx, float *dw, float *db,
                                  const float *dy, const float *x, const float *w,
                                  float *scratch, int n);

/* ---- rtrain's kernels (kernels.cu) -------------------------------------------------
 * Same contracts as the rt_backend entries of the same names
 * (rtrain/backend.h); all pointers are device memory unless noted. */
rt_status rt_cuda_fill(float *dst, float value, size_t count);
/* y[i][j] = b[j] for n rows of `cols` (the bias a product then adds onto). */
rt_status rt_cuda_bias_rows(float *y, const float *b, int n, int cols);
rt_status rt_cuda_relu_forward(float *y, const float *x, size_t count);
rt_status rt_cuda_relu_backward(float *dx, const float *dy, const float *y, size_t count);
rt_status rt_cuda_dropout_forward(float *y, float *mask, const float *x, size_t count, float p,
                                  uint64_t key);
rt_status rt_cuda_dropout_backward(float *dx, const float *dy, const float *mask, size_t count);
rt_status rt_cuda_add(float *y, const float *x, size_t count);
rt_status rt_cuda_maxpool2d_forward(float *y, int32_t *argmax, const float *x,
                                    const rt_pool_geom *g, int n);
rt_status rt_cuda_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax,
                                     const rt_pool_geom *g, int n);
rt_status rt_cuda_global_avgpool_forward(float *y, const float *x, int n, int c, int hw);
rt_status rt_cuda_global_avgpool_backward(float *dx, const float *dy, int n, int c, int hw);
rt_status rt_cuda_sgd_update(float *p, const float *g, size_t n, const rt_sgd_coef *c);
rt_status rt_cuda_sgd_momentum_update(float *p, float *buf, const float *g, size_t n,
                                      const rt_sgd_coef *c);
rt_status rt_cuda_adam_update(float *p, float *m, float *v, const float *g, size_t n,
                              const rt_adam_coef *c);

/* ---- BatchNorm and losses (norm_loss.cu) ----------------------------------------- */
rt_status rt_cuda_bn_sums(float *stats, const float *x, int n, int c, int hw);
rt_status rt_cuda_bn_train_stats(float *mean, float *rstd, float *running_mean,
                                 float *running_var, float *num_batches, const float *stats,
                                 int c, float eps, float momentum);
rt_status rt_cuda_bn_eval_stats(float *mean, float *rstd, const float *running_mean,
                                const float *running_var, int c, float eps);
rt_status rt_cuda_bn_normalize(float *y, const float *x, const float *mean, const float *rstd,
                               const float *gamma, const float *beta, int n, int c, int hw);
rt_status rt_cuda_bn_backward_sums(float *dstats, const float *dy, const float *x,
                                   const float *mean, const float *rstd, int n, int c, int hw);
rt_status rt_cuda_bn_backward_dx(float *dx, const float *dy, const float *x, const float *mean,
                                 const float *rstd, const float *gamma, const float *dstats,
                                 const float *count, int n, int c, int hw);
rt_status rt_cuda_cross_entropy(double *sum, float *dlogits, const float *logits,
                                const int32_t *labels, int n, int classes, float scale);
rt_status rt_cuda_nll_loss(double *sum, float *dlogp, const float *logp, const int32_t *labels,
                           int n, int classes, float scale);
rt_status rt_cuda_count_correct(int64_t *correct, const float *logits, const int32_t *labels,
                                int n, int classes);
rt_status rt_cuda_mse_loss(double *sum, float *dout, const float *out, const float *targets,
                           int n, int k, float scale);
rt_status rt_cuda_l1_loss(double *sum, float *dout, const float *out, const float *targets,
                          int n, int k, float scale);
rt_status rt_cuda_smooth_l1_loss(double *sum, float *dout, const float *out,
                                 const float *targets, int n, int k, float scale);
rt_status rt_cuda_bce_logits_loss(double *sum, float *dout, const float *out,
                                  const float *targets, int n, int k, float scale);
rt_status rt_cuda_target_sums(double *sums, const float *out, const float *targets, int n,
                              int k);

#ifdef __cplusplus
}
#endif
#endif
