/* The report hooks of ASHA (both variants) and median stopping
 * (src/tune/internal.h; the rules themselves are in asha.c). A hook runs
 * on every rank of the trial after each report; only the trial's rank 0
 * (h->judge) decides, and rt_report agrees on its answer.
 *
 * ASHA (tune.scheduler = "asha"): after each report the judge looks for a
 * rung due; the values other trials recorded there come from their
 * trial_<t>/tune_rungs.json (each written only by its own trial,
 * atomically), the decision is taken, and the trial's own value and
 * decision are added to its file. The decision is recorded before the
 * checkpoint of that report is saved: a trial killed in between reports
 * that iteration again after its resume, and then gets the recorded
 * decision back, never a second judgement.
 *
 * asha_promote: a trial pauses at each rung but the last (recorded PAUSED
 * with its rung); promotion is in claims.c.
 *
 * median: Ray's MedianStoppingRule on the trials' result.json files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run/runfiles.h"
#include "internal.h"

rt_asha tune_asha_of(const tune_experiment *e)
{
    return (rt_asha){.grace = e->base.tune.grace_period, .eta = e->base.tune.reduction_factor,
                     .max_t = e->base.tune.max_t > 0 ? e->base.tune.max_t
                                                     : e->base.train.epochs,
                     .maximize = tune_maximize(e)};
}

/* Trial t's tune_rungs.json ({"rungs": {"<iteration>": value},
 * "decisions": {"<iteration>": "go" | "stop" | "pause"}}), or an empty one. */
static json_t *read_rungs(const tune_experiment *e, int64_t t)
{
    json_t *rec = tune_read_trial_file(e, t, "tune_rungs.json");
    if (!rec)
        rec = json_object();
    if (!json_is_object(json_object_get(rec, "rungs")))
        json_object_set_new(rec, "rungs", json_object());
    if (!json_is_object(json_object_get(rec, "decisions")))
        json_object_set_new(rec, "decisions", json_object());
    return rec;
}

int tune_value_at(const tune_experiment *e, int64_t t, int rung, double *value)
{
    char key[32];
    snprintf(key, sizeof key, "%d", rung);
    json_t *rec = read_rungs(e, t), *v = json_object_get(json_object_get(rec, "rungs"), key);
    int has = json_is_number(v);
    if (has)
        *value = json_number_value(v);
    json_decref(rec);
    return has;
}

/* The values the other trials recorded at `rung`. */
static int others_at(const tune_experiment *e, int64_t self, int rung, double *values)
{
    int n = 0;
    for (int64_t t = 0; t < e->trials; t++)
        if (t != self && tune_value_at(e, t, rung, &values[n]))
            n++;
    return n;
}

/* The rung due at `iteration` (an index into rungs), given the rungs the
 * trial has a value at; -1: none. */
static int rung_due(const rt_asha *a, const json_t *mine, const int *rungs, int nr,
                    int iteration)
{
    int done[64] = {0};
    for (int k = 0; k < nr; k++) {
        char key[32];
        snprintf(key, sizeof key, "%d", rungs[k]);
        done[k] = json_object_get(mine, key) != NULL;
    }
    return rt_asha_rung_due(a, iteration, done);
}

/* The decision recorded for the rung judged at `iteration`, if any: a
 * report made again after a resume gets it back. */
static const char *decided_at(const json_t *rec, int iteration)
{
    char key[32];
    snprintf(key, sizeof key, "%d", iteration);
    return json_string_value(json_object_get(json_object_get(rec, "judged_at"), key));
}

/* Stop (asha) or pause (asha_promote) at rung k? */
static int asha_decide(tune_hook *h, const rt_asha *a, const int *rungs, int nr, int k,
                       double value)
{
    const tune_experiment *e = h->e;
    if (e->scheduler == SCHED_ASHA_PROMOTE)   /* promotion decides, in claims.c */
        return k < nr - 1;
    double *others = malloc(((size_t)e->trials + 1) * sizeof *others);
    int n = others ? others_at(e, h->t, rungs[k], others) : 0;
    int stop = others && rt_asha_should_stop(a, value, others, n);
    free(others);
    return stop;
}

/* What the trial does now that `decision` was taken at rung `rung`. */
static int apply_decision(tune_hook *h, const char *decision, int rung, int iteration)
{
    if (!strcmp(decision, "stop"))
        h->out.stopped = iteration;
    if (!strcmp(decision, "pause"))
        h->out.paused = rung;
    return strcmp(decision, "go") != 0;
}

