/* nn.ReLU: y = max(x, 0); the gradient passes where the output is positive. */
#include "nn/layers.h"

static rt_status relu_init(rt_layer *l, const rt_layer_spec *spec)
{
    l->impl = NULL;
    return RT_OK;
}

static rt_status relu_build(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    *out = in;
    return RT_OK;
}

static rt_status relu_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out, const float *in,
                              int n)
{
    return l->backend->relu_forward(out, in, (size_t)n * rt_shape_size(l->in_shape));
}

static rt_status relu_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din, const float *dout,
                               const float *in, const float *out, int n)
{
    if (!din)
        return RT_OK;
    return l->backend->relu_backward(din, dout, out, (size_t)n * rt_shape_size(l->in_shape));
}

static const rt_layer_ops relu_ops = {
    .version = RT_LAYER_OPS_VERSION, .flags = RT_LAYER_ANY_BACKEND, .type = "relu",
    .build = relu_build, .forward = relu_forward, .backward = relu_backward,
};

/* nn.ReLU() */
const rt_layer_kind rt_relu_kind = {
    .name = "relu", .ops = &relu_ops, .init = relu_init, .set_conv_init = NULL,
    .fields = 0,
    .required = 0,
    .defaults = RT_LAYER_TORCH_DEFAULTS(1),
};
