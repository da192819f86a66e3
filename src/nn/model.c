/* The sequential model: top-level layers from the architecture (arch.c) or
 * the caller (custom.c), built through one rt_builder, with one parameter
 * slab, one gradient slab, one buffer slab, one saved-memory arena and one
 * scratch area, all allocated by the model's backend. Parameters and
 * buffers are initialised on the host and uploaded.
 *
 * Activations: act[0] receives the input (uploaded from the caller's host
 * batch, which the caller may then reuse) and act[i + 1] is the output of
 * top-level layer i, each [max_batch][shape], kept for backward. Input
 * gradients ping-pong between two buffers as large as the largest layer
 * input; layer 0 gets din = NULL because nobody needs d(loss)/d(x). The
 * loss writes d(loss)/d(output) into out_grad, where backward starts when
 * the caller passes no gradient of its own.
 *
 * Every size is worked out first (plan_model, the sizes struct), then
 * allocated from those numbers: a planned model (rt_model_plan) stops
 * before the allocation, so the memory it reports is what a built one
 * takes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rtrain/comm.h"
#include "nn/builder.h"
#include "nn/custom.h"

#define MAX_BATCH_LIMIT (1 << 20)
#define MAX_SAMPLE_FLOATS ((size_t)1 << 30)

struct rt_model {
    const rt_backend *be;
    rt_model_spec spec;
    rt_shape in, out;
    int max_batch;
    rt_layer **layers;
    int num_layers;
    rt_layer **all_layers;      /* [num_all_layers]: children of composites too, build order */
    int num_all_layers;
    size_t *param_off;          /* [num_layers]: first parameter of layer i */
    int first_trained;          /* the first top-level layer with parameters (num_layers:
                                 * none): backward stops there, as autograd does */
    /* backend memory */
    float *params, *grads, *buffers, *arena, *scratch;
    float *act_slab;
    float **act;                /* [num_layers + 1], host table of pointers */
    float *grad_slab;
    float *grad_buf[2];         /* [max_batch][largest layer input] each */
    float *out_grad;            /* [max_batch][out]: the loss gradient */
    void *targets;              /* [max_batch][max(1, out)] x 4 bytes: the loss's targets
                                 * (int32 class labels or float vectors) */
    size_t num_params, num_buffers;
    /* Floats of each backend allocation but the three slabs. */
    struct {
        size_t arena, scratch;
        size_t act;            /* the model's input and every layer's output, x max_batch */
        size_t grad_buf;       /* one of the two input-gradient buffers */
        size_t out_grad;
        size_t targets;        /* 4-byte values */
    } sizes;
    int planned;                /* rt_model_plan: sizes only, no backend memory */
    float *placed_params, *placed_grads;   /* rt_model_create_in: the caller's slabs */
    rt_tensor_info *tensors;    /* parameters (slab order), then buffers */
    int num_tensors;
    int last_n;                 /* batch size of the last forward call */
    void (*hook)(void *arg, int layer);
    void *hook_arg;
};

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

static rt_status check_input(rt_shape in, int max_batch)
{
    if (max_batch < 1 || max_batch > MAX_BATCH_LIMIT)
        return RT_ERROR(RT_ERR_CONFIG, "batch size %d out of range [1, %d]", max_batch,
                        MAX_BATCH_LIMIT);
    if (in.c < 1 || in.h < 1 || in.w < 1 || rt_shape_size(in) > MAX_SAMPLE_FLOATS)
        return RT_ERROR(RT_ERR_CONFIG, "model input shape [%d, %d, %d] is empty or too "
                        "large; check the dataset's sample shape", in.c, in.h, in.w);
    return RT_OK;
}

