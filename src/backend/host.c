/* The host backends' shared pieces (see host.h).
 *
 * Losses: sums are accumulated in double so that the per-batch total does
 * not depend on float rounding order more than necessary. A label outside
 * [0, classes) makes that sample's loss NaN (and its gradient row zero),
 * which the training loop's NaN check reports; labels are validated when
 * a dataset is loaded.
 *
 * Optimizer loops: the hot path of every step (about 11M floats for
 * ResNet18). Each statement is one PyTorch tensor operation of
 * torch/optim/{sgd,adam,adamw}.py (1.13, single-tensor path), quoted beside
 * it, and every intermediate is rounded to float where PyTorch stores one.
 * Not bit-exact: PyTorch's AVX2 kernels compute add(x, alpha=a) as a fused
 * multiply-add, while these loops round a*x and the sum separately (fmaf
 * would be a library call per element in a baseline x86-64 build and stop
 * vectorisation): one float rounding per such operation. The Adam loop
 * vectorises only when sqrtf need not set errno (-fno-math-errno, which
 * PyTorch itself is built with) and at -O3 (GCC 12's -O2 leaves it scalar);
 * otherwise it runs about 4x slower on 11M parameters. */
#include <math.h>
#include <string.h>
#include "backend/host.h"
#include "backend/formulas.h"

/* ---- memory ------------------------------------------------------------------- */

rt_status rt_host_alloc(void **out, size_t bytes, const char *what)
{
    return rt_alloc(out, bytes, 1, what);
}

void rt_host_free(void *ptr) { rt_free(ptr); }

rt_status rt_host_copy(void *dst, const void *src, size_t bytes)
{
    if (bytes && dst != src)
        memcpy(dst, src, bytes);
    return RT_OK;
}

rt_status rt_host_synchronize(void) { return RT_OK; }

rt_status rt_host_conv2d_plan_new(rt_conv_plan **out, const rt_conv_geom *g,
                                  size_t scratch_floats)
{
    *out = NULL;
    rt_conv_plan *p;
    RT_CHECK(rt_alloc(&p, 1, sizeof *p, "convolution plan"));
    p->g = *g;
    p->scratch_floats = scratch_floats;
    *out = p;
    return RT_OK;
}

void rt_host_conv2d_plan_free(rt_conv_plan *p) { rt_free(p); }

/* ---- dropout ---------------------------------------------------------------------- */

/* Element i is dropped when the i-th uniform of stream `key` is below p, so
 * the mask depends only on (key, i): any rank, any run, any backend. */
rt_status rt_host_dropout_forward(float *y, float *mask, const float *x, size_t count, float p,
                                  uint64_t key)
{
    const float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    rt_rng rng;
    rt_rng_init(&rng, key);
    for (size_t i = 0; i < count; i++) {
        mask[i] = rt_rng_uniform(&rng) < p ? 0.0f : keep;
        y[i] = x[i] * mask[i];
    }
    return RT_OK;
}

/* ---- BatchNorm statistics of C channels (computed in double) ------------------------ */

rt_status rt_host_bn_train_stats(float *mean, float *rstd, float *running_mean,
                                 float *running_var, float *num_batches, const float *stats,
                                 int c, float eps, float momentum)
{
    double m = stats[2 * c];
    /* Unbiased correction m/(m-1); PyTorch refuses m == 1, we keep the biased value. */
    double unbias = m > 1 ? m / (m - 1) : 1.0;
    double mom = momentum;
    for (int k = 0; k < c; k++)
        rt_bn_train_channel(mean, rstd, running_mean, running_var, stats, c, k, m, unbias, mom,
                            eps);
    num_batches[0] += 1.0f;
    return RT_OK;
}

rt_status rt_host_bn_eval_stats(float *mean, float *rstd, const float *running_mean,
                                const float *running_var, int c, float eps)
{
    for (int k = 0; k < c; k++)
        rt_bn_eval_channel(mean, rstd, running_mean, running_var, k, eps);
    return RT_OK;
}

/* ---- losses and accuracy ---------------------------------------------------------------- */

rt_status rt_host_cross_entropy(double *sum, float *dlogits, const float *logits,
                                const int32_t *labels, int n, int classes, float scale)
{
    double total = 0.0;
    for (int i = 0; i < n; i++)
        total += rt_cross_entropy_row(dlogits ? dlogits + (size_t)i * classes : NULL,
                                      logits + (size_t)i * classes, labels[i], classes, scale);
    *sum = total;
    return RT_OK;
}

rt_status rt_host_nll_loss(double *sum, float *dlogp, const float *logp, const int32_t *labels,
                           int n, int classes, float scale)
{
    double total = 0.0;
    if (dlogp)
        memset(dlogp, 0, (size_t)n * classes * sizeof *dlogp);
    for (int i = 0; i < n; i++) {
        if (!rt_label_ok(labels[i], classes)) {
            total += NAN;
            continue;
        }
        total -= logp[(size_t)i * classes + labels[i]];
        if (dlogp)
            dlogp[(size_t)i * classes + labels[i]] = -scale;
    }
    *sum = total;
    return RT_OK;
}

rt_status rt_host_count_correct(int64_t *correct_out, const float *logits,
                                const int32_t *labels, int n, int classes)
{
    int64_t correct = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        int best = 0;   /* strict >: the first of equal maxima wins, like torch.argmax */
        for (int k = 1; k < classes; k++)
            if (z[k] > z[best])
                best = k;
        correct += best == labels[i];
    }
    *correct_out = correct;
    return RT_OK;
}

