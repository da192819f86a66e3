/* The communicator object (see rtrain/comm.h): what every implementation
 * shares, built on its table of operations (comm_internal.h).
 *
 * Blocking collectives are a non-blocking start plus rt_comm_wait, so the
 * deadline applies to all of them in one place. The watchdog: a wait that
 * passes the deadline runs a liveness round (rank 0 collects "alive"
 * messages for half a deadline) and ends the job through rt_abort naming
 * the ranks that did not answer, with their hosts (grouped by host, so
 * that a host that is down or cut off reads as one); a rank other than 0
 * whose round is not ended by rank 0 within two deadlines names rank 0.
 * Every rank that is alive is stuck in the same collective, entered within
 * about a step of the others, so it reaches the round when rank 0 does. */
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "comm/comm_internal.h"

/* MPI counts are int: blocking all-reduces and broadcasts of more go in
 * pieces of this many elements. */
#define COLLECTIVE_PIECE ((size_t)1 << 30)

size_t rt_dtype_size(rt_dtype t)
{
    static const size_t sizes[RT_DTYPE_COUNT] = {
        [RT_DTYPE_FLOAT32] = 4, [RT_DTYPE_FLOAT64] = 8, [RT_DTYPE_INT32] = 4,
        [RT_DTYPE_INT64] = 8, [RT_DTYPE_BYTE] = 1,
    };
    return (unsigned)t < RT_DTYPE_COUNT ? sizes[t] : 0;
}

/* ---- the object ---------------------------------------------------------------- */

/* Fills c->hosts (allocated already) with every rank's host name. */
static rt_status gather_hosts(rt_comm *c)
{
    char mine[RT_COMM_HOST_MAX] = "";
    gethostname(mine, sizeof mine - 1);
    RT_CHECK(rt_comm_allgather(c, mine, c->hosts, RT_COMM_HOST_MAX, RT_DTYPE_BYTE));
    for (int r = 0; r < c->size; r++)
        c->hosts[r][RT_COMM_HOST_MAX - 1] = '\0';
    return RT_OK;
}

/* The object is assembled on the stack and agreed on through it before
 * anything is gathered: a rank that cannot allocate the object or its
 * host table must not leave the others in the all-gather. */
rt_status rt_comm_create(rt_comm **out, const rt_comm_ops *ops, void *impl, int rank,
                         int size)
{
    *out = NULL;
    rt_comm made = {.ops = ops, .impl = impl, .rank = rank, .size = size, .step = -1};
    rt_comm *c = NULL;
    rt_status st = rt_alloc(&c, 1, sizeof *c, "communicator");
    if (st == RT_OK)
        st = rt_alloc(&made.hosts, (size_t)size, sizeof *made.hosts, "host table");
    st = rt_comm_agree(&made, st);
    if (st == RT_OK)
        st = gather_hosts(&made);
    if (st != RT_OK) {
        ops->destroy(&made);
        rt_free(made.hosts);
        rt_free(c);
        return st;
    }
    *c = made;
    *out = c;
    return RT_OK;
}

rt_status rt_comm_create_beside(rt_comm **out, const rt_comm_ops *ops, void *impl,
                                const rt_comm *host)
{
    *out = NULL;
    rt_comm *c = NULL;
    rt_status st = rt_alloc(&c, 1, sizeof *c, "communicator");
    if (st == RT_OK) {
        *c = (rt_comm){.ops = ops, .impl = impl, .rank = host->rank, .size = host->size,
                       .job_ranks_on_node = host->job_ranks_on_node,
                       .timeout_s = host->timeout_s, .step = -1};
        st = rt_alloc(&c->hosts, (size_t)host->size, sizeof *c->hosts, "host table");
    }
    if (st != RT_OK) {
        rt_comm made = {.ops = ops, .impl = impl};
        ops->destroy(&made);
        if (c)
            rt_free(c);
        return st;
    }
    memcpy(c->hosts, host->hosts, (size_t)host->size * sizeof *c->hosts);
    *out = c;
    return RT_OK;
}

