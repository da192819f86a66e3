/* nn.BatchNorm2d (affine, track_running_stats). Parameters "weight" (1)
 * and "bias" (0) [C]; buffers "running_mean" (0), "running_var" (1) [C]
 * and "num_batches_tracked" (a 0-dim tensor, stored as a float).
 *
 * Training: normalise with the batch's mean and biased variance; update
 * the running statistics with `momentum`, using the unbiased variance as
 * PyTorch does. Synchronised BatchNorm: when ctx->sync_comm is set, the
 * per-channel [sum, sumsq, count] of the forward pass and [sum_dy,
 * sum_dy_xhat] of the backward pass are summed across ranks, so every rank
 * normalises with the statistics of the global batch. Every rank must then
 * run the same layers in the same order (it does: same model, same step).
 * The weight/bias gradients stay local; DDP's gradient all-reduce combines
 * them like any other parameter's.
 * Evaluation: normalise with the running statistics (backward supported
 * too: a fixed affine map). */
#include <math.h>
#include "kernels/cpu/kernels.h"
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
    double count;          /* samples per channel over all ranks, last forward */
    int train;             /* mode of the last forward call */
} bn_impl;

rt_status rt_batchnorm2d_init(rt_layer *l, const rt_layer_spec *spec)
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
    RT_CHECK(rt_builder_fixed(b, 2 * c, &p->zeros));
    *out = in;
    return RT_OK;
}

/* Batch statistics (global when synchronised) and the running update. */
static void bn_batch_stats(bn_impl *p, const rt_nn_ctx *ctx, const float *in, int n)
{
    int c = p->c;
    rt_bn_sums(p->stats, p->stats + c, in, n, c, p->hw);
    p->stats[2 * c] = (float)n * (float)p->hw;
    if (ctx->sync_comm &&
        rt_comm_allreduce(ctx->sync_comm, p->stats, 2 * (size_t)c + 1, RT_DTYPE_FLOAT32,
                          RT_REDUCE_SUM) != RT_OK)
        rt_comm_abort(ctx->sync_comm, "synchronised BatchNorm: %s", rt_error_message());
    double m = p->stats[2 * c];
    p->count = m;
    /* Unbiased correction m/(m-1); PyTorch refuses m == 1, we keep the biased value. */
    double unbias = m > 1 ? m / (m - 1) : 1.0;
    double mom = p->momentum;
    for (int k = 0; k < c; k++) {
        double mean = p->stats[k] / m;
        double var = p->stats[c + k] / m - mean * mean;
        if (var < 0)   /* rounding in sumsq/m - mean^2 */
            var = 0;
        p->mean[k] = (float)mean;
        p->rstd[k] = (float)(1.0 / sqrt(var + p->eps));
        p->running_mean[k] = (float)((1 - mom) * p->running_mean[k] + mom * mean);
        p->running_var[k] = (float)((1 - mom) * p->running_var[k] + mom * var * unbias);
    }
    p->num_batches[0] += 1.0f;
}

static void bn_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out, const float *in, int n)
{
    bn_impl *p = l->impl;
    p->train = ctx->train;
    if (ctx->train) {
        bn_batch_stats(p, ctx, in, n);
    } else {
        for (int k = 0; k < p->c; k++) {
            p->mean[k] = p->running_mean[k];
            p->rstd[k] = (float)(1.0 / sqrt((double)p->running_var[k] + p->eps));
        }
    }
    rt_bn_normalize(out, in, p->mean, p->rstd, p->gamma, p->beta, n, p->c, p->hw);
}

static void bn_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din, const float *dout,
                        const float *in, const float *out, int n)
{
    bn_impl *p = l->impl;
    int c = p->c;
    float *sum_dy = p->dstats, *sum_dy_xhat = p->dstats + c;
    rt_bn_backward_sums(sum_dy, sum_dy_xhat, dout, in, p->mean, p->rstd, n, c, p->hw);
    /* Local contributions to the parameter gradients, before any reduction. */
    rt_add_inplace(p->dbeta, sum_dy, (size_t)c);
    rt_add_inplace(p->dgamma, sum_dy_xhat, (size_t)c);
    if (!p->train) {
        /* Statistics are constants: dx = dy * gamma * rstd, which is the
         * training formula with zero sums and a count of 1. */
        if (din)
            rt_bn_backward_dx(din, dout, in, p->mean, p->rstd, p->gamma, p->zeros,
                              p->zeros + c, 1.0, n, c, p->hw);
        return;
    }
    /* Reduce even when din is NULL, so every rank makes the same collective calls. */
    if (ctx->sync_comm &&
        rt_comm_allreduce(ctx->sync_comm, p->dstats, 2 * (size_t)c, RT_DTYPE_FLOAT32,
                          RT_REDUCE_SUM) != RT_OK)
        rt_comm_abort(ctx->sync_comm, "synchronised BatchNorm: %s", rt_error_message());
    if (din)
        rt_bn_backward_dx(din, dout, in, p->mean, p->rstd, p->gamma, sum_dy, sum_dy_xhat,
                          p->count, n, c, p->hw);
}

const rt_layer_ops rt_batchnorm2d_ops = {"batchnorm2d", bn_build, bn_forward, bn_backward,
                                         NULL};
