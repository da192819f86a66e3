/* Fully connected layer on the CPU: one sgemm per product. Row-major
 * throughout: x[n][in], w[out][in] (PyTorch's nn.Linear layout), y[n][out].
 *
 * Threads (parallel.h) each run one single-threaded sgemm on a block of
 * the output: forward splits y by output feature (or by sample when the
 * layer is narrow, as the 10-class head), backward splits dw and db by
 * output feature (the rows of w each thread also used in forward) and dx
 * by input feature. No split runs along a sum (see parallel.h for what that
 * does and does not guarantee about the bits).
 *
 * Which library runs the sgemm (kernels.h): oneDNN's dnnl_sgemm when built
 * with oneDNN, else OpenBLAS; RTRAIN_CPU_GEMM=openblas|dnnl overrides it.
 * Why oneDNN by default: it picks its kernels from the CPU's own
 * instruction sets (AVX-512 where there is one; ONEDNN_MAX_CPU_ISA caps
 * it), while OpenBLAS runs whatever core type OPENBLAS_CORETYPE or its own
 * detection names, and sites pin that to AVX2 (Haswell) where OpenBLAS does
 * not know the CPU. The MLP's 784->512 and 512->512 layers at batch 64,
 * forward and backward on one thread of an AVX-512 machine
 * (bench/bench_kernels): 0.44 ms each on oneDNN, 0.86 ms on OpenBLAS's
 * Haswell kernels and 0.50 ms on its SkylakeX ones (bench/RESULTS.md).
 * OpenBLAS stays the reference path the tests check oneDNN against.
 *
 * A oneDNN failure inside a thread's piece is recorded in the job and
 * returned by the entry point once every piece is done. */
#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#ifdef RT_HAVE_DNNL
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include "backend/cpu/conv2d_dnnl.h"
#endif
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"

/* ---- which library runs the products --------------------------------------------------- */

#ifdef RT_HAVE_DNNL
#define GEMM_DEFAULT_PATH RT_CPU_GEMM_DNNL
#else
#define GEMM_DEFAULT_PATH RT_CPU_GEMM_OPENBLAS
#endif

static const char *const gemm_path_names[] = { [RT_CPU_GEMM_OPENBLAS] = "openblas",
                                               [RT_CPU_GEMM_DNNL] = "dnnl" };
static pthread_once_t gemm_env_once = PTHREAD_ONCE_INIT;
static int gemm_env_path = -1;          /* -1: RTRAIN_CPU_GEMM holds no known path */
static const char *gemm_env_value;
static int gemm_override = -1;          /* rt_cpu_gemm_select; -1: none */

static void gemm_read_env(void)
{
    gemm_env_value = getenv("RTRAIN_CPU_GEMM");
    if (!gemm_env_value || !*gemm_env_value) {
        gemm_env_path = GEMM_DEFAULT_PATH;
        return;
    }
    for (int i = 0; i < (int)(sizeof gemm_path_names / sizeof gemm_path_names[0]); i++)
        if (!strcmp(gemm_env_value, gemm_path_names[i]))
            gemm_env_path = i;
}

static rt_status gemm_check_built(rt_cpu_gemm_path path)
{
#ifndef RT_HAVE_DNNL
    if (path == RT_CPU_GEMM_DNNL)
        return RT_ERROR(RT_ERR_UNSUPPORTED, "oneDNN sgemm asked for (RTRAIN_CPU_GEMM=dnnl), "
                        "but this build has no oneDNN: unset RTRAIN_CPU_GEMM, or rebuild with "
                        "./configure --with-dnnl (package libdnnl-dev)");
#else
    (void)path;
#endif
    return RT_OK;
}

rt_status rt_cpu_gemm_select(rt_cpu_gemm_path path)
{
    RT_CHECK(gemm_check_built(path));
    gemm_override = (int)path;
    return RT_OK;
}

rt_status rt_cpu_gemm_selected(rt_cpu_gemm_path *path)
{
    if (gemm_override >= 0) {
        *path = (rt_cpu_gemm_path)gemm_override;
        return RT_OK;
    }
    pthread_once(&gemm_env_once, gemm_read_env);
    if (gemm_env_path < 0)
        return RT_ERROR(RT_ERR_CONFIG, "RTRAIN_CPU_GEMM=%s: expected openblas or dnnl (or "
                        "unset it for the default)", gemm_env_value);
    *path = (rt_cpu_gemm_path)gemm_env_path;
    RT_CHECK(gemm_check_built(*path));
    return RT_OK;
}

/* c = op(a) . op(b) + beta c, row-major, on the calling thread alone.
 * Returns 0, or oneDNN's failing status. */
static int linear_sgemm(rt_cpu_gemm_path path, int trans_a, int trans_b, int m, int n, int k,
                        const float *a, int lda, const float *b, int ldb, float beta, float *c,
                        int ldc)
{
#ifdef RT_HAVE_DNNL
    if (path == RT_CPU_GEMM_DNNL) {
        /* dnnl_sgemm runs an OpenMP team of omp_get_max_threads() threads;
         * a piece is already one thread's share, so the team is one. */
        int team = omp_get_max_threads();
        omp_set_num_threads(1);
        dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, 1.0f,
                                      a, lda, b, ldb, beta, c, ldc);
        omp_set_num_threads(team);
        return st == dnnl_success ? 0 : (int)st;
    }
