/* The CPU kernels' thread pool (see parallel.h for why the kernels, not
 * OpenBLAS or OpenMP, own their threads).
 *
 * One job at a time: the caller publishes (fn, arg, n, parts) under a new
 * generation number, packed with the index of the next unclaimed piece in
 * one 64-bit word. Threads claim pieces by compare-and-swap on that word,
 * so a claim succeeds only while its generation is current, and the job's
 * fields, which are rewritten only after every piece of the job is done,
 * are the ones the claimer read. The caller runs the first piece, works on
 * unclaimed ones after it, and then waits for the pieces still in progress. Workers spin for a short while
 * after a job (the next layer's job usually follows within microseconds),
 * then sleep on a condition variable. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <cblas.h>
#include "rtrain/core.h"
#include "backend/cpu/parallel.h"

#define POOL_MAX_THREADS 256
/* A worker looks for a next job this long before it sleeps: longer than the
 * gaps between the layers of a step, shorter than a step's communication. */
#define POOL_SPIN_SECONDS 200e-6

static struct {
    _Atomic uint64_t state;       /* generation << 32 | next piece */
    atomic_int done;              /* pieces finished in this generation */
    _Atomic(rt_par_fn) fn;
    _Atomic(void *) arg;
    _Atomic size_t n;
    atomic_int parts;
    atomic_int sleepers;          /* workers waiting on cv */
    atomic_flag busy;             /* a caller owns the pool */
    int workers;                  /* started (only the owner changes it) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pool = {.busy = ATOMIC_FLAG_INIT, .mu = PTHREAD_MUTEX_INITIALIZER,
          .cv = PTHREAD_COND_INITIALIZER};

static atomic_int cpu_threads;     /* 0: not set yet */
static _Thread_local int in_piece; /* nested calls run serially */

static uint32_t state_gen(uint64_t s) { return (uint32_t)(s >> 32); }
static uint32_t state_next(uint64_t s) { return (uint32_t)s; }

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

void rt_cpu_set_threads(int threads)
{
    if (threads < 1)
        threads = 1;
    if (threads > POOL_MAX_THREADS)
        threads = POOL_MAX_THREADS;
    atomic_store(&cpu_threads, threads);
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
}

int rt_cpu_threads(void)
{
    /* A count above 1 in OpenBLAS was set after our last look: adopt it. */
    int blas = openblas_get_num_threads();
    if (blas > 1)
        rt_cpu_set_threads(blas);
    int t = atomic_load(&cpu_threads);
    return t > 0 ? t : 1;
}

int rt_par_threads(size_t work, size_t min_per_thread)
{
    int t = rt_cpu_threads();
    size_t useful = min_per_thread ? work / min_per_thread : work;
    if (useful < (size_t)t)
        t = useful < 1 ? 1 : (int)useful;
    return t;
}

/* Claims and runs pieces of generation g until none is left. */
static void run_pieces(uint32_t g)
{
    for (;;) {
        uint64_t s = atomic_load_explicit(&pool.state, memory_order_acquire);
        if (state_gen(s) != g)
            return;
        rt_par_fn fn = atomic_load_explicit(&pool.fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&pool.arg, memory_order_relaxed);
        size_t n = atomic_load_explicit(&pool.n, memory_order_relaxed);
        int parts = atomic_load_explicit(&pool.parts, memory_order_relaxed);
        uint32_t i = state_next(s);
        if (i >= (uint32_t)parts)
            return;
        if (!atomic_compare_exchange_weak_explicit(&pool.state, &s, s + 1,
                                                   memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        size_t lo, hi;
        rt_par_range(&lo, &hi, n, (int)i, parts);
        fn(arg, lo, hi);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
    }
}

/* Waits until the generation differs from `seen`; returns the new one. */
static uint32_t wait_for_job(uint32_t seen)
{
    double t0 = rt_time_now();
    for (unsigned spins = 1;; spins++) {
        uint32_t g = state_gen(atomic_load_explicit(&pool.state, memory_order_acquire));
        if (g != seen)
            return g;
        cpu_relax();
        if (spins % 256 == 0) {
            if (rt_time_now() - t0 < POOL_SPIN_SECONDS) {
                sched_yield();   /* let a descheduled thread of ours in */
                continue;
            }
            pthread_mutex_lock(&pool.mu);
            atomic_fetch_add(&pool.sleepers, 1);
            while (state_gen(atomic_load(&pool.state)) == seen)
                pthread_cond_wait(&pool.cv, &pool.mu);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.mu);
            t0 = rt_time_now();
        }
    }
}

void rt_cpu_kernel_signals(sigset_t *set)
{
    /* A fault the thread causes itself stays unblocked, so that it still
     * stops the process with a report. */
    static const int own_faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT,
                                      SIGSYS };
    sigfillset(set);
    for (size_t i = 0; i < sizeof own_faults / sizeof own_faults[0]; i++)
        sigdelset(set, own_faults[i]);
}

static void *worker_main(void *unused)
{
    (void)unused;
    /* The process's signals go to its other threads (parallel.h). */
    sigset_t kernel_signals;
    rt_cpu_kernel_signals(&kernel_signals);
    pthread_sigmask(SIG_BLOCK, &kernel_signals, NULL);
    in_piece = 1;
    uint32_t seen = state_gen(atomic_load(&pool.state));
    for (;;) {
        seen = wait_for_job(seen);
        run_pieces(seen);
    }
    return NULL;
}

/* Starts workers up to want (the caller counts as one thread). A worker
 * that cannot be started is simply not there: its pieces go to others. */
static void pool_grow(int want)
{
    while (pool.workers < want - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker_main, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            return;
        pool.workers++;
    }
}

static void run_serial(size_t n, int parts, rt_par_fn fn, void *arg)
{
    for (int i = 0; i < parts; i++) {
        size_t lo, hi;
        rt_par_range(&lo, &hi, n, i, parts);
        fn(arg, lo, hi);
    }
}

void rt_par_for(size_t n, int parts, rt_par_fn fn, void *arg)
{
    if (n == 0)
        return;
    if (parts < 1)
        parts = 1;
    if ((size_t)parts > n)
        parts = (int)n;
    if (parts == 1 || in_piece || atomic_flag_test_and_set(&pool.busy)) {
        run_serial(n, parts, fn, arg);
        return;
    }
    pool_grow(parts < rt_cpu_threads() ? parts : rt_cpu_threads());
    atomic_store_explicit(&pool.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool.arg, arg, memory_order_relaxed);
    atomic_store_explicit(&pool.n, n, memory_order_relaxed);
    atomic_store_explicit(&pool.parts, parts, memory_order_relaxed);
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    uint32_t g = state_gen(atomic_load(&pool.state)) + 1;
    /* seq_cst: publishes the job with piece 0 already claimed by the
     * caller, so the caller always runs the first piece and a worker that
     * is there the next: on 2 threads each keeps its half of a layer's
     * weights in its own cache from step to step. */
    atomic_store(&pool.state, (uint64_t)g << 32 | 1);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
    }
    in_piece = 1;
    size_t lo, hi;
    rt_par_range(&lo, &hi, n, 0, parts);
    fn(arg, lo, hi);
    atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
    run_pieces(g);
    in_piece = 0;
    /* Only pieces in progress remain; their threads are running (or were
     * preempted, hence the yield). */
    for (unsigned spins = 1;
         atomic_load_explicit(&pool.done, memory_order_acquire) < parts; spins++) {
        cpu_relax();
        if (spins % 64 == 0)
            sched_yield();
    }
    atomic_flag_clear(&pool.busy);
}
