/* Unit tests for the kernels of every backend of the build (the "cpu" and
 * "naive" tables of rtrain/backend.h), called through the table as the
 * layers call them.
 *
 * Every forward kernel is compared with a naive double-precision direct
 * implementation written here (direct convolution loops, window scans, ...).
 * Every backward kernel is compared with central finite differences, in
 * double precision, of L = sum(y * r) for a random r, where y comes from the
 * double reference forward; the convolution gradients are also compared
 * everywhere with a direct double-precision adjoint (itself checked by the
 * finite differences), because finite differences of every element of the
 * larger cases would be too slow.
 *
 * Tolerances. The kernels compute in float32 (eps = 6e-8). A float sum of K
 * terms of random sign has a rounding error of about eps * sqrt(K) relative
 * to its magnitude, and far below eps * K in the worst case. Our longest
 * sums are the weight gradients of the multi-chunk case (K ~ 5e5 terms), so
 * REL_TOL = 1e-4 relative to the largest reference value of the tensor
 * covers them with a margin, while any indexing mistake (a missing or wrong
 * term) gives errors of order 1e-1 or more. The finite differences are
 * taken in double on functions that are linear (conv, linear) or smooth
 * (batch norm) in each variable, so their own error (~1e-9) is negligible.
 *
 * Convolution paths. The CPU backend convolves by im2col + sgemm, or
 * through oneDNN when built with it (src/backend/cpu/conv2d.c); its
 * convolution checks run on each path the build has, among them the
 * ResNet18 shapes (stem, 3x3 stride 1 and 2, 1x1 stride 2 downsample,
 * 3x3 on 1x1) at batch 1 and odd batches, with and without bias. Both
 * paths meet the same double references with the same REL_TOL: their sums
 * run in other orders, so they agree with each other to about that much,
 * not bit for bit. Each path must give the same bits for the same call, on
 * a fresh plan as on the same one, and after other batch sizes were used
 * on the plan (oneDNN caches primitives per batch size).
 *
 * Linear paths. The CPU backend's linear layers run their sgemm on
 * oneDNN (the default when built with it) or OpenBLAS (linear.c); the
 * linear checks, on one thread and on several, run on each path the build
 * has, against the same double references and tolerance.
 *
 * Threads. The CPU backend's checks run twice: on one thread and on three
 * (more than the 2 cores here, and a count that splits most sizes
 * unevenly), so that the threaded paths (parallel.h) meet the same
 * references. The pool itself is checked first: every piece exactly once,
 * nested and concurrent calls. Linear layers of the MLP's sizes, which are
 * split over the threads, are then checked to give the same bits on every
 * call at a given thread count and to stay within REL_TOL of one thread
 * (test_linear_threads). Then the naive backend meets the same
 * references (it is the reference of tests/unit/test_backends.c, so it is
 * checked here against the definitions themselves).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "rtrain/core.h"
#include "rtrain/backend.h"
#include "backend/cpu/parallel.h"
#include "backend/cpu/kernels.h"

#define REL_TOL 1e-4

/* The backend under test. */
static const rt_backend *be;
/* The cpu backend's convolution path under test (kernels.h). */
static rt_cpu_conv_path cpu_conv_path = RT_CPU_CONV_IM2COL;

/* ---- helpers -------------------------------------------------------------- */

static rt_rng test_rng;

static float *falloc(size_t count)
{
    float *p = NULL;
    if (rt_alloc(&p, count, sizeof(float), "test buffer") != RT_OK) {
        fprintf(stderr, "test_kernels: %s\n", rt_error_message());
        exit(2);
    }
    return p;
}

static double *dalloc(size_t count)
{
    double *p = NULL;
    if (rt_alloc(&p, count, sizeof(double), "test buffer") != RT_OK) {
        fprintf(stderr, "test_kernels: %s\n", rt_error_message());
        exit(2);
    }
    return p;
}

static void fill_uniform(float *a, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * rt_rng_uniform(&test_rng);
}

static void fill_nan(float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = NAN;
}

static void to_double(double *d, const float *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
}

static double max_abs(const double *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* max |got - ref| <= tol * max |ref| (NaN in got fails). */
static void check_array(const char *what, const float *got, const double *ref, size_t n,
                        double tol)
{
    double scale = max_abs(ref, n), worst = 0.0;
    size_t worst_i = 0;
    int bad_nan = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (isnan(e))
            bad_nan = 1;
        if (e > worst || isnan(e)) {
            worst = e;
            worst_i = i;
        }
    }
    CHECK_MSG(!bad_nan && worst <= tol * (scale > 0 ? scale : 1.0),
              "%s: max error %.3g at %zu (got %.9g, want %.9g), scale %.3g, tol %.1g", what,
              worst, worst_i, n ? (double)got[worst_i] : 0.0, n ? ref[worst_i] : 0.0, scale,
              tol);
}

static int same_bits(const void *a, const void *b, size_t bytes) { return !memcmp(a, b, bytes); }

/* Central finite difference of loss() with respect to v[i], in double. */
typedef double (*loss_fn)(void *ctx);
static double fd_grad(loss_fn loss, void *ctx, double *v, size_t i, double h)
{
    double save = v[i];
    v[i] = save + h;
    double lp = loss(ctx);
    v[i] = save - h;
    double lm = loss(ctx);
    v[i] = save;
    return (lp - lm) / (2.0 * h);
}

/* Compares got[] with finite differences at `samples` indices (all when
 * samples >= n); scale is the magnitude of the whole gradient tensor. */
static void check_fd(const char *what, const float *got, loss_fn loss, void *ctx, double *v,
                     size_t n, size_t samples, double h, double scale, double tol)
{
    int bad = 0;
    for (size_t s = 0; s < (samples < n ? samples : n); s++) {
        size_t i = samples >= n ? s : rt_rng_below(&test_rng, (uint32_t)n);
        double fd = fd_grad(loss, ctx, v, i, h);
        if (!(fabs((double)got[i] - fd) <= tol * (scale > 0 ? scale : 1.0))) {
            if (bad++ < 3)
                fprintf(stderr, "%s[%zu]: kernel %.9g, finite difference %.9g\n", what, i,
                        (double)got[i], fd);
        }
    }
    CHECK_MSG(bad == 0, "%s: %d gradient entries differ from finite differences", what, bad);
}

/* ---- convolution ---------------------------------------------------------- */

typedef struct conv_ref {
    const rt_conv_geom *g;
    int n;
    double *x, *w, *b, *r, *y;  /* b NULL: no bias */
} conv_ref;

static double conv_ref_x(const conv_ref *c, int s, int ci, int iy, int ix)
{
    const rt_conv_geom *g = c->g;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
        return 0.0;
    return c->x[(((size_t)s * g->c + ci) * g->h + iy) * g->w + ix];
}

/* Direct convolution: y[s][k][oy][ox] = b[k] + sum w[k][ci][ky][kx] x[...] */
static void conv_ref_forward(conv_ref *c)
{
    const rt_conv_geom *g = c->g;
    for (int s = 0; s < c->n; s++)
        for (int k = 0; k < g->k; k++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    double acc = c->b ? c->b[k] : 0.0;
                    for (int ci = 0; ci < g->c; ci++)
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++)
                                acc += c->w[((k * g->c + ci) * g->kh + ky) * g->kw + kx] *
                                       conv_ref_x(c, s, ci, oy * g->stride - g->pad + ky,
                                                  ox * g->stride - g->pad + kx);
                    c->y[(((size_t)s * g->k + k) * g->oh + oy) * g->ow + ox] = acc;
                }
}

static double conv_ref_loss(void *ctx)
{
    conv_ref *c = ctx;
    conv_ref_forward(c);
    size_t ny = (size_t)c->n * c->g->k * c->g->oh * c->g->ow;
    double l = 0.0;
    for (size_t i = 0; i < ny; i++)
        l += c->y[i] * c->r[i];
    return l;
}

