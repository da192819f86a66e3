/* Formulas the host backends and the CUDA kernels share, as inline
 * functions both compilers build: one definition, so that the backends
 * cannot drift apart (and stay bit-identical where they are meant to be).
 * Internal to the backend module. */
#ifndef RTRAIN_BACKEND_FORMULAS_H
#define RTRAIN_BACKEND_FORMULAS_H

#include <math.h>
#include <stdint.h>
#include "rtrain/backend.h"
#include "core/philox.h"   /* RT_HOST_DEVICE */

/* Max of one pooling window of one channel plane; *arg gets its index in
 * the plane. The window is clipped to the plane (padding never wins),
 * strict '>' keeps the first maximum in row-major window order, and a NaN
 * wins (a later NaN replaces it), as in PyTorch. */
static inline RT_HOST_DEVICE float rt_pool_window_max(const float *plane, const rt_pool_geom *g,
                                                      int oy, int ox, int32_t *arg)
{
    int y0 = oy * g->stride - g->pad, x0 = ox * g->stride - g->pad;
    int y1 = y0 + g->kh < g->h ? y0 + g->kh : g->h;
    int x1 = x0 + g->kw < g->w ? x0 + g->kw : g->w;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    float best = -INFINITY;
    int32_t best_i = -1;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
            float v = plane[iy * g->w + ix];
            if (v > best || isnan(v) || best_i < 0) {
                best = v;
                best_i = iy * g->w + ix;
            }
        }
    *arg = best_i;
    return best;
}

/* BatchNorm training statistics of channel k from the (reduced) sums
 * stats[k] = sum x, stats[c + k] = sum x^2 over m samples, in double:
 * mean, rstd = 1/sqrt(var + eps), and the running statistics moved by
 * `mom` towards the mean and the variance times `unbias` (m/(m-1)). */
static inline RT_HOST_DEVICE void rt_bn_train_channel(float *mean, float *rstd,
                                                      float *running_mean, float *running_var,
                                                      const float *stats, int c, int k,
                                                      double m, double unbias, double mom,
                                                      float eps)
{
    double mu = stats[k] / m;
    double var = stats[c + k] / m - mu * mu;
    if (var < 0)   /* rounding in sumsq/m - mean^2 */
        var = 0;
    mean[k] = (float)mu;
    rstd[k] = (float)(1.0 / sqrt(var + eps));
    running_mean[k] = (float)((1 - mom) * running_mean[k] + mom * mu);
    running_var[k] = (float)((1 - mom) * running_var[k] + mom * var * unbias);
}

/* Evaluation: the running statistics of channel k. */
static inline RT_HOST_DEVICE void rt_bn_eval_channel(float *mean, float *rstd,
                                                     const float *running_mean,
                                                     const float *running_var, int k, float eps)
{
    mean[k] = running_mean[k];
    rstd[k] = (float)(1.0 / sqrt((double)running_var[k] + eps));
}

/* ---- losses ------------------------------------------------------------------------ */

static inline RT_HOST_DEVICE int rt_label_ok(int32_t label, int classes)
{
    return label >= 0 && label < classes;
}

/* Cross-entropy of one sample's logits z[classes] against `label`, in
 * double; its gradient row scale * (softmax - onehot) into dz when not
 * NULL. A bad label: NaN and a zero row. Log-sum-exp shifted by the max,
 * so exp never overflows. */
static inline RT_HOST_DEVICE double rt_cross_entropy_row(float *dz, const float *z,
                                                         int32_t label, int classes,
                                                         float scale)
{
    if (!rt_label_ok(label, classes)) {
        for (int k = 0; dz && k < classes; k++)
            dz[k] = 0.0f;
        return NAN;
    }
    double zmax = z[0];
    for (int k = 1; k < classes; k++)
        zmax = z[k] > zmax ? z[k] : zmax;
    double sum = 0.0;
    for (int k = 0; k < classes; k++)
        sum += exp((double)z[k] - zmax);
    double lse = zmax + log(sum);
    if (dz) {
        for (int k = 0; k < classes; k++)
            dz[k] = (float)(scale * exp((double)z[k] - lse));
        dz[label] -= scale;
    }
    return lse - z[label];
}

/* Element losses on float targets: the value and the derivative in o of
 * one element's loss, in double (the per-sample loss is their mean). */
static inline RT_HOST_DEVICE double rt_mse_elem(double o, double y, double *grad)
{
    double d = o - y;
    *grad = 2.0 * d;
    return d * d;
}

static inline RT_HOST_DEVICE double rt_l1_elem(double o, double y, double *grad)
{
    double d = o - y;
    *grad = d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0;   /* torch: sign(d), 0 at 0 */
    return fabs(d);
}

static inline RT_HOST_DEVICE double rt_smooth_l1_elem(double o, double y, double *grad)
{
    double d = o - y;
    if (fabs(d) < 1.0) {
        *grad = d;
        return 0.5 * d * d;
    }
    *grad = d > 0 ? 1.0 : -1.0;
    return fabs(d) - 0.5;
}

/* Stable for any o: never exponentiates a positive number. */
static inline RT_HOST_DEVICE double rt_bce_logits_elem(double o, double y, double *grad)
{
    double e = exp(-fabs(o));
    double sigmoid = o >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    *grad = sigmoid - y;
    return (o > 0 ? o : 0.0) - o * y + log1p(e);
}

#endif
