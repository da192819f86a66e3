/* rtrain backend: the one table every layer, loss, optimizer and the
 * trainer compute through (float32, NCHW).
 *
 * A backend is a const table of function pointers: memory (allocation,
 * upload/download between host and backend memory, copy, fill) and every
 * kernel the engine needs. A model holds one table and hands it to its
 * layers when they are built; nothing above the table calls a kernel by
 * name, so one build holds several backends and tests compare them.
 *
 *   "cpu"    OpenBLAS sgemm + im2col, a thread pool of its own
 *   "naive"  plain loops, one thread, no BLAS: the reference the tests
 *            compare every other backend with (slow; for checking)
 *   "cuda"   (./configure --with-cuda) cuBLAS, cuDNN and rtrain's own
 *            kernels on the GPU this process opened with rt_gpu_open; its
 *            own library, librtrain_cuda (docs/gpu.md)
 *
 * Kernels follow the llm.c convention: outputs first, then inputs, then
 * sizes; they never allocate (temporary space is the caller's `scratch`,
 * sized by the plan). Gradient outputs for parameters (dw, db) are ADDED
 * to; input gradients (dx) are overwritten, and skipped when dx is NULL.
 * Pointers are backend memory unless the comment says host. Every entry
 * returns rt_status: a backend reports its own failures (a CUDA error, an
 * impossible size) with RT_ERROR and the caller passes them up.
 *
 * Adding a backend: fill an rt_backend (every entry), register it in
 * src/backend/backend.c, and run tests/unit/test_backends against it,
 * which compares every kernel with the naive backend.
 *
 * Nothing here is collective. */
#ifndef RTRAIN_BACKEND_H
#define RTRAIN_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "rtrain/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RT_BACKEND_ABI_VERSION 2

enum {
    /* Backend memory is host memory: the CPU may read and write it directly
     * (the CPU backends). Without it, code outside the table uses only
     * upload/download/copy. */
    RT_BACKEND_HOST_MEMORY = 1u << 0,
};

/* 2-D convolution geometry (groups 1, dilation 1). */
typedef struct rt_conv_geom {
    int c, h, w;          /* input channels and size */
    int k;                /* output channels */
    int kh, kw;           /* kernel size */
    int stride, pad;
    int oh, ow;           /* output size: (h + 2 pad - kh) / stride + 1 */
} rt_conv_geom;

/* Fills oh/ow; returns 0 when the geometry is impossible (output < 1). */
int rt_conv_geom_init(rt_conv_geom *g, int c, int h, int w, int k, int kh, int kw,
                      int stride, int pad);

/* Pooling geometry (square window). */
typedef struct rt_pool_geom {
    int c, h, w;
    int kh, kw, stride, pad;
    int oh, ow;
} rt_pool_geom;

/* PyTorch's rules (pad <= kernel / 2); returns 0 when impossible. */
int rt_pool_geom_init(rt_pool_geom *g, int c, int h, int w, int kernel, int stride, int pad);

/* A backend's plan for one convolution layer (its algorithm, its scratch
 * size), made once when the layer is built. */
typedef struct rt_conv_plan rt_conv_plan;

/* Per-step scalars of the optimizer updates, computed by the optimizer in
 * double as torch.optim 1.13 does and rounded to float where PyTorch
 * rounds them. Flags are loop-invariant. */
typedef struct rt_sgd_coef {
    float neg_lr;          /* -lr (param.add_(d_p, alpha=-lr)) */
    float weight_decay;    /* L2 term added to the gradient */
    float momentum;
    float one_minus_damp;  /* float(1 - dampening) */
    int use_weight_decay;  /* weight_decay != 0 */
    int first;             /* first step: buf = d_p (torch.clone) */
    int nesterov;
} rt_sgd_coef;

typedef struct rt_adam_coef {
    float l2;              /* Adam: weight_decay added to the gradient (use_l2) */
    float decay;           /* AdamW: float(1 - lr*weight_decay); Adam: 1 */
    float beta1, one_minus_beta1;
    float beta2, one_minus_beta2;
    float bc2_sqrt;        /* float(sqrt(1 - beta2^step)) */
    float eps;
    float neg_step_size;   /* float(-lr / (1 - beta1^step)) */
    int use_l2;
} rt_adam_coef;

