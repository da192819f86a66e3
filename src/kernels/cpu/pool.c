/* Pooling on the CPU: max-pool with PyTorch semantics (padding is -inf and
 * never wins, the first maximum in row-major window order wins ties, NaN
 * propagates) and global average pooling (AdaptiveAvgPool2d((1,1))). */
#include <math.h>
#include <string.h>
#include "kernels/cpu/kernels.h"

int rt_pool_geom_init(rt_pool_geom *g, int c, int h, int w, int kernel, int stride, int pad)
{
    memset(g, 0, sizeof *g);
    /* PyTorch requires pad <= kernel/2, which guarantees that every window
     * holds at least one real element. */
    if (c < 1 || h < 1 || w < 1 || kernel < 1 || stride < 1 || pad < 0 || 2 * pad > kernel)
        return 0;
    if (h + 2 * pad < kernel || w + 2 * pad < kernel)
        return 0;
    *g = (rt_pool_geom){ .c = c, .h = h, .w = w, .kh = kernel, .kw = kernel,
                         .stride = stride, .pad = pad,
                         .oh = (h + 2 * pad - kernel) / stride + 1,
                         .ow = (w + 2 * pad - kernel) / stride + 1 };
    return 1;
}

/* Max of one window of one channel plane; *arg gets its index in the plane. */
static float pool_window_max(const float *plane, const rt_pool_geom *g, int oy, int ox,
                             int32_t *arg)
{
    int y0 = oy * g->stride - g->pad, x0 = ox * g->stride - g->pad;
    int y1 = y0 + g->kh < g->h ? y0 + g->kh : g->h;
    int x1 = x0 + g->kw < g->w ? x0 + g->kw : g->w;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    float best = -INFINITY;
    int32_t best_i = -1;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
            float v = plane[iy * g->w + ix];
            /* strict '>' keeps the first maximum; NaN wins as in PyTorch */
            if (v > best || isnan(v) || best_i < 0) {
                best = v;
                best_i = iy * g->w + ix;
            }
        }
    *arg = best_i;
    return best;
}

void rt_maxpool2d_forward(float *y, int32_t *argmax, const float *x, const rt_pool_geom *g,
                          int n)
{
    const size_t hw = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
    for (size_t p = 0; p < (size_t)n * g->c; p++) {
        const float *plane = x + p * hw;
        float *yp = y + p * ohw;
        int32_t *ap = argmax + p * ohw;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++)
                yp[oy * g->ow + ox] = pool_window_max(plane, g, oy, ox, &ap[oy * g->ow + ox]);
    }
}

void rt_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax,
                           const rt_pool_geom *g, int n)
{
    const size_t hw = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
    memset(dx, 0, (size_t)n * g->c * hw * sizeof(float));
    for (size_t p = 0; p < (size_t)n * g->c; p++)
        for (size_t o = 0; o < ohw; o++)
            if (argmax[p * ohw + o] >= 0)
                dx[p * hw + argmax[p * ohw + o]] += dy[p * ohw + o];
}

void rt_global_avgpool_forward(float *y, const float *x, int n, int c, int hw)
{
    for (size_t p = 0; p < (size_t)n * c; p++) {
        double acc = 0.0;
        for (int i = 0; i < hw; i++)
            acc += x[p * hw + i];
        y[p] = (float)(acc / hw);
    }
}

void rt_global_avgpool_backward(float *dx, const float *dy, int n, int c, int hw)
{
    for (size_t p = 0; p < (size_t)n * c; p++) {
        float g = dy[p] / (float)hw;
        for (int i = 0; i < hw; i++)
            dx[p * hw + i] = g;
    }
}
