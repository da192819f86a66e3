/* nn.Flatten: [c, h, w] -> [c*h*w, 1, 1]. NCHW is already contiguous per
 * sample, so forward and backward are copies (the model keeps one
 * activation buffer per layer, so the output cannot alias the input). */
#include "nn/layers.h"

static rt_status flatten_init(rt_layer *l, const rt_layer_spec *spec)
{
    l->impl = NULL;
    return RT_OK;
}

static rt_status flatten_build(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    size_t size = rt_shape_size(in);
    if (size > (1u << 30))
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (flatten): %zu features is too many",
                        l->name, size);
    *out = (rt_shape){(int)size, 1, 1};
    return RT_OK;
}

static rt_status flatten_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out,
                                 const float *in, int n)
{
    return l->backend->copy(out, in, (size_t)n * rt_shape_size(l->in_shape) * sizeof *in);
}

static rt_status flatten_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din,
                                  const float *dout, const float *in, const float *out, int n)
{
    if (!din)
        return RT_OK;
    return l->backend->copy(din, dout, (size_t)n * rt_shape_size(l->in_shape) * sizeof *dout);
}

static const rt_layer_ops flatten_ops = {
    .version = RT_LAYER_OPS_VERSION, .flags = RT_LAYER_ANY_BACKEND, .type = "flatten",
    .build = flatten_build, .forward = flatten_forward, .backward = flatten_backward,
};

/* nn.Flatten() */
const rt_layer_kind rt_flatten_kind = {
    .name = "flatten", .ops = &flatten_ops, .init = flatten_init, .set_conv_init = NULL,
    .fields = 0,
    .required = 0,
    .defaults = RT_LAYER_TORCH_DEFAULTS(1),
};
