/* Agreement on the outcome of a checkpoint step, and the test-only fault
 * hook.
 *
 * A checkpoint is written by all ranks together: if one rank's step fails
 * and it returned while the others went on into the next collective HDF5
 * call, the job would hang. So after every step that can fail locally the
 * ranks agree on the outcome (invariant 1 of ARCHITECTURE.md) by the one
 * rule of rt_comm_agree: the lowest failing rank's status and message
 * reach every rank, so every rank returns the same status and error.txt
 * names the rank that failed. A step only rank 0 does is agreed the same
 * way (the others pass RT_OK). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "core/fault.h"

int ckpt_rank(const rt_comm *comm) { return comm ? rt_comm_rank(comm) : 0; }
int ckpt_world(const rt_comm *comm) { return comm ? rt_comm_size(comm) : 1; }

rt_status ckpt_agree(rt_comm *comm, rt_status local)
{
    return comm ? rt_comm_agree(comm, local) : local;
}

int ckpt_fault_active(const char *phase, int rank)
{
    const char *arg = rt_fault_arg(phase, rank, -1);   /* unset rank: every rank */
    return arg && !*arg;
}

void ckpt_fault_point(const char *phase, int rank)
{
    const char *arg = rt_fault_arg(phase, rank, -1);
    if (arg && !strcmp(arg, "stop")) {   /* a rank that freezes (a stalled file system) */
        fprintf(stderr, "rtrain: RTRAIN_FAULT=%s:stop: rank %d stops itself (test only)\n",
                phase, rank);
        fflush(stderr);
        raise(SIGSTOP);
        return;
    }
    if (ckpt_fault_active(phase, rank)) {
        fprintf(stderr, "rtrain: RTRAIN_FAULT=%s: rank %d kills itself (test only)\n", phase,
                rank);
        fflush(stderr);
        raise(SIGKILL);
    }
}