typedef struct rt_backend {
    unsigned abi_version;      /* RT_BACKEND_ABI_VERSION */
    const char *name;
    unsigned flags;            /* RT_BACKEND_* */

    /* ---- memory ---------------------------------------------------------------- */
    /* Zero-filled, 64-byte aligned; RT_ERR_NOMEM naming `what` and the size. */
    rt_status (*alloc)(void **out, size_t bytes, const char *what);
    void (*free)(void *ptr);
    rt_status (*upload)(void *dst, const void *host_src, size_t bytes);
    rt_status (*download)(void *host_dst, const void *src, size_t bytes);
    rt_status (*copy)(void *dst, const void *src, size_t bytes);
    rt_status (*fill)(float *dst, float value, size_t count);
    /* Waits for all work queued so far (a no-op on the CPU). */
    rt_status (*synchronize)(void);

    /* ---- fully connected ----------------------------------------------------------- */
    /* y[n][out] = x[n][in] . w[out][in]^T + b[out] (b may be NULL) */
    rt_status (*linear_forward)(float *y, const float *x, const float *w, const float *b,
                                int n, int in, int out);
    /* dx[n][in] = dy . w; dw[out][in] += dy^T . x; db[out] += sum_n dy (db may be NULL).
     * dx NULL: no input gradient (w unused, may be NULL). dw NULL: no weight or bias
     * gradient (db and x unused): the deferred form, where the weight gradient is
     * formed later from the same dy and x (the node update, src/train/node_update.c). */
    rt_status (*linear_backward)(float *dx, float *dw, float *db, const float *dy,
                                 const float *x, const float *w, int n, int in, int out);

    /* ---- 2-D convolution --------------------------------------------------------------- */
    /* A plan for g and batches of up to max_batch; *scratch_floats is the
     * scratch its calls need (shared with the model's other layers). */
    rt_status (*conv2d_plan)(rt_conv_plan **out, const rt_conv_geom *g, int max_batch,
                             size_t *scratch_floats);
    void (*conv2d_plan_free)(rt_conv_plan *p);
    /* y[n][k][oh][ow] = conv(x[n][c][h][w], w[k][c][kh][kw]) + b[k] (b may be NULL) */
    rt_status (*conv2d_forward)(const rt_conv_plan *p, float *y, const float *x, const float *w,
                                const float *b, float *scratch, int n);
    rt_status (*conv2d_backward)(const rt_conv_plan *p, float *dx, float *dw, float *db,
                                 const float *dy, const float *x, const float *w,
                                 float *scratch, int n);

    /* ---- elementwise ---------------------------------------------------------------------- */
    rt_status (*relu_forward)(float *y, const float *x, size_t count);
    /* dx = dy where y > 0, else 0 (y: the forward output; dx == dy allowed) */
    rt_status (*relu_backward)(float *dx, const float *dy, const float *y, size_t count);
    /* y = x * mask; mask[i] = 0 when the i-th uniform of the counter-based
     * stream `key` (rt_rng_uniform order) is below p, else 1/(1-p): the same
     * mask on every backend. mask is kept for backward. */
    rt_status (*dropout_forward)(float *y, float *mask, const float *x, size_t count, float p,
                                 uint64_t key);
    rt_status (*dropout_backward)(float *dx, const float *dy, const float *mask, size_t count);
    /* y += x */
    rt_status (*add)(float *y, const float *x, size_t count);

    /* ---- pooling ------------------------------------------------------------------------------ */
    /* Max over each window (padding never wins, the first maximum wins ties,
     * NaN propagates, as in PyTorch); argmax[n][c][oh][ow] holds the input
     * index within the sample's channel plane, for backward. */
    rt_status (*maxpool2d_forward)(float *y, int32_t *argmax, const float *x,
                                   const rt_pool_geom *g, int n);
    rt_status (*maxpool2d_backward)(float *dx, const float *dy, const int32_t *argmax,
                                    const rt_pool_geom *g, int n);
    /* AdaptiveAvgPool2d((1,1)): y[n][c] = mean over hw of x[n][c][hw] */
    rt_status (*global_avgpool_forward)(float *y, const float *x, int n, int c, int hw);
    rt_status (*global_avgpool_backward)(float *dx, const float *dy, int n, int c, int hw);

    /* ---- batch normalisation ---------------------------------------------------------------- */
    /* Split so that the sums can be all-reduced across ranks between the
     * passes (SyncBatchNorm). Sums accumulate in double.
     * stats[2c + 1] = per-channel sum of x, sum of x^2, then n*hw. */
    rt_status (*bn_sums)(float *stats, const float *x, int n, int c, int hw);
    /* From (reduced) stats: mean = sum/m, var = sumsq/m - mean^2 (>= 0),
     * rstd = 1/sqrt(var + eps); running_mean/var move by momentum towards
     * mean and the unbiased var (m/(m-1); biased when m == 1), and
     * num_batches[0] += 1. m = stats[2c]. */
    rt_status (*bn_train_stats)(float *mean, float *rstd, float *running_mean,
                                float *running_var, float *num_batches, const float *stats,
                                int c, float eps, float momentum);
    /* Evaluation: mean = running_mean, rstd = 1/sqrt(running_var + eps). */
    rt_status (*bn_eval_stats)(float *mean, float *rstd, const float *running_mean,
                               const float *running_var, int c, float eps);
    /* y = (x - mean[c]) * rstd[c] * gamma[c] + beta[c] */
    rt_status (*bn_normalize)(float *y, const float *x, const float *mean, const float *rstd,
                              const float *gamma, const float *beta, int n, int c, int hw);
    /* dstats[2c] = per-channel sum dy, sum dy * (x - mean) * rstd */
    rt_status (*bn_backward_sums)(float *dstats, const float *dy, const float *x,
                                  const float *mean, const float *rstd, int n, int c, int hw);
    /* dx = gamma*rstd * (dy - sum_dy/m - xhat*sum_dy_xhat/m) with m =
     * count[0], the samples per channel over all ranks. */
    rt_status (*bn_backward_dx)(float *dx, const float *dy, const float *x, const float *mean,
                                const float *rstd, const float *gamma, const float *dstats,
                                const float *count, int n, int c, int hw);

    /* ---- losses and accuracy ------------------------------------------------------------------- */
    /* Losses on logits[n][classes] with class labels[n] (backend memory).
     * *sum (host) = sum of the per-sample losses (in double), so callers
     * can average over any count; dlogits (if not NULL) = scale *
     * d(sum)/d(logits). A label outside [0, classes) gives that sample a
     * NaN loss and a zero gradient row. */
    rt_status (*cross_entropy)(double *sum, float *dlogits, const float *logits,
                               const int32_t *labels, int n, int classes, float scale);
    /* Negative log-likelihood on log-probabilities. */
    rt_status (*nll_loss)(double *sum, float *dlogp, const float *logp, const int32_t *labels,
                          int n, int classes, float scale);
    /* *correct (host) = samples whose argmax (the first of equal maxima)
     * equals the label. */
    rt_status (*count_correct)(int64_t *correct, const float *logits, const int32_t *labels,
                               int n, int classes);
    /* Losses on out[n][k] with float targets[n][k] (backend memory); a
     * sample's loss is the mean over its k values (torch's mean reduction
     * over a batch is then the mean of the per-sample losses). *sum and
     * dout as above. mse: (o - y)^2; l1: |o - y|; smooth_l1 (Huber, beta =
     * 1): (o - y)^2 / 2 where |o - y| < 1, else |o - y| - 1/2;
     * bce_logits: binary cross-entropy on logits, max(o, 0) - o*y +
     * log(1 + exp(-|o|)). */
    rt_status (*mse_loss)(double *sum, float *dout, const float *out, const float *targets,
                          int n, int k, float scale);
    rt_status (*l1_loss)(double *sum, float *dout, const float *out, const float *targets,
                         int n, int k, float scale);
    rt_status (*smooth_l1_loss)(double *sum, float *dout, const float *out,
                                const float *targets, int n, int k, float scale);
    rt_status (*bce_logits_loss)(double *sum, float *dout, const float *out,
                                 const float *targets, int n, int k, float scale);
    /* Sums for the metrics of float targets, added into sums[k][5] (host,
     * double) per output j: (o - y)^2, |o - y|, y, y^2, and 1 where (o > 0)
     * equals (y > 0.5) (a binary prediction on logits). */
    rt_status (*target_sums)(double *sums, const float *out, const float *targets, int n,
                             int k);

    /* ---- optimizers: one update of n parameters, in place ------------------------------------ */
    rt_status (*sgd_update)(float *p, const float *g, size_t n, const rt_sgd_coef *c);
    rt_status (*sgd_momentum_update)(float *p, float *buf, const float *g, size_t n,
                                     const rt_sgd_coef *c);
    rt_status (*adam_update)(float *p, float *m, float *v, const float *g, size_t n,
                             const rt_adam_coef *c);
} rt_backend;

