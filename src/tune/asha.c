/* ASHA's stopping rule (rtrain/tune.h), as pure functions of the values
 * recorded at a rung: the rtrain-tune runner keeps the records (one file
 * per trial) and asks these. Written after Ray Tune's ASHAScheduler
 * (_Bracket.on_result and cutoff): the same rungs, the same quantile, the
 * same comparison, so a sweep stops the trials Ray's would. */
#include <math.h>
#include <stdlib.h>
#include "rtrain/tune.h"

int rt_asha_rungs(const rt_asha *a, int *rungs, int max_rungs)
{
    int n = 0;
    for (long long r = a->grace; r <= a->max_t && n < max_rungs; r *= a->eta)
        rungs[n++] = (int)r;
    return n;
}

int rt_asha_rung_due(const rt_asha *a, int iteration, const int *done)
{
    int rungs[64];
    int n = rt_asha_rungs(a, rungs, 64);
    for (int k = n - 1; k >= 0; k--)   /* the highest rung reached decides */
        if (iteration >= rungs[k])
            return done[k] ? -1 : k;
    return -1;
}

static int compare_doubles(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* numpy.percentile(v, q) with linear interpolation, of the finite values;
 * NAN when there are none. */
static double percentile(const double *values, int n, double q)
{
    double *v = malloc(((size_t)n + 1) * sizeof *v);
    int m = 0;
    for (int i = 0; v && i < n; i++)
        if (!isnan(values[i]))
            v[m++] = values[i];
    double r = NAN;
    if (m > 0) {
        qsort(v, (size_t)m, sizeof *v, compare_doubles);
        double pos = q / 100.0 * (m - 1);
        int lo = (int)floor(pos), hi = lo + 1 < m ? lo + 1 : lo;
        r = v[lo] + (v[hi] - v[lo]) * (pos - lo);
    }
    free(v);
    return r;
}

/* The cutoff in rewards (higher is better: a minimised metric negated),
 * as Ray's _Bracket.cutoff; NAN when nothing is recorded or memory is
 * short (the trial then goes on). */
static double reward_cutoff(const rt_asha *a, const double *recorded, int n)
{
    double *rewards = malloc(((size_t)n + 1) * sizeof *rewards);
    if (!rewards)
        return NAN;
    for (int i = 0; i < n; i++)
        rewards[i] = a->maximize ? recorded[i] : -recorded[i];
    double cutoff = percentile(rewards, n, (1.0 - 1.0 / a->eta) * 100.0);
    free(rewards);
    return cutoff;
}

double rt_asha_cutoff(const rt_asha *a, const double *recorded, int n)
{
    double cutoff = reward_cutoff(a, recorded, n);
    return a->maximize ? cutoff : -cutoff;
}

int rt_asha_should_stop(const rt_asha *a, double value, const double *recorded, int n)
{
    if (isnan(value))
        return 1;
    double cutoff = reward_cutoff(a, recorded, n), reward = a->maximize ? value : -value;
    return !isnan(cutoff) && reward < cutoff;
}

/* Best first for rt_asha_top (qsort_r's context: the values and mode). */
typedef struct top_ctx {
    const double *values;
    int maximize;
} top_ctx;

static int better_first(const void *x, const void *y, void *arg)
{
    const top_ctx *c = arg;
    int i = *(const int *)x, j = *(const int *)y;
    double a = c->values[i], b = c->values[j];
    if (isnan(a) != isnan(b))
        return isnan(a) ? 1 : -1;
    if (!isnan(a) && a != b)
        return (c->maximize ? a > b : a < b) ? -1 : 1;
    return (i > j) - (i < j);
}

int rt_asha_top(const rt_asha *a, const double *values, int n, int *order)
{
    top_ctx c = {values, a->maximize};
    for (int i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, better_first, &c);
    return n / a->eta;
}

/* ---- median stopping ------------------------------------------------------------ */

double rt_median_running_mean(const double *iterations, const double *values, int n, int grace,
                              int upto)
{
    double sum = 0;
    int count = 0;
    for (int i = 0; i < n; i++)
        if (iterations[i] >= grace && iterations[i] <= upto && !isnan(values[i])) {
            sum += values[i];
            count++;
        }
    return count ? sum / count : NAN;
}

int rt_median_should_stop(double best, const double *means, int n, int min_samples, int maximize)
{
    double *m = malloc(((size_t)n + 1) * sizeof *m);
    int k = 0;
    for (int i = 0; m && i < n; i++)
        if (!isnan(means[i]))
            m[k++] = maximize ? means[i] : -means[i];
    int stop = 0;
    if (m && k >= min_samples && k > 0) {
        qsort(m, (size_t)k, sizeof *m, compare_doubles);
        double median = k % 2 ? m[k / 2] : (m[k / 2 - 1] + m[k / 2]) / 2;   /* numpy.median */
        double reward = maximize ? best : -best;
        stop = isnan(reward) || reward < median;
    }
    free(m);
    return stop;
}
