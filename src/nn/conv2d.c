/* nn.Conv2d (groups 1, dilation 1, zero padding, square kernel): weight
 * [out][in][k][k] and optional bias [out]. PyTorch's default init is
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)); torchvision's ResNet switches the
 * weight to kaiming_normal(fan_out) through rt_conv2d_set_init. The
 * backend makes a plan for the layer's geometry when it is built; the
 * scratch the plan asks for (the CPU backend's im2col columns) lives in the
 * model's shared scratch area. (Keeping
 * forward's columns for backward instead was measured on ResNet18 at batch
 * 128: backward gained what forward lost writing 120 MB of columns to
 * memory, so it was not worth the memory.) */
#include "nn/layers.h"

typedef struct conv2d_impl {
    int out_channels, kernel, stride, padding, bias;
    rt_init init;            /* weight init; the bias is always uniform fan-in */
    rt_conv_geom g;
    rt_conv_plan *plan;      /* made in build by l->backend */
    float *w, *b, *dw, *db;
    float *scratch;
} conv2d_impl;

static rt_status conv2d_init(rt_layer *l, const rt_layer_spec *spec)
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
    size_t scratch = 0;
    RT_CHECK(l->backend->conv2d_plan(&p->plan, &p->g, rt_builder_max_batch(b), &scratch));
    RT_CHECK(rt_builder_scratch(b, scratch, &p->scratch));
    *out = (rt_shape){p->out_channels, p->g.oh, p->g.ow};
    return RT_OK;
}

static rt_status conv2d_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out, const float *in,
                                int n)
{
    conv2d_impl *p = l->impl;
    return l->backend->conv2d_forward(p->plan, out, in, p->w, p->b, p->scratch, n);
}

static rt_status conv2d_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din,
                                 const float *dout, const float *in, const float *out, int n)
{
    conv2d_impl *p = l->impl;
    return l->backend->conv2d_backward(p->plan, din, p->dw, p->db, dout, in, p->w, p->scratch,
                                       n);
}

static void conv2d_destroy(rt_layer *l)
{
    conv2d_impl *p = l->impl;
    if (p && p->plan)
        l->backend->conv2d_plan_free(p->plan);
    rt_free(p);
}

static const rt_layer_ops conv2d_ops = {
    .version = RT_LAYER_OPS_VERSION, .flags = RT_LAYER_ANY_BACKEND, .type = "conv2d",
    .build = conv2d_build, .forward = conv2d_forward, .backward = conv2d_backward,
    .destroy = conv2d_destroy,
};

/* nn.Conv2d(in, out, kernel, stride=1, padding=0, bias=True) */
const rt_layer_kind rt_conv2d_kind = {
    .name = "conv2d", .ops = &conv2d_ops, .init = conv2d_init, .set_conv_init = rt_conv2d_set_init,
    .fields = RT_LAYER_FIELD_OUT | RT_LAYER_FIELD_KERNEL | RT_LAYER_FIELD_STRIDE |
              RT_LAYER_FIELD_PADDING | RT_LAYER_FIELD_BIAS,
    .required = RT_LAYER_FIELD_OUT | RT_LAYER_FIELD_KERNEL,
    .defaults = RT_LAYER_TORCH_DEFAULTS(1),
};
