/* rtrain comm: the communicator object every collective of rtrain goes
 * through, and data-parallel gradient averaging (DDP) with buckets.
 *
 * An rt_comm is a group of ranks with its own operations (a table of
 * functions behind the opaque handle): non-blocking all-reduce, broadcast,
 * reduce-scatter, all-gather, a wait with a deadline, abort, and one
 * agreement rule. Implemented over MPI; an NCCL implementation fills the
 * same table. DDP, synchronised BatchNorm, the metric reductions of a run
 * and the checkpoint protocol use nothing else, so none of them names MPI.
 * Code that needs the MPI communicator itself (MPI-IO for parallel HDF5)
 * gets it from rtrain/comm_mpi.h, the only public header that includes
 * mpi.h.
 *
 * Deadline (the hang watchdog): every blocking collective here, and
 * rt_comm_wait, waits at most rt_comm_timeout(c) seconds (0: forever). A
 * rank still waiting past it does not return: a liveness round lets rank
 * 0 name the ranks (and hosts) that do not respond, and the job is ended
 * through rt_abort, so that a launcher can retry it.
 *
 * Agreement rule (ARCHITECTURE.md invariant 1, the same everywhere): every
 * rank passes its local status; the lowest rank that failed wins, and its
 * status and message become every rank's, the message prefixed with
 * "[rank R host] " when R is not 0. error.txt parses that prefix, so it
 * names the rank where the failure happened.
 *
 * Collectiveness: a function taking an rt_comm is collective over it
 * (every rank calls it in the same order) unless its comment says "not
 * collective". Data buffers are host memory, except on an NCCL
 * communicator (GPU memory) and in the *_tensor functions and DDP, which
 * take the model's backend memory (staged through host memory when the
 * communicator cannot read it). */
#ifndef RTRAIN_COMM_H
#define RTRAIN_COMM_H

#include <stddef.h>
#include <stdint.h>
#include "rtrain/core.h"
#include "rtrain/data.h"
#include "rtrain/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rt_comm rt_comm;

typedef enum rt_dtype {
    RT_DTYPE_FLOAT32 = 0,
    RT_DTYPE_FLOAT64,
    RT_DTYPE_INT32,
    RT_DTYPE_INT64,
    RT_DTYPE_BYTE,       /* broadcast and gather only */
    RT_DTYPE_COUNT
} rt_dtype;

/* Bytes per element of t. Not collective. */
size_t rt_dtype_size(rt_dtype t);

typedef enum rt_reduce_op {
    RT_REDUCE_SUM = 0,
    RT_REDUCE_MEAN,      /* the sum divided by the number of ranks (floating types;
                          * blocking all-reduce only) */
    RT_REDUCE_MIN,
    RT_REDUCE_MAX
} rt_reduce_op;

/* A non-blocking operation in flight. Start from RT_COMM_REQ_NULL. */
typedef struct rt_comm_req {
    uintptr_t handle;    /* the implementation's request */
    int active;          /* 0: nothing to wait for */
} rt_comm_req;
#define RT_COMM_REQ_NULL ((rt_comm_req){0, 0})

/* ---- creation ---------------------------------------------------------------- */
/* Collective over all processes of the job (MPI_COMM_WORLD; MPI must be
 * initialised: rt_session_init does it). Also registers MPI_Abort as an
 * rt_abort hook and the process's log rank and host. */
rt_status rt_comm_world(rt_comm **out);
/* Collective over parent: the ranks passing the same color >= 0 form a
 * new communicator, ranked by key (then by parent rank); color < 0 gives
 * *out = NULL. The child has the parent's deadline. */
rt_status rt_comm_split(rt_comm *parent, int color, int key, rt_comm **out);
/* Collective: the ranks of c on this node (sharing memory). */
rt_status rt_comm_split_node(rt_comm *c, rt_comm **out);
/* Collective; NULL is a no-op. */
void rt_comm_free(rt_comm *c);

/* Not collective. */
int rt_comm_rank(const rt_comm *c);
int rt_comm_size(const rt_comm *c);
const char *rt_comm_kind(const rt_comm *c);             /* "mpi" */
const char *rt_comm_host(const rt_comm *c, int rank);   /* "?" if out of range */
/* Ranks of the whole job on this node, all communicators together (what
 * the node's cores are shared by); the communicator's own ranks on the
 * node when the job was not started through rt_comm_world. Not collective. */
