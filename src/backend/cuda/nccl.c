/* NCCL communicators for the comm module (see nccl.h): one communicator
 * stream, and a pool of completion events that the handles index.
 *
 * The communicator is non-blocking (ncclConfig_t.blocking = 0), so that
 * nothing NCCL does can hang a rank beyond the deadline: creation and any
 * call that answers ncclInProgress are settled by polling
 * ncclCommGetAsyncError (NCCL's rule before the next call on that
 * communicator) for at most timeout_s seconds (0: no limit), after which
 * the rank gets RT_ERR_TIMEOUT and the job's agreement over MPI ends it. */
#include <nccl.h>
#include <sched.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cuda/device.h"
#include "backend/cuda/nccl.h"

/* Collectives in flight at once: DDP starts one per bucket. */
enum { EVENT_POOL = 256 };

struct rt_nccl {
    ncclComm_t comm;
    cudaStream_t stream;
    cudaEvent_t ready;                 /* recorded on the compute stream per start */
    cudaEvent_t done[EVENT_POOL];
    unsigned char busy[EVENT_POOL];
    int aborted;
    double timeout_s;
};

#define NCCL_CHECK(call, what)                                                      \
    do {                                                                            \
        ncclResult_t rt_nccl_r_ = (call);                                           \
        if (rt_nccl_r_ != ncclSuccess)                                              \
            return rt_cuda_nccl_status(rt_nccl_r_, (what), __FILE__, __LINE__);     \
    } while (0)

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Polls until a call that returned r on n's non-blocking communicator has
 * settled: its final result, or ncclInProgress when the deadline passed. */
static ncclResult_t settled(rt_nccl *n, ncclResult_t r)
{
    double deadline = n->timeout_s > 0 ? seconds_now() + n->timeout_s : 0;
    while (r == ncclInProgress) {
        if (deadline > 0 && seconds_now() > deadline)
            return ncclInProgress;
        sched_yield();
        if (ncclCommGetAsyncError(n->comm, &r) != ncclSuccess)
            return ncclInternalError;
    }
    return r;
}

/* settled() as an rt_status naming `what`. */
static rt_status settle(rt_nccl *n, ncclResult_t r, const char *what)
{
    r = settled(n, r);
    if (r == ncclInProgress)
        return RT_ERROR(RT_ERR_TIMEOUT, "%s did not complete within %.0f s (an NCCL peer "
                        "may be gone)", what, n->timeout_s);
    if (r != ncclSuccess)
        return rt_cuda_nccl_status(r, what, __FILE__, __LINE__);
    return RT_OK;
}

rt_status rt_nccl_unique_id(unsigned char id[RT_NCCL_ID_BYTES])
{
    _Static_assert(sizeof(ncclUniqueId) == RT_NCCL_ID_BYTES, "NCCL id size");
    ncclUniqueId u;
    NCCL_CHECK(ncclGetUniqueId(&u), "making the NCCL id (ncclGetUniqueId)");
    memcpy(id, &u, sizeof u);
    return RT_OK;
}

static rt_status make_events(rt_nccl *n)
{
    RT_CUDA_CHECK(cudaStreamCreateWithFlags(&n->stream, cudaStreamNonBlocking),
                  "creating the NCCL stream");
    RT_CUDA_CHECK(cudaEventCreateWithFlags(&n->ready, cudaEventDisableTiming),
                  "creating an event");
    for (int i = 0; i < EVENT_POOL; i++)
        RT_CUDA_CHECK(cudaEventCreateWithFlags(&n->done[i], cudaEventDisableTiming),
                      "creating an event");
    return RT_OK;
}

rt_status rt_nccl_create(rt_nccl **out, const unsigned char id[RT_NCCL_ID_BYTES], int rank,
                         int size, double timeout_s)
{
    *out = NULL;
    rt_nccl *n = calloc(1, sizeof *n);
    if (!n)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory for an NCCL communicator");
    n->timeout_s = timeout_s;
    rt_status st = make_events(n);
    if (st == RT_OK) {
        ncclUniqueId u;
        memcpy(&u, id, sizeof u);
        ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
        config.blocking = 0;
        ncclResult_t r = ncclCommInitRankConfig(&n->comm, size, u, rank, &config);
        st = settle(n, r, "creating the NCCL communicator");
        if (st != RT_OK && n->comm) {
            ncclCommAbort(n->comm);   /* an unfinished or failed creation */
            n->aborted = 1;
        }
    }
    if (st != RT_OK) {
        rt_nccl_free(n);
        return st;
    }
    *out = n;
    return RT_OK;
}

