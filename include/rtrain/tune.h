/* rtrain tune: hyperparameter search over the trainer's configuration
 * (rtrain-tune), the counterpart of Ray Tune inside one HPC allocation.
 *
 * A search space is written where values would be, in the experiment file
 *
 *   optimizer = { lr = { loguniform = [1e-4, 0.3]; };
 *                 momentum = { grid = [0.0, 0.9]; }; };
 *   model = { hidden = { choice = ([256], [512, 512]); }; };
 *
 * or as overrides: 'optimizer.lr=loguniform(1e-4, 0.3)'. Domains, as Ray
 * Tune's: uniform [a, b] (float, a <= x < b), quniform [a, b, q] (uniform
 * rounded to a multiple of q), loguniform [a, b] (0 < a, log-uniform),
 * randint [a, b] (integer, a <= x < b), choice (values of any type, one
 * drawn per trial), grid (every value: the grids' cross product, repeated
 * tune.num_samples times). Trial i's values are a pure function of
 * (tune.seed, i): independent of how many groups run, in what order trials
 * are claimed, and of restores. Each random domain draws from its own
 * stream, keyed by (seed, trial, its key), so adding or removing a domain
 * leaves the others' values as they were.
 *
 * rt_tune_run runs a sweep (what rtrain-tune does), with the built-in
 * trainer or the caller's own trial function; the rest is not collective. */
#ifndef RTRAIN_TUNE_H
#define RTRAIN_TUNE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "rtrain/core.h"
#include "rtrain/config.h"
#include "rtrain/run.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    RT_SPACE_MAX_DOMAINS = 32,
    RT_SPACE_ASSIGN_MAX = 1024,     /* longest "key=value" of one trial value */
};

typedef enum rt_domain_kind {
    RT_DOMAIN_UNIFORM = 0,
    RT_DOMAIN_QUNIFORM,
    RT_DOMAIN_LOGUNIFORM,
    RT_DOMAIN_RANDINT,
    RT_DOMAIN_CHOICE,
    RT_DOMAIN_GRID,
    RT_DOMAIN_COUNT
} rt_domain_kind;

typedef struct rt_space rt_space;

/* The search space of experiment file `path` with its overrides: every
 * domain of the file and every override whose value is a domain
 * ("key=loguniform(1e-4, 0.3)"); the other overrides are kept as they are
 * (rt_space_plain_overrides). Each domain is checked before anything runs:
 * its key must be a configuration key (the closest one suggested
 * otherwise), its bounds well-formed (a < b, 0 < a for loguniform, q > 0,
 * integers for randint, at least one value for choice and grid), and its
 * extreme values (a and b, or every value of a choice or grid) accepted by
 * the configuration schema (type, range): errors name file:line (or the
 * override) and the key, RT_ERR_CONFIG. */
rt_status rt_space_load(rt_space **out, const char *path, int noverrides,
                        char *const *overrides);
void rt_space_free(rt_space *s);

int rt_space_num_domains(const rt_space *s);
const char *rt_space_domain_key(const rt_space *s, int i);   /* "optimizer.lr" */
rt_domain_kind rt_space_domain_kind(const rt_space *s, int i);
const char *rt_domain_kind_name(rt_domain_kind k);            /* "loguniform" */

/* The product of the grid domains' sizes (1 without grids). */
int64_t rt_space_grid_size(const rt_space *s);

/* The overrides that are not domains, in their order. */
int rt_space_num_plain_overrides(const rt_space *s);
char *const *rt_space_plain_overrides(const rt_space *s);

/* 1 when the file or an override sets `key` (e.g. "train.seed"). */
int rt_space_sets(const rt_space *s, const char *key);

/* Trial `trial`'s value of every domain, as overrides "key=value" in
 * config-file syntax (assign[i] for domain i), to be given after the plain
 * overrides: grid cell trial % grid size (the first grid domain varying
 * fastest); random domains drawn from the counter-based RNG keyed by
 * (seed, trial, key). Drawn floats are written with 17 significant digits
 * and choice/grid values in their shortest exact form, so the value read
 * back is the value drawn. */
