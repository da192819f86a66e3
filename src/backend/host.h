/* What the two host-memory backends ("cpu" and "naive") share (internal):
 * memory that is plain host memory, the convolution plan of a host
 * backend, and the kernels whose plain loop is itself the reference, so
 * that writing them twice would only invite the copies to drift: losses
 * and accuracy, the optimizers' element updates (the CPU backend splits
 * the same loop over its threads), the dropout mask, and the per-channel
 * BatchNorm statistics. Meanings are those of rtrain/backend.h. */
#ifndef RTRAIN_BACKEND_HOST_H
#define RTRAIN_BACKEND_HOST_H

#include "rtrain/backend.h"

/* A host backend's plan: the geometry and the scratch its calls need. */
struct rt_conv_plan {
    rt_conv_geom g;
    size_t scratch_floats;
    /* the cpu backend's oneDNN primitives (cpu/conv2d_dnnl.h); NULL on its
     * im2col path and in the naive backend */
    struct rt_cpu_dnnl_conv *dnnl;
};

/* ---- memory -------------------------------------------------------------------- */
rt_status rt_host_alloc(void **out, size_t bytes, const char *what);
void rt_host_free(void *ptr);
/* memcpy: upload, download and copy are the same on the host. */
rt_status rt_host_copy(void *dst, const void *src, size_t bytes);
rt_status rt_host_synchronize(void);
/* A plan of `scratch_floats` floats of scratch for g. */
rt_status rt_host_conv2d_plan_new(rt_conv_plan **out, const rt_conv_geom *g,
                                  size_t scratch_floats);
void rt_host_conv2d_plan_free(rt_conv_plan *p);

/* ---- kernels that are their own reference ---------------------------------------- */
rt_status rt_host_dropout_forward(float *y, float *mask, const float *x, size_t count, float p,
                                  uint64_t key);
rt_status rt_host_bn_train_stats(float *mean, float *rstd, float *running_mean,
                                 float *running_var, float *num_batches, const float *stats,
                                 int c, float eps, float momentum);
rt_status rt_host_bn_eval_stats(float *mean, float *rstd, const float *running_mean,
                                const float *running_var, int c, float eps);
rt_status rt_host_cross_entropy(double *sum, float *dlogits, const float *logits,
                                const int32_t *labels, int n, int classes, float scale);
rt_status rt_host_nll_loss(double *sum, float *dlogp, const float *logp, const int32_t *labels,
                           int n, int classes, float scale);
rt_status rt_host_mse_loss(double *sum, float *dout, const float *out, const float *targets,
                           int n, int k, float scale);
rt_status rt_host_l1_loss(double *sum, float *dout, const float *out, const float *targets,
                          int n, int k, float scale);
rt_status rt_host_smooth_l1_loss(double *sum, float *dout, const float *out,
                                 const float *targets, int n, int k, float scale);
rt_status rt_host_bce_logits_loss(double *sum, float *dout, const float *out,
                                  const float *targets, int n, int k, float scale);
rt_status rt_host_target_sums(double *sums, const float *out, const float *targets, int n,
                              int k);
rt_status rt_host_count_correct(int64_t *correct, const float *logits, const int32_t *labels,
                                int n, int classes);

/* The optimizers' element loops over parameters [lo, hi). */
void rt_host_sgd_range(float *p, const float *g, size_t lo, size_t hi, const rt_sgd_coef *c);
void rt_host_sgd_momentum_range(float *p, float *buf, const float *g, size_t lo, size_t hi,
                                const rt_sgd_coef *c);
void rt_host_adam_range(float *p, float *m, float *v, const float *g, size_t lo, size_t hi,
                        const rt_adam_coef *c);

#endif
