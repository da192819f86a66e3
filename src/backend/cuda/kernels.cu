/* rtrain's own CUDA kernels for the "cuda" backend: fill, ReLU, dropout,
 * in-place add, max and global average pooling, and the optimizers'
 * element updates (BatchNorm and losses: norm_loss.cu). Contracts are the
 * table's (rtrain/backend.h); the CPU backend is the reference.
 *
 * Every kernel here gives the CPU backend's result bit for bit. Each
 * element is computed by the same float operations in the same order as
 * src/backend/cpu/{elementwise,pool,update}.c and backend/host.c, and the
 * library compiles this file with --fmad=false (no a*b+c contraction) and
 * without fast math (sqrtf and '/' are IEEE-rounded). The reductions that
 * remain (max-pool's backward, average pooling) are gathers that each
 * thread runs in the CPU's own order, so they need no atomics.
 *
 * Sizes are size_t (a slab of parameters or activations can pass 2^31):
 * grid-stride loops with size_t indices, grids from rt_cuda_blocks. */
#include <math.h>
#include <stdint.h>
#include "backend/cuda/cuda_internal.h"
#include "backend/formulas.h"
#include "core/philox.h"


/* ---- elementwise ----------------------------------------------------------------- */

static __global__ void fill_kernel(float *dst, float value, size_t count)
{
    RT_CUDA_GRID_STRIDE(i, count)
        dst[i] = value;
}

rt_status rt_cuda_fill(float *dst, float value, size_t count)
{
    if (count == 0)
        return RT_OK;
    /* The CPU fills any zero, -0.0f included, with memset (+0.0f): so do we. */
    if (value == 0.0f) {
        RT_CUDA_CHECK(cudaMemsetAsync(dst, 0, count * sizeof *dst, rt_cuda_stream()),
                      "zero-filling device memory");
        return RT_OK;
    }
    fill_kernel RT_CUDA_LAUNCH(count)(dst, value, count);
    RT_CUDA_LAUNCHED("fill");
    return RT_OK;
}

/* y may alias x (in place): same index only. NaN fails 'x > 0': 0, as on the CPU. */
/* y[i][j] = b[j]: the bias rows a linear layer's product accumulates onto. */
static __global__ void bias_rows_kernel(float *y, const float *b, size_t count, int cols)
{
    RT_CUDA_GRID_STRIDE(i, count)
        y[i] = b[i % (size_t)cols];
}

rt_status rt_cuda_bias_rows(float *y, const float *b, int n, int cols)
{
    const size_t count = (size_t)n * (size_t)cols;
    bias_rows_kernel RT_CUDA_LAUNCH(count)(y, b, count, cols);
    RT_CUDA_LAUNCHED("bias_rows");
    return RT_OK;
}

static __global__ void relu_forward_kernel(float *y, const float *x, size_t count)
{
    RT_CUDA_GRID_STRIDE(i, count)
        y[i] = !(x[i] <= 0.0f) ? x[i] : 0.0f;   /* NaN stays NaN, as in PyTorch */
}

rt_status rt_cuda_relu_forward(float *y, const float *x, size_t count)
{
    relu_forward_kernel RT_CUDA_LAUNCH(count)(y, x, count);
    RT_CUDA_LAUNCHED("relu_forward");
    return RT_OK;
}

