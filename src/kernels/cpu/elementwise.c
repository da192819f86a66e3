/* Elementwise kernels on the CPU: ReLU, dropout, in-place add. Passes over
 * large tensors are split over the kernels' threads (parallel.h); the
 * loops are branch-free selects, so they vectorise. */
#include "rtrain/core.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/parallel.h"

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

/* out may alias a or b (in place): same index only, so no restrict. */
static void relu_forward_piece(void *arg, size_t lo, size_t hi)
{
    const ew_job *j = arg;
    float *y = j->out;
    const float *x = j->a;
    for (size_t i = lo; i < hi; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
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

void rt_relu_forward(float *y, const float *x, size_t count)
{
    ew_run(relu_forward_piece, y, x, NULL, count);
}

void rt_relu_backward(float *dx, const float *dy, const float *y, size_t count)
{
    ew_run(relu_backward_piece, dx, dy, y, count);
}

/* Element i is dropped when the i-th uniform of stream `key` is below p, so
 * the mask depends only on (key, i): any rank, any run, same mask. */
void rt_dropout_forward(float *y, float *mask, const float *x, size_t count, float p,
                        uint64_t key)
{
    const float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    rt_rng rng;
    rt_rng_init(&rng, key);
    for (size_t i = 0; i < count; i++) {
        mask[i] = rt_rng_uniform(&rng) < p ? 0.0f : keep;
        y[i] = x[i] * mask[i];
    }
}

void rt_dropout_backward(float *dx, const float *dy, const float *mask, size_t count)
{
    ew_run(mul_piece, dx, dy, mask, count);
}

void rt_add_inplace(float *y, const float *x, size_t count)
{
    ew_run(add_piece, y, x, NULL, count);
}
