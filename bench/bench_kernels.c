/* Benchmark of the CPU backend's conv2d and linear kernels (through its
 * table, as the layers call them) on the shapes of the
 * FashionMNIST models (ResNet18 on 28x28 at batch 128, the MLP at batch 32
 * and 64). For each layer it prints the forward+backward time, its GFLOP/s,
 * and the time of the bare sgemm calls of the same products (for conv: one
 * sgemm per chunk and product, as the batched path issues them), so the
 * ratio shows what im2col, col2im and the reorders cost (target: layer <=
 * 1.5x sgemm).
 *
 * The layer runs on the convolution path the backend selects (oneDNN when
 * built with it; RTRAIN_CPU_CONV=im2col|dnnl chooses, see
 * src/backend/cpu/conv2d.c); the sgemm baseline always uses the chunks
 * of the im2col path. Linear layers run their sgemm on the library the
 * backend selects (oneDNN's dnnl_sgemm when built with it, else OpenBLAS;
 * RTRAIN_CPU_GEMM=openblas|dnnl, src/backend/cpu/linear.c), and their
 * baseline is one whole-product call of that same library per product,
 * on as many threads as OpenBLAS has (oneDNN: OpenMP threads).
 *
 * Usage: bench_kernels [repetitions]   (best of `repetitions`, default 5)
 * OpenBLAS runs on 1 thread unless OPENBLAS_NUM_THREADS is set. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include "config.h"
#ifdef RT_HAVE_DNNL
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#endif
#include "rtrain/core.h"
#include "rtrain/backend.h"
#include "backend/cpu/kernels.h"

static const rt_backend *cpu;
/* The library of the linear layers' sgemm (and of their baseline). */
static rt_cpu_gemm_path gemm_path;

typedef struct conv_shape {
    const char *name;
    int c, hw, k, ksize, stride, pad;
    int need_dx;   /* 0 for the stem: its input is the image */
} conv_shape;

typedef struct lin_shape {
    const char *name;
    int in, out, n, need_dx;
} lin_shape;

static const conv_shape conv_shapes[] = {
    { "stem 1->64 7x7/2 @28", 1, 28, 64, 7, 2, 3, 0 },
    { "l1 64->64 3x3 @7", 64, 7, 64, 3, 1, 1, 1 },
    { "l2 64->128 3x3/2 @7", 64, 7, 128, 3, 2, 1, 1 },
    { "l2 128->128 3x3 @4", 128, 4, 128, 3, 1, 1, 1 },
    { "l2 ds 64->128 1x1/2 @7", 64, 7, 128, 1, 2, 0, 1 },
    { "l3 128->256 3x3/2 @4", 128, 4, 256, 3, 2, 1, 1 },
    { "l3 256->256 3x3 @2", 256, 2, 256, 3, 1, 1, 1 },
    { "l3 ds 128->256 1x1/2 @4", 128, 4, 256, 1, 2, 0, 1 },
    { "l4 256->512 3x3/2 @2", 256, 2, 512, 3, 2, 1, 1 },
    { "l4 512->512 3x3 @1", 512, 1, 512, 3, 1, 1, 1 },
    { "l4 ds 256->512 1x1/2 @2", 256, 2, 512, 1, 2, 0, 1 },
};

static const lin_shape lin_shapes[] = {
    { "fc 784->512", 784, 512, 32, 0 }, { "fc 512->512", 512, 512, 32, 1 },
    { "fc 512->10", 512, 10, 32, 1 },   { "fc 784->512", 784, 512, 64, 0 },
    { "fc 512->512", 512, 512, 64, 1 }, { "fc 512->10", 512, 10, 64, 1 },
};

static rt_rng bench_rng;

static float *bench_buffer(size_t count)
{
    float *p = NULL;
    if (rt_alloc(&p, count, sizeof(float), "benchmark buffer") != RT_OK) {
        fprintf(stderr, "bench_kernels: %s\n", rt_error_message());
        exit(1);
    }
    for (size_t i = 0; i < count; i++)
        p[i] = rt_rng_uniform(&bench_rng) - 0.5f;
    return p;
}

static void print_row(const char *name, int n, double flops, double t_layer, double t_gemm)
{
    printf("%-26s %4d %10.3f %9.1f %10.3f %7.2f\n", name, n, 1e3 * t_layer,
           flops / t_layer * 1e-9, 1e3 * t_gemm, t_layer / t_gemm);
}

/* ---- conv ---------------------------------------------------------------- */

typedef struct conv_bench {
    rt_conv_geom g;
    rt_conv_plan *plan;
    int n, chunk, need_dx;
    float *x, *w, *y, *dy, *dx, *dw, *scratch;
} conv_bench;

