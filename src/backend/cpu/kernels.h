/* The CPU backend's kernels (internal): the entries of the "cpu" rt_backend
 * table (cpu.c), with the meanings rtrain/backend.h gives them. sgemm
 * (oneDNN's or OpenBLAS's) and oneDNN primitives for the products, loops
 * split over the backend's own threads (parallel.h) for the rest. */
#ifndef RTRAIN_BACKEND_CPU_KERNELS_H
#define RTRAIN_BACKEND_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "rtrain/backend.h"

/* ---- fully connected (linear.c) ------------------------------------------------ */
/* The library that runs the products: oneDNN's sgemm (the default when
 * built with oneDNN) or OpenBLAS's (the reference, always built), chosen by
 * the environment variable RTRAIN_CPU_GEMM=openblas|dnnl, read once. */
typedef enum { RT_CPU_GEMM_OPENBLAS, RT_CPU_GEMM_DNNL } rt_cpu_gemm_path;
/* Overrides the path of later calls (tests); RT_ERR_UNSUPPORTED for dnnl
 * in a build without oneDNN. */
rt_status rt_cpu_gemm_select(rt_cpu_gemm_path path);
/* The path calls take; RT_ERR_CONFIG for a wrong RTRAIN_CPU_GEMM. */
rt_status rt_cpu_gemm_selected(rt_cpu_gemm_path *path);
rt_status rt_cpu_linear_forward(float *y, const float *x, const float *w, const float *b,
                                int n, int in, int out);
rt_status rt_cpu_linear_backward(float *dx, float *dw, float *db, const float *dy,
                                 const float *x, const float *w, int n, int in, int out);

/* ---- 2-D convolution (conv2d.c) ---------------------------------------------------- */
/* Two implementations: im2col + OpenBLAS sgemm (the reference, always
 * built) and oneDNN (conv2d_dnnl.c, ./configure --with-dnnl). A plan takes
 * the path selected when it is made: the environment variable
 * RTRAIN_CPU_CONV=im2col|dnnl, read once on the first plan, or by default
 * dnnl when built with oneDNN, else im2col. */
typedef enum { RT_CPU_CONV_IM2COL, RT_CPU_CONV_DNNL } rt_cpu_conv_path;
/* Overrides the path of later plans (tests); RT_ERR_UNSUPPORTED for dnnl
 * in a build without oneDNN. */
rt_status rt_cpu_conv_select(rt_cpu_conv_path path);
/* The path later plans take; RT_ERR_CONFIG for a wrong RTRAIN_CPU_CONV. */
rt_status rt_cpu_conv_selected(rt_cpu_conv_path *path);
void rt_cpu_conv2d_plan_free(rt_conv_plan *p);
rt_status rt_cpu_conv2d_plan(rt_conv_plan **out, const rt_conv_geom *g, int max_batch,
                             size_t *scratch_floats);
rt_status rt_cpu_conv2d_forward(const rt_conv_plan *p, float *y, const float *x, const float *w,
                                const float *b, float *scratch, int n);
rt_status rt_cpu_conv2d_backward(const rt_conv_plan *p, float *dx, float *dw, float *db,
                                 const float *dy, const float *x, const float *w,
                                 float *scratch, int n);

/* ---- elementwise (elementwise.c) ------------------------------------------------------ */
rt_status rt_cpu_fill(float *dst, float value, size_t count);
rt_status rt_cpu_relu_forward(float *y, const float *x, size_t count);
rt_status rt_cpu_relu_backward(float *dx, const float *dy, const float *y, size_t count);
rt_status rt_cpu_dropout_backward(float *dx, const float *dy, const float *mask, size_t count);
rt_status rt_cpu_add(float *y, const float *x, size_t count);

/* ---- pooling (pool.c) ---------------------------------------------------------------------- */
rt_status rt_cpu_maxpool2d_forward(float *y, int32_t *argmax, const float *x,
                                   const rt_pool_geom *g, int n);
rt_status rt_cpu_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax,
                                    const rt_pool_geom *g, int n);
rt_status rt_cpu_global_avgpool_forward(float *y, const float *x, int n, int c, int hw);
rt_status rt_cpu_global_avgpool_backward(float *dx, const float *dy, int n, int c, int hw);

/* ---- batch normalisation (batchnorm.c) --------------------------------------------------- */
rt_status rt_cpu_bn_sums(float *stats, const float *x, int n, int c, int hw);
rt_status rt_cpu_bn_normalize(float *y, const float *x, const float *mean, const float *rstd,
                              const float *gamma, const float *beta, int n, int c, int hw);
rt_status rt_cpu_bn_backward_sums(float *dstats, const float *dy, const float *x,
                                  const float *mean, const float *rstd, int n, int c, int hw);
rt_status rt_cpu_bn_backward_dx(float *dx, const float *dy, const float *x, const float *mean,
                                const float *rstd, const float *gamma, const float *dstats,
                                const float *count, int n, int c, int hw);

/* ---- optimizers (update.c) ------------------------------------------------------------------- */
rt_status rt_cpu_sgd_update(float *p, const float *g, size_t n, const rt_sgd_coef *c);
rt_status rt_cpu_sgd_momentum_update(float *p, float *buf, const float *g, size_t n,
                                     const rt_sgd_coef *c);
rt_status rt_cpu_adam_update(float *p, float *m, float *v, const float *g, size_t n,
                             const rt_adam_coef *c);

#endif
