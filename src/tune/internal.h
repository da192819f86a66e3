/* The tune module's internals: one experiment (the sweep rt_tune_run
 * runs) and the parts that run it.
 *
 *   experiment.c  the experiment: space, shared settings, directory,
 *                 trial configurations, the per-trial record files
 *   claims.c      which group runs what: claims by exclusive file
 *                 creation, shared by the tasks of a Slurm job array
 *   schedulers.c  the report hooks of ASHA (both variants) and median
 *                 stopping
 *   pbt.c         population based training: rounds, exploit, explore
 *   table.c       the trials table and experiment.csv
 *   sweep.c       rt_tune_run: groups, trials, retries, the outcome
 *
 * Files of an experiment STORAGE/NAME/ (each with one writer at a time):
 *   tune.json                    the search space (rank 0 of the first launch)
 *   trial_NNNNN/                 an ordinary run directory per trial, plus
 *     tune_trial.json            its outcome (the group running it)
 *     tune_rungs.json            ASHA: its values and decisions at rungs
 *     tune_pbt.json              PBT: its current values and exploit history
 *   .claims/LAUNCH/              claims of one launch (or one job array)
 *   .promoted/NNNNN.RUNG         asha_promote: promoted once, for all launches
 *   .pbt/round_K.json            PBT: round K's decisions, once decided
 *   experiment.csv               the trials table (derived) */
#ifndef RTRAIN_TUNE_INTERNAL_H
#define RTRAIN_TUNE_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include "rtrain/rtrain.h"
#include "rtrain/tune.h"
#include "core/fs.h"

enum { TUNE_MAX_ARGS = 4096, TUNE_MEDIAN_MIN_SAMPLES = 3 /* Ray's min_samples_required */ };

/* tune.scheduler, in the order of the schema's names (src/config/schema.c). */
typedef enum tune_scheduler {
    SCHED_FIFO, SCHED_ASHA, SCHED_ASHA_PROMOTE, SCHED_MEDIAN, SCHED_PBT
} tune_scheduler;

typedef struct tune_experiment {
    const char *config;            /* the experiment file */
    rt_tune_errored errored;       /* what this launch does with ERROR trials */
    tune_scheduler scheduler;      /* base.tune.scheduler */
    rt_space *space;
    rt_config base;                /* tune.* and run.*: the same for every trial */
    char dir[RT_PATH_MAX];         /* STORAGE/NAME */
    int64_t trials;                /* tune.num_samples x the grid's size */
    char launch[64];               /* the claims directory of this launch (or job array) */
    int task, restart;             /* job array task and its restart count (0, 0 without) */
} tune_experiment;

/* One trial's overrides: the plain ones, the trial's values, then where it
 * runs and (unless the experiment sets train.seed) its own seed. */
typedef struct tune_trial_args {
    char assign[RT_SPACE_MAX_DOMAINS][RT_SPACE_ASSIGN_MAX];
    char where[6][RT_PATH_MAX + 64];
    char *argv[TUNE_MAX_ARGS];
    int argc;
} tune_trial_args;

/* ---- experiment.c ---- */
rt_status tune_open(tune_experiment *e, const char *config, int noverrides,
                    char *const *overrides);
int tune_maximize(const tune_experiment *e);
/* Trial t's overrides; with placed, also its directory and seed (and, for
 * PBT, its current values and seed from tune_pbt.json). */
rt_status tune_make_args(const tune_experiment *e, int64_t t, int placed, tune_trial_args *a);
rt_status tune_load_trial(const tune_experiment *e, int64_t t, rt_config *cfg);
rt_status tune_record_space(const tune_experiment *e);
rt_status tune_reopen_errored(const tune_experiment *e);
/* STORAGE/NAME/trial_NNNNN[/name] into buf (name may be NULL). */
rt_status tune_trial_path(char *buf, size_t size, const tune_experiment *e, int64_t t,
                          const char *name);