static void conv_layer(conv_bench *b)
{
    if (cpu->conv2d_forward(b->plan, b->y, b->x, b->w, NULL, b->scratch, b->n) != RT_OK ||
        cpu->conv2d_backward(b->plan, b->need_dx ? b->dx : NULL, b->dw, NULL, b->dy, b->x, b->w,
                             b->scratch, b->n) != RT_OK) {
        fprintf(stderr, "bench_kernels: %s\n", rt_error_message());
        exit(1);
    }
}

/* The layer's three products (forward, dw, dx) as one sgemm per chunk,
 * without im2col, col2im or reorders. */
static void conv_gemms(conv_bench *b)
{
    const rt_conv_geom *g = &b->g;
    const int ckk = g->c * g->kh * g->kw, ohw = g->oh * g->ow;
    float *col = b->scratch, *out = b->scratch + (size_t)ckk * b->chunk * ohw;
    for (int s0 = 0; s0 < b->n; s0 += b->chunk) {
        int cols = (b->n - s0 < b->chunk ? b->n - s0 : b->chunk) * ohw;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->k, cols, ckk, 1.0f, b->w,
                    ckk, col, cols, 0.0f, out, cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->k, ckk, cols, 1.0f, out, cols,
                    col, cols, 1.0f, b->dw, ckk);
        if (b->need_dx)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, cols, g->k, 1.0f, b->w,
                        ckk, out, cols, 0.0f, col, cols);
    }
}

static double best_time(void (*fn)(void *), void *arg, int reps)
{
    fn(arg);   /* warm caches and OpenBLAS buffers */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = rt_time_now();
        fn(arg);
        double t = rt_time_now() - t0;
        best = t < best ? t : best;
    }
    return best;
}

static void conv_layer_fn(void *p) { conv_layer(p); }
static void conv_gemms_fn(void *p) { conv_gemms(p); }

/* Samples per chunk of the im2col path (read from its plan's scratch). */
static int im2col_chunk(const rt_conv_geom *g, int n)
{
    rt_cpu_conv_path path;
    rt_conv_plan *plan = NULL;
    size_t nscratch = 0;
    if (rt_cpu_conv_selected(&path) != RT_OK || rt_cpu_conv_select(RT_CPU_CONV_IM2COL) != RT_OK ||
        cpu->conv2d_plan(&plan, g, n, &nscratch) != RT_OK || rt_cpu_conv_select(path) != RT_OK) {
        fprintf(stderr, "bench_kernels: %s\n", rt_error_message());
        exit(1);
    }
    cpu->conv2d_plan_free(plan);
    return (int)(nscratch / ((size_t)g->oh * g->ow * ((size_t)g->c * g->kh * g->kw + g->k)));
}

static void bench_conv(const conv_shape *s, int n, int reps)
{
    conv_bench b = { .n = n, .need_dx = s->need_dx };
    if (!rt_conv_geom_init(&b.g, s->c, s->hw, s->hw, s->k, s->ksize, s->ksize, s->stride,
                           s->pad)) {
        fprintf(stderr, "bench_kernels: bad geometry for %s\n", s->name);
        exit(1);
    }
    const rt_conv_geom *g = &b.g;
    const size_t ckk = (size_t)g->c * g->kh * g->kw, ohw = (size_t)g->oh * g->ow;
    size_t nscratch = 0;
    if (cpu->conv2d_plan(&b.plan, g, n, &nscratch) != RT_OK) {
        fprintf(stderr, "bench_kernels: %s\n", rt_error_message());
        exit(1);
    }
    b.chunk = im2col_chunk(g, n);
    size_t nscratch_gemm = (size_t)b.chunk * ohw * (ckk + g->k);
    if (nscratch < nscratch_gemm)
        nscratch = nscratch_gemm;
    b.x = bench_buffer((size_t)n * g->c * g->h * g->w);
    b.dx = bench_buffer((size_t)n * g->c * g->h * g->w);
    b.w = bench_buffer((size_t)g->k * ckk);
    b.dw = bench_buffer((size_t)g->k * ckk);
    b.y = bench_buffer((size_t)n * g->k * ohw);
    b.dy = bench_buffer((size_t)n * g->k * ohw);
    b.scratch = bench_buffer(nscratch);
    double t_layer = best_time(conv_layer_fn, &b, reps);
    double t_gemm = best_time(conv_gemms_fn, &b, reps);
    double flops = 2.0 * n * g->k * ckk * ohw * (s->need_dx ? 3 : 2);
    print_row(s->name, n, flops, t_layer, t_gemm);
    float *bufs[] = { b.x, b.dx, b.w, b.dw, b.y, b.dy, b.scratch };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        rt_free(bufs[i]);
    cpu->conv2d_plan_free(b.plan);
}

/* ---- linear ------------------------------------------------------------- */

typedef struct lin_bench {
    const lin_shape *s;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
} lin_bench;

