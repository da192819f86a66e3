/* The CPU backend's oneDNN convolutions (internal; conv2d_dnnl.c explains
 * the design). Built only with RT_HAVE_DNNL; conv2d.c chooses between
 * them and im2col + sgemm (RTRAIN_CPU_CONV). Meanings of the arguments
 * are those of rtrain/backend.h; not thread-safe per plan. */
#ifndef RTRAIN_BACKEND_CPU_CONV2D_DNNL_H
#define RTRAIN_BACKEND_CPU_CONV2D_DNNL_H

#include "rtrain/backend.h"

typedef struct rt_cpu_dnnl_conv rt_cpu_dnnl_conv;

/* oneDNN's name for a dnnl_status_t (the linear layers' sgemm uses it too). */
const char *rt_cpu_dnnl_status_text(int st);

/* A layer's primitive cache (empty; primitives are made per batch size on
 * first use). Makes the process's oneDNN engine and stream the first time. */
rt_status rt_cpu_dnnl_conv_new(rt_cpu_dnnl_conv **out, const rt_conv_geom *g);
void rt_cpu_dnnl_conv_free(rt_cpu_dnnl_conv *d);
/* Scratch the backward needs: the batch's dw before it is added. */
size_t rt_cpu_dnnl_conv_scratch_floats(const rt_conv_geom *g);
rt_status rt_cpu_dnnl_conv_forward(rt_cpu_dnnl_conv *d, const rt_conv_geom *g, float *y,
                                   const float *x, const float *w, const float *b, int n);
/* dx = the input gradient (overwritten) */
rt_status rt_cpu_dnnl_conv_backward_data(rt_cpu_dnnl_conv *d, const rt_conv_geom *g, float *dx,
                                         const float *dy, const float *w, int n);
/* dw += the weight gradient */
rt_status rt_cpu_dnnl_conv_backward_weights(rt_cpu_dnnl_conv *d, const rt_conv_geom *g,
                                            float *dw, const float *dy, const float *x,
                                            float *scratch, int n);

/* db[k] += sum of dy over samples and positions, in double (conv2d.c):
 * both paths use it. The bias gradient of a convolution followed by
 * BatchNorm is a sum of terms that cancel to about zero, where a float sum
 * (oneDNN's) leaves errors large against the result. */
void rt_cpu_conv_bias_grad(float *db, const float *dy, const rt_conv_geom *g, int n);

#endif
