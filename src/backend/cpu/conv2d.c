/* 2-D convolution on the CPU (groups 1, dilation 1) by im2col + sgemm.
 *
 * A chunk of `cn` samples is unfolded into one column matrix
 *     col[c*kh*kw][cn*oh*ow]      (row r = (ci, ky, kx), column = (s, oy, ox))
 * so a single sgemm with the weights w[k][c*kh*kw] covers the whole chunk:
 *     out[k][cn*oh*ow] = w . col
 * which is then reordered to NCHW. One big sgemm per chunk keeps OpenBLAS
 * efficient on the small spatial sizes of late ResNet layers (oh*ow = 1..4),
 * where a per-sample sgemm would be almost all overhead. Where one sample's
 * output is wide (oh*ow >= 64, e.g. the stem) the sgemms are issued per
 * sample on the same columns instead, writing NCHW without a reorder.
 * Backward mirrors this: dw += dy . col^T, dcol = w^T . dy, col2im.
 *
 * Threads (parallel.h) share a chunk by samples: each unfolds its samples'
 * columns, multiplies its block of columns (one single-threaded sgemm) and
 * writes its samples' outputs, so forward is one parallel loop and im2col,
 * the reorder and col2im run in parallel with the products. dw needs every
 * sample, so backward runs three loops: columns by sample, dw by output
 * channel, dx by sample.
 *
 * The chunk size depends only on the geometry (never on max_batch), so the
 * order of every floating-point sum, and hence every bit of the result, is
 * a function of the inputs and the thread count alone (parallel.h).
 *
 * With oneDNN (./configure --with-dnnl) the backend's entries at the end
 * of this file send plans to conv2d_dnnl.c instead, unless the environment
 * says RTRAIN_CPU_CONV=im2col: this path stays the reference the oneDNN
 * one is tested against and the fall-back a user can choose. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "config.h"
#include "backend/host.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"
#include "backend/cpu/conv2d_dnnl.h"

/* Bound on one chunk's scratch (columns + reordered output), in floats:
 * 1M floats = 4 MiB. Measured on the ResNet18 shapes at batch 128, limits
 * from 256K to 4M floats ran within noise of each other; the smaller bound
 * keeps the scratch modest while the late layers (oh*ow = 1..4) still get
 * the whole batch in one sgemm. */
#define CONV_SCRATCH_LIMIT ((size_t)1 << 20)

static size_t conv_ckk(const rt_conv_geom *g) { return (size_t)g->c * g->kh * g->kw; }
static size_t conv_ohw(const rt_conv_geom *g) { return (size_t)g->oh * g->ow; }

/* 1x1, stride 1, no padding: the input plane already is the column block. */
static int conv_pointwise(const rt_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->stride == 1 && g->pad == 0;
}

/* Samples per chunk: as many as fit CONV_SCRATCH_LIMIT, at least one. */
static int conv_chunk(const rt_conv_geom *g)
{
    size_t per_sample = conv_ohw(g) * (conv_ckk(g) + (size_t)g->k);
    size_t chunk = CONV_SCRATCH_LIMIT / per_sample;
    return chunk < 1 ? 1 : (int)chunk;   /* per_sample >= 2, so chunk fits an int */
}

static size_t conv_scratch_floats(const rt_conv_geom *g, int max_batch)
{
    int chunk = conv_chunk(g);
    if (max_batch < chunk)
        chunk = max_batch < 1 ? 1 : max_batch;
    return (size_t)chunk * conv_ohw(g) * (conv_ckk(g) + (size_t)g->k);
}

/* Output columns [lo, hi) whose input index o*stride - pad + kofs lies in [0, size). */
static void conv_valid_range(int *lo, int *hi, int out, int size, int stride, int pad,
                             int kofs)
{
    int first = pad - kofs;                       /* smallest o*stride allowed */
    *lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    int last = size - 1 + pad - kofs;             /* largest o*stride allowed */
    *hi = last < 0 ? 0 : last / stride + 1;
    if (*hi > out)
        *hi = out;
    if (*lo > *hi)
        *lo = *hi;
}

/* Columns of one sample: dst points at its first column in col (row stride
 * cols); padding reads as zero. The geometry is copied into locals so the
 * compiler keeps it in registers across the stores. */