static void lin_layer_fn(void *p)
{
    lin_bench *l = p;
    const lin_shape *s = l->s;
    if (cpu->linear_forward(l->y, l->x, l->w, l->b, s->n, s->in, s->out) != RT_OK ||
        cpu->linear_backward(s->need_dx ? l->dx : NULL, l->dw, l->db, l->dy, l->x, l->w, s->n,
                             s->in, s->out) != RT_OK) {
        fprintf(stderr, "bench_kernels: %s\n", rt_error_message());
        exit(1);
    }
}

/* One row-major sgemm of the selected library: c = op(a) op(b) + beta c. */
static void bench_sgemm(int ta, int tb, int m, int n, int k, const float *a, int lda,
                        const float *b, int ldb, float beta, float *c, int ldc)
{
#ifdef RT_HAVE_DNNL
    if (gemm_path == RT_CPU_GEMM_DNNL) {
        if (dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, beta, c,
                       ldc) != dnnl_success) {
            fprintf(stderr, "bench_kernels: dnnl_sgemm failed\n");
            exit(1);
        }
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}

static void lin_gemms_fn(void *p)
{
    lin_bench *l = p;
    const lin_shape *s = l->s;
    bench_sgemm(0, 1, s->n, s->out, s->in, l->x, s->in, l->w, s->in, 0.0f, l->y, s->out);
    bench_sgemm(1, 0, s->out, s->in, s->n, l->dy, s->out, l->x, s->in, 1.0f, l->dw, s->in);
    if (s->need_dx)
        bench_sgemm(0, 0, s->n, s->in, s->out, l->dy, s->out, l->w, s->in, 0.0f, l->dx, s->in);
}

static void bench_linear(const lin_shape *s, int reps)
{
    lin_bench l = { .s = s };
    l.x = bench_buffer((size_t)s->n * s->in);
    l.dx = bench_buffer((size_t)s->n * s->in);
    l.w = bench_buffer((size_t)s->out * s->in);
    l.dw = bench_buffer((size_t)s->out * s->in);
    l.b = bench_buffer((size_t)s->out);
    l.db = bench_buffer((size_t)s->out);
    l.y = bench_buffer((size_t)s->n * s->out);
    l.dy = bench_buffer((size_t)s->n * s->out);
    /* many calls per sample: one call is a few microseconds */
    const int inner = 20;
    double t_layer = 1e30, t_gemm = 1e30;
    lin_layer_fn(&l);
    lin_gemms_fn(&l);
    for (int r = 0; r < reps; r++) {
        double t0 = rt_time_now();
        for (int i = 0; i < inner; i++)
            lin_layer_fn(&l);
        double t1 = rt_time_now();
        for (int i = 0; i < inner; i++)
            lin_gemms_fn(&l);
        double t2 = rt_time_now();
        t_layer = (t1 - t0) / inner < t_layer ? (t1 - t0) / inner : t_layer;
        t_gemm = (t2 - t1) / inner < t_gemm ? (t2 - t1) / inner : t_gemm;
    }
    double flops = 2.0 * s->n * s->in * s->out * (s->need_dx ? 3 : 2);
    print_row(s->name, s->n, flops, t_layer, t_gemm);
    float *bufs[] = { l.x, l.dx, l.w, l.dw, l.b, l.db, l.y, l.dy };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        rt_free(bufs[i]);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1 || reps > 1000) {
        fprintf(stderr, "usage: bench_kernels [repetitions 1..1000]\n");
        return 2;
    }
    cpu = rt_backend_find("cpu");
    if (!getenv("OPENBLAS_NUM_THREADS"))
        openblas_set_num_threads(1);
    rt_rng_init(&bench_rng, rt_rng_key(1, 2, 3, 4));
    rt_cpu_conv_path path;
    if (rt_cpu_conv_selected(&path) != RT_OK || rt_cpu_gemm_selected(&gemm_path) != RT_OK) {
        fprintf(stderr, "bench_kernels: %s\n", rt_error_message());
        return 1;
    }
#ifdef RT_HAVE_DNNL
    omp_set_num_threads(openblas_get_num_threads());
#endif
    printf("OpenBLAS %s, %d thread(s), best of %d, convolutions by %s, linear sgemm by %s\n",
           openblas_get_config(), openblas_get_num_threads(), reps,
           path == RT_CPU_CONV_DNNL ? "oneDNN" : "im2col + sgemm",
           gemm_path == RT_CPU_GEMM_DNNL ? "oneDNN" : "OpenBLAS");
    printf("fwd+bwd: forward and backward (dx skipped for the first layer of each model)\n");
    printf("%-26s %4s %10s %9s %10s %7s\n", "layer", "n", "fwd+bwd ms", "GFLOP/s",
           "sgemm ms", "ratio");
    for (size_t i = 0; i < sizeof conv_shapes / sizeof conv_shapes[0]; i++)
        bench_conv(&conv_shapes[i], 128, reps);
    for (size_t i = 0; i < sizeof lin_shapes / sizeof lin_shapes[0]; i++)
        bench_linear(&lin_shapes[i], reps);
    return 0;
}