/* Backend memory of `floats` floats, zero-filled. */
static rt_status be_alloc(const rt_backend *be, float **out, size_t floats, const char *what)
{
    void *p = NULL;
    if (floats > SIZE_MAX / sizeof(float))
        return RT_ERROR(RT_ERR_NOMEM, "cannot allocate %s: %zu floats overflows", what, floats);
    RT_CHECK(be->alloc(&p, (floats ? floats : 1) * sizeof(float), what));
    *out = p;
    return RT_OK;
}

/* Every layer either computes through the backend table or needs host
 * memory, which a device backend does not have. */
static rt_status check_layer_backends(const rt_model *m)
{
    if (m->be->flags & RT_BACKEND_HOST_MEMORY)
        return RT_OK;
    for (int i = 0; i < m->num_layers; i++)
        if (!(m->layers[i]->ops->flags & RT_LAYER_ANY_BACKEND))
            return RT_ERROR(RT_ERR_UNSUPPORTED, "layer '%s' (%s) computes on the host and "
                            "backend '%s' keeps tensors in device memory: give its ops "
                            "RT_LAYER_ANY_BACKEND and compute through l->backend, or train "
                            "on a CPU backend", m->layers[i]->name, m->layers[i]->ops->type,
                            m->be->name);
    return RT_OK;
}

/* Builds every top-level layer, remembering where its parameters start. */
static rt_status build_layers(rt_model *m, rt_builder *b)
{
    RT_CHECK(rt_alloc(&m->param_off, (size_t)m->num_layers, sizeof *m->param_off,
                      "layer offsets"));
    rt_shape shape = m->in;
    for (int i = 0; i < m->num_layers; i++) {
        m->param_off[i] = b->param_floats;
        RT_CHECK(rt_builder_child(b, m->layers[i], shape, &shape));
    }
    m->out = shape;
    /* Gradients flow back only as far as a layer with parameters: below
     * it no one needs them (nor the model's input gradient). */
    m->first_trained = m->num_layers;
    for (int i = m->num_layers - 1; i >= 0; i--)
        if ((i + 1 < m->num_layers ? m->param_off[i + 1] : b->param_floats) > m->param_off[i])
            m->first_trained = i;
    m->num_all_layers = b->serial + 1;
    RT_CHECK(rt_alloc(&m->all_layers, (size_t)m->num_all_layers, sizeof *m->all_layers,
                      "layer list"));
    memcpy(m->all_layers, b->layers, (size_t)m->num_all_layers * sizeof *m->all_layers);
    return RT_OK;
}

static rt_status collect_tensors(rt_model *m, const rt_builder *b)
{
    m->num_tensors = b->num_tensors;
    RT_CHECK(rt_alloc(&m->tensors, (size_t)b->num_tensors, sizeof *m->tensors,
                      "tensor table"));
    int k = 0;
    for (int kind = RT_TENSOR_PARAM; kind <= RT_TENSOR_BUFFER; kind++)
        for (int i = 0; i < b->num_tensors; i++)
            if ((int)b->tensors[i].info.kind == kind)
                m->tensors[k++] = b->tensors[i].info;
    return RT_OK;
}

/* The sizes of the activation buffers (m->sizes). */
static rt_status plan_activations(rt_model *m)
{
    size_t total = align16(rt_shape_size(m->in)), grad_max = 1;
    for (int i = 0; i < m->num_layers; i++) {
        total += align16(rt_shape_size(m->layers[i]->out_shape));
        if (i > 0 && rt_shape_size(m->layers[i]->in_shape) > grad_max)
            grad_max = rt_shape_size(m->layers[i]->in_shape);
    }
    size_t mb = (size_t)m->max_batch;
    if (total > ((size_t)1 << 34) / mb)
        return RT_ERROR(RT_ERR_CONFIG, "activations of %zu floats per sample x %d samples "
                        "are too large; reduce the batch size", total, m->max_batch);
    size_t per_sample = rt_shape_size(m->out) > 1 ? rt_shape_size(m->out) : 1;
    m->sizes.act = total * mb;
    m->sizes.grad_buf = align16(grad_max * mb);
    m->sizes.out_grad = rt_shape_size(m->out) * mb;
    m->sizes.targets = mb * per_sample;
    return RT_OK;
}