/* Direct adjoint of conv_ref_forward with dy = r (dx, dw, db overwritten). */
static void conv_ref_backward(double *dx, double *dw, double *db, const conv_ref *c)
{
    const rt_conv_geom *g = c->g;
    memset(dx, 0, sizeof(double) * c->n * g->c * g->h * g->w);
    memset(dw, 0, sizeof(double) * g->k * g->c * g->kh * g->kw);
    memset(db, 0, sizeof(double) * g->k);
    for (int s = 0; s < c->n; s++)
        for (int k = 0; k < g->k; k++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    double d = c->r[(((size_t)s * g->k + k) * g->oh + oy) * g->ow + ox];
                    db[k] += d;
                    for (int ci = 0; ci < g->c; ci++)
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                int iy = oy * g->stride - g->pad + ky;
                                int ix = ox * g->stride - g->pad + kx;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                size_t wi = ((k * g->c + ci) * g->kh + ky) * g->kw + kx;
                                size_t xi = (((size_t)s * g->c + ci) * g->h + iy) * g->w + ix;
                                dw[wi] += d * c->x[xi];
                                dx[xi] += d * c->w[wi];
                            }
                }
}

typedef struct conv_case {
    const char *name;
    int n, c, h, w, k, ksize, stride, pad, bias;
    size_t fd_samples;   /* finite-difference entries checked per tensor */
    int want_chunks;     /* 1: assert the batch is split into several chunks */
} conv_case;

#define SCRATCH_GUARD 64

/* Other batch sizes on the same plan (fewer than it was made for: the
 * short last batch of an epoch) give the first samples of the full
 * forward within REL_TOL; five sizes in a row evict the first from
 * oneDNN's cache of four; the full batch again, and on a fresh plan, gives
 * the bits it gave first. */
static void check_conv_batches(const char *name, rt_conv_plan *plan, const float *y,
                               const double *yd, const float *x, const float *w,
                               const float *bias, float *scratch, const rt_conv_geom *g, int n)
{
    const size_t out_sample = (size_t)g->k * g->oh * g->ow;
    const int sizes[] = { 1, n - 1, 2, n - 2, n };
    float *y2 = falloc((size_t)n * out_sample);
    char what[200];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int nb = sizes[i];
        if (nb < 1 || nb > n)
            continue;
        fill_nan(y2, (size_t)nb * out_sample);
        CHECK_OK(be->conv2d_forward(plan, y2, x, w, bias, scratch, nb));
        snprintf(what, sizeof what, "%s forward of %d of %d samples", name, nb, n);
        check_array(what, y2, yd, (size_t)nb * out_sample, REL_TOL);
    }
    CHECK_MSG(same_bits(y, y2, (size_t)n * out_sample * sizeof(float)),
              "%s: forward changed after other batch sizes", name);
    rt_conv_plan *fresh = NULL;
    size_t nscratch = 0;
    CHECK_OK(be->conv2d_plan(&fresh, g, n, &nscratch));
    float *scratch2 = falloc(nscratch + 1);
    fill_nan(y2, (size_t)n * out_sample);
    CHECK_OK(be->conv2d_forward(fresh, y2, x, w, bias, scratch2, n));
    CHECK_MSG(same_bits(y, y2, (size_t)n * out_sample * sizeof(float)),
              "%s: forward differs on a fresh plan", name);
    be->conv2d_plan_free(fresh);
    rt_free(scratch2);
    rt_free(y2);
}

static void run_conv_case(const conv_case *tc)
{
    rt_conv_geom g;
    CHECK_MSG(rt_conv_geom_init(&g, tc->c, tc->h, tc->w, tc->k, tc->ksize, tc->ksize,
                                tc->stride, tc->pad),
              "%s: geometry rejected", tc->name);
    CHECK(g.oh == (tc->h + 2 * tc->pad - tc->ksize) / tc->stride + 1);
    CHECK(g.ow == (tc->w + 2 * tc->pad - tc->ksize) / tc->stride + 1);
    const int n = tc->n;
    const size_t nx = (size_t)n * g.c * g.h * g.w, nw = (size_t)g.k * g.c * g.kh * g.kw;
    const size_t ny = (size_t)n * g.k * g.oh * g.ow, nb = (size_t)g.k;
    rt_conv_plan *plan = NULL;
    size_t nscratch = 0;
    CHECK_OK(be->conv2d_plan(&plan, &g, n, &nscratch));
    if (!plan)
        return;
    if (tc->want_chunks && !strcmp(be->name, "cpu") && cpu_conv_path == RT_CPU_CONV_IM2COL) {
        /* The scratch holds `chunk` samples of columns plus output; we want
         * several chunks of 2 or more samples and a shorter last one. */
        size_t chunk = nscratch / ((size_t)g.oh * g.ow * (nw / g.k + g.k));
        CHECK_MSG(chunk >= 2 && chunk < (size_t)n && n % chunk != 0,
                  "%s: chunk of %zu samples for n = %d: resize this case so that it "
                  "still tests chunking", tc->name, chunk, n);
    }

    float *x = falloc(nx), *w = falloc(nw), *b = falloc(nb), *y = falloc(ny);
    float *y2 = falloc(ny), *dy = falloc(ny), *dx = falloc(nx), *dx2 = falloc(nx);
    float *dw = falloc(nw), *dw0 = falloc(nw), *dw2 = falloc(nw);
    float *db = falloc(nb), *db0 = falloc(nb), *db2 = falloc(nb);
    float *scratch = falloc(nscratch + SCRATCH_GUARD);
    fill_uniform(x, nx, -1, 1);
    fill_uniform(w, nw, -1, 1);
    fill_uniform(b, nb, -1, 1);
    fill_uniform(dy, ny, -1, 1);
    fill_uniform(dw0, nw, -1, 1);
    fill_uniform(db0, nb, -1, 1);
    /* Canary after the advertised scratch size: any overrun changes it. */
    for (size_t i = 0; i < SCRATCH_GUARD; i++)
        scratch[nscratch + i] = 12345.0f + (float)i;

    double *xd = dalloc(nx), *wd = dalloc(nw), *bd = dalloc(nb), *rd = dalloc(ny);
    double *yd = dalloc(ny), *gx = dalloc(nx), *gw = dalloc(nw), *gb = dalloc(nb);
    to_double(xd, x, nx);
    to_double(wd, w, nw);
    to_double(bd, b, nb);
    to_double(rd, dy, ny);
    conv_ref ref = { &g, n, xd, wd, tc->bias ? bd : NULL, rd, yd };
    const float *bias = tc->bias ? b : NULL;
    char what[160];

    /* forward: every output written, matches the direct convolution, and
     * the same inputs give the same bits */
    fill_nan(y, ny);
    CHECK_OK(be->conv2d_forward(plan, y, x, w, bias, scratch, n));
    conv_ref_forward(&ref);
    snprintf(what, sizeof what, "%s forward", tc->name);
    check_array(what, y, yd, ny, REL_TOL);
    fill_nan(y2, ny);
    CHECK_OK(be->conv2d_forward(plan, y2, x, w, bias, scratch, n));
    CHECK_MSG(same_bits(y, y2, ny * sizeof(float)), "%s: forward not deterministic", tc->name);
    check_conv_batches(tc->name, plan, y, yd, x, w, bias, scratch, &g, n);

    /* backward: dw, db accumulate onto their old values; dx is overwritten */
    memcpy(dw, dw0, nw * sizeof(float));
    memcpy(db, db0, nb * sizeof(float));
    fill_nan(dx, nx);
    CHECK_OK(be->conv2d_backward(plan, dx, dw, tc->bias ? db : NULL, dy, x, w, scratch, n));
    for (size_t i = 0; i < nw; i++)
        dw2[i] = dw[i] - dw0[i];
    for (size_t i = 0; i < nb; i++)
        db2[i] = db[i] - db0[i];
    conv_ref_backward(gx, gw, gb, &ref);
    snprintf(what, sizeof what, "%s dx", tc->name);
    check_array(what, dx, gx, nx, REL_TOL);
    snprintf(what, sizeof what, "%s dw", tc->name);
    check_array(what, dw2, gw, nw, REL_TOL);
    if (tc->bias) {
        snprintf(what, sizeof what, "%s db", tc->name);
        check_array(what, db2, gb, nb, REL_TOL);
    } else {
        CHECK_MSG(same_bits(db, db0, nb * sizeof(float)), "%s: db touched when NULL",
                  tc->name);
    }

    /* the direct adjoint and the kernel against finite differences */
    snprintf(what, sizeof what, "%s dx", tc->name);
    check_fd(what, dx, conv_ref_loss, &ref, xd, nx, tc->fd_samples, 1e-2, max_abs(gx, nx),
             REL_TOL);
    snprintf(what, sizeof what, "%s dw", tc->name);
    check_fd(what, dw2, conv_ref_loss, &ref, wd, nw, tc->fd_samples, 1e-2, max_abs(gw, nw),
             REL_TOL);
    if (tc->bias) {
        snprintf(what, sizeof what, "%s db", tc->name);
        check_fd(what, db2, conv_ref_loss, &ref, bd, nb, tc->fd_samples, 1e-2,
                 max_abs(gb, nb), REL_TOL);
    }

    /* dx == NULL gives the same parameter gradients, bit for bit, and a
     * repeated call gives the same bits everywhere */
    memcpy(dw2, dw0, nw * sizeof(float));
    memcpy(db2, db0, nb * sizeof(float));
    CHECK_OK(be->conv2d_backward(plan, NULL, dw2, tc->bias ? db2 : NULL, dy, x, w, scratch, n));
    CHECK_MSG(same_bits(dw, dw2, nw * sizeof(float)) && same_bits(db, db2, nb * sizeof(float)),
              "%s: dx == NULL changes dw/db", tc->name);
    memcpy(dw2, dw0, nw * sizeof(float));
    memcpy(db2, db0, nb * sizeof(float));
    fill_nan(dx2, nx);
    CHECK_OK(be->conv2d_backward(plan, dx2, dw2, tc->bias ? db2 : NULL, dy, x, w, scratch, n));
    CHECK_MSG(same_bits(dx, dx2, nx * sizeof(float)) && same_bits(dw, dw2, nw * sizeof(float)),
              "%s: backward not deterministic", tc->name);

    int canary_ok = 1;
    for (size_t i = 0; i < SCRATCH_GUARD; i++)
        canary_ok &= scratch[nscratch + i] == 12345.0f + (float)i;
    CHECK_MSG(canary_ok, "%s: kernel wrote past the plan's scratch size", tc->name);
    be->conv2d_plan_free(plan);

    float *fl[] = { x, w, b, y, y2, dy, dx, dx2, dw, dw0, dw2, db, db0, db2, scratch };
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
        rt_free(fl[i]);
    double *dl[] = { xd, wd, bd, rd, yd, gx, gw, gb };
    for (size_t i = 0; i < sizeof dl / sizeof dl[0]; i++)
        rt_free(dl[i]);
}

