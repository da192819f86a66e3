/* nn.BatchNorm2d (affine, track_running_stats). Parameters "weight" (1)
 * and "bias" (0) [C]; buffers "running_mean" (0), "running_var" (1) [C]
 * and "num_batches_tracked" (a 0-dim tensor, stored as a float).
 *
 * Training: normalise with the batch's mean and biased variance; update
 * the running statistics with `momentum`, using the unbiased variance as
 * PyTorch does (the backend's bn_train_stats). Synchronised BatchNorm: when
 * ctx->sync_comm is set, the per-channel [sum, sumsq, count] of the forward
 * pass and [sum_dy, sum_dy_xhat] of the backward pass are summed across
 * its ranks, so every rank normalises with the statistics of the global
 * batch. Every rank must then
 * run the same layers in the same order (it does: same model, same step).
 * The weight/bias gradients stay local; DDP's gradient all-reduce combines
 * them like any other parameter's.
 * Evaluation: normalise with the running statistics (backward supported
 * too: a fixed affine map). */
#include "rtrain/comm.h"
#include "nn/layers.h"

typedef struct bn_impl {
    float eps, momentum;
    int c, hw;
    float *gamma, *beta, *dgamma, *dbeta;
    float *running_mean, *running_var, *num_batches;
    float *mean, *rstd;    /* [C] statistics used by the last forward call */
    float *stats;          /* [2C + 1] sum, sumsq, count (reduced across ranks) */
    float *dstats;         /* [2C] sum_dy, sum_dy_xhat (reduced across ranks) */
    float *zeros;          /* [2C] zero sums for the eval-mode backward */
    float *one;            /* [1] the count 1 of the eval-mode backward */
    int train;             /* mode of the last forward call */
} bn_impl;

static rt_status batchnorm2d_init(rt_layer *l, const rt_layer_spec *spec)
{
    if (!(spec->eps > 0.0f) || !(spec->momentum >= 0.0f && spec->momentum <= 1.0f))
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (batchnorm2d): need eps > 0 and momentum "
                        "in [0, 1]; got eps %g momentum %g", l->name, (double)spec->eps,
                        (double)spec->momentum);
    bn_impl *p;
    RT_CHECK(rt_alloc(&p, 1, sizeof *p, "batchnorm2d layer"));
    p->eps = spec->eps;
    p->momentum = spec->momentum;
    l->impl = p;
    return RT_OK;
}

static rt_status bn_build(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    bn_impl *p = l->impl;
    p->c = in.c;
    p->hw = in.h * in.w;
    RT_CHECK(rt_builder_param(b, l, "weight", 1, &p->c, RT_INIT_ONES, 0, &p->gamma,
                              &p->dgamma));
    RT_CHECK(rt_builder_param(b, l, "bias", 1, &p->c, RT_INIT_ZEROS, 0, &p->beta,
                              &p->dbeta));
    RT_CHECK(rt_builder_buffer(b, l, "running_mean", 1, &p->c, RT_INIT_ZEROS,
                               &p->running_mean));
    RT_CHECK(rt_builder_buffer(b, l, "running_var", 1, &p->c, RT_INIT_ONES,
                               &p->running_var));
    RT_CHECK(rt_builder_buffer(b, l, "num_batches_tracked", 0, NULL, RT_INIT_ZEROS,
                               &p->num_batches));
    size_t c = (size_t)p->c;
    RT_CHECK(rt_builder_fixed(b, c, &p->mean));
    RT_CHECK(rt_builder_fixed(b, c, &p->rstd));
    RT_CHECK(rt_builder_fixed(b, 2 * c + 1, &p->stats));
    RT_CHECK(rt_builder_fixed(b, 2 * c, &p->dstats));
    RT_CHECK(rt_builder_fixed(b, 2 * c, &p->zeros));   /* zero-filled: never written */
    RT_CHECK(rt_builder_fixed(b, 1, &p->one));
    *out = in;
    return RT_OK;
}

/* Sums in place over the ranks of the synchronised pass, if any (buf is
 * backend memory: staged through the host for an MPI communicator and a
 * GPU backend). */
static rt_status sync_sum(const rt_nn_ctx *ctx, const rt_backend *be, float *buf, size_t count)
{
    if (!ctx->sync_comm)
        return RT_OK;
    return rt_comm_allreduce_tensor(ctx->sync_comm, be, buf, count);
}

static rt_status bn_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out, const float *in,
                            int n)
{
    bn_impl *p = l->impl;
    const rt_backend *be = l->backend;
    int c = p->c;
    p->train = ctx->train;
    if (ctx->train) {
        /* Batch statistics (global when synchronised) and the running update. */
        RT_CHECK(be->bn_sums(p->stats, in, n, c, p->hw));
        RT_CHECK(sync_sum(ctx, be, p->stats, 2 * (size_t)c + 1));
        RT_CHECK(be->bn_train_stats(p->mean, p->rstd, p->running_mean, p->running_var,
                                    p->num_batches, p->stats, c, p->eps, p->momentum));
    } else {
        RT_CHECK(be->bn_eval_stats(p->mean, p->rstd, p->running_mean, p->running_var, c,
                                   p->eps));
    }
    return be->bn_normalize(out, in, p->mean, p->rstd, p->gamma, p->beta, n, c, p->hw);
}

static rt_status bn_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din, const float *dout,
                             const float *in, const float *out, int n)
{
    bn_impl *p = l->impl;
    const rt_backend *be = l->backend;
    int c = p->c;
    RT_CHECK(be->bn_backward_sums(p->dstats, dout, in, p->mean, p->rstd, n, c, p->hw));
    /* Local contributions to the parameter gradients, before any reduction. */
    RT_CHECK(be->add(p->dbeta, p->dstats, (size_t)c));
    RT_CHECK(be->add(p->dgamma, p->dstats + c, (size_t)c));
    if (!p->train) {
        /* Statistics are constants: dx = dy * gamma * rstd, which is the
         * training formula with zero sums and a count of 1. */
        if (!din)
            return RT_OK;
        RT_CHECK(be->fill(p->one, 1.0f, 1));
        return be->bn_backward_dx(din, dout, in, p->mean, p->rstd, p->gamma, p->zeros, p->one,
                                  n, c, p->hw);
    }
    /* Reduce even when din is NULL, so every rank makes the same collective calls. */
    RT_CHECK(sync_sum(ctx, be, p->dstats, 2 * (size_t)c));
    if (!din)
        return RT_OK;
    return be->bn_backward_dx(din, dout, in, p->mean, p->rstd, p->gamma, p->dstats,
                              p->stats + 2 * c, n, c, p->hw);
}

static const rt_layer_ops batchnorm2d_ops = {
    .version = RT_LAYER_OPS_VERSION, .flags = RT_LAYER_ANY_BACKEND, .type = "batchnorm2d",
    .build = bn_build, .forward = bn_forward, .backward = bn_backward,
};

/* nn.BatchNorm2d(c, eps=1e-5, momentum=0.1) */
const rt_layer_kind rt_batchnorm2d_kind = {
    .name = "batchnorm2d", .ops = &batchnorm2d_ops, .init = batchnorm2d_init, .set_conv_init = NULL,
    .fields = RT_LAYER_FIELD_EPS | RT_LAYER_FIELD_MOMENTUM,
    .required = 0,
    .defaults = RT_LAYER_TORCH_DEFAULTS(1),
};
