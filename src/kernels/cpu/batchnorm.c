/* Batch normalisation on the CPU, split into per-channel sums and the
 * elementwise passes so that the sums can be all-reduced across ranks
 * between them (SyncBatchNorm). The caller turns the sums into
 * mean = sum/m, var = sumsq/m - mean^2, rstd = 1/sqrt(var + eps).
 * Sums use double accumulators: sumsq/m - mean^2 cancels badly in float
 * when |mean| >> std, and m reaches n*hw*ranks (10^5 and more). */
#include "kernels/cpu/kernels.h"

void rt_bn_sums(float *sum, float *sumsq, const float *x, int n, int c, int hw)
{
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0, s2 = 0.0;
        for (int i = 0; i < n; i++) {
            const float *p = x + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                double v = p[j];
                s += v;
                s2 += v * v;
            }
        }
        sum[ch] = (float)s;
        sumsq[ch] = (float)s2;
    }
}

void rt_bn_normalize(float *y, const float *x, const float *mean, const float *rstd,
                     const float *gamma, const float *beta, int n, int c, int hw)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            const float m = mean[ch], scale = rstd[ch] * (gamma ? gamma[ch] : 1.0f);
            const float shift = beta ? beta[ch] : 0.0f;
            const float *p = x + ((size_t)i * c + ch) * hw;
            float *q = y + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++)
                q[j] = (p[j] - m) * scale + shift;
        }
}

void rt_bn_backward_sums(float *sum_dy, float *sum_dy_xhat, const float *dy, const float *x,
                         const float *mean, const float *rstd, int n, int c, int hw)
{
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0, sx = 0.0;
        const float m = mean[ch];
        for (int i = 0; i < n; i++) {
            const float *p = x + ((size_t)i * c + ch) * hw;
            const float *d = dy + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                s += d[j];
                sx += (double)d[j] * (p[j] - m);
            }
        }
        sum_dy[ch] = (float)s;
        sum_dy_xhat[ch] = (float)(sx * rstd[ch]);
    }
}

void rt_bn_backward_dx(float *dx, const float *dy, const float *x, const float *mean,
                       const float *rstd, const float *gamma, const float *sum_dy,
                       const float *sum_dy_xhat, double count, int n, int c, int hw)
{
    if (!dx)
        return;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            /* dx = gamma*rstd * (dy - sum_dy/m - xhat * sum_dy_xhat/m) */
            const float r = rstd[ch], m = mean[ch];
            const float scale = (gamma ? gamma[ch] : 1.0f) * r;
            const float mean_dy = (float)(sum_dy[ch] / count);
            const float mean_dy_xhat = (float)(sum_dy_xhat[ch] / count);
            const float *p = x + ((size_t)i * c + ch) * hw;
            const float *d = dy + ((size_t)i * c + ch) * hw;
            float *q = dx + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++)
                q[j] = scale * (d[j] - mean_dy - (p[j] - m) * r * mean_dy_xhat);
        }
}
