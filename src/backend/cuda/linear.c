/* Linear layers through cuBLAS (column-major), on the compute stream.
 *
 * rtrain's tensors are row-major: y[n][out], x[n][in], w[out][in]. Read
 * column-major, a row-major [r][c] matrix is its transpose [c x r] with
 * leading dimension c, so every product below is the row-major formula
 * with the operands swapped:
 *   forward   y^T (out x n)  = w^T' (out x in) . x^T (in x n)   -> gemm(T, N)
 *   dx        dx^T (in x n)  = w^T (in x out) . dy^T (out x n)  -> gemm(N, N)
 *   dw        dw^T (in x out) += x^T (in x n) . dy (n x out)    -> gemm(N, T), beta 1
 *   db        db (out)       += dy^T (out x n) . ones (n)       -> gemv, beta 1
 * As on the CPU, y is first filled with the bias rows and the product added
 * onto it (beta 1), so the bias is never rounded to TF32. TF32 follows
 * gpu.tf32 through the handle's math mode. */
#include "backend/cuda/device.h"

/* A device vector of ones, grown to the largest batch seen. */
static float *ones;
static size_t ones_count;

static rt_status ones_of(size_t n, const float **out)
{
    if (ones_count < n) {
        rt_cuda_free(ones);
        ones = NULL;
        ones_count = 0;
        RT_CHECK(rt_cuda_alloc((void **)&ones, n * sizeof(float), "a vector of ones"));
        RT_CHECK(rt_cuda_fill(ones, 1.0f, n));
        ones_count = n;
    }
    *out = ones;
    return RT_OK;
}

rt_status rt_cuda_linear_forward(float *y, const float *x, const float *w, const float *b,
                                 int n, int in, int out)
{
    if (n <= 0)
        return RT_OK;
    const float one = 1.0f, zero = 0.0f;
    if (b)
        RT_CHECK(rt_cuda_bias_rows(y, b, n, out));
    RT_CUBLAS_CHECK(cublasSgemm(rt_cuda_cublas(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w,
                                in, x, in, b ? &one : &zero, y, out),
                    "linear forward (cublasSgemm)");
    return RT_OK;
}

rt_status rt_cuda_linear_backward(float *dx, float *dw, float *db, const float *dy,
                                  const float *x, const float *w, int n, int in, int out)
{
    if (n <= 0)
        return RT_OK;
    const float one = 1.0f, zero = 0.0f;
    cublasHandle_t h = rt_cuda_cublas();
    if (dx)
        RT_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, w, in, dy,
                                    out, &zero, dx, in), "linear input gradient (cublasSgemm)");
    if (!dw)
        return RT_OK;
    RT_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x, in, dy, out,
                                &one, dw, in), "linear weight gradient (cublasSgemm)");
    if (db) {
        const float *o;
        RT_CHECK(ones_of((size_t)n, &o));
        RT_CUBLAS_CHECK(cublasSgemv(h, CUBLAS_OP_N, out, n, &one, dy, out, o, 1, &one, db, 1),
                        "linear bias gradient (cublasSgemv)");
    }
    return RT_OK;
}

void rt_cuda_linear_release(void)
{
    rt_cuda_free(ones);
    ones = NULL;
    ones_count = 0;
}
