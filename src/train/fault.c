/* The training loop's test-only faults (core/fault.h lists them all);
 * inert unless RTRAIN_FAULT is set. Users never set these variables.
 *   RTRAIN_FAULT=kill_at_step:N[,M...]  rank RTRAIN_FAULT_RANK (default 0)
 *                                        kills itself (SIGKILL) right after
 *                                        optimizer step N
 *   RTRAIN_FAULT=usr1_at_step:N[,M...]  same rank sends itself SIGUSR1 (a
 *                                        stop signal seen by one rank only)
 *   RTRAIN_FAULT=kernel_fail:N          the same rank's linear and conv2d
 *                                        kernels fail from their N-th call on
 *                                        (a kernel error on one rank only)
 *   RTRAIN_FAULT=backward_fail:N        the same rank's linear backward fails
 *                                        from its N-th call on (after the
 *                                        step's agreement)
 *   RTRAIN_FAULT=device_memory          every rank's backend (or the one of
 *                                        RTRAIN_FAULT_RANK) keeps its tensors
 *                                        as if on a GPU (rt_backend_as_device):
 *                                        the GPU paths without a GPU
 *   RTRAIN_FAULT=stop_at:PHASE          the same rank freezes (SIGSTOP) at
 *                                        the start of PHASE: setup (before
 *                                        the data is opened), resume, or
 *                                        train (before an epoch's first step)
 *   RTRAIN_FAULT_DIR=DIR                 each N fires once: DIR/fault.N is
 *                                        created first, and an existing one
 *                                        disarms it, so a retried attempt
 *                                        that passes step N again goes on.
 * In a build without --enable-fault-injection these do nothing. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "trainer.h"
#include "backend/backends.h"
#include "core/fault.h"

#ifdef RT_FAULT_INJECTION

void trainer_fault_after_step(const trainer *t)
{
    rt_fault_after_step(t->ctx->world_rank, (long long)t->step);
}

void trainer_fault_stop_at(const trainer *t, const char *phase)
{
    const char *at = rt_fault_arg("stop_at", t->ctx->world_rank, 0);
    if (!at || strcmp(at, phase) != 0)
        return;
    fprintf(stderr, "rtrain: test fault: rank %d stops itself at %s\n", t->ctx->world_rank,
            phase);
    fflush(stderr);
    raise(SIGSTOP);
}

const rt_backend *trainer_fault_backend(const trainer *t, const rt_backend *be)
{
    if (rt_fault_arg("device_memory", t->ctx->world_rank, -1))
        return rt_backend_as_device(be);
    const char *back = rt_fault_arg("backward_fail", t->ctx->world_rank, 0);
    if (back)
        return rt_backend_with_backward_fault(be, atol(back) > 0 ? atol(back) : 1);
    const char *at = rt_fault_arg("kernel_fail", t->ctx->world_rank, 0);
    if (!at)
        return be;
    return rt_backend_with_fault(be, atol(at) > 0 ? atol(at) : 1);
}

#else   /* no hooks in this build (core/fault.h) */

void trainer_fault_after_step(const trainer *t) { (void)t; }
void trainer_fault_stop_at(const trainer *t, const char *phase) { (void)t, (void)phase; }
const rt_backend *trainer_fault_backend(const trainer *t, const rt_backend *be)
{
    (void)t;
    return be;
}

#endif
