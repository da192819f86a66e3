/* Checked collectives on large float buffers. MPI counts are int, so
 * buffers are reduced in chunks of at most 2^30 elements. */
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <sched.h>
#include "rtrain/comm.h"

#define CHUNK ((size_t)1 << 30)

static rt_status allreduce(MPI_Comm comm, void *buf, size_t count, MPI_Datatype type,
                           size_t elem)
{
    for (size_t done = 0; done < count; done += CHUNK) {
        size_t n = count - done < CHUNK ? count - done : CHUNK;
        if (MPI_Allreduce(MPI_IN_PLACE, (char *)buf + done * elem, (int)n, type, MPI_SUM,
                          comm) != MPI_SUCCESS)
            return RT_ERROR(RT_ERR_MPI, "MPI_Allreduce of %zu values failed", n);
    }
    return RT_OK;
}

rt_status rt_comm_allreduce_sum(MPI_Comm comm, float *buf, size_t count)
{
    return allreduce(comm, buf, count, MPI_FLOAT, sizeof(float));
}

rt_status rt_comm_allreduce_sum_double(MPI_Comm comm, double *buf, size_t count)
{
    return allreduce(comm, buf, count, MPI_DOUBLE, sizeof(double));
}

rt_status rt_comm_broadcast(MPI_Comm comm, float *buf, size_t count, int root)
{
    for (size_t done = 0; done < count; done += CHUNK) {
        size_t n = count - done < CHUNK ? count - done : CHUNK;
        if (MPI_Bcast(buf + done, (int)n, MPI_FLOAT, root, comm) != MPI_SUCCESS)
            return RT_ERROR(RT_ERR_MPI, "MPI_Bcast of %zu floats failed", n);
    }
    return RT_OK;
}

rt_status rt_comm_broadcast_model(MPI_Comm comm, rt_model *m)
{
    RT_CHECK(rt_comm_broadcast(comm, rt_model_params(m), rt_model_num_params(m), 0));
    RT_CHECK(rt_comm_broadcast(comm, rt_model_buffers(m), rt_model_num_buffers(m), 0));
    return RT_OK;
}

rt_status rt_comm_wait_all(MPI_Request *reqs, int n, double timeout_s)
{
    if (timeout_s <= 0) {
        if (MPI_Waitall(n, reqs, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            return RT_ERROR(RT_ERR_MPI, "MPI_Waitall failed");
        return RT_OK;
    }
    /* Polling keeps the deadline; MPI_Testall also drives progress. */
    double deadline = rt_time_now() + timeout_s;
    for (;;) {
        int done = 0;
        if (MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            return RT_ERROR(RT_ERR_MPI, "MPI_Testall failed");
        if (done)
            return RT_OK;
        if (rt_time_now() > deadline)
            return RT_ERROR(RT_ERR_TIMEOUT, "communication did not complete within %.0f s",
                            timeout_s);
        sched_yield();
    }
}

void rt_comm_nn_reduce_sum(void *comm, float *buf, size_t count)
{
    MPI_Comm c = *(MPI_Comm *)comm;
    if (rt_comm_allreduce_sum(c, buf, count) != RT_OK) {
        fprintf(stderr, "rtrain: error: synchronised BatchNorm: %s\n", rt_error_message());
        MPI_Abort(c, RT_EXIT_FAILURE);
    }
}

void rt_comm_tune_before_init(void)
{
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);   /* 1 = ring */
}
