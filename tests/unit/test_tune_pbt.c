/* PBT's rules (src/tune/pbt_rule.c, rt_space_explore in src/tune/space.c)
 * on synthetic populations whose right decisions are worked out by hand
 * from Ray Tune's PopulationBasedTraining: the quantile size
 * ceil(n x fraction) capped at n / 2, the bottom quantile copies a trial
 * of the top one (drawn uniformly), NaN ranks last, ties by trial; explore
 * multiplies by 1.2 or 0.8, moves a list value to a neighbour, or draws
 * afresh with resample_probability, always inside the domain. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include "check.h"
#include "rtrain/tune.h"

static char tmpdir[] = "/tmp/rtrain_tune_pbt_XXXXXX";
static char path[600];

static void test_quantile_size(void)
{
    CHECK(rt_pbt_quantile_size(4, 0.25) == 1);
    CHECK(rt_pbt_quantile_size(8, 0.25) == 2);
    CHECK(rt_pbt_quantile_size(10, 0.25) == 3);   /* ceil(2.5) */
    CHECK(rt_pbt_quantile_size(3, 0.5) == 1);     /* ceil(1.5) = 2, capped at 3 / 2 */
    CHECK(rt_pbt_quantile_size(1, 0.25) == 0);    /* nobody to copy */
    CHECK(rt_pbt_quantile_size(8, 0.0) == 0);
}