static void test_conv(void)
{
    static const conv_case cases[] = {
        /* name                       n  c   h    w   k  ks s  p  bias fd  chunks */
        { "3x3/1 pad1 non-square",    2, 3,  5,   6,  4, 3, 1, 1, 1, 1000, 0 },
        { "3x3/2 pad1 odd",           3, 2,  7,   7,  3, 3, 2, 1, 0, 1000, 0 },
        { "3x3/2 pad0 drops edge",    2, 2,  8,   9,  3, 3, 2, 0, 1, 1000, 0 },
        { "3x3/1 pad1 batch 1",       1, 4,  4,   4,  5, 3, 1, 1, 1, 1000, 0 },
        { "stem 7x7/2 pad3 28x28",    2, 1, 28,  28, 64, 7, 2, 3, 0,   40, 0 },
        { "stem batch 1 with bias",   1, 1, 28,  28, 64, 7, 2, 3, 1,   40, 0 },
        { "1x1/2 downsample 7x7",     2, 8,  7,   7, 16, 1, 2, 0, 0,  200, 0 },
        { "1x1/1 pointwise",          3, 5,  3,   4,  6, 1, 1, 0, 1, 1000, 0 },
        { "1x1/1 pointwise batch 1",  1, 5,  3,   4,  6, 1, 1, 0, 1, 1000, 0 },
        { "3x3/1 on 1x1 (layer4)",    4, 6,  1,   1,  5, 3, 1, 1, 1, 1000, 0 },
        /* two chunked cases: narrow samples (one sgemm per chunk + reorder)
         * and wide ones (per-sample sgemms), see conv2d.c */
        { "3x3/1 chunks, narrow",    40, 64, 7,   7,  8, 3, 1, 1, 1,   12, 1 },
        { "3x3/1 chunks, wide",       7, 2, 100, 160, 3, 3, 1, 1, 1,   12, 1 },
        /* ResNet18 on 28x28 inputs, full channel counts */
        { "r18 stem 7x7/2 odd, bias", 3, 1, 28,  28, 64, 7, 2, 3, 1,    8, 0 },
        { "r18 layer1 3x3/1 64 7x7",  5, 64, 7,   7, 64, 3, 1, 1, 0,    4, 0 },
        { "r18 layer1 batch 1 bias",  1, 64, 7,   7, 64, 3, 1, 1, 1,    4, 0 },
        { "r18 layer2 3x3/2 64->128", 3, 64, 7,   7, 128, 3, 2, 1, 0,   4, 0 },
        { "r18 downsample 1x1/2",     7, 64, 7,   7, 128, 1, 2, 0, 0,   8, 0 },
        { "r18 downsample batch 1",   1, 64, 7,   7, 128, 1, 2, 0, 1,   8, 0 },
        { "r18 layer3 3x3/1 256 2x2", 3, 256, 2,  2, 256, 3, 1, 1, 0,   4, 0 },
        { "r18 layer4 3x3/1 on 1x1",  3, 256, 1,  1, 512, 3, 1, 1, 1,   4, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_conv_case(&cases[i]);

    rt_conv_geom g;
    CHECK(!rt_conv_geom_init(&g, 1, 2, 2, 1, 5, 5, 1, 1));   /* kernel larger than input */
    CHECK(!rt_conv_geom_init(&g, 0, 4, 4, 1, 3, 3, 1, 1));
    CHECK(!rt_conv_geom_init(&g, 1, 4, 4, 1, 3, 3, 0, 1));
}

/* ---- linear ------------------------------------------------------------- */

typedef struct lin_ref {
    int n, in, out;
    double *x, *w, *b, *r;
} lin_ref;

static double lin_ref_y(const lin_ref *c, int i, int o)
{
    double acc = c->b ? c->b[o] : 0.0;
    for (int j = 0; j < c->in; j++)
        acc += c->x[(size_t)i * c->in + j] * c->w[(size_t)o * c->in + j];
    return acc;
}

static double lin_ref_loss(void *ctx)
{
    lin_ref *c = ctx;
    double l = 0.0;
    for (int i = 0; i < c->n; i++)
        for (int o = 0; o < c->out; o++)
            l += lin_ref_y(c, i, o) * c->r[(size_t)i * c->out + o];
    return l;
}

static void check_close(const char *what, const float *got, const float *want, size_t n);

/* Whether this backend's weight-gradient product gives a block of rows
 * the bits of the same rows of the whole product: the naive backend's
 * loops and oneDNN's sgemm do; OpenBLAS's does not (its kernels for small
 * products depend on their size), and there the rows are only close. */
static int row_blocks_exact(void)
{
    rt_cpu_gemm_path path;
    if (strcmp(be->name, "cpu") != 0)
        return 1;
    CHECK_OK(rt_cpu_gemm_selected(&path));
    return path == RT_CPU_GEMM_DNNL;
}

/* The deferred form (the node update, src/train/node_update.c): a backward
 * with dw NULL writes dx alone, the same bits as the whole backward's; and
 * the weight and bias gradients of a block of rows [r0, r1), formed from
 * that block's columns of dy stored as their own [n][rows] array, are the
 * whole gradient's rows: bit for bit where row_blocks_exact, which the
 * node update's bits rely on, else within rounding. want_*: the whole
 * backward's results. */
static void check_linear_deferred(const float *want_dx, const float *want_dw,
                                  const float *want_db, const float *dy, const float *x,
                                  const float *w, int n, int in, int out)
{
    size_t nx = (size_t)n * in;
    float *dx = falloc(nx);
    fill_nan(dx, nx);
    CHECK_OK(be->linear_backward(dx, NULL, NULL, dy, NULL, w, n, in, out));
    CHECK_MSG(same_bits(dx, want_dx, nx * sizeof(float)),
              "linear %dx%d->%d: dx with dw NULL differs from the whole backward's", n, in, out);
    rt_free(dx);
    int cuts[] = {0, out / 3, out / 2 + 1, out};
    for (int c = 0; c + 1 < 4; c++) {
        int r0 = cuts[c], r1 = cuts[c + 1] < out ? cuts[c + 1] : out, rows = r1 - r0;
        if (rows <= 0)
            continue;
        float *block = falloc((size_t)n * rows), *dw = falloc((size_t)rows * in);
        float *db = falloc((size_t)rows);
        for (int i = 0; i < n; i++)
            memcpy(block + (size_t)i * rows, dy + (size_t)i * out + r0, rows * sizeof(float));
        CHECK_OK(be->linear_backward(NULL, dw, want_db ? db : NULL, block, x, NULL, n, in,
                                     rows));
        char what[96];
        snprintf(what, sizeof what, "linear %dx%d->%d: dw of rows [%d, %d) from their dy block",
                 n, in, out, r0, r1);
        if (row_blocks_exact())
            CHECK_MSG(same_bits(dw, want_dw + (size_t)r0 * in, (size_t)rows * in * sizeof(float)),
                      "%s differs", what);
        else
            check_close(what, dw, want_dw + (size_t)r0 * in, (size_t)rows * in);
        /* The bias sums are the backend's own loop on every path. */
        if (want_db)
            CHECK_MSG(same_bits(db, want_db + r0, (size_t)rows * sizeof(float)),
                      "linear %dx%d->%d: db of rows [%d, %d) differs", n, in, out, r0, r1);
        rt_free(block);
        rt_free(dw);
        rt_free(db);
    }
}

static void run_linear_case(int n, int in, int out, int bias, size_t fd_samples)
{
    size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
    float *x = falloc(nx), *w = falloc(nw), *b = falloc(out), *y = falloc(ny), *dy = falloc(ny);
    float *dx = falloc(nx), *dw = falloc(nw), *db = falloc(out);
    double *xd = dalloc(nx), *wd = dalloc(nw), *bd = dalloc(out), *rd = dalloc(ny);
    double *yd = dalloc(ny);
    fill_uniform(x, nx, -1, 1);
    fill_uniform(w, nw, -1, 1);
    fill_uniform(b, out, -1, 1);
    fill_uniform(dy, ny, -1, 1);
    to_double(xd, x, nx);
    to_double(wd, w, nw);
    to_double(bd, b, out);
    to_double(rd, dy, ny);
    lin_ref ref = { n, in, out, xd, wd, bias ? bd : NULL, rd };
    char what[96];

    fill_nan(y, ny);
    CHECK_OK(be->linear_forward(y, x, w, bias ? b : NULL, n, in, out));
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++)
            yd[(size_t)i * out + o] = lin_ref_y(&ref, i, o);
    snprintf(what, sizeof what, "linear %dx%d->%d forward", n, in, out);
    check_array(what, y, yd, ny, REL_TOL);

    /* dw, db start at zero here so the result is the gradient itself;
     * accumulation is checked by calling backward a second time. */
    fill_nan(dx, nx);
    CHECK_OK(be->linear_backward(dx, dw, bias ? db : NULL, dy, x, w, n, in, out));
    snprintf(what, sizeof what, "linear %dx%d->%d dx", n, in, out);
    check_fd(what, dx, lin_ref_loss, &ref, xd, nx, fd_samples, 1e-2, 1.0, REL_TOL * out);
    snprintf(what, sizeof what, "linear %dx%d->%d dw", n, in, out);
    check_fd(what, dw, lin_ref_loss, &ref, wd, nw, fd_samples, 1e-2, 1.0, REL_TOL * n);
    if (bias) {
        snprintf(what, sizeof what, "linear %dx%d->%d db", n, in, out);
        check_fd(what, db, lin_ref_loss, &ref, bd, out, fd_samples, 1e-2, 1.0, REL_TOL * n);
    }
    float *dw1 = falloc(nw), *db1 = falloc(out);
    memcpy(dw1, dw, nw * sizeof(float));
    memcpy(db1, db, out * sizeof(float));
    CHECK_OK(be->linear_backward(NULL, dw, bias ? db : NULL, dy, x, w, n, in, out));
    int doubled = 1;
    for (size_t i = 0; i < nw; i++)
        doubled &= dw[i] == 2.0f * dw1[i];   /* x + x is exact in float */
    for (int i = 0; bias && i < out; i++)
        doubled &= db[i] == 2.0f * db1[i];
    CHECK_MSG(doubled, "linear: second backward (dx NULL) does not add the same gradient");
    if (!bias)
        for (int i = 0; i < out; i++)
            CHECK(db[i] == 0.0f);
    check_linear_deferred(dx, dw1, bias ? db1 : NULL, dy, x, w, n, in, out);

    float *fl[] = { x, w, b, y, dy, dx, dw, db, dw1, db1 };
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
        rt_free(fl[i]);
    double *dl[] = { xd, wd, bd, rd, yd };
    for (size_t i = 0; i < sizeof dl / sizeof dl[0]; i++)
        rt_free(dl[i]);
}

static void test_linear(void)
{
    /* Gradient scales: entries of dx are sums of `out` terms in [-1,1], of
     * dw and db sums of `n` terms, so the absolute tolerance is REL_TOL
     * times that count (an upper bound on the entry's magnitude). */
    run_linear_case(5, 7, 4, 1, 1000);
    run_linear_case(3, 6, 2, 0, 1000);
    run_linear_case(1, 9, 5, 1, 1000);
    run_linear_case(32, 784, 10, 1, 60);
    run_linear_case(32, 512, 512, 1, 30);   /* the MLP's hidden layer: the node update's rows */
    /* A narrow head over more samples than oneDNN's transposed forward
     * takes at a time (linear.c, NARROW_SAMPLES). */
    run_linear_case(300, 40, 10, 1, 200);
    run_linear_case(257, 30, 16, 0, 200);
}

/* ---- linear on several threads (cpu backend) -------------------------------- */

/* One forward and backward of a linear layer on fresh outputs and zeroed
 * gradients: y [n][out], dx [n][in], dw [out][in], db [out]. */
typedef struct lin_run {
    float *y, *dx, *dw, *db;
} lin_run;

static void lin_run_once(lin_run *r, const float *x, const float *w, const float *b,
                         const float *dy, int n, int in, int out)
{
    fill_nan(r->y, (size_t)n * out);
    fill_nan(r->dx, (size_t)n * in);
    memset(r->dw, 0, (size_t)out * in * sizeof(float));
    memset(r->db, 0, (size_t)out * sizeof(float));
    CHECK_OK(be->linear_forward(r->y, x, w, b, n, in, out));
    CHECK_OK(be->linear_backward(r->dx, r->dw, r->db, dy, x, w, n, in, out));
}

static void lin_run_alloc(lin_run *r, int n, int in, int out)
{
    *r = (lin_run){falloc((size_t)n * out), falloc((size_t)n * in), falloc((size_t)out * in),
                   falloc((size_t)out)};
}

static void lin_run_free(lin_run *r)
{
    rt_free(r->y);
    rt_free(r->dx);
    rt_free(r->dw);
    rt_free(r->db);
}

static int lin_run_same(const lin_run *a, const lin_run *b, int n, int in, int out)
{
    return same_bits(a->y, b->y, (size_t)n * out * sizeof(float)) &&
           same_bits(a->dx, b->dx, (size_t)n * in * sizeof(float)) &&
           same_bits(a->dw, b->dw, (size_t)out * in * sizeof(float)) &&
           same_bits(a->db, b->db, (size_t)out * sizeof(float));
}

static void check_close(const char *what, const float *got, const float *want, size_t n)
{
    double *d = dalloc(n);
    to_double(d, want, n);
    check_array(what, got, d, n, REL_TOL);
    rt_free(d);
}

/* The MLP's layers at batch 64 are large enough to be split over the
 * threads (forward by output feature, backward by output feature for dw
 * and db and by sample for dx; linear.c). Each output element is still
 * one dot product computed by one sgemm call, so:
 * - on a given thread count the results are the same bits on every call
 *   (and after calls of other shapes in between);
 * - db is the same bits on any thread count (its sums keep their order);
 * - y, dx and dw may differ from the one-thread results in the last bits
 *   (OpenBLAS and oneDNN may pick other edge kernels for a slice of columns,
 *   which sum the same products in another order); they are checked against them with
 *   REL_TOL, the tolerance both meet against the double definitions. */
static void run_linear_threads_case(int n, int in, int out, int threads)
{
    size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
    float *x = falloc(nx), *w = falloc(nw), *b = falloc(out), *dy = falloc(ny);
    fill_uniform(x, nx, -1, 1);
    fill_uniform(w, nw, -1, 1);
    fill_uniform(b, out, -1, 1);
    fill_uniform(dy, ny, -1, 1);
    lin_run one, first, again;
    lin_run_alloc(&one, n, in, out);
    lin_run_alloc(&first, n, in, out);
    lin_run_alloc(&again, n, in, out);
    char what[96];

    rt_cpu_set_threads(1);
    lin_run_once(&one, x, w, b, dy, n, in, out);
    rt_cpu_set_threads(threads);
    lin_run_once(&first, x, w, b, dy, n, in, out);
    for (int rep = 0; rep < 3; rep++) {
        /* another shape in between, as the next layer of a model */
        lin_run other;
        lin_run_alloc(&other, n, out, in);
        lin_run_once(&other, dy, w, x, x, n, out, in);   /* w read as [in][out] */
        lin_run_free(&other);
        lin_run_once(&again, x, w, b, dy, n, in, out);
        snprintf(what, sizeof what, "linear %dx%d->%d on %d threads, call %d", n, in, out,
                 threads, rep + 2);
        CHECK_MSG(lin_run_same(&first, &again, n, in, out),
                  "%s: not the same bits as the first call", what);
    }
    snprintf(what, sizeof what, "linear %dx%d->%d db on %d vs 1 thread", n, in, out, threads);
    CHECK_MSG(same_bits(first.db, one.db, (size_t)out * sizeof(float)),
              "%s: not the same bits", what);
    snprintf(what, sizeof what, "linear %dx%d->%d forward on %d vs 1 thread", n, in, out,
             threads);
    check_close(what, first.y, one.y, ny);
    snprintf(what, sizeof what, "linear %dx%d->%d dx on %d vs 1 thread", n, in, out, threads);
    check_close(what, first.dx, one.dx, nx);
    snprintf(what, sizeof what, "linear %dx%d->%d dw on %d vs 1 thread", n, in, out, threads);
    check_close(what, first.dw, one.dw, nw);

    lin_run_free(&one);
    lin_run_free(&first);
    lin_run_free(&again);
    float *fl[] = { x, w, b, dy };
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
        rt_free(fl[i]);
}

static void test_linear_threads(void)
{
    int saved = rt_cpu_threads();
    for (int threads = 2; threads <= 3; threads++) {
        run_linear_threads_case(64, 784, 512, threads);
        run_linear_threads_case(64, 512, 512, threads);
        run_linear_threads_case(33, 300, 130, threads);   /* uneven pieces */
        run_linear_threads_case(600, 64, 10, threads);    /* a head, split by sample */
    }
    rt_cpu_set_threads(saved);
}

/* ---- elementwise -------------------------------------------------------- */

static double relu_loss_ctx_r[64];
static double relu_loss(void *ctx)
{
    double *x = ctx, l = 0.0;
    for (int i = 0; i < 64; i++)
        l += (x[i] > 0 ? x[i] : 0.0) * relu_loss_ctx_r[i];
    return l;
}

static void test_relu_add(void)
{
    float x[64], y[64], dy[64], dx[64];
    double xd[64];
    fill_uniform(x, 64, -1, 1);
    for (int i = 0; i < 64; i++)   /* keep |x| >= 0.05 so the FD step never crosses 0 */
        x[i] = x[i] < 0 ? x[i] - 0.05f : x[i] + 0.05f;
    x[0] = 0.0f;                    /* relu(0) = 0 and its gradient is taken as 0 */
    fill_uniform(dy, 64, -1, 1);
    to_double(xd, x, 64);
    to_double(relu_loss_ctx_r, dy, 64);
    CHECK_OK(be->relu_forward(y, x, 64));
    int ok = 1;
    for (int i = 0; i < 64; i++)
        ok &= y[i] == (x[i] > 0 ? x[i] : 0.0f);
    CHECK_MSG(ok, "relu forward");
    /* NaN propagates (PyTorch's relu(nan) is nan): a NaN weight must reach
     * the non-finite-loss check, not vanish as 0; infinities keep their
     * rule. */
    float special[4] = {NAN, INFINITY, -INFINITY, -0.0f}, out[4];
    CHECK_OK(be->relu_forward(out, special, 4));
    CHECK_MSG(isnan(out[0]) && out[1] == INFINITY && out[2] == 0.0f && out[3] == 0.0f &&
              !signbit(out[3]), "relu(nan, inf, -inf, -0) = %g %g %g %g", out[0], out[1],
              out[2], out[3]);
    CHECK_OK(be->relu_backward(dx, dy, y, 64));
    CHECK(dx[0] == 0.0f);
    ok = 1;
    for (int i = 1; i < 64; i++)
        ok &= fabs(dx[i] - fd_grad(relu_loss, xd, xd, i, 1e-3)) <= 1e-9;
    CHECK_MSG(ok, "relu backward differs from finite differences");
    /* in place, dx == dy */
    memcpy(dx, dy, sizeof dx);
    CHECK_OK(be->relu_backward(dx, dx, y, 64));
    ok = 1;
    for (int i = 0; i < 64; i++)
        ok &= dx[i] == (y[i] > 0 ? dy[i] : 0.0f);
    CHECK_MSG(ok, "relu backward in place");

    float a[64];
    memcpy(a, x, sizeof a);
    CHECK_OK(be->add(a, dy, 64));
    ok = 1;
    for (int i = 0; i < 64; i++)
        ok &= a[i] == x[i] + dy[i];
    CHECK_MSG(ok, "add_inplace");
}

static void test_dropout(void)
{
    const size_t n = 200000;
    const float p = 0.3f;
    float *x = falloc(n), *y = falloc(n), *mask = falloc(n), *y2 = falloc(n), *m2 = falloc(n);
    float *dx = falloc(n);
    fill_uniform(x, n, -1, 1);
    const uint64_t key = rt_rng_key(7, 3, 0, 0);
    CHECK_OK(be->dropout_forward(y, mask, x, n, p, key));

    /* The mask follows the documented stream: element i dropped iff the
     * i-th uniform of `key` is below p; kept elements scaled by 1/(1-p). */
    rt_rng rng;
    rt_rng_init(&rng, key);
    const float keep = 1.0f / (1.0f - p);
    size_t dropped = 0, wrong = 0;
    for (size_t i = 0; i < n; i++) {
        int drop = rt_rng_uniform(&rng) < p;
        dropped += drop;
        wrong += mask[i] != (drop ? 0.0f : keep) || y[i] != x[i] * mask[i];
    }
    CHECK_MSG(wrong == 0, "dropout: %zu elements disagree with the Philox stream", wrong);
    /* Fraction dropped: binomial, sd = sqrt(p(1-p)/n) = 0.001; 6 sd. */
    double frac = (double)dropped / n;
    CHECK_CLOSE(frac, p, 6 * sqrt(p * (1 - p) / n), 0);
    /* Unbiased: mean of the mask is 1, sd = sqrt(p/(1-p)/n) = 0.0015; 6 sd. */
    double msum = 0.0;
    for (size_t i = 0; i < n; i++)
        msum += mask[i];
    CHECK_CLOSE(msum / n, 1.0, 6 * sqrt(p / (1 - p) / n), 0);

    /* same key: same bits; another key: another mask */
    CHECK_OK(be->dropout_forward(y2, m2, x, n, p, key));
    CHECK(same_bits(mask, m2, n * sizeof(float)) && same_bits(y, y2, n * sizeof(float)));
    CHECK_OK(be->dropout_forward(y2, m2, x, n, p, rt_rng_key(7, 4, 0, 0)));
    size_t differ = 0;
    for (size_t i = 0; i < n; i++)
        differ += (mask[i] == 0) != (m2[i] == 0);
    /* independent masks disagree with probability 2p(1-p) = 0.42 */
    CHECK_CLOSE((double)differ / n, 2 * p * (1 - p), 0.01, 0);

    CHECK_OK(be->dropout_backward(dx, x, mask, n));
    wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += dx[i] != x[i] * mask[i];
    CHECK_MSG(wrong == 0, "dropout backward is not dy * mask");

    /* p = 0 is the identity */
    CHECK_OK(be->dropout_forward(y2, m2, x, n, 0.0f, key));
    CHECK(same_bits(y2, x, n * sizeof(float)));

    float *fl[] = { x, y, mask, y2, m2, dx };
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
        rt_free(fl[i]);
}

/* ---- pooling -------------------------------------------------------------- */

typedef struct pool_ref {
    const rt_pool_geom *g;
    int n;
    double *x, *r;
} pool_ref;

/* Naive max-pool of one window with PyTorch's rules; returns the plane
 * index of the first maximum over the real (unpadded) elements. */
static int pool_ref_window(const pool_ref *c, size_t plane, int oy, int ox, double *out)
{
    const rt_pool_geom *g = c->g;
    int best_i = -1;
    double best = 0.0;
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++) {
            int iy = oy * g->stride - g->pad + ky, ix = ox * g->stride - g->pad + kx;
            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                continue;
            double v = c->x[plane * g->h * g->w + (size_t)iy * g->w + ix];
            if (best_i < 0 || v > best) {
                best = v;
                best_i = iy * g->w + ix;
            }
        }
    *out = best;
    return best_i;
}

