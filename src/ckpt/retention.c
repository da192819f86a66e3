/* The one ranking of checkpoints, best first, used both by retention
 * (which ones a run keeps) and by rtrain-results and the final summary
 * (which one is shown as best), so the two never disagree; and the
 * retention rule on top of it. No MPI: rtrain-results compiles this file
 * into its MPI-free program. */
#include <math.h>
#include <stdlib.h>
#include "rtrain/ckpt.h"

typedef struct rank_ctx { const rt_ckpt_score *e; int by_score, min; } rank_ctx;

static int has_usable_score(const rt_ckpt_score *s) { return s->has_score && !isnan(s->score); }

/* Best first: usable scores before NaN/missing ones, better scores first,
 * then newer (a higher commit sequence) first. */
static int cmp_rank(const void *a, const void *b, void *arg)
{
    const rank_ctx *c = arg;
    const rt_ckpt_score *x = &c->e[*(const int *)a], *y = &c->e[*(const int *)b];
    if (c->by_score) {
        int ux = has_usable_score(x), uy = has_usable_score(y);
        if (ux != uy)
            return uy - ux;
        if (ux && x->score != y->score)
            return (x->score > y->score) == !c->min ? -1 : 1;
    }
    return (x->sequence < y->sequence) - (x->sequence > y->sequence);
}

void rt_ckpt_rank(const rt_ckpt_score *entries, int n, int by_score, rt_ckpt_score_order order,
                  int *ranked)
{
    for (int i = 0; i < n; i++)
        ranked[i] = i;
    rank_ctx c = {entries, by_score, order == RT_CKPT_SCORE_MIN};
    if (n > 1)
        qsort_r(ranked, (size_t)n, sizeof *ranked, cmp_rank, &c);
}

void rt_ckpt_retention_select(const rt_ckpt_score *entries, int n, const rt_ckpt_policy *policy,
                              int *keep)
{
    if (n <= 0)
        return;
    int newest = 0;
    for (int i = 0; i < n; i++) {
        keep[i] = 1;
        if (entries[i].sequence > entries[newest].sequence)
            newest = i;
    }
    if (!policy || policy->num_to_keep <= 0 || policy->num_to_keep >= n)
        return;
    int *order = NULL;
    if (rt_alloc(&order, (size_t)n, sizeof *order, "retention order") != RT_OK) {
        rt_error_clear();   /* keeping everything is the safe answer */
        return;
    }
    rt_ckpt_rank(entries, n, policy->score_attribute && policy->score_attribute[0],
                 policy->score_order, order);
    for (int r = policy->num_to_keep; r < n; r++)
        keep[order[r]] = 0;
    keep[newest] = 1;   /* the newest committed checkpoint is never deleted */
    rt_free(order);
}