static void test_exploit(void)
{
    /* Ranking (max): 0.9 (1), 0.8 (7), 0.7 (5), 0.5 (2), 0.3 (3), 0.2 (6),
     * 0.1 (0), NaN (4): q = 2, bottom {0, 4}, top {1, 7}. */
    double v[8] = {0.1, 0.9, 0.5, 0.3, NAN, 0.7, 0.2, 0.8};
    int64_t ids[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    int donor[8], again[8], used[8] = {0};
    CHECK(rt_pbt_exploit(v, ids, 8, 0.25, 1, 11, 1, donor) == 2);
    for (int i = 0; i < 8; i++) {
        int bottom = i == 0 || i == 4;
        CHECK_MSG(bottom ? donor[i] == 1 || donor[i] == 7 : donor[i] == -1, "trial %d: %d", i,
                  donor[i]);
    }
    CHECK(rt_pbt_exploit(v, ids, 8, 0.25, 1, 11, 1, again) == 2);
    CHECK(!memcmp(donor, again, sizeof donor));   /* a function of (seed, trial, round) */
    for (int round = 0; round < 200; round++) {   /* each top trial is drawn */
        rt_pbt_exploit(v, ids, 8, 0.25, 1, 11, round, donor);
        used[donor[0]]++;
    }
    CHECK_MSG(used[1] > 60 && used[7] > 60 && used[1] + used[7] == 200, "%d %d", used[1],
              used[7]);
    /* min: best 0.1 (0), 0.2 (6); worst NaN (4), then 0.9 (1). */
    CHECK(rt_pbt_exploit(v, ids, 8, 0.25, 0, 11, 1, donor) == 2);
    for (int i = 0; i < 8; i++) {
        int bottom = i == 4 || i == 1;
        CHECK_MSG(bottom ? donor[i] == 0 || donor[i] == 6 : donor[i] == -1, "min, trial %d: %d",
                  i, donor[i]);
    }
    /* Ties rank by trial: 4 equal values, q = 1: trial 3 (last) copies trial 0.
     * The ids need not be 0..n-1 nor sorted. */
    double same[4] = {0.5, 0.5, 0.5, 0.5};
    int64_t tid[4] = {30, 10, 20, 40};
    CHECK(rt_pbt_exploit(same, tid, 4, 0.25, 1, 3, 2, donor) == 1);
    CHECK(donor[3] == 1 && donor[0] == -1 && donor[1] == -1 && donor[2] == -1);
}

static double value_of(const char *assign)
{
    const char *eq = strchr(assign, '=');
    return eq ? strtod(eq + 1, NULL) : NAN;
}

/* optimizer.lr is a float key: its values are rounded to float (2^-24). */
static int near(double a, double b) { return fabs(a - b) <= 1e-6 * fabs(b); }

static void test_explore(void)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("optimizer = { lr = { loguniform = [1e-4, 0.5]; };\n"
          "              momentum = { choice = [0.0, 0.5, 0.9]; }; };\n"
          "train = { epochs = { randint = [2, 10]; }; };\n", f);
    fclose(f);
    rt_space *s = NULL;
    CHECK_OK(rt_space_load(&s, path, 0, NULL));
    if (!s)
        return;
    static char cur[RT_SPACE_MAX_DOMAINS][RT_SPACE_ASSIGN_MAX];
    static char out[RT_SPACE_MAX_DOMAINS][RT_SPACE_ASSIGN_MAX], again[RT_SPACE_MAX_DOMAINS][RT_SPACE_ASSIGN_MAX];
    snprintf(cur[0], sizeof cur[0], "optimizer.lr=0.01");
    snprintf(cur[1], sizeof cur[1], "optimizer.momentum=0.5");
    snprintf(cur[2], sizeof cur[2], "train.epochs=5");
    int up = 0, down = 0;
    for (int round = 0; round < 100; round++) {
        CHECK_OK(rt_space_explore(s, 9, 3, round, 0.0, cur, out));
        double lr = value_of(out[0]);
        up += near(lr, 0.012);
        down += near(lr, 0.008);
        CHECK_MSG(near(lr, 0.012) || near(lr, 0.008), "%s", out[0]);
        CHECK_MSG(!strcmp(out[1], "optimizer.momentum=0") || !strcmp(out[1], "optimizer.momentum=0.9") ||
                  !strcmp(out[1], "optimizer.momentum=0.0"), "%s", out[1]);
        CHECK_MSG(!strcmp(out[2], "train.epochs=6") || !strcmp(out[2], "train.epochs=4"), "%s",
                  out[2]);
        CHECK_OK(rt_space_explore(s, 9, 3, round, 0.0, cur, again));
        CHECK(!memcmp(out, again, 3 * sizeof out[0]));
    }
    CHECK_MSG(up > 20 && down > 20, "x1.2 %d times, x0.8 %d times", up, down);
    /* At the ends: kept inside the domain, a list value stays at its end. */
    snprintf(cur[0], sizeof cur[0], "optimizer.lr=0.45");
    snprintf(cur[1], sizeof cur[1], "optimizer.momentum=0.9");
    snprintf(cur[2], sizeof cur[2], "train.epochs=9");
    for (int round = 0; round < 100; round++) {
        CHECK_OK(rt_space_explore(s, 9, 4, round, 0.0, cur, out));
        double lr = value_of(out[0]);
        CHECK_MSG(lr < 0.5 && (near(lr, 0.36) || lr > 0.49), "%s", out[0]);
        CHECK_MSG(!strcmp(out[1], "optimizer.momentum=0.9") || !strcmp(out[1], "optimizer.momentum=0.5"),
                  "%s", out[1]);
        CHECK_MSG(!strcmp(out[2], "train.epochs=9") || !strcmp(out[2], "train.epochs=7"), "%s",
                  out[2]);
    }
    /* Resampling always: values from the whole domain, not x1.2 / x0.8. */
    int perturbed = 0;
    snprintf(cur[0], sizeof cur[0], "optimizer.lr=0.01");
    for (int round = 0; round < 100; round++) {
        CHECK_OK(rt_space_explore(s, 9, 5, round, 1.0, cur, out));
        double lr = value_of(out[0]), ep = value_of(out[2]);
        perturbed += near(lr, 0.012) || near(lr, 0.008);
        CHECK_MSG(lr >= 1e-4 && lr < 0.5, "%s", out[0]);
        CHECK_MSG(ep >= 2 && ep <= 9 && ep == floor(ep), "%s", out[2]);
    }
    CHECK_MSG(perturbed == 0, "%d resampled values look perturbed", perturbed);
    rt_space_free(s);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/pbt.cfg", tmpdir);
    test_quantile_size();
    test_exploit();
    test_explore();
    unlink(path);
    rmdir(tmpdir);
    return CHECK_DONE();
}