static rt_status alloc_activations(rt_model *m)
{
    size_t mb = (size_t)m->max_batch;
    RT_CHECK(rt_alloc(&m->act, (size_t)m->num_layers + 1, sizeof *m->act, "activation table"));
    RT_CHECK(be_alloc(m->be, &m->act_slab, m->sizes.act, "activations"));
    RT_CHECK(be_alloc(m->be, &m->grad_slab, 2 * m->sizes.grad_buf, "activation gradients"));
    RT_CHECK(be_alloc(m->be, &m->out_grad, m->sizes.out_grad, "output gradient"));
    RT_CHECK(m->be->alloc(&m->targets, m->sizes.targets * 4, "loss targets"));
    m->grad_buf[0] = m->grad_slab;
    m->grad_buf[1] = m->grad_slab + m->sizes.grad_buf;
    float *p = m->act_slab;
    m->act[0] = p;
    p += align16(rt_shape_size(m->in)) * mb;
    for (int i = 0; i < m->num_layers; i++) {
        m->act[i + 1] = p;
        p += align16(rt_shape_size(m->layers[i]->out_shape)) * mb;
    }
    return RT_OK;
}

/* Initial parameter and buffer values on the host, then uploaded. */
static rt_status init_values(rt_model *m, const rt_builder *b, uint64_t seed)
{
    float *params = NULL, *buffers = NULL;
    rt_status st = rt_alloc(&params, m->num_params, sizeof(float), "initial parameters");
    if (st == RT_OK)
        st = rt_alloc(&buffers, m->num_buffers, sizeof(float), "initial buffers");
    if (st == RT_OK) {
        rt_builder_init_values(b, params, buffers, seed);
        st = m->be->upload(m->params, params, m->num_params * sizeof(float));
    }
    if (st == RT_OK)
        st = m->be->upload(m->buffers, buffers, m->num_buffers * sizeof(float));
    rt_free(params);
    rt_free(buffers);
    return st;
}

/* The layers built and every size known; nothing allocated yet. */
static rt_status plan_model(rt_model *m, rt_builder *b)
{
    if (!m->layers)   /* custom models (custom.c) come with their layers */
        RT_CHECK(rt_arch_layers(&m->spec, m->in, &m->layers, &m->num_layers));
    RT_CHECK(check_layer_backends(m));
    RT_CHECK(build_layers(m, b));
    m->num_params = b->param_floats;
    m->num_buffers = b->buffer_floats;
    m->sizes.arena = b->arena_floats;
    m->sizes.scratch = b->scratch_floats;
    RT_CHECK(collect_tensors(m, b));
    return plan_activations(m);
}

static rt_status create_model(rt_model *m, rt_builder *b, uint64_t seed)
{
    RT_CHECK(plan_model(m, b));
    if (m->planned)
        return RT_OK;
    if (m->placed_params) {
        m->params = m->placed_params;
        m->grads = m->placed_grads;
    } else {
        RT_CHECK(be_alloc(m->be, &m->params, m->num_params, "parameter slab"));
        RT_CHECK(be_alloc(m->be, &m->grads, m->num_params, "gradient slab"));
    }
    RT_CHECK(be_alloc(m->be, &m->buffers, m->num_buffers, "buffer slab"));
    RT_CHECK(be_alloc(m->be, &m->arena, m->sizes.arena, "saved-state arena"));
    RT_CHECK(be_alloc(m->be, &m->scratch, m->sizes.scratch, "scratch area"));
    RT_CHECK(alloc_activations(m));
    rt_builder_fill(b, m->params, m->grads, m->buffers, m->arena, m->scratch);
    return init_values(m, b, seed);
}

