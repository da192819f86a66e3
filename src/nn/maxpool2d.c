/* nn.MaxPool2d (square window, dilation 1, floor mode). Stride 0 means
 * stride = kernel, as PyTorch's stride=None. Padding is at most half the
 * kernel (PyTorch's rule) and never wins the max. The argmax of each
 * window is saved for backward. */
#include <stdint.h>
#include "nn/layers.h"

typedef struct maxpool_impl {
    int kernel, stride, padding;
    rt_pool_geom g;
    /* [max_batch][c][oh][ow] int32 argmax indices, kept in float-sized slots
     * of the saved arena (the builder hands out float pointers). */
    float *argmax_slots;
} maxpool_impl;

_Static_assert(sizeof(int32_t) == sizeof(float), "argmax slots are float-sized");

static rt_status maxpool2d_init(rt_layer *l, const rt_layer_spec *spec)
{
    if (spec->kernel < 1 || spec->stride < 0 || spec->padding < 0 ||
        spec->padding > spec->kernel / 2)
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (maxpool2d): need kernel >= 1, stride >= 0 "
                        "(0: = kernel) and 0 <= padding <= kernel/2; got kernel %d stride %d "
                        "padding %d", l->name, spec->kernel, spec->stride, spec->padding);
    maxpool_impl *p;
    RT_CHECK(rt_alloc(&p, 1, sizeof *p, "maxpool2d layer"));
    p->kernel = spec->kernel;
    p->stride = spec->stride ? spec->stride : spec->kernel;
    p->padding = spec->padding;
    l->impl = p;
    return RT_OK;
}

static rt_status maxpool_build(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    maxpool_impl *p = l->impl;
    if (!rt_pool_geom_init(&p->g, in.c, in.h, in.w, p->kernel, p->stride, p->padding))
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (maxpool2d): kernel %d with padding %d does "
                        "not fit the input [%d, %d, %d]", l->name, p->kernel, p->padding,
                        in.c, in.h, in.w);
    *out = (rt_shape){in.c, p->g.oh, p->g.ow};
    RT_CHECK(rt_builder_saved(b, rt_shape_size(*out), &p->argmax_slots));
    return RT_OK;
}

static rt_status maxpool_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out,
                                 const float *in, int n)
{
    maxpool_impl *p = l->impl;
    return l->backend->maxpool2d_forward(out, (int32_t *)(void *)p->argmax_slots, in, &p->g, n);
}

static rt_status maxpool_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din,
                                  const float *dout, const float *in, const float *out, int n)
{
    maxpool_impl *p = l->impl;
    if (!din)
        return RT_OK;
    return l->backend->maxpool2d_backward(din, dout, (const int32_t *)(void *)p->argmax_slots,
                                          &p->g, n);
}

static const rt_layer_ops maxpool2d_ops = {
    .version = RT_LAYER_OPS_VERSION, .flags = RT_LAYER_ANY_BACKEND, .type = "maxpool2d",
    .build = maxpool_build, .forward = maxpool_forward, .backward = maxpool_backward,
};

/* nn.MaxPool2d(kernel, stride=None (0 here: = kernel), padding=0) */
const rt_layer_kind rt_maxpool2d_kind = {
    .name = "maxpool2d", .ops = &maxpool2d_ops, .init = maxpool2d_init, .set_conv_init = NULL,
    .fields = RT_LAYER_FIELD_KERNEL | RT_LAYER_FIELD_STRIDE | RT_LAYER_FIELD_PADDING,
    .required = RT_LAYER_FIELD_KERNEL,
    .defaults = RT_LAYER_TORCH_DEFAULTS(0),
};