void rt_comm_free(rt_comm *c)
{
    if (!c)
        return;
    c->ops->destroy(c);
    rt_free(c->hosts);
    rt_free(c);
}

int rt_comm_rank(const rt_comm *c) { return c->rank; }
int rt_comm_size(const rt_comm *c) { return c->size; }
const char *rt_comm_kind(const rt_comm *c) { return c->ops->kind; }

const char *rt_comm_host(const rt_comm *c, int rank)
{
    return c->hosts && rank >= 0 && rank < c->size ? c->hosts[rank] : "?";
}

int rt_comm_job_ranks_on_node(const rt_comm *c) { return c->job_ranks_on_node; }
void rt_comm_set_timeout(rt_comm *c, double seconds) { c->timeout_s = seconds > 0 ? seconds : 0; }
double rt_comm_timeout(const rt_comm *c) { return c->timeout_s; }
void rt_comm_set_step(rt_comm *c, long long step) { c->step = step; }

rt_status rt_comm_split(rt_comm *parent, int color, int key, rt_comm **out)
{
    *out = NULL;
    RT_CHECK(parent->ops->split(parent, color, key, out));
    if (*out) {
        (*out)->timeout_s = parent->timeout_s;
        (*out)->job_ranks_on_node = parent->job_ranks_on_node;
    }
    return RT_OK;
}

rt_status rt_comm_split_node(rt_comm *c, rt_comm **out)
{
    *out = NULL;
    RT_CHECK(c->ops->split_node(c, out));
    (*out)->timeout_s = c->timeout_s;
    (*out)->job_ranks_on_node = c->job_ranks_on_node;
    return RT_OK;
}

/* ---- node-shared memory ------------------------------------------------------------- */

rt_status rt_comm_shared_alloc(rt_comm *c, rt_status local, size_t bytes,
                               rt_comm_shared **out, void **ptr, int *writer)
{
    *out = NULL;
    *ptr = NULL;
    *writer = 0;
    RT_CHECK(rt_comm_agree(c, local));
    if (!c->ops->shared_alloc)   /* the same answer on every rank: no collective */
        return RT_ERROR(RT_ERR_UNSUPPORTED, "a %s communicator has no node-shared memory: "
                        "use data.cache = \"rank\"", c->ops->kind);
    return rt_comm_agree(c, c->ops->shared_alloc(c, bytes, out, ptr, writer));
}

rt_status rt_comm_shared_ready(rt_comm *c, rt_comm_shared *s, rt_status local)
{
    RT_CHECK(rt_comm_agree(c, local));
    return rt_comm_agree(c, s->ops->shared_sync(s));
}

rt_status rt_comm_shared_agree(rt_comm *c, rt_comm_shared *s, rt_status local)
{
    /* MPI-3's idiom for shared memory: a window sync, a synchronisation of
     * the processes (here the agreement's all-reduce), a window sync. */
    rt_status fence = s->ops->shared_fence(s);
    RT_CHECK(rt_comm_agree(c, local != RT_OK ? local : fence));
    /* The closing fence's failure (a broken window) cannot be returned: the
     * other ranks have agreed on success and go on to the next collective. */
    if (s->ops->shared_fence(s) != RT_OK)
        rt_comm_abort(c, "rank %d: after an agreement on node-shared memory: %s", c->rank,
                      rt_error_message());
    return RT_OK;
}

void rt_comm_shared_free(rt_comm_shared *s)
{
    if (s)
        s->ops->shared_free(s);
}

/* rt_node_memory's functions (rtrain/data.h), arg = the communicator. */
static rt_status node_alloc(void *arg, rt_status local, size_t bytes, void **ptr, int *writer,
                            void **handle)
{
    rt_comm_shared *s = NULL;
    rt_status st = rt_comm_shared_alloc(arg, local, bytes, &s, ptr, writer);
    *handle = s;
    return st;
}

