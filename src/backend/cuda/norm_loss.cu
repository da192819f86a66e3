/* BatchNorm and losses for the "cuda" backend: the per-channel sums of
 * SyncBatchNorm's split passes, the statistics and elementwise passes, the
 * classification and regression losses, accuracy and the metrics' sums.
 * Contracts are the table's (rtrain/backend.h); the CPU backend
 * (backend/cpu/batchnorm.c, backend/host.c) is the reference.
 *
 * Reductions. Sums accumulate in double, as on the CPU, and never with
 * floating-point atomics: a fixed grid (a function of the sizes only)
 * writes one partial per block, each block combining its threads in a
 * fixed tree (block_sum), and a second pass adds the partials in a fixed
 * order. A run therefore repeats bit for bit. The order differs from the
 * CPU's serial loops, so a double sum can differ from the CPU's in its
 * last bits (and a float rounded from it by one ulp, rarely).
 *
 * Everything else is the CPU's arithmetic statement by statement (the
 * library compiles this file with --fmad=false): the BatchNorm statistics,
 * normalisation and dx, and the per-element losses and gradients. The
 * exceptions are the double exp/log/log1p of cross-entropy and BCE, whose
 * CUDA versions may differ from glibc's in the last bit (both within 1
 * ulp), which a float gradient almost never shows.
 *
 * Results for the host (a loss sum, a count, the metrics' sums) go through
 * the pinned host buffer: copied on the stream, then rt_cuda_wait(). */
#include <math.h>
#include <math_constants.h>
#include <stdint.h>
#include "backend/cuda/cuda_internal.h"
#include "backend/formulas.h"

/* Most partial sums a reduction writes: enough blocks to fill a GPU. */
#define MAX_PARTIALS 1024u

/* ---- deterministic reductions ------------------------------------------------------ */

/* The sum of v over the block's RT_CUDA_THREADS threads, in a fixed tree; every
 * thread gets it. Every thread of the block must call it. */
template <typename T>
static __device__ T block_sum(T v)
{
    __shared__ T s[RT_CUDA_THREADS];
    s[threadIdx.x] = v;
    __syncthreads();
    for (unsigned h = RT_CUDA_THREADS / 2; h > 0; h >>= 1) {
        if (threadIdx.x < h)
            s[threadIdx.x] += s[threadIdx.x + h];
        __syncthreads();
    }
    T r = s[0];
    __syncthreads();   /* s is reused by the caller's next block_sum */
    return r;
}

/* One block: out[0] = sum of partial[0, count). */
template <typename T>
static __global__ void sum_partials_kernel(T *out, const T *partial, unsigned count)
{
    T acc = 0;
    for (unsigned i = threadIdx.x; i < count; i += RT_CUDA_THREADS)
        acc += partial[i];
    acc = block_sum(acc);
    if (threadIdx.x == 0)
        out[0] = acc;
}

/* Blocks of a first pass over `count` items: a function of count only. */
static unsigned partial_blocks(size_t count)
{
    unsigned b = rt_cuda_blocks(count, RT_CUDA_THREADS);
    return b < MAX_PARTIALS ? b : MAX_PARTIALS;
}

/* Device workspace for `blocks` partials and the total after them. */
template <typename T>
static rt_status partials_workspace(T **partial, unsigned blocks)
{
    void *ws;
    RT_CHECK(rt_cuda_workspace(&ws, ((size_t)blocks + 1) * sizeof(T)));
    *partial = (T *)ws;
    return RT_OK;
}

/* Adds the `blocks` partials (second pass) and hands the total to the host. */
template <typename T>
static rt_status partials_to_host(T *host_out, T *partial, unsigned blocks)
{
    T *total = partial + blocks;
    sum_partials_kernel<T> RT_CUDA_BLOCKS(1)(total, partial, blocks);
    RT_CUDA_LAUNCHED("sum_partials");
    void *h;
    RT_CHECK(rt_cuda_host_buffer(&h, sizeof(T)));
    RT_CUDA_CHECK(cudaMemcpyAsync(h, total, sizeof(T), cudaMemcpyDeviceToHost,
                                  rt_cuda_stream()),
                  "copying a reduction's result to the host");
    RT_CHECK(rt_cuda_wait());
    *host_out = *(const T *)h;
    return RT_OK;
}

