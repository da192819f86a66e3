/* rt_tune_run (rtrain/tune.h): a sweep inside one MPI job.
 *
 * Protocol. Rank 0 records the search space in STORAGE/NAME/tune.json when
 * the experiment starts and compares it when it is run again (a changed
 * space is refused; more tune.num_samples extend the sweep), and applies
 * --resume-errored / --restart-errored; the outcome is agreed. The job is
 * cut into N/W groups of W ranks (rt_comm_split). Each group loops: its
 * rank 0 finds the next piece of work (claims.c: a promotion, a PBT
 * continuation, or the next trial without a final record) and broadcasts
 * it to the group; the group runs that trial on its own session (a copy of
 * the group's communicator) with the scheduler's report hook installed,
 * records the outcome in trial_<t>/tune_trial.json (rank 0, atomically),
 * and marks the work done. A trial that fails at run time is retried up to
 * tune.max_failures times, each an ordinary resume from its newest
 * checkpoint; an input error is not retried. A stop signal ends the
 * trial with its checkpoint and the sweep (the next launch continues it).
 * At the end all ranks agree on the outcome and rank 0 prints the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"

/* Every report: the group is alive (its claim refreshed), then the
 * scheduler's judgement. */
static int trial_hook(void *arg, const rt_metric *m, int count, int iteration)
{
    tune_hook *h = arg;
    if (h->judge)
        tune_work_alive(h->e, h->work);
    rt_report_hook judge = tune_scheduler_hook(h->e);
    return judge ? judge(h, m, count, iteration) : 0;
}

typedef struct trial_fn {
    rt_trial_fn fn;
    void *arg;
} trial_fn;

/* One attempt of trial t on the group: its own session on a copy of the
 * group's communicator (a session takes its communicator over). */
static rt_status run_attempt(const tune_experiment *e, rt_comm *group, tune_hook *h,
                             const trial_fn *f)
{
    static rt_config cfg;
    rt_status st = rt_comm_agree(group, tune_load_trial(e, h->t, &cfg));
    if (st != RT_OK)
        return st;
    rt_comm *c = NULL;
    RT_CHECK(rt_comm_split(group, 0, rt_comm_rank(group), &c));
    rt_session *s = NULL;
    RT_CHECK(rt_session_init_comm(&s, c));
    h->judge = rt_comm_rank(group) == 0;
    h->out = (tune_outcome){0};
    rt_session_set_report_hook(s, trial_hook, h);
    st = f->fn ? f->fn(s, &cfg, f->arg) : rt_trainer_run(s, &cfg);
    /* A user function's status on one rank is agreed before it counts. */
    st = rt_session_agree(s, st);
    rt_session_finalize(s);
    return st;
}

/* Trial t to its end: retried after a run-time failure (from its newest
 * checkpoint, as any resume), never after an input error or a stop. */
static rt_status run_trial(const tune_experiment *e, rt_comm *group, const tune_work *w,
                           const trial_fn *f)
{
    int attempts = 0;
    rt_status st;
    tune_hook h = {.e = e, .work = w, .t = w->t};
    do {
        rt_error_clear();
        st = run_attempt(e, group, &h, f);
        attempts++;
    } while (st != RT_OK && st != RT_STOPPED && rt_status_exit_code(st) == RT_EXIT_FAILURE &&
             attempts <= e->base.tune.max_failures);
    if (st == RT_STOPPED)   /* not final: the next launch continues it */
        return st;
    /* The trial's failure is recorded and the sweep goes on. */
    char error[2048];
    snprintf(error, sizeof error, "%s", st == RT_OK ? "" : rt_error_message());
    rt_error_clear();
    h.out.status = st;
    h.out.attempts = attempts;
    h.out.error = error;
    if (rt_comm_rank(group) == 0)
        fprintf(stderr, "rtrain-tune: trial_%05lld %s after %d attempt%s%s%s\n",
                (long long)w->t, st != RT_OK ? "failed" : h.out.stopped ? "stopped early"
                                 : h.out.paused ? "paused" : "finished",
                attempts, attempts == 1 ? "" : "s", st == RT_OK ? "" : ": ", error);
    rt_status rec = rt_comm_rank(group) == 0 ? tune_record_trial(e, w->t, &h.out) : RT_OK;
    RT_CHECK(rt_comm_agree(group, rec));
    return RT_OK;
}