static void im2col_sample(float *dst, size_t cols, const float *x, const rt_conv_geom *g)
{
    const int c = g->c, kh = g->kh, kw = g->kw, w = g->w, oh = g->oh, ow = g->ow;
    const int stride = g->stride, pad = g->pad;
    const size_t hw = (size_t)g->h * w;
    /* kernel offsets outside, channels inside: the valid ranges depend
     * only on (ky, kx), so they are computed kh*kw times, not c*kh*kw */
    for (int ky = 0; ky < kh; ky++) {
        int oy0, oy1;
        conv_valid_range(&oy0, &oy1, oh, g->h, stride, pad, ky);
        for (int kx = 0; kx < kw; kx++) {
            int ox0, ox1;
            conv_valid_range(&ox0, &ox1, ow, w, stride, pad, kx);
            const int full = ox0 == 0 && ox1 == ow;
            for (int ci = 0; ci < c; ci++) {
                float *row = dst + ((size_t)(ci * kh + ky) * kw + kx) * cols;
                const float *plane = x + ci * hw;
                for (int i = 0; i < oy0 * ow; i++)
                    row[i] = 0.0f;
                for (int oy = oy0; oy < oy1; oy++) {
                    float *d = row + (size_t)oy * ow;
                    const float *src = plane + (size_t)(oy * stride - pad + ky) * w
                                       + (kx - pad);   /* input column of ox = 0 */
                    if (full && stride == 1) {   /* contiguous: vectorises */
                        for (int ox = 0; ox < ow; ox++)
                            d[ox] = src[ox];
                        continue;
                    }
                    if (full) {
                        for (int ox = 0; ox < ow; ox++)
                            d[ox] = src[ox * stride];
                        continue;
                    }
                    for (int ox = 0; ox < ox0; ox++)
                        d[ox] = 0.0f;
                    for (int ox = ox0; ox < ox1; ox++)
                        d[ox] = src[ox * stride];
                    for (int ox = ox1 > ox0 ? ox1 : ox0; ox < ow; ox++)
                        d[ox] = 0.0f;
                }
                for (int i = oy1 * ow; i < oh * ow; i++)
                    row[i] = 0.0f;
            }
        }
    }
}

/* Columns of samples [s0, s1) of a chunk: col[ckk][cols] <- patches of
 * x[s][c][h][w], sample by sample so that the input is read sequentially. */
static void im2col(float *col, size_t cols, const float *x, const rt_conv_geom *g, int s0,
                   int s1)
{
    const size_t hw = (size_t)g->h * g->w, ohw = conv_ohw(g);
    for (int s = s0; s < s1; s++) {
        const float *xs = x + (size_t)s * g->c * hw;
        if (conv_pointwise(g))
            for (int ci = 0; ci < g->c; ci++)
                memcpy(col + ci * cols + s * ohw, xs + ci * hw, hw * sizeof(float));
        else
            im2col_sample(col + s * ohw, cols, xs, g);
    }
}

/* Adjoint of im2col_sample: dx[c][h][w] = sum of the column entries copied
 * from each input element. dx is overwritten. */
static void col2im_sample(float *dx, const float *src, size_t cols, const rt_conv_geom *g)
{
    const int c = g->c, kh = g->kh, kw = g->kw, w = g->w, oh = g->oh, ow = g->ow;
    const int stride = g->stride, pad = g->pad;
    const size_t hw = (size_t)g->h * w;
    memset(dx, 0, (size_t)c * hw * sizeof(float));
    for (int ky = 0; ky < kh; ky++) {
        int oy0, oy1;
        conv_valid_range(&oy0, &oy1, oh, g->h, stride, pad, ky);
        for (int kx = 0; kx < kw; kx++) {
            int ox0, ox1;
            conv_valid_range(&ox0, &ox1, ow, w, stride, pad, kx);
            for (int ci = 0; ci < c; ci++) {
                const float *row = src + ((size_t)(ci * kh + ky) * kw + kx) * cols;
                float *plane = dx + ci * hw;
                for (int oy = oy0; oy < oy1; oy++) {
                    float *d = plane + (size_t)(oy * stride - pad + ky) * w + (kx - pad);
                    const float *sr = row + (size_t)oy * ow;
                    for (int ox = ox0; ox < ox1; ox++)
                        d[ox * stride] += sr[ox];
                }
            }
        }
    }
}

