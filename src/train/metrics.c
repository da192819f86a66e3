/* Evaluation metrics of the built-in loop, by the kind of loss (the loss
 * table's rt_loss_metrics):
 *   classify:   val_loss, val_accuracy (argmax equals the label)
 *   regress:    val_loss, val_mse, val_rmse, val_mae, val_r2
 *   multilabel: val_loss, val_accuracy (each output: logit > 0 equals
 *               target > 0.5, over all outputs)
 * Each rank adds sums over its samples; the caller all-reduces them once,
 * so the values are exact global ones (every test sample counted once).
 * Regression sums are per output: squared and absolute errors, sum and sum
 * of squares of the targets; r2 is scikit-learn's r2_score with its
 * default uniform average over outputs, 1 - SSE / SST per output. With
 * data.standardize_target the model sees standardised targets; the sums
 * are turned back into the targets' own units here (errors scale with
 * the std, the targets' sums also shift by the mean), so val_mse and
 * val_rmse compare directly with a model trained on raw targets. */
#include <math.h>
#include <string.h>
#include "trainer.h"

#define SUMS_PER_OUTPUT 5   /* the backend's target_sums layout */

rt_status eval_sums_init(eval_sums *e, const trainer *t)
{
    memset(e, 0, sizeof *e);
    e->kind = rt_loss_metric_kind(t->loss);
    e->outputs = (int)rt_shape_size(rt_model_output_shape(t->model));
    e->count = e->kind == RT_METRICS_CLASSIFY ? 3 : 2 + SUMS_PER_OUTPUT * (size_t)e->outputs;
    return rt_alloc(&e->v, e->count, sizeof *e->v, "evaluation sums");
}

void eval_sums_free(eval_sums *e)
{
    rt_free(e->v);
    e->v = NULL;
}

void eval_sums_clear(eval_sums *e) { memset(e->v, 0, e->count * sizeof *e->v); }

rt_status eval_sums_add(eval_sums *e, trainer *t, const rt_batch *b)
{
    double loss = 0.0;
    int64_t correct = 0;
    RT_CHECK(rt_model_loss(t->model, t->loss, b->target, b->n, &loss, &correct));
    e->v[0] += loss;
    e->v[1] += b->n;
    if (e->kind == RT_METRICS_CLASSIFY) {
        e->v[2] += (double)correct;
        return RT_OK;
    }
    return rt_model_target_sums(t->model, b->target, b->n, e->v + 2);
}

/* Output j's sums in the targets' own units (see the file comment). */
static void output_sums(const trainer *t, const double *raw, double n, int j, double out[4])
{
    double sse = raw[0], sae = raw[1], sy = raw[2], syy = raw[3];
    const trainer_preprocess *p = &t->pre;
    if (p->ny > 0) {
        size_t width = p->nx + p->ny;
        double mu = p->stats[p->nx + (size_t)j], sd = p->stats[width + p->nx + (size_t)j];
        sse *= sd * sd;
        sae *= sd;
        syy = sd * sd * syy + 2 * sd * mu * sy + n * mu * mu;
        sy = sd * sy + n * mu;
    }
    out[0] = sse;
    out[1] = sae;
    out[2] = sy;
    out[3] = syy;
}

static void regression_metrics(const trainer *t, const eval_sums *e, double n, double *mse,
                               double *mae, double *r2)
{
    double sse = 0, sae = 0, r2_sum = 0;
    for (int j = 0; j < e->outputs; j++) {
        double s[4];
        output_sums(t, e->v + 2 + SUMS_PER_OUTPUT * (size_t)j, n, j, s);
        sse += s[0];
        sae += s[1];
        double sst = s[3] - s[2] * s[2] / n;
        /* scikit-learn: a constant target gives 1 for a perfect fit, else 0. */
        r2_sum += sst > 0 ? 1.0 - s[0] / sst : (s[0] == 0 ? 1.0 : 0.0);
    }
    *mse = sse / (n * e->outputs);
    *mae = sae / (n * e->outputs);
    *r2 = r2_sum / e->outputs;
}

void eval_metrics(const trainer *t, const eval_sums *e, rt_metric *m, int *count)
{
    double n = e ? e->v[1] : 0.0;
    int have = e && n > 0;
    m[(*count)++] = (rt_metric){"val_loss", have ? e->v[0] / n : NAN};
    rt_loss_metrics kind = rt_loss_metric_kind(t->loss);
    if (kind == RT_METRICS_REGRESS) {
        double mse = NAN, mae = NAN, r2 = NAN;
        if (have)
            regression_metrics(t, e, n, &mse, &mae, &r2);
        m[(*count)++] = (rt_metric){"val_mse", mse};
        m[(*count)++] = (rt_metric){"val_rmse", sqrt(mse)};
        m[(*count)++] = (rt_metric){"val_mae", mae};
        m[(*count)++] = (rt_metric){"val_r2", r2};
        return;
    }
    double accuracy = NAN;
    if (have && kind == RT_METRICS_CLASSIFY)
        accuracy = e->v[2] / n;
    if (have && kind == RT_METRICS_MULTILABEL) {
        double right = 0;
        for (int j = 0; j < e->outputs; j++)
            right += e->v[2 + SUMS_PER_OUTPUT * (size_t)j + 4];
        accuracy = right / (n * e->outputs);
    }
    m[(*count)++] = (rt_metric){"val_accuracy", accuracy};
}
