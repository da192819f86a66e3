/* The worker session: start-up (MPI, the job's communicator), the rank
 * context, agreement on errors across ranks, stop signals, exit codes and
 * the CPU thread count. Every collective goes through the session's
 * rt_comm; MPI itself is only started and ended here. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "rtrain/comm_mpi.h"
#include "rtrain/run.h"
#include "backend/cpu/parallel.h"
#include "core/fault.h"
#include "run/gpu_place.h"

struct rt_session {
    rt_comm *comm;
    rt_comm *tensor_comm; /* NCCL, when rt_session_open_gpu chose it */
    int gpu_open;         /* rt_session_open_gpu opened this process's GPU */
    int owns_mpi;       /* 1: rt_session_init initialised MPI, so we finalise */
    int stop_requested; /* rt_session_request_stop */
    rt_report_hook report_hook;   /* rt_session_set_report_hook, or NULL */
    void *report_hook_arg;
    rt_context ctx;
};

/* Set from the signal handler, read by every session's step agreement: a
 * stop signal is meant for the whole process. */
static volatile sig_atomic_t stop_signal = 0;

/* Node numbering: the ranks of each node elect their lowest rank as
 * leader; nodes are numbered in the order of their leaders. */
static rt_status number_nodes(rt_session *s, rt_comm *local)
{
    int32_t leader = s->ctx.world_rank;
    RT_CHECK(rt_comm_broadcast(local, &leader, 1, RT_DTYPE_INT32, 0));
    int32_t *leaders = NULL;
    rt_status st = rt_alloc(&leaders, (size_t)s->ctx.world_size, sizeof *leaders,
                            "node table");
    RT_CHECK(rt_comm_agree(s->comm, st));
    st = rt_comm_allgather(s->comm, &leader, leaders, 1, RT_DTYPE_INT32);
    int nodes = 0, mine = 0;
    for (int r = 0; st == RT_OK && r < s->ctx.world_size; r++)
        if (leaders[r] == r) {          /* rank r leads its node */
            mine += r < leader;
            nodes++;
        }
    rt_free(leaders);
    s->ctx.node_rank = mine;
    s->ctx.num_nodes = nodes;
    return st;
}

static rt_status build_context(rt_session *s)
{
    rt_context *c = &s->ctx;
    c->world_rank = rt_comm_rank(s->comm);
    c->world_size = rt_comm_size(s->comm);
    snprintf(c->host, sizeof c->host, "%s", rt_comm_host(s->comm, c->world_rank));
    rt_comm *local = NULL;
    RT_CHECK(rt_comm_split_node(s->comm, &local));
    c->local_rank = rt_comm_rank(local);
    c->local_size = rt_comm_size(local);
    rt_status st = number_nodes(s, local);
    rt_comm_free(local);
    return st;
}

rt_status rt_session_init_comm(rt_session **out, rt_comm *comm)
{
    *out = NULL;
    if (!comm)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_session_init_comm: no communicator");
    rt_session *s = calloc(1, sizeof *s);
    rt_status st = s ? RT_OK : RT_ERROR(RT_ERR_NOMEM, "out of memory creating the session");
    st = rt_comm_agree(comm, st);
    if (st != RT_OK) {
        free(s);
        rt_comm_free(comm);
        return st;
    }
    s->comm = comm;
    *out = s;
    rt_fault_notice(rt_comm_rank(comm));
    return build_context(s);
}

rt_status rt_session_init(rt_session **out, int *argc, char ***argv)
{
    *out = NULL;
    int owned = 0;
    RT_CHECK(rt_comm_mpi_init(argc, argv, &owned));
    rt_comm *world = NULL;
    rt_status st = rt_comm_world(&world);
    if (st == RT_OK)
        st = rt_session_init_comm(out, world);
    if (*out)
        (*out)->owns_mpi = owned;
    else if (owned)
        rt_comm_mpi_finalize();
    return st;
}