static rt_status node_ready(void *arg, void *handle, rt_status local)
{
    return rt_comm_shared_ready(arg, handle, local);
}

static void node_release(void *arg, void *handle) { rt_comm_shared_free(handle); }

rt_node_memory rt_comm_node_memory(rt_comm *c)
{
    return (rt_node_memory){node_alloc, node_ready, node_release, c};
}

/* ---- waiting, and the watchdog ------------------------------------------------------ */

/* The ranks not alive, grouped by host: "rank 1 (node07)", or "ranks 2, 3
 * (node08, all of its ranks: the host is down or cut off?)" when no rank
 * of that host answered: a lost host reads as one. */
static int list_missing(const rt_comm *c, const int *alive, char *list, size_t size)
{
    size_t len = 0;
    int missing = 0;
    list[0] = '\0';
    for (int r = 1; r < c->size && len < size - 160; r++) {
        if (alive[r])
            continue;
        const char *host = rt_comm_host(c, r);
        int listed = 0;   /* an earlier missing rank of this host listed it already */
        for (int q = 1; q < r && !listed; q++)
            listed = !alive[q] && !strcmp(rt_comm_host(c, q), host);
        if (listed)
            continue;
        int here = 0, gone = 0;
        for (int q = 0; q < c->size; q++)
            if (!strcmp(rt_comm_host(c, q), host)) {
                here++;
                gone += !alive[q];
            }
        len += (size_t)snprintf(list + len, size - len, "%srank%s ", missing ? ", " : "",
                                gone > 1 ? "s" : "");
        for (int q = r, k = 0; q < c->size && len < size - 80; q++)
            if (!alive[q] && !strcmp(rt_comm_host(c, q), host))
                len += (size_t)snprintf(list + len, size - len, "%s%d", k++ ? ", " : "", q);
        len += (size_t)snprintf(list + len, size - len, " (%s%s)", host,
                                gone == here && here > 1 ? ", all of its ranks: the host is "
                                "down or cut off?" : "");
        missing += gone;
    }
    return missing;
}

/* Called by every rank that passed the deadline in `what`; never returns. */
void rt_comm_abort_unresponsive(rt_comm *c, const char *what)
{
    char where[64] = "";
    if (c->step >= 0)
        snprintf(where, sizeof where, " at step %lld", c->step);
    double wait_s = c->timeout_s > 0 ? c->timeout_s : 30;
    if (c->rank == 0) {
        int alive_stack[256], *alive = alive_stack;
        if (c->size > 256 && rt_alloc(&alive, (size_t)c->size, sizeof *alive,
                                      "liveness table") != RT_OK)
            rt_comm_abort(c, "%s did not complete within %.0f s%s; aborting the job", what,
                          c->timeout_s, where);
        /* Half a deadline: the ranks that are alive are stuck in the same
         * collective, entered within a step of rank 0, so they reach their
         * own deadline and the round about when rank 0 does; the job ends
         * within 1.5 deadlines of the hang, the missing ranks named. */
        c->ops->liveness(c, wait_s / 2, alive);
        char list[1024];
        int missing = list_missing(c, alive, list, sizeof list);
        if (missing)
            rt_comm_abort(c, "%s did not complete within %.0f s%s: no response from %s; "
                          "aborting the job so that it can be retried", what, c->timeout_s,
                          where, list);
        rt_comm_abort(c, "%s did not complete within %.0f s%s although every rank is alive (a "
                      "stalled network?); aborting the job", what, c->timeout_s, where);
    }
    /* Tells rank 0 this rank is alive and gives it two deadlines to end
     * the job; if it never does, it is the rank that hangs. */
    c->ops->liveness(c, wait_s, NULL);
    rt_comm_abort(c, "%s did not complete within %.0f s%s and rank 0 (%s) does not respond; "
                  "aborting the job", what, c->timeout_s, where, rt_comm_host(c, 0));
}