static rt_status model_new(rt_model **out, const rt_backend *be, rt_shape in, int max_batch)
{
    *out = NULL;
    RT_CHECK(check_input(in, max_batch));
    if (!be)
        be = rt_backend_default();
    if (be->abi_version != RT_BACKEND_ABI_VERSION)
        return RT_ERROR(RT_ERR_UNSUPPORTED, "backend '%s' was built for backend ABI %u, this "
                        "rtrain has %d: rebuild it", be->name ? be->name : "?",
                        be->abi_version, RT_BACKEND_ABI_VERSION);
    rt_model *m;
    RT_CHECK(rt_alloc(&m, 1, sizeof *m, "model"));
    m->be = be;
    m->in = in;
    m->max_batch = max_batch;
    *out = m;
    return RT_OK;
}

/* Builds m (whose layers may already be set); frees it on failure. */
static rt_status build_model(rt_model **out, rt_model *m, uint64_t seed)
{
    rt_builder b;
    rt_builder_init(&b, m->be, m->max_batch);
    rt_status s = create_model(m, &b, seed);
    rt_builder_release(&b);
    if (s != RT_OK) {
        rt_error_trace(__FILE__, __LINE__, "create_model");
        rt_model_free(m);
        return s;
    }
    *out = m;
    return RT_OK;
}

rt_status rt_model_create(rt_model **out, const rt_backend *be, const rt_model_spec *spec,
                          rt_shape in, int max_batch, uint64_t seed)
{
    rt_model *m = NULL;
    RT_CHECK(model_new(&m, be, in, max_batch));
    m->spec = *spec;
    return build_model(out, m, seed);
}

rt_status rt_model_create_in(rt_model **out, const rt_backend *be, const rt_model_spec *spec,
                             rt_shape in, int max_batch, uint64_t seed, float *params,
                             float *grads)
{
    *out = NULL;
    if (!params || !grads)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_create_in: no memory given for the "
                        "parameter or gradient slab");
    rt_model *m = NULL;
    RT_CHECK(model_new(&m, be, in, max_batch));
    m->spec = *spec;
    m->placed_params = params;
    m->placed_grads = grads;
    return build_model(out, m, seed);
}

rt_status rt_model_plan(rt_model **out, const rt_backend *be, const rt_model_spec *spec,
                        rt_shape in, int max_batch)
{
    rt_model *m = NULL;
    RT_CHECK(model_new(&m, be, in, max_batch));
    m->spec = *spec;
    m->planned = 1;
    return build_model(out, m, 0);
}

void rt_model_memory_use(const rt_model *m, rt_model_memory *out)
{
    const size_t f = sizeof(float);
    *out = (rt_model_memory){
        .params = m->num_params * f, .grads = m->num_params * f,
        .buffers = m->num_buffers * f, .saved = m->sizes.arena * f,
        .scratch = m->sizes.scratch * f,
        .activations = (m->sizes.act + 2 * m->sizes.grad_buf + m->sizes.out_grad +
                        m->sizes.targets) * f,
    };
}

/* A model of the caller's own top-level layers (src/nn/custom.c checks them
 * first); it owns them from here on, also when it fails. */
rt_status rt_model_create_custom(rt_model **out, const rt_backend *be, rt_layer **layers,
                                 int n, rt_shape in, int max_batch, uint64_t seed)
{
    *out = NULL;
    rt_model *m = NULL;
    rt_status s = model_new(&m, be, in, max_batch);
    if (s == RT_OK)
        s = rt_alloc(&m->layers, (size_t)n, sizeof *m->layers, "layer table");
    if (s != RT_OK) {
        for (int i = 0; i < n; i++)
            rt_layer_free(layers[i]);
        rt_model_free(m);
        return s;
    }
    rt_model_spec_default(&m->spec, RT_ARCH_SEQUENTIAL);
    memcpy(m->layers, layers, (size_t)n * sizeof *layers);
    m->num_layers = n;
    return build_model(out, m, seed);
}

