/* The MPI implementation of rt_comm: each operation is the matching
 * non-blocking MPI-3 collective on a communicator of our own (a duplicate,
 * so rtrain's traffic never matches a user's), with MPI_ERRORS_RETURN so
 * that failures come back as codes with MPI's own text. An rt_comm_req
 * holds the MPI_Request.
 *
 * MPI counts are int. The generic layer (comm.c) cuts all-reduces and
 * broadcasts into pieces below 2^30 elements; an all-gather with larger
 * counts sends them in units of their greatest common divisor (one
 * contiguous MPI datatype), as a checkpoint's rows are. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "rtrain/comm_mpi.h"
#include "comm/comm_internal.h"

_Static_assert(sizeof(MPI_Request) <= sizeof(uintptr_t), "an MPI_Request fits an rt_comm_req");

enum { TAG_ALIVE = 7301 };

typedef struct mpi_impl {
    MPI_Comm comm;
    /* The all-gather's int counts, which MPI reads until it completes (one
     * all-gather at a time per communicator: they are blocking above). */
    int *counts, *displs;
} mpi_impl;

static MPI_Comm comm_of(const rt_comm *c) { return ((const mpi_impl *)c->impl)->comm; }

static rt_status mpi_fail(int rc, const char *what)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, text, &len);
    return RT_ERROR(RT_ERR_MPI, "%s failed: %s", what, text);
}

static MPI_Datatype mpi_type(rt_dtype t)
{
    switch (t) {
    case RT_DTYPE_FLOAT32: return MPI_FLOAT;
    case RT_DTYPE_FLOAT64: return MPI_DOUBLE;
    case RT_DTYPE_INT32: return MPI_INT32_T;
    case RT_DTYPE_INT64: return MPI_INT64_T;
    default: return MPI_BYTE;
    }
}

static MPI_Op mpi_op(rt_reduce_op op)
{
    return op == RT_REDUCE_MIN ? MPI_MIN : op == RT_REDUCE_MAX ? MPI_MAX : MPI_SUM;
}

static void put_req(rt_comm_req *r, MPI_Request m)
{
    r->handle = 0;
    memcpy(&r->handle, &m, sizeof m);
    r->active = 1;
}

static MPI_Request get_req(const rt_comm_req *r)
{
    MPI_Request m;
    memcpy(&m, &r->handle, sizeof m);
    return m;
}

static rt_status count_fits(size_t count, const char *what)
{
    if (count > INT_MAX)
        return RT_ERROR(RT_ERR_UNSUPPORTED, "%s of %zu elements (MPI counts are int)", what,
                        count);
    return RT_OK;
}

/* ---- operations ----------------------------------------------------------------- */

static rt_status mpi_iallreduce(rt_comm *c, void *buf, size_t count, rt_dtype t,
                                rt_reduce_op op, rt_comm_req *req)
{
    RT_CHECK(count_fits(count, "an all-reduce"));
    MPI_Request m;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, mpi_type(t), mpi_op(op), comm_of(c),
                            &m);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Iallreduce");
    put_req(req, m);
    return RT_OK;
}

static rt_status mpi_ibroadcast(rt_comm *c, void *buf, size_t count, rt_dtype t, int root,
                                rt_comm_req *req)
{
    RT_CHECK(count_fits(count, "a broadcast"));
    MPI_Request m;
    int rc = MPI_Ibcast(buf, (int)count, mpi_type(t), root, comm_of(c), &m);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Ibcast");
    put_req(req, m);
    return RT_OK;
}

static rt_status mpi_ireduce_scatter(rt_comm *c, const void *send, void *recv,
                                     size_t recv_count, rt_dtype t, rt_reduce_op op,
                                     rt_comm_req *req)
{
    RT_CHECK(count_fits(recv_count * (size_t)c->size, "a reduce-scatter"));
    MPI_Request m;
    int rc = MPI_Ireduce_scatter_block(send, recv, (int)recv_count, mpi_type(t), mpi_op(op),
                                       comm_of(c), &m);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Ireduce_scatter_block");
    put_req(req, m);
    return RT_OK;
}

static rt_status mpi_iallgather(rt_comm *c, const void *send, void *recv, size_t count,
                                rt_dtype t, rt_comm_req *req)
{
    RT_CHECK(count_fits(count * (size_t)c->size, "an all-gather"));
    MPI_Request m;
    int rc = MPI_Iallgather(send, (int)count, mpi_type(t), recv, (int)count, mpi_type(t),
                            comm_of(c), &m);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Iallgather");
    put_req(req, m);
    return RT_OK;
}

