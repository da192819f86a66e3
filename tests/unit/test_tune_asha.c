/* ASHA's rules and the median stopping rule (src/tune/asha.c) on synthetic
 * trial curves whose
 * right decisions are worked out by hand from Ray Tune's ASHAScheduler
 * (rungs grace * eta^k up to max_t; a trial is judged at the highest rung
 * it reached without a value there, against the others' values there:
 * stopped when below numpy.percentile(values, (1 - 1/eta) * 100), linear
 * interpolation; nothing recorded: it goes on). */
#include <math.h>
#include "check.h"
#include "rtrain/tune.h"

static void test_rungs(void)
{
    rt_asha a = {.grace = 1, .eta = 3, .max_t = 9, .maximize = 1};
    int r[8], n = rt_asha_rungs(&a, r, 8);
    CHECK(n == 3 && r[0] == 1 && r[1] == 3 && r[2] == 9);
    rt_asha b = {.grace = 2, .eta = 2, .max_t = 10, .maximize = 1};
    n = rt_asha_rungs(&b, r, 8);
    CHECK(n == 3 && r[0] == 2 && r[1] == 4 && r[2] == 8);
    int none[3] = {0, 0, 0}, first[3] = {1, 0, 0}, all[3] = {1, 1, 1};
    CHECK(rt_asha_rung_due(&a, 0, none) == -1);   /* before the grace period */
    CHECK(rt_asha_rung_due(&a, 1, none) == 0);
    CHECK(rt_asha_rung_due(&a, 2, first) == -1);  /* judged at 1 already, 3 not reached */
    CHECK(rt_asha_rung_due(&a, 3, first) == 1);
    CHECK(rt_asha_rung_due(&a, 5, none) == 1);    /* resumed past rung 3: judged there */
    CHECK(rt_asha_rung_due(&a, 9, all) == -1);
}

static void test_cutoff(void)
{
    rt_asha a = {.grace = 1, .eta = 3, .max_t = 9, .maximize = 1};
    double rec[3] = {0.5, 0.6, 0.7};
    /* percentile 66.67 of {0.5, 0.6, 0.7}: position 1.333 -> 0.6333 */
    CHECK(rt_asha_should_stop(&a, 0.63, rec, 3) == 1);
    CHECK(rt_asha_should_stop(&a, 0.64, rec, 3) == 0);
    CHECK(rt_asha_should_stop(&a, 0.1, rec, 0) == 0);    /* first at its rung */
    CHECK(rt_asha_should_stop(&a, 0.5, rec, 1) == 0);    /* equal to the cutoff goes on */
    CHECK(rt_asha_should_stop(&a, 0.49, rec, 1) == 1);
    CHECK(rt_asha_should_stop(&a, NAN, rec, 3) == 1);    /* a NaN metric stops */
    double with_nan[4] = {0.5, NAN, 0.6, 0.7};           /* NaNs ignored (nanpercentile) */
    CHECK(rt_asha_should_stop(&a, 0.63, with_nan, 4) == 1);
    CHECK(rt_asha_should_stop(&a, 0.64, with_nan, 4) == 0);
    /* A minimised metric (a loss): lower is better, rewards negated. */
    rt_asha m = {.grace = 1, .eta = 2, .max_t = 4, .maximize = 0};
    double losses[2] = {1.0, 2.0};   /* rewards -1, -2: median -1.5 */
    CHECK(rt_asha_should_stop(&m, 1.4, losses, 2) == 0);
    CHECK(rt_asha_should_stop(&m, 1.6, losses, 2) == 1);
}

/* The cutoff itself, in the metric's terms: numpy.percentile(values,
 * (1 - 1/eta) * 100) for a maximised metric, the mirrored quantile for a
 * minimised one, and exactly the line rt_asha_should_stop draws. Values
 * are exact to rounding: 1e-12. */
