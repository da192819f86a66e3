/* Internal to the comm module: the rt_comm object and the table of
 * operations an implementation (MPI here, NCCL later) fills in. comm.c
 * builds everything else on the table: blocking collectives as a start
 * plus a wait under the deadline, the agreement, the watchdog's liveness
 * round and its message. */
#ifndef RTRAIN_COMM_INTERNAL_H
#define RTRAIN_COMM_INTERNAL_H

#include "rtrain/comm.h"

#define RT_COMM_HOST_MAX 64

typedef struct rt_comm_ops {
    const char *kind;
    /* Non-blocking collectives: start and fill *req (req->active = 1). */
    rt_status (*iallreduce)(rt_comm *c, void *buf, size_t count, rt_dtype t, rt_reduce_op op,
                            rt_comm_req *req);
    rt_status (*ibroadcast)(rt_comm *c, void *buf, size_t count, rt_dtype t, int root,
                            rt_comm_req *req);
    rt_status (*ireduce_scatter)(rt_comm *c, const void *send, void *recv, size_t recv_count,
                                 rt_dtype t, rt_reduce_op op, rt_comm_req *req);
    rt_status (*iallgather)(rt_comm *c, const void *send, void *recv, size_t count,
                            rt_dtype t, rt_comm_req *req);
    rt_status (*iallgatherv)(rt_comm *c, void *buf, const size_t *counts,
                             const size_t *displs, rt_dtype t, rt_comm_req *req);
    /* *done = 1 when every active request has completed (they become
     * inactive); never blocks. */
    rt_status (*test)(rt_comm *c, rt_comm_req *reqs, int n, int *done);
    /* Blocks until every active request has completed (no deadline). */
    rt_status (*wait)(rt_comm *c, rt_comm_req *reqs, int n);
    rt_status (*split)(rt_comm *c, int color, int key, rt_comm **out);
    rt_status (*split_node)(rt_comm *c, rt_comm **out);
    /* Node-shared memory (NULL: not supported): allocate (collective over
     * c), make the writer's stores visible (collective over the node),
     * free (collective over the node). */
    rt_status (*shared_alloc)(rt_comm *c, size_t bytes, rt_comm_shared **out, void **ptr,
                              int *writer);
    rt_status (*shared_sync)(rt_comm_shared *s);
    /* Orders this process's loads and stores of the memory against a
     * synchronisation of the processes that follows or precedes it
     * (MPI_Win_sync); not collective. */
    rt_status (*shared_fence)(rt_comm_shared *s);
    void (*shared_free)(rt_comm_shared *s);
    /* The watchdog's liveness round: rank 0 fills alive[size] for at most
     * wait_s seconds; every other rank tells rank 0 it is alive. */
    void (*liveness)(rt_comm *c, double wait_s, int *alive);
    void (*destroy)(rt_comm *c);
} rt_comm_ops;

/* Node-shared memory of an implementation: its free/sync functions and
 * its own state follow this header. */
struct rt_comm_shared {
    const rt_comm_ops *ops;
};

struct rt_comm {
    const rt_comm_ops *ops;
    void *impl;
    int rank, size;
    char (*hosts)[RT_COMM_HOST_MAX];   /* [size], gathered at creation */
    int job_ranks_on_node;
    double timeout_s;
    long long step;
};

/* comm.c: creates the object around impl (taking it over) and gathers the
 * host names (collective over the new communicator). On failure impl is
 * destroyed through ops. */
rt_status rt_comm_create(rt_comm **out, const rt_comm_ops *ops, void *impl, int rank,
                         int size);

/* Not collective: an object around impl with the ranks, host names and
 * deadline of `host`, for a communicator made over the same processes by
 * another library (NCCL). On failure impl is destroyed through ops. */
rt_status rt_comm_create_beside(rt_comm **out, const rt_comm_ops *ops, void *impl,
                                const rt_comm *host);

/* RT_ERR_UNSUPPORTED when c cannot reach m's memory (the MPI implementation
 * and a device backend). Not collective. */
rt_status rt_comm_check_model_memory(const rt_comm *c, const rt_model *m);

#endif