static double pool_ref_loss(void *ctx)
{
    pool_ref *c = ctx;
    const rt_pool_geom *g = c->g;
    double l = 0.0, v;
    size_t o = 0;
    for (size_t p = 0; p < (size_t)c->n * g->c; p++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, o++) {
                pool_ref_window(c, p, oy, ox, &v);
                l += v * c->r[o];
            }
    return l;
}

/* ties = 1: values from {-3,-2,-1} (many ties, all below the zero a wrong
 * zero-padding would insert); ties = 0: distinct negative values 0.01 apart
 * (a shuffled ramp), so the finite-difference step 1e-3 never changes the
 * winner. */
static void run_maxpool_case(int n, int c, int h, int w, int ties)
{
    rt_pool_geom g;
    CHECK(rt_pool_geom_init(&g, c, h, w, 3, 2, 1));
    CHECK(g.oh == (h + 2 - 3) / 2 + 1 && g.ow == (w + 2 - 3) / 2 + 1);
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * g.oh * g.ow;
    float *x = falloc(nx), *y = falloc(ny), *dy = falloc(ny), *dx = falloc(nx);
    int32_t *arg = NULL;
    CHECK_OK(rt_alloc(&arg, ny, sizeof(int32_t), "argmax"));
    double *xd = dalloc(nx), *rd = dalloc(ny);
    uint32_t *perm = NULL;
    CHECK_OK(rt_alloc(&perm, nx, sizeof(uint32_t), "perm"));
    rt_rng_permutation(rt_rng_u32(&test_rng), perm, (uint32_t)nx);
    for (size_t i = 0; i < nx; i++)
        x[i] = ties ? -1.0f - (float)rt_rng_below(&test_rng, 3) : -1.0f - 0.01f * perm[i];
    fill_uniform(dy, ny, -1, 1);
    to_double(xd, x, nx);
    to_double(rd, dy, ny);
    pool_ref ref = { &g, n, xd, rd };

    CHECK_OK(be->maxpool2d_forward(y, arg, x, &g, n));
    size_t o = 0, wrong = 0;
    for (size_t p = 0; p < (size_t)n * c; p++)
        for (int oy = 0; oy < g.oh; oy++)
            for (int ox = 0; ox < g.ow; ox++, o++) {
                double v;
                int a = pool_ref_window(&ref, p, oy, ox, &v);
                wrong += y[o] != (float)v || arg[o] != a;
            }
    CHECK_MSG(wrong == 0, "maxpool %dx%d ties=%d: %zu outputs or argmax differ", h, w, ties,
              wrong);

    fill_nan(dx, nx);
    CHECK_OK(be->maxpool2d_backward(dx, dy, arg, &g, n));
    if (!ties) {
        check_fd("maxpool dx", dx, pool_ref_loss, &ref, xd, nx, nx, 1e-3, 1.0, 1e-6);
    } else {
        /* with ties the gradient goes to the first maximum (argmax checked
         * above): route dy by the reference argmax and compare exactly */
        double *gd = dalloc(nx), v;
        o = 0;
        for (size_t p = 0; p < (size_t)n * c; p++)
            for (int oy = 0; oy < g.oh; oy++)
                for (int ox = 0; ox < g.ow; ox++, o++)
                    gd[p * h * w + pool_ref_window(&ref, p, oy, ox, &v)] += dy[o];
        check_array("maxpool dx (ties)", dx, gd, nx, 1e-6);
        rt_free(gd);
    }
    float *fl[] = { x, y, dy, dx };
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
        rt_free(fl[i]);
    rt_free(arg);
    rt_free(perm);
    rt_free(xd);
    rt_free(rd);
}