/* Trial t's JSON file `name` (an object), or NULL when it has none or it
 * cannot be read (a reader never sees half a file: they are written
 * atomically). */
json_t *tune_read_trial_file(const tune_experiment *e, int64_t t, const char *name);
rt_status tune_write_trial_file(const tune_experiment *e, int64_t t, const char *name,
                                const json_t *rec);
/* Trial t's status ("" without a record) and the iteration it paused at. */
void tune_trial_state(const tune_experiment *e, int64_t t, char *status, size_t size,
                      int *paused_at);

/* How one trial's run ended, as its report hook saw it. */
typedef struct tune_outcome {
    rt_status status;
    int stopped;        /* stopped early at this iteration (asha, median), 0: not */
    int paused;         /* paused at this iteration (pbt) or rung (asha_promote), 0: not */
    int attempts;
    const char *error;
} tune_outcome;
rt_status tune_record_trial(const tune_experiment *e, int64_t t, const tune_outcome *o);

/* ---- claims.c ---- */
/* The launch's claims directory name and job array place (agreed). */
rt_status tune_launch(tune_experiment *e, rt_comm *world);
/* A piece of work for a group: trial t, named `unit` in the claims. */
typedef struct tune_work {
    int64_t t;          /* >= 0: run it; -1: nothing left; -2: nothing now, wait */
    char unit[48];
} tune_work;
rt_status tune_next_work(const tune_experiment *e, tune_work *w);
/* The group is through with w (its claim is released for the waiting). */
void tune_work_done(const tune_experiment *e, const tune_work *w);
/* The group running w is alive (a report): refreshes its claim's time. */
void tune_work_alive(const tune_experiment *e, const tune_work *w);
/* Number of trials without a final record whose claim is not alive. */
int64_t tune_unfinished(const tune_experiment *e);
/* Creates .claims/LAUNCH/name exclusively (*got = 1 when this call did). */
rt_status tune_claim_file(const tune_experiment *e, const char *name, int *got);
/* 1 when a claim of this launch is not done and still alive. */
int tune_others_running(const tune_experiment *e);
/* Claims the first trial that has no record yet (w->t = -1: none). */
rt_status tune_claim_new(const tune_experiment *e, tune_work *w);
/* Claims unit `name` (a new claim, or this task's own from before a requeue). */
rt_status tune_claim_unit(const tune_experiment *e, const char *name, int *got);

/* ---- schedulers.c ---- */
typedef struct tune_hook {
    const tune_experiment *e;
    const tune_work *work;
    int64_t t;
    int judge;          /* this rank takes the decisions (the trial's rank 0) */
    tune_outcome out;
} tune_hook;
/* The report hook of e's scheduler (NULL for fifo). */
rt_report_hook tune_scheduler_hook(const tune_experiment *e);
rt_asha tune_asha_of(const tune_experiment *e);
/* Trial t's value at `rung` (tune_rungs.json), if it has one. */
int tune_value_at(const tune_experiment *e, int64_t t, int rung, double *value);
/* asha_promote's promotion (see claims.c), -1 when none. */
rt_status tune_claim_promotion(const tune_experiment *e, int64_t *out);

/* ---- pbt.c ---- */
int tune_pbt_hook(void *arg, const rt_metric *m, int count, int iteration);
/* Trial t's current values and seed (tune_pbt.json) over a's, if it has any. */
void tune_pbt_current(const tune_experiment *e, int64_t t, tune_trial_args *a, char *seed,
                      size_t seed_size);
/* The next PBT work: a trial to continue in a decided round, a round to
 * decide (done here), or wait/none (as tune_next_work). */
rt_status tune_pbt_next(const tune_experiment *e, tune_work *w);

/* ---- table.c ---- */
/* Prints the trials table and the best trial to out (NULL: not printed)
 * and writes experiment.csv. */
rt_status tune_print_table(const tune_experiment *e, FILE *out);

#endif
