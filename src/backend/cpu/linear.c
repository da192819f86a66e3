/* Fully connected layer on the CPU: OpenBLAS sgemm per product. Row-major
 * throughout: x[n][in], w[out][in] (PyTorch's nn.Linear layout), y[n][out].
 *
 * Threads (parallel.h) each run one single-threaded sgemm on a block of
 * the output: forward splits y by output feature (or by sample when the
 * layer is narrow, as the 10-class head), backward splits dw and db by
 * output feature (the rows of w each thread also used in forward) and dx
 * by input feature. No split runs along a sum (see parallel.h for what that
 * does and does not guarantee about the bits). */
#include <cblas.h>
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"

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

/* y[:, o0..o1) for samples [i0, i1) */
static void linear_forward_block(float *y, const float *x, const float *w, const float *b,
                                 int in, int out, int i0, int i1, int o0, int o1)
{
    if (i1 <= i0 || o1 <= o0)
        return;
    /* Pre-fill y with the bias and let sgemm accumulate onto it (beta = 1):
     * one pass over y instead of a second bias pass after the product. */
    float beta = 0.0f;
    if (b) {
        for (int i = i0; i < i1; i++)
            for (int o = o0; o < o1; o++)
                y[(size_t)i * out + o] = b[o];
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, i1 - i0, o1 - o0, in, 1.0f,
                x + (size_t)i0 * in, in, w + (size_t)o0 * in, in, beta,
                y + (size_t)i0 * out + o0, out);
}

typedef struct linear_job {
    float *y, *dx, *dw, *db;
    const float *x, *w, *b, *dy;
    int n, in, out;
    int parts;   /* backward: pieces, each a share of the inputs and of the outputs */
} linear_job;

static void forward_features_piece(void *arg, size_t lo, size_t hi)
{
    const linear_job *j = arg;
    linear_forward_block(j->y, j->x, j->w, j->b, j->in, j->out, 0, j->n, (int)lo, (int)hi);
}

static void forward_samples_piece(void *arg, size_t lo, size_t hi)
{
    const linear_job *j = arg;
    linear_forward_block(j->y, j->x, j->w, j->b, j->in, j->out, (int)lo, (int)hi, 0, j->out);
}

rt_status rt_cpu_linear_forward(float *y, const float *x, const float *w, const float *b,
                                int n, int in, int out)
{
    linear_job j = {.y = y, .x = x, .w = w, .b = b, .n = n, .in = in, .out = out};
    if (out >= n)
        rt_par_for((size_t)out, linear_threads((size_t)n, (size_t)out, (size_t)in,
                                               (size_t)out), forward_features_piece, &j);
    else
        rt_par_for((size_t)n, linear_threads((size_t)n, (size_t)out, (size_t)in, (size_t)n),
                   forward_samples_piece, &j);
    return RT_OK;
}

/* Output features [o0, o1): dw[o0..o1) += dy[:, o0..o1)^T . x, the rows of
 * w this piece's thread also computes with in forward. */
static void linear_dw_block(float *dw, const float *dy, const float *x, int n, int in, int out,
                            int o0, int o1)
{
    if (o1 <= o0)
        return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, in, n, 1.0f, dy + o0, out, x,
                in, 1.0f, dw + (size_t)o0 * in, in);
}

/* Input features [j0, j1): dx[:, j0..j1) = dy . w[:, j0..j1). */
static void linear_dx_block(float *dx, const float *dy, const float *w, int n, int in, int out,
                            int j0, int j1)
{
    if (j1 <= j0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, j1 - j0, out, 1.0f, dy, out,
                w + j0, in, 0.0f, dx + j0, in);
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
    const linear_job *j = arg;
    for (; p < p_end; p++) {
        size_t lo, hi;
        rt_par_range(&lo, &hi, (size_t)j->out, (int)p, j->parts);
        linear_dw_block(j->dw, j->dy, j->x, j->n, j->in, j->out, (int)lo, (int)hi);
        if (j->db)
            linear_bias_block(j->db, j->dy, j->n, j->out, (int)lo, (int)hi);
        if (j->dx) {
            rt_par_range(&lo, &hi, (size_t)j->in, (int)p, j->parts);
            linear_dx_block(j->dx, j->dy, j->w, j->n, j->in, j->out, (int)lo, (int)hi);
        }
    }
}

rt_status rt_cpu_linear_backward(float *dx, float *dw, float *db, const float *dy,
                                 const float *x, const float *w, int n, int in, int out)
{
    linear_job j = {.dx = dx, .dw = dw, .db = db, .x = x, .w = w, .dy = dy, .n = n, .in = in,
                    .out = out};
    j.parts = linear_threads((size_t)n, (size_t)out, (size_t)in, (size_t)out);
    rt_par_for((size_t)j.parts, j.parts, backward_piece, &j);
    return RT_OK;
}