void rt_model_free(rt_model *m)
{
    if (!m)
        return;
    for (int i = 0; m->layers && i < m->num_layers; i++)
        rt_layer_free(m->layers[i]);
    rt_free(m->layers);
    rt_free(m->all_layers);
    rt_free(m->param_off);
    rt_free(m->tensors);
    rt_free(m->act);
    int own_slabs = !m->placed_params;
    void *backend_memory[] = {own_slabs ? m->params : NULL, own_slabs ? m->grads : NULL,
                              m->buffers, m->arena, m->scratch, m->act_slab, m->grad_slab,
                              m->out_grad, m->targets};
    for (size_t i = 0; i < sizeof backend_memory / sizeof backend_memory[0]; i++)
        if (backend_memory[i])
            m->be->free(backend_memory[i]);
    rt_free(m);
}

/* ---- forward and backward ---------------------------------------------------------- */

/* A NULL context means evaluation: running statistics, no dropout. */
static const rt_nn_ctx eval_ctx = {.train = 0};

/* A layer failed. With synchronised BatchNorm the other ranks are inside
 * this pass's collectives, which this rank will not reach: the job ends. */
static rt_status layer_failed(const rt_nn_ctx *ctx, const rt_layer *l, const char *pass,
                              rt_status st)
{
    rt_error_trace(__FILE__, __LINE__, l->name);
    if (ctx->sync_comm)
        rt_comm_abort(ctx->sync_comm, "%s of layer '%s' failed inside a synchronised pass: %s",
                      pass, l->name, rt_error_message());
    return st;
}

rt_status rt_model_forward(rt_model *m, const rt_nn_ctx *ctx, const float *x, int n,
                           const float **out)
{
    if (out)
        *out = NULL;
    if (m->planned)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_forward: the model was only planned "
                        "(rt_model_plan); build it with rt_model_create");
    if (!x || n < 1 || n > m->max_batch)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_forward: batch of %d samples (model "
                        "built for 1..%d)", n, m->max_batch);
    if (!ctx)
        ctx = &eval_ctx;
    m->last_n = 0;
    RT_CHECK(m->be->upload(m->act[0], x, (size_t)n * rt_shape_size(m->in) * sizeof *x));
    for (int i = 0; i < m->num_layers; i++) {
        rt_layer *l = m->layers[i];
        rt_status st = rt_layer_forward(l, ctx, m->act[i + 1], m->act[i], n);
        if (st != RT_OK)
            return layer_failed(ctx, l, "forward", st);
    }
    m->last_n = n;
    if (out)
        *out = m->act[m->num_layers];
    return RT_OK;
}

/* The backward hook, timed when the context times the layers. */
static void run_hook(rt_model *m, const rt_nn_ctx *ctx, int layer)
{
    if (!ctx->times) {
        m->hook(m->hook_arg, layer);
        return;
    }
    double start = rt_time_now();
    m->hook(m->hook_arg, layer);
    ctx->times->hook_seconds += rt_time_now() - start;
    ctx->times->hook_calls++;
}

rt_status rt_model_backward(rt_model *m, const rt_nn_ctx *ctx, const float *dout, int n)
{
    if (n != m->last_n || n < 1)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_backward: batch of %d samples but the "
                        "last successful forward call had %d", n, m->last_n);
    if (!ctx)
        ctx = &eval_ctx;
    if (!dout)
        dout = m->out_grad;
    for (int i = m->num_layers - 1; i >= 0; i--) {
        rt_layer *l = m->layers[i];
        const float *dy = i == m->num_layers - 1 ? dout : m->grad_buf[(i + 1) & 1];
        /* The first trained layer computes no input gradient; those below
         * it, without parameters, are not run backward at all. */
        float *dx = i > m->first_trained ? m->grad_buf[i & 1] : NULL;
        rt_status st = i < m->first_trained
                       ? RT_OK : rt_layer_backward(l, ctx, dx, dy, m->act[i], m->act[i + 1], n);
        if (st != RT_OK)
            return layer_failed(ctx, l, "backward", st);
        if (m->hook)
            run_hook(m, ctx, i);
    }
    return RT_OK;
}

