/* The worker session: MPI start-up, the rank context, agreement on errors
 * across ranks, exit codes and BLAS thread count. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cblas.h>
#include "rtrain/comm.h"
#include "rtrain/run.h"

typedef struct host_name { char name[64]; } host_name;

struct rt_session {
    MPI_Comm world;
    int owns_mpi;       /* 1: we called MPI_Init_thread, so we finalise */
    rt_context ctx;
    host_name *hosts;   /* [world_size]: to name ranks in messages */
    double step_timeout_s;
};

/* Set from the signal handler, read by the training loop. */
static volatile sig_atomic_t stop_signal = 0;

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
    if (st == RT_OK)
        st = rt_alloc(&s->hosts, (size_t)s->ctx.world_size, sizeof(host_name), "host table");
    if (st == RT_OK && MPI_Allgather(s->ctx.host, sizeof(host_name), MPI_CHAR, s->hosts,
                                     sizeof(host_name), MPI_CHAR, s->world) != MPI_SUCCESS)
        st = RT_ERROR(RT_ERR_MPI, "MPI_Allgather of host names failed");
    return st;
}

rt_status rt_session_init(rt_session **out, int *argc, char ***argv)
{
    *out = NULL;
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
        rt_comm_tune_before_init();
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
    rt_free(s->hosts);
    free(s);
    if (owns)
        MPI_Finalize();
}

const rt_context *rt_session_context(const rt_session *s) { return &s->ctx; }
MPI_Comm rt_session_comm(const rt_session *s) { return s->world; }

/* Waits for a collective under the step deadline; a rank that does not
 * arrive in time is named and the job aborted (see the watchdog below). */
static rt_status wait_or_abort(rt_session *s, MPI_Request *req, const char *what)
{
    rt_status st = rt_comm_wait_all(req, 1, s->step_timeout_s);
    if (st == RT_ERR_TIMEOUT)
        rt_session_abort_unresponsive(s, what, -1);
    return st;
}

rt_status rt_session_allreduce(rt_session *s, void *buf, int count, MPI_Datatype type,
                               MPI_Op op)
{
    MPI_Request req;
    if (MPI_Iallreduce(MPI_IN_PLACE, buf, count, type, op, s->world, &req) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "MPI_Iallreduce of %d values failed", count);
    return wait_or_abort(s, &req, "an all-reduce");
}

rt_status rt_session_agree(rt_session *s, rt_status local)
{
    const rt_context *c = &s->ctx;
    int first = local != RT_OK ? c->world_rank : c->world_size;
    RT_CHECK(rt_session_allreduce(s, &first, 1, MPI_INT, MPI_MIN));
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
    if (st == RT_STOPPED) {
        if (!s || s->ctx.world_rank == 0)
            fprintf(stderr, "rtrain: %s\n", rt_error_message());
        return RT_EXIT_PREEMPTED;
    }
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

/* ---- stop signals, per-step agreement, watchdog -------------------------- */

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_signal = 1;
}

void rt_session_catch_stop_signals(rt_session *s)
{
    (void)s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void rt_session_set_step_timeout(rt_session *s, double seconds) { s->step_timeout_s = seconds; }
double rt_session_step_timeout(const rt_session *s) { return s->step_timeout_s; }

/* One MIN all-reduce carries both questions: the lowest failing rank
 * (world_size if none) and "no stop signal" (0 if any rank caught one). */
rt_status rt_session_agree_step(rt_session *s, rt_status local, int *stop)
{
    const rt_context *c = &s->ctx;
    int all[2] = {local != RT_OK ? c->world_rank : c->world_size, stop_signal ? 0 : 1};
    RT_CHECK(rt_session_allreduce(s, all, 2, MPI_INT, MPI_MIN));
    *stop = all[1] == 0;
    if (all[0] == c->world_size)
        return RT_OK;
    /* Someone failed: share its message exactly as rt_session_agree does. */
    return rt_session_agree(s, local);
}

enum { TAG_ALIVE = 7301 };

/* Rank 0: collect "alive" messages for up to `wait_s`; name the missing. */
static void name_missing_ranks(rt_session *s, const char *what, long long step, double wait_s)
{
    int world = s->ctx.world_size;
    MPI_Request *reqs = calloc((size_t)world, sizeof *reqs);
    int *alive = calloc((size_t)world, sizeof *alive);
    int *flags = calloc((size_t)world, sizeof *flags);
    if (!reqs || !alive || !flags)
        MPI_Abort(s->world, RT_EXIT_FAILURE);
    reqs[0] = MPI_REQUEST_NULL;
    alive[0] = 1;
    for (int r = 1; r < world; r++)
        MPI_Irecv(&flags[r], 1, MPI_INT, r, TAG_ALIVE, s->world, &reqs[r]);
    double deadline = rt_time_now() + wait_s;
    while (rt_time_now() < deadline) {
        int pending = 0;
        for (int r = 1; r < world; r++) {
            if (!alive[r])
                MPI_Test(&reqs[r], &alive[r], MPI_STATUS_IGNORE);
            pending += !alive[r];
        }
        if (!pending)
            break;
        usleep(1000);
    }
    char list[1024] = "";
    size_t len = 0;
    int missing = 0;
    for (int r = 1; r < world && len < sizeof list - 80; r++)
        if (!alive[r]) {
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%d (%s)",
                                    missing ? ", " : "", r, s->hosts[r].name);
            missing++;
        }
    char where[64] = "";
    if (step >= 0)
        snprintf(where, sizeof where, " at step %lld", step);
    if (missing)
        fprintf(stderr, "rtrain: error: %s did not complete within %.0f s%s: no response "
                "from rank%s %s; aborting the job so that it can be retried\n", what,
                s->step_timeout_s, where, missing > 1 ? "s" : "", list);
    else
        fprintf(stderr, "rtrain: error: %s did not complete within %.0f s%s although every "
                "rank is alive (a stalled network?); aborting the job\n", what,
                s->step_timeout_s, where);
    fflush(stderr);
    MPI_Abort(s->world, RT_EXIT_FAILURE);
    abort();
}

