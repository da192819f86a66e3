/* The sequential model: top-level layers from the architecture (arch.c),
 * built through one rt_builder, with one parameter slab, one gradient
 * slab, one buffer slab, one saved-memory arena and one scratch area.
 *
 * Activations: act[0] is a copy of the input (so the caller may reuse its
 * batch buffer between forward and backward) and act[i + 1] is the output
 * of top-level layer i, each [max_batch][shape], kept for backward.
 * Input gradients ping-pong between two buffers as large as the largest
 * layer input; layer 0 gets din = NULL because nobody needs d(loss)/d(x). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu/parallel.h"
#include "nn/builder.h"
#include "nn/custom.h"

#define MAX_BATCH_LIMIT (1 << 20)
#define MAX_SAMPLE_FLOATS ((size_t)1 << 30)

struct rt_model {
    rt_model_spec spec;
    rt_shape in, out;
    int max_batch;
    rt_layer **layers;
    int num_layers;
    size_t *param_off;          /* [num_layers]: first parameter of layer i */
    float *params, *grads, *buffers, *arena, *scratch;
    size_t num_params, num_buffers;
    rt_tensor_info *tensors;    /* parameters (slab order), then buffers */
    int num_tensors;
    float *act_slab;
    float **act;                /* [num_layers + 1] */
    float *grad_slab;
    float *grad_buf[2];         /* [max_batch][largest layer input] each */
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

static rt_status alloc_activations(rt_model *m)
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
    RT_CHECK(rt_alloc(&m->act, (size_t)m->num_layers + 1, sizeof *m->act, "activation table"));
    RT_CHECK(rt_alloc(&m->act_slab, total * mb, sizeof(float), "activations"));
    RT_CHECK(rt_alloc(&m->grad_slab, 2 * align16(grad_max * mb), sizeof(float),
                      "activation gradients"));
    m->grad_buf[0] = m->grad_slab;
    m->grad_buf[1] = m->grad_slab + align16(grad_max * mb);
    float *p = m->act_slab;
    m->act[0] = p;
    p += align16(rt_shape_size(m->in)) * mb;
    for (int i = 0; i < m->num_layers; i++) {
        m->act[i + 1] = p;
        p += align16(rt_shape_size(m->layers[i]->out_shape)) * mb;
    }
    return RT_OK;
}

static rt_status create_model(rt_model *m, rt_builder *b, uint64_t seed)
{
    if (!m->layers)   /* custom models (custom.c) come with their layers */
        RT_CHECK(rt_arch_layers(&m->spec, m->in, &m->layers, &m->num_layers));
    RT_CHECK(build_layers(m, b));
    m->num_params = b->param_floats;
    m->num_buffers = b->buffer_floats;
    RT_CHECK(rt_alloc(&m->params, m->num_params, sizeof(float), "parameter slab"));
    RT_CHECK(rt_alloc(&m->grads, m->num_params, sizeof(float), "gradient slab"));
    RT_CHECK(rt_alloc(&m->buffers, m->num_buffers, sizeof(float), "buffer slab"));
    RT_CHECK(rt_alloc(&m->arena, b->arena_floats, sizeof(float), "saved-state arena"));
    RT_CHECK(rt_alloc(&m->scratch, b->scratch_floats, sizeof(float), "scratch area"));
    RT_CHECK(collect_tensors(m, b));
    RT_CHECK(alloc_activations(m));
    rt_builder_fill(b, m->params, m->grads, m->buffers, m->arena, m->scratch, seed);
    return RT_OK;
}

