/* The NCCL communicator: rt_comm's table over an NCCL communicator on the
 * GPU of each rank, for the model's tensors in device memory (gradient
 * buckets, the start-up broadcast, synchronised BatchNorm).
 *
 * Bootstrap (collective over the host communicator, the llm.c way): rank 0
 * makes the NCCL id, the host communicator broadcasts its bytes, every
 * rank creates its NCCL rank, and the host communicator agrees on the
 * outcome. The NCCL communicator has the host communicator's ranks and
 * host names and answers the watchdog's liveness round through it (NCCL
 * carries device buffers only), and an abort hook calls ncclCommAbort so
 * that the one fatal path also ends NCCL operations in flight. Only
 * all-reduce and broadcast exist: what the model's tensors need. NCCL is
 * reached through the CUDA library's table (backend/cuda/library.h),
 * loaded with the GPU; without it rt_comm_nccl says why, on every rank. */
#include <sched.h>
#include <stdlib.h>
#include "backend/cuda/library.h"
#include "comm/comm_internal.h"

typedef struct nccl_impl {
    const rt_cuda_library *lib;
    rt_nccl *nccl;
    rt_comm *host;      /* the communicator it was made over (not owned) */
    int abort_hook;
} nccl_impl;

/* The NCCL library of c, told c's current deadline (rt_comm_set_timeout
 * may have changed it since the last call). */
static nccl_impl *impl_of(rt_comm *c)
{
    nccl_impl *n = c->impl;
    if (n->nccl)
        n->lib->nccl_set_timeout(n->nccl, c->timeout_s);
    return n;
}

static rt_status dtype_ok(rt_dtype t)
{
    if ((unsigned)t >= RT_DTYPE_COUNT)
        return RT_ERROR(RT_ERR_INVALID_ARG, "NCCL collective of unknown type %d", (int)t);
    return RT_OK;
}

static rt_status nccl_iallreduce(rt_comm *c, void *buf, size_t count, rt_dtype t,
                                 rt_reduce_op op, rt_comm_req *req)
{
    RT_CHECK(dtype_ok(t));
    nccl_impl *n = impl_of(c);
    RT_CHECK(n->lib->nccl_allreduce(n->nccl, buf, count, (int)t, (int)op, &req->handle));
    req->active = 1;
    return RT_OK;
}

static rt_status nccl_ibroadcast(rt_comm *c, void *buf, size_t count, rt_dtype t, int root,
                                 rt_comm_req *req)
{
    RT_CHECK(dtype_ok(t));
    nccl_impl *n = impl_of(c);
    RT_CHECK(n->lib->nccl_broadcast(n->nccl, buf, count, (int)t, root, &req->handle));
    req->active = 1;
    return RT_OK;
}

static rt_status not_on_nccl(const char *what)
{
    return RT_ERROR(RT_ERR_UNSUPPORTED, "%s is not available on the NCCL communicator (it "
                    "carries the model's device tensors only)", what);
}

static rt_status nccl_ireduce_scatter(rt_comm *c, const void *send, void *recv,
                                      size_t recv_count, rt_dtype t, rt_reduce_op op,
                                      rt_comm_req *req)
{
    return not_on_nccl("reduce-scatter");
}

static rt_status nccl_iallgather(rt_comm *c, const void *send, void *recv, size_t count,
                                 rt_dtype t, rt_comm_req *req)
{
    return not_on_nccl("all-gather");
}

static rt_status nccl_iallgatherv(rt_comm *c, void *buf, const size_t *counts,
                                  const size_t *displs, rt_dtype t, rt_comm_req *req)
{
    return not_on_nccl("all-gather");
}

static rt_status nccl_test(rt_comm *c, rt_comm_req *reqs, int n, int *done)
{
    int all = 1;
    for (int i = 0; i < n; i++) {
        if (!reqs[i].active)
            continue;
        int finished = 0;
        nccl_impl *n = impl_of(c);
        RT_CHECK(n->lib->nccl_test(n->nccl, reqs[i].handle, &finished));
        if (finished)
            reqs[i] = RT_COMM_REQ_NULL;
        else
            all = 0;
    }
    *done = all;
    return RT_OK;
}

