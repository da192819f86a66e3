/* Elementwise kernels on the CPU: ReLU, dropout, in-place add. */
#include "rtrain/core.h"
#include "kernels/cpu/kernels.h"

void rt_relu_forward(float *y, const float *x, size_t count)
{
    for (size_t i = 0; i < count; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void rt_relu_backward(float *dx, const float *dy, const float *y, size_t count)
{
    for (size_t i = 0; i < count; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
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
    for (size_t i = 0; i < count; i++)
        dx[i] = dy[i] * mask[i];
}

void rt_add_inplace(float *y, const float *x, size_t count)
{
    for (size_t i = 0; i < count; i++)
        y[i] += x[i];
}
