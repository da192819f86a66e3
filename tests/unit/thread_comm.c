/* Threads standing in for ranks (see thread_comm.h). Every collective is:
 * publish this rank's buffer, barrier, compute the result from all
 * buffers into a private copy, barrier (everyone has read), write it back. */
#include <stdlib.h>
#include <string.h>
#include "thread_comm.h"
#include "comm/comm_internal.h"

typedef struct thread_rank { thread_group *g; } thread_rank;

static thread_group *group_of(rt_comm *c) { return ((thread_rank *)c->impl)->g; }

static void combine(void *acc, const void *x, size_t count, rt_dtype t, rt_reduce_op op)
{
    for (size_t i = 0; i < count; i++) {
        double a, b;
        switch (t) {
        case RT_DTYPE_FLOAT32: a = ((float *)acc)[i]; b = ((const float *)x)[i]; break;
        case RT_DTYPE_FLOAT64: a = ((double *)acc)[i]; b = ((const double *)x)[i]; break;
        default: a = ((int32_t *)acc)[i]; b = ((const int32_t *)x)[i]; break;
        }
        double r = op == RT_REDUCE_MIN ? (a < b ? a : b) : op == RT_REDUCE_MAX ? (a > b ? a : b)
                                                                               : a + b;
        switch (t) {
        case RT_DTYPE_FLOAT32: ((float *)acc)[i] = (float)r; break;
        case RT_DTYPE_FLOAT64: ((double *)acc)[i] = r; break;
        default: ((int32_t *)acc)[i] = (int32_t)r; break;
        }
    }
}

static rt_status t_iallreduce(rt_comm *c, void *buf, size_t count, rt_dtype t,
                              rt_reduce_op op, rt_comm_req *req)
{
    thread_group *g = group_of(c);
    size_t bytes = count * rt_dtype_size(t);
    void *acc = malloc(bytes ? bytes : 1);
    if (!acc)
        return RT_ERROR(RT_ERR_NOMEM, "thread comm: out of memory");
    g->slot[c->rank] = buf;
    pthread_barrier_wait(&g->barrier);
    memcpy(acc, g->slot[0], bytes);   /* rank order: the same sum on every rank */
    for (int r = 1; r < g->size; r++)
        combine(acc, g->slot[r], count, t, op);
    pthread_barrier_wait(&g->barrier);
    memcpy(buf, acc, bytes);
    free(acc);
    *req = RT_COMM_REQ_NULL;
    return RT_OK;
}

static rt_status t_ibroadcast(rt_comm *c, void *buf, size_t count, rt_dtype t, int root,
                              rt_comm_req *req)
{
    thread_group *g = group_of(c);
    g->slot[c->rank] = buf;
    pthread_barrier_wait(&g->barrier);
    if (c->rank != root)
        memcpy(buf, g->slot[root], count * rt_dtype_size(t));
    pthread_barrier_wait(&g->barrier);
    *req = RT_COMM_REQ_NULL;
    return RT_OK;
}

static rt_status t_iallgather(rt_comm *c, const void *send, void *recv, size_t count,
                              rt_dtype t, rt_comm_req *req)
{
    thread_group *g = group_of(c);
    size_t bytes = count * rt_dtype_size(t);
    g->slot[c->rank] = (void *)send;
    pthread_barrier_wait(&g->barrier);
    for (int r = 0; r < g->size; r++)
        memcpy((char *)recv + (size_t)r * bytes, g->slot[r], bytes);
    pthread_barrier_wait(&g->barrier);
    *req = RT_COMM_REQ_NULL;
    return RT_OK;
}

static rt_status t_unsupported(void)
{
    return RT_ERROR(RT_ERR_UNSUPPORTED, "not in the thread communicator of the tests");
}

static rt_status t_ireduce_scatter(rt_comm *c, const void *s, void *r, size_t n, rt_dtype t,
                                   rt_reduce_op op, rt_comm_req *req)
{
    return t_unsupported();
}

static rt_status t_iallgatherv(rt_comm *c, void *buf, const size_t *counts,
                               const size_t *displs, rt_dtype t, rt_comm_req *req)
{
    return t_unsupported();
}

static rt_status t_test(rt_comm *c, rt_comm_req *reqs, int n, int *done)
{
    *done = 1;
    return RT_OK;
}

static rt_status t_wait(rt_comm *c, rt_comm_req *reqs, int n) { return RT_OK; }

static rt_status t_split(rt_comm *c, int color, int key, rt_comm **out)
{
    return t_unsupported();
}

static rt_status t_split_node(rt_comm *c, rt_comm **out) { return t_unsupported(); }
static void t_liveness(rt_comm *c, double wait_s, int *alive) {}

static void t_destroy(rt_comm *c)
{
    free(c->impl);
    c->impl = NULL;
}

static const rt_comm_ops thread_ops = {
    .kind = "threads", .iallreduce = t_iallreduce, .ibroadcast = t_ibroadcast,
    .ireduce_scatter = t_ireduce_scatter, .iallgather = t_iallgather,
    .iallgatherv = t_iallgatherv, .test = t_test, .wait = t_wait, .split = t_split,
    .split_node = t_split_node, .liveness = t_liveness, .destroy = t_destroy,
};

void thread_group_init(thread_group *g, int size)
{
    memset(g, 0, sizeof *g);
    g->size = size;
    pthread_barrier_init(&g->barrier, NULL, (unsigned)size);
}

void thread_group_destroy(thread_group *g) { pthread_barrier_destroy(&g->barrier); }

rt_status thread_comm_create(thread_group *g, int rank, rt_comm **out)
{
    thread_rank *p = malloc(sizeof *p);
    if (!p)
        return RT_ERROR(RT_ERR_NOMEM, "thread comm: out of memory");
    p->g = g;
    return rt_comm_create(out, &thread_ops, p, rank, g->size);
}