void rt_session_finalize(rt_session *s)
{
    if (!s)
        return;
    int owns = s->owns_mpi;
    rt_comm_free(s->tensor_comm);
    if (s->gpu_open)
        rt_gpu_close();
    rt_comm_free(s->comm);
    free(s);
    if (owns)
        rt_comm_mpi_finalize();
}

const rt_context *rt_session_context(const rt_session *s) { return &s->ctx; }
rt_comm *rt_session_comm(const rt_session *s) { return s->comm; }
rt_comm *rt_session_tensor_comm(const rt_session *s)
{
    return s->tensor_comm ? s->tensor_comm : s->comm;
}

/* ---- the GPU ---------------------------------------------------------------------------
 * Protocol (every rank, in order): look at the GPUs this rank sees (no
 * device opened yet) -> agree on local failures -> all-gather every rank's
 * view -> the same placement decision everywhere (gpu_place.c) -> open the
 * GPU, agreed -> the NCCL communicator (agreed inside rt_comm_nccl). */

static rt_status look_at_gpus(const rt_session *s, rt_gpu_view *mine, int *device)
{
    *mine = (rt_gpu_view){.count = rt_gpu_count(), .local_rank = s->ctx.local_rank,
                          .local_size = s->ctx.local_size};
    RT_CHECK(rt_gpu_available());   /* a build without CUDA, a library not found */
    *device = rt_gpu_pick_device(s->ctx.local_rank, s->ctx.local_size, mine->count);
    return *device >= 0 ? rt_gpu_uuid(*device, mine->uuid) : RT_OK;
}

static rt_status plan_gpus(rt_session *s, const rt_gpu_view *mine, const char *backend,
                           int *use_nccl, int *shared)
{
    int size = s->ctx.world_size;
    rt_gpu_view *views = NULL;
    char (*hosts)[64] = NULL;
    rt_status st = rt_alloc(&views, (size_t)size, sizeof *views, "GPU table");
    if (st == RT_OK)
        st = rt_alloc(&hosts, (size_t)size, sizeof *hosts, "host table");
    st = rt_comm_agree(s->comm, st);
    if (st == RT_OK)
        st = rt_comm_allgather(s->comm, mine, views, sizeof *mine, RT_DTYPE_BYTE);
    if (st == RT_OK) {
        for (int r = 0; r < size; r++)
            snprintf(hosts[r], sizeof hosts[r], "%s", rt_comm_host(s->comm, r));
        st = rt_comm_agree(s->comm, rt_gpu_plan(views, (const char (*)[64])hosts, size,
                                                backend, use_nccl, shared));
    }
    rt_free(views);
    rt_free(hosts);
    return st;
}

rt_status rt_session_open_gpu(rt_session *s, const rt_gpu_opts *opts, const char *comm_backend)
{
    rt_gpu_view mine;
    int device = -1, use_nccl = 0, shared = 0;
    const char *backend = comm_backend && comm_backend[0] ? comm_backend : "auto";
    RT_CHECK(rt_comm_agree(s->comm, look_at_gpus(s, &mine, &device)));
    RT_CHECK(plan_gpus(s, &mine, backend, &use_nccl, &shared));
    rt_status st = rt_gpu_open(device, opts);
    s->gpu_open = st == RT_OK;
    RT_CHECK(rt_comm_agree(s->comm, st));
    if (use_nccl)
        RT_CHECK(rt_comm_nccl(&s->tensor_comm, s->comm));
    char about[512];
    rt_gpu_describe(about, sizeof about);
    rt_info("rtrain: rank 0 on %s", about);
    if (shared && !strcmp(backend, "auto"))
        rt_warn("rtrain: ranks share a GPU, which NCCL refuses: the model's tensors are "
                "reduced through host memory over MPI (comm.backend = mpi)");
    else if (s->ctx.world_size > 1)
        rt_info("rtrain: model tensors reduced with %s", use_nccl ? "NCCL" : "MPI through "
                "host memory");
    return RT_OK;
}