#else
    (void)path;
#endif
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
    return 0;
}

static rt_status linear_failure(int dnnl_status, const char *pass)
{
#ifdef RT_HAVE_DNNL
    rt_status code = dnnl_status == dnnl_out_of_memory ? RT_ERR_NOMEM : RT_ERR_INTERNAL;
    return RT_ERROR(code, "linear %s: oneDNN dnnl_sgemm: %s (status %d); RTRAIN_CPU_GEMM=openblas "
                    "runs the products on OpenBLAS instead", pass,
                    rt_cpu_dnnl_status_text(dnnl_status), dnnl_status);
#else
    return RT_ERROR(RT_ERR_INTERNAL, "linear %s: sgemm status %d", pass, dnnl_status);
#endif
}

/* A block narrower than this many columns makes sgemm inefficient
 * (its micro-kernels are 16 to 64 floats wide). */
#define LINEAR_MIN_BLOCK 64

/* Threads for a product of 2*m*n*k flops split into blocks along a
 * dimension of `width`. Below ~1 MFLOP a thread's share would be shorter
 * than waking it. */
static int linear_threads(size_t m, size_t n, size_t k, size_t width)
{
    if (2 * m * n * k < ((size_t)1 << 20))
        return 1;
    return rt_par_threads(width, LINEAR_MIN_BLOCK);
}

/* A layer with at most this many output features (a classifier's head)
 * runs forward on oneDNN as the transposed product, y^T = w . x^T, then
 * transposed back, NARROW_SAMPLES samples at a time. Why: oneDNN's sgemm
 * generates a kernel for the direct product this narrow on its first call,
 * about 20 ms at 64 x 512 -> 10 on this machine, and then runs it in 7 us;
 * transposed (10 rows of 64) it takes 2 ms once and 5 us per call with the
 * transpose back (bench/RESULTS.md). */
#define NARROW_OUT 16
#define NARROW_SAMPLES 256

/* y[i0..i1, o0..o1) through y^T; returns linear_sgemm's status. */
static int linear_forward_narrow(rt_cpu_gemm_path path, float *y, const float *x,
                                 const float *w, const float *b, int in, int out, int i0,
                                 int i1, int o0, int o1)
{
    float yt[NARROW_OUT * NARROW_SAMPLES];
    int cols = o1 - o0;
    for (int s0 = i0; s0 < i1; s0 += NARROW_SAMPLES) {
        int m = i1 - s0 < NARROW_SAMPLES ? i1 - s0 : NARROW_SAMPLES;
        float beta = 0.0f;
        if (b) {
            for (int o = 0; o < cols; o++)
                for (int s = 0; s < m; s++)
                    yt[o * m + s] = b[o0 + o];
            beta = 1.0f;
        }
        int st = linear_sgemm(path, 0, 1, cols, m, in, w + (size_t)o0 * in, in,
                              x + (size_t)s0 * in, in, beta, yt, m);
        if (st)
            return st;
        for (int s = 0; s < m; s++)
            for (int o = 0; o < cols; o++)
                y[(size_t)(s0 + s) * out + o0 + o] = yt[o * m + s];
    }
    return 0;
}

/* y[:, o0..o1) for samples [i0, i1); returns linear_sgemm's status. */
static int linear_forward_block(rt_cpu_gemm_path path, float *y, const float *x, const float *w,
                                const float *b, int in, int out, int i0, int i1, int o0, int o1)
{
    if (i1 <= i0 || o1 <= o0)
        return 0;
    if (path == RT_CPU_GEMM_DNNL && o1 - o0 <= NARROW_OUT)
        return linear_forward_narrow(path, y, x, w, b, in, out, i0, i1, o0, o1);
    /* Pre-fill y with the bias and let sgemm accumulate onto it (beta = 1):
     * one pass over y instead of a second bias pass after the product. */
    float beta = 0.0f;
    if (b) {
        for (int i = i0; i < i1; i++)
            for (int o = o0; o < o1; o++)
                y[(size_t)i * out + o] = b[o];
        beta = 1.0f;
    }
    return linear_sgemm(path, 0, 1, i1 - i0, o1 - o0, in, x + (size_t)i0 * in, in,
                        w + (size_t)o0 * in, in, beta, y + (size_t)i0 * out + o0, out);
}

typedef struct linear_job {
    float *y, *dx, *dw, *db;
    const float *x, *w, *b, *dy;
    int n, in, out;
    int parts;   /* backward: pieces, each a share of the inputs and of the outputs */
    rt_cpu_gemm_path path;
    int failed;  /* a failing piece's oneDNN status (0: none), written atomically */
} linear_job;

static void linear_job_fail(linear_job *j, int status)
{
    if (status)
        __atomic_store_n(&j->failed, status, __ATOMIC_RELAXED);
}

