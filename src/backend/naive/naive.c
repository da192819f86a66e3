/* The "naive" backend: every kernel as the plain loops of its definition,
 * on one thread, without BLAS, summing in double. It is slow on purpose
 * and exists to be obviously right: tests compare every other backend's
 * kernels, and whole training runs, with it (tests/unit/test_backends.c).
 * Losses, optimizer updates, the dropout mask and the per-channel BatchNorm
 * statistics are the shared host loops of backend/host.c, which are their
 * own reference. */
#include <math.h>
#include <string.h>
#include "backend/host.h"
#include "backend/backends.h"

/* ---- memory ----------------------------------------------------------------------- */

static rt_status naive_fill(float *dst, float value, size_t count)
{
    for (size_t i = 0; i < count; i++)
        dst[i] = value;
    return RT_OK;
}

/* ---- fully connected --------------------------------------------------------------- */

static rt_status naive_linear_forward(float *y, const float *x, const float *w, const float *b,
                                      int n, int in, int out)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int k = 0; k < in; k++)
                acc += (double)x[(size_t)i * in + k] * w[(size_t)o * in + k];
            y[(size_t)i * out + o] = (float)acc;
        }
    return RT_OK;
}

static rt_status naive_linear_backward(float *dx, float *dw, float *db, const float *dy,
                                       const float *x, const float *w, int n, int in, int out)
{
    for (int o = 0; dw && o < out; o++) {
        for (int k = 0; k < in; k++) {
            double acc = 0.0;
            for (int i = 0; i < n; i++)
                acc += (double)dy[(size_t)i * out + o] * x[(size_t)i * in + k];
            dw[(size_t)o * in + k] += (float)acc;
        }
        if (db) {
            double acc = 0.0;
            for (int i = 0; i < n; i++)
                acc += dy[(size_t)i * out + o];
            db[o] += (float)acc;
        }
    }
    for (int i = 0; dx && i < n; i++)
        for (int k = 0; k < in; k++) {
            double acc = 0.0;
            for (int o = 0; o < out; o++)
                acc += (double)dy[(size_t)i * out + o] * w[(size_t)o * in + k];
            dx[(size_t)i * in + k] = (float)acc;
        }
    return RT_OK;
}

/* ---- 2-D convolution, directly from the definition --------------------------------------- */

static rt_status naive_conv2d_plan(rt_conv_plan **out, const rt_conv_geom *g, int max_batch,
                                   size_t *scratch_floats)
{
    *scratch_floats = 0;
    return rt_host_conv2d_plan_new(out, g, 0);
}

/* Index of input element (s, ci, iy, ix), or -1 in the padding. */
static long conv_input(const rt_conv_geom *g, int s, int ci, int oy, int ox, int ky, int kx)
{
    int iy = oy * g->stride - g->pad + ky, ix = ox * g->stride - g->pad + kx;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
        return -1;
    return (((long)s * g->c + ci) * g->h + iy) * g->w + ix;
}

static size_t conv_weight(const rt_conv_geom *g, int k, int ci, int ky, int kx)
{
    return (((size_t)k * g->c + ci) * g->kh + ky) * g->kw + kx;
}

static size_t conv_output(const rt_conv_geom *g, int s, int k, int oy, int ox)
{
    return (((size_t)s * g->k + k) * g->oh + oy) * g->ow + ox;
}

static rt_status naive_conv2d_forward(const rt_conv_plan *p, float *y, const float *x,
                                      const float *w, const float *b, float *scratch, int n)
{
    const rt_conv_geom *g = &p->g;
    for (int s = 0; s < n; s++)
        for (int k = 0; k < g->k; k++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    double acc = b ? b[k] : 0.0;
                    for (int ci = 0; ci < g->c; ci++)
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                long i = conv_input(g, s, ci, oy, ox, ky, kx);
                                if (i >= 0)
                                    acc += (double)x[i] * w[conv_weight(g, k, ci, ky, kx)];
                            }
                    y[conv_output(g, s, k, oy, ox)] = (float)acc;
                }
    return RT_OK;
}

