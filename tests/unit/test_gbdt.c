/* The gbdt trainer's own arithmetic: the exact AUC across shards
 * (src/gbdt/metrics.c) against its definition, the probability that a
 * random positive scores above a random negative, ties counting one half
 * (what sklearn's roc_auc_score computes), over every pair. Scores are
 * drawn from a few values so that ties are common. The two sums are of
 * halves and integers, exact in double: they must agree to rounding of
 * one division (1e-12). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "gbdt/internal.h"

static double auc_by_pairs(const gbdt_scored *v, int n)
{
    double wins = 0, pos = 0, neg = 0;
    for (int i = 0; i < n; i++) {
        pos += v[i].label > 0.5f;
        neg += v[i].label <= 0.5f;
        for (int j = 0; j < n; j++)
            if (v[i].label > 0.5f && v[j].label <= 0.5f)
                wins += v[i].score > v[j].score ? 1.0 : v[i].score == v[j].score ? 0.5 : 0.0;
    }
    return pos && neg ? wins / (pos * neg) : NAN;
}

int main(void)
{
    int failures = 0;
    rt_rng rng;
    rt_rng_init(&rng, 7);
    for (int trial = 0; trial < 200; trial++) {
        int n = 1 + trial % 37, levels = 1 + trial % 5;
        gbdt_scored v[64], copy[64];
        for (int i = 0; i < n; i++) {
            v[i].score = (float)(rt_rng_u32(&rng) % (uint32_t)levels) / (float)levels;
            v[i].label = (float)(rt_rng_u32(&rng) % 2);
            copy[i] = v[i];
        }
        double want = auc_by_pairs(v, n), got = gbdt_auc(copy, n);
        int same = isnan(want) ? isnan(got) : fabs(got - want) <= 1e-12;
        if (!same) {
            fprintf(stderr, "FAIL: trial %d (%d rows): auc %.17g, by pairs %.17g\n", trial, n,
                    got, want);
            failures++;
        }
    }
    if (failures)
        return 1;
    printf("gbdt auc: 200 cases agree with the pairwise definition\n");
    return 0;
}