rt_status rt_space_trial(const rt_space *s, uint64_t seed, int64_t trial,
                         char assign[][RT_SPACE_ASSIGN_MAX]);

/* PBT's explore step (Jaderberg et al. 2017, as Ray Tune's PBT): each of
 * trial `trial`'s current values (current[i], "key=value" of domain i) is
 * perturbed for round `round`: with resample_probability drawn afresh
 * from its domain, else a number multiplied by 1.2 or 0.8 and kept inside
 * its domain's bounds (on quniform's grid, an integer for randint), a grid
 * or choice value replaced by its neighbour in the list (the same at the
 * ends). The draws are keyed by (seed, trial, key, round): the same inputs
 * give the same values. */
rt_status rt_space_explore(const rt_space *s, uint64_t seed, int64_t trial, int64_t round,
                           double resample_probability, char current[][RT_SPACE_ASSIGN_MAX],
                           char out[][RT_SPACE_ASSIGN_MAX]);

/* The space as one JSON object (domains in order: key, kind, arguments as
 * text): what an experiment records, so that a restore with a changed
 * space is refused. Caller frees with free(). */
rt_status rt_space_json(const rt_space *s, char **json);

/* ---- ASHA: stopping trials early ----------------------------------------------------
 * Asynchronous successive halving (Li et al. 2018) as Ray Tune's
 * ASHAScheduler stops trials: rungs at training iterations grace * eta^k
 * (k = 0, 1, ... up to max_t). The first report of a trial at or past a
 * rung it has no value at is judged there: against the values other trials
 * recorded at that rung so far, it goes on when it is at least their
 * (1 - 1/eta) quantile (linear interpolation, as numpy's percentile), so
 * about the best 1/eta of the trials reach the next rung; with nothing
 * recorded yet it goes on. Its value is then recorded at the rung. */
typedef struct rt_asha {
    int grace;          /* first rung (iterations), >= 1 */
    int eta;            /* reduction factor, >= 2 */
    int max_t;          /* last iteration a trial may run */
    int maximize;       /* 1: a higher metric is better */
} rt_asha;

/* The number of rungs and, in rungs[], their iterations, ascending. */
int rt_asha_rungs(const rt_asha *a, int *rungs, int max_rungs);
/* The rung (an index into rt_asha_rungs' list) a trial that has reported
 * `iteration` is judged at, given the rungs it already has a value at
 * (done[k] != 0), or -1: the highest rung at or below iteration without a
 * value. */
int rt_asha_rung_due(const rt_asha *a, int iteration, const int *done);
/* 1 when a trial with `value` at a rung should stop, given the n values
 * others recorded there (NaN values are ignored; a NaN value stops). */
int rt_asha_should_stop(const rt_asha *a, double value, const double *recorded, int n);
/* The value a trial must reach at a rung to go on, given the n values
 * recorded there: the (1 - 1/eta) quantile of the non-NaN ones, in the
 * metric's own terms (for a minimised metric, the value it must not
 * exceed); NaN when none is recorded. rt_asha_should_stop stops exactly
 * the values worse than it. */
double rt_asha_cutoff(const rt_asha *a, const double *recorded, int n);

/* The promotion variant (Li et al. 2018, Algorithm 2): every trial pauses
 * at each rung but the last; a free worker promotes, from the highest rung
 * down, the best trial among the top floor(n / eta) of the n values
 * recorded at a rung that is paused there and not promoted yet, and starts
 * a new trial only when none is. rt_asha_top orders the n values best
 * first (NaN last; ties by index) into order[] and returns floor(n / eta),
 * the number that may be promoted. */
int rt_asha_top(const rt_asha *a, const double *values, int n, int *order);

/* ---- median stopping ------------------------------------------------------------
 * Ray Tune's MedianStoppingRule: at a report at iteration t >= grace, a
 * trial stops when its best value so far is worse than the median (as
 * numpy's) of the other trials' running means up to t, once at least
 * min_samples other trials have one. A running mean is the mean of a
 * trial's values at iterations grace..t (NaN: none). */