/* Elementwise losses on float targets: each row of a table is the value
 * and the derivative of one element's loss in d = o - y (bce takes o and
 * y, see below). The per-sample loss is the mean over its k elements. */
typedef double (*elem_loss)(double o, double y, double *grad);

static rt_status elementwise_loss(elem_loss f, double *sum, float *dout, const float *out,
                                  const float *targets, int n, int k, float scale)
{
    double total = 0.0;
    const double per = 1.0 / k;
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++) {
        double grad;
        total += f(out[i], targets[i], &grad) * per;
        if (dout)
            dout[i] = (float)(scale * grad * per);
    }
    *sum = total;
    return RT_OK;
}

rt_status rt_host_mse_loss(double *sum, float *dout, const float *out, const float *targets,
                           int n, int k, float scale)
{
    return elementwise_loss(rt_mse_elem, sum, dout, out, targets, n, k, scale);
}

rt_status rt_host_l1_loss(double *sum, float *dout, const float *out, const float *targets,
                          int n, int k, float scale)
{
    return elementwise_loss(rt_l1_elem, sum, dout, out, targets, n, k, scale);
}

rt_status rt_host_smooth_l1_loss(double *sum, float *dout, const float *out,
                                 const float *targets, int n, int k, float scale)
{
    return elementwise_loss(rt_smooth_l1_elem, sum, dout, out, targets, n, k, scale);
}

rt_status rt_host_bce_logits_loss(double *sum, float *dout, const float *out,
                                  const float *targets, int n, int k, float scale)
{
    return elementwise_loss(rt_bce_logits_elem, sum, dout, out, targets, n, k, scale);
}

rt_status rt_host_target_sums(double *sums, const float *out, const float *targets, int n,
                              int k)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            double o = out[(size_t)i * k + j], y = targets[(size_t)i * k + j];
            double *s = sums + 5 * (size_t)j;
            s[0] += (o - y) * (o - y);
            s[1] += fabs(o - y);
            s[2] += y;
            s[3] += y * y;
            s[4] += (o > 0) == (y > 0.5);
        }
    return RT_OK;
}

/* ---- optimizer element loops -------------------------------------------------------------- */

void rt_host_sgd_range(float *restrict p, const float *restrict g, size_t lo, size_t hi,
                       const rt_sgd_coef *c)
{
    const float wd = c->weight_decay, neg_lr = c->neg_lr;
    const int use_wd = c->use_weight_decay;
    for (size_t i = lo; i < hi; i++) {
        float d = use_wd ? g[i] + wd * p[i] : g[i]; /* d_p = d_p.add(param, alpha=wd) */
        p[i] = p[i] + neg_lr * d;                   /* param.add_(d_p, alpha=-lr) */
    }
}

void rt_host_sgd_momentum_range(float *restrict p, float *restrict buf,
                                const float *restrict g, size_t lo, size_t hi,
                                const rt_sgd_coef *c)
{
    const float wd = c->weight_decay, neg_lr = c->neg_lr;
    const float mom = c->momentum, one_minus_damp = c->one_minus_damp;
    const int use_wd = c->use_weight_decay, first = c->first, nesterov = c->nesterov;
    for (size_t i = lo; i < hi; i++) {
        float d = use_wd ? g[i] + wd * p[i] : g[i]; /* d_p.add(param, alpha=wd) */
        float b = buf[i] * mom;                     /* buf.mul_(momentum) */
        b = b + one_minus_damp * d;                 /*    .add_(d_p, alpha=1-dampening) */
        b = first ? d : b;                          /* first step: buf = clone(d_p) */
        buf[i] = b;
        d = nesterov ? d + mom * b : b;             /* d_p.add(buf, alpha=momentum) */
        p[i] = p[i] + neg_lr * d;                   /* param.add_(d_p, alpha=-lr) */
    }
}

void rt_host_adam_range(float *restrict p, float *restrict m, float *restrict v,
                        const float *restrict g, size_t lo, size_t hi, const rt_adam_coef *c)
{
    const float l2 = c->l2, decay = c->decay, eps = c->eps, bc2_sqrt = c->bc2_sqrt;
    const float b1 = c->beta1, one_minus_b1 = c->one_minus_beta1;
    const float b2 = c->beta2, one_minus_b2 = c->one_minus_beta2;
    const float neg_step = c->neg_step_size;
    const int use_l2 = c->use_l2;
    for (size_t i = lo; i < hi; i++) {
        float pi = p[i] * decay;                    /* AdamW: param.mul_(1 - lr*wd) */
        float gi = use_l2 ? g[i] + l2 * pi : g[i];  /* Adam: grad.add(param, alpha=wd) */
        float mi = m[i] * b1;                       /* exp_avg.mul_(beta1) */
        mi = mi + one_minus_b1 * gi;                /*   .add_(grad, alpha=1-beta1) */
        float vi = v[i] * b2;                       /* exp_avg_sq.mul_(beta2) */
        vi = vi + one_minus_b2 * gi * gi;           /*   .addcmul_(grad, grad, value=1-beta2) */
        float denom = sqrtf(vi) / bc2_sqrt + eps;   /* (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps) */
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + neg_step * mi / denom;          /* param.addcdiv_(exp_avg, denom, value=-step_size) */
    }
}
