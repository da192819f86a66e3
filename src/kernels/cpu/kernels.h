/* CPU kernels behind the nn layers (float32, NCHW). Plain functions in the
 * llm.c manner: outputs first, then inputs, then sizes. They never
 * allocate: any temporary space is passed in as `scratch`, sized by the
 * matching *_scratch_floats function. Gradient outputs for parameters
 * (dw, db, dgamma, dbeta) are ADDED to; input gradients (dx) are
 * overwritten, and skipped when dx is NULL. A CUDA backend will provide the
 * same signatures. Internal header (not installed). */
#ifndef RTRAIN_KERNELS_CPU_H
#define RTRAIN_KERNELS_CPU_H

#include <stddef.h>
#include <stdint.h>

/* ---- fully connected --------------------------------------------------- */
/* y[n][out] = x[n][in] . w[out][in]^T + b[out] (b may be NULL) */
void rt_linear_forward(float *y, const float *x, const float *w, const float *b,
                       int n, int in, int out);
/* dx[n][in] = dy . w; dw[out][in] += dy^T . x; db[out] += sum_n dy (db may be NULL) */
void rt_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const float *w, int n, int in, int out);

/* ---- 2-D convolution (groups 1, dilation 1) ---------------------------- */
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
size_t rt_conv2d_scratch_floats(const rt_conv_geom *g, int max_batch);
/* y[n][k][oh][ow] = conv(x[n][c][h][w], w[k][c][kh][kw]) + b[k] (b may be NULL) */
void rt_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                       float *scratch, const rt_conv_geom *g, int n);
void rt_conv2d_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const float *w, float *scratch, const rt_conv_geom *g, int n);

/* ---- elementwise -------------------------------------------------------- */
void rt_relu_forward(float *y, const float *x, size_t count);
/* dx = dy where y > 0, else 0 (y is the forward output; in-place dx == dy ok) */
void rt_relu_backward(float *dx, const float *dy, const float *y, size_t count);
/* y = x * mask, mask[i] = 0 with probability p else 1/(1-p), drawn from the
 * counter-based stream `key` (mask is saved for backward). */
void rt_dropout_forward(float *y, float *mask, const float *x, size_t count, float p,
                        uint64_t key);
void rt_dropout_backward(float *dx, const float *dy, const float *mask, size_t count);
/* y += x */
void rt_add_inplace(float *y, const float *x, size_t count);

/* ---- pooling ------------------------------------------------------------- */
typedef struct rt_pool_geom {
    int c, h, w;
    int kh, kw, stride, pad;
    int oh, ow;
} rt_pool_geom;

int rt_pool_geom_init(rt_pool_geom *g, int c, int h, int w, int kernel, int stride, int pad);
/* Max over each window (padding never wins, as in PyTorch); argmax[n][c][oh][ow]
 * holds the input index within the sample's channel plane, for backward. */
void rt_maxpool2d_forward(float *y, int32_t *argmax, const float *x, const rt_pool_geom *g,
                          int n);
void rt_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax,
                           const rt_pool_geom *g, int n);
/* AdaptiveAvgPool2d((1,1)): y[n][c] = mean over hw of x[n][c][hw] */
void rt_global_avgpool_forward(float *y, const float *x, int n, int c, int hw);
void rt_global_avgpool_backward(float *dx, const float *dy, int n, int c, int hw);

/* ---- batch normalisation (split so sums can be reduced across ranks) ---- */
/* sum[c] = sum over n,hw of x; sumsq[c] = sum of x^2 (overwritten) */
void rt_bn_sums(float *sum, float *sumsq, const float *x, int n, int c, int hw);
/* y = (x - mean[c]) * rstd[c] * gamma[c] + beta[c] */
void rt_bn_normalize(float *y, const float *x, const float *mean, const float *rstd,
                     const float *gamma, const float *beta, int n, int c, int hw);
/* sum_dy[c] = sum dy; sum_dy_xhat[c] = sum dy * (x - mean) * rstd (overwritten) */
void rt_bn_backward_sums(float *sum_dy, float *sum_dy_xhat, const float *dy, const float *x,
                         const float *mean, const float *rstd, int n, int c, int hw);
/* dx = gamma*rstd/m * (m*dy - sum_dy - xhat*sum_dy_xhat), m = samples per
 * channel over all ranks (count); dx may be NULL. */
void rt_bn_backward_dx(float *dx, const float *dy, const float *x, const float *mean,
                       const float *rstd, const float *gamma, const float *sum_dy,
                       const float *sum_dy_xhat, double count, int n, int c, int hw);

#endif