/* ---- BatchNorm sums ------------------------------------------------------------------
 * Per channel, over n samples of hw floats. The grid is channels x splits:
 * block (ch, s) sums samples s, s + splits, ... of channel ch into two
 * partials; a second pass adds each channel's partials in split order and
 * rounds to float as the CPU does. */

/* Blocks enough to fill the GPU (~2048 in all), at most one per sample. */
static int bn_splits(int n, int c)
{
    int s = c > 0 ? (2048 + c - 1) / c : 1;
    if (s > n)
        s = n;
    if (s > 1024)
        s = 1024;
    return s < 1 ? 1 : s;
}

/* Forward: (sum x, sum x^2). Backward: (sum dy, sum dy * (x - mean)), the
 * difference rounded to float first, as batchnorm.c computes it. */
template <bool BACKWARD>
static __global__ void bn_partials_kernel(double *partial, const float *x, const float *dy,
                                          const float *mean, int n, int c, int hw)
{
    const int ch = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
    const size_t samples = (size_t)(n - split + splits - 1) / splits;
    const size_t count = samples * hw;
    const float m = BACKWARD ? mean[ch] : 0.0f;
    double a = 0.0, b = 0.0;
    /* j = q * hw + r, stepped without a division per element */
    const unsigned step_q = RT_CUDA_THREADS / (unsigned)hw, step_r = RT_CUDA_THREADS % (unsigned)hw;
    size_t q = threadIdx.x / (unsigned)hw;
    unsigned r = threadIdx.x % (unsigned)hw;
    for (size_t j = threadIdx.x; j < count; j += RT_CUDA_THREADS) {
        const size_t i = split + q * splits;
        const size_t at = (i * c + ch) * hw + r;
        q += step_q;
        r += step_r;
        if (r >= (unsigned)hw) {
            r -= (unsigned)hw;
            q++;
        }
        if (BACKWARD) {
            const float d = dy[at];
            a += d;
            b += (double)d * (x[at] - m);
        } else {
            const double v = x[at];
            a += v;
            b += v * v;
        }
    }
    a = block_sum(a);
    b = block_sum(b);
    if (threadIdx.x == 0) {
        double *out = partial + 2 * ((size_t)ch * splits + split);
        out[0] = a;
        out[1] = b;
    }
}

/* Per channel: the splits' partials in order, rounded to float. Forward
 * writes (sum, sumsq, then the count); backward scales the second sum by
 * rstd in double before rounding, as batchnorm.c does. */
template <bool BACKWARD>
static __global__ void bn_finish_kernel(float *out, const double *partial, const float *rstd,
                                        int c, int splits, float count)
{
    RT_CUDA_GRID_STRIDE(ch, (size_t)c) {
        const double *p = partial + 2 * ch * splits;
        double a = 0.0, b = 0.0;
        for (int s = 0; s < splits; s++) {
            a += p[2 * s];
            b += p[2 * s + 1];
        }
        out[ch] = (float)a;
        out[c + ch] = BACKWARD ? (float)(b * rstd[ch]) : (float)b;
    }
    if (!BACKWARD && blockIdx.x == 0 && threadIdx.x == 0)
        out[2 * c] = count;
}

