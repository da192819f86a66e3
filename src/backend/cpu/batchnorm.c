/* Batch normalisation on the CPU, split into per-channel sums and the
 * elementwise passes so that the sums can be all-reduced across ranks
 * between them (SyncBatchNorm). bn_train_stats (backend/host.c) turns the
 * sums into mean = sum/m, var = sumsq/m - mean^2, rstd = 1/sqrt(var + eps).
 * Sums use double accumulators: sumsq/m - mean^2 cancels badly in float
 * when |mean| >> std, and m reaches n*hw*ranks (10^5 and more).
 * Threads (parallel.h) split the sums by channel, so each channel's sum
 * runs in the same order whatever the thread count, and the elementwise
 * passes by (sample, channel) plane. */
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"

/* Everything any of the passes reads or writes. */
typedef struct bn_job {
    float *out, *out2;              /* y or dx; sumsq or sum_dy_xhat */
    const float *x, *dy;
    const float *mean, *rstd, *gamma, *beta, *sum_dy, *sum_dy_xhat;
    double count;
    int n, c, hw;
} bn_job;

/* Runs fn over `units` channels or planes of a [n][c][hw] tensor. */
static void bn_run(rt_par_fn fn, bn_job *j, size_t units)
{
    int t = rt_par_threads((size_t)j->n * j->c * j->hw, RT_PAR_MIN_FLOATS);
    rt_par_for(units, t, fn, j);
}

static void sums_piece(void *arg, size_t lo, size_t hi)
{
    const bn_job *j = arg;
    for (int ch = (int)lo; ch < (int)hi; ch++) {
        double s = 0.0, s2 = 0.0;
        for (int i = 0; i < j->n; i++) {
            const float *p = j->x + ((size_t)i * j->c + ch) * j->hw;
            for (int k = 0; k < j->hw; k++) {
                double v = p[k];
                s += v;
                s2 += v * v;
            }
        }
        j->out[ch] = (float)s;
        j->out2[ch] = (float)s2;
    }
}

rt_status rt_cpu_bn_sums(float *stats, const float *x, int n, int c, int hw)
{
    bn_job j = {.out = stats, .out2 = stats + c, .x = x, .n = n, .c = c, .hw = hw};
    bn_run(sums_piece, &j, (size_t)c);
    stats[2 * c] = (float)n * (float)hw;
    return RT_OK;
}

/* planes [lo, hi) of the n*c (sample, channel) planes */
static void normalize_piece(void *arg, size_t lo, size_t hi)
{
    const bn_job *j = arg;
    for (size_t pl = lo; pl < hi; pl++) {
        const int ch = (int)(pl % (size_t)j->c);
        const float m = j->mean[ch], scale = j->rstd[ch] * (j->gamma ? j->gamma[ch] : 1.0f);
        const float shift = j->beta ? j->beta[ch] : 0.0f;
        const float *p = j->x + pl * j->hw;
        float *q = j->out + pl * j->hw;
        for (int k = 0; k < j->hw; k++)
            q[k] = (p[k] - m) * scale + shift;
    }
}

rt_status rt_cpu_bn_normalize(float *y, const float *x, const float *mean, const float *rstd,
                              const float *gamma, const float *beta, int n, int c, int hw)
{
    bn_job j = {.out = y, .x = x, .mean = mean, .rstd = rstd, .gamma = gamma, .beta = beta,
                .n = n, .c = c, .hw = hw};
    bn_run(normalize_piece, &j, (size_t)n * c);
    return RT_OK;
}

static void backward_sums_piece(void *arg, size_t lo, size_t hi)
{
    const bn_job *j = arg;
    for (int ch = (int)lo; ch < (int)hi; ch++) {
        double s = 0.0, sx = 0.0;
        const float m = j->mean[ch];
        for (int i = 0; i < j->n; i++) {
            const float *p = j->x + ((size_t)i * j->c + ch) * j->hw;
            const float *d = j->dy + ((size_t)i * j->c + ch) * j->hw;
            for (int k = 0; k < j->hw; k++) {
                s += d[k];
                sx += (double)d[k] * (p[k] - m);
            }
        }
        j->out[ch] = (float)s;
        j->out2[ch] = (float)(sx * j->rstd[ch]);
    }
}

rt_status rt_cpu_bn_backward_sums(float *dstats, const float *dy, const float *x,
                                  const float *mean, const float *rstd, int n, int c, int hw)
{
    bn_job j = {.out = dstats, .out2 = dstats + c, .x = x, .dy = dy, .mean = mean,
                .rstd = rstd, .n = n, .c = c, .hw = hw};
    bn_run(backward_sums_piece, &j, (size_t)c);
    return RT_OK;
}

static void backward_dx_piece(void *arg, size_t lo, size_t hi)
{
    const bn_job *j = arg;
    for (size_t pl = lo; pl < hi; pl++) {
        /* dx = gamma*rstd * (dy - sum_dy/m - xhat * sum_dy_xhat/m) */
        const int ch = (int)(pl % (size_t)j->c);
        const float r = j->rstd[ch], m = j->mean[ch];
        const float scale = (j->gamma ? j->gamma[ch] : 1.0f) * r;
        const float mean_dy = (float)(j->sum_dy[ch] / j->count);
        const float mean_dy_xhat = (float)(j->sum_dy_xhat[ch] / j->count);
        const float *p = j->x + pl * j->hw;
        const float *d = j->dy + pl * j->hw;
        float *q = j->out + pl * j->hw;
        for (int k = 0; k < j->hw; k++)
            q[k] = scale * (d[k] - mean_dy - (p[k] - m) * r * mean_dy_xhat);
    }
}

rt_status rt_cpu_bn_backward_dx(float *dx, const float *dy, const float *x, const float *mean,
                                const float *rstd, const float *gamma, const float *dstats,
                                const float *count, int n, int c, int hw)
{
    if (!dx)
        return RT_OK;
    bn_job j = {.out = dx, .x = x, .dy = dy, .mean = mean, .rstd = rstd, .gamma = gamma,
                .sum_dy = dstats, .sum_dy_xhat = dstats + c, .count = count[0],
                .n = n, .c = c, .hw = hw};
    bn_run(backward_dx_piece, &j, (size_t)n * c);
    return RT_OK;
}