rt_status rt_session_agree(rt_session *s, rt_status local)
{
    return rt_comm_agree(s->comm, local);
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
        int sharing = rt_comm_job_ranks_on_node(s->comm);
        if (sharing < 1)
            sharing = s->ctx.local_size > 0 ? s->ctx.local_size : 1;
        threads = (int)(cores / sharing);
        if (threads < 1)
            threads = 1;
    }
    rt_cpu_set_threads(threads);
    return threads;
}

/* ---- stop signals and per-step agreement --------------------------------------- */

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_signal = 1;
}

/* The handler runs on a stack of its own (SA_ONSTACK), never on the stack
 * of the computation it interrupts: oneDNN's JIT kernels keep data below
 * the stack pointer, beyond the 128 bytes the x86-64 ABI protects, and a
 * handler frame written there corrupted the heap (SIGUSR1 while the MLP
 * trained on dnnl_sgemm: 3 of 12 runs aborted in free). The kernels' pool
 * threads, and OpenMP's threads under the oneDNN convolutions, block them
 * altogether (backend/cpu/parallel.h). */
#define SIGNAL_STACK_BYTES (64 * 1024)
static _Thread_local void *signal_stack;   /* this thread's, kept for its lifetime */

static void use_signal_stack(void)
{
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
        return;   /* this thread has one */
    if (!signal_stack && !(signal_stack = malloc(SIGNAL_STACK_BYTES))) {
        rt_warn("no separate stack for the stop signals (out of memory)");
        return;
    }
    stack_t ss = {.ss_sp = signal_stack, .ss_size = SIGNAL_STACK_BYTES, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0)
        rt_warn("no separate stack for the stop signals (sigaltstack: %s)", strerror(errno));
}

void rt_session_catch_stop_signals(rt_session *s)
{
    (void)s;
    use_signal_stack();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void rt_session_request_stop(rt_session *s) { s->stop_requested = 1; }

int rt_session_stop_caught(void) { return stop_signal != 0; }

void rt_session_set_step_timeout(rt_session *s, double seconds)
{
    rt_comm_set_timeout(s->comm, seconds);
    if (s->tensor_comm)   /* NCCL: the same watchdog */
        rt_comm_set_timeout(s->tensor_comm, seconds);
}

double rt_session_step_timeout(const rt_session *s) { return rt_comm_timeout(s->comm); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double rt_session_step_timeout_auto(double *step_s, int n, double min_s)
{
    qsort(step_s, (size_t)n, sizeof *step_s, cmp_double);
    double median = n % 2 ? step_s[n / 2] : 0.5 * (step_s[n / 2 - 1] + step_s[n / 2]);
    double t = RT_STEP_TIMEOUT_AUTO_FACTOR * median;
    return t > min_s ? t : min_s;
}

rt_status rt_session_agree_step(rt_session *s, rt_status local, int *stop)
{
    return rt_comm_agree_flag(s->comm, local, stop_signal || s->stop_requested, stop);
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
    char *all = NULL;
    rt_status st = rt_alloc(&all, (size_t)world, WARN_MAX, "warning texts");
    st = rt_comm_agree(s->comm, st);
    if (st == RT_OK)
        st = rt_comm_allgather(s->comm, mine, all, WARN_MAX, RT_DTYPE_BYTE);
    if (st == RT_OK && s->ctx.world_rank == 0)
        print_grouped(all, world);
    else if (st != RT_OK) {
        rt_warn("%s", mine);   /* could not group: say at least this rank's */
        rt_error_clear();
    }
    rt_free(all);
}

void rt_session_set_report_hook(rt_session *s, rt_report_hook hook, void *arg)
{
    s->report_hook = hook;
    s->report_hook_arg = arg;
}

int rt_session_ask_report_hook(rt_session *s, const rt_metric *metrics, int count,
                               int iteration)
{
    return s->report_hook ? s->report_hook(s->report_hook_arg, metrics, count, iteration) != 0
                          : 0;
}