int rt_comm_job_ranks_on_node(const rt_comm *c);

/* Deadline of every wait on c, in seconds (0: none). Every rank sets the
 * same value. Not collective. */
void rt_comm_set_timeout(rt_comm *c, double seconds);
double rt_comm_timeout(const rt_comm *c);
/* The optimizer step in progress, named by the watchdog's message (-1:
 * none). Not collective. */
void rt_comm_set_step(rt_comm *c, long long step);

/* ---- collectives ---------------------------------------------------------------- */
/* In-place all-reduce of count elements of buf (any count). */
rt_status rt_comm_allreduce(rt_comm *c, void *buf, size_t count, rt_dtype t, rt_reduce_op op);
/* Starts an in-place all-reduce (SUM, MIN or MAX; count < 2^30) and
 * returns at once; buf must stay untouched until rt_comm_wait. */
rt_status rt_comm_iallreduce(rt_comm *c, void *buf, size_t count, rt_dtype t,
                             rt_reduce_op op, rt_comm_req *req);
/* Not collective: waits for n requests (inactive ones are skipped) under
 * the deadline; `what` names them in the watchdog's message ("the
 * gradient all-reduce"). */
rt_status rt_comm_wait(rt_comm *c, rt_comm_req *reqs, int n, const char *what);
/* Not collective: lets the requests progress without waiting. */
void rt_comm_progress(rt_comm *c, rt_comm_req *reqs, int n);
/* root's count elements to every rank. */
rt_status rt_comm_broadcast(rt_comm *c, void *buf, size_t count, rt_dtype t, int root);
/* recv[recv_count] on rank r = op over ranks of send[r*recv_count ..
 * (r+1)*recv_count) (send holds size * recv_count elements). */
rt_status rt_comm_reduce_scatter(rt_comm *c, const void *send, void *recv, size_t recv_count,
                                 rt_dtype t, rt_reduce_op op);
/* recv[size * count] = every rank's send[count], in rank order. */
rt_status rt_comm_allgather(rt_comm *c, const void *send, void *recv, size_t count,
                            rt_dtype t);
/* In place: rank r's counts[r] elements at buf + displs[r] (in elements)
 * are given to every rank. */
rt_status rt_comm_allgatherv(rt_comm *c, void *buf, const size_t *counts, const size_t *displs,
                             rt_dtype t);

/* The agreement rule above. Returns RT_OK on every rank, or the lowest
 * failing rank's status on every rank with its message recorded. */
rt_status rt_comm_agree(rt_comm *c, rt_status local);
/* rt_comm_agree that also tells, in the same all-reduce, whether any rank
 * passed flag != 0 (*any = 1 on every rank then); the training loop's
 * once-per-step question "did any rank fail or catch a stop signal?". */
rt_status rt_comm_agree_flag(rt_comm *c, rt_status local, int flag, int *any);

/* ---- memory shared by the ranks of a node ---------------------------------------------- */
/* `bytes` of memory held once per node and mapped by every rank of c on
 * that node (MPI_Win_allocate_shared on the node-local part of c): what 8
 * ranks of a node read but never change, such as a dataset, is then held
 * once, not 8 times. The node's first rank of c has *writer = 1 and fills
 * it; rt_comm_shared_ready then makes its stores visible to the others.
 *
 * Protocol (every call collective over all of c, in the same order):
 *   alloc: the ranks agree on `local` (a rank that failed before cannot
 *          leave the others waiting in the allocation), then allocate;
 *   ready: the ranks agree on `local` (the writer's read may have
 *          failed), then synchronise the node's view of the memory;
 *   free:  collective over the node's ranks.
 * A communicator kind without shared memory returns RT_ERR_UNSUPPORTED
 * on every rank. */
typedef struct rt_comm_shared rt_comm_shared;

rt_status rt_comm_shared_alloc(rt_comm *c, rt_status local, size_t bytes,
                               rt_comm_shared **out, void **ptr, int *writer);
