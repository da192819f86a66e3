/* 2-D convolution on the CPU (groups 1, dilation 1) by im2col + sgemm.
 *
 * A chunk of `cn` samples is unfolded into one column matrix
 *     col[c*kh*kw][cn*oh*ow]      (row r = (ci, ky, kx), column = (s, oy, ox))
 * so a single sgemm with the weights w[k][c*kh*kw] covers the whole chunk:
 *     out[k][cn*oh*ow] = w . col
 * which is then reordered to NCHW. One big sgemm per chunk keeps OpenBLAS
 * efficient on the small spatial sizes of late ResNet layers (oh*ow = 1..4),
 * where a per-sample sgemm would be almost all overhead.
 *
 * The chunk size depends only on the geometry (never on n or max_batch), so
 * the order of every floating-point sum, and hence every bit of the result,
 * is a function of the inputs alone. */
#include <string.h>
#include <cblas.h>
#include "kernels/cpu/kernels.h"

/* Bound on one chunk's scratch (columns + reordered output), in floats:
 * 4M floats = 16 MiB keeps the working set near the last-level cache while
 * giving sgemm a wide N even for the 1x1 and 2x2 layers at batch 128. */
#ifndef CONV_SCRATCH_LIMIT
#define CONV_SCRATCH_LIMIT ((size_t)4 << 20)
#endif

int rt_conv_geom_init(rt_conv_geom *g, int c, int h, int w, int k, int kh, int kw,
                      int stride, int pad)
{
    memset(g, 0, sizeof *g);
    if (c < 1 || h < 1 || w < 1 || k < 1 || kh < 1 || kw < 1 || stride < 1 || pad < 0)
        return 0;
    if (h + 2 * pad < kh || w + 2 * pad < kw)
        return 0;
    *g = (rt_conv_geom){ .c = c, .h = h, .w = w, .k = k, .kh = kh, .kw = kw,
                         .stride = stride, .pad = pad,
                         .oh = (h + 2 * pad - kh) / stride + 1,
                         .ow = (w + 2 * pad - kw) / stride + 1 };
    return 1;
}

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
    if (chunk < 1)
        chunk = 1;
    return chunk > (size_t)1 << 20 ? 1 << 20 : (int)chunk;
}

size_t rt_conv2d_scratch_floats(const rt_conv_geom *g, int max_batch)
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
 * cols); padding reads as zero. Samples are the outer loop (see im2col). */
static void im2col_sample(float *dst, size_t cols, const float *x, const rt_conv_geom *g)
{
    const size_t hw = (size_t)g->h * g->w;
    /* kernel offsets outside, channels inside: the valid ranges depend
     * only on (ky, kx), so they are computed kh*kw times, not c*kh*kw */
    for (int ky = 0; ky < g->kh; ky++) {
        int oy0, oy1;
        conv_valid_range(&oy0, &oy1, g->oh, g->h, g->stride, g->pad, ky);
        for (int kx = 0; kx < g->kw; kx++) {
            int ox0, ox1;
            conv_valid_range(&ox0, &ox1, g->ow, g->w, g->stride, g->pad, kx);
            for (int ci = 0; ci < g->c; ci++) {
                float *row = dst + ((size_t)(ci * g->kh + ky) * g->kw + kx) * cols;
                for (int i = 0; i < oy0 * g->ow; i++)
                    row[i] = 0.0f;
                for (int oy = oy0; oy < oy1; oy++) {
                    float *d = row + (size_t)oy * g->ow;
                    for (int ox = 0; ox < ox0; ox++)
                        d[ox] = 0.0f;
                    if (ox1 > ox0) {
                        /* first valid input element of this output row */
                        const float *src = x + ci * hw
                                           + (size_t)(oy * g->stride - g->pad + ky) * g->w
                                           + (ox0 * g->stride - g->pad + kx);
                        if (g->stride == 1)
                            memcpy(d + ox0, src, (size_t)(ox1 - ox0) * sizeof(float));
                        else
                            for (int ox = ox0; ox < ox1; ox++)
                                d[ox] = src[(ox - ox0) * g->stride];
                    }
                    for (int ox = ox1; ox < g->ow; ox++)
                        d[ox] = 0.0f;
                }
                for (int i = oy1 * g->ow; i < g->oh * g->ow; i++)
                    row[i] = 0.0f;
            }
        }
    }
}