static size_t gcd(size_t a, size_t b)
{
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static rt_status mpi_iallgatherv(rt_comm *c, void *buf, const size_t *counts,
                                 const size_t *displs, rt_dtype t, rt_comm_req *req)
{
    mpi_impl *p = c->impl;
    size_t unit = 0;
    for (int r = 0; r < c->size; r++)
        unit = gcd(gcd(unit, counts[r]), displs[r]);
    if (unit == 0)
        return RT_OK;   /* nothing to gather */
    for (int r = 0; r < c->size; r++) {
        if (counts[r] / unit > INT_MAX || displs[r] / unit > INT_MAX || unit > INT_MAX)
            return RT_ERROR(RT_ERR_UNSUPPORTED, "an all-gather of %zu elements at offset %zu "
                            "(MPI counts are int)", counts[r], displs[r]);
        p->counts[r] = (int)(counts[r] / unit);
        p->displs[r] = (int)(displs[r] / unit);
    }
    MPI_Datatype piece;
    if (MPI_Type_contiguous((int)unit, mpi_type(t), &piece) != MPI_SUCCESS ||
        MPI_Type_commit(&piece) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "cannot create an MPI datatype of %zu elements", unit);
    MPI_Request m;
    int rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, piece, buf, p->counts, p->displs, piece,
                             comm_of(c), &m);
    MPI_Type_free(&piece);   /* freed when the operation no longer needs it */
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Iallgatherv");
    put_req(req, m);
    return RT_OK;
}

static rt_status mpi_test(rt_comm *c, rt_comm_req *reqs, int n, int *done)
{
    *done = 1;
    for (int i = 0; i < n; i++) {
        if (!reqs[i].active)
            continue;
        MPI_Request m = get_req(&reqs[i]);
        int flag = 0;
        int rc = MPI_Test(&m, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) {
            reqs[i].active = 0;
            return mpi_fail(rc, "MPI_Test");
        }
        if (flag)
            reqs[i].active = 0;
        else
            *done = 0;
    }
    return RT_OK;
}

static rt_status mpi_wait(rt_comm *c, rt_comm_req *reqs, int n)
{
    rt_status st = RT_OK;
    for (int i = 0; i < n; i++) {
        if (!reqs[i].active)
            continue;
        MPI_Request m = get_req(&reqs[i]);
        int rc = MPI_Wait(&m, MPI_STATUS_IGNORE);
        reqs[i].active = 0;
        if (rc != MPI_SUCCESS && st == RT_OK)
            st = mpi_fail(rc, "MPI_Wait");
    }
    return st;
}

static void mpi_liveness(rt_comm *c, double wait_s, int *alive)
{
    MPI_Comm comm = comm_of(c);
    if (c->rank != 0) {
        int one = 1;
        MPI_Request m;
        MPI_Isend(&one, 1, MPI_INT, 0, TAG_ALIVE, comm, &m);
        /* Keep the send progressing while rank 0 decides (it ends the job). */
        double deadline = rt_time_now() + 2 * wait_s;
        int flag = 0;
        while (rt_time_now() < deadline) {
            if (!flag)
                MPI_Test(&m, &flag, MPI_STATUS_IGNORE);
            usleep(1000);
        }
        return;
    }
    int world = c->size;
    MPI_Request reqs[256];
    int flags[256];
    alive[0] = 1;
    for (int r = 1; r < world; r++) {
        alive[r] = 0;
        if (r < 256)
            MPI_Irecv(&flags[r], 1, MPI_INT, r, TAG_ALIVE, comm, &reqs[r]);
    }
    double deadline = rt_time_now() + wait_s;
    while (rt_time_now() < deadline) {
        int pending = 0;
        for (int r = 1; r < world && r < 256; r++) {
            if (!alive[r])
                MPI_Test(&reqs[r], &alive[r], MPI_STATUS_IGNORE);
            pending += !alive[r];
        }
        if (!pending)
            break;
        usleep(1000);
    }
    /* Beyond 256 ranks nobody is asked: they count as alive, and a hang
     * there is reported as "every rank is alive". */
    for (int r = 256; r < world; r++)
        alive[r] = 1;
}

static void mpi_destroy(rt_comm *c)
{
    mpi_impl *p = c->impl;
    if (!p)
        return;
    if (p->comm != MPI_COMM_NULL)
        MPI_Comm_free(&p->comm);
    free(p->counts);
    free(p->displs);
    free(p);
    c->impl = NULL;
}

static rt_status wrap(MPI_Comm comm, rt_comm **out);