rt_status rt_model_zero_grad(rt_model *m)
{
    if (m->planned)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_zero_grad: the model was only planned "
                        "(rt_model_plan)");
    return m->be->fill(m->grads, 0.0f, m->num_params);
}

/* ---- accessors ---------------------------------------------------------------------- */

const rt_backend *rt_model_backend(const rt_model *m) { return m->be; }
rt_shape rt_model_input_shape(const rt_model *m) { return m->in; }
rt_shape rt_model_output_shape(const rt_model *m) { return m->out; }
int rt_model_max_batch(const rt_model *m) { return m->max_batch; }
size_t rt_model_num_params(const rt_model *m) { return m->num_params; }
size_t rt_model_num_buffers(const rt_model *m) { return m->num_buffers; }
float *rt_model_params(rt_model *m) { return m->params; }
float *rt_model_grads(rt_model *m) { return m->grads; }
float *rt_model_buffers(rt_model *m) { return m->buffers; }
float *rt_model_output_grad(rt_model *m) { return m->out_grad; }
int rt_model_num_tensors(const rt_model *m) { return m->num_tensors; }
int rt_model_num_layers(const rt_model *m) { return m->num_layers; }

/* For the loss (loss.c): the last output, the target buffer, the batch. */
const float *rt_model_last_output(const rt_model *m) { return m->act[m->num_layers]; }
void *rt_model_target_buffer(rt_model *m) { return m->targets; }
int rt_model_last_batch(const rt_model *m) { return m->last_n; }

const rt_tensor_info *rt_model_tensor(const rt_model *m, int i)
{
    return (i >= 0 && i < m->num_tensors) ? &m->tensors[i] : NULL;
}

const rt_tensor_info *rt_model_find_tensor(const rt_model *m, const char *name)
{
    for (int i = 0; name && i < m->num_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0)
            return &m->tensors[i];
    return NULL;
}

rt_layer *rt_model_layer(rt_model *m, int i)
{
    return (i >= 0 && i < m->num_layers) ? m->layers[i] : NULL;
}

size_t rt_model_layer_param_offset(const rt_model *m, int i)
{
    if (i < 0)
        return 0;
    return i < m->num_layers ? m->param_off[i] : m->num_params;
}

void rt_model_set_backward_hook(rt_model *m, void (*hook)(void *arg, int layer), void *arg)
{
    m->hook = hook;
    m->hook_arg = arg;
}

/* The layout from the tensor table ("<layer>.weight", "<layer>.bias"), so
 * that it also works on a planned model. */
int rt_model_linear_layout(const rt_model *m, int i, rt_linear_layout *out)
{
    if (i < 0 || i >= m->num_layers || !rt_linear_is(m->layers[i]))
        return 0;
    const rt_layer *l = m->layers[i];
    char name[RT_NAME_MAX];
    if (rt_nn_join_name(name, l->name, "weight") != RT_OK) {
        rt_error_clear();
        return 0;
    }
    const rt_tensor_info *w = rt_model_find_tensor(m, name), *b = NULL;
    if (rt_nn_join_name(name, l->name, "bias") == RT_OK)
        b = rt_model_find_tensor(m, name);
    else
        rt_error_clear();
    if (!w || w->ndim != 2)
        return 0;
    *out = (rt_linear_layout){.out = w->shape[0], .in = w->shape[1], .weight = w->offset,
                              .bias = b ? b->offset : 0, .has_bias = b != NULL};
    return 1;
}

/* The linear layers' hooks hand the caller pointers into the model's
 * memory, which it reads and writes directly. */