/* The two passes of bn_sums / bn_backward_sums into out[2c] (+ count). */
template <bool BACKWARD>
static rt_status bn_channel_sums(float *out, const float *x, const float *dy,
                                 const float *mean, const float *rstd, int n, int c, int hw)
{
    const int splits = bn_splits(n, c);
    double *partial;
    RT_CHECK(rt_cuda_workspace((void **)&partial, 2 * (size_t)c * splits * sizeof(double)));
    if (c > 0) {
        dim3 grid((unsigned)c, (unsigned)splits);
        bn_partials_kernel<BACKWARD> RT_CUDA_BLOCKS(grid)(
            partial, x, dy, mean, n, c, hw);
        RT_CUDA_LAUNCHED("bn_partials");
    }
    /* the CPU's count: a float product of the two sizes */
    const float count = (float)n * (float)hw;
    bn_finish_kernel<BACKWARD> RT_CUDA_LAUNCH((size_t)c)(out, partial, rstd, c, splits, count);
    RT_CUDA_LAUNCHED("bn_finish");
    return RT_OK;
}

rt_status rt_cuda_bn_sums(float *stats, const float *x, int n, int c, int hw)
{
    return bn_channel_sums<false>(stats, x, NULL, NULL, NULL, n, c, hw);
}

rt_status rt_cuda_bn_backward_sums(float *dstats, const float *dy, const float *x,
                                   const float *mean, const float *rstd, int n, int c, int hw)
{
    return bn_channel_sums<true>(dstats, x, dy, mean, rstd, n, c, hw);
}

/* ---- BatchNorm statistics: rt_host_bn_train_stats / _eval_stats in double ----------- */

static __global__ void bn_train_stats_kernel(float *mean, float *rstd, float *running_mean,
                                             float *running_var, float *num_batches,
                                             const float *stats, int c, float eps,
                                             float momentum)
{
    const double m = stats[2 * c];
    const double unbias = m > 1 ? m / (m - 1) : 1.0;
    const double mom = momentum;
    RT_CUDA_GRID_STRIDE(k, (size_t)c)
        rt_bn_train_channel(mean, rstd, running_mean, running_var, stats, c, (int)k, m, unbias,
                            mom, eps);
    if (blockIdx.x == 0 && threadIdx.x == 0)
        num_batches[0] += 1.0f;
}

rt_status rt_cuda_bn_train_stats(float *mean, float *rstd, float *running_mean,
                                 float *running_var, float *num_batches, const float *stats,
                                 int c, float eps, float momentum)
{
    bn_train_stats_kernel RT_CUDA_LAUNCH((size_t)c)(mean, rstd, running_mean, running_var,
                                            num_batches, stats, c, eps, momentum);
    RT_CUDA_LAUNCHED("bn_train_stats");
    return RT_OK;
}

static __global__ void bn_eval_stats_kernel(float *mean, float *rstd, const float *running_mean,
                                            const float *running_var, int c, float eps)
{
    RT_CUDA_GRID_STRIDE(k, (size_t)c)
        rt_bn_eval_channel(mean, rstd, running_mean, running_var, (int)k, eps);
}

rt_status rt_cuda_bn_eval_stats(float *mean, float *rstd, const float *running_mean,
                                const float *running_var, int c, float eps)
{
    bn_eval_stats_kernel RT_CUDA_LAUNCH((size_t)c)(mean, rstd, running_mean, running_var, c, eps);
    RT_CUDA_LAUNCHED("bn_eval_stats");
    return RT_OK;
}

/* ---- BatchNorm elementwise passes (batchnorm.c's float statements) ------------------ */

/* The channel of element i of an [n][c][hw] tensor. */
static __device__ __forceinline__ int channel_of(size_t i, int c, int hw)
{
    size_t plane;
    unsigned unused;
    rt_cuda_divmod(i, (unsigned)hw, &plane, &unused);
    size_t sample;
    unsigned ch;
    rt_cuda_divmod(plane, (unsigned)c, &sample, &ch);
    return (int)ch;
}

static __global__ void bn_normalize_kernel(float *y, const float *x, const float *mean,
                                           const float *rstd, const float *gamma,
                                           const float *beta, int c, int hw, size_t count)
{
    RT_CUDA_GRID_STRIDE(i, count) {
        const int ch = channel_of(i, c, hw);
        const float m = mean[ch], scale = rstd[ch] * (gamma ? gamma[ch] : 1.0f);
        const float shift = beta ? beta[ch] : 0.0f;
        y[i] = (x[i] - m) * scale + shift;
    }
}