/* The group's loop: find work (rank 0), broadcast, run, until none is left
 * or a stop signal. A failed trial is recorded and the sweep goes on (as
 * Ray Tune's): the status says whether the sweep itself went through. */
static rt_status run_group(const tune_experiment *e, rt_comm *group, const trial_fn *f)
{
    for (;;) {
        tune_work w = {.t = -1};
        int stop = 0;   /* a stop signal between trials (or while waiting) */
        RT_CHECK(rt_comm_agree_flag(group, RT_OK, rt_session_stop_caught(), &stop));
        if (stop)
            return RT_STOPPED;
        rt_status st = rt_comm_rank(group) == 0 ? tune_next_work(e, &w) : RT_OK;
        st = rt_comm_agree(group, st);
        if (st == RT_OK)
            st = rt_comm_broadcast(group, &w, sizeof w, RT_DTYPE_BYTE, 0);
        if (st != RT_OK)
            return st;
        if (w.t == -2) {   /* wait for the others' rungs or rounds */
            struct timespec nap = {0, 200 * 1000 * 1000};
            nanosleep(&nap, NULL);
            continue;
        }
        if (w.t < 0)
            return RT_OK;
        st = run_trial(e, group, &w, f);
        if (rt_comm_rank(group) == 0)
            tune_work_done(e, &w);
        if (st != RT_OK)
            return st;
    }
}

/* Rank 0, once every group is through: trials left without a final record
 * and not running elsewhere (a job array task that died) make the sweep
 * incomplete. */
static rt_status check_complete(const tune_experiment *e)
{
    int64_t open = tune_unfinished(e);
    if (open == 0)
        return RT_OK;
    return RT_ERROR(RT_ERR_IO, "%lld trial%s of %s did not finish (claimed by a launch or "
                    "job array task that stopped): run the same command again to continue "
                    "them", (long long)open, open == 1 ? "" : "s", e->dir);
}

static rt_status start_sweep(rt_session *s, tune_experiment *e, rt_comm **group)
{
    rt_comm *world = rt_session_comm(s);
    int rank = rt_comm_rank(world), size = rt_comm_size(world);
    int w = e->base.tune.ranks_per_trial;
    rt_status st = size % w == 0 ? RT_OK
                   : RT_ERROR(RT_ERR_CONFIG, "tune.ranks_per_trial = %d does not divide the %d "
                              "ranks: launch a multiple of %d ranks", w, size, w);
    if (st == RT_OK && rank == 0)
        st = tune_record_space(e);
    if (st == RT_OK && rank == 0)
        st = tune_reopen_errored(e);
    RT_CHECK(rt_session_agree(s, st));
    RT_CHECK(tune_launch(e, world));
    RT_CHECK(rt_comm_split(world, rank / w, rank, group));
    if (rank == 0)
        fprintf(stderr, "rtrain-tune: %lld trials in %s, %d group%s of %d rank%s%s\n",
                (long long)e->trials, e->dir, size / w, size / w == 1 ? "" : "s", w,
                w == 1 ? "" : "s", e->restart ? " (a requeued task)" : "");
    return RT_OK;
}

rt_status rt_tune_run(rt_session *s, const char *config, int noverrides,
                      char *const *overrides, rt_tune_errored errored, rt_trial_fn fn,
                      void *arg, FILE *table)
{
    static tune_experiment e;
    memset(&e, 0, sizeof e);
    e.errored = errored;
    rt_session_catch_stop_signals(s);   /* also between trials: see run_group */
    rt_status st = rt_session_agree(s, tune_open(&e, config, noverrides, overrides));
    rt_comm *group = NULL;
    if (st == RT_OK)
        st = start_sweep(s, &e, &group);
    if (st == RT_OK) {
        trial_fn f = {fn, arg};
        rt_status mine = run_group(&e, group, &f);
        rt_comm_free(group);
        int rank0 = rt_comm_rank(rt_session_comm(s)) == 0;
        st = rt_session_agree(s, mine);
        if (st == RT_OK)
            st = rt_session_agree(s, rank0 ? check_complete(&e) : RT_OK);
        if (st != RT_STOPPED && rank0 && tune_print_table(&e, table) != RT_OK)
            fprintf(stderr, "rtrain-tune: error: %s\n", rt_error_message());
    }
    rt_space_free(e.space);
    e.space = NULL;
    return st;
}