static rt_status mpi_split(rt_comm *c, int color, int key, rt_comm **out)
{
    MPI_Comm child;
    int rc = MPI_Comm_split(comm_of(c), color < 0 ? MPI_UNDEFINED : color, key, &child);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Comm_split");
    if (child == MPI_COMM_NULL)
        return RT_OK;
    return wrap(child, out);
}

static rt_status mpi_split_node(rt_comm *c, rt_comm **out)
{
    MPI_Comm child;
    int rc = MPI_Comm_split_type(comm_of(c), MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL,
                                 &child);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Comm_split_type");
    return wrap(child, out);
}

/* Node-shared memory: one window per allocation over the node-local ranks
 * of c; the node's rank 0 allocates all of it, the others 0 bytes and map
 * rank 0's part (MPI_Win_shared_query). A passive-target epoch is open for
 * the window's life, so a sync is MPI_Win_sync, a node barrier, and
 * MPI_Win_sync again (the MPI-3 shared-memory idiom). */
typedef struct mpi_shared {
    rt_comm_shared base;
    MPI_Comm node;
    MPI_Win win;
    int locked;
} mpi_shared;

static void mpi_shared_free(rt_comm_shared *s)
{
    mpi_shared *m = (mpi_shared *)s;
    if (m->locked)
        MPI_Win_unlock_all(m->win);
    if (m->win != MPI_WIN_NULL)
        MPI_Win_free(&m->win);
    if (m->node != MPI_COMM_NULL)
        MPI_Comm_free(&m->node);
    free(m);
}

static rt_status mpi_shared_sync(rt_comm_shared *s)
{
    mpi_shared *m = (mpi_shared *)s;
    int rc = MPI_Win_sync(m->win);
    if (rc == MPI_SUCCESS)
        rc = MPI_Barrier(m->node);
    if (rc == MPI_SUCCESS)
        rc = MPI_Win_sync(m->win);
    return rc == MPI_SUCCESS ? RT_OK : mpi_fail(rc, "synchronising node-shared memory");
}

static rt_status mpi_shared_fence(rt_comm_shared *s)
{
    int rc = MPI_Win_sync(((mpi_shared *)s)->win);
    return rc == MPI_SUCCESS ? RT_OK : mpi_fail(rc, "MPI_Win_sync on node-shared memory");
}

static const rt_comm_ops mpi_ops;

/* Open MPI backs a shared window with a file in its osc_sm_backing_directory
 * (/dev/shm unless OMPI_MCA_osc_sm_backing_directory names another), which
 * it extends without reserving blocks: a window larger than the free space
 * there ends in SIGBUS at the first touch of a page beyond it. So the node's
 * first rank checks the free space first: the bytes free there when `bytes`
 * do not fit, else -1 (also when it cannot be read). */
static double backing_shortfall(size_t bytes, const char **dir)
{
    const char *env = getenv("OMPI_MCA_osc_sm_backing_directory");
    *dir = env && *env ? env : "/dev/shm";
    struct statvfs vfs;
    if (statvfs(*dir, &vfs) != 0 || vfs.f_frsize == 0)
        return -1;
    double free_bytes = (double)vfs.f_bavail * (double)vfs.f_frsize;
    return (double)bytes > free_bytes ? free_bytes : -1;
}

static rt_status mpi_shared_alloc(rt_comm *c, size_t bytes, rt_comm_shared **out, void **ptr,
                                  int *writer)
{
    mpi_shared *m = calloc(1, sizeof *m);
    if (!m)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory for a node-shared window");
    m->base.ops = &mpi_ops;
    m->node = MPI_COMM_NULL;
    m->win = MPI_WIN_NULL;
    int node_rank = 0, disp = 1;
    MPI_Aint size = 0;
    void *base = NULL;
    int rc = MPI_Comm_split_type(comm_of(c), MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL,
                                 &m->node);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(m->node, &node_rank);
    const char *dir = "";
    double room = node_rank == 0 ? backing_shortfall(bytes, &dir) : -1;
    if (rc == MPI_SUCCESS)
        rc = MPI_Bcast(&room, 1, MPI_DOUBLE, 0, m->node);
    if (rc == MPI_SUCCESS && room >= 0) {
        mpi_shared_free(&m->base);
        return RT_ERROR(RT_ERR_NOMEM, "node-shared memory of %.0f MiB does not fit in %s "
                        "(%.0f MiB free on the node's first rank): enlarge it, or point "
                        "OMPI_MCA_osc_sm_backing_directory to a local file system with room",
                        (double)bytes / 1048576.0, node_rank == 0 ? dir : "the backing "
                        "directory", room / 1048576.0);
    }
    if (rc == MPI_SUCCESS)
        rc = MPI_Win_allocate_shared(node_rank == 0 ? (MPI_Aint)bytes : 0, 1, MPI_INFO_NULL,
                                     m->node, &base, &m->win);
    if (rc == MPI_SUCCESS)
        rc = MPI_Win_shared_query(m->win, 0, &size, &disp, &base);
    if (rc == MPI_SUCCESS)
        rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, m->win);
    m->locked = rc == MPI_SUCCESS;
    if (rc != MPI_SUCCESS) {
        rt_status st = mpi_fail(rc, "allocating node-shared memory (MPI_Win_allocate_shared)");
        mpi_shared_free(&m->base);
        return st;
    }
    *out = &m->base;
    *ptr = base;
    *writer = node_rank == 0;
    return RT_OK;
}