static rt_status nccl_wait(rt_comm *c, rt_comm_req *reqs, int n)
{
    for (;;) {
        int done = 0;
        RT_CHECK(nccl_test(c, reqs, n, &done));
        if (done)
            return RT_OK;
        sched_yield();
    }
}

static rt_status nccl_split(rt_comm *c, int color, int key, rt_comm **out)
{
    return not_on_nccl("splitting");
}

static rt_status nccl_split_node(rt_comm *c, rt_comm **out)
{
    return not_on_nccl("splitting");
}

static void nccl_liveness(rt_comm *c, double wait_s, int *alive)
{
    rt_comm *host = ((nccl_impl *)c->impl)->host;
    host->ops->liveness(host, wait_s, alive);
}

static void abort_nccl(void *arg, int exit_code)
{
    (void)exit_code;
    nccl_impl *n = arg;
    n->lib->nccl_abort(n->nccl);   /* returns: MPI_Abort's hook ends the job */
}

static void nccl_destroy(rt_comm *c)
{
    nccl_impl *n = c->impl;
    if (!n)
        return;
    if (n->abort_hook >= 0)
        rt_abort_hook_remove(n->abort_hook);
    if (n->nccl)
        n->lib->nccl_free(n->nccl);
    free(n);
    c->impl = NULL;
}

static const rt_comm_ops nccl_ops = {
    .kind = "nccl",
    .iallreduce = nccl_iallreduce,
    .ibroadcast = nccl_ibroadcast,
    .ireduce_scatter = nccl_ireduce_scatter,
    .iallgather = nccl_iallgather,
    .iallgatherv = nccl_iallgatherv,
    .test = nccl_test,
    .wait = nccl_wait,
    .split = nccl_split,
    .split_node = nccl_split_node,
    .liveness = nccl_liveness,
    .destroy = nccl_destroy,
};

/* Rank 0's id to every rank; a rank 0 that cannot make one sends zeros
 * and its failure is agreed on before anyone uses them. */
static rt_status share_id(rt_comm *host, const rt_cuda_library *lib,
                          unsigned char id[RT_NCCL_ID_BYTES])
{
    rt_status st = rt_comm_rank(host) == 0 ? lib->nccl_unique_id(id) : RT_OK;
    RT_CHECK(rt_comm_agree(host, st));
    return rt_comm_broadcast(host, id, RT_NCCL_ID_BYTES, RT_DTYPE_BYTE, 0);
}

rt_status rt_comm_nccl(rt_comm **out, rt_comm *host)
{
    *out = NULL;
    unsigned char id[RT_NCCL_ID_BYTES] = {0};
    const rt_cuda_library *lib = NULL;
    RT_CHECK(rt_comm_agree(host, rt_cuda_load(&lib)));
    RT_CHECK(share_id(host, lib, id));
    nccl_impl *n = calloc(1, sizeof *n);
    rt_status st = n ? RT_OK : RT_ERROR(RT_ERR_NOMEM, "out of memory for the NCCL "
                                        "communicator");
    if (st == RT_OK) {
        n->lib = lib;
        n->host = host;
        n->abort_hook = -1;
        st = lib->nccl_create(&n->nccl, id, rt_comm_rank(host), rt_comm_size(host),
                            rt_comm_timeout(host));
    }
    if (st == RT_OK && (n->abort_hook = rt_abort_hook_add(abort_nccl, n)) < 0)
        st = RT_ERROR(RT_ERR_INTERNAL, "no room for the NCCL abort hook");
    if (st == RT_OK) {
        st = rt_comm_create_beside(out, &nccl_ops, n, host);   /* frees n on failure */
    } else if (n) {
        rt_comm tmp = {.impl = n};
        nccl_destroy(&tmp);
    }
    st = rt_comm_agree(host, st);
    if (st != RT_OK) {
        rt_comm_free(*out);
        *out = NULL;
    }
    return st;
}