rt_status rt_model_create(rt_model **out, const rt_model_spec *spec, rt_shape in,
                          int max_batch, uint64_t seed)
{
    *out = NULL;
    RT_CHECK(check_input(in, max_batch));
    rt_model *m;
    RT_CHECK(rt_alloc(&m, 1, sizeof *m, "model"));
    m->spec = *spec;
    m->in = in;
    m->max_batch = max_batch;
    rt_builder b;
    rt_builder_init(&b, max_batch);
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

void rt_model_free(rt_model *m)
{
    if (!m)
        return;
    for (int i = 0; m->layers && i < m->num_layers; i++)
        rt_layer_free(m->layers[i]);
    rt_free(m->layers);
    rt_free(m->param_off);
    rt_free(m->params);
    rt_free(m->grads);
    rt_free(m->buffers);
    rt_free(m->arena);
    rt_free(m->scratch);
    rt_free(m->tensors);
    rt_free(m->act);
    rt_free(m->act_slab);
    rt_free(m->grad_slab);
    rt_free(m);
}

/* A NULL context means evaluation: running statistics, no dropout. */
static const rt_nn_ctx eval_ctx = {0, 0, NULL};

const float *rt_model_forward(rt_model *m, const rt_nn_ctx *ctx, const float *x, int n)
{
    if (!x || n < 1 || n > m->max_batch) {
        RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_forward: batch of %d samples (model built "
                 "for 1..%d)", n, m->max_batch);
        return NULL;
    }
    if (!ctx)
        ctx = &eval_ctx;
    memcpy(m->act[0], x, (size_t)n * rt_shape_size(m->in) * sizeof *x);
    for (int i = 0; i < m->num_layers; i++) {
        rt_layer *l = m->layers[i];
        l->ops->forward(l, ctx, m->act[i + 1], m->act[i], n);
    }
    m->last_n = n;
    return m->act[m->num_layers];
}

void rt_model_backward(rt_model *m, const rt_nn_ctx *ctx, const float *dout, int n)
{
    if (n != m->last_n || !dout) {
        /* No status to return here: a mismatch is a caller bug, and silently
         * back-propagating through the wrong activations would be worse. */
        rt_log(RT_LOG_ERROR, "rt_model_backward: batch of %d samples but the last forward "
               "call had %d; gradients not computed", n, m->last_n);
        return;
    }
    if (!ctx)
        ctx = &eval_ctx;
    for (int i = m->num_layers - 1; i >= 0; i--) {
        rt_layer *l = m->layers[i];
        const float *dy = i == m->num_layers - 1 ? dout : m->grad_buf[(i + 1) & 1];
        float *dx = i == 0 ? NULL : m->grad_buf[i & 1];
        l->ops->backward(l, ctx, dx, dy, m->act[i], m->act[i + 1], n);
        if (m->hook)
            m->hook(m->hook_arg, i);
    }
}

/* The slab is 44 MB for ResNet18: the kernels' threads clear a part each. */
static void zero_piece(void *arg, size_t lo, size_t hi)
{
    memset((float *)arg + lo, 0, (hi - lo) * sizeof(float));
}

void rt_model_zero_grad(rt_model *m)
{
    rt_par_for(m->num_params, rt_par_threads(m->num_params, RT_PAR_MIN_FLOATS), zero_piece,
               m->grads);
}

rt_shape rt_model_input_shape(const rt_model *m) { return m->in; }
rt_shape rt_model_output_shape(const rt_model *m) { return m->out; }
int rt_model_max_batch(const rt_model *m) { return m->max_batch; }
size_t rt_model_num_params(const rt_model *m) { return m->num_params; }
size_t rt_model_num_buffers(const rt_model *m) { return m->num_buffers; }
float *rt_model_params(rt_model *m) { return m->params; }
float *rt_model_grads(rt_model *m) { return m->grads; }
float *rt_model_buffers(rt_model *m) { return m->buffers; }
int rt_model_num_tensors(const rt_model *m) { return m->num_tensors; }
int rt_model_num_layers(const rt_model *m) { return m->num_layers; }

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

void rt_model_print_summary(const rt_model *m)
{
    rt_info("%-16s %-12s %-18s %12s", "layer", "type", "output", "params");
    for (int i = 0; i < m->num_layers; i++) {
        const rt_layer *l = m->layers[i];
        char shape[48];
        snprintf(shape, sizeof shape, "[%d, %d, %d]", l->out_shape.c, l->out_shape.h,
                 l->out_shape.w);
        size_t count = rt_model_layer_param_offset(m, i + 1) - m->param_off[i];
        rt_info("%-16s %-12s %-18s %12zu", l->name, l->ops->type, shape, count);
    }
    rt_info("input [%d, %d, %d]; %zu parameters, %zu buffer values, %d tensors", m->in.c,
            m->in.h, m->in.w, m->num_params, m->num_buffers, m->num_tensors);
}

/* A model of the caller's own top-level layers (src/nn/custom.c checks them
 * first); it owns them from here on, also when it fails. */
rt_status rt_model_create_custom(rt_model **out, rt_layer **layers, int n, rt_shape in,
                                 int max_batch, uint64_t seed)
{
    *out = NULL;
    rt_model *m = NULL;
    rt_status s = check_input(in, max_batch);
    if (s == RT_OK)
        s = rt_alloc(&m, 1, sizeof *m, "model");
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
    m->in = in;
    m->max_batch = max_batch;
    rt_builder b;
    rt_builder_init(&b, max_batch);
    s = create_model(m, &b, seed);
    rt_builder_release(&b);
    if (s != RT_OK) {
        rt_error_trace(__FILE__, __LINE__, "create_model");
        rt_model_free(m);
        return s;
    }
    *out = m;
    return RT_OK;
}