rt_status rt_cuda_bn_normalize(float *y, const float *x, const float *mean, const float *rstd,
                               const float *gamma, const float *beta, int n, int c, int hw)
{
    const size_t count = (size_t)n * c * hw;
    bn_normalize_kernel RT_CUDA_LAUNCH(count)(y, x, mean, rstd, gamma, beta, c, hw, count);
    RT_CUDA_LAUNCHED("bn_normalize");
    return RT_OK;
}

/* dx = gamma*rstd * (dy - sum_dy/m - xhat * sum_dy_xhat/m); m = count[0]
 * lives in device memory (the all-reduced stats). The per-channel factors
 * (two double divisions each) are computed once per channel by the first
 * kernel, not once per element: the same operations, so the same bits. */
enum { DX_SCALE, DX_MEAN_DY, DX_MEAN, DX_RSTD, DX_MEAN_DY_XHAT, DX_FACTORS };

static __global__ void bn_backward_factors_kernel(float *factors, const float *mean,
                                                  const float *rstd, const float *gamma,
                                                  const float *dstats, const float *count, int c)
{
    const double m_count = count[0];
    RT_CUDA_GRID_STRIDE(ch, (size_t)c) {
        float *f = factors + DX_FACTORS * ch;
        const float r = rstd[ch];
        f[DX_SCALE] = (gamma ? gamma[ch] : 1.0f) * r;
        f[DX_MEAN_DY] = (float)(dstats[ch] / m_count);
        f[DX_MEAN] = mean[ch];
        f[DX_RSTD] = r;
        f[DX_MEAN_DY_XHAT] = (float)(dstats[c + ch] / m_count);
    }
}

static __global__ void bn_backward_dx_kernel(float *dx, const float *dy, const float *x,
                                             const float *factors, int c, int hw, size_t total)
{
    RT_CUDA_GRID_STRIDE(i, total) {
        const float *f = factors + DX_FACTORS * channel_of(i, c, hw);
        dx[i] = f[DX_SCALE] * (dy[i] - f[DX_MEAN_DY] - (x[i] - f[DX_MEAN]) * f[DX_RSTD] *
                                               f[DX_MEAN_DY_XHAT]);
    }
}

rt_status rt_cuda_bn_backward_dx(float *dx, const float *dy, const float *x, const float *mean,
                                 const float *rstd, const float *gamma, const float *dstats,
                                 const float *count, int n, int c, int hw)
{
    if (!dx || c <= 0)
        return RT_OK;
    float *factors;
    RT_CHECK(rt_cuda_workspace((void **)&factors, DX_FACTORS * (size_t)c * sizeof *factors));
    bn_backward_factors_kernel RT_CUDA_LAUNCH((size_t)c)(factors, mean, rstd, gamma, dstats,
                                                         count, c);
    RT_CUDA_LAUNCHED("bn_backward_factors");
    const size_t total = (size_t)n * c * hw;
    bn_backward_dx_kernel RT_CUDA_LAUNCH(total)(dx, dy, x, factors, c, hw, total);
    RT_CUDA_LAUNCHED("bn_backward_dx");
    return RT_OK;
}

/* ---- classification losses and accuracy ---------------------------------------------- */

/* One thread per sample; one partial per block. */
static __global__ void cross_entropy_kernel(double *partial, float *dlogits,
                                            const float *logits, const int32_t *labels, int n,
                                            int classes, float scale)
{
    double acc = 0.0;
    RT_CUDA_GRID_STRIDE(i, (size_t)n) {
        float *dz = dlogits ? dlogits + i * classes : NULL;
        acc += rt_cross_entropy_row(dz, logits + i * classes, labels[i], classes, scale);
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0)
        partial[blockIdx.x] = acc;
}