static void forward_features_piece(void *arg, size_t lo, size_t hi)
{
    linear_job *j = arg;
    linear_job_fail(j, linear_forward_block(j->path, j->y, j->x, j->w, j->b, j->in, j->out, 0,
                                            j->n, (int)lo, (int)hi));
}

static void forward_samples_piece(void *arg, size_t lo, size_t hi)
{
    linear_job *j = arg;
    linear_job_fail(j, linear_forward_block(j->path, j->y, j->x, j->w, j->b, j->in, j->out,
                                            (int)lo, (int)hi, 0, j->out));
}

rt_status rt_cpu_linear_forward(float *y, const float *x, const float *w, const float *b,
                                int n, int in, int out)
{
    linear_job j = {.y = y, .x = x, .w = w, .b = b, .n = n, .in = in, .out = out};
    RT_CHECK(rt_cpu_gemm_selected(&j.path));
    if (out >= n)
        rt_par_for((size_t)out, linear_threads((size_t)n, (size_t)out, (size_t)in,
                                               (size_t)out), forward_features_piece, &j);
    else
        rt_par_for((size_t)n, linear_threads((size_t)n, (size_t)out, (size_t)in, (size_t)n),
                   forward_samples_piece, &j);
    return j.failed ? linear_failure(j.failed, "forward") : RT_OK;
}

/* Output features [o0, o1): dw[o0..o1) += dy[:, o0..o1)^T . x, the rows of
 * w this piece's thread also computes with in forward. */
static int linear_dw_block(rt_cpu_gemm_path path, float *dw, const float *dy, const float *x,
                           int n, int in, int out, int o0, int o1)
{
    if (o1 <= o0)
        return 0;
    return linear_sgemm(path, 1, 0, o1 - o0, in, n, dy + o0, out, x, in, 1.0f,
                        dw + (size_t)o0 * in, in);
}

/* Input features [j0, j1): dx[:, j0..j1) = dy . w[:, j0..j1). */
static int linear_dx_block(rt_cpu_gemm_path path, float *dx, const float *dy, const float *w,
                           int n, int in, int out, int j0, int j1)
{
    if (j1 <= j0)
        return 0;
    return linear_sgemm(path, 0, 0, n, j1 - j0, out, dy, out, w + j0, in, 0.0f, dx + j0, in);
}

/* Outputs [o0, o1): db[o] += sum over samples of dy[i][o], each sum taken
 * in double in sample order and then added, so db receives the same
 * increment whatever it held before (as the conv bias) and whichever
 * thread sums it. Samples run in the outer loop (dy is read row by row, a
 * block of sums at a time), which keeps each output's order of additions. */
#define LINEAR_DB_BLOCK 256
static void linear_bias_block(float *db, const float *dy, int n, int out, int o0, int o1)
{
    double acc[LINEAR_DB_BLOCK];
    for (int b0 = o0; b0 < o1; b0 += LINEAR_DB_BLOCK) {
        int b1 = o1 - b0 < LINEAR_DB_BLOCK ? o1 : b0 + LINEAR_DB_BLOCK;
        for (int o = b0; o < b1; o++)
            acc[o - b0] = 0.0;
        for (int i = 0; i < n; i++) {
            const float *row = dy + (size_t)i * out;
            for (int o = b0; o < b1; o++)
                acc[o - b0] += row[o];
        }
        for (int o = b0; o < b1; o++)
            db[o] += (float)acc[o - b0];
    }
}

/* Piece p of `parts`: its share of the output features (dw, db; the same
 * rows of w as forward's piece p) and of the input features (dx). */
static void backward_piece(void *arg, size_t p, size_t p_end)
{
    linear_job *j = arg;
    for (; p < p_end; p++) {
        size_t lo, hi;
        rt_par_range(&lo, &hi, (size_t)j->out, (int)p, j->parts);
        if (j->dw) {
            linear_job_fail(j, linear_dw_block(j->path, j->dw, j->dy, j->x, j->n, j->in,
                                               j->out, (int)lo, (int)hi));
            if (j->db)
                linear_bias_block(j->db, j->dy, j->n, j->out, (int)lo, (int)hi);
        }
        if (j->dx) {
            rt_par_range(&lo, &hi, (size_t)j->in, (int)p, j->parts);
            linear_job_fail(j, linear_dx_block(j->path, j->dx, j->dy, j->w, j->n, j->in,
                                               j->out, (int)lo, (int)hi));
        }
    }
}

rt_status rt_cpu_linear_backward(float *dx, float *dw, float *db, const float *dy,
                                 const float *x, const float *w, int n, int in, int out)
{
    linear_job j = {.dx = dx, .dw = dw, .db = db, .x = x, .w = w, .dy = dy, .n = n, .in = in,
                    .out = out};
    RT_CHECK(rt_cpu_gemm_selected(&j.path));
    j.parts = linear_threads((size_t)n, (size_t)out, (size_t)in, (size_t)out);
    rt_par_for((size_t)j.parts, j.parts, backward_piece, &j);
    return j.failed ? linear_failure(j.failed, "backward") : RT_OK;
}
