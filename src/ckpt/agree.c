/* Agreement on the outcome of a checkpoint step, and the test-only fault
 * hook.
 *
 * A checkpoint is written by all ranks together: if one rank's step fails
 * and it returned while the others went on into the next collective HDF5
 * call, the job would hang. So after every step that can fail locally the
 * ranks agree on the outcome (invariant 1 of ARCHITECTURE.md): an
 * all-reduce picks the worst status and the lowest rank that has it, and
 * that rank broadcasts its message, so every rank returns the same status
 * with the same clear message. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

enum { AGREE_MSG_MAX = 1536 };

int ckpt_rank(MPI_Comm comm)
{
    int r = 0;
    if (comm != MPI_COMM_NULL)
        MPI_Comm_rank(comm, &r);
    return r;
}

int ckpt_world(MPI_Comm comm)
{
    int w = 1;
    if (comm != MPI_COMM_NULL)
        MPI_Comm_size(comm, &w);
    return w;
}

/* Gives every rank `from`'s message for status code (rank `from` keeps its
 * own error record untouched). */
static rt_status share_message(MPI_Comm comm, int code, int from)
{
    char msg[AGREE_MSG_MAX];
    int me = ckpt_rank(comm);
    if (me == from)
        snprintf(msg, sizeof msg, "%s", rt_error_message());
    if (MPI_Bcast(msg, sizeof msg, MPI_CHAR, from, comm) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "MPI_Bcast of a checkpoint error message failed");
    msg[sizeof msg - 1] = '\0';
    if (me == from)
        return (rt_status)code;
    if (from == 0)
        return RT_ERROR((rt_status)code, "%s", msg);
    return RT_ERROR((rt_status)code, "rank %d: %s", from, msg);
}

rt_status ckpt_agree(MPI_Comm comm, rt_status local)
{
    if (comm == MPI_COMM_NULL)
        return local;
    int in[2] = {(int)local, ckpt_rank(comm)}, out[2];
    if (MPI_Allreduce(in, out, 1, MPI_2INT, MPI_MAXLOC, comm) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "MPI_Allreduce agreeing on a checkpoint step failed");
    if (out[0] == RT_OK)
        return RT_OK;
    return share_message(comm, out[0], out[1]);
}

rt_status ckpt_agree_root(MPI_Comm comm, rt_status local, int root)
{
    if (comm == MPI_COMM_NULL)
        return local;
    int code = (int)local;
    if (MPI_Bcast(&code, 1, MPI_INT, root, comm) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "MPI_Bcast of a checkpoint step's status failed");
    if (code == RT_OK)
        return RT_OK;
    return share_message(comm, code, root);
}

int ckpt_fault_active(const char *phase, int rank)
{
    const char *f = getenv("RTRAIN_FAULT");
    if (!f || strcmp(f, phase) != 0)
        return 0;
    const char *r = getenv("RTRAIN_FAULT_RANK");
    return !r || !*r || atoi(r) == rank;
}

void ckpt_fault_point(const char *phase, int rank)
{
    if (ckpt_fault_active(phase, rank)) {
        fprintf(stderr, "rtrain: RTRAIN_FAULT=%s: rank %d kills itself (test only)\n", phase,
                rank);
        fflush(stderr);
        raise(SIGKILL);
    }
}
