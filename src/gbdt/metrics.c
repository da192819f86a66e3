/* src/gbdt/metrics.c — global evaluation metrics from the library's
 * predictions on every rank's evaluation rows.
 *
 * The libraries' own metrics are per rank (LightGBM) or computed inside
 * their network (XGBoost); rtrain computes the same ones itself so both
 * libraries report the same thing: sums per rank, all-reduced once (rmse,
 * mae, logloss, error, mlogloss, merror), and AUC from every rank's
 * (score, label) pairs gathered on every rank, since a rank order is not
 * a sum. Definitions as XGBoost's and sklearn's: probabilities clipped to
 * [1e-15, 1 - 1e-15] in the log losses, error = (p > 0.5) != label,
 * merror = argmax != label. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define LOG_EPS 1e-15

static double clip(double p)
{
    return p < LOG_EPS ? LOG_EPS : p > 1 - LOG_EPS ? 1 - LOG_EPS : p;
}

/* sums[0] = rows; then per task: se, ae | logloss, errors | mlogloss, errors. */
static void add_sums(const gbdt_trainer *g, const float *pred, double *sums)
{
    const rt_gbdt_shard *v = &g->valid.shard;
    int k = g->num_class;
    for (int64_t i = 0; i < v->rows; i++) {
        double y = v->label[i];
        sums[0] += 1;
        if (g->task == RT_GBDT_TASK_REGRESSION) {
            double d = pred[i] - y;
            sums[1] += d * d;
            sums[2] += fabs(d);
        } else if (g->task == RT_GBDT_TASK_BINARY) {
            double p = clip(pred[i]);
            sums[1] -= y * log(p) + (1 - y) * log(1 - p);
            sums[2] += (pred[i] > 0.5f) != (y > 0.5);
        } else {
            const float *p = pred + i * k;
            int best = 0;
            for (int c = 1; c < k; c++)
                if (p[c] > p[best])
                    best = c;
            sums[1] -= log(clip(p[(int)y]));
            sums[2] += best != (int)y;
        }
    }
}

static int cmp_scored(const void *a, const void *b)
{
    float x = ((const gbdt_scored *)a)->score, y = ((const gbdt_scored *)b)->score;
    return (x > y) - (x < y);
}

double gbdt_auc(gbdt_scored *v, int64_t n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_scored);
    double pos = 0, rank_sum = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        double npos = 0;
        while (j < n && v[j].score == v[i].score)
            npos += v[j++].label > 0.5f;
        /* ranks i+1 .. j share their mean */
        rank_sum += npos * (double)(i + 1 + j) / 2.0;
        pos += npos;
        i = j;
    }
    double neg = (double)n - pos;
    if (pos == 0 || neg == 0)
        return NAN;
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg);
}

/* Every rank's (score, label) pairs on every rank, then the AUC. */
static rt_status global_auc(gbdt_trainer *g, const float *pred, double *auc)
{
    const rt_gbdt_shard *v = &g->valid.shard;
    size_t *counts = NULL, *displs = NULL;
    gbdt_scored *all = NULL;
    rt_status st = rt_alloc(&counts, (size_t)g->world * 2, sizeof(size_t), "AUC counts");
    if (st == RT_OK)
        st = rt_alloc(&all, (size_t)(v->global_rows ? v->global_rows : 1), sizeof *all,
                      "AUC scores");
    st = rt_comm_agree(g->comm, st);   /* nobody gathers alone */
    if (st == RT_OK) {
        displs = counts + g->world;
        for (int r = 0; r < g->world; r++) {   /* the rows of shard r, as floats */
            int64_t b = v->global_rows * r / g->world, e = v->global_rows * (r + 1) / g->world;
            displs[r] = (size_t)b * 2;
            counts[r] = (size_t)(e - b) * 2;
        }
        for (int64_t i = 0; i < v->rows; i++)
            all[v->first_row + i] = (gbdt_scored){pred[i], v->label[i]};
        st = rt_comm_allgatherv(g->comm, all, counts, displs, RT_DTYPE_FLOAT32);
    }
    if (st == RT_OK)
        *auc = gbdt_auc(all, v->global_rows);
    rt_free(counts);
    rt_free(all);
    return st;
}

rt_status gbdt_eval_metrics(gbdt_trainer *g, rt_metric *m, int *count)
{
    const rt_gbdt_shard *v = &g->valid.shard;
    if (v->global_rows == 0 || g->task == RT_GBDT_TASK_UNKNOWN)
        return RT_OK;
    float *pred = NULL;
    double sums[3] = {0, 0, 0};
    size_t n = (size_t)(v->rows ? v->rows : 1) * (size_t)g->num_class;
    rt_status st = rt_alloc(&pred, n, sizeof(float), "evaluation predictions");
    if (st == RT_OK)
        st = g->lib->predict(g->booster, v, pred);
    if (st == RT_OK)
        add_sums(g, pred, sums);
    st = rt_session_agree(g->session, st);
    if (st == RT_OK)
        st = rt_comm_allreduce(g->comm, sums, 3, RT_DTYPE_FLOAT64, RT_REDUCE_SUM);
    double auc = NAN;
    if (st == RT_OK && g->task == RT_GBDT_TASK_BINARY)
        st = global_auc(g, pred, &auc);   /* agreed inside */
    rt_free(pred);
    RT_CHECK(st);
    if (g->task == RT_GBDT_TASK_REGRESSION) {
        m[(*count)++] = (rt_metric){"val_rmse", sqrt(sums[1] / sums[0])};
        m[(*count)++] = (rt_metric){"val_mae", sums[2] / sums[0]};
    } else if (g->task == RT_GBDT_TASK_BINARY) {
        m[(*count)++] = (rt_metric){"val_logloss", sums[1] / sums[0]};
        m[(*count)++] = (rt_metric){"val_error", sums[2] / sums[0]};
        m[(*count)++] = (rt_metric){"val_auc", auc};
    } else {
        m[(*count)++] = (rt_metric){"val_mlogloss", sums[1] / sums[0]};
        m[(*count)++] = (rt_metric){"val_merror", sums[2] / sums[0]};
    }
    return RT_OK;
}