static const rt_comm_ops mpi_ops = {
    .kind = "mpi",
    .iallreduce = mpi_iallreduce,
    .ibroadcast = mpi_ibroadcast,
    .ireduce_scatter = mpi_ireduce_scatter,
    .iallgather = mpi_iallgather,
    .iallgatherv = mpi_iallgatherv,
    .test = mpi_test,
    .wait = mpi_wait,
    .split = mpi_split,
    .split_node = mpi_split_node,
    .shared_alloc = mpi_shared_alloc,
    .shared_sync = mpi_shared_sync,
    .shared_fence = mpi_shared_fence,
    .shared_free = mpi_shared_free,
    .liveness = mpi_liveness,
    .destroy = mpi_destroy,
};

/* ---- creation --------------------------------------------------------------------- */

/* Takes comm over (freed with the rt_comm, also on failure). Collective. */
static rt_status wrap(MPI_Comm comm, rt_comm **out)
{
    *out = NULL;
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    mpi_impl *p = calloc(1, sizeof *p);
    rt_status st = RT_OK;
    if (p) {
        p->comm = comm;
        p->counts = calloc((size_t)size, sizeof *p->counts);
        p->displs = calloc((size_t)size, sizeof *p->displs);
    }
    if (!p || !p->counts || !p->displs)
        st = RT_ERROR(RT_ERR_NOMEM, "out of memory creating a communicator of %d ranks", size);
    /* Agreed in MPI itself: rt_comm_agree needs the object being made. */
    int ok = st == RT_OK, all = 0;
    if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS || !all) {
        if (st == RT_OK)
            st = RT_ERROR(RT_ERR_NOMEM, "another rank ran out of memory creating a "
                          "communicator of %d ranks", size);
        if (p) {
            free(p->counts);
            free(p->displs);
            free(p);
        }
        MPI_Comm_free(&comm);
        return st;
    }
    return rt_comm_create(out, &mpi_ops, p, rank, size);
}

/* Ranks of comm on this node. Collective. */
static rt_status ranks_on_node(MPI_Comm comm, int *count)
{
    MPI_Comm local;
    int rc = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Comm_split_type");
    MPI_Comm_size(local, count);
    MPI_Comm_free(&local);
    return RT_OK;
}

rt_status rt_comm_from_mpi(MPI_Comm comm, rt_comm **out)
{
    *out = NULL;
    MPI_Comm dup;
    int rc = MPI_Comm_dup(comm, &dup);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Comm_dup");
    int local = 1;
    rt_status st = ranks_on_node(dup, &local);
    if (st != RT_OK) {
        MPI_Comm_free(&dup);
        return st;
    }
    RT_CHECK(wrap(dup, out));
    (*out)->job_ranks_on_node = local;
    return RT_OK;
}

static void abort_world(void *arg, int exit_code)
{
    (void)arg;
    MPI_Abort(MPI_COMM_WORLD, exit_code);
}

rt_status rt_comm_world(rt_comm **out)
{
    static int hook = -1;
    RT_CHECK(rt_comm_from_mpi(MPI_COMM_WORLD, out));
    if (hook < 0)
        hook = rt_abort_hook_add(abort_world, NULL);
    rt_comm *c = *out;
    rt_log_set_rank(c->size > 1 ? c->rank : -1, rt_comm_host(c, c->rank));
    return RT_OK;
}

MPI_Comm rt_comm_mpi(const rt_comm *c) { return comm_of(c); }

rt_comm_req rt_comm_mpi_request(MPI_Request r)
{
    rt_comm_req q;
    put_req(&q, r);
    return q;
}

rt_status rt_comm_mpi_init(int *argc, char ***argv, int *owned)
{
    *owned = 0;
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (initialised)
        return RT_OK;
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);   /* 1 = ring */
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "MPI_Init_thread failed: is this an MPI launch?");
    *owned = 1;
    return RT_OK;
}

void rt_comm_mpi_finalize(void)
{
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Finalize();
}