/* dx may alias dy. */
static __global__ void relu_backward_kernel(float *dx, const float *dy, const float *y,
                                            size_t count)
{
    RT_CUDA_GRID_STRIDE(i, count)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

rt_status rt_cuda_relu_backward(float *dx, const float *dy, const float *y, size_t count)
{
    relu_backward_kernel RT_CUDA_LAUNCH(count)(dx, dy, y, count);
    RT_CUDA_LAUNCHED("relu_backward");
    return RT_OK;
}

static __global__ void mul_kernel(float *out, const float *a, const float *b, size_t count)
{
    RT_CUDA_GRID_STRIDE(i, count)
        out[i] = a[i] * b[i];
}

rt_status rt_cuda_dropout_backward(float *dx, const float *dy, const float *mask, size_t count)
{
    mul_kernel RT_CUDA_LAUNCH(count)(dx, dy, mask, count);
    RT_CUDA_LAUNCHED("dropout_backward");
    return RT_OK;
}

static __global__ void add_kernel(float *y, const float *x, size_t count)
{
    RT_CUDA_GRID_STRIDE(i, count)
        y[i] += x[i];
}

rt_status rt_cuda_add(float *y, const float *x, size_t count)
{
    add_kernel RT_CUDA_LAUNCH(count)(y, x, count);
    RT_CUDA_LAUNCHED("add");
    return RT_OK;
}

/* ---- dropout: the Philox stream of src/core/rng.c ---------------------------------- */

/* rt_rng_uniform draws word i of the stream from block i / 4, word i % 4, so
 * each thread takes one block and its four elements: element i's mask is the
 * CPU's. */
static __global__ void dropout_forward_kernel(float *y, float *mask, const float *x,
                                              size_t count, float p, float keep, uint64_t key)
{
    const size_t blocks = (count + 3) / 4;
    RT_CUDA_GRID_STRIDE(b, blocks) {
        uint32_t word[4];
        rt_philox4x32_block(key, b, word);
        for (size_t j = 0; j < 4 && 4 * b + j < count; j++) {
            const size_t i = 4 * b + j;
            float m = rt_philox_uniform(word[j]) < p ? 0.0f : keep;
            mask[i] = m;
            y[i] = x[i] * m;
        }
    }
}

rt_status rt_cuda_dropout_forward(float *y, float *mask, const float *x, size_t count, float p,
                                  uint64_t key)
{
    /* the CPU's scale, computed on the host in the same float operations */
    const float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    const size_t blocks = (count + 3) / 4;
    dropout_forward_kernel RT_CUDA_LAUNCH(blocks)(y, mask, x, count, p, keep, key);
    RT_CUDA_LAUNCHED("dropout_forward");
    return RT_OK;
}

/* ---- max pooling -------------------------------------------------------------------- */

/* One thread per output element y[plane][oy][ox]. */
static __global__ void maxpool_forward_kernel(float *y, int32_t *argmax, const float *x,
                                              rt_pool_geom g, size_t count)
{
    const size_t hw = (size_t)g.h * g.w, ohw = (size_t)g.oh * g.ow;
    RT_CUDA_GRID_STRIDE(o, count) {
        size_t plane;
        unsigned in_plane;
        rt_cuda_divmod(o, (unsigned)ohw, &plane, &in_plane);
        const int r = (int)in_plane;
        y[o] = rt_pool_window_max(x + plane * hw, &g, r / g.ow, r % g.ow, &argmax[o]);
    }
}

rt_status rt_cuda_maxpool2d_forward(float *y, int32_t *argmax, const float *x,
                                    const rt_pool_geom *g, int n)
{
    const size_t count = (size_t)n * g->c * g->oh * g->ow;
    maxpool_forward_kernel RT_CUDA_LAUNCH(count)(y, argmax, x, *g, count);
    RT_CUDA_LAUNCHED("maxpool2d_forward");
    return RT_OK;
}

/* First output row (or column) whose window reaches input row `i`: windows
 * start at o * stride - pad and span k rows. */
static __device__ int first_window(int i, int k, int stride, int pad)
{
    int lo = i + pad - k + 1;
    return lo <= 0 ? 0 : (lo + stride - 1) / stride;
}

static __device__ int last_window(int i, int stride, int pad, int outs)
{
    int hi = (i + pad) / stride;
    return hi < outs - 1 ? hi : outs - 1;
}

/* One thread per input element. The CPU zeroes dx and then adds dy[o] at
 * argmax[o] for o in increasing order; overlapping windows (3x3 stride 2)
 * can pick one input several times, and the float sum depends on order.
 * The thread gathers the outputs whose window holds its element, in
 * increasing o, from 0.0f: the same additions in the same order, no
 * atomics. (argmax must be maxpool2d_forward's, which only names elements
 * inside the window.) */
static __global__ void maxpool_backward_kernel(float *dx, const float *dy,
                                               const int32_t *argmax, rt_pool_geom g,
                                               size_t count)
{
    const size_t hw = (size_t)g.h * g.w, ohw = (size_t)g.oh * g.ow;
    RT_CUDA_GRID_STRIDE(i, count) {
        size_t plane;
        unsigned in_plane;
        rt_cuda_divmod(i, (unsigned)hw, &plane, &in_plane);
        const int r = (int)in_plane, iy = r / g.w, ix = r % g.w;
        const float *dy_p = dy + plane * ohw;
        const int32_t *arg_p = argmax + plane * ohw;
        const int oy1 = last_window(iy, g.stride, g.pad, g.oh);
        const int ox0 = first_window(ix, g.kw, g.stride, g.pad);
        const int ox1 = last_window(ix, g.stride, g.pad, g.ow);
        float acc = 0.0f;
        for (int oy = first_window(iy, g.kh, g.stride, g.pad); oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++) {
                const int o = oy * g.ow + ox;
                if (arg_p[o] == r)
                    acc += dy_p[o];
            }
        dx[i] = acc;
    }
}

rt_status rt_cuda_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax,
                                     const rt_pool_geom *g, int n)
{
    const size_t count = (size_t)n * g->c * g->h * g->w;
    maxpool_backward_kernel RT_CUDA_LAUNCH(count)(dx, dy, argmax, *g, count);
    RT_CUDA_LAUNCHED("maxpool2d_backward");
    return RT_OK;
}

/* ---- global average pooling ------------------------------------------------------------- */

/* One thread per (sample, channel) plane, summing it in double in the CPU's
 * order: the same double, the same float. (ResNet's planes are 1 to 16
 * floats, and n*c planes fill the GPU.) */
