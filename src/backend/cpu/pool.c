/* Pooling on the CPU: max-pool with PyTorch semantics (padding is -inf and
 * never wins, the first maximum in row-major window order wins ties, NaN
 * propagates) and global average pooling (AdaptiveAvgPool2d((1,1))).
 * Threads (parallel.h) split the (sample, channel) planes. */
#include <math.h>
#include <string.h>
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"
#include "backend/formulas.h"

/* Operands of a pooling pass over planes. */
typedef struct pool_job {
    float *out;
    const float *in;
    int32_t *argmax_out;
    const int32_t *argmax;
    const rt_pool_geom *g;
    int hw;                 /* global average pooling: floats per plane */
} pool_job;

/* Runs fn over `planes` planes of `floats` floats each. */
static void pool_run(rt_par_fn fn, pool_job *j, size_t planes, size_t floats)
{
    rt_par_for(planes, rt_par_threads(planes * floats, RT_PAR_MIN_FLOATS), fn, j);
}

/* One plane's max-pool, a row of outputs at a time. rt_pool_window_max
 * searches one window after another, each a chain of dependent selects
 * (7 cycles per element: 8.3 ms per ResNet18 step at batch 128 on one
 * thread). Here the windows of a row are searched side by side (ox
 * innermost), so their chains are independent and overlap; each window
 * still meets its elements in row-major order, clipped to the plane, and
 * the same comparisons pick the same value and index (the first maximum,
 * a NaN wins): rt_pool_window_max's results, which the CUDA kernel uses. */
static void maxpool_plane(const float *restrict plane, float *restrict best,
                          int32_t *restrict arg, const rt_pool_geom *g)
{
    const int ow = g->ow, w = g->w, kw = g->kw, stride = g->stride, pad = g->pad;
    for (int oy = 0; oy < g->oh; oy++, best += ow, arg += ow) {
        int y0 = oy * stride - pad, y1 = y0 + g->kh;
        if (y0 < 0)
            y0 = 0;
        if (y1 > g->h)
            y1 = g->h;
        for (int ox = 0; ox < ow; ox++) {   /* each window's first element */
            const int x0 = ox * stride - pad;
            arg[ox] = y0 * w + (x0 < 0 ? 0 : x0);
            best[ox] = plane[arg[ox]];
        }
        for (int iy = y0; iy < y1; iy++)
            for (int kx = 0; kx < kw; kx++) {
                /* the outputs whose column ox * stride - pad + kx is inside the plane */
                int lo = 0, hi = ow;
                while (lo < ow && lo * stride - pad + kx < 0)
                    lo++;
                while (hi > lo && (hi - 1) * stride - pad + kx >= w)
                    hi--;
                for (int ox = lo; ox < hi; ox++) {
                    const int32_t i = iy * w + ox * stride - pad + kx;
                    const float v = plane[i];
                    const int take = (v > best[ox]) | (v != v);   /* v != v: NaN */
                    best[ox] = take ? v : best[ox];
                    arg[ox] = take ? i : arg[ox];
                }
            }
    }
}

static void maxpool_forward_piece(void *arg, size_t lo, size_t hi)
{
    const pool_job *j = arg;
    const rt_pool_geom *g = j->g;
    const size_t hw = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
    for (size_t p = lo; p < hi; p++)
        maxpool_plane(j->in + p * hw, j->out + p * ohw, j->argmax_out + p * ohw, g);
}

rt_status rt_cpu_maxpool2d_forward(float *y, int32_t *argmax, const float *x,
                                   const rt_pool_geom *g, int n)
{
    pool_job j = {.out = y, .in = x, .argmax_out = argmax, .g = g};
    pool_run(maxpool_forward_piece, &j, (size_t)n * g->c, (size_t)g->h * g->w);
    return RT_OK;
}

static void maxpool_backward_piece(void *arg, size_t lo, size_t hi)
{
    const pool_job *j = arg;
    const rt_pool_geom *g = j->g;
    const size_t hw = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
    for (size_t p = lo; p < hi; p++) {
        float *dx = j->out + p * hw;
        const float *dy = j->in + p * ohw;
        const int32_t *arg_p = j->argmax + p * ohw;
        memset(dx, 0, hw * sizeof(float));
        for (size_t o = 0; o < ohw; o++)
            if (arg_p[o] >= 0)
                dx[arg_p[o]] += dy[o];
    }
}

rt_status rt_cpu_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax,
                                    const rt_pool_geom *g, int n)
{
    pool_job j = {.out = dx, .in = dy, .argmax = argmax, .g = g};
    pool_run(maxpool_backward_piece, &j, (size_t)n * g->c, (size_t)g->h * g->w);
    return RT_OK;
}

static void avgpool_forward_piece(void *arg, size_t lo, size_t hi)
{
    const pool_job *j = arg;
    for (size_t p = lo; p < hi; p++) {
        double acc = 0.0;
        for (int i = 0; i < j->hw; i++)
            acc += j->in[p * j->hw + i];
        j->out[p] = (float)(acc / j->hw);
    }
}

rt_status rt_cpu_global_avgpool_forward(float *y, const float *x, int n, int c, int hw)
{
    pool_job j = {.out = y, .in = x, .hw = hw};
    pool_run(avgpool_forward_piece, &j, (size_t)n * c, (size_t)hw);
    return RT_OK;
}

static void avgpool_backward_piece(void *arg, size_t lo, size_t hi)
{
    const pool_job *j = arg;
    for (size_t p = lo; p < hi; p++) {
        float g = j->in[p] / (float)j->hw;
        for (int i = 0; i < j->hw; i++)
            j->out[p * j->hw + i] = g;
    }
}

rt_status rt_cpu_global_avgpool_backward(float *dx, const float *dy, int n, int c, int hw)
{
    pool_job j = {.out = dx, .in = dy, .hw = hw};
    pool_run(avgpool_backward_piece, &j, (size_t)n * c, (size_t)hw);
    return RT_OK;
}