rt_status rt_comm_shared_ready(rt_comm *c, rt_comm_shared *s, rt_status local);
/* For memory that every rank writes (a rank's own part, or parts agreed
 * on): the ranks agree on `local`, and each one's stores before the call
 * are visible to every rank after it. One all-reduce (rt_comm_agree) between
 * two memory fences, so cheaper than rt_comm_shared_ready. Returns the
 * agreed status, the same on every rank (a fence that fails after the
 * agreement ends the job through rt_abort). */
rt_status rt_comm_shared_agree(rt_comm *c, rt_comm_shared *s, rt_status local);
void rt_comm_shared_free(rt_comm_shared *s);
/* The table a dataset format takes for data.cache = "node"
 * (rt_data_source.node_memory), built on the functions above over c. */
rt_node_memory rt_comm_node_memory(rt_comm *c);

/* Not collective: ends the whole job (rt_abort with the communicator's
 * abort hooks). For failures that would leave the other ranks inside a
 * collective. */
void rt_comm_abort(rt_comm *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* The watchdog's end of a wait that passed the deadline, for waits that
 * are not MPI calls (spin-waits in node-shared memory): called by every
 * rank that waited past rt_comm_timeout in `what`, as rt_comm_wait does.
 * Rank 0 runs the liveness round and ends the job naming the ranks that
 * did not answer; the others answer it and end the job if rank 0 does
 * not. Never returns. */
void rt_comm_abort_unresponsive(rt_comm *c, const char *what) __attribute__((noreturn));

/* Parameters and buffers of rank 0 to every rank, before training. */
rt_status rt_comm_broadcast_model(rt_comm *c, rt_model *m);

/* ---- the model's tensors on a GPU ------------------------------------------------- */
/* Collective over host (an MPI communicator; every rank has opened its GPU
 * with rt_gpu_open): an NCCL communicator over the same ranks, for tensors
 * in GPU memory. Rank 0's NCCL id is broadcast over host; the outcome is
 * agreed. The watchdog and rt_abort cover it (ncclCommAbort). host must
 * outlive it. RT_ERR_UNSUPPORTED in a build without CUDA. */
rt_status rt_comm_nccl(rt_comm **out, rt_comm *host);
/* Not collective: 1 when c's collectives on backend be's tensors go
 * through host memory (an MPI communicator and a GPU backend:
 * comm.backend = mpi). Slower than NCCL, but it works everywhere, also
 * for several ranks sharing one GPU, which NCCL refuses. */
int rt_comm_stages_tensors(const rt_comm *c, const rt_backend *be);
/* In-place sum / broadcast of float tensors in backend be's memory, staged
 * through host memory when rt_comm_stages_tensors says so. */
rt_status rt_comm_allreduce_tensor(rt_comm *c, const rt_backend *be, float *buf, size_t count);
rt_status rt_comm_broadcast_tensor(rt_comm *c, const rt_backend *be, float *buf, size_t count,
                                   int root);

/* ---- DDP ------------------------------------------------------------------------ */
/* Buckets are contiguous slices of the model's gradient slab (views, no
 * copies), formed from the last layer backwards so that they become final
 * in the order backward produces them. As soon as backward has finished
 * every layer a bucket covers, its all-reduce is started, so communication
 * overlaps the rest of backward; rt_ddp_finish waits for all of them
 * (under the communicator's deadline) before the optimizer step. Every
 * rank builds the same buckets from the same model, so the collectives
 * match. A bucket whose all-reduce cannot be started ends the job
 * (rt_comm_abort): the other ranks have started theirs. */
typedef struct rt_ddp rt_ddp;

/* Not collective: buckets of at least bucket_bytes (at layer boundaries;
 * one parameter layer may exceed it). Installs a backward hook on m. */
rt_status rt_ddp_create(rt_ddp **out, rt_comm *c, rt_model *m, size_t bucket_bytes);
void rt_ddp_free(rt_ddp *d);
int rt_ddp_num_buckets(const rt_ddp *d);
/* Not collective. sync = 0 for accumulation micro-steps: gradients stay
 * local. */
void rt_ddp_begin_backward(rt_ddp *d, int sync);
/* Collective: starts buckets not yet started and waits for all. Gradients
 * are SUMMED: the loss is scaled by 1/(global batch) so the sum is the
 * global mean. */
rt_status rt_ddp_finish(rt_ddp *d);

#ifdef __cplusplus
}
#endif
#endif