static double avg_r[2 * 3];
static double avg_loss(void *ctx)
{
    double *x = ctx, l = 0.0;
    for (int p = 0; p < 6; p++) {
        double s = 0.0;
        for (int i = 0; i < 5; i++)
            s += x[p * 5 + i];
        l += s / 5 * avg_r[p];
    }
    return l;
}

static void test_pool(void)
{
    run_maxpool_case(2, 3, 14, 14, 0);   /* even: 14 -> 7 (after the 28x28 stem) */
    run_maxpool_case(2, 3, 7, 7, 0);     /* odd: 7 -> 4 */
    run_maxpool_case(1, 2, 8, 9, 0);     /* non-square */
    run_maxpool_case(2, 3, 14, 14, 1);
    run_maxpool_case(2, 2, 7, 9, 1);
    rt_pool_geom g;
    CHECK(!rt_pool_geom_init(&g, 1, 7, 7, 3, 2, 2));   /* pad > kernel/2, as PyTorch */

    /* global average pool, n = 2, c = 3, hw = 5 */
    float x[30], y[6], dy[6], dx[30];
    double xd[30];
    fill_uniform(x, 30, -1, 1);
    fill_uniform(dy, 6, -1, 1);
    to_double(xd, x, 30);
    to_double(avg_r, dy, 6);
    CHECK_OK(be->global_avgpool_forward(y, x, 2, 3, 5));
    double yd[6];
    for (int p = 0; p < 6; p++) {
        yd[p] = 0;
        for (int i = 0; i < 5; i++)
            yd[p] += xd[p * 5 + i] / 5;
    }
    check_array("global avgpool forward", y, yd, 6, 1e-6);   /* 5-term sums: a few ulps */
    CHECK_OK(be->global_avgpool_backward(dx, dy, 2, 3, 5));
    check_fd("global avgpool dx", dx, avg_loss, xd, xd, 30, 30, 1e-2, 1.0, 1e-6);
}

