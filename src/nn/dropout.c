/* nn.Dropout: in training, zero each element with probability p and scale
 * the rest by 1/(1-p); in evaluation, the identity. The mask comes from
 * the counter-based stream rt_rng_key(ctx->rng_key, layer serial, 0, 0):
 * the step's key mixed with this layer's build index, so two dropout
 * layers never share a mask and a step can be replayed exactly. The mask
 * is saved for backward. */
#include "nn/layers.h"

typedef struct dropout_impl {
    float p;
    int serial;     /* build index of this layer within the model */
    int train;      /* mode of the last forward call */
    float *mask;    /* [max_batch][in] */
} dropout_impl;

static rt_status dropout_init(rt_layer *l, const rt_layer_spec *spec)
{
    if (!(spec->p >= 0.0f && spec->p <= 1.0f))
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (dropout): probability p must be in "
                        "[0, 1], got %g", l->name, (double)spec->p);
    dropout_impl *p;
    RT_CHECK(rt_alloc(&p, 1, sizeof *p, "dropout layer"));
    p->p = spec->p;
    l->impl = p;
    return RT_OK;
}

static rt_status dropout_build(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    dropout_impl *p = l->impl;
    p->serial = rt_builder_layer_serial(b);
    RT_CHECK(rt_builder_saved(b, rt_shape_size(in), &p->mask));
    *out = in;
    return RT_OK;
}

static rt_status dropout_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out,
                                 const float *in, int n)
{
    dropout_impl *p = l->impl;
    size_t count = (size_t)n * rt_shape_size(l->in_shape);
    p->train = ctx->train;
    if (!ctx->train)
        return l->backend->copy(out, in, count * sizeof *in);
    return l->backend->dropout_forward(out, p->mask, in, count, p->p,
                                       rt_rng_key(ctx->rng_key, (uint64_t)p->serial, 0, 0));
}

static rt_status dropout_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din,
                                  const float *dout, const float *in, const float *out, int n)
{
    dropout_impl *p = l->impl;
    size_t count = (size_t)n * rt_shape_size(l->in_shape);
    if (!din)
        return RT_OK;
    if (!p->train)
        return l->backend->copy(din, dout, count * sizeof *dout);
    return l->backend->dropout_backward(din, dout, p->mask, count);
}

static const rt_layer_ops dropout_ops = {
    .version = RT_LAYER_OPS_VERSION, .flags = RT_LAYER_ANY_BACKEND, .type = "dropout",
    .build = dropout_build, .forward = dropout_forward, .backward = dropout_backward,
};

/* nn.Dropout(p=0.5) */
const rt_layer_kind rt_dropout_kind = {
    .name = "dropout", .ops = &dropout_ops, .init = dropout_init, .set_conv_init = NULL,
    .fields = RT_LAYER_FIELD_P,
    .required = 0,
    .defaults = RT_LAYER_TORCH_DEFAULTS(1),
};