static rt_status linear_hooks_need_host(const rt_model *m, const char *what,
                                        const char *instead)
{
    if (m->be->flags & RT_BACKEND_HOST_MEMORY)
        return RT_OK;
    return RT_ERROR(RT_ERR_UNSUPPORTED, "%s need a host-memory backend, and '%s' keeps "
                    "tensors in device memory: build the model on the cpu or naive backend, "
                    "or %s", what, m->be->name, instead);
}

rt_status rt_model_defer_linear_grads(rt_model *m, rt_linear_grad_saver save, void *arg)
{
    if (save)
        RT_CHECK(linear_hooks_need_host(m, "deferred linear gradients",
                                        "leave the weight gradients to the backward"));
    for (int i = 0; i < m->num_layers; i++)
        if (rt_linear_is(m->layers[i]))
            rt_linear_defer(m->layers[i], save, arg, i);
    return RT_OK;
}

rt_status rt_model_set_linear_forward(rt_model *m, rt_linear_forward_fn forward, void *arg)
{
    if (forward)
        RT_CHECK(linear_hooks_need_host(m, "a caller's linear forward and its pointers",
                                        "leave the forward to the backend"));
    for (int i = 0; i < m->num_layers; i++)
        if (rt_linear_is(m->layers[i]))
            rt_linear_set_forward(m->layers[i], forward, arg, i);
    return RT_OK;
}

rt_status rt_layer_times_create(rt_layer_times **out, const rt_model *m)
{
    *out = NULL;
    rt_layer_times *t;
    RT_CHECK(rt_alloc(&t, 1, sizeof *t, "layer times"));
    rt_status st = rt_alloc(&t->rows, (size_t)m->num_all_layers, sizeof *t->rows,
                            "layer times");
    if (st != RT_OK) {
        rt_free(t);
        return st;
    }
    t->count = m->num_all_layers;
    for (int i = 0; i < t->count; i++)
        t->rows[i].layer = m->all_layers[i];
    *out = t;
    return RT_OK;
}

void rt_layer_times_free(rt_layer_times *t)
{
    if (t)
        rt_free(t->rows);
    rt_free(t);
}

/* The width of the summary's name column: the longest top-level name. */
static int summary_name_width(const rt_model *m)
{
    int width = 16;
    for (int i = 0; i < m->num_layers; i++)
        if ((int)strlen(m->layers[i]->name) > width)
            width = (int)strlen(m->layers[i]->name);
    return width;
}

/* Row i of the summary table (-1: the header; num_layers: the totals). */
static void summary_row(const rt_model *m, int i, int width, char *line, size_t size)
{
    if (i < 0) {
        snprintf(line, size, "%-*s %-12s %-18s %12s", width, "layer", "type", "output",
                 "params");
        return;
    }
    if (i == m->num_layers) {
        snprintf(line, size, "input [%d, %d, %d]; %zu parameters, %zu buffer values, %d "
                 "tensors; backend %s", m->in.c, m->in.h, m->in.w, m->num_params,
                 m->num_buffers, m->num_tensors, m->be->name);
        return;
    }
    const rt_layer *l = m->layers[i];
    char shape[48];
    snprintf(shape, sizeof shape, "[%d, %d, %d]", l->out_shape.c, l->out_shape.h,
             l->out_shape.w);
    size_t count = rt_model_layer_param_offset(m, i + 1) - m->param_off[i];
    snprintf(line, size, "%-*s %-12s %-18s %12zu", width, l->name, l->ops->type, shape, count);
}

void rt_model_print_summary(const rt_model *m)
{
    char line[512];
    int width = summary_name_width(m);
    for (int i = -1; i <= m->num_layers; i++) {
        summary_row(m, i, width, line, sizeof line);
        rt_info("%s", line);
    }
}

void rt_model_write_summary(const rt_model *m, FILE *f)
{
    char line[512];
    int width = summary_name_width(m);
    for (int i = -1; i <= m->num_layers; i++) {
        summary_row(m, i, width, line, sizeof line);
        fprintf(f, "  %s\n", line);
    }
}
