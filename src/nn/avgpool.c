/* nn.AdaptiveAvgPool2d((1, 1)): the mean of each channel plane; output
 * [c, 1, 1]. */
#include "nn/layers.h"

static rt_status avgpool_init(rt_layer *l, const rt_layer_spec *spec)
{
    l->impl = NULL;
    return RT_OK;
}

static rt_status avgpool_build(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    *out = (rt_shape){in.c, 1, 1};
    return RT_OK;
}

static rt_status avgpool_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out,
                                 const float *in, int n)
{
    rt_shape s = l->in_shape;
    return l->backend->global_avgpool_forward(out, in, n, s.c, s.h * s.w);
}

static rt_status avgpool_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din,
                                  const float *dout, const float *in, const float *out, int n)
{
    rt_shape s = l->in_shape;
    if (!din)
        return RT_OK;
    return l->backend->global_avgpool_backward(din, dout, n, s.c, s.h * s.w);
}

static const rt_layer_ops avgpool_ops = {
    .version = RT_LAYER_OPS_VERSION, .flags = RT_LAYER_ANY_BACKEND, .type = "avgpool",
    .build = avgpool_build, .forward = avgpool_forward, .backward = avgpool_backward,
};

/* nn.AdaptiveAvgPool2d((1, 1)) */
const rt_layer_kind rt_avgpool_kind = {
    .name = "avgpool", .ops = &avgpool_ops, .init = avgpool_init, .set_conv_init = NULL,
    .fields = 0,
    .required = 0,
    .defaults = RT_LAYER_TORCH_DEFAULTS(1),
};
