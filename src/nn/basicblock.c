/* torchvision's BasicBlock as one composite layer:
 *
 *   out = relu(bn2(conv2(relu(bn1(conv1(x))))) + identity)
 *   identity = x, or downsample(x) = bn(conv1x1 stride s (x)) when the stride
 *   is not 1 or the channel count changes.
 *
 * Children are real layers named "<block>.conv1", "<block>.bn1", "<block>.relu",
 * "<block>.conv2", "<block>.bn2", "<block>.downsample.0", "<block>.downsample.1"
 * and built in that (state_dict) order through rt_builder_child. The block's
 * internal activations and gradients live in saved storage: the children use
 * the shared scratch area during their own calls, so it cannot hold anything
 * across them. */
#include "nn/layers.h"

typedef struct block_impl {
    int planes, stride;
    float eps, momentum;
    rt_init conv_init;
    rt_layer *conv1, *bn1, *relu, *conv2, *bn2, *ds0, *ds1;   /* ds*: NULL if identity */
    size_t in_size, out_size;     /* floats per sample */
    /* Saved activations, [max_batch][out_size] each. a5 holds bn2's output
     * plus the identity (the pre-activation sum): BatchNorm's backward never
     * reads its output, so the sum can overwrite it in place. */
    float *a1, *a2, *a3, *a4, *a5, *d1, *d2;
    float *g_s, *g_b, *g_c;       /* gradients [max_batch][out_size] */
    float *g_in;                  /* downsample's input gradient [max_batch][in_size] */
} block_impl;

static rt_status basicblock_init(rt_layer *l, const rt_layer_spec *spec)
{
    if (spec->out < 1 || spec->stride < 1)
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (basicblock): need out >= 1 and stride >= "
                        "1; got out %d stride %d", l->name, spec->out, spec->stride);
    if (!(spec->eps > 0.0f) || !(spec->momentum >= 0.0f && spec->momentum <= 1.0f))
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (basicblock): need eps > 0 and momentum "
                        "in [0, 1]", l->name);
    block_impl *p;
    RT_CHECK(rt_alloc(&p, 1, sizeof *p, "basicblock layer"));
    p->planes = spec->out;
    p->stride = spec->stride;
    p->eps = spec->eps;
    p->momentum = spec->momentum;
    p->conv_init = RT_INIT_UNIFORM_FAN_IN;
    l->impl = p;
    return RT_OK;
}

void rt_basicblock_set_init(rt_layer *l, rt_init init)
{
    ((block_impl *)l->impl)->conv_init = init;
}

static void block_destroy(rt_layer *l)
{
    block_impl *p = l->impl;
    if (p) {
        rt_layer *children[] = {p->conv1, p->bn1, p->relu, p->conv2, p->bn2, p->ds0, p->ds1};
        for (size_t i = 0; i < sizeof children / sizeof children[0]; i++)
            rt_layer_free(children[i]);
    }
    rt_free(p);
}

/* Creates child "<block>.<suffix>" and builds it on input `in`. */
static rt_status add_child(rt_layer **child, rt_layer *l, rt_builder *b, const char *suffix,
                           const rt_layer_spec *spec, rt_shape in, rt_shape *out)
{
    block_impl *p = l->impl;
    char name[RT_NAME_MAX];
    RT_CHECK(rt_nn_join_name(name, l->name, suffix));
    RT_CHECK(rt_layer_create(child, spec, name));
    if (spec->type == RT_LAYER_CONV2D)
        rt_conv2d_set_init(*child, p->conv_init);
    RT_CHECK(rt_builder_child(b, *child, in, out));
    return RT_OK;
}

static rt_layer_spec conv_spec(int out, int kernel, int stride, int padding)
{
    rt_layer_spec s;
    rt_layer_spec_default(&s, RT_LAYER_CONV2D);
    s.out = out;
    s.kernel = kernel;
    s.stride = stride;
    s.padding = padding;
    s.bias = 0;
    return s;
}

