/* Learning-rate schedules: a pure function of (options, base lr, step), so
 * that a resumed run recomputes exactly the rates it would have used.
 *
 * The main schedules are the closed forms of torch.optim.lr_scheduler:
 *   constant  base_lr
 *   step      StepLR: base_lr * gamma^floor(epoch / step_epochs),
 *             epoch = step / steps_per_epoch (counted from step 0)
 *   cosine    CosineAnnealingLR after the warm-up: t = step - warmup_steps,
 *             T = total_steps - warmup_steps, t clamped to [0, T]
 * A linear warm-up (LinearLR with total_iters = warmup_steps) multiplies any
 * of them: factor warmup_start_factor at step 0 rising linearly to 1 at
 * warmup_steps. For cosine this equals SequentialLR([LinearLR, Cosine]),
 * for step ChainedScheduler([LinearLR, StepLR]). Computed in double. */
#include <math.h>
#include <string.h>
#include "rtrain/optim.h"

typedef double (*schedule_fn)(const rt_schedule_opts *o, double base_lr, int64_t step,
                              int64_t steps_per_epoch, int64_t total_steps);

static double lr_constant(const rt_schedule_opts *o, double base_lr, int64_t step,
                          int64_t steps_per_epoch, int64_t total_steps)
{
    return base_lr;
}

/* No decay when the epoch length or period is unknown (<= 0). */
static double lr_step(const rt_schedule_opts *o, double base_lr, int64_t step,
                      int64_t steps_per_epoch, int64_t total_steps)
{
    if (steps_per_epoch <= 0 || o->step_epochs <= 0 || step < 0)
        return base_lr;
    int64_t epoch = step / steps_per_epoch;
    return base_lr * pow((double)o->gamma, (double)(epoch / o->step_epochs));
}

static double lr_cosine(const rt_schedule_opts *o, double base_lr, int64_t step,
                        int64_t steps_per_epoch, int64_t total_steps)
{
    int64_t warmup = o->warmup_steps > 0 ? o->warmup_steps : 0;
    int64_t T = total_steps - warmup;
    if (T <= 0)
        return base_lr;
    int64_t t = step - warmup;
    t = t < 0 ? 0 : t > T ? T : t;
    double min_lr = o->min_lr;
    return min_lr + (base_lr - min_lr) * (1.0 + cos(M_PI * (double)t / (double)T)) / 2.0;
}

static const struct {
    rt_schedule_type type;
    const char *name;
    schedule_fn lr;
} schedules[] = {
    {RT_SCHEDULE_CONSTANT, "constant", lr_constant},
    {RT_SCHEDULE_STEP, "step", lr_step},
    {RT_SCHEDULE_COSINE, "cosine", lr_cosine},
};
#define NSCHEDULES ((int)(sizeof schedules / sizeof schedules[0]))

void rt_schedule_opts_default(rt_schedule_opts *o)
{
    memset(o, 0, sizeof *o);
    o->type = RT_SCHEDULE_CONSTANT;
    o->step_epochs = 30;
    o->gamma = 0.1f;
    o->min_lr = 0.0f;
    o->warmup_steps = 0;
    o->warmup_start_factor = 1.0f / 3.0f;   /* LinearLR's default */
}

const char *rt_schedule_type_name(rt_schedule_type t)
{
    for (int i = 0; i < NSCHEDULES; i++)
        if (schedules[i].type == t)
            return schedules[i].name;
    return "unknown";
}

int rt_schedule_type_from_name(const char *name)
{
    for (int i = 0; name && i < NSCHEDULES; i++)
        if (strcmp(schedules[i].name, name) == 0)
            return (int)schedules[i].type;
    return -1;
}

/* LinearLR's closed form: start + (1 - start) * min(step, W) / W. */
static double warmup_factor(const rt_schedule_opts *o, int64_t step)
{
    if (o->warmup_steps <= 0 || step >= o->warmup_steps)
        return 1.0;
    double start = o->warmup_start_factor;
    double t = step < 0 ? 0.0 : (double)step;
    return start + (1.0 - start) * t / (double)o->warmup_steps;
}

float rt_schedule_lr(const rt_schedule_opts *o, float base_lr, int64_t step,
                     int64_t steps_per_epoch, int64_t total_steps)
{
    schedule_fn fn = lr_constant;   /* an unknown type is refused by config; stay usable */
    for (int i = 0; i < NSCHEDULES; i++)
        if (schedules[i].type == o->type)
            fn = schedules[i].lr;
    double lr = fn(o, (double)base_lr, step, steps_per_epoch, total_steps);
    return (float)(warmup_factor(o, step) * lr);
}