/* dx of samples [s0, s1) from dcol[ckk][cols] (adjoint of im2col). */
static void col2im(float *dx, const float *col, size_t cols, const rt_conv_geom *g, int s0,
                   int s1)
{
    const size_t hw = (size_t)g->h * g->w, ohw = conv_ohw(g);
    for (int s = s0; s < s1; s++) {
        float *dxs = dx + (size_t)s * g->c * hw;
        if (conv_pointwise(g))
            for (int ci = 0; ci < g->c; ci++)
                memcpy(dxs + ci * hw, col + ci * cols + s * ohw, hw * sizeof(float));
        else
            col2im_sample(dxs, col + s * ohw, cols, g);
    }
}

/* y[s][k][ohw] = buf[k][s*ohw ...] (+ b[k]) for samples [s0, s1) */
static void conv_unchunk_output(float *y, const float *buf, size_t cols, const float *b,
                                const rt_conv_geom *g, int s0, int s1)
{
    const size_t ohw = conv_ohw(g);
    for (int s = s0; s < s1; s++)
        for (int k = 0; k < g->k; k++) {
            float *d = y + ((size_t)s * g->k + k) * ohw;
            const float *src = buf + k * cols + s * ohw;
            float bias = b ? b[k] : 0.0f;
            for (size_t i = 0; i < ohw; i++)
                d[i] = src[i] + bias;
        }
}

/* buf[k][s*ohw ...] = dy[s][k][ohw] for samples [s0, s1) (inverse of
 * conv_unchunk_output) */
static void conv_chunk_grad(float *buf, size_t cols, const float *dy, const rt_conv_geom *g,
                            int s0, int s1)
{
    const size_t ohw = conv_ohw(g);
    /* plain loops, not memcpy: ohw is 1..4 floats in the late layers */
    for (int s = s0; s < s1; s++)
        for (int k = 0; k < g->k; k++) {
            float *d = buf + k * cols + s * ohw;
            const float *src = dy + ((size_t)s * g->k + k) * ohw;
            for (size_t i = 0; i < ohw; i++)
                d[i] = src[i];
        }
}

/* Per-sample sgemms read and write NCHW directly (no reorder), which pays
 * when each sample's block is wide enough for sgemm to run at full speed:
 * measured, the stem (oh*ow = 196) gains 7%, while layer1 (oh*ow = 49)
 * loses 8% against one sgemm over the chunk plus a reorder. */
#define CONV_PER_SAMPLE_MIN_OHW 64
static int conv_per_sample(const rt_conv_geom *g, int cn)
{
    return cn == 1 || conv_ohw(g) >= CONV_PER_SAMPLE_MIN_OHW;
}

/* One chunk of cn samples, as seen by every thread working on it. */
typedef struct conv_chunk_job {
    const rt_conv_geom *g;
    int cn;
    size_t cols;          /* cn * oh*ow: row stride of the column matrices */
    const float *x, *w, *b, *dy;
    float *y, *dx, *dw;
    float *col;           /* [ckk][cols] columns (scratch) */
    float *buf;           /* [k][cols] after the columns: output or dy, reordered */
    const float *b_mat;   /* the column matrix: col, or x itself (see conv_direct) */
} conv_chunk_job;

/* One pointwise sample: x is its own column block, no im2col needed. */
static int conv_direct(const rt_conv_geom *g, int cn) { return cn == 1 && conv_pointwise(g); }

/* Forward of samples [s0, s1): their columns, their output columns of the
 * product, their outputs; no other thread reads or writes any of it. */
static void conv_forward_samples(const conv_chunk_job *j, int s0, int s1)
{
    const rt_conv_geom *g = j->g;
    const size_t ckk = conv_ckk(g), ohw = conv_ohw(g), out_sample = (size_t)g->k * ohw;
    const int cols = (int)j->cols;
    if (s1 <= s0)
        return;
    if (!conv_direct(g, j->cn))
        im2col(j->col, j->cols, j->x, g, s0, s1);
    if (conv_per_sample(g, j->cn)) {
        /* y_s[k][ohw] = w . col[:, s*ohw .. +ohw], straight into NCHW */
        for (int s = s0; s < s1; s++) {
            float *ys = j->y + s * out_sample;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->k, (int)ohw, (int)ckk,
                        1.0f, j->w, (int)ckk, j->b_mat + s * ohw, cols, 0.0f, ys, (int)ohw);
            if (j->b)
                for (int k = 0; k < g->k; k++)
                    for (size_t i = 0; i < ohw; i++)
                        ys[k * ohw + i] += j->b[k];
        }
    } else {
        size_t c0 = (size_t)s0 * ohw;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->k, (int)((s1 - s0) * ohw),
                    (int)ckk, 1.0f, j->w, (int)ckk, j->b_mat + c0, cols, 0.0f, j->buf + c0,
                    cols);
        conv_unchunk_output(j->y, j->buf, j->cols, j->b, g, s0, s1);
    }
}

