/* The trials table of an experiment (rt_tune_run's summary): one row per
 * trial with its status, the values it took, its reports and the last and
 * best value of tune.metric, the best trial, and the same table as
 * STORAGE/NAME/experiment.csv. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run/runfiles.h"
#include "internal.h"

enum { TABLE_FIXED = 5, MAX_TABLE_COLS = TABLE_FIXED + RT_SPACE_MAX_DOMAINS };

/* The last and the best (by metric and mode) value of `metric` in a run's
 * reports, and how many reports there were. */
static void trial_metric(const char *dir, const char *metric, int maximize, double *last,
                         double *best, long *iterations)
{
    rt_run_rows rows;
    *last = *best = NAN;
    *iterations = 0;
    if (rt_runfiles_read_rows(&rows, dir) != RT_OK) {
        rt_error_clear();
        return;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows.rows, i, row) {
        json_t *v = json_object_get(row, metric);
        (*iterations)++;
        if (!json_is_number(v))
            continue;
        *last = json_number_value(v);
        if (isnan(*best) || (maximize ? *last > *best : *last < *best))
            *best = *last;
    }
    rt_runfiles_free_rows(&rows);
}

/* One row of the table for trial t into cells (strings owned by `store`). */
static void trial_row(const tune_experiment *e, int64_t t, char (*store)[96], const char **cells,
                      double *best_out)
{
    char dir[RT_PATH_MAX + 32];
    json_t *rec = tune_read_trial_file(e, t, "tune_trial.json");
    int nd = rt_space_num_domains(e->space), maximize = tune_maximize(e);
    if (tune_trial_path(dir, sizeof dir, e, t, NULL) != RT_OK)
        rt_error_clear();
    double last, best;
    long its;
    trial_metric(dir, e->base.tune.metric, maximize, &last, &best, &its);
    const char *status = rec ? json_string_value(json_object_get(rec, "status")) : NULL;
    /* A trial ASHA stopped competes with what it reached. */
    *best_out = status && strcmp(status, "ERROR") != 0 ? best : NAN;
    snprintf(store[0], 96, "trial_%05lld", (long long)t);
    snprintf(store[1], 96, "%s", rec ? json_string_value(json_object_get(rec, "status"))
                                 : its > 0 ? "RUNNING" : "PENDING");
    for (int i = 0; i < nd; i++) {
        json_t *v = rec ? json_object_get(json_object_get(rec, "values"),
                                          rt_space_domain_key(e->space, i)) : NULL;
        snprintf(store[2 + i], 96, "%s", json_is_string(v) ? json_string_value(v) : "");
    }
    snprintf(store[2 + nd], 96, "%ld", its);
    rt_runfiles_format_number(store[3 + nd], 96, last);
    rt_runfiles_format_number(store[4 + nd], 96, best);
    for (int c = 0; c < TABLE_FIXED + nd; c++)
        cells[c] = store[c];
    json_decref(rec);
}

/* experiment.csv: the table's cells (rt_runfiles_csv_cell quoting). */
static rt_status write_csv(const tune_experiment *e, const char **cells, int rows, int cols)
{
    char path[RT_PATH_MAX + 32], cell[1024];
    size_t size = 1, used = 0;
    for (int i = 0; i < rows * cols; i++)
        size += 2 * strlen(cells[i]) + 4;
    char *text = malloc(size);
    if (!text)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory for experiment.csv");
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            rt_runfiles_csv_cell(cell, sizeof cell, cells[r * cols + c]);
            used += (size_t)snprintf(text + used, size - used, "%s%s", cell,
                                     c + 1 < cols ? "," : "\n");
        }
    rt_status st = rt_fs_path(path, sizeof path, "%s/experiment.csv", e->dir);
    if (st == RT_OK)
        st = rt_fs_write_shared(path, text, 0644);   /* every task of an array writes it */
    free(text);
    return st;
}

rt_status tune_print_table(const tune_experiment *e, FILE *out)
{
    int nd = rt_space_num_domains(e->space), cols = TABLE_FIXED + nd;
    int64_t rows = e->trials + 1;
    char (*store)[96] = calloc((size_t)(rows * cols), sizeof *store);
    const char **cells = calloc((size_t)(rows * cols), sizeof *cells);
    if (!store || !cells) {
        free(store);
        free(cells);
        return RT_ERROR(RT_ERR_NOMEM, "out of memory for the trials table");
    }
    const char *head[MAX_TABLE_COLS] = {"trial", "status"};
    for (int i = 0; i < nd; i++)
        head[2 + i] = rt_space_domain_key(e->space, i);
    head[2 + nd] = "iterations";
    head[3 + nd] = "last";
    head[4 + nd] = "best";
    memcpy(cells, head, (size_t)cols * sizeof *cells);
    int64_t best_trial = -1;
    double best = NAN;
    int maximize = tune_maximize(e);
    for (int64_t t = 0; t < e->trials; t++) {
        double b;
        trial_row(e, t, store + (t + 1) * cols, cells + (t + 1) * cols, &b);
        if (!isnan(b) && (isnan(best) || (maximize ? b > best : b < best))) {
            best = b;
            best_trial = t;
        }
    }
    if (out) {
        fprintf(out, "\nexperiment %s: %s (%s)\n", e->dir, e->base.tune.metric,
                e->base.tune.mode);
        rt_runfiles_print_table(out, cells, (int)rows, cols);
    }
    if (out && best_trial >= 0)
        fprintf(out, "best: trial_%05lld, %s %s %.6g\n", (long long)best_trial, e->base.tune.metric,
               maximize ? "max" : "min", best);
    rt_status st = write_csv(e, cells, (int)rows, cols);
    free(store);
    free(cells);
    return st;
}