double rt_median_running_mean(const double *iterations, const double *values, int n, int grace,
                              int upto);
int rt_median_should_stop(double best, const double *means, int n, int min_samples,
                          int maximize);

/* ---- PBT: population based training ----------------------------------------------
 * Jaderberg et al. 2017, as Ray Tune's PopulationBasedTraining decides, in
 * synchronous rounds: every tune.perturbation_interval reports all trials
 * pause; the trials are ranked by their value at that report (best first,
 * NaN last, ties by trial); each of the bottom q = ceil(n x fraction)
 * (at most n / 2) copies the checkpoint of a trial drawn uniformly from the
 * top q (exploit) and perturbs its values (explore, rt_space_explore); the
 * others continue as they are. */
/* The quantile size q for n trials. */
int rt_pbt_quantile_size(int n, double quantile_fraction);
/* One round's exploit decision for the n trials (ids trials[i], values
 * values[i]): donor[i] = the index of the trial whose checkpoint trial i
 * continues from, or -1 when it keeps its own. The donor is drawn by the
 * counter-based RNG keyed by (seed, trials[i], round). Returns q, or -1 out
 * of memory. */
int rt_pbt_exploit(const double *values, const int64_t *trials, int n, double quantile_fraction,
                   int maximize, uint64_t seed, int64_t round, int *donor);

/* ---- running a sweep (Ray Tune's Tuner) ---------------------------------------------
 * The experiment is STORAGE/NAME (run.storage_path, run.name; NAME
 * defaults to tune_<config file name>, so the same command finds it again);
 * trial t is the ordinary run directory STORAGE/NAME/trial_<t>, which every
 * rtrain tool reads. src/tune/internal.h lists the files and the parts that
 * keep them; each part describes its protocol. */

/* A trial: called on every rank of the group that runs it, with a session
 * of that group's ranks and the trial's configuration (its values applied,
 * run.storage_path and run.name naming its directory, its own train.seed).
 * It opens its run (rt_run_open), trains and reports; when
 * rt_run_should_stop(run) says so after a report (the scheduler stopped or
 * paused it) it saves what it was saving and returns RT_OK. A trial that
 * resumes continues from its checkpoints (rt_get_checkpoint), as any run
 * does. Returns RT_OK, RT_STOPPED after a stop signal (its checkpoint
 * written: the sweep ends and the next launch continues), or a failure
 * (retried up to tune.max_failures times when it is not an input error). */
typedef rt_status (*rt_trial_fn)(rt_session *s, const rt_config *cfg, void *arg);

/* What a launch does with the trials an earlier launch recorded ERROR. */
typedef enum rt_tune_errored {
    RT_TUNE_ERRORED_KEEP = 0,   /* leave them */
    RT_TUNE_ERRORED_RESUME,     /* run them again from their newest checkpoint */
    RT_TUNE_ERRORED_RESTART     /* run them again from the start */
} rt_tune_errored;

/* Collective over the session's communicator: runs the sweep that config
 * (and overrides, which may hold domains) describes, trials on groups of
 * tune.ranks_per_trial ranks, each trial calling fn(arg) (NULL: the
 * built-in trainer, rt_trainer_run) with tune.scheduler's report hook
 * installed on the trial's session. A trial's failure is recorded and the
 * sweep goes on. At the end rank 0 prints the trials table with the best
 * trial to `table` (NULL: none) and writes STORAGE/NAME/experiment.csv.
 * Returns, agreed on every rank: RT_OK when every trial has its final
 * record (or, in a job array, is running in another task), RT_STOPPED
 * after a stop signal (run it again to continue), an input error (the
 * space, the settings), or a failure of the sweep itself. */
rt_status rt_tune_run(rt_session *s, const char *config, int noverrides,
                      char *const *overrides, rt_tune_errored errored, rt_trial_fn fn,
                      void *arg, FILE *table);

/* Not collective: prints the experiment's directory and every trial's
 * values to out (rtrain-tune --list), running nothing. */
rt_status rt_tune_list(FILE *out, const char *config, int noverrides, char *const *overrides);

#ifdef __cplusplus
}
#endif
#endif
