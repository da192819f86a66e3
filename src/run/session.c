/* The worker session: MPI start-up, the rank context, agreement on errors
 * across ranks, exit codes and BLAS thread count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cblas.h>
#include "rtrain/run.h"

struct rt_session {
    MPI_Comm world;
    int owns_mpi;       /* 1: we called MPI_Init_thread, so we finalise */
    rt_context ctx;
};

/* Node rank: the lowest world rank of each node's shared-memory group
 * names the node; nodes are numbered in order of those leaders. */
static rt_status find_nodes(rt_session *s, MPI_Comm local)
{
    int leader = s->ctx.local_rank == 0;
    int node_index = 0, nodes = 0;
    if (MPI_Scan(&leader, &node_index, 1, MPI_INT, MPI_SUM, s->world) != MPI_SUCCESS ||
        MPI_Allreduce(&leader, &nodes, 1, MPI_INT, MPI_SUM, s->world) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "MPI_Scan/MPI_Allreduce failed while numbering nodes");
    /* Every rank of a node takes its leader's number. */
    int node = node_index - 1;
    if (MPI_Bcast(&node, 1, MPI_INT, 0, local) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "MPI_Bcast failed while numbering nodes");
    s->ctx.node_rank = node;
    s->ctx.num_nodes = nodes;
    return RT_OK;
}

static rt_status build_context(rt_session *s)
{
    MPI_Comm_rank(s->world, &s->ctx.world_rank);
    MPI_Comm_size(s->world, &s->ctx.world_size);
    MPI_Comm local;
    if (MPI_Comm_split_type(s->world, MPI_COMM_TYPE_SHARED, s->ctx.world_rank,
                            MPI_INFO_NULL, &local) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "MPI_Comm_split_type failed");
    MPI_Comm_rank(local, &s->ctx.local_rank);
    MPI_Comm_size(local, &s->ctx.local_size);
    rt_status st = find_nodes(s, local);
    MPI_Comm_free(&local);
    gethostname(s->ctx.host, sizeof s->ctx.host - 1);
    return st;
}

rt_status rt_session_init(rt_session **out, int *argc, char ***argv)
{
    *out = NULL;
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
        int provided;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return RT_ERROR(RT_ERR_MPI, "MPI_Init_thread failed: is this an MPI launch?");
    }
    rt_session *s = calloc(1, sizeof *s);
    if (!s)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory creating the session");
    s->owns_mpi = !initialised;
    s->world = MPI_COMM_WORLD;
    /* Errors come back as codes so that rtrain can report them. */
    MPI_Comm_set_errhandler(s->world, MPI_ERRORS_RETURN);
    rt_status st = build_context(s);
    rt_log_set_rank(s->ctx.world_size > 1 ? s->ctx.world_rank : -1, s->ctx.host);
    *out = s;
    return st;
}

void rt_session_finalize(rt_session *s)
{
    if (!s)
        return;
    int owns = s->owns_mpi;
    free(s);
    if (owns)
        MPI_Finalize();
}

const rt_context *rt_session_context(const rt_session *s) { return &s->ctx; }
MPI_Comm rt_session_comm(const rt_session *s) { return s->world; }

rt_status rt_session_agree(rt_session *s, rt_status local)
{
    const rt_context *c = &s->ctx;
    int mine = local != RT_OK ? c->world_rank : c->world_size;
    int first = c->world_size;
    if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, s->world) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "MPI_Allreduce failed while agreeing on a status");
    if (first == c->world_size)
        return RT_OK;
    /* The first failing rank's status and message become everyone's. */
    struct { int status; char message[1536]; } msg = {0};
    if (c->world_rank == first) {
        msg.status = (int)local;
        if (first == 0)
            snprintf(msg.message, sizeof msg.message, "%s", rt_error_message());
        else
            snprintf(msg.message, sizeof msg.message, "[rank %d %s] %s", first, c->host,
                     rt_error_message());
    }
    if (MPI_Bcast(&msg, (int)sizeof msg, MPI_BYTE, first, s->world) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "MPI_Bcast failed while agreeing on a status");
    rt_error_clear();
    return RT_ERROR((rt_status)msg.status, "%s", msg.message);
}

int rt_session_exit_code(const rt_session *s, rt_status st)
{
    if (st == RT_OK)
        return RT_EXIT_OK;
    if (!s || s->ctx.world_rank == 0) {
        fprintf(stderr, "rtrain: error: %s\n", rt_error_message());
        if (rt_log_get_level() >= RT_LOG_DEBUG)
            fprintf(stderr, "traceback:\n%s", rt_error_traceback());
        fflush(stderr);
    }
    return rt_status_exit_code(st);
}

int rt_session_set_threads(rt_session *s, int threads_per_worker)
{
    int threads = threads_per_worker;
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = (int)(cores / (s->ctx.local_size > 0 ? s->ctx.local_size : 1));
        if (threads < 1)
            threads = 1;
    }
    openblas_set_num_threads(threads);
    return threads;
}
