/* Elementwise kernels on the CPU: fill, ReLU, dropout's backward, in-place
 * add (dropout's forward draws its mask serially: backend/host.c). Passes over
 * large tensors are split over the kernels' threads (parallel.h); the
 * loops are branch-free selects, so they vectorise. */
#include <string.h>
#include "rtrain/core.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"

/* Operands of one elementwise pass: out = f(a, b). */
typedef struct ew_job {
    float *out;
    const float *a, *b;
} ew_job;

static void ew_run(rt_par_fn fn, float *out, const float *a, const float *b, size_t count)
{
    ew_job j = {out, a, b};
    rt_par_for(count, rt_par_threads(count, RT_PAR_MIN_FLOATS), fn, &j);
}

/* out may alias a or b (in place): same index only, so no restrict.
 * ReLU keeps NaN as PyTorch does (!(x <= 0) holds for NaN), so that the
 * non-finite check downstream sees it; -0 and 0 give +0. */
static void relu_forward_piece(void *arg, size_t lo, size_t hi)
{
    const ew_job *j = arg;
    float *y = j->out;
    const float *x = j->a;
    for (size_t i = lo; i < hi; i++)
        y[i] = !(x[i] <= 0.0f) ? x[i] : 0.0f;
}

static void relu_backward_piece(void *arg, size_t lo, size_t hi)
{
    const ew_job *j = arg;
    float *dx = j->out;
    const float *dy = j->a, *y = j->b;
    /* dy is loaded unconditionally so that the select vectorises (a load
     * under the condition would have to stay a branch) */
    for (size_t i = lo; i < hi; i++) {
        float d = dy[i];
        dx[i] = y[i] > 0.0f ? d : 0.0f;
    }
}

static void mul_piece(void *arg, size_t lo, size_t hi)
{
    const ew_job *j = arg;
    for (size_t i = lo; i < hi; i++)
        j->out[i] = j->a[i] * j->b[i];
}

static void add_piece(void *arg, size_t lo, size_t hi)
{
    const ew_job *j = arg;
    float *y = j->out;
    const float *x = j->a;
    for (size_t i = lo; i < hi; i++)
        y[i] += x[i];
}

/* The gradient slab is 44 MB for ResNet18: the threads fill a part each. */
static void fill_piece(void *arg, size_t lo, size_t hi)
{
    const ew_job *j = arg;
    const float v = *j->a;
    float *y = j->out;
    if (v == 0.0f) {
        memset(y + lo, 0, (hi - lo) * sizeof *y);
        return;
    }
    for (size_t i = lo; i < hi; i++)
        y[i] = v;
}

rt_status rt_cpu_fill(float *dst, float value, size_t count)
{
    ew_run(fill_piece, dst, &value, NULL, count);
    return RT_OK;
}

rt_status rt_cpu_relu_forward(float *y, const float *x, size_t count)
{
    ew_run(relu_forward_piece, y, x, NULL, count);
    return RT_OK;
}

rt_status rt_cpu_relu_backward(float *dx, const float *dy, const float *y, size_t count)
{
    ew_run(relu_backward_piece, dx, dy, y, count);
    return RT_OK;
}

rt_status rt_cpu_dropout_backward(float *dx, const float *dy, const float *mask, size_t count)
{
    ew_run(mul_piece, dx, dy, mask, count);
    return RT_OK;
}

rt_status rt_cpu_add(float *y, const float *x, size_t count)
{
    ew_run(add_piece, y, x, NULL, count);
    return RT_OK;
}