static rt_status naive_conv2d_backward(const rt_conv_plan *p, float *dx, float *dw, float *db,
                                       const float *dy, const float *x, const float *w,
                                       float *scratch, int n)
{
    const rt_conv_geom *g = &p->g;
    if (dx)
        memset(dx, 0, (size_t)n * g->c * g->h * g->w * sizeof *dx);
    for (int k = 0; k < g->k; k++) {
        double bias = 0.0;
        for (int ci = 0; ci < g->c; ci++)
            for (int ky = 0; ky < g->kh; ky++)
                for (int kx = 0; kx < g->kw; kx++) {
                    double acc = 0.0;
                    for (int s = 0; s < n; s++)
                        for (int oy = 0; oy < g->oh; oy++)
                            for (int ox = 0; ox < g->ow; ox++) {
                                long i = conv_input(g, s, ci, oy, ox, ky, kx);
                                float d = dy[conv_output(g, s, k, oy, ox)];
                                if (i < 0)
                                    continue;
                                acc += (double)d * x[i];
                                if (dx)   /* each product added once: a float sum */
                                    dx[i] += d * w[conv_weight(g, k, ci, ky, kx)];
                            }
                    dw[conv_weight(g, k, ci, ky, kx)] += (float)acc;
                }
        for (int s = 0; db && s < n; s++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++)
                    bias += dy[conv_output(g, s, k, oy, ox)];
        if (db)
            db[k] += (float)bias;
    }
    return RT_OK;
}

/* ---- elementwise ------------------------------------------------------------------------- */

static rt_status naive_relu_forward(float *y, const float *x, size_t count)
{
    for (size_t i = 0; i < count; i++)
        y[i] = !(x[i] <= 0.0f) ? x[i] : 0.0f;   /* NaN stays NaN, as in PyTorch */
    return RT_OK;
}

static rt_status naive_relu_backward(float *dx, const float *dy, const float *y, size_t count)
{
    for (size_t i = 0; i < count; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    return RT_OK;
}

static rt_status naive_dropout_backward(float *dx, const float *dy, const float *mask,
                                        size_t count)
{
    for (size_t i = 0; i < count; i++)
        dx[i] = dy[i] * mask[i];
    return RT_OK;
}

static rt_status naive_add(float *y, const float *x, size_t count)
{
    for (size_t i = 0; i < count; i++)
        y[i] += x[i];
    return RT_OK;
}

/* ---- pooling ------------------------------------------------------------------------------- */

static rt_status naive_maxpool2d_forward(float *y, int32_t *argmax, const float *x,
                                         const rt_pool_geom *g, int n)
{
    for (size_t plane = 0; plane < (size_t)n * g->c; plane++) {
        const float *in = x + plane * g->h * g->w;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                float best = 0.0f;
                int32_t at = -1;
                for (int ky = 0; ky < g->kh; ky++)
                    for (int kx = 0; kx < g->kw; kx++) {
                        int iy = oy * g->stride - g->pad + ky, ix = ox * g->stride - g->pad + kx;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                            continue;   /* padding never wins */
                        float v = in[iy * g->w + ix];
                        /* strict '>': the first maximum wins; NaN wins (PyTorch) */
                        if (at < 0 || v > best || isnan(v)) {
                            best = v;
                            at = iy * g->w + ix;
                        }
                    }
                size_t o = plane * g->oh * g->ow + (size_t)oy * g->ow + ox;
                y[o] = best;
                argmax[o] = at;
            }
    }
    return RT_OK;
}

static rt_status naive_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax,
                                          const rt_pool_geom *g, int n)
{
    size_t hw = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
    memset(dx, 0, (size_t)n * g->c * hw * sizeof *dx);
    for (size_t plane = 0; plane < (size_t)n * g->c; plane++)
        for (size_t o = 0; o < ohw; o++)
            if (argmax[plane * ohw + o] >= 0)
                dx[plane * hw + (size_t)argmax[plane * ohw + o]] += dy[plane * ohw + o];
    return RT_OK;
}

static rt_status naive_global_avgpool_forward(float *y, const float *x, int n, int c, int hw)
{
    for (size_t plane = 0; plane < (size_t)n * c; plane++) {
        double acc = 0.0;
        for (int i = 0; i < hw; i++)
            acc += x[plane * hw + i];
        y[plane] = (float)(acc / hw);
    }
    return RT_OK;
}

static rt_status naive_global_avgpool_backward(float *dx, const float *dy, int n, int c, int hw)
{
    for (size_t plane = 0; plane < (size_t)n * c; plane++)
        for (int i = 0; i < hw; i++)
            dx[plane * hw + i] = dy[plane] / (float)hw;
    return RT_OK;
}

/* ---- batch normalisation ------------------------------------------------------------------ */

static float at(const float *t, int s, int ch, int i, int c, int hw)
{
    return t[((size_t)s * c + ch) * hw + i];
}

static rt_status naive_bn_sums(float *stats, const float *x, int n, int c, int hw)
{
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0, sumsq = 0.0;
        for (int s = 0; s < n; s++)
            for (int i = 0; i < hw; i++) {
                double v = at(x, s, ch, i, c, hw);
                sum += v;
                sumsq += v * v;
            }
        stats[ch] = (float)sum;
        stats[c + ch] = (float)sumsq;
    }
    stats[2 * c] = (float)n * (float)hw;
    return RT_OK;
}