/* The backend named `name` ("cpu", "naive", "cuda"), or NULL if this build
 * has none of that name or, for "cuda", its library cannot be loaded (the
 * first request loads it; rt_gpu_describe then says why not). */
const rt_backend *rt_backend_find(const char *name);
/* The backend used when none is given (cpu). */
const rt_backend *rt_backend_default(void);
/* The backends of this build, in order: 0 <= i < rt_backend_count();
 * rt_backend_at as rt_backend_find (NULL for "cuda" without its library),
 * rt_backend_name_at without loading anything. */
int rt_backend_count(void);
const rt_backend *rt_backend_at(int i);
const char *rt_backend_name_at(int i);
/* Names of the backends of this build, "cpu, naive" into buf. */
void rt_backend_list(char *buf, size_t size);
/* For a program's main, first thing (not collective; rtrain and
 * rtrain-predict call it, so that both compute with the same kernels).
 * OpenBLAS reads OPENBLAS_CORETYPE when it is loaded, before main, and its
 * 0.3.21 release runs AVX-512 CPUs it does not know (AMD Zen 4) on its
 * AVX2 (Haswell) kernels; its SkylakeX kernels were measured 40% faster
 * there on ResNet18. When the CPU has the AVX-512 subsets those kernels use
 * and neither OPENBLAS_CORETYPE nor RTRAIN_NO_BLAS_SELECT is set, this sets
 * it and executes the program (argv) again; it returns when nothing is to
 * do or the exec failed (the kernels already loaded then stay). */
