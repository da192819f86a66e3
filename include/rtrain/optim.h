/* rtrain optim: SGD, Adam, AdamW and learning-rate schedules, with the
 * update rules of PyTorch 1.13 (torch.optim) so results can be compared.
 *
 * The optimizer's state (momentum buffers, Adam moments) lives in one slab
 * laid out like the parameter slab, in the memory of the model's backend,
 * so it can be checkpointed and sharded with the same offsets; the update
 * is the backend's kernel. Not collective: every rank steps its own replica
 * with the same (already averaged) gradients. */
#ifndef RTRAIN_OPTIM_H
#define RTRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>
#include "rtrain/core.h"
#include "rtrain/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rt_optim_type { RT_OPTIM_SGD = 0, RT_OPTIM_ADAM, RT_OPTIM_ADAMW } rt_optim_type;

typedef struct rt_optim_opts {
    rt_optim_type type;
    float lr;
    float momentum;       /* SGD */
    float dampening;      /* SGD */
    int nesterov;         /* SGD */
    float weight_decay;   /* SGD/Adam: L2 added to the gradient; AdamW: decoupled */
    float beta1, beta2;   /* Adam/AdamW */
    float eps;            /* Adam/AdamW */
} rt_optim_opts;

/* PyTorch's defaults for the type (AdamW: weight_decay 0.01). */
void rt_optim_opts_default(rt_optim_opts *o, rt_optim_type type);
const char *rt_optim_type_name(rt_optim_type t);
int rt_optim_type_from_name(const char *name);   /* -1 if unknown */

typedef struct rt_optimizer rt_optimizer;

/* An optimizer for num_params parameters in the memory of backend be (the
 * model's: rt_model_backend; NULL: the default backend). */
rt_status rt_optim_create(rt_optimizer **out, const rt_backend *be, const rt_optim_opts *opts,
                          size_t num_params);
/* rt_optim_create with the state slab in the caller's memory (NULL: the
 * optimizer allocates it): rt_optim_slots_for(opts) * num_params floats of
 * backend memory, which the optimizer uses and never frees. */
rt_status rt_optim_create_in(rt_optimizer **out, const rt_backend *be,
                             const rt_optim_opts *opts, size_t num_params, float *state);
/* State arrays an optimizer of these options holds (-1: unknown type). */
int rt_optim_slots_for(const rt_optim_opts *opts);
void rt_optim_free(rt_optimizer *o);
/* One update of params[num_params] from grads with learning rate lr (both
 * in backend memory). The step count advances only when it succeeds. */
rt_status rt_optim_step(rt_optimizer *o, float *params, const float *grads, float lr);
/* The same update on elements [begin, end) only (of params, grads and the
 * state slab), without advancing the step count: the per-element arithmetic
 * is rt_optim_step's, so a slab updated in ranges, then counted once with
 * rt_optim_count_step, equals one updated whole, bit for bit. */
rt_status rt_optim_step_range(rt_optimizer *o, float *params, const float *grads, float lr,
                              size_t begin, size_t end);
void rt_optim_count_step(rt_optimizer *o);
/* State slab: state_slots(o) arrays of num_params floats, named by
 * rt_optim_state_name (SGD: "momentum_buffer", none when momentum is 0;
 * Adam: "exp_avg", "exp_avg_sq"), plus the step count. */
int rt_optim_state_slots(const rt_optimizer *o);
const char *rt_optim_state_name(const rt_optimizer *o, int slot);
float *rt_optim_state(rt_optimizer *o, int slot);   /* backend memory */
int64_t rt_optim_step_count(const rt_optimizer *o);
void rt_optim_set_step_count(rt_optimizer *o, int64_t steps);

/* ---- learning-rate schedules ------------------------------------------- */
typedef enum rt_schedule_type {
    RT_SCHEDULE_CONSTANT = 0,
    RT_SCHEDULE_STEP,     /* lr * gamma^floor(epoch / step_epochs) */
    RT_SCHEDULE_COSINE    /* cosine from lr to min_lr over the run (after warm-up) */
} rt_schedule_type;

typedef struct rt_schedule_opts {
    rt_schedule_type type;
    int step_epochs;        /* STEP */
    float gamma;            /* STEP */
    float min_lr;           /* COSINE */
    int64_t warmup_steps;   /* linear warm-up from warmup_start_factor*lr to lr */
    float warmup_start_factor;
} rt_schedule_opts;

void rt_schedule_opts_default(rt_schedule_opts *o);
const char *rt_schedule_type_name(rt_schedule_type t);
int rt_schedule_type_from_name(const char *name);  /* -1 if unknown */

/* Learning rate for optimizer step `step` (0-based), a pure function of its
 * arguments so that a resumed run gets the same rates. */
float rt_schedule_lr(const rt_schedule_opts *o, float base_lr, int64_t step,
                     int64_t steps_per_epoch, int64_t total_steps);

#ifdef __cplusplus
}
#endif
#endif