rt_status rt_comm_wait(rt_comm *c, rt_comm_req *reqs, int n, const char *what)
{
    if (c->timeout_s <= 0)
        return c->ops->wait(c, reqs, n);
    /* Polling keeps the deadline; testing also drives progress. */
    double deadline = rt_time_now() + c->timeout_s;
    for (;;) {
        int done = 0;
        RT_CHECK(c->ops->test(c, reqs, n, &done));
        if (done)
            return RT_OK;
        if (rt_time_now() > deadline)
            rt_comm_abort_unresponsive(c, what);
        sched_yield();
    }
}

void rt_comm_progress(rt_comm *c, rt_comm_req *reqs, int n)
{
    int done;
    if (c->ops->test(c, reqs, n, &done) != RT_OK)
        rt_error_clear();   /* the error comes back from the wait */
}

void rt_comm_abort(rt_comm *c, const char *fmt, ...)
{
    (void)c;   /* the communicators' abort hooks are registered with rt_abort */
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rt_abort("%s", msg);
}

/* ---- blocking collectives ------------------------------------------------------------ */

static rt_status check_op(const rt_comm *c, rt_dtype t, rt_reduce_op op, int blocking)
{
    if (op == RT_REDUCE_MEAN && !strcmp(c->ops->kind, "nccl"))   /* divided on the host */
        return RT_ERROR(RT_ERR_INVALID_ARG, "RT_REDUCE_MEAN is not available on the NCCL "
                        "communicator (GPU memory): sum, then scale");
    if ((unsigned)t >= RT_DTYPE_COUNT || t == RT_DTYPE_BYTE || (unsigned)op > RT_REDUCE_MAX)
        return RT_ERROR(RT_ERR_INVALID_ARG, "reduction of type %d with operation %d", (int)t,
                        (int)op);
    if (op == RT_REDUCE_MEAN && (!blocking || (t != RT_DTYPE_FLOAT32 && t != RT_DTYPE_FLOAT64)))
        return RT_ERROR(RT_ERR_INVALID_ARG, "RT_REDUCE_MEAN needs a blocking all-reduce of "
                        "floating-point values");
    return RT_OK;
}

static void divide(void *buf, size_t count, rt_dtype t, int by)
{
    if (t == RT_DTYPE_FLOAT32)
        for (size_t i = 0; i < count; i++)
            ((float *)buf)[i] /= (float)by;
    else
        for (size_t i = 0; i < count; i++)
            ((double *)buf)[i] /= by;
}

rt_status rt_comm_iallreduce(rt_comm *c, void *buf, size_t count, rt_dtype t,
                             rt_reduce_op op, rt_comm_req *req)
{
    *req = RT_COMM_REQ_NULL;
    RT_CHECK(check_op(c, t, op, 0));
    if (count > COLLECTIVE_PIECE)
        return RT_ERROR(RT_ERR_UNSUPPORTED, "a non-blocking all-reduce of %zu values (at most "
                        "2^30 in one)", count);
    return c->ops->iallreduce(c, buf, count, t, op, req);
}

rt_status rt_comm_allreduce(rt_comm *c, void *buf, size_t count, rt_dtype t, rt_reduce_op op)
{
    RT_CHECK(check_op(c, t, op, 1));
    size_t elem = rt_dtype_size(t);
    rt_reduce_op wire = op == RT_REDUCE_MEAN ? RT_REDUCE_SUM : op;
    for (size_t done = 0; done < count; done += COLLECTIVE_PIECE) {
        size_t n = count - done < COLLECTIVE_PIECE ? count - done : COLLECTIVE_PIECE;
        rt_comm_req req = RT_COMM_REQ_NULL;
        RT_CHECK(c->ops->iallreduce(c, (char *)buf + done * elem, n, t, wire, &req));
        RT_CHECK(rt_comm_wait(c, &req, 1, "an all-reduce"));
    }
    if (op == RT_REDUCE_MEAN)
        divide(buf, count, t, c->size);
    return RT_OK;
}

