/* nn.Flatten: [c, h, w] -> [c*h*w, 1, 1]. NCHW is already contiguous per
 * sample, so forward and backward are copies (the model keeps one
 * activation buffer per layer, so the output cannot alias the input). */
#include <string.h>
#include "nn/layers.h"

rt_status rt_flatten_init(rt_layer *l, const rt_layer_spec *spec)
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

static void flatten_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out, const float *in,
                            int n)
{
    memcpy(out, in, (size_t)n * rt_shape_size(l->in_shape) * sizeof *in);
}

static void flatten_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din, const float *dout,
                             const float *in, const float *out, int n)
{
    if (din)
        memcpy(din, dout, (size_t)n * rt_shape_size(l->in_shape) * sizeof *dout);
}

const rt_layer_ops rt_flatten_ops = {"flatten", flatten_build, flatten_forward,
                                     flatten_backward, NULL};