rt_status rt_cuda_cross_entropy(double *sum, float *dlogits, const float *logits,
                                const int32_t *labels, int n, int classes, float scale)
{
    const unsigned blocks = partial_blocks((size_t)n);
    double *partial;
    RT_CHECK(partials_workspace(&partial, blocks));
    cross_entropy_kernel RT_CUDA_BLOCKS(blocks)(partial, dlogits, logits,
                                                                   labels, n, classes, scale);
    RT_CUDA_LAUNCHED("cross_entropy");
    return partials_to_host(sum, partial, blocks);
}

/* One thread per element of logp[n][classes]: the gradient is -scale at the
 * label and 0 elsewhere; the label's element adds -logp to the loss, and a
 * sample with a bad label adds NaN once (from its first element). */
static __global__ void nll_kernel(double *partial, float *dlogp, const float *logp,
                                  const int32_t *labels, size_t count, int classes, float scale)
{
    double acc = 0.0;
    RT_CUDA_GRID_STRIDE(e, count) {
        const int32_t label = labels[e / classes];
        const int k = (int)(e % classes);
        const bool ok = rt_label_ok(label, classes), hit = ok && k == label;
        if (dlogp)
            dlogp[e] = hit ? -scale : 0.0f;
        if (hit)
            acc -= logp[e];
        else if (!ok && k == 0)
            acc += CUDART_NAN;
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0)
        partial[blockIdx.x] = acc;
}

rt_status rt_cuda_nll_loss(double *sum, float *dlogp, const float *logp, const int32_t *labels,
                           int n, int classes, float scale)
{
    const size_t count = (size_t)n * classes;
    const unsigned blocks = partial_blocks(count);
    double *partial;
    RT_CHECK(partials_workspace(&partial, blocks));
    nll_kernel RT_CUDA_BLOCKS(blocks)(partial, dlogp, logp, labels, count,
                                                         classes, scale);
    RT_CUDA_LAUNCHED("nll_loss");
    return partials_to_host(sum, partial, blocks);
}

/* One thread per sample: argmax with strict '>' (the first of equal maxima,
 * and a NaN never wins, as rt_host_count_correct compares). */
static __global__ void count_correct_kernel(long long *partial, const float *logits,
                                            const int32_t *labels, int n, int classes)
{
    long long acc = 0;
    RT_CUDA_GRID_STRIDE(i, (size_t)n) {
        const float *z = logits + i * classes;
        int best = 0;
        for (int k = 1; k < classes; k++)
            if (z[k] > z[best])
                best = k;
        acc += best == labels[i];
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0)
        partial[blockIdx.x] = acc;
}

rt_status rt_cuda_count_correct(int64_t *correct, const float *logits, const int32_t *labels,
                                int n, int classes)
{
    const unsigned blocks = partial_blocks((size_t)n);
    long long *partial;
    RT_CHECK(partials_workspace(&partial, blocks));
    count_correct_kernel RT_CUDA_BLOCKS(blocks)(partial, logits, labels, n,
                                                                   classes);
    RT_CUDA_LAUNCHED("count_correct");
    long long total = 0;
    RT_CHECK(partials_to_host(&total, partial, blocks));
    *correct = (int64_t)total;
    return RT_OK;
}

/* ---- elementwise losses on float targets -----------------------------------------------
 * Each functor wraps one element loss of backend/formulas.h (shared with
 * the host backends): the value and the derivative in o, in double. */

struct mse_elem {
    __device__ double operator()(double o, double y, double *g) const
    {
        return rt_mse_elem(o, y, g);
    }
};
struct l1_elem {
    __device__ double operator()(double o, double y, double *g) const
    {
        return rt_l1_elem(o, y, g);
    }
};
struct smooth_l1_elem {
    __device__ double operator()(double o, double y, double *g) const
    {
        return rt_smooth_l1_elem(o, y, g);
    }
};
struct bce_logits_elem {
    __device__ double operator()(double o, double y, double *g) const
    {
        return rt_bce_logits_elem(o, y, g);
    }
};

/* elementwise_loss of backend/host.c: each element adds loss * (1/k) and
 * writes scale * grad * (1/k), in that order of operations. */
