/* Optimizer objects: the type table (name, defaults, state layout and step
 * function of SGD, Adam and AdamW), creation with validation, the state
 * slab and the step count.
 *
 * The state slab holds state_slots arrays of num_params floats, back to
 * back, each laid out like the parameter slab, so checkpointing uses the
 * parameter offsets. The per-step scalars are computed here, once per step,
 * in double as torch.optim does in Python; the backend's update kernels do
 * the per-element work. */
#include <math.h>
#include <string.h>
#include "rtrain/optim.h"

#define RT_OPTIM_MAX_SLOTS 2

struct rt_optimizer {
    const struct optim_kind *kind;
    const rt_backend *be;
    rt_optim_opts opts;
    size_t n;          /* parameters */
    int64_t steps;     /* updates done so far (PyTorch's state['step']) */
    int slots;         /* state arrays held: kind->slots, 0 for SGD without momentum */
    float *slab;       /* [slots][n] */
    int owns_slab;     /* 0: the caller's memory (rt_optim_create_in) */
};

/* One row per optimizer type. `step` performs update number o->steps + 1
 * on elements [begin, end) of the parameter, gradient and state slabs. */
typedef struct optim_kind {
    rt_optim_type type;
    const char *name;
    int slots;
    const char *slot_names[RT_OPTIM_MAX_SLOTS];
    float lr, weight_decay;   /* PyTorch's defaults for the type */
    rt_status (*step)(rt_optimizer *o, float *params, const float *grads, float lr,
                      size_t begin, size_t end);
} optim_kind;

static rt_status step_sgd(rt_optimizer *o, float *params, const float *grads, float lr,
                          size_t begin, size_t end);
static rt_status step_adam(rt_optimizer *o, float *params, const float *grads, float lr,
                           size_t begin, size_t end);
static rt_status step_adamw(rt_optimizer *o, float *params, const float *grads, float lr,
                            size_t begin, size_t end);

/* torch.optim.SGD has no default lr (it is required); 0.01 is ours. */
static const optim_kind kinds[] = {
    {RT_OPTIM_SGD, "sgd", 1, {"momentum_buffer", NULL}, 0.01f, 0.0f, step_sgd},
    {RT_OPTIM_ADAM, "adam", 2, {"exp_avg", "exp_avg_sq"}, 1e-3f, 0.0f, step_adam},
    {RT_OPTIM_ADAMW, "adamw", 2, {"exp_avg", "exp_avg_sq"}, 1e-3f, 1e-2f, step_adamw},
};
#define NKINDS ((int)(sizeof kinds / sizeof kinds[0]))

static const optim_kind *kind_of(rt_optim_type t)
{
    for (int i = 0; i < NKINDS; i++)
        if (kinds[i].type == t)
            return &kinds[i];
    return NULL;
}

const char *rt_optim_type_name(rt_optim_type t)
{
    const optim_kind *k = kind_of(t);
    return k ? k->name : "unknown";
}

