/* Per-element update rules behind rt_optim_step (internal header).
 *
 * Each function is one pass over n parameters in the llm.c manner (outputs
 * first, then inputs, then sizes and scalar coefficients); none allocates.
 * The per-step scalars are computed once by the caller in double, exactly as
 * torch.optim 1.13 computes them in Python, and rounded to float where
 * PyTorch's kernels round them; the loops then repeat the order of PyTorch's
 * float operations (_single_tensor_sgd/_adam/_adamw) so that results agree
 * to float rounding. Flags in the coefficient structs are loop-invariant
 * (the compiler unswitches or if-converts them; the loops stay vectorisable). */
#ifndef RTRAIN_OPTIM_UPDATE_H
#define RTRAIN_OPTIM_UPDATE_H

#include <stddef.h>

typedef struct rt_sgd_coef {
    float neg_lr;          /* -lr (param.add_(d_p, alpha=-lr)) */
    float weight_decay;    /* L2 term added to the gradient */
    float momentum;
    float one_minus_damp;  /* float(1 - dampening) */
    int use_weight_decay;  /* weight_decay != 0 */
    int first;             /* first step: buf = d_p (torch.clone) */
    int nesterov;
} rt_sgd_coef;

/* Plain SGD (momentum 0): p[n] -= lr * (g + wd p). */
void rt_sgd_update(float *p, const float *g, size_t n, const rt_sgd_coef *c);
/* SGD with momentum: buf[n] updated in place, then p[n]. */
void rt_sgd_momentum_update(float *p, float *buf, const float *g, size_t n,
                            const rt_sgd_coef *c);

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

/* Adam and AdamW: exp_avg m[n], exp_avg_sq v[n] and p[n] updated in place. */
void rt_adam_update(float *p, float *m, float *v, const float *g, size_t n,
                    const rt_adam_coef *c);

#endif