void rt_backend_select_blas(char **argv);

/* ---- the GPU of this process (the "cuda" backend) ------------------------------------
 * One process drives one GPU: rt_gpu_open makes `device` (an index among
 * the GPUs CUDA_VISIBLE_DEVICES leaves visible) the device of the "cuda"
 * table, with its stream and cuBLAS/cuDNN handles; the table fails with a
 * clear message until then. None of these is collective: the trainer
 * agrees on the device counts of every node before anyone opens one. */
typedef struct rt_gpu_opts {
    int deterministic;   /* only deterministic cuDNN algorithms (gpu.deterministic) */
    int tf32;            /* allow TF32 in cuBLAS and cuDNN (gpu.tf32) */
} rt_gpu_opts;

/* 1 when this build has the CUDA backend. */
int rt_gpu_built(void);
/* RT_OK when this build has the CUDA backend and its library (with CUDA,
 * cuDNN and NCCL) loads here; else RT_ERR_UNSUPPORTED saying why and what
 * to do. The first call loads the library. */
rt_status rt_gpu_available(void);
/* GPUs visible to this process (0 without a driver, a device or the CUDA
 * backend). Creates no CUDA context. */
int rt_gpu_count(void);
/* The 16-byte UUID of visible GPU `device` (what tells two ranks whether
 * they would share one physical GPU, whatever CUDA_VISIBLE_DEVICES says). */
rt_status rt_gpu_uuid(int device, unsigned char uuid[16]);
rt_status rt_gpu_open(int device, const rt_gpu_opts *opts);
/* Frees what rt_gpu_open made (device memory from the table must be freed
 * first). Safe when nothing is open. */
void rt_gpu_close(void);
/* One line: device name, compute capability, memory, and the runtime
 * versions of CUDA, cuDNN, cuBLAS and NCCL; "no GPU open" before
 * rt_gpu_open; why there is no GPU backend when its library cannot be
 * loaded (or the build has none). */
void rt_gpu_describe(char *buf, size_t size);
/* Device memory high-water mark of this process's allocations through the
 * table, in bytes (0 without a GPU). */
size_t rt_gpu_peak_bytes(void);

#ifdef __cplusplus
}
#endif
#endif
