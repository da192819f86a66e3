/* The layer-type table: rt_layer_type -> the type's rt_layer_kind (name,
 * operations, constructor, config fields, PyTorch's defaults; each defined
 * in the type's own file), creation and destruction of single layers, and
 * the calls into a layer (timed for a profile when the context asks). */
#include <stdio.h>
#include <string.h>
#include "nn/layers.h"

/* The built-in types, indexed by rt_layer_type; each entry lives in the
 * type's own file. */
static const rt_layer_kind *const kinds[RT_LAYER_TYPE_COUNT] = {
    [RT_LAYER_LINEAR] = &rt_linear_kind,
    [RT_LAYER_CONV2D] = &rt_conv2d_kind,
    [RT_LAYER_BATCHNORM2D] = &rt_batchnorm2d_kind,
    [RT_LAYER_RELU] = &rt_relu_kind,
    [RT_LAYER_MAXPOOL2D] = &rt_maxpool2d_kind,
    [RT_LAYER_AVGPOOL] = &rt_avgpool_kind,
    [RT_LAYER_FLATTEN] = &rt_flatten_kind,
    [RT_LAYER_DROPOUT] = &rt_dropout_kind,
    [RT_LAYER_BASICBLOCK] = &rt_basicblock_kind,
};

static const rt_layer_kind *kind_of(int t)
{
    return t >= 0 && t < RT_LAYER_TYPE_COUNT ? kinds[t] : NULL;
}

const char *rt_layer_type_name(rt_layer_type t)
{
    return kind_of(t) ? kind_of(t)->name : "unknown";
}

int rt_layer_type_from_name(const char *name)
{
    for (int t = 0; name && t < RT_LAYER_TYPE_COUNT; t++)
        if (strcmp(kinds[t]->name, name) == 0)
            return t;
    return -1;
}

unsigned rt_layer_type_fields(rt_layer_type t) { return kind_of(t) ? kind_of(t)->fields : 0; }

unsigned rt_layer_type_required(rt_layer_type t)
{
    return kind_of(t) ? kind_of(t)->required : 0;
}

void rt_layer_spec_default(rt_layer_spec *s, rt_layer_type type)
{
    memset(s, 0, sizeof *s);
    if (kind_of(type))
        *s = kind_of(type)->defaults;
    s->type = type;
}

rt_status rt_nn_join_name(char *out, const char *prefix, const char *suffix)
{
    int len = prefix[0] ? snprintf(out, RT_NAME_MAX, "%s.%s", prefix, suffix)
                        : snprintf(out, RT_NAME_MAX, "%s", suffix);
    if (len < 0 || len >= RT_NAME_MAX)
        return RT_ERROR(RT_ERR_CONFIG, "name '%s.%s' is longer than %d characters; "
                        "use shorter layer names", prefix, suffix, RT_NAME_MAX - 1);
    return RT_OK;
}

rt_status rt_layer_create(rt_layer **out, const rt_layer_spec *spec, const char *name)
{
    *out = NULL;
    if (!spec || spec->type < 0 || spec->type >= RT_LAYER_TYPE_COUNT)
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s': unknown layer type %d", name ? name : "",
                        spec ? (int)spec->type : -1);
    if (!name || strlen(name) >= RT_NAME_MAX)
        return RT_ERROR(RT_ERR_CONFIG, "layer name missing or longer than %d characters",
                        RT_NAME_MAX - 1);
    rt_layer *l;
    RT_CHECK(rt_alloc(&l, 1, sizeof *l, "layer"));
    const rt_layer_kind *k = kinds[spec->type];
    l->ops = k->ops;
    strcpy(l->name, name);
    rt_status s = k->init(l, spec);
    if (s != RT_OK) {
        rt_error_trace(__FILE__, __LINE__, "layer init");
        rt_layer_free(l);
        return s;
    }
    *out = l;
    return RT_OK;
}

void rt_layer_free(rt_layer *l)
{
    if (!l)
        return;
    if (l->ops && l->ops->destroy)
        l->ops->destroy(l);
    else
        rt_free(l->impl);
    rt_free(l);
}

void rt_layer_set_conv_init(rt_layer *l, rt_init init)
{
    for (int t = 0; t < RT_LAYER_TYPE_COUNT; t++)
        if (kinds[t]->ops == l->ops && kinds[t]->set_conv_init)
            kinds[t]->set_conv_init(l, init);
}

/* ---- calls, timed when ctx->times is set ---------------------------------------- */

/* Seconds spent in the timed calls nested inside the one being timed on
 * this thread (a composite's children), which its own row leaves out. */
static _Thread_local double nested_seconds;

typedef struct timed_call { double start, outer; } timed_call;

static timed_call time_begin(void)
{
    timed_call c = {rt_time_now(), nested_seconds};
    nested_seconds = 0.0;
    return c;
}

/* Ends the call begun as c, whose outcome is st: a device backend is
 * waited for first, so that the time is this layer's work. */
static rt_status time_end(rt_layer *l, const rt_nn_ctx *ctx, int pass, timed_call c,
                          rt_status st)
{
    if (st == RT_OK && !(l->backend->flags & RT_BACKEND_HOST_MEMORY))
        st = l->backend->synchronize();
    double took = rt_time_now() - c.start;
    rt_layer_times *t = ctx->times;
    if (l->index >= 0 && l->index < t->count && t->rows[l->index].layer == l) {
        t->rows[l->index].seconds[pass] += took - nested_seconds;
        t->rows[l->index].calls[pass]++;
    }
    nested_seconds = c.outer + took;
    return st;
}

rt_status rt_layer_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out, const float *in,
                           int n)
{
    if (!ctx->times)
        return l->ops->forward(l, ctx, out, in, n);
    timed_call c = time_begin();
    rt_status st = l->ops->forward(l, ctx, out, in, n);
    return time_end(l, ctx, RT_PASS_FORWARD, c, st);
}

rt_status rt_layer_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din, const float *dout,
                            const float *in, const float *out, int n)
{
    if (!ctx->times)
        return l->ops->backward(l, ctx, din, dout, in, out, n);
    timed_call c = time_begin();
    rt_status st = l->ops->backward(l, ctx, din, dout, in, out, n);
    return time_end(l, ctx, RT_PASS_BACKWARD, c, st);
}