static rt_status naive_bn_normalize(float *y, const float *x, const float *mean,
                                    const float *rstd, const float *gamma, const float *beta,
                                    int n, int c, int hw)
{
    for (int s = 0; s < n; s++)
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < hw; i++) {
                size_t j = ((size_t)s * c + ch) * hw + i;
                double xhat = ((double)x[j] - mean[ch]) * rstd[ch];
                y[j] = (float)(xhat * (gamma ? gamma[ch] : 1.0f) + (beta ? beta[ch] : 0.0f));
            }
    return RT_OK;
}

static rt_status naive_bn_backward_sums(float *dstats, const float *dy, const float *x,
                                        const float *mean, const float *rstd, int n, int c,
                                        int hw)
{
    for (int ch = 0; ch < c; ch++) {
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int s = 0; s < n; s++)
            for (int i = 0; i < hw; i++) {
                double d = at(dy, s, ch, i, c, hw);
                sum_dy += d;
                sum_dy_xhat += d * ((double)at(x, s, ch, i, c, hw) - mean[ch]) * rstd[ch];
            }
        dstats[ch] = (float)sum_dy;
        dstats[c + ch] = (float)sum_dy_xhat;
    }
    return RT_OK;
}

static rt_status naive_bn_backward_dx(float *dx, const float *dy, const float *x,
                                      const float *mean, const float *rstd, const float *gamma,
                                      const float *dstats, const float *count, int n, int c,
                                      int hw)
{
    double m = count[0];
    for (int s = 0; dx && s < n; s++)
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < hw; i++) {
                size_t j = ((size_t)s * c + ch) * hw + i;
                double xhat = ((double)x[j] - mean[ch]) * rstd[ch];
                double g = (gamma ? gamma[ch] : 1.0) * rstd[ch];
                dx[j] = (float)(g * (dy[j] - dstats[ch] / m - xhat * dstats[c + ch] / m));
            }
    return RT_OK;
}

/* ---- optimizers: the shared element loops over the whole slab ------------------------------- */

static rt_status naive_sgd_update(float *p, const float *g, size_t n, const rt_sgd_coef *c)
{
    rt_host_sgd_range(p, g, 0, n, c);
    return RT_OK;
}

static rt_status naive_sgd_momentum_update(float *p, float *buf, const float *g, size_t n,
                                           const rt_sgd_coef *c)
{
    rt_host_sgd_momentum_range(p, buf, g, 0, n, c);
    return RT_OK;
}

static rt_status naive_adam_update(float *p, float *m, float *v, const float *g, size_t n,
                                   const rt_adam_coef *c)
{
    rt_host_adam_range(p, m, v, g, 0, n, c);
    return RT_OK;
}

const rt_backend rt_backend_naive = {
    .abi_version = RT_BACKEND_ABI_VERSION,
    .name = "naive",
    .flags = RT_BACKEND_HOST_MEMORY,

    .alloc = rt_host_alloc,
    .free = rt_host_free,
    .upload = rt_host_copy,
    .download = rt_host_copy,
    .copy = rt_host_copy,
    .fill = naive_fill,
    .synchronize = rt_host_synchronize,

    .linear_forward = naive_linear_forward,
    .linear_backward = naive_linear_backward,

    .conv2d_plan = naive_conv2d_plan,
    .conv2d_plan_free = rt_host_conv2d_plan_free,
    .conv2d_forward = naive_conv2d_forward,
    .conv2d_backward = naive_conv2d_backward,

    .relu_forward = naive_relu_forward,
    .relu_backward = naive_relu_backward,
    .dropout_forward = rt_host_dropout_forward,
    .dropout_backward = naive_dropout_backward,
    .add = naive_add,

    .maxpool2d_forward = naive_maxpool2d_forward,
    .maxpool2d_backward = naive_maxpool2d_backward,
    .global_avgpool_forward = naive_global_avgpool_forward,
    .global_avgpool_backward = naive_global_avgpool_backward,

    .bn_sums = naive_bn_sums,
    .bn_train_stats = rt_host_bn_train_stats,
    .bn_eval_stats = rt_host_bn_eval_stats,
    .bn_normalize = naive_bn_normalize,
    .bn_backward_sums = naive_bn_backward_sums,
    .bn_backward_dx = naive_bn_backward_dx,

    .cross_entropy = rt_host_cross_entropy,
    .nll_loss = rt_host_nll_loss,
    .count_correct = rt_host_count_correct,
    .mse_loss = rt_host_mse_loss,
    .l1_loss = rt_host_l1_loss,
    .smooth_l1_loss = rt_host_smooth_l1_loss,
    .bce_logits_loss = rt_host_bce_logits_loss,
    .target_sums = rt_host_target_sums,

    .sgd_update = naive_sgd_update,
    .sgd_momentum_update = naive_sgd_momentum_update,
    .adam_update = naive_adam_update,
};
