/* Retention property test: rt_ckpt_retention_select against a reference
 * written the plain way (count how many checkpoints beat each one) over
 * random metric sequences with ties, NaN, +-Inf and missing scores, for
 * K in {1, 2, 5, all} and both score orders, plus recency-only retention.
 * Exact comparisons: the selection is discrete. */
#include <math.h>
#include <string.h>
#include "check.h"
#include "rtrain/ckpt.h"

enum { TRIALS = 4000, MAX_N = 40 };

/* 1 if a beats b under the documented rule. */
static int beats(const rt_ckpt_score *a, const rt_ckpt_score *b, int by_score, int min)
{
    if (by_score) {
        int ua = a->has_score && a->score == a->score;   /* NaN != NaN */
        int ub = b->has_score && b->score == b->score;
        if (ua && !ub)
            return 1;
        if (ub && !ua)
            return 0;
        if (ua && ub) {
            if (min ? a->score < b->score : a->score > b->score)
                return 1;
            if (a->score != b->score)
                return 0;
        }
    }
    return a->sequence > b->sequence;   /* ties: newer wins */
}

static void reference(const rt_ckpt_score *e, int n, const rt_ckpt_policy *p, int *keep)
{
    int by_score = p->score_attribute && p->score_attribute[0];
    int min = p->score_order == RT_CKPT_SCORE_MIN;
    int64_t newest = e[0].sequence;
    for (int i = 0; i < n; i++)
        if (e[i].sequence > newest)
            newest = e[i].sequence;
    for (int i = 0; i < n; i++) {
        int better = 0;
        for (int j = 0; j < n; j++)
            better += j != i && beats(&e[j], &e[i], by_score, min);
        keep[i] = p->num_to_keep == 0 || better < p->num_to_keep ||
                  e[i].sequence == newest;
    }
}

int main(void)
{
    rt_rng rng;
    rt_rng_init(&rng, rt_rng_key(2024, 5, 0, 0));
    static const double values[] = {0.1, 0.2, 0.2, 0.3, 0.5, 0.5, -1.0, INFINITY, -INFINITY};
    static const int ks[] = {1, 2, 5, 0};
    int mismatches = 0;
    for (int t = 0; t < TRIALS; t++) {
        rt_ckpt_score e[MAX_N];
        int n = 1 + (int)rt_rng_below(&rng, MAX_N);
        /* Iterations increase with gaps (retention has removed some). */
        int64_t it = 1 + rt_rng_below(&rng, 3);
        for (int i = 0; i < n; i++) {
            uint32_t kind = rt_rng_below(&rng, 10);
            e[i].sequence = it;
            it += 1 + rt_rng_below(&rng, 3);
            e[i].has_score = kind != 0;                       /* 10% missing */
            e[i].score = kind == 1 ? NAN                      /* 10% NaN */
                         : values[rt_rng_below(&rng, sizeof values / sizeof values[0])];
        }
        /* Shuffle: the function must not rely on the input order. */
        for (int i = n - 1; i > 0; i--) {
            int j = (int)rt_rng_below(&rng, (uint32_t)i + 1);
            rt_ckpt_score tmp = e[i];
            e[i] = e[j];
            e[j] = tmp;
        }
        for (size_t k = 0; k < sizeof ks / sizeof ks[0]; k++) {
            for (int variant = 0; variant < 3; variant++) {
                rt_ckpt_policy p = {.num_to_keep = ks[k],
                                    .score_attribute = variant == 2 ? NULL : "val_accuracy",
                                    .score_order = variant == 1 ? RT_CKPT_SCORE_MIN
                                                                : RT_CKPT_SCORE_MAX};
                int got[MAX_N], want[MAX_N];
                rt_ckpt_retention_select(e, n, &p, got);
                reference(e, n, &p, want);
                int kept = 0, newest = 0;
                for (int i = 0; i < n; i++) {
                    kept += got[i];
                    if (e[i].sequence > e[newest].sequence)
                        newest = i;
                }
                CHECK(got[newest] == 1);
                if (memcmp(got, want, (size_t)n * sizeof got[0]) != 0 && mismatches++ < 5)
                    fprintf(stderr, "trial %d K=%d variant %d n=%d: selection differs\n", t,
                            ks[k], variant, n);
                CHECK(memcmp(got, want, (size_t)n * sizeof got[0]) == 0);
                /* K (+1 for the newest when it is not among the K best), or all. */
                int cap = ks[k] == 0 || ks[k] >= n ? n : ks[k] + 1;
                CHECK(kept <= cap && kept >= (ks[k] == 0 || ks[k] >= n ? n : ks[k]));
            }
        }
    }
    /* Two hand-made cases, so a wrong reference cannot hide a wrong rule. */
    rt_ckpt_score h[4] = {{1, 1, 0.9}, {2, 1, NAN}, {3, 0, 0}, {4, 1, 0.9}};
    rt_ckpt_policy p = {.num_to_keep = 1, .score_attribute = "acc"};
    int keep[4];
    rt_ckpt_retention_select(h, 4, &p, keep);
    CHECK(keep[0] == 0 && keep[1] == 0 && keep[2] == 0 && keep[3] == 1);  /* tie: newer wins */
    h[3].score = 0.1;
    rt_ckpt_retention_select(h, 4, &p, keep);
    CHECK(keep[0] == 1 && keep[1] == 0 && keep[2] == 0 && keep[3] == 1);  /* best + newest */
    p.score_order = RT_CKPT_SCORE_MIN;
    rt_ckpt_retention_select(h, 4, &p, keep);
    CHECK(keep[0] == 0 && keep[1] == 0 && keep[2] == 0 && keep[3] == 1);
    p.score_attribute = NULL;
    p.num_to_keep = 2;
    rt_ckpt_retention_select(h, 4, &p, keep);
    CHECK(keep[0] == 0 && keep[1] == 0 && keep[2] == 1 && keep[3] == 1);  /* recency */
    return CHECK_DONE();
}
