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
 * Nothing here is collective. */
#ifndef RTRAIN_TUNE_H
#define RTRAIN_TUNE_H

#include <stddef.h>
#include <stdint.h>
#include "rtrain/core.h"

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

#ifdef __cplusplus
}
#endif
#endif