void rt_session_abort_unresponsive(rt_session *s, const char *what, long long step)
{
    /* The liveness round gets the same time again: every rank that is
     * alive is stuck in the same place, so it reaches this point within
     * one timeout of the others. */
    double wait_s = s->step_timeout_s > 0 ? s->step_timeout_s : 30;
    if (s->ctx.world_rank == 0)
        name_missing_ranks(s, what, step, wait_s);
    int alive = 1;
    MPI_Request req;
    MPI_Isend(&alive, 1, MPI_INT, 0, TAG_ALIVE, s->world, &req);
    /* Rank 0 aborts the job after its round; if it never does, it is the
     * rank that hangs. */
    double deadline = rt_time_now() + 2 * wait_s;
    while (rt_time_now() < deadline) {
        int done;
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        usleep(1000);
    }
    fprintf(stderr, "rtrain: error: [rank %d %s] %s did not complete within %.0f s and rank 0 "
            "(%s) does not respond; aborting the job\n", s->ctx.world_rank, s->ctx.host, what,
            s->step_timeout_s, s->hosts[0].name);
    fflush(stderr);
    MPI_Abort(s->world, RT_EXIT_FAILURE);
    abort();
}

/* ---- warnings from many ranks --------------------------------------------- */

enum { WARN_MAX = 256 };

/* Appends "a-b" or "a" for the run of ranks [a, b] to list. */
static void append_range(char *list, size_t size, int a, int b)
{
    size_t len = strlen(list);
    if (len + 24 >= size)
        return;
    snprintf(list + len, size - len, a == b ? "%s%d" : "%s%d-%d", len ? "," : "", a, b);
}

static void print_grouped(const char *all, int world)
{
    char *done = calloc((size_t)world, 1);
    if (!done)
        return;
    for (int r = 0; r < world; r++) {
        const char *text = all + (size_t)r * WARN_MAX;
        if (done[r] || !text[0])
            continue;
        char ranks[512] = "";
        int count = 0, run_start = -1;
        for (int q = r; q <= world; q++) {
            int same = q < world && !done[q] && !strcmp(all + (size_t)q * WARN_MAX, text);
            if (same) {
                done[q] = 1;
                count++;
                if (run_start < 0)
                    run_start = q;
            } else if (run_start >= 0) {
                append_range(ranks, sizeof ranks, run_start, q - 1);
                run_start = -1;
            }
        }
        if (count == 1)
            rt_warn("%s (rank %s)", text, ranks);
        else
            rt_warn("%s (on %d of %d ranks: %s)", text, count, world, ranks);
    }
    free(done);
}

void rt_session_warn_all(rt_session *s, const char *warning)
{
    int world = s->ctx.world_size;
    char mine[WARN_MAX] = "";
    if (warning)
        snprintf(mine, sizeof mine, "%s", warning);
    char *all = s->ctx.world_rank == 0 ? calloc((size_t)world, WARN_MAX) : NULL;
    if (s->ctx.world_rank == 0 && !all)
        rt_warn("%s", mine);   /* no memory to group: say at least rank 0's */
    MPI_Gather(mine, WARN_MAX, MPI_CHAR, all, WARN_MAX, MPI_CHAR, 0, s->world);
    if (all)
        print_grouped(all, world);
    free(all);
}