rt_status rt_comm_broadcast(rt_comm *c, void *buf, size_t count, rt_dtype t, int root)
{
    if ((unsigned)t >= RT_DTYPE_COUNT || root < 0 || root >= c->size)
        return RT_ERROR(RT_ERR_INVALID_ARG, "broadcast of type %d from rank %d", (int)t, root);
    size_t elem = rt_dtype_size(t);
    for (size_t done = 0; done < count; done += COLLECTIVE_PIECE) {
        size_t n = count - done < COLLECTIVE_PIECE ? count - done : COLLECTIVE_PIECE;
        rt_comm_req req = RT_COMM_REQ_NULL;
        RT_CHECK(c->ops->ibroadcast(c, (char *)buf + done * elem, n, t, root, &req));
        RT_CHECK(rt_comm_wait(c, &req, 1, "a broadcast"));
    }
    return RT_OK;
}

rt_status rt_comm_reduce_scatter(rt_comm *c, const void *send, void *recv, size_t recv_count,
                                 rt_dtype t, rt_reduce_op op)
{
    RT_CHECK(check_op(c, t, op, 0));
    rt_comm_req req = RT_COMM_REQ_NULL;
    RT_CHECK(c->ops->ireduce_scatter(c, send, recv, recv_count, t, op, &req));
    return rt_comm_wait(c, &req, 1, "a reduce-scatter");
}

rt_status rt_comm_allgather(rt_comm *c, const void *send, void *recv, size_t count,
                            rt_dtype t)
{
    if ((unsigned)t >= RT_DTYPE_COUNT)
        return RT_ERROR(RT_ERR_INVALID_ARG, "all-gather of type %d", (int)t);
    rt_comm_req req = RT_COMM_REQ_NULL;
    RT_CHECK(c->ops->iallgather(c, send, recv, count, t, &req));
    return rt_comm_wait(c, &req, 1, "an all-gather");
}

rt_status rt_comm_allgatherv(rt_comm *c, void *buf, const size_t *counts, const size_t *displs,
                             rt_dtype t)
{
    if ((unsigned)t >= RT_DTYPE_COUNT)
        return RT_ERROR(RT_ERR_INVALID_ARG, "all-gather of type %d", (int)t);
    rt_comm_req req = RT_COMM_REQ_NULL;
    RT_CHECK(c->ops->iallgatherv(c, buf, counts, displs, t, &req));
    return rt_comm_wait(c, &req, 1, "an all-gather");
}

/* ---- agreement -------------------------------------------------------------------------- */

enum { AGREE_MSG_MAX = 1536 };

/* The first failing rank's status and message, given to every rank. */
static rt_status share_failure(rt_comm *c, int first, rt_status local)
{
    struct { int32_t status; char message[AGREE_MSG_MAX]; } msg;
    memset(&msg, 0, sizeof msg);
    if (c->rank == first) {
        msg.status = (int32_t)local;
        if (first == 0)
            snprintf(msg.message, sizeof msg.message, "%s", rt_error_message());
        else
            snprintf(msg.message, sizeof msg.message, "[rank %d %s] %s", first,
                     rt_comm_host(c, first), rt_error_message());
    }
    RT_CHECK(rt_comm_broadcast(c, &msg, sizeof msg, RT_DTYPE_BYTE, first));
    msg.message[AGREE_MSG_MAX - 1] = '\0';
    rt_error_clear();
    return RT_ERROR((rt_status)msg.status, "%s", msg.message);
}

rt_status rt_comm_agree_flag(rt_comm *c, rt_status local, int flag, int *any)
{
    /* One MIN all-reduce carries both questions: the lowest failing rank
     * (size if none) and "no flag" (0 if any rank raised it). */
    int32_t both[2] = {local != RT_OK ? c->rank : c->size, flag ? 0 : 1};
    rt_status st = rt_comm_allreduce(c, both, 2, RT_DTYPE_INT32, RT_REDUCE_MIN);
    if (st != RT_OK)
        return st;
    if (any)
        *any = both[1] == 0;
    if (both[0] == c->size)
        return RT_OK;
    return share_failure(c, both[0], local);
}