/* ---- batch norm ------------------------------------------------------------ */

#define BN_N 4
#define BN_C 3
#define BN_HW 10
#define BN_EPS 1e-5
#define BN_COUNT (BN_N * BN_C * BN_HW)

typedef struct bn_ref {
    double *x, *gamma, *beta, *r;
} bn_ref;

/* Full training-mode batch norm in double: batch mean, biased variance. */
static void bn_ref_forward(double *y, const bn_ref *c)
{
    const int m = BN_N * BN_HW;
    for (int ch = 0; ch < BN_C; ch++) {
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < BN_N; i++)
            for (int j = 0; j < BN_HW; j++)
                mean += c->x[(i * BN_C + ch) * BN_HW + j] / m;
        for (int i = 0; i < BN_N; i++)
            for (int j = 0; j < BN_HW; j++) {
                double d = c->x[(i * BN_C + ch) * BN_HW + j] - mean;
                var += d * d / m;
            }
        double rstd = 1.0 / sqrt(var + BN_EPS);
        for (int i = 0; i < BN_N; i++)
            for (int j = 0; j < BN_HW; j++) {
                int k = (i * BN_C + ch) * BN_HW + j;
                y[k] = (c->x[k] - mean) * rstd * c->gamma[ch] + c->beta[ch];
            }
    }
}

