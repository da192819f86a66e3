/* PBT's exploit rule (rtrain/tune.h) as a pure function of one round's
 * values: the runner (pbt.c) gathers the values and applies the result.
 * Written after Ray Tune's PopulationBasedTraining (_quantiles and
 * _exploit): the same quantile size, the same donor choice (uniform among
 * the top quantile), with the draw keyed by (seed, trial, round) instead of
 * a process-wide random state, so that a sweep decides the same whatever
 * the number of groups and however often it was restarted. */
#include <math.h>
#include <stdlib.h>
#include "rtrain/tune.h"

#define DONOR_STREAM 0x646f6e72u   /* "donr" */

typedef struct ranked { double value; int64_t trial; int index; int maximize; } ranked;

/* Best first; NaN last; ties by trial. */
static int compare_ranked(const void *x, const void *y)
{
    const ranked *a = x, *b = y;
    int an = isnan(a->value), bn = isnan(b->value);
    if (an != bn)
        return an - bn;
    if (!an && a->value != b->value)
        return (a->value > b->value) == a->maximize ? -1 : 1;
    return (a->trial > b->trial) - (a->trial < b->trial);
}

int rt_pbt_quantile_size(int n, double quantile_fraction)
{
    int q = (int)ceil(n * quantile_fraction);
    return q > n / 2 ? n / 2 : q;
}

int rt_pbt_exploit(const double *values, const int64_t *trials, int n, double quantile_fraction,
                   int maximize, uint64_t seed, int64_t round, int *donor)
{
    ranked *r = malloc(((size_t)n + 1) * sizeof *r);
    if (!r)
        return -1;
    for (int i = 0; i < n; i++) {
        r[i] = (ranked){values[i], trials[i], i, maximize};
        donor[i] = -1;
    }
    qsort(r, (size_t)n, sizeof *r, compare_ranked);
    int q = rt_pbt_quantile_size(n, quantile_fraction);
    for (int k = n - q; k < n; k++) {   /* the bottom quantile copies the top */
        rt_rng g;
        rt_rng_init(&g, rt_rng_key(seed, (uint64_t)r[k].trial, (uint64_t)round, DONOR_STREAM));
        donor[r[k].index] = r[rt_rng_below(&g, (uint32_t)q)].index;
    }
    free(r);
    return q;
}
