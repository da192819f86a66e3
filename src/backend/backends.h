/* The backend tables of this build (internal): each backend's file
 * defines its table; backend.c lists them by name. A test-only wrapper
 * injects a kernel failure (fault.c). */
#ifndef RTRAIN_BACKEND_BACKENDS_H
#define RTRAIN_BACKEND_BACKENDS_H

#include "rtrain/backend.h"

extern const rt_backend rt_backend_cpu;     /* backend/cpu/cpu.c */
extern const rt_backend rt_backend_naive;   /* backend/naive/naive.c */
/* The "cuda" table from the CUDA library, loaded on the first call; NULL
 * when it cannot be (gpu.c; rt_cuda_load says why). */
const rt_backend *rt_backend_cuda_table(void);

/* Test-only, in a build configured with --enable-fault-injection alone
 * (backend/fault.c): base's table with linear_forward and conv2d_forward failing
 * (RT_ERR_INTERNAL, a message saying it is injected) from their
 * `fail_at`-th call on (1-based, counting both). One such table exists per
 * process; a second call replaces the first. */
const rt_backend *rt_backend_with_fault(const rt_backend *base, long fail_at);
/* The same with linear_backward failing instead (a failure after the
 * step's agreement). */
const rt_backend *rt_backend_with_backward_fault(const rt_backend *base, long fail_at);

/* Test-only: base's table without RT_BACKEND_HOST_MEMORY, a stand-in for a
 * GPU backend on a machine without one: everything outside the table then
 * takes its device paths (uploads, downloads, checkpoints and MPI
 * collectives staged through host copies). One such table per process. */
const rt_backend *rt_backend_as_device(const rt_backend *base);

#endif
