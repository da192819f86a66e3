/* Test-only backend tables. rt_backend_with_fault: a table that fails on
 * purpose, so that tests can check what a kernel failure on one rank does
 * to a whole job (one clear
 * message naming that rank, every rank exits, nothing hangs). It wraps
 * another backend and makes linear_forward and conv2d_forward return
 * RT_ERR_INTERNAL from their fail_at-th call on. The training loop
 * installs it only when RTRAIN_FAULT asks for it (src/train/fault.c), in a
 * build configured with --enable-fault-injection; other builds have
 * neither table. */
#include <stdatomic.h>
#include "config.h"
#include "backend/backends.h"

#ifdef RT_FAULT_INJECTION

static rt_backend faulty;
static const rt_backend *base;
static long fail_at;
static atomic_long calls;
static int in_backward;   /* rt_backend_with_backward_fault: linear_backward fails instead */

static rt_status maybe_fail(const char *kernel)
{
    long n = atomic_fetch_add(&calls, 1) + 1;
    if (n >= fail_at)
        return RT_ERROR(RT_ERR_INTERNAL, "%s failed: injected kernel failure at call %ld "
                        "(RTRAIN_FAULT, test only)", kernel, n);
    return RT_OK;
}

static rt_status fault_linear_forward(float *y, const float *x, const float *w, const float *b,
                                      int n, int in, int out)
{
    RT_CHECK(maybe_fail("linear_forward"));
    return base->linear_forward(y, x, w, b, n, in, out);
}

static rt_status fault_conv2d_forward(const rt_conv_plan *p, float *y, const float *x,
                                      const float *w, const float *b, float *scratch, int n)
{
    RT_CHECK(maybe_fail("conv2d_forward"));
    return base->conv2d_forward(p, y, x, w, b, scratch, n);
}

static rt_status fault_linear_backward(float *dx, float *dw, float *db, const float *dy,
                                       const float *x, const float *w, int n, int in, int out)
{
    RT_CHECK(maybe_fail("linear_backward"));
    return base->linear_backward(dx, dw, db, dy, x, w, n, in, out);
}

const rt_backend *rt_backend_with_fault(const rt_backend *b, long at)
{
    base = b;
    fail_at = at;
    atomic_store(&calls, 0);
    faulty = *b;
    if (in_backward) {
        faulty.linear_backward = fault_linear_backward;
    } else {
        faulty.linear_forward = fault_linear_forward;
        faulty.conv2d_forward = fault_conv2d_forward;
    }
    return &faulty;
}

const rt_backend *rt_backend_with_backward_fault(const rt_backend *b, long at)
{
    in_backward = 1;
    return rt_backend_with_fault(b, at);
}

/* The stand-in for a GPU backend: the same kernels, but memory that the
 * code outside the table must treat as the device's. */
static rt_backend device_like;

const rt_backend *rt_backend_as_device(const rt_backend *b)
{
    device_like = *b;
    device_like.flags &= ~RT_BACKEND_HOST_MEMORY;
    return &device_like;
}

#endif