/* col[ckk][cn*ohw] <- patches of x[cn][c][h][w], sample by sample so that
 * the input is read sequentially. */
static void im2col(float *col, const float *x, const rt_conv_geom *g, int cn)
{
    const size_t hw = (size_t)g->h * g->w, ohw = conv_ohw(g), cols = (size_t)cn * ohw;
    for (int s = 0; s < cn; s++) {
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
    const size_t hw = (size_t)g->h * g->w;
    memset(dx, 0, (size_t)g->c * hw * sizeof(float));
    for (int ky = 0; ky < g->kh; ky++) {
        int oy0, oy1;
        conv_valid_range(&oy0, &oy1, g->oh, g->h, g->stride, g->pad, ky);
        for (int kx = 0; kx < g->kw; kx++) {
            int ox0, ox1;
            conv_valid_range(&ox0, &ox1, g->ow, g->w, g->stride, g->pad, kx);
            if (ox1 <= ox0)
                continue;
            for (int ci = 0; ci < g->c; ci++) {
                const float *row = src + ((size_t)(ci * g->kh + ky) * g->kw + kx) * cols;
                for (int oy = oy0; oy < oy1; oy++) {
                    float *d = dx + ci * hw + (size_t)(oy * g->stride - g->pad + ky) * g->w
                               + (ox0 * g->stride - g->pad + kx);
                    const float *sr = row + (size_t)oy * g->ow;
                    for (int ox = ox0; ox < ox1; ox++)
                        d[(ox - ox0) * g->stride] += sr[ox];
                }
            }
        }
    }
}

/* dx[cn][c][h][w] from dcol[ckk][cn*ohw] (adjoint of im2col). */
static void col2im(float *dx, const float *col, const rt_conv_geom *g, int cn)
{
    const size_t hw = (size_t)g->h * g->w, ohw = conv_ohw(g), cols = (size_t)cn * ohw;
    for (int s = 0; s < cn; s++) {
        float *dxs = dx + (size_t)s * g->c * hw;
        if (conv_pointwise(g))
            for (int ci = 0; ci < g->c; ci++)
                memcpy(dxs + ci * hw, col + ci * cols + s * ohw, hw * sizeof(float));
        else
            col2im_sample(dxs, col + s * ohw, cols, g);
    }
}

/* y[cn][k][ohw] = buf[k][cn*ohw] (+ b[k]) */
static void conv_unchunk_output(float *y, const float *buf, const float *b,
                                const rt_conv_geom *g, int cn)
{
    const size_t ohw = conv_ohw(g), cols = (size_t)cn * ohw;
    for (int s = 0; s < cn; s++)
        for (int k = 0; k < g->k; k++) {
            float *d = y + ((size_t)s * g->k + k) * ohw;
            const float *src = buf + k * cols + s * ohw;
            float bias = b ? b[k] : 0.0f;
            for (size_t i = 0; i < ohw; i++)
                d[i] = src[i] + bias;
        }
}

/* buf[k][cn*ohw] = dy[cn][k][ohw] (inverse of conv_unchunk_output) */
static void conv_chunk_grad(float *buf, const float *dy, const rt_conv_geom *g, int cn)
{
    const size_t ohw = conv_ohw(g), cols = (size_t)cn * ohw;
    /* plain loops, not memcpy: ohw is 1..4 floats in the late layers */
    for (int s = 0; s < cn; s++)
        for (int k = 0; k < g->k; k++) {
            float *d = buf + k * cols + s * ohw;
            const float *src = dy + ((size_t)s * g->k + k) * ohw;
            for (size_t i = 0; i < ohw; i++)
                d[i] = src[i];
        }
}

void rt_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                       float *scratch, const rt_conv_geom *g, int n)
{
    const size_t ckk = conv_ckk(g), ohw = conv_ohw(g);
    const size_t in_sample = (size_t)g->c * g->h * g->w, out_sample = (size_t)g->k * ohw;
    const int chunk = conv_chunk(g);
    float *col = scratch;
    for (int s0 = 0; s0 < n; s0 += chunk) {
        int cn = n - s0 < chunk ? n - s0 : chunk;
        const size_t cols = (size_t)cn * ohw;
        const float *xc = x + s0 * in_sample;
        float *yc = y + s0 * out_sample;
        float *out = scratch + ckk * cols;   /* after this chunk's columns */
        const float *b_mat = xc;
        if (!(cn == 1 && conv_pointwise(g))) {
            im2col(col, xc, g, cn);
            b_mat = col;
        }
        if (cn == 1) {
            /* One sample: [k][ohw] already is its NCHW layout. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->k, (int)cols, (int)ckk,
                        1.0f, w, (int)ckk, b_mat, (int)cols, 0.0f, yc, (int)cols);
            if (b)
                for (int k = 0; k < g->k; k++)
                    for (size_t i = 0; i < ohw; i++)
                        yc[k * ohw + i] += b[k];
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->k, (int)cols, (int)ckk,
                        1.0f, w, (int)ckk, b_mat, (int)cols, 0.0f, out, (int)cols);
            conv_unchunk_output(yc, out, b, g, cn);
        }
    }
}

/* db[k] += sum over samples and positions of dy, in double for accuracy. */
static void conv_bias_grad(float *db, const float *dy, const rt_conv_geom *g, int n)
{
    const size_t ohw = conv_ohw(g);
    for (int k = 0; k < g->k; k++) {
        double acc = 0.0;
        for (int s = 0; s < n; s++) {
            const float *d = dy + ((size_t)s * g->k + k) * ohw;
            for (size_t i = 0; i < ohw; i++)
                acc += d[i];
        }
        db[k] += (float)acc;
    }
}

void rt_conv2d_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const float *w, float *scratch, const rt_conv_geom *g, int n)
{
    const size_t ckk = conv_ckk(g), ohw = conv_ohw(g);
    const size_t in_sample = (size_t)g->c * g->h * g->w, out_sample = (size_t)g->k * ohw;
    const int chunk = conv_chunk(g);
    if (db)
        conv_bias_grad(db, dy, g, n);
    float *col = scratch;
    for (int s0 = 0; s0 < n; s0 += chunk) {
        int cn = n - s0 < chunk ? n - s0 : chunk;
        const int cols = (int)((size_t)cn * ohw);
        const float *xc = x + s0 * in_sample, *dyc = dy + s0 * out_sample;
        const int direct = cn == 1 && conv_pointwise(g);
        const float *b_mat = xc;
        if (!direct) {
            im2col(col, xc, g, cn);
            b_mat = col;
        }
        const float *dyr = dyc;             /* one sample: already [k][ohw] */
        if (cn > 1) {
            float *buf = scratch + ckk * (size_t)cols;
            conv_chunk_grad(buf, dyc, g, cn);
            dyr = buf;
        }
        /* dw[k][ckk] += dyr[k][cols] . col[ckk][cols]^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->k, (int)ckk, cols, 1.0f, dyr,
                    cols, b_mat, cols, 1.0f, dw, (int)ckk);
        if (!dx)
            continue;
        /* dcol[ckk][cols] = w^T . dyr, written over col (no longer needed), or
         * straight into dx when the columns are the input itself. */
        float *dxc = dx + s0 * in_sample;
        float *dcol = direct ? dxc : col;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ckk, cols, g->k, 1.0f, w,
                    (int)ckk, dyr, cols, 0.0f, dcol, cols);
        if (!direct)
            col2im(dxc, col, g, cn);
    }
}
