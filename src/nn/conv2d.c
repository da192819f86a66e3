/* nn.Conv2d (groups 1, dilation 1, zero padding, square kernel): weight
 * [out][in][k][k] and optional bias [out]. PyTorch's default init is
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)); torchvision's ResNet switches the
 * weight to kaiming_normal(fan_out) through rt_conv2d_set_init. The
 * im2col columns live in the model's shared scratch area. (Keeping
 * forward's columns for backward instead was measured on ResNet18 at batch
 * 128: backward gained what forward lost writing 120 MB of columns to
 * memory, so it was not worth the memory.) */
#include "kernels/cpu/kernels.h"
#include "nn/layers.h"

typedef struct conv2d_impl {
    int out_channels, kernel, stride, padding, bias;
    rt_init init;            /* weight init; the bias is always uniform fan-in */
    rt_conv_geom g;
    float *w, *b, *dw, *db;
    float *scratch;
} conv2d_impl;

rt_status rt_conv2d_init(rt_layer *l, const rt_layer_spec *spec)
{
    if (spec->out < 1 || spec->kernel < 1 || spec->stride < 1 || spec->padding < 0)
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (conv2d): need out >= 1, kernel >= 1, "
                        "stride >= 1, padding >= 0; got out %d kernel %d stride %d padding %d",
                        l->name, spec->out, spec->kernel, spec->stride, spec->padding);
    conv2d_impl *p;
    RT_CHECK(rt_alloc(&p, 1, sizeof *p, "conv2d layer"));
    p->out_channels = spec->out;
    p->kernel = spec->kernel;
    p->stride = spec->stride;
    p->padding = spec->padding;
    p->bias = spec->bias != 0;
    p->init = RT_INIT_UNIFORM_FAN_IN;
    l->impl = p;
    return RT_OK;
}

void rt_conv2d_set_init(rt_layer *l, rt_init init)
{
    ((conv2d_impl *)l->impl)->init = init;
}

static rt_status conv2d_build(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    conv2d_impl *p = l->impl;
    if (!rt_conv_geom_init(&p->g, in.c, in.h, in.w, p->out_channels, p->kernel, p->kernel,
                           p->stride, p->padding))
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (conv2d): kernel %d with padding %d does "
                        "not fit the input [%d, %d, %d]; use a smaller kernel or more padding",
                        l->name, p->kernel, p->padding, in.c, in.h, in.w);
    if ((size_t)in.c * p->kernel * p->kernel > (1u << 30) ||
        (size_t)p->out_channels * p->kernel * p->kernel > (1u << 30))
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (conv2d): weight [%d, %d, %d, %d] is too "
                        "large", l->name, p->out_channels, in.c, p->kernel, p->kernel);
    int fan_in = in.c * p->kernel * p->kernel;
    int fan_out = p->out_channels * p->kernel * p->kernel;
    int wshape[4] = {p->out_channels, in.c, p->kernel, p->kernel};
    RT_CHECK(rt_builder_param(b, l, "weight", 4, wshape, p->init,
                              p->init == RT_INIT_KAIMING_NORMAL_FAN_OUT ? fan_out : fan_in,
                              &p->w, &p->dw));
    if (p->bias)
        RT_CHECK(rt_builder_param(b, l, "bias", 1, &p->out_channels, RT_INIT_UNIFORM_FAN_IN,
                                  fan_in, &p->b, &p->db));
    RT_CHECK(rt_builder_scratch(b, rt_conv2d_scratch_floats(&p->g, rt_builder_max_batch(b)),
                                &p->scratch));
    *out = (rt_shape){p->out_channels, p->g.oh, p->g.ow};
    return RT_OK;
}

static void conv2d_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out, const float *in,
                           int n)
{
    conv2d_impl *p = l->impl;
    rt_conv2d_forward(out, in, p->w, p->b, p->scratch, &p->g, n);
}

static void conv2d_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din, const float *dout,
                            const float *in, const float *out, int n)
{
    conv2d_impl *p = l->impl;
    rt_conv2d_backward(din, p->dw, p->db, dout, in, p->w, p->scratch, &p->g, n);
}

const rt_layer_ops rt_conv2d_ops = {"conv2d", conv2d_build, conv2d_forward, conv2d_backward,
                                    NULL};