static ncclDataType_t nccl_type(int dtype)
{
    static const ncclDataType_t types[] = {ncclFloat32, ncclFloat64, ncclInt32, ncclInt64,
                                           ncclUint8};
    return types[dtype];
}

static ncclRedOp_t nccl_op(int op)
{
    return op == RT_NCCL_MIN ? ncclMin : op == RT_NCCL_MAX ? ncclMax : ncclSum;
}

/* Orders the communicator stream after the compute stream's work so far. */
static rt_status after_compute(rt_nccl *n)
{
    RT_CUDA_CHECK(cudaEventRecord(n->ready, rt_cuda_stream()), "recording an event");
    RT_CUDA_CHECK(cudaStreamWaitEvent(n->stream, n->ready, 0), "ordering the NCCL stream");
    return RT_OK;
}

/* Records completion into a free event; the handle is its slot + 1. */
static rt_status record_done(rt_nccl *n, uintptr_t *handle)
{
    for (int i = 0; i < EVENT_POOL; i++)
        if (!n->busy[i]) {
            RT_CUDA_CHECK(cudaEventRecord(n->done[i], n->stream), "recording an event");
            n->busy[i] = 1;
            *handle = (uintptr_t)i + 1;
            return RT_OK;
        }
    return RT_ERROR(RT_ERR_INTERNAL, "more than %d NCCL operations in flight", EVENT_POOL);
}

rt_status rt_nccl_allreduce(rt_nccl *n, void *buf, size_t count, int dtype, int op,
                            uintptr_t *handle)
{
    RT_CHECK(after_compute(n));
    RT_CHECK(settle(n, ncclAllReduce(buf, buf, count, nccl_type(dtype), nccl_op(op), n->comm,
                                     n->stream), "starting an NCCL all-reduce"));
    return record_done(n, handle);
}

rt_status rt_nccl_broadcast(rt_nccl *n, void *buf, size_t count, int dtype, int root,
                            uintptr_t *handle)
{
    RT_CHECK(after_compute(n));
    RT_CHECK(settle(n, ncclBroadcast(buf, buf, count, nccl_type(dtype), root, n->comm,
                                     n->stream), "starting an NCCL broadcast"));
    return record_done(n, handle);
}

rt_status rt_nccl_test(rt_nccl *n, uintptr_t handle, int *done)
{
    *done = 0;
    size_t slot = handle - 1;
    if (handle == 0 || slot >= EVENT_POOL || !n->busy[slot])
        return RT_ERROR(RT_ERR_INTERNAL, "unknown NCCL operation %zu", (size_t)handle);
    cudaError_t e = cudaEventQuery(n->done[slot]);
    if (e == cudaSuccess) {
        n->busy[slot] = 0;
        *done = 1;
        return RT_OK;
    }
    if (e != cudaErrorNotReady)
        return rt_cuda_status(e, "waiting for an NCCL operation", __FILE__, __LINE__);
    /* Still running: a failed peer shows up as an asynchronous error. */
    ncclResult_t async = ncclSuccess;
    NCCL_CHECK(ncclCommGetAsyncError(n->comm, &async), "asking NCCL for errors");
    if (async != ncclSuccess && async != ncclInProgress) {
        /* Nothing more can run on it: end what is in flight now. */
        rt_status st = rt_cuda_nccl_status(async, "an NCCL collective failed (a peer rank or "
                                           "its GPU may be gone)", __FILE__, __LINE__);
        rt_nccl_abort(n);
        return st;
    }
    return RT_OK;
}

void rt_nccl_set_timeout(rt_nccl *n, double timeout_s) { n->timeout_s = timeout_s; }

void rt_nccl_abort(rt_nccl *n)
{
    if (n && n->comm && !n->aborted) {
        n->aborted = 1;
        ncclCommAbort(n->comm);
    }
}

void rt_nccl_free(rt_nccl *n)
{
    if (!n)
        return;
    /* A clean end finalizes (settled like any call) before destroying;
     * one that cannot gets aborted. */
    if (n->comm && !n->aborted) {
        if (settled(n, ncclCommFinalize(n->comm)) == ncclSuccess)
            ncclCommDestroy(n->comm);
        else
            ncclCommAbort(n->comm);
    }
    for (int i = 0; i < EVENT_POOL; i++)
        if (n->done[i])
            cudaEventDestroy(n->done[i]);
    if (n->ready)
        cudaEventDestroy(n->ready);
    if (n->stream)
        cudaStreamDestroy(n->stream);
    free(n);
}
