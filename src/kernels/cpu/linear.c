/* Fully connected layer on the CPU: one OpenBLAS sgemm per product. Row-major
 * throughout: x[n][in], w[out][in] (PyTorch's nn.Linear layout), y[n][out]. */
#include <cblas.h>
#include "kernels/cpu/kernels.h"

void rt_linear_forward(float *y, const float *x, const float *w, const float *b,
                       int n, int in, int out)
{
    /* Pre-fill y with the bias and let sgemm accumulate onto it (beta = 1):
     * one pass over y instead of a second bias pass after the product. */
    float beta = 0.0f;
    if (b) {
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++)
                y[(size_t)i * out + o] = b[o];
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in,
                beta, y, out);
}

void rt_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const float *w, int n, int in, int out)
{
    /* dw[out][in] += dy[n][out]^T . x[n][in] */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in,
                1.0f, dw, in);
    if (db) {
        /* Summed apart (in double, as the conv bias) and then added, so db
         * receives the same increment whatever it held before. */
        for (int o = 0; o < out; o++) {
            double acc = 0.0;
            for (int i = 0; i < n; i++)
                acc += dy[(size_t)i * out + o];
            db[o] += (float)acc;
        }
    }
    /* dx[n][in] = dy[n][out] . w[out][in] */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, w,
                    in, 0.0f, dx, in);
}