static __global__ void avgpool_forward_kernel(float *y, const float *x, size_t planes, int hw)
{
    RT_CUDA_GRID_STRIDE(p, planes) {
        const float *in = x + p * hw;
        double acc = 0.0;
        for (int i = 0; i < hw; i++)
            acc += in[i];
        y[p] = (float)(acc / hw);
    }
}

rt_status rt_cuda_global_avgpool_forward(float *y, const float *x, int n, int c, int hw)
{
    const size_t planes = (size_t)n * c;
    avgpool_forward_kernel RT_CUDA_LAUNCH(planes)(y, x, planes, hw);
    RT_CUDA_LAUNCHED("global_avgpool_forward");
    return RT_OK;
}

static __global__ void avgpool_backward_kernel(float *dx, const float *dy, size_t count, int hw)
{
    RT_CUDA_GRID_STRIDE(i, count)
        dx[i] = dy[i / hw] / (float)hw;
}

rt_status rt_cuda_global_avgpool_backward(float *dx, const float *dy, int n, int c, int hw)
{
    const size_t count = (size_t)n * c * hw;
    avgpool_backward_kernel RT_CUDA_LAUNCH(count)(dx, dy, count, hw);
    RT_CUDA_LAUNCHED("global_avgpool_backward");
    return RT_OK;
}

/* ---- optimizer updates -------------------------------------------------------------------
 * The statements of rt_host_sgd_range, rt_host_sgd_momentum_range and
 * rt_host_adam_range (backend/host.c), copied with their evaluation order:
 * each line is one torch.optim tensor operation, rounded to float. The
 * coefficients come by value (loop-invariant scalars). */

static __global__ void sgd_kernel(float *p, const float *g, size_t n, rt_sgd_coef c)
{
    const float wd = c.weight_decay, neg_lr = c.neg_lr;
    RT_CUDA_GRID_STRIDE(i, n) {
        float d = c.use_weight_decay ? g[i] + wd * p[i] : g[i];
        p[i] = p[i] + neg_lr * d;
    }
}

rt_status rt_cuda_sgd_update(float *p, const float *g, size_t n, const rt_sgd_coef *c)
{
    sgd_kernel RT_CUDA_LAUNCH(n)(p, g, n, *c);
    RT_CUDA_LAUNCHED("sgd_update");
    return RT_OK;
}

static __global__ void sgd_momentum_kernel(float *p, float *buf, const float *g, size_t n,
                                           rt_sgd_coef c)
{
    const float wd = c.weight_decay, neg_lr = c.neg_lr;
    const float mom = c.momentum, one_minus_damp = c.one_minus_damp;
    RT_CUDA_GRID_STRIDE(i, n) {
        float d = c.use_weight_decay ? g[i] + wd * p[i] : g[i];
        float b = buf[i] * mom;
        b = b + one_minus_damp * d;
        b = c.first ? d : b;
        buf[i] = b;
        d = c.nesterov ? d + mom * b : b;
        p[i] = p[i] + neg_lr * d;
    }
}

rt_status rt_cuda_sgd_momentum_update(float *p, float *buf, const float *g, size_t n,
                                      const rt_sgd_coef *c)
{
    sgd_momentum_kernel RT_CUDA_LAUNCH(n)(p, buf, g, n, *c);
    RT_CUDA_LAUNCHED("sgd_momentum_update");
    return RT_OK;
}

static __global__ void adam_kernel(float *p, float *m, float *v, const float *g, size_t n,
                                   rt_adam_coef c)
{
    const float l2 = c.l2, decay = c.decay, eps = c.eps, bc2_sqrt = c.bc2_sqrt;
    const float b1 = c.beta1, one_minus_b1 = c.one_minus_beta1;
    const float b2 = c.beta2, one_minus_b2 = c.one_minus_beta2;
    const float neg_step = c.neg_step_size;
    RT_CUDA_GRID_STRIDE(i, n) {
        float pi = p[i] * decay;
        float gi = c.use_l2 ? g[i] + l2 * pi : g[i];
        float mi = m[i] * b1;
        mi = mi + one_minus_b1 * gi;
        float vi = v[i] * b2;
        vi = vi + one_minus_b2 * gi * gi;           /* (one_minus_b2 * gi) * gi, as in C */
        float denom = sqrtf(vi) / bc2_sqrt + eps;   /* IEEE sqrtf and division */
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + neg_step * mi / denom;          /* pi + ((neg_step * mi) / denom) */
    }
}

rt_status rt_cuda_adam_update(float *p, float *m, float *v, const float *g, size_t n,
                              const rt_adam_coef *c)
{
    adam_kernel RT_CUDA_LAUNCH(n)(p, m, v, g, n, *c);
    RT_CUDA_LAUNCHED("adam_update");
    return RT_OK;
}