static rt_status build_children(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    block_impl *p = l->impl;
    rt_layer_spec bn, relu, c1 = conv_spec(p->planes, 3, p->stride, 1),
                            c2 = conv_spec(p->planes, 3, 1, 1);
    rt_layer_spec_default(&bn, RT_LAYER_BATCHNORM2D);
    bn.eps = p->eps;
    bn.momentum = p->momentum;
    rt_layer_spec_default(&relu, RT_LAYER_RELU);
    rt_shape s, ds_out;
    RT_CHECK(add_child(&p->conv1, l, b, "conv1", &c1, in, &s));
    RT_CHECK(add_child(&p->bn1, l, b, "bn1", &bn, s, &s));
    RT_CHECK(add_child(&p->relu, l, b, "relu", &relu, s, &s));
    RT_CHECK(add_child(&p->conv2, l, b, "conv2", &c2, s, &s));
    RT_CHECK(add_child(&p->bn2, l, b, "bn2", &bn, s, &s));
    if (p->stride != 1 || in.c != p->planes) {
        rt_layer_spec d = conv_spec(p->planes, 1, p->stride, 0);
        RT_CHECK(add_child(&p->ds0, l, b, "downsample.0", &d, in, &ds_out));
        RT_CHECK(add_child(&p->ds1, l, b, "downsample.1", &bn, ds_out, &ds_out));
        if (ds_out.c != s.c || ds_out.h != s.h || ds_out.w != s.w)
            return RT_ERROR(RT_ERR_INTERNAL, "layer '%s' (basicblock): downsample output "
                            "[%d, %d, %d] differs from the main path's [%d, %d, %d]", l->name,
                            ds_out.c, ds_out.h, ds_out.w, s.c, s.h, s.w);
    }
    *out = s;
    return RT_OK;
}

static rt_status block_build(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    block_impl *p = l->impl;
    RT_CHECK(build_children(l, b, in, out));
    p->in_size = rt_shape_size(in);
    p->out_size = rt_shape_size(*out);
    float **outs[] = {&p->a1, &p->a2, &p->a3, &p->a4, &p->a5, &p->g_s, &p->g_b, &p->g_c};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
        RT_CHECK(rt_builder_saved(b, p->out_size, outs[i]));
    if (p->ds0) {
        RT_CHECK(rt_builder_saved(b, p->out_size, &p->d1));
        RT_CHECK(rt_builder_saved(b, p->out_size, &p->d2));
        RT_CHECK(rt_builder_saved(b, p->in_size, &p->g_in));
    }
    return RT_OK;
}

#define FWD(child, y, x) RT_CHECK(rt_layer_forward((child), ctx, (y), (x), n))
#define BWD(child, dx, dy, x, y) \
    RT_CHECK(rt_layer_backward((child), ctx, (dx), (dy), (x), (y), n))

static rt_status block_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out, const float *in,
                               int n)
{
    block_impl *p = l->impl;
    size_t count = (size_t)n * p->out_size;
    FWD(p->conv1, p->a1, in);
    FWD(p->bn1, p->a2, p->a1);
    FWD(p->relu, p->a3, p->a2);
    FWD(p->conv2, p->a4, p->a3);
    FWD(p->bn2, p->a5, p->a4);
    const float *identity = in;
    if (p->ds0) {
        FWD(p->ds0, p->d1, in);
        FWD(p->ds1, p->d2, p->d1);
        identity = p->d2;
    }
    RT_CHECK(l->backend->add(p->a5, identity, count));
    return l->backend->relu_forward(out, p->a5, count);
}

static rt_status block_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din,
                                const float *dout, const float *in, const float *out, int n)
{
    block_impl *p = l->impl;
    /* g_s = d(loss)/d(sum) flows into both branches; it must survive until
     * the identity branch has used it, so the main path uses g_b and g_c. */
    RT_CHECK(l->backend->relu_backward(p->g_s, dout, out, (size_t)n * p->out_size));
    if (p->ds0) {
        BWD(p->ds1, p->g_b, p->g_s, p->d1, p->d2);
        BWD(p->ds0, din ? p->g_in : NULL, p->g_b, in, p->d1);
    }
    BWD(p->bn2, p->g_b, p->g_s, p->a4, p->a5);
    BWD(p->conv2, p->g_c, p->g_b, p->a3, p->a4);
    BWD(p->relu, p->g_b, p->g_c, p->a2, p->a3);
    BWD(p->bn1, p->g_c, p->g_b, p->a1, p->a2);
    BWD(p->conv1, din, p->g_c, in, p->a1);
    if (!din)
        return RT_OK;
    return l->backend->add(din, p->ds0 ? p->g_in : p->g_s, (size_t)n * p->in_size);
}

static const rt_layer_ops basicblock_ops = {
    .version = RT_LAYER_OPS_VERSION, .flags = RT_LAYER_ANY_BACKEND, .type = "basicblock",
    .build = block_build, .forward = block_forward, .backward = block_backward,
    .destroy = block_destroy,
};

/* torchvision BasicBlock(in, out, stride=1): its BatchNorms with eps 1e-5, momentum 0.1 */
const rt_layer_kind rt_basicblock_kind = {
    .name = "basicblock", .ops = &basicblock_ops, .init = basicblock_init,
    .set_conv_init = rt_basicblock_set_init,
    .fields = RT_LAYER_FIELD_OUT | RT_LAYER_FIELD_STRIDE,
    .required = RT_LAYER_FIELD_OUT,
    .defaults = RT_LAYER_TORCH_DEFAULTS(1),
};