/* Threads for a chunk of cn samples: at most one per sample, and one
 * thread altogether when the chunk's product is too small to share. */
static int conv_threads(const rt_conv_geom *g, int cn)
{
    size_t flops = 2 * conv_ckk(g) * (size_t)g->k * conv_ohw(g) * (size_t)cn;
    if (flops < ((size_t)1 << 20))
        return 1;
    return rt_par_threads((size_t)cn, 1);
}

static void conv_forward_piece(void *arg, size_t lo, size_t hi)
{
    conv_forward_samples(arg, (int)lo, (int)hi);
}

static rt_status im2col_forward(const rt_conv_plan *p, float *y, const float *x, const float *w,
                                const float *b, float *scratch, int n)
{
    const rt_conv_geom *g = &p->g;
    const size_t ckk = conv_ckk(g), ohw = conv_ohw(g);
    const size_t in_sample = (size_t)g->c * g->h * g->w, out_sample = (size_t)g->k * ohw;
    const int chunk = conv_chunk(g);
    for (int s0 = 0; s0 < n; s0 += chunk) {
        int cn = n - s0 < chunk ? n - s0 : chunk;
        conv_chunk_job j = {.g = g, .cn = cn, .cols = (size_t)cn * ohw, .x = x + s0 * in_sample,
                            .w = w, .b = b, .y = y + s0 * out_sample, .col = scratch};
        j.buf = scratch + ckk * j.cols;
        j.b_mat = conv_direct(g, cn) ? j.x : j.col;
        rt_par_for((size_t)cn, conv_threads(g, cn), conv_forward_piece, &j);
    }
    return RT_OK;
}

/* db[k] += sum over samples and positions of dy, in double for accuracy;
 * output channels [k0, k1). */
static void conv_bias_grad(float *db, const float *dy, const rt_conv_geom *g, int n, int k0,
                           int k1)
{
    const size_t ohw = conv_ohw(g);
    for (int k = k0; k < k1; k++) {
        double acc = 0.0;
        for (int s = 0; s < n; s++) {
            const float *d = dy + ((size_t)s * g->k + k) * ohw;
            for (size_t i = 0; i < ohw; i++)
                acc += d[i];
        }
        db[k] += (float)acc;
    }
}

/* dw[k0..k1) += dy . col^T over the whole chunk: rows of dw are
 * independent, so threads split them. */
static void conv_dw_rows(const conv_chunk_job *j, int k0, int k1)
{
    const rt_conv_geom *g = j->g;
    const size_t ckk = conv_ckk(g), ohw = conv_ohw(g), out_sample = (size_t)g->k * ohw;
    const int cols = (int)j->cols;
    if (k1 <= k0)
        return;
    float *dw = j->dw + (size_t)k0 * ckk;
    if (conv_per_sample(g, j->cn)) {
        /* dw += dy_s . col_s^T, sample after sample */
        for (int s = 0; s < j->cn; s++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k1 - k0, (int)ckk, (int)ohw,
                        1.0f, j->dy + s * out_sample + (size_t)k0 * ohw, (int)ohw,
                        j->b_mat + s * ohw, cols, 1.0f, dw, (int)ckk);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k1 - k0, (int)ckk, cols, 1.0f,
                    j->buf + (size_t)k0 * cols, cols, j->b_mat, cols, 1.0f, dw, (int)ckk);
    }
}

/* dcol = w^T . dy for samples [s0, s1), written over their columns (which
 * dw has used by now), or straight into dx when the columns are the input
 * itself; then col2im into their dx. */