static double bn_ref_loss(void *ctx)
{
    bn_ref *c = ctx;
    double y[BN_COUNT], l = 0.0;
    bn_ref_forward(y, c);
    for (int i = 0; i < BN_COUNT; i++)
        l += y[i] * c->r[i];
    return l;
}

/* mean and rstd from the (possibly all-reduced) sums, as the nn layer will */
static void bn_stats(float *mean, float *rstd, const float *sum, const float *sumsq, double m)
{
    for (int ch = 0; ch < BN_C; ch++) {
        double mu = sum[ch] / m, var = sumsq[ch] / m - mu * mu;
        mean[ch] = (float)mu;
        rstd[ch] = (float)(1.0 / sqrt((var > 0 ? var : 0) + BN_EPS));
    }
}

static void test_batchnorm(void)
{
    float x[BN_COUNT], y[BN_COUNT], dy[BN_COUNT], dx[BN_COUNT];
    float gamma[BN_C], beta[BN_C], stats[2 * BN_C + 1], mean[BN_C], rstd[BN_C];
    float dstats[2 * BN_C];
    float *sum = stats, *sumsq = stats + BN_C, *sdy = dstats, *sdyx = dstats + BN_C;
    double xd[BN_COUNT], rd[BN_COUNT], yd[BN_COUNT], gd[BN_C], bd[BN_C];
    /* channel means of 3 and spreads of 2 exercise the sumsq/m - mean^2 cancellation */
    fill_uniform(x, BN_COUNT, 1, 5);
    fill_uniform(dy, BN_COUNT, -1, 1);
    fill_uniform(gamma, BN_C, 0.5f, 1.5f);
    fill_uniform(beta, BN_C, -1, 1);
    to_double(xd, x, BN_COUNT);
    to_double(rd, dy, BN_COUNT);
    to_double(gd, gamma, BN_C);
    to_double(bd, beta, BN_C);
    bn_ref ref = { xd, gd, bd, rd };

    /* sums: double accumulation, one float rounding at the end (<= 1 ulp) */
    CHECK_OK(be->bn_sums(stats, x, BN_N, BN_C, BN_HW));
    CHECK(stats[2 * BN_C] == (float)(BN_N * BN_HW));
    for (int ch = 0; ch < BN_C; ch++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < BN_N; i++)
            for (int j = 0; j < BN_HW; j++) {
                double v = xd[(i * BN_C + ch) * BN_HW + j];
                s += v;
                s2 += v * v;
            }
        CHECK_CLOSE(sum[ch], s, 0, 2e-7);
        CHECK_CLOSE(sumsq[ch], s2, 0, 2e-7);
    }

    /* normalize composed from the kernels vs the double forward: errors are
     * a few float ulps of |x - mean| * rstd * gamma ~ 3 (plus the float
     * rounding of mean/rstd), far below 1e-5 */
    const double m = BN_N * BN_HW;
    const float count = (float)m;
    /* the backend's statistics equal the definition's, and the running
     * statistics move by momentum towards the batch's (unbiased variance) */
    float run_mean[BN_C], run_var[BN_C], batches[1] = {0}, want_mean[BN_C], want_rstd[BN_C];
    for (int ch = 0; ch < BN_C; ch++) {
        run_mean[ch] = 0.5f;
        run_var[ch] = 2.0f;
    }
    CHECK_OK(be->bn_train_stats(mean, rstd, run_mean, run_var, batches, stats, BN_C, BN_EPS,
                                0.1f));
    bn_stats(want_mean, want_rstd, sum, sumsq, m);
    for (int ch = 0; ch < BN_C; ch++) {
        CHECK_CLOSE(mean[ch], want_mean[ch], 0, 1e-7);
        CHECK_CLOSE(rstd[ch], want_rstd[ch], 0, 1e-7);
        double mu = sum[ch] / m, var = sumsq[ch] / m - mu * mu;
        CHECK_CLOSE(run_mean[ch], 0.9 * 0.5 + 0.1 * mu, 0, 1e-6);
        CHECK_CLOSE(run_var[ch], 0.9 * 2.0 + 0.1 * var * m / (m - 1), 0, 1e-6);
    }
    CHECK(batches[0] == 1.0f);
    CHECK_OK(be->bn_normalize(y, x, mean, rstd, gamma, beta, BN_N, BN_C, BN_HW));
    bn_ref_forward(yd, &ref);
    check_array("bn forward", y, yd, BN_COUNT, 1e-5);

    /* backward composed from the kernels vs finite differences of the full
     * double batch norm (step 1e-4: truncation ~1e-8, rounding ~1e-11) */
    CHECK_OK(be->bn_backward_sums(dstats, dy, x, mean, rstd, BN_N, BN_C, BN_HW));
    CHECK_OK(be->bn_backward_dx(dx, dy, x, mean, rstd, gamma, dstats, &count, BN_N, BN_C,
                                BN_HW));
    check_fd("bn dx", dx, bn_ref_loss, &ref, xd, BN_COUNT, BN_COUNT, 1e-4, 1.0, 1e-4);
    check_fd("bn dgamma (= sum dy*xhat)", sdyx, bn_ref_loss, &ref, gd, BN_C, BN_C, 1e-4,
             1.0, 1e-4);
    check_fd("bn dbeta (= sum dy)", sdy, bn_ref_loss, &ref, bd, BN_C, BN_C, 1e-4, 1.0, 1e-4);

    /* Split across two "ranks" (first and second half of the batch): summed
     * partial sums give the full statistics, and dx computed per half with
     * the global sums and count equals the full-batch dx. */
    float st1[2 * BN_C + 1], st2[2 * BN_C + 1], ds1[2 * BN_C], ds2[2 * BN_C];
    float *s1 = st1, *q1 = st1 + BN_C, *s2 = st2, *q2 = st2 + BN_C;
    float *a1 = ds1, *b1 = ds1 + BN_C, *a2 = ds2, *b2 = ds2 + BN_C;
    float dxs[BN_COUNT];
    const int half = BN_N / 2, off = half * BN_C * BN_HW;
    CHECK_OK(be->bn_sums(st1, x, half, BN_C, BN_HW));
    CHECK_OK(be->bn_sums(st2, x + off, BN_N - half, BN_C, BN_HW));
    CHECK(st1[2 * BN_C] + st2[2 * BN_C] == count);
    for (int ch = 0; ch < BN_C; ch++) {
        CHECK_CLOSE(s1[ch] + s2[ch], sum[ch], 0, 1e-6);
        CHECK_CLOSE(q1[ch] + q2[ch], sumsq[ch], 0, 1e-6);
    }
    CHECK_OK(be->bn_backward_sums(ds1, dy, x, mean, rstd, half, BN_C, BN_HW));
    CHECK_OK(be->bn_backward_sums(ds2, dy + off, x + off, mean, rstd, BN_N - half, BN_C, BN_HW));
    for (int ch = 0; ch < BN_C; ch++) {
        a1[ch] += a2[ch];
        b1[ch] += b2[ch];
    }
    CHECK_OK(be->bn_backward_dx(dxs, dy, x, mean, rstd, gamma, ds1, &count, half, BN_C, BN_HW));
    CHECK_OK(be->bn_backward_dx(dxs + off, dy + off, x + off, mean, rstd, gamma, ds1, &count,
                                BN_N - half, BN_C, BN_HW));
    double dxd[BN_COUNT];
    to_double(dxd, dx, BN_COUNT);
    check_array("bn dx from split sums", dxs, dxd, BN_COUNT, 1e-5);
    CHECK_OK(be->bn_backward_dx(NULL, dy, x, mean, rstd, gamma, dstats, &count, BN_N, BN_C,
                                BN_HW));
}