template <typename F>
static __global__ void elem_loss_kernel(double *partial, float *dout, const float *out,
                                        const float *targets, size_t count, double per,
                                        float scale)
{
    const F f{};
    double acc = 0.0;
    RT_CUDA_GRID_STRIDE(i, count) {
        double grad;
        acc += f(out[i], targets[i], &grad) * per;
        if (dout)
            dout[i] = (float)(scale * grad * per);
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0)
        partial[blockIdx.x] = acc;
}

template <typename F>
static rt_status elementwise_loss(double *sum, float *dout, const float *out,
                                  const float *targets, int n, int k, float scale)
{
    const size_t count = (size_t)n * (size_t)k;
    const unsigned blocks = partial_blocks(count);
    double *partial;
    RT_CHECK(partials_workspace(&partial, blocks));
    elem_loss_kernel<F> RT_CUDA_BLOCKS(blocks)(partial, dout, out, targets,
                                                                  count, 1.0 / k, scale);
    RT_CUDA_LAUNCHED("elementwise loss");
    return partials_to_host(sum, partial, blocks);
}

rt_status rt_cuda_mse_loss(double *sum, float *dout, const float *out, const float *targets,
                           int n, int k, float scale)
{
    return elementwise_loss<mse_elem>(sum, dout, out, targets, n, k, scale);
}

rt_status rt_cuda_l1_loss(double *sum, float *dout, const float *out, const float *targets,
                          int n, int k, float scale)
{
    return elementwise_loss<l1_elem>(sum, dout, out, targets, n, k, scale);
}

rt_status rt_cuda_smooth_l1_loss(double *sum, float *dout, const float *out,
                                 const float *targets, int n, int k, float scale)
{
    return elementwise_loss<smooth_l1_elem>(sum, dout, out, targets, n, k, scale);
}

rt_status rt_cuda_bce_logits_loss(double *sum, float *dout, const float *out,
                                  const float *targets, int n, int k, float scale)
{
    return elementwise_loss<bce_logits_elem>(sum, dout, out, targets, n, k, scale);
}

/* ---- the metrics' sums --------------------------------------------------------------------
 * One block per output j sums its five values over the n samples
 * (rt_host_target_sums' terms) into sums5[j][5]; the host adds them into
 * the caller's sums. */

enum { TARGET_SUMS = 5 };

static __global__ void target_sums_kernel(double *sums5, const float *out,
                                          const float *targets, int n, int k)
{
    const int j = blockIdx.x;
    double s[TARGET_SUMS] = {0.0, 0.0, 0.0, 0.0, 0.0};
    for (int i = threadIdx.x; i < n; i += RT_CUDA_THREADS) {
        double o = out[(size_t)i * k + j], y = targets[(size_t)i * k + j];
        s[0] += (o - y) * (o - y);
        s[1] += fabs(o - y);
        s[2] += y;
        s[3] += y * y;
        s[4] += (o > 0) == (y > 0.5);
    }
    for (int t = 0; t < TARGET_SUMS; t++) {
        double v = block_sum(s[t]);
        if (threadIdx.x == 0)
            sums5[(size_t)TARGET_SUMS * j + t] = v;
    }
}

rt_status rt_cuda_target_sums(double *sums, const float *out, const float *targets, int n,
                              int k)
{
    if (k <= 0)
        return RT_OK;
    const size_t count = (size_t)TARGET_SUMS * k, bytes = count * sizeof(double);
    double *dev;
    void *host;
    RT_CHECK(rt_cuda_workspace((void **)&dev, bytes));
    target_sums_kernel RT_CUDA_BLOCKS((unsigned)k)(dev, out, targets, n, k);
    RT_CUDA_LAUNCHED("target_sums");
    RT_CHECK(rt_cuda_host_buffer(&host, bytes));
    RT_CUDA_CHECK(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, rt_cuda_stream()),
                  "copying the metrics' sums to the host");
    RT_CHECK(rt_cuda_wait());
    for (size_t i = 0; i < count; i++)
        sums[i] += ((const double *)host)[i];
    return RT_OK;
}