static void conv_dx_samples(const conv_chunk_job *j, int s0, int s1)
{
    const rt_conv_geom *g = j->g;
    const size_t ckk = conv_ckk(g), ohw = conv_ohw(g), out_sample = (size_t)g->k * ohw;
    const int cols = (int)j->cols;
    const int direct = conv_direct(g, j->cn);
    float *dcol = direct ? j->dx : j->col;
    if (s1 <= s0)
        return;
    if (conv_per_sample(g, j->cn)) {
        for (int s = s0; s < s1; s++)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ckk, (int)ohw, g->k,
                        1.0f, j->w, (int)ckk, j->dy + s * out_sample, (int)ohw, 0.0f,
                        dcol + s * ohw, cols);
    } else {
        size_t c0 = (size_t)s0 * ohw;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ckk, (int)((s1 - s0) * ohw),
                    g->k, 1.0f, j->w, (int)ckk, j->buf + c0, cols, 0.0f, dcol + c0, cols);
    }
    if (!direct)
        col2im(j->dx, j->col, j->cols, g, s0, s1);
}

/* The three phases of a chunk's backward, each split its own way:
 * columns by sample, dw by output channel (it needs every sample's
 * columns), dx by sample (it overwrites the columns dw reads). */
static void conv_columns_piece(void *arg, size_t lo, size_t hi)
{
    const conv_chunk_job *j = arg;
    if (!conv_direct(j->g, j->cn))
        im2col(j->col, j->cols, j->x, j->g, (int)lo, (int)hi);
    if (!conv_per_sample(j->g, j->cn))
        conv_chunk_grad(j->buf, j->cols, j->dy, j->g, (int)lo, (int)hi);
}

static void conv_dw_piece(void *arg, size_t lo, size_t hi)
{
    conv_dw_rows(arg, (int)lo, (int)hi);
}

static void conv_dx_piece(void *arg, size_t lo, size_t hi)
{
    conv_dx_samples(arg, (int)lo, (int)hi);
}

typedef struct conv_bias_job {
    float *db;
    const float *dy;
    const rt_conv_geom *g;
    int n;
} conv_bias_job;

static void conv_bias_piece(void *arg, size_t lo, size_t hi)
{
    const conv_bias_job *j = arg;
    conv_bias_grad(j->db, j->dy, j->g, j->n, (int)lo, (int)hi);
}

void rt_cpu_conv_bias_grad(float *db, const float *dy, const rt_conv_geom *g, int n)
{
    conv_bias_job bj = {db, dy, g, n};
    rt_par_for((size_t)g->k, rt_par_threads((size_t)g->k * n * conv_ohw(g), RT_PAR_MIN_FLOATS),
               conv_bias_piece, &bj);
}

static rt_status im2col_backward(const rt_conv_plan *p, float *dx, float *dw, float *db,
                                 const float *dy, const float *x, const float *w,
                                 float *scratch, int n)
{
    const rt_conv_geom *g = &p->g;
    const size_t ckk = conv_ckk(g), ohw = conv_ohw(g);
    const size_t in_sample = (size_t)g->c * g->h * g->w, out_sample = (size_t)g->k * ohw;
    const int chunk = conv_chunk(g);
    if (db)
        rt_cpu_conv_bias_grad(db, dy, g, n);
    for (int s0 = 0; s0 < n; s0 += chunk) {
        int cn = n - s0 < chunk ? n - s0 : chunk;
        conv_chunk_job j = {.g = g, .cn = cn, .cols = (size_t)cn * ohw, .x = x + s0 * in_sample,
                            .w = w, .dy = dy + s0 * out_sample, .dw = dw,
                            .dx = dx ? dx + s0 * in_sample : NULL, .col = scratch};
        j.buf = scratch + ckk * j.cols;
        j.b_mat = conv_direct(g, cn) ? j.x : j.col;
        int threads = conv_threads(g, cn);
        rt_par_for((size_t)cn, threads, conv_columns_piece, &j);
        rt_par_for((size_t)g->k, threads, conv_dw_piece, &j);
        if (j.dx)
            rt_par_for((size_t)cn, threads, conv_dx_piece, &j);
    }
    return RT_OK;
}

/* ---- path selection and the backend's entries ------------------------------------------ */

#ifdef RT_HAVE_DNNL
#define CONV_DEFAULT_PATH RT_CPU_CONV_DNNL
#else
#define CONV_DEFAULT_PATH RT_CPU_CONV_IM2COL
#endif

