/* nn.AdaptiveAvgPool2d((1, 1)): the mean of each channel plane; output
 * [c, 1, 1]. */
#include "kernels/cpu/kernels.h"
#include "nn/layers.h"

rt_status rt_avgpool_init(rt_layer *l, const rt_layer_spec *spec)
{
    l->impl = NULL;
    return RT_OK;
}

static rt_status avgpool_build(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    *out = (rt_shape){in.c, 1, 1};
    return RT_OK;
}

static void avgpool_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out, const float *in,
                            int n)
{
    rt_shape s = l->in_shape;
    rt_global_avgpool_forward(out, in, n, s.c, s.h * s.w);
}

static void avgpool_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din, const float *dout,
                             const float *in, const float *out, int n)
{
    rt_shape s = l->in_shape;
    if (din)
        rt_global_avgpool_backward(din, dout, n, s.c, s.h * s.w);
}

const rt_layer_ops rt_avgpool_ops = {"avgpool", avgpool_build, avgpool_forward,
                                     avgpool_backward, NULL};