int rt_optim_type_from_name(const char *name)
{
    for (int i = 0; name && i < NKINDS; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return (int)kinds[i].type;
    return -1;
}

void rt_optim_opts_default(rt_optim_opts *o, rt_optim_type type)
{
    const optim_kind *k = kind_of(type);
    memset(o, 0, sizeof *o);
    o->type = type;
    o->lr = k ? k->lr : 0.01f;
    o->weight_decay = k ? k->weight_decay : 0.0f;
    /* Adam's betas and eps are filled for every type so that a config that
     * switches the type keeps sensible values; SGD ignores them. */
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
}

/* The checks torch.optim's constructors make, as configuration errors. */
static rt_status validate(const rt_optim_opts *o, const optim_kind *k)
{
    if (!(o->lr >= 0.0f && isfinite(o->lr)))
        return RT_ERROR(RT_ERR_CONFIG, "optimizer.lr = %g is invalid: use a finite value >= 0",
                        (double)o->lr);
    if (!(o->weight_decay >= 0.0f && isfinite(o->weight_decay)))
        return RT_ERROR(RT_ERR_CONFIG,
                        "optimizer.weight_decay = %g is invalid: use a finite value >= 0",
                        (double)o->weight_decay);
    if (k->type == RT_OPTIM_SGD) {
        if (!(o->momentum >= 0.0f && isfinite(o->momentum)))
            return RT_ERROR(RT_ERR_CONFIG,
                            "optimizer.momentum = %g is invalid: use a finite value >= 0",
                            (double)o->momentum);
        if (o->nesterov && (o->momentum <= 0.0f || o->dampening != 0.0f))
            return RT_ERROR(RT_ERR_CONFIG, "optimizer.nesterov needs optimizer.momentum > 0 "
                            "and optimizer.dampening = 0 (got momentum %g, dampening %g)",
                            (double)o->momentum, (double)o->dampening);
        return RT_OK;
    }
    if (!(o->beta1 >= 0.0f && o->beta1 < 1.0f) || !(o->beta2 >= 0.0f && o->beta2 < 1.0f))
        return RT_ERROR(RT_ERR_CONFIG, "optimizer betas (%g, %g) are invalid: each must be "
                        "in [0, 1), e.g. beta1 = 0.9, beta2 = 0.999",
                        (double)o->beta1, (double)o->beta2);
    if (!(o->eps >= 0.0f && isfinite(o->eps)))
        return RT_ERROR(RT_ERR_CONFIG, "optimizer.eps = %g is invalid: use a small value "
                        ">= 0 such as 1e-8", (double)o->eps);
    return RT_OK;
}

/* SGD without momentum keeps no momentum buffer (torch.optim stores none
 * either), so its checkpoints hold the parameters only. */
static int slots_of(const optim_kind *k, const rt_optim_opts *opts)
{
    return k->type == RT_OPTIM_SGD && opts->momentum == 0.0f ? 0 : k->slots;
}

int rt_optim_slots_for(const rt_optim_opts *opts)
{
    const optim_kind *k = opts ? kind_of(opts->type) : NULL;
    return k ? slots_of(k, opts) : -1;
}

rt_status rt_optim_create_in(rt_optimizer **out, const rt_backend *be,
                             const rt_optim_opts *opts, size_t num_params, float *state)
{
    *out = NULL;
    const optim_kind *k = opts ? kind_of(opts->type) : NULL;
    if (!k)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_optim_create: %s optimizer type; use one of "
                        "sgd, adam, adamw", opts ? "unknown" : "no options, so no");
    RT_CHECK(validate(opts, k));
    if (num_params > SIZE_MAX / sizeof(float) / RT_OPTIM_MAX_SLOTS)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_optim_create: %zu parameters is too many",
                        num_params);
    rt_optimizer *o;
    RT_CHECK(rt_alloc(&o, 1, sizeof *o, "optimizer"));
    o->kind = k;
    o->be = be ? be : rt_backend_default();
    o->opts = *opts;
    o->n = num_params;
    o->slots = slots_of(k, opts);
    if (state) {
        o->slab = state;
        *out = o;
        return RT_OK;
    }
    void *slab = NULL;
    size_t floats = (size_t)o->slots * num_params;
    rt_status s = o->be->alloc(&slab, (floats ? floats : 1) * sizeof(float),
                               "optimizer state slab");
    o->slab = slab;
    o->owns_slab = 1;
    if (s != RT_OK) {
        rt_free(o);
        RT_CHECK(s);
    }
    *out = o;
    return RT_OK;
}

rt_status rt_optim_create(rt_optimizer **out, const rt_backend *be, const rt_optim_opts *opts,
                          size_t num_params)
{
    return rt_optim_create_in(out, be, opts, num_params, NULL);
}

void rt_optim_free(rt_optimizer *o)
{
    if (!o)
        return;
    if (o->slab && o->owns_slab)
        o->be->free(o->slab);
    rt_free(o);
}

rt_status rt_optim_step(rt_optimizer *o, float *params, const float *grads, float lr)
{
    RT_CHECK(o->kind->step(o, params, grads, lr, 0, o->n));
    o->steps++;
    return RT_OK;
}

