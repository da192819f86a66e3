/* The optimizers' element-wise update loops (the hot path of every step:
 * about 11M floats for ResNet18). Each statement below is one PyTorch tensor
 * operation of torch/optim/{sgd,adam,adamw}.py (1.13, single-tensor path),
 * quoted in the comment beside it, and every intermediate is rounded to
 * float where PyTorch stores one.
 *
 * Not bit-exact: PyTorch's AVX2 kernels compute add(x, alpha=a) as a fused
 * multiply-add, while these loops round a*x and the sum separately (fmaf
 * would be a library call per element in a baseline x86-64 build and stop
 * vectorisation). The difference is one float rounding per such operation.
 *
 * Speed: the Adam loop vectorises only when sqrtf need not set errno
 * (-fno-math-errno, which PyTorch itself is built with) and at -O3 (GCC
 * 12's -O2 leaves it scalar; configure defaults CFLAGS to -O3); otherwise
 * it runs about 4x slower on 11M parameters. The loops are
 * also split over the CPU kernels' threads (kernels/cpu/parallel.h): each
 * element's update is independent, so the split changes no result. */
#include <math.h>
#include "kernels/cpu/parallel.h"
#include "update.h"

static void sgd_range(float *restrict p, const float *restrict g, size_t lo, size_t hi,
                      const rt_sgd_coef *c)
{
    const float wd = c->weight_decay, neg_lr = c->neg_lr;
    const int use_wd = c->use_weight_decay;
    for (size_t i = lo; i < hi; i++) {
        float d = use_wd ? g[i] + wd * p[i] : g[i]; /* d_p = d_p.add(param, alpha=wd) */
        p[i] = p[i] + neg_lr * d;                   /* param.add_(d_p, alpha=-lr) */
    }
}

static void sgd_momentum_range(float *restrict p, float *restrict buf,
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

static void adam_range(float *restrict p, float *restrict m, float *restrict v,
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

/* ---- the public entry points: the loops above over the threads' parts ---- */

typedef struct update_job {
    float *p, *s1, *s2;    /* parameters and up to two state arrays */
    const float *g;
    const rt_sgd_coef *sgd;
    const rt_adam_coef *adam;
} update_job;

static void sgd_piece(void *arg, size_t lo, size_t hi)
{
    const update_job *j = arg;
    sgd_range(j->p, j->g, lo, hi, j->sgd);
}

static void sgd_momentum_piece(void *arg, size_t lo, size_t hi)
{
    const update_job *j = arg;
    sgd_momentum_range(j->p, j->s1, j->g, lo, hi, j->sgd);
}

static void adam_piece(void *arg, size_t lo, size_t hi)
{
    const update_job *j = arg;
    adam_range(j->p, j->s1, j->s2, j->g, lo, hi, j->adam);
}

void rt_sgd_update(float *p, const float *g, size_t n, const rt_sgd_coef *c)
{
    update_job j = {.p = p, .g = g, .sgd = c};
    rt_par_for(n, rt_par_threads(n, RT_PAR_MIN_FLOATS), sgd_piece, &j);
}

void rt_sgd_momentum_update(float *p, float *buf, const float *g, size_t n,
                            const rt_sgd_coef *c)
{
    update_job j = {.p = p, .s1 = buf, .g = g, .sgd = c};
    rt_par_for(n, rt_par_threads(n, RT_PAR_MIN_FLOATS), sgd_momentum_piece, &j);
}

void rt_adam_update(float *p, float *m, float *v, const float *g, size_t n,
                    const rt_adam_coef *c)
{
    update_job j = {.p = p, .s1 = m, .s2 = v, .g = g, .adam = c};
    rt_par_for(n, rt_par_threads(n, RT_PAR_MIN_FLOATS), adam_piece, &j);
}