static pthread_once_t conv_env_once = PTHREAD_ONCE_INIT;
static int conv_env_path = -1;          /* -1: RTRAIN_CPU_CONV holds no known path */
static const char *conv_env_value;
static int conv_override = -1;          /* rt_cpu_conv_select; -1: none */

static void conv_read_env(void)
{
    static const char *const names[] = { [RT_CPU_CONV_IM2COL] = "im2col",
                                         [RT_CPU_CONV_DNNL] = "dnnl" };
    conv_env_value = getenv("RTRAIN_CPU_CONV");
    if (!conv_env_value || !*conv_env_value) {
        conv_env_path = CONV_DEFAULT_PATH;
        return;
    }
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (!strcmp(conv_env_value, names[i]))
            conv_env_path = i;
}

static rt_status conv_check_built(rt_cpu_conv_path path)
{
#ifndef RT_HAVE_DNNL
    if (path == RT_CPU_CONV_DNNL)
        return RT_ERROR(RT_ERR_UNSUPPORTED, "oneDNN convolutions asked for, but this build "
                        "has none (./configure --with-dnnl, package libdnnl-dev)");
#else
    (void)path;
#endif
    return RT_OK;
}

rt_status rt_cpu_conv_select(rt_cpu_conv_path path)
{
    RT_CHECK(conv_check_built(path));
    conv_override = (int)path;
    return RT_OK;
}

rt_status rt_cpu_conv_selected(rt_cpu_conv_path *path)
{
    if (conv_override >= 0) {
        *path = (rt_cpu_conv_path)conv_override;
        return RT_OK;
    }
    pthread_once(&conv_env_once, conv_read_env);
    if (conv_env_path < 0)
        return RT_ERROR(RT_ERR_CONFIG, "RTRAIN_CPU_CONV=%s: expected im2col or dnnl",
                        conv_env_value);
    *path = (rt_cpu_conv_path)conv_env_path;
    RT_CHECK(conv_check_built(*path));
    return RT_OK;
}

rt_status rt_cpu_conv2d_plan(rt_conv_plan **out, const rt_conv_geom *g, int max_batch,
                             size_t *scratch_floats)
{
    rt_cpu_conv_path path;
    *out = NULL;
    RT_CHECK(rt_cpu_conv_selected(&path));
#ifdef RT_HAVE_DNNL
    if (path == RT_CPU_CONV_DNNL) {
        *scratch_floats = rt_cpu_dnnl_conv_scratch_floats(g);
        RT_CHECK(rt_host_conv2d_plan_new(out, g, *scratch_floats));
        rt_status s = rt_cpu_dnnl_conv_new(&(*out)->dnnl, g);
        if (s != RT_OK) {
            rt_host_conv2d_plan_free(*out);
            *out = NULL;
            RT_CHECK(s);
        }
        return RT_OK;
    }
#endif
    *scratch_floats = conv_scratch_floats(g, max_batch);
    return rt_host_conv2d_plan_new(out, g, *scratch_floats);
}

void rt_cpu_conv2d_plan_free(rt_conv_plan *p)
{
#ifdef RT_HAVE_DNNL
    if (p)
        rt_cpu_dnnl_conv_free(p->dnnl);
#endif
    rt_host_conv2d_plan_free(p);
}

rt_status rt_cpu_conv2d_forward(const rt_conv_plan *p, float *y, const float *x, const float *w,
                                const float *b, float *scratch, int n)
{
#ifdef RT_HAVE_DNNL
    if (p->dnnl)
        return rt_cpu_dnnl_conv_forward(p->dnnl, &p->g, y, x, w, b, n);
#endif
    return im2col_forward(p, y, x, w, b, scratch, n);
}

rt_status rt_cpu_conv2d_backward(const rt_conv_plan *p, float *dx, float *dw, float *db,
                                 const float *dy, const float *x, const float *w,
                                 float *scratch, int n)
{
#ifdef RT_HAVE_DNNL
    if (p->dnnl) {
        if (dx)
            RT_CHECK(rt_cpu_dnnl_conv_backward_data(p->dnnl, &p->g, dx, dy, w, n));
        RT_CHECK(rt_cpu_dnnl_conv_backward_weights(p->dnnl, &p->g, dw, dy, x, scratch, n));
        if (db)
            rt_cpu_conv_bias_grad(db, dy, &p->g, n);
        return RT_OK;
    }
#endif
    return im2col_backward(p, dx, dw, db, dy, x, w, scratch, n);
}