rt_status rt_optim_step_range(rt_optimizer *o, float *params, const float *grads, float lr,
                              size_t begin, size_t end)
{
    if (begin > end || end > o->n)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_optim_step_range: elements [%zu, %zu) of a "
                        "slab of %zu", begin, end, o->n);
    if (begin == end)
        return RT_OK;
    return o->kind->step(o, params, grads, lr, begin, end);
}

void rt_optim_count_step(rt_optimizer *o) { o->steps++; }

int rt_optim_state_slots(const rt_optimizer *o) { return o->slots; }

const char *rt_optim_state_name(const rt_optimizer *o, int slot)
{
    return slot >= 0 && slot < o->slots ? o->kind->slot_names[slot] : NULL;
}

float *rt_optim_state(rt_optimizer *o, int slot)
{
    return slot >= 0 && slot < o->slots ? o->slab + (size_t)slot * o->n : NULL;
}

int64_t rt_optim_step_count(const rt_optimizer *o) { return o->steps; }
void rt_optim_set_step_count(rt_optimizer *o, int64_t steps) { o->steps = steps; }

/* ---- per-step scalars (torch.optim, computed in double) --- ------------ */

static rt_status step_sgd(rt_optimizer *o, float *params, const float *grads, float lr,
                          size_t begin, size_t end)
{
    const rt_optim_opts *op = &o->opts;
    rt_sgd_coef c = {
        .neg_lr = -lr,
        .weight_decay = op->weight_decay,
        .momentum = op->momentum,
        .one_minus_damp = (float)(1.0 - (double)op->dampening),
        .use_weight_decay = op->weight_decay != 0.0f,
        .first = o->steps == 0,
        .nesterov = op->nesterov,
    };
    if (op->momentum != 0.0f)
        return o->be->sgd_momentum_update(params + begin, o->slab + begin, grads + begin,
                                          end - begin, &c);
    return o->be->sgd_update(params + begin, grads + begin, end - begin, &c);
}

/* Adam's scalars for update number step (1-based); AdamW adds its decay. */
static rt_adam_coef adam_coef(const rt_optim_opts *op, int64_t step, float lr)
{
    double b1 = op->beta1, b2 = op->beta2;
    double bias_correction1 = 1.0 - pow(b1, (double)step);
    double bias_correction2 = 1.0 - pow(b2, (double)step);
    double step_size = (double)lr / bias_correction1;
    rt_adam_coef c = {
        .l2 = op->weight_decay,
        .decay = 1.0f,
        .beta1 = op->beta1,
        .one_minus_beta1 = (float)(1.0 - b1),
        .beta2 = op->beta2,
        .one_minus_beta2 = (float)(1.0 - b2),
        .bc2_sqrt = (float)sqrt(bias_correction2),
        .eps = op->eps,
        .neg_step_size = (float)-step_size,
        .use_l2 = op->weight_decay != 0.0f,
    };
    return c;
}

static rt_status adam_range(rt_optimizer *o, float *params, const float *grads,
                            const rt_adam_coef *c, size_t begin, size_t end)
{
    return o->be->adam_update(params + begin, o->slab + begin, o->slab + o->n + begin,
                              grads + begin, end - begin, c);
}

static rt_status step_adam(rt_optimizer *o, float *params, const float *grads, float lr,
                           size_t begin, size_t end)
{
    rt_adam_coef c = adam_coef(&o->opts, o->steps + 1, lr);
    return adam_range(o, params, grads, &c, begin, end);
}

static rt_status step_adamw(rt_optimizer *o, float *params, const float *grads, float lr,
                            size_t begin, size_t end)
{
    rt_adam_coef c = adam_coef(&o->opts, o->steps + 1, lr);
    c.use_l2 = 0;   /* decoupled: param.mul_(1 - lr * weight_decay) instead */
    c.l2 = 0.0f;
    c.decay = (float)(1.0 - (double)lr * (double)o->opts.weight_decay);
    return adam_range(o, params, grads, &c, begin, end);
}