static int asha_judge(void *arg, const rt_metric *m, int count, int iteration)
{
    tune_hook *h = arg;
    const tune_experiment *e = h->e;
    double value = NAN;
    for (int i = 0; i < count; i++)
        if (!strcmp(m[i].name, e->base.tune.metric))
            value = m[i].value;
    if (!h->judge || isnan(value))
        return 0;   /* a report without the metric is not judged */
    rt_asha a = tune_asha_of(e);
    int rungs[64], nr = rt_asha_rungs(&a, rungs, 64);
    json_t *rec = read_rungs(e, h->t), *mine = json_object_get(rec, "rungs");
    const char *again = decided_at(rec, iteration);
    int k = again ? -1 : rung_due(&a, mine, rungs, nr, iteration);
    int rung = again ? (int)json_integer_value(json_object_get(rec, "last_rung")) : 0;
    if (again || k < 0) {
        int stop = again ? apply_decision(h, again, rung, iteration) : 0;
        json_decref(rec);
        return stop;
    }
    int stop = asha_decide(h, &a, rungs, nr, k, value);
    const char *decision = !stop ? "go" : e->scheduler == SCHED_ASHA_PROMOTE ? "pause" : "stop";
    char key[32], at[32];
    snprintf(key, sizeof key, "%d", rungs[k]);
    snprintf(at, sizeof at, "%d", iteration);
    json_object_set_new(mine, key, json_real(value));
    json_object_set_new(json_object_get(rec, "decisions"), key, json_string(decision));
    if (!json_is_object(json_object_get(rec, "judged_at")))
        json_object_set_new(rec, "judged_at", json_object());
    json_object_set_new(json_object_get(rec, "judged_at"), at, json_string(decision));
    json_object_set_new(rec, "last_rung", json_integer(rungs[k]));
    if (stop)
        json_object_set_new(rec, e->scheduler == SCHED_ASHA_PROMOTE ? "paused_at" : "stopped_at",
                            json_integer(rungs[k]));
    if (tune_write_trial_file(e, h->t, "tune_rungs.json", rec) != RT_OK) {
        fprintf(stderr, "rtrain-tune: warning: %s\n", rt_error_message());
        rt_error_clear();
    }
    json_decref(rec);
    return apply_decision(h, decision, rungs[k], iteration);
}

/* ---- median stopping -------------------------------------------------------------------- */

/* Trial t's values of the metric and their iterations (result.json). */
static int metric_rows(const tune_experiment *e, int64_t t, double **its, double **values)
{
    char dir[RT_PATH_MAX + 32];
    rt_run_rows rows;
    *its = *values = NULL;
    if (tune_trial_path(dir, sizeof dir, e, t, NULL) != RT_OK ||
        rt_runfiles_read_rows(&rows, dir) != RT_OK) {
        rt_error_clear();
        return 0;
    }
    size_t n = json_array_size(rows.rows), i;
    *its = malloc((n + 1) * sizeof **its);
    *values = malloc((n + 1) * sizeof **values);
    json_t *row;
    int k = 0;
    json_array_foreach(rows.rows, i, row) {
        json_t *v = json_object_get(row, e->base.tune.metric);
        if (*its && *values && json_is_number(v)) {
            (*its)[k] = json_number_value(json_object_get(row, "training_iteration"));
            (*values)[k++] = json_number_value(v);
        }
    }
    rt_runfiles_free_rows(&rows);
    return k;
}

static int median_judge(void *arg, const rt_metric *m, int count, int iteration)
{
    tune_hook *h = arg;
    const tune_experiment *e = h->e;
    (void)m;
    (void)count;
    if (!h->judge || iteration < e->base.tune.grace_period)
        return 0;
    int maximize = tune_maximize(e), n = 0;
    double *its, *values, best = NAN;
    int own = metric_rows(e, h->t, &its, &values);   /* this report included */
    for (int i = 0; i < own; i++)
        if (isnan(best) || (maximize ? values[i] > best : values[i] < best))
            best = values[i];
    free(its);
    free(values);
    double *means = malloc(((size_t)e->trials + 1) * sizeof *means);
    for (int64_t t = 0; means && t < e->trials; t++) {
        if (t == h->t)
            continue;
        int k = metric_rows(e, t, &its, &values);
        means[n++] = rt_median_running_mean(its, values, k, e->base.tune.grace_period,
                                             iteration);
        free(its);
        free(values);
    }
    int stop = means && rt_median_should_stop(best, means, n, TUNE_MEDIAN_MIN_SAMPLES, maximize);
    free(means);
    h->out.stopped = stop ? iteration : 0;
    return stop;
}

rt_report_hook tune_scheduler_hook(const tune_experiment *e)
{
    switch (e->scheduler) {
    case SCHED_ASHA:
    case SCHED_ASHA_PROMOTE: return asha_judge;
    case SCHED_MEDIAN: return median_judge;
    case SCHED_PBT: return tune_pbt_hook;
    default: return NULL;
    }
}