static void test_cutoff_value(void)
{
    rt_asha a = {.grace = 1, .eta = 3, .max_t = 9, .maximize = 1};
    double rec[5] = {0.5, NAN, 0.7, 0.6, 0.4};
    CHECK_CLOSE(rt_asha_cutoff(&a, rec, 4), 0.6 + 0.1 / 3, 1e-12, 0);   /* NaN left out */
    CHECK(isnan(rt_asha_cutoff(&a, rec, 0)));
    CHECK(isnan(rt_asha_cutoff(&a, rec + 1, 1)));
    double four[4] = {4, 1, 3, 2};   /* position 2 of 3: 3; mirrored for a loss: 2 */
    CHECK_CLOSE(rt_asha_cutoff(&a, four, 4), 3.0, 1e-12, 0);
    rt_asha m = {.grace = 1, .eta = 3, .max_t = 9, .maximize = 0};
    CHECK_CLOSE(rt_asha_cutoff(&m, four, 4), 2.0, 1e-12, 0);
    for (int i = 0; i <= 50; i++) {
        double v = 0.3 + 0.01 * i, cmax = rt_asha_cutoff(&a, rec, 5);
        double cmin = rt_asha_cutoff(&m, rec, 5);
        CHECK_MSG(rt_asha_should_stop(&a, v, rec, 5) == (v < cmax), "max %g vs %g", v, cmax);
        CHECK_MSG(rt_asha_should_stop(&m, v, rec, 5) == (v > cmin), "min %g vs %g", v, cmin);
    }
}

/* Nine trials, eta 3, arriving one after another with increasing values
 * at rung 1: the first always goes on; afterwards a trial goes on only
 * when it reaches the top third of those before it. */
static void test_sequence(void)
{
    rt_asha a = {.grace = 1, .eta = 3, .max_t = 9, .maximize = 1};
    double curve[9] = {0.30, 0.20, 0.40, 0.10, 0.50, 0.35, 0.45, 0.60, 0.05};
    /* e.g. trial 6: 0.45 against {.1 .2 .3 .35 .4 .5}: position 3.33, cutoff 0.367 */
    int expect[9] = {0, 1, 0, 1, 0, 1, 0, 0, 1};
    double recorded[9];
    for (int i = 0; i < 9; i++) {
        int stop = rt_asha_should_stop(&a, curve[i], recorded, i);
        CHECK_MSG(stop == expect[i], "trial %d (value %.2f): stop %d, expected %d", i, curve[i],
                  stop, expect[i]);
        recorded[i] = curve[i];
    }
}

/* The promotion variant's ranking: best first (NaN last, ties by index),
 * floor(n / eta) promotable. */
static void test_top(void)
{
    rt_asha a = {.grace = 1, .eta = 3, .max_t = 9, .maximize = 1};
    double v[7] = {0.2, NAN, 0.9, 0.5, 0.9, 0.1, 0.7};
    int order[7];
    CHECK(rt_asha_top(&a, v, 7, order) == 2);
    int want[7] = {2, 4, 6, 3, 0, 5, 1};
    for (int i = 0; i < 7; i++)
        CHECK_MSG(order[i] == want[i], "place %d: %d, expected %d", i, order[i], want[i]);
    rt_asha m = {.grace = 1, .eta = 2, .max_t = 4, .maximize = 0};   /* a loss */
    double loss[3] = {1.5, 0.5, 1.0};
    CHECK(rt_asha_top(&m, loss, 3, order) == 1 && order[0] == 1 && order[1] == 2);
    CHECK(rt_asha_top(&m, loss, 1, order) == 0);   /* one value: nobody promoted yet */
}

/* Ray's MedianStoppingRule: running means from the grace period up to t,
 * numpy's median, at least 3 other trials. */
static void test_median(void)
{
    double its[4] = {1, 2, 3, 4}, v[4] = {0.1, 0.3, 0.5, NAN};
    CHECK_CLOSE(rt_median_running_mean(its, v, 4, 1, 3), 0.3, 1e-12, 0);
    CHECK_CLOSE(rt_median_running_mean(its, v, 4, 2, 4), 0.4, 1e-12, 0);   /* NaN left out */
    CHECK(isnan(rt_median_running_mean(its, v, 4, 5, 9)));
    double means[4] = {0.2, 0.6, 0.4, NAN};   /* median of 0.2, 0.4, 0.6: 0.4 */
    CHECK(rt_median_should_stop(0.39, means, 4, 3, 1) == 1);
    CHECK(rt_median_should_stop(0.40, means, 4, 3, 1) == 0);
    CHECK(rt_median_should_stop(0.10, means, 4, 4, 1) == 0);   /* too few others */
    double even[4] = {0.2, 0.6, 0.4, 0.8};    /* median 0.5 */
    CHECK(rt_median_should_stop(0.49, even, 4, 3, 1) == 1);
    CHECK(rt_median_should_stop(0.51, even, 4, 3, 1) == 0);
    CHECK(rt_median_should_stop(0.45, even, 4, 3, 0) == 0);   /* a loss: lower is better */
    CHECK(rt_median_should_stop(0.55, even, 4, 3, 0) == 1);
}

int main(void)
{
    test_median();
    test_rungs();
    test_cutoff();
    test_cutoff_value();
    test_sequence();
    test_top();
    return CHECK_DONE();
}
