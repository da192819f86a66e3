/* Test-only fault injection (internal). Inert unless the environment
 * variable RTRAIN_FAULT is set, which users never do: the tests use it to
 * make one rank fail at one place and check what the whole job does.
 * RTRAIN_FAULT names the fault, with an argument after ':';
 * RTRAIN_FAULT_RANK the rank it applies to. The faults, by module:
 *
 *   alloc:WHAT            rt_alloc of the buffer named WHAT fails (NOMEM)
 *   kernel_fail:N         linear/conv2d kernels fail from call N on (train)
 *   backward_fail:N       linear backward fails from call N on (train)
 *   device_memory         the backend's memory is treated as a GPU's (train)
 *   kill_at_step:N[,M]    SIGKILL after optimizer step N (train; gbdt: round N)
 *   usr1_at_step:N[,M]    SIGUSR1 after optimizer step N (train; gbdt: round N)
 *   ddp_bucket_fail       the first gradient bucket cannot be started (comm)
 *   ckpt_before_write, ckpt_during_write, ckpt_before_commit,
 *   ckpt_before_index     SIGKILL in that phase of rt_ckpt_save (ckpt)
 *   ckpt_before_write:stop, ...  the same phases with SIGSTOP: the rank
 *                         freezes (a stalled file system; the save's deadline)
 *   ckpt_fail_write       the rank's dataset write fails (ckpt)
 *   ckpt_no_space_check   rank 0 skips the free-space check before a save, so
 *                         that a full disk fails inside HDF5's writes (ckpt)
 *
 * Only the first fault named applies; each caller says which rank it
 * takes when RTRAIN_FAULT_RANK is unset.
 *
 * The hooks exist only in a build configured with --enable-fault-injection
 * (RT_FAULT_INJECTION in config.h). Without it rt_fault_arg is NULL and
 * rt_fault_after_step nothing, so every hook compiles to nothing, and
 * RTRAIN_FAULT is ignored (rt_fault_notice says so once). */
#ifndef RTRAIN_CORE_FAULT_H
#define RTRAIN_CORE_FAULT_H

#include "config.h"

#ifdef RT_FAULT_INJECTION

/* The argument of fault `name` ("5" for RTRAIN_FAULT=kernel_fail:5, "" for
 * a fault without one) when RTRAIN_FAULT names it and it applies to `rank`:
 * RTRAIN_FAULT_RANK equals rank, or, unset, rank == default_rank (any rank
 * when default_rank < 0). NULL otherwise. */
const char *rt_fault_arg(const char *name, int rank, int default_rank);

/* kill_at_step / usr1_at_step: raises the signal when `step` is listed
 * and the fault applies to `rank` (default rank 0). With RTRAIN_FAULT_DIR
 * set, each step fires once: DIR/fault.N is created first, and an
 * existing one disarms it (a retried attempt passing step N goes on). */
void rt_fault_after_step(int rank, long long step);

#else   /* a release build: no hooks */

static inline const char *rt_fault_arg(const char *name, int rank, int default_rank)
{
    (void)name, (void)rank, (void)default_rank;
    return NULL;
}

static inline void rt_fault_after_step(int rank, long long step) { (void)rank, (void)step; }

#endif

/* Called once at start-up by every rank (not collective): in a build
 * without fault injection, rank 0 says on stderr that RTRAIN_FAULT, when
 * set, is ignored. Nothing otherwise. */
void rt_fault_notice(int rank);

#endif
