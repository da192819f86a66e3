/* nn.Linear: y[n][out] = x[n][in] . W^T + b. An input of shape [c, h, w]
 * is read as c*h*w features (as if flattened), so a Flatten layer before
 * a Linear is optional. Parameters "weight" [out][in] and "bias" [out],
 * both U(-1/sqrt(in), 1/sqrt(in)) as PyTorch initialises them. */
#include <limits.h>
#include "nn/layers.h"

typedef struct linear_impl {
    int out_features, bias;
    int in_features;
    float *w, *b, *dw, *db;   /* w[out][in], b[out] */
    /* rt_linear_defer: weight gradients left to the caller */
    rt_linear_grad_saver save;
    void *save_arg;
    /* rt_linear_set_forward: the forward's product left to the caller */
    rt_linear_forward_fn forward;
    void *forward_arg;
    int layer;   /* top-level index, for both */
} linear_impl;

static rt_status linear_init(rt_layer *l, const rt_layer_spec *spec)
{
    if (spec->out < 1)
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (linear): out features must be >= 1, "
                        "got %d", l->name, spec->out);
    linear_impl *p;
    RT_CHECK(rt_alloc(&p, 1, sizeof *p, "linear layer"));
    p->out_features = spec->out;
    p->bias = spec->bias != 0;
    l->impl = p;
    return RT_OK;
}

static rt_status linear_build(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    linear_impl *p = l->impl;
    size_t features = rt_shape_size(in);
    if (features > INT_MAX)
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (linear): %zu input features is too many",
                        l->name, features);
    p->in_features = (int)features;
    int wshape[2] = {p->out_features, p->in_features};
    RT_CHECK(rt_builder_param(b, l, "weight", 2, wshape, RT_INIT_UNIFORM_FAN_IN,
                              p->in_features, &p->w, &p->dw));
    if (p->bias)
        RT_CHECK(rt_builder_param(b, l, "bias", 1, &p->out_features, RT_INIT_UNIFORM_FAN_IN,
                                  p->in_features, &p->b, &p->db));
    *out = (rt_shape){p->out_features, 1, 1};
    return RT_OK;
}

static rt_status linear_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out, const float *in,
                                int n)
{
    linear_impl *p = l->impl;
    if (p->forward)
        return p->forward(p->forward_arg, p->layer, out, in, p->w, p->b, n, p->in_features,
                          p->out_features);
    return l->backend->linear_forward(out, in, p->w, p->b, n, p->in_features, p->out_features);
}

static rt_status linear_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din,
                                 const float *dout, const float *in, const float *out, int n)
{
    linear_impl *p = l->impl;
    if (p->save) {   /* deferred: hand dy and x over, compute the input gradient alone */
        p->save(p->save_arg, p->layer, dout, in, n);
        if (!din)
            return RT_OK;
        return l->backend->linear_backward(din, NULL, NULL, dout, NULL, p->w, n,
                                           p->in_features, p->out_features);
    }
    return l->backend->linear_backward(din, p->dw, p->db, dout, in, p->w, n, p->in_features,
                                       p->out_features);
}

static const rt_layer_ops linear_ops = {
    .version = RT_LAYER_OPS_VERSION, .flags = RT_LAYER_ANY_BACKEND, .type = "linear",
    .build = linear_build, .forward = linear_forward, .backward = linear_backward,
};

int rt_linear_is(const rt_layer *l) { return l->ops == &linear_ops; }

void rt_linear_defer(rt_layer *l, rt_linear_grad_saver save, void *arg, int layer)
{
    linear_impl *p = l->impl;
    p->save = save;
    p->save_arg = arg;
    p->layer = layer;
}

void rt_linear_set_forward(rt_layer *l, rt_linear_forward_fn forward, void *arg, int layer)
{
    linear_impl *p = l->impl;
    p->forward = forward;
    p->forward_arg = arg;
    p->layer = layer;
}

/* nn.Linear(in, out, bias=True) */
const rt_layer_kind rt_linear_kind = {
    .name = "linear", .ops = &linear_ops, .init = linear_init, .set_conv_init = NULL,
    .fields = RT_LAYER_FIELD_OUT | RT_LAYER_FIELD_BIAS,
    .required = RT_LAYER_FIELD_OUT,
    .defaults = RT_LAYER_TORCH_DEFAULTS(1),
};