rt_status rt_comm_agree(rt_comm *c, rt_status local)
{
    return rt_comm_agree_flag(c, local, 0, NULL);
}

/* ---- the model ------------------------------------------------------------------------- */

/* The model's tensors live in device memory that this communicator cannot
 * read (an MPI communicator and a GPU backend): collectives on them go
 * through host memory. */
static int staged(const rt_comm *c, const rt_backend *be)
{
    return !(be->flags & RT_BACKEND_HOST_MEMORY) && strcmp(c->ops->kind, "nccl") != 0;
}

rt_status rt_comm_check_model_memory(const rt_comm *c, const rt_model *m)
{
    const rt_backend *be = rt_model_backend(m);
    if ((be->flags & RT_BACKEND_HOST_MEMORY) && !strcmp(c->ops->kind, "nccl"))
        return RT_ERROR(RT_ERR_UNSUPPORTED, "the NCCL communicator reads GPU memory and backend "
                        "'%s' keeps the model's tensors in host memory: set comm.backend = mpi "
                        "or train on the GPU", be->name);
    return RT_OK;
}

int rt_comm_stages_tensors(const rt_comm *c, const rt_backend *be) { return staged(c, be); }

/* Staged collectives: a rank whose copy to or from the device fails still
 * takes part (with zeros), so the others are not left waiting; its failure
 * is returned for the caller's agreement. A rank without host memory for
 * the copy cannot take part and ends the job. */
static float *stage_buffer(rt_comm *c, size_t count)
{
    float *host = NULL;
    if (rt_alloc(&host, count ? count : 1, sizeof *host, "host copy of a device tensor") != RT_OK)
        rt_comm_abort(c, "%s", rt_error_message());
    return host;
}

rt_status rt_comm_allreduce_tensor(rt_comm *c, const rt_backend *be, float *buf, size_t count)
{
    if (!staged(c, be))
        return rt_comm_allreduce(c, buf, count, RT_DTYPE_FLOAT32, RT_REDUCE_SUM);
    float *host = stage_buffer(c, count);
    rt_status local = be->download(host, buf, count * sizeof *host);
    rt_status st = rt_comm_allreduce(c, host, count, RT_DTYPE_FLOAT32, RT_REDUCE_SUM);
    if (st == RT_OK && local == RT_OK)
        local = be->upload(buf, host, count * sizeof *host);
    rt_free(host);
    return st != RT_OK ? st : local;
}

rt_status rt_comm_broadcast_tensor(rt_comm *c, const rt_backend *be, float *buf, size_t count,
                                   int root)
{
    if (!staged(c, be))
        return rt_comm_broadcast(c, buf, count, RT_DTYPE_FLOAT32, root);
    float *host = stage_buffer(c, count);
    rt_status local = c->rank == root ? be->download(host, buf, count * sizeof *host) : RT_OK;
    rt_status st = rt_comm_broadcast(c, host, count, RT_DTYPE_FLOAT32, root);
    if (st == RT_OK && local == RT_OK)
        local = be->upload(buf, host, count * sizeof *host);
    rt_free(host);
    return st != RT_OK ? st : local;
}

rt_status rt_comm_broadcast_model(rt_comm *c, rt_model *m)
{
    RT_CHECK(rt_comm_check_model_memory(c, m));
    const rt_backend *be = rt_model_backend(m);
    RT_CHECK(rt_comm_broadcast_tensor(c, be, rt_model_params(m), rt_model_num_params(m), 0));
    RT_CHECK(rt_comm_broadcast_tensor(c, be, rt_model_buffers(m), rt_model_num_buffers(m), 0));
    return RT_OK;
}