/* ---- the kernels' thread pool ---------------------------------------------- */

#define PAR_N 1000
typedef struct par_job {
    int *hits;          /* [PAR_N]: times each index was covered */
    int pieces;         /* pieces seen (atomic: pieces run concurrently) */
    int nested_pieces;  /* pieces of the nested loop, summed */
} par_job;

static void par_mark(void *arg, size_t lo, size_t hi)
{
    par_job *j = arg;
    for (size_t i = lo; i < hi; i++)
        __atomic_fetch_add(&j->hits[i], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&j->pieces, 1, __ATOMIC_RELAXED);
}

/* A piece that starts a loop of its own (runs serially, in that thread). */
static void par_nested(void *arg, size_t lo, size_t hi)
{
    par_job *j = arg;
    par_job inner = { j->hits, 0, 0 };
    rt_par_for(hi - lo, 4, par_mark, &inner);
    __atomic_fetch_add(&j->nested_pieces, inner.pieces, __ATOMIC_RELAXED);
}

/* Every index in exactly `times` pieces. */
static int par_covered(const int *hits, int times)
{
    for (int i = 0; i < PAR_N; i++)
        if (hits[i] != times)
            return 0;
    return 1;
}

static void *par_caller(void *arg)
{
    /* many loops in a row from this thread while another one does the same */
    par_job *j = arg;
    for (int r = 0; r < 200; r++)
        rt_par_for(PAR_N, 3, par_mark, j);
    return NULL;
}

static void test_parallel(void)
{
    static int hits[PAR_N], hits2[PAR_N];
    rt_cpu_set_threads(3);
    CHECK(rt_cpu_threads() == 3);
    for (int parts = 1; parts <= 5; parts++) {
        memset(hits, 0, sizeof hits);
        par_job j = { hits, 0, 0 };
        rt_par_for(PAR_N, parts, par_mark, &j);
        CHECK_MSG(par_covered(hits, 1) && j.pieces == parts, "%d parts: %d pieces", parts,
                  j.pieces);
    }
    /* fewer items than parts: one piece per item */
    memset(hits, 0, sizeof hits);
    par_job few = { hits, 0, 0 };
    rt_par_for(2, 3, par_mark, &few);
    CHECK(few.pieces == 2 && hits[0] == 1 && hits[1] == 1 && hits[2] == 0);
    /* nested: 3 outer pieces, each running 4 inner ones over its length */
    memset(hits, 0, sizeof hits);
    par_job nest = { hits, 0, 0 };
    rt_par_for(PAR_N, 3, par_nested, &nest);
    CHECK(nest.nested_pieces == 12);
    /* two threads using the pool at once: both loops complete */
    memset(hits, 0, sizeof hits);
    memset(hits2, 0, sizeof hits2);
    par_job a = { hits, 0, 0 }, b = { hits2, 0, 0 };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, par_caller, &b) == 0);
    par_caller(&a);
    pthread_join(t, NULL);
    CHECK(par_covered(hits, 200) && par_covered(hits2, 200));
    CHECK(a.pieces == 600 && b.pieces == 600);
}

/* The convolution checks on every path of the cpu backend this build has. */
static void test_cpu_conv_paths(void)
{
    static const rt_cpu_conv_path paths[] = { RT_CPU_CONV_IM2COL, RT_CPU_CONV_DNNL };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (rt_cpu_conv_select(paths[i]) != RT_OK) {
            rt_error_clear();   /* dnnl in a build without oneDNN */
            continue;
        }
        cpu_conv_path = paths[i];
        test_conv();
    }
}

/* The linear checks on every sgemm path of the cpu backend this build
 * has; `threads`: also the several-thread checks (test_linear_threads).
 * The default path is selected again afterwards. */
static void test_cpu_linear_paths(int threads)
{
    static const rt_cpu_gemm_path paths[] = { RT_CPU_GEMM_OPENBLAS, RT_CPU_GEMM_DNNL };
    rt_cpu_gemm_path saved;
    CHECK_OK(rt_cpu_gemm_selected(&saved));
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (rt_cpu_gemm_select(paths[i]) != RT_OK) {
            rt_error_clear();   /* dnnl in a build without oneDNN */
            continue;
        }
        if (threads)
            test_linear_threads();
        else
            test_linear();
    }
    CHECK_OK(rt_cpu_gemm_select(saved));
}

static void test_all_kernels(void)
{
    if (!strcmp(be->name, "cpu")) {
        test_cpu_conv_paths();
        test_cpu_linear_paths(0);
    } else {
        test_conv();
        test_linear();
    }
    test_relu_add();
    test_dropout();
    test_pool();
    test_batchnorm();
}

int main(void)
{
    rt_rng_init(&test_rng, rt_rng_key(2024, 0, 0, 0));
    test_parallel();
    be = rt_backend_find("cpu");
    rt_cpu_set_threads(1);
    test_all_kernels();
    rt_cpu_set_threads(3);
    test_all_kernels();
    test_cpu_linear_paths(1);
    be = rt_backend_find("naive");
    test_all_kernels();
    CHECK(be && rt_backend_find("no such backend") == NULL);
    return CHECK_DONE();
}
