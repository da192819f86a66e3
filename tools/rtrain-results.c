/* rtrain-results: what a run produced (Ray Train's Result), read from its
 * run directory without MPI, so it works on a login node while the run is
 * still going, after it failed, and on a copy of the directory.
 *
 *   rtrain-results RUN_DIR              the Result
 *   rtrain-results RUN_DIR RUN_DIR...   one comparison table
 *   rtrain-results EXPERIMENT_DIR       rtrain-tune's trials (Ray Tune's
 *                                       ResultGrid): statuses, the values each
 *                                       took, ASHA's rung cutoffs, the best
 *   rtrain-results --best [--scope S] [--overrides] EXPERIMENT_DIR
 *   rtrain-results --csv | --json | --best | --plot FILE.svg ... RUN_DIR...
 *
 * Exit codes: 0 done; 1 nothing to show (--best without a scored
 * checkpoint or trial, an unreadable file); 2 usage error or a path that is
 * not a run directory. */
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rtrain/tune.h"
#include "run/runfiles.h"
#include "svgplot.h"

#define MAX_METRICS 16

/* Ray Tune's get_best_result scopes over a trial's values of the metric:
 * the mean of the last `last` of them, or (best) the best of them all. */
typedef struct scope {
    const char *name;
    int last, best;
} scope;

static const scope scopes[] = {
    {"last", 1, 0}, {"avg", INT_MAX, 0}, {"all", 0, 1}, {"last-5-avg", 5, 0},
    {"last-10-avg", 10, 0},
};

typedef struct options {
    int csv, json, best;
    int overrides;        /* --best --overrides: the best trial's values */
    const scope *scope;   /* --scope, NULL: not given ("last") */
    int experiment;       /* the argument is an rtrain-tune experiment */
    const char *plot;
    const char *metrics[MAX_METRICS];
    int nmetrics;
    const char *mode;
    long tail;            /* 0: all reports */
} options;

typedef struct run_info {
    const char *arg;      /* the directory as given */
    char path[PATH_MAX];  /* absolute */
    rt_run_rows rows;
    json_t *params, *index;
    rt_ckpt_ranking ckpts;
    char *error;          /* error.txt, or NULL */
    int restarts;
    const char *status;
    json_t *tune;         /* tune_trial.json of an rtrain-tune trial, or NULL */
    json_t *rungs;        /* its tune_rungs.json (ASHA), or NULL */
    char label[80];       /* legend of its curves in an experiment's --plot */
    int dashed;           /* its curves dashed: the scheduler cut it short */
} run_info;

enum { MAX_VALUE_KEYS = 32 };   /* searched keys shown (rtrain/tune.h) */

static const char *const default_metrics[] = {"train_loss", "val_loss", "val_accuracy"};

static void usage(FILE *f)
{
    fputs("usage: rtrain-results [options] RUN_DIR...\n"
          "       rtrain-results [options] EXPERIMENT_DIR\n"
          "Shows what an rtrain run produced: status, last metrics, checkpoints, error,\n"
          "restarts. With several run directories: one comparison table.\n"
          "An rtrain-tune experiment directory: its trials table (status, the values\n"
          "each took, iterations, last and best of tune.metric), for ASHA the rung\n"
          "cutoffs, the best trial and the errors. Trial status: PENDING (nothing\n"
          "reported yet), RUNNING (reports, no outcome yet), else as rtrain-tune\n"
          "recorded it: PAUSED, TERMINATED, STOPPED (stopped early), ERROR.\n"
          "  --csv            every report as CSV (a 'run' column with several runs;\n"
          "                   an experiment's also 'status' and the trial's values)\n"
          "  --json           the Result as JSON (an array with several runs, with\n"
          "                   'values' for trials of an experiment)\n"
          "  --best           only the path of the best checkpoint (exit 1 if none);\n"
          "                   of an experiment: the best trial's directory by\n"
          "                   tune.metric/tune.mode or --metric/--mode (ERROR trials\n"
          "                   never win; exit 1 if no trial reported the metric)\n"
          "  --scope S        with --best on an experiment, which of a trial's values\n"
          "                   count, as Ray Tune's get_best_result: last (default),\n"
          "                   avg, all (its best), last-5-avg, last-10-avg\n"
          "  --overrides      with --best on an experiment: the best trial's values as\n"
          "                   key=value overrides, one per line, for rtrain CONFIG ...\n"
          "  --metric M       metric for best checkpoints, comparison and --plot\n"
          "                   (repeat or comma-separate for several; default: the\n"
          "                   run's checkpoint.score_attribute; for --plot\n"
          "                   train_loss, val_loss, val_accuracy; for an experiment\n"
          "                   tune.metric)\n"
          "  --mode min|max   whether lower or higher M is better (default: the run's\n"
          "                   checkpoint.score_order; for an experiment tune.mode)\n"
          "  --plot FILE.svg  draw the metrics against epoch into an SVG file (of an\n"
          "                   experiment: every trial's tune.metric, dashed when the\n"
          "                   scheduler stopped or paused it)\n"
          "  --tail N         only the last N reports (default output, --csv, --json)\n"
          "Status: TERMINATED (all epochs reported), ERROR (error.txt written),\n"
          "RUNNING (neither: still going, or stopped before the end).\n"
          "Exit codes: 0 ok, 1 nothing to show, 2 usage error or not a run directory.\n", f);
}

/* ---- options ------------------------------------------------------------------- */

static int add_metrics(options *o, char *list)
{
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (o->nmetrics == MAX_METRICS) {
            fprintf(stderr, "rtrain-results: at most %d metrics\n", MAX_METRICS);
            return -1;
        }
        o->metrics[o->nmetrics++] = tok;
    }
    return 0;
}

static int set_scope(options *o, const char *name)
{
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (!strcmp(scopes[i].name, name)) {
            o->scope = &scopes[i];
            return 0;
        }
    fprintf(stderr, "rtrain-results: --scope must be last, avg, all, last-5-avg or "
            "last-10-avg, not '%s'\n", name);
    return -1;
}

/* Returns the index of the first run directory, or -1 after a message. */
static int parse_options(options *o, int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "--csv")) {
            o->csv = 1;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--best")) {
            o->best = 1;
        } else if (!strcmp(a, "--overrides")) {
            o->overrides = 1;
        } else if (!strcmp(a, "--scope") && has_value) {
            if (set_scope(o, argv[++i]) != 0)
                return -1;
        } else if (!strcmp(a, "--metric") && has_value) {
            if (add_metrics(o, argv[++i]) != 0)
                return -1;
        } else if (!strcmp(a, "--mode") && has_value) {
            o->mode = argv[++i];
            if (strcmp(o->mode, "min") && strcmp(o->mode, "max")) {
                fprintf(stderr, "rtrain-results: --mode must be min or max, not '%s'\n", o->mode);
                return -1;
            }
        } else if (!strcmp(a, "--plot") && has_value) {
            o->plot = argv[++i];
        } else if (!strcmp(a, "--tail") && has_value) {
            char *end;
            o->tail = strtol(argv[++i], &end, 10);
            if (*end || o->tail < 1) {
                fprintf(stderr, "rtrain-results: --tail needs a positive number, not '%s'\n",
                        argv[i]);
                return -1;
            }
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "rtrain-results: unknown option or missing value: '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (o->csv + o->json + o->best > 1) {
        fprintf(stderr, "rtrain-results: choose one of --csv, --json, --best\n");
        return -1;
    }
    if (o->overrides && !o->best) {
        fprintf(stderr, "rtrain-results: --overrides goes with --best\n");
        return -1;
    }
    if (i >= argc) {
        usage(stderr);
        return -1;
    }
    return i;
}

/* ---- loading a run --------------------------------------------------------------- */

static double row_number(const json_t *row, const char *key)
{
    const json_t *v = json_object_get(row, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static const json_t *last_row(const run_info *r)
{
    size_t n = json_array_size(r->rows.rows);
    return n ? json_array_get(r->rows.rows, n - 1) : NULL;
}

static const char *run_status(const run_info *r)
{
    /* rtrain-tune's outcome of a trial: TERMINATED, STOPPED (ASHA), ERROR */
    const char *tuned = json_string_value(json_object_get(r->tune, "status"));
    if (tuned)
        return tuned;
    if (r->error)
        return "ERROR";
    const json_t *epochs = json_object_get(json_object_get(r->params, "train"), "epochs");
    const json_t *last = last_row(r);
    if (last && json_is_integer(epochs) &&
        row_number(last, "epoch") >= (double)json_integer_value(epochs))
        return "TERMINATED";
    return "RUNNING";
}

static void warn_rows(const run_info *r)
{
    if (r->rows.torn_line)
        fprintf(stderr, "rtrain-results: warning: %s/result.json: ignoring the incomplete "
                "last line %ld (torn write, or the run is writing it now)\n", r->arg,
                r->rows.torn_line);
    if (r->rows.bad_lines)
        fprintf(stderr, "rtrain-results: warning: %s/result.json: skipped %ld line(s) that "
                "are not JSON objects (first: line %ld)\n", r->arg, r->rows.bad_lines,
                r->rows.first_bad_line);
}

/* Without --metric/--mode and without a score in the index: the run's
 * checkpoint.score_attribute / score_order from params.json. Returns 1. */
static int score_defaults(const run_info *r, const char **metric, const char **mode)
{
    const json_t *ck = json_object_get(r->params, "checkpoint");
    if (!*metric && !json_string_value(json_object_get(r->index, "score_attribute")))
        *metric = json_string_value(json_object_get(ck, "score_attribute"));
    if (!*mode && !json_string_value(json_object_get(r->index, "score_order")))
        *mode = json_string_value(json_object_get(ck, "score_order"));
    return 1;
}

/* Returns 0, 1 (unreadable file) or 2 (not a run directory), after a message. */
static int load_run(run_info *r, const char *dir, const options *o)
{
    memset(r, 0, sizeof *r);
    r->arg = dir;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "rtrain-results: error: %s: %s (give the run directory, "
                "run.storage_path/run.name)\n", dir,
                errno == ENOENT ? "no such directory" : "not a directory");
        return 2;
    }
    if (!realpath(dir, r->path))
        snprintf(r->path, sizeof r->path, "%s", dir);
    const char *metric = o->nmetrics ? o->metrics[0] : NULL, *mode = o->mode;
    if (rt_runfiles_read_rows(&r->rows, dir) != RT_OK ||
        rt_runfiles_read_json(&r->params, dir, "params.json") != RT_OK ||
        rt_runfiles_read_json(&r->index, dir, "checkpoint_index.json") != RT_OK ||
        !score_defaults(r, &metric, &mode) ||
        rt_runfiles_rank_checkpoints(&r->ckpts, r->index, metric, mode) != RT_OK ||
        rt_runfiles_read_text(&r->error, dir, "error.txt", 1 << 16) != RT_OK ||
        rt_runfiles_read_json(&r->tune, dir, "tune_trial.json") != RT_OK ||
        rt_runfiles_restarts(&r->restarts, dir) != RT_OK) {
        fprintf(stderr, "rtrain-results: error: %s\n", rt_error_message());
        return 1;
    }
    if (!r->params && !r->rows.lines)
        fprintf(stderr, "rtrain-results: warning: %s has neither params.json nor "
                "result.json: is it a run directory?\n", dir);
    warn_rows(r);
    r->status = run_status(r);
    return 0;
}

static void free_run(run_info *r)
{
    rt_runfiles_free_rows(&r->rows);
    rt_runfiles_free_checkpoints(&r->ckpts);
    json_decref(r->params);
    json_decref(r->index);
    json_decref(r->tune);
    json_decref(r->rungs);
    free(r->error);
}

/* ---- values as text ---------------------------------------------------------------- */

/* The value as it would be read from the file: numbers in their shortest
 * exact form, null as "" (csv) or "-" (tables). */
static void value_text(char *out, size_t size, const json_t *v, int csv)
{
    if (json_is_string(v))
        snprintf(out, size, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, size, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        rt_runfiles_format_number(out, size, json_real_value(v));
    else if (v && json_is_boolean(v))
        snprintf(out, size, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(out, size, "%s", csv ? "" : "-");
}

/* Short form for tables. */
static void short_text(char *out, size_t size, const json_t *v)
{
    if (json_is_real(v))
        rt_runfiles_format_short(out, size, json_real_value(v));
    else
        value_text(out, size, v, 0);
}

static long first_row(const run_info *r, const options *o)
{
    long n = (long)json_array_size(r->rows.rows);
    return o->tail > 0 && o->tail < n ? n - o->tail : 0;
}

/* Keys of the rows in order of first appearance. */
static json_t *union_keys(run_info *runs, int nruns, const options *o)
{
    json_t *keys = json_array(), *seen = json_object();
    for (int k = 0; k < nruns; k++) {
        json_t *rows = runs[k].rows.rows;
        for (size_t i = (size_t)first_row(&runs[k], o); i < json_array_size(rows); i++) {
            const char *key;
            json_t *v;
            json_object_foreach(json_array_get(rows, i), key, v) {
                if (!json_object_get(seen, key)) {
                    json_object_set_new(seen, key, json_true());
                    json_array_append_new(keys, json_string(key));
                }
            }
        }
    }
    json_decref(seen);
    return keys;
}

/* The searched keys of rtrain-tune trials (tune_trial.json "values"), in
 * the order they first appear. */
static int value_keys(const run_info *runs, int nruns, const char **keys)
{
    int n = 0;
    for (int k = 0; k < nruns; k++) {
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(runs[k].tune, "values"), key, v) {
            int seen = 0;
            for (int i = 0; i < n && !seen; i++)
                seen = !strcmp(keys[i], key);
            if (!seen && n < MAX_VALUE_KEYS)
                keys[n++] = key;
        }
    }
    return n;
}

/* ---- --csv ------------------------------------------------------------------------- */

static void csv_put(const char *s, int first)
{
    char cell[8192];
    rt_runfiles_csv_cell(cell, sizeof cell, s);
    printf("%s%s", first ? "" : ",", cell);
}

/* An experiment's trials: their status and values after the 'run' column. */
static void csv_trial_head(const char *const *vkeys, int nv)
{
    csv_put("status", 0);
    for (int i = 0; i < nv; i++)
        csv_put(vkeys[i], 0);
}

static void csv_trial_cells(const run_info *r, const char *const *vkeys, int nv)
{
    csv_put(r->status, 0);
    for (int i = 0; i < nv; i++) {
        const char *v = json_string_value(json_object_get(json_object_get(r->tune, "values"),
                                                          vkeys[i]));
        csv_put(v ? v : "", 0);
    }
}

static int print_csv(run_info *runs, int nruns, const options *o)
{
    json_t *keys = union_keys(runs, nruns, o);
    const char *vkeys[MAX_VALUE_KEYS];
    int with_run = nruns > 1 || o->experiment, nv = value_keys(runs, nruns, vkeys);
    if (with_run)
        csv_put("run", 1);
    if (o->experiment)
        csv_trial_head(vkeys, nv);
    for (size_t c = 0; c < json_array_size(keys); c++)
        csv_put(json_string_value(json_array_get(keys, c)), c == 0 && !with_run);
    printf("\n");
    for (int k = 0; k < nruns; k++) {
        json_t *rows = runs[k].rows.rows;
        for (size_t i = (size_t)first_row(&runs[k], o); i < json_array_size(rows); i++) {
            if (with_run)
                csv_put(runs[k].arg, 1);
            if (o->experiment)
                csv_trial_cells(&runs[k], vkeys, nv);
            for (size_t c = 0; c < json_array_size(keys); c++) {
                char text[4200];
                value_text(text, sizeof text, json_object_get(json_array_get(rows, i),
                           json_string_value(json_array_get(keys, c))), 1);
                csv_put(text, c == 0 && !with_run);
            }
            printf("\n");
        }
    }
    json_decref(keys);
    return 0;
}

/* ---- checkpoints ------------------------------------------------------------------- */

static json_t *checkpoint_json(const run_info *r, const rt_ranked_ckpt *it)
{
    char path[PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s", r->path, it->dir);
    json_t *o = json_object();
    json_object_set_new(o, "path", json_string(path));
    json_object_set_new(o, "training_iteration",
                        it->iteration >= 0 ? json_integer(it->iteration) : json_null());
    json_object_set_new(o, "score", isnan(it->score) ? json_null() : json_real(it->score));
    return o;
}

/* The best checkpoint over all runs (each run's list is ranked already). */
static int print_best(run_info *runs, int nruns)
{
    const run_info *best_run = NULL;
    const rt_ranked_ckpt *best = NULL;
    for (int k = 0; k < nruns; k++) {
        const rt_ckpt_ranking *l = &runs[k].ckpts;
        if (!l->count || !l->metric[0] || isnan(l->items[0].score))
            continue;
        const rt_ranked_ckpt *c = &l->items[0];
        if (!best || (l->maximize ? c->score > best->score : c->score < best->score)) {
            best = c;
            best_run = &runs[k];
        }
    }
    if (!best) {
        fprintf(stderr, "rtrain-results: no best checkpoint: %s\n",
                runs[0].ckpts.count == 0 && nruns == 1 ? "the run has no checkpoints"
                : "no checkpoint has a score (set checkpoint.score_attribute or give --metric)");
        return 1;
    }
    printf("%s/%s\n", best_run->path, best->dir);
    return 0;
}

/* ---- --json ------------------------------------------------------------------------- */

static json_t *error_json(const char *text)
{
    if (!text)
        return json_null();
    static const char *const keys[] = {"rank", "host", "step", "status", "time", "message"};
    json_t *o = json_object();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char v[4096];
        rt_runfiles_error_field(v, sizeof v, text, keys[i]);
        char *end;
        long long n = strtoll(v, &end, 10);
        int integer = (i == 0 || i == 2) && v[0] && !*end;
        json_object_set_new(o, keys[i], integer ? json_integer(n) : json_string(v));
    }
    return o;
}

static json_t *result_json(const run_info *r, const options *o)
{
    json_t *j = json_object();
    const json_t *last = last_row(r);
    json_object_set_new(j, "path", json_string(r->path));
    json_object_set_new(j, "status", json_string(r->status));
    json_object_set_new(j, "num_reports", json_integer((json_int_t)json_array_size(r->rows.rows)));
    json_object_set_new(j, "restarts", json_integer(r->restarts));
    json_object_set_new(j, "metrics", last ? json_deep_copy(last) : json_null());
    const rt_ckpt_ranking *l = &r->ckpts;
    json_object_set_new(j, "latest_checkpoint",
                        l->latest >= 0 ? checkpoint_json(r, &l->items[l->latest]) : json_null());
    json_t *best = json_array();
    for (int i = 0; i < l->count && l->metric[0]; i++)
        if (!isnan(l->items[i].score))
            json_array_append_new(best, checkpoint_json(r, &l->items[i]));
    json_object_set_new(j, "best_checkpoints", best);
    json_object_set_new(j, "score_attribute", l->metric[0] ? json_string(l->metric) : json_null());
    json_object_set_new(j, "score_order", json_string(l->maximize ? "max" : "min"));
    json_object_set_new(j, "error", error_json(r->error));
    if (o->experiment || r->tune) {   /* an rtrain-tune trial: the values it took */
        json_t *values = json_object_get(r->tune, "values");
        json_object_set_new(j, "values", values ? json_deep_copy(values) : json_null());
    }
    if (o->tail > 0) {
        json_t *rows = json_array();
        for (size_t i = (size_t)first_row(r, o); i < json_array_size(r->rows.rows); i++)
            json_array_append(rows, json_array_get(r->rows.rows, i));
        json_object_set_new(j, "reports", rows);
    }
    return j;
}

/* JSON with numbers written as in result.json (shortest exact form, so
 * 0.4 stays 0.4; jansson would print 17 digits); strings via jansson. */
static void emit_json(const json_t *v, int depth)
{
    if (json_is_object(v) || json_is_array(v)) {
        int obj = json_is_object(v);
        size_t n = obj ? json_object_size(v) : json_array_size(v);
        if (n == 0) {
            fputs(obj ? "{}" : "[]", stdout);
            return;
        }
        putchar(obj ? '{' : '[');
        size_t i = 0;
        const char *key;
        json_t *item;
        void *iter = obj ? json_object_iter((json_t *)v) : NULL;
        for (; i < n; i++) {
            printf("%s\n%*s", i ? "," : "", 2 * (depth + 1), "");
            if (obj) {
                key = json_object_iter_key(iter);
                item = json_object_iter_value(iter);
                iter = json_object_iter_next((json_t *)v, iter);
                json_t *k = json_string(key);
                emit_json(k, depth + 1);
                json_decref(k);
                fputs(": ", stdout);
            } else {
                item = json_array_get(v, i);
            }
            emit_json(item, depth + 1);
        }
        printf("\n%*s%c", 2 * depth, "", obj ? '}' : ']');
    } else if (json_is_real(v)) {
        char num[40];
        rt_runfiles_format_number(num, sizeof num, json_real_value(v));
        fputs(num[0] ? num : "null", stdout);
    } else {
        char *text = json_dumps(v, JSON_ENCODE_ANY);
        fputs(text ? text : "null", stdout);
        free(text);
    }
}

static int print_json(run_info *runs, int nruns, const options *o)
{
    int one = nruns == 1 && !o->experiment;   /* an experiment is always a list */
    json_t *out = one ? result_json(&runs[0], o) : json_array();
    for (int k = 0; !one && k < nruns; k++)
        json_array_append_new(out, result_json(&runs[k], o));
    emit_json(out, 0);
    putchar('\n');
    json_decref(out);
    return 0;
}

/* ---- the Result ---------------------------------------------------------------------- */

static void print_reports_table(const run_info *r, const options *o)
{
    run_info one = *r;
    json_t *keys = union_keys(&one, 1, o);
    int cols = (int)json_array_size(keys);
    long first = first_row(r, o), n = (long)json_array_size(r->rows.rows) - first;
    if (cols == 0 || cols > 64) {
        json_decref(keys);
        return;
    }
    char (*cells)[48] = calloc((size_t)(n + 1) * (size_t)cols, sizeof *cells);
    const char **ptrs = calloc((size_t)(n + 1) * (size_t)cols, sizeof *ptrs);
    for (int c = 0; cells && ptrs && c < cols; c++) {
        const char *key = json_string_value(json_array_get(keys, c));
        snprintf(cells[c], 48, "%s", key);
        for (long i = 0; i < n; i++)
            short_text(cells[(i + 1) * cols + c], 48,
                       json_object_get(json_array_get(r->rows.rows, (size_t)(first + i)), key));
    }
    for (long i = 0; cells && ptrs && i < (n + 1) * cols; i++)
        ptrs[i] = cells[i];
    if (cells && ptrs) {
        printf("last %ld report(s):\n", n);
        rt_runfiles_print_table(stdout, ptrs, (int)(n + 1), cols);
    }
    free(cells);
    free(ptrs);
    json_decref(keys);
}

static void print_error(const char *text)
{
    char rank[32], host[128], step[32], status[64], message[4096];
    rt_runfiles_error_field(rank, sizeof rank, text, "rank");
    rt_runfiles_error_field(host, sizeof host, text, "host");
    rt_runfiles_error_field(step, sizeof step, text, "step");
    rt_runfiles_error_field(status, sizeof status, text, "status");
    rt_runfiles_error_field(message, sizeof message, text, "message");
    printf("  error:             rank %s (%s), step %s: %s\n", rank, host, step, status);
    printf("                     %s\n", message);
}

static void print_checkpoints(const run_info *r)
{
    const rt_ckpt_ranking *l = &r->ckpts;
    if (l->count == 0) {
        printf("  checkpoints:       no checkpoints\n");
        return;
    }
    printf("  latest checkpoint: %s/%s\n", r->path, l->items[l->latest].dir);
    if (!l->metric[0]) {
        printf("  best checkpoints:  no score (set checkpoint.score_attribute or give --metric)\n");
        return;
    }
    printf("  best checkpoints (%s, %s):\n", l->metric, l->maximize ? "max" : "min");
    int shown = 0;
    for (int i = 0; i < l->count; i++)
        if (!isnan(l->items[i].score)) {
            printf("    %s/%s  %s=%.6g  iteration %lld\n", r->path, l->items[i].dir, l->metric,
                   l->items[i].score, l->items[i].iteration);
            shown++;
        }
    if (!shown)
        printf("    none has %s\n", l->metric);
}

static void print_result(const run_info *r, const options *o)
{
    const json_t *last = last_row(r);
    printf("Result: %s\n", r->path);
    printf("  status:            %s\n", r->status);
    printf("  reports:           %zu\n", json_array_size(r->rows.rows));
    printf("  restarts:          %d\n", r->restarts);
    if (last) {
        printf("  last metrics:\n");
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)last, key, v) {
            char text[4200];
            value_text(text, sizeof text, v, 0);
            printf("    %-22s %s\n", key, text);
        }
    } else {
        printf("  last metrics:      none reported yet\n");
    }
    print_checkpoints(r);
    if (r->error)
        print_error(r->error);
    if (o->tail > 0)
        print_reports_table(r, o);
}

/* ---- several runs: one table ---------------------------------------------------------- */

static void compare_runs(run_info *runs, int nruns, const options *o)
{
    const char *const *metrics = o->nmetrics ? o->metrics : default_metrics;
    int nm = o->nmetrics ? o->nmetrics : 3;
    const char *keys[MAX_VALUE_KEYS];
    int nk = value_keys(runs, nruns, keys);
    int cols = 5 + nk + nm;
    char (*cells)[64] = calloc((size_t)(nruns + 1) * (size_t)cols, sizeof *cells);
    const char **ptrs = calloc((size_t)(nruns + 1) * (size_t)cols, sizeof *ptrs);
    if (!cells || !ptrs) {
        free(cells);
        free(ptrs);
        return;
    }
    const char *head[] = {"run", "status", "iter", "total time (s)"};
    snprintf(cells[0], 64, "%s", head[0]);
    snprintf(cells[1], 64, "%s", head[1]);
    for (int i = 0; i < nk; i++)
        snprintf(cells[2 + i], 64, "%.63s", keys[i]);
    for (int c = 2; c < 4; c++)
        snprintf(cells[nk + c], 64, "%s", head[c]);
    for (int m = 0; m < nm; m++)
        snprintf(cells[nk + 4 + m], 64, "%s", metrics[m]);
    snprintf(cells[cols - 1], 64, "best checkpoint");
    for (int k = 0; k < nruns; k++) {
        char (*row)[64] = cells + (size_t)(k + 1) * (size_t)cols;
        const json_t *last = last_row(&runs[k]);
        const rt_ckpt_ranking *l = &runs[k].ckpts;
        const json_t *values = json_object_get(runs[k].tune, "values");
        snprintf(row[0], 64, "%.63s", runs[k].arg);
        snprintf(row[1], 64, "%s", runs[k].status);
        for (int i = 0; i < nk; i++) {
            const char *v = json_string_value(json_object_get(values, keys[i]));
            snprintf(row[2 + i], 64, "%.63s", v ? v : "-");
        }
        short_text(row[nk + 2], 64, json_object_get(last, "training_iteration"));
        short_text(row[nk + 3], 64, json_object_get(last, "time_total_s"));
        for (int m = 0; m < nm; m++)
            short_text(row[nk + 4 + m], 64, json_object_get(last, metrics[m]));
        snprintf(row[cols - 1], 64, "%.63s", l->count && l->metric[0] && !isnan(l->items[0].score)
                 ? l->items[0].dir : "-");
    }
    for (int i = 0; i < (nruns + 1) * cols; i++)
        ptrs[i] = cells[i];
    rt_runfiles_print_table(stdout, ptrs, nruns + 1, cols);
    free(cells);
    free(ptrs);
}

/* ---- --plot ------------------------------------------------------------------------ */

/* Column `key` of a run's rows (null -> NaN), into a new array. */
static double *column(const run_info *r, const char *key)
{
    size_t n = json_array_size(r->rows.rows);
    double *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        v[i] = row_number(json_array_get(r->rows.rows, i), key);
    return v;
}

static int has_metric(const run_info *r, const char *key)
{
    for (size_t i = 0; i < json_array_size(r->rows.rows); i++)
        if (json_object_get(json_array_get(r->rows.rows, i), key))
            return 1;
    return 0;
}

/* One panel per metric some run reported, one series per run; x is the
 * epoch when the rows have one, else training_iteration. */
static int plot(const char *file, const run_info *runs, int nruns, const char *const *metrics,
                int nmetrics)
{
    svg_panel panels[MAX_METRICS];
    svg_series *series = calloc((size_t)(nmetrics * nruns), sizeof *series);
    double **cols = calloc((size_t)(nmetrics * nruns * 2), sizeof *cols);
    int np = 0, rc = 1;
    if (!series || !cols)
        goto done;
    for (int m = 0; m < nmetrics; m++) {
        svg_series *ss = series + (size_t)m * (size_t)nruns;
        int ns = 0;
        for (int k = 0; k < nruns; k++) {
            if (!has_metric(&runs[k], metrics[m]))
                continue;
            const char *xkey = has_metric(&runs[k], "epoch") ? "epoch" : "training_iteration";
            double **xy = cols + 2 * ((size_t)m * (size_t)nruns + (size_t)k);
            xy[0] = column(&runs[k], xkey);
            xy[1] = column(&runs[k], metrics[m]);
            if (!xy[0] || !xy[1])
                goto done;
            const char *label = runs[k].label[0] ? runs[k].label
                                : nruns > 1 ? runs[k].arg : metrics[m];
            ss[ns++] = (svg_series){.label = label, .x = xy[0], .y = xy[1],
                                    .n = (int)json_array_size(runs[k].rows.rows),
                                    .dashed = runs[k].dashed};
        }
        if (ns == 0)
            fprintf(stderr, "rtrain-results: warning: no run reported '%s'; not plotted\n",
                    metrics[m]);
        else
            panels[np++] = (svg_panel){.title = metrics[m], .xlabel = "epoch", .series = ss,
                                       .nseries = ns};
    }
    if (np == 0) {
        fprintf(stderr, "rtrain-results: error: nothing to plot (choose metrics with --metric)\n");
        goto done;
    }
    FILE *f = fopen(file, "w");
    if (!f) {
        fprintf(stderr, "rtrain-results: error: cannot write %s: %s\n", file, strerror(errno));
        goto done;
    }
    rc = svg_plot_write(f, panels, np) != 0;
    if (fclose(f) != 0 || rc) {
        fprintf(stderr, "rtrain-results: error: cannot write %s\n", file);
        rc = 1;
    }
done:
    for (int i = 0; cols && i < nmetrics * nruns * 2; i++)
        free(cols[i]);
    free(cols);
    free(series);
    return rc;
}

/* ---- rtrain-tune experiments --------------------------------------------------------
 * An experiment directory (it holds tune.json) read as Ray Tune's
 * ResultGrid. Trial t is trial_<t> (rtrain-tune pads t to 5 digits); the
 * experiment has tune.num_samples x (the product of its grid domains'
 * sizes) trials. A trial without a directory or reports yet is PENDING, one
 * with reports but no tune_trial.json RUNNING, else what rtrain-tune
 * recorded: PAUSED, TERMINATED, STOPPED, ERROR. */

typedef struct experiment {
    const char *arg;              /* the directory as given */
    run_info *trials;             /* [n]: trial t at t */
    char (*dirs)[PATH_MAX];       /* [n]: trial t's directory (trials[t].arg) */
    int n;
    const json_t *params;         /* a trial's params.json (tune.*, train.epochs), or NULL */
    const char *metric;           /* --metric, else tune.metric; NULL: unknown */
    int maximize;                 /* --mode, else tune.mode */
} experiment;

/* A JSON string's text, or `otherwise`. */
static const char *text_of(const json_t *v, const char *otherwise)
{
    return json_is_string(v) ? json_string_value(v) : otherwise;
}

static const char *const trial_statuses[] = {"PENDING", "RUNNING", "PAUSED", "TERMINATED",
                                             "STOPPED", "ERROR"};

/* t of ".../trial_<t>", or -1. */
static int trial_index(const char *path)
{
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char *end;
    if (strncmp(name, "trial_", 6) != 0 || !isdigit((unsigned char)name[6]))
        return -1;
    long t = strtol(name + 6, &end, 10);
    return *end || t > INT_MAX - 1 ? -1 : (int)t;
}

/* Makes room for trials [0, n): the new ones PENDING, without a directory. */
static int grow_experiment(experiment *x, int n)
{
    if (n <= x->n)
        return 0;
    run_info *trials = realloc(x->trials, (size_t)n * sizeof *trials);
    if (trials)
        x->trials = trials;
    char (*dirs)[PATH_MAX] = realloc(x->dirs, (size_t)n * sizeof *dirs);
    if (dirs)
        x->dirs = dirs;
    if (!trials || !dirs) {
        fprintf(stderr, "rtrain-results: error: out of memory for %d trials\n", n);
        return 1;
    }
    for (int t = x->n; t < n; t++) {
        run_info *r = &x->trials[t];
        memset(r, 0, sizeof *r);
        snprintf(x->dirs[t], PATH_MAX, "%s/trial_%05d", x->arg, t);
        snprintf(r->path, sizeof r->path, "%s", x->dirs[t]);
        r->ckpts.latest = -1;
    }
    for (int t = 0; t < n; t++)   /* the names moved with the array */
        x->trials[t].arg = x->dirs[t];
    x->n = n;
    return 0;
}

/* The number of values of a list in config syntax, "(0.1, [1, 2], \"a,b\")":
 * the commas outside brackets and strings, plus one. */
static long list_length(const char *text)
{
    int depth = 0;
    long commas = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '"') {
            while (p[1] && p[1] != '"')
                p += p[1] == '\\' && p[2] ? 2 : 1;
            p += p[1] != 0;
        } else if (strchr("([{", *p)) {
            depth++;
        } else if (strchr(")]}", *p)) {
            depth--;
        } else if (*p == ',' && depth == 1) {
            commas++;
        }
    }
    return commas + 1;
}

/* The trials rtrain-tune runs: tune.num_samples (the largest a trial
 * recorded: a relaunch may add samples) x the sizes of tune.json's grid
 * domains; 0 while no trial has written its params.json. -1: tune.json
 * unreadable (after a message). */
static long planned_trials(const experiment *x)
{
    json_t *space = NULL;
    if (rt_runfiles_read_json(&space, x->arg, "tune.json") != RT_OK) {
        fprintf(stderr, "rtrain-results: error: %s\n", rt_error_message());
        return -1;
    }
    long samples = 0, grid = 1;
    for (int t = 0; t < x->n; t++) {
        const json_t *ns = json_object_get(json_object_get(x->trials[t].params, "tune"),
                                           "num_samples");
        if (json_is_integer(ns) && json_integer_value(ns) > samples)
            samples = (long)json_integer_value(ns);
    }
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(space, "domains"), i, d) {
        const char *args = json_string_value(json_object_get(d, "args"));
        if (args && !strcmp(text_of(json_object_get(d, "kind"), ""), "grid"))
            grid *= list_length(args);
    }
    json_decref(space);
    return samples * grid;
}

static const char *trial_status(const run_info *r)
{
    const char *recorded = json_string_value(json_object_get(r->tune, "status"));
    if (recorded)
        return recorded;
    return json_array_size(r->rows.rows) ? "RUNNING" : "PENDING";
}

/* After loading: statuses, plot labels, the metric and mode. */
static void settle_experiment(experiment *x, const options *o)
{
    for (int t = 0; t < x->n; t++) {
        run_info *r = &x->trials[t];
        r->status = trial_status(r);
        if (!strcmp(r->status, "TERMINATED"))
            snprintf(r->label, sizeof r->label, "trial_%05d", t);
        else
            snprintf(r->label, sizeof r->label, "trial_%05d (%s)", t, r->status);
        r->dashed = !strcmp(r->status, "STOPPED") || !strcmp(r->status, "PAUSED");
        if (!x->params && json_object_get(r->params, "tune"))
            x->params = r->params;
    }
    const json_t *tune = json_object_get(x->params, "tune");
    const char *mode = o->mode ? o->mode : json_string_value(json_object_get(tune, "mode"));
    x->metric = o->nmetrics ? o->metrics[0] : json_string_value(json_object_get(tune, "metric"));
    x->maximize = mode && !strcmp(mode, "max");
}

/* Every trial_* directory, then the trials not started yet. Returns as load_run. */
static int load_experiment(experiment *x, const char *dir, const options *o)
{
    memset(x, 0, sizeof *x);
    x->arg = dir;
    char pattern[PATH_MAX + 16];
    snprintf(pattern, sizeof pattern, "%s/trial_*", dir);
    glob_t found;
    memset(&found, 0, sizeof found);
    glob(pattern, 0, NULL, &found);   /* none found: gl_pathc stays 0 */
    int top = -1;
    for (size_t i = 0; i < found.gl_pathc; i++)
        if (trial_index(found.gl_pathv[i]) > top)
            top = trial_index(found.gl_pathv[i]);
    int rc = grow_experiment(x, top + 1);
    for (size_t i = 0; i < found.gl_pathc && rc == 0; i++) {
        int t = trial_index(found.gl_pathv[i]);
        if (t < 0)
            continue;
        run_info *r = &x->trials[t];
        snprintf(x->dirs[t], PATH_MAX, "%s", found.gl_pathv[i]);
        rc = load_run(r, x->dirs[t], o);
        if (rc == 0 && rt_runfiles_read_json(&r->rungs, r->arg, "tune_rungs.json") != RT_OK) {
            fprintf(stderr, "rtrain-results: error: %s\n", rt_error_message());
            rc = 1;
        }
    }
    globfree(&found);
    long planned = rc == 0 ? planned_trials(x) : 0;
    if (planned < 0)
        rc = 1;
    if (rc == 0)
        rc = grow_experiment(x, planned < INT_MAX ? (int)planned : INT_MAX);
    if (rc == 0)
        settle_experiment(x, o);
    return rc;
}

static void free_experiment(experiment *x)
{
    for (int t = 0; t < x->n; t++)
        free_run(&x->trials[t]);
    free(x->trials);
    free(x->dirs);
}

/* ---- the best trial ---------------------------------------------------------------- */

static int better(double a, double b, int maximize)
{
    return isnan(b) || (maximize ? a > b : a < b);
}

/* A trial's score by scope over its reports of `metric` (those without a
 * number skipped, as Ray's metric analysis does); NaN when none has one. */
static double trial_score(const run_info *r, const char *metric, const scope *s, int maximize)
{
    double *v = column(r, metric), score = NAN;
    int m = 0;
    for (size_t i = 0; v && i < json_array_size(r->rows.rows); i++)
        if (isfinite(v[i]))
            v[m++] = v[i];
    for (int i = 0; s->best && i < m; i++)
        if (better(v[i], score, maximize))
            score = v[i];
    if (!s->best && m > 0) {
        int k = m < s->last ? m : s->last;
        double sum = 0;
        for (int i = m - k; i < m; i++)
            sum += v[i];
        score = sum / k;
    }
    free(v);
    return score;
}

/* The best trial by scope, or -1: ERROR trials never win, a STOPPED one
 * competes with what it reached, the first of equals wins (as Ray's). */
static int best_trial(const experiment *x, const scope *s, double *score)
{
    int best = -1;
    *score = NAN;
    for (int t = 0; x->metric && t < x->n; t++) {
        if (!strcmp(x->trials[t].status, "ERROR"))
            continue;
        double v = trial_score(&x->trials[t], x->metric, s, x->maximize);
        if (!isnan(v) && better(v, *score, x->maximize)) {
            *score = v;
            best = t;
        }
    }
    return best;
}

/* --best: the best trial's directory, or (--overrides) its values as
 * key=value lines for rtrain CONFIG "${overrides[@]}". */
static int print_best_trial(const experiment *x, const options *o)
{
    const scope *s = o->scope ? o->scope : &scopes[0];
    double score;
    int t = best_trial(x, s, &score);
    if (t < 0) {
        if (x->metric)
            fprintf(stderr, "rtrain-results: no best trial: no trial (ERROR ones aside) "
                    "reported %s\n", x->metric);
        else
            fprintf(stderr, "rtrain-results: no best trial: the trials record no "
                    "tune.metric (give --metric)\n");
        return 1;
    }
    const run_info *r = &x->trials[t];
    if (!o->overrides) {
        printf("%s\n", r->path);
        return 0;
    }
    const json_t *values = json_object_get(r->tune, "values");
    if (!json_is_object(values)) {
        fprintf(stderr, "rtrain-results: the best trial, %s, is %s: its values are recorded "
                "when it ends\n", r->arg, r->status);
        return 1;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)values, key, v)
        printf("%s=%s\n", key, json_string_value(v) ? json_string_value(v) : "");
    return 0;
}

/* ---- the experiment's tables ---------------------------------------------------------- */

typedef struct table {
    char (*cells)[64];
    const char **ptrs;
    int rows, cols;
} table;

static int table_init(table *tb, int rows, int cols)
{
    tb->rows = rows;
    tb->cols = cols;
    tb->cells = calloc((size_t)rows * (size_t)cols, sizeof *tb->cells);
    tb->ptrs = calloc((size_t)rows * (size_t)cols, sizeof *tb->ptrs);
    return tb->cells && tb->ptrs ? 0 : -1;
}

static char *cell(table *tb, int row, int col)
{
    return tb->cells[(size_t)row * (size_t)tb->cols + (size_t)col];
}

static void table_print_free(table *tb)
{
    for (size_t i = 0; tb->cells && tb->ptrs && i < (size_t)tb->rows * (size_t)tb->cols; i++)
        tb->ptrs[i] = tb->cells[i];
    if (tb->cells && tb->ptrs)
        rt_runfiles_print_table(stdout, tb->ptrs, tb->rows, tb->cols);
    free(tb->cells);
    free(tb->ptrs);
}

/* One row: trial, status, its values, iter, time, last and best metric. */
static void trial_cells(table *tb, int row, const experiment *x, int t, const char *const *keys,
                        int nk)
{
    const run_info *r = &x->trials[t];
    const json_t *last = last_row(r), *values = json_object_get(r->tune, "values");
    snprintf(cell(tb, row, 0), 64, "trial_%05d", t);
    snprintf(cell(tb, row, 1), 64, "%s", r->status);
    for (int i = 0; i < nk; i++) {
        const char *v = json_string_value(json_object_get(values, keys[i]));
        snprintf(cell(tb, row, 2 + i), 64, "%.63s", v ? v : "-");
    }
    short_text(cell(tb, row, nk + 2), 64, json_object_get(last, "training_iteration"));
    short_text(cell(tb, row, nk + 3), 64, json_object_get(last, "time_total_s"));
    double v[2] = {NAN, NAN};
    if (x->metric) {
        v[0] = trial_score(r, x->metric, &scopes[0], x->maximize);
        v[1] = trial_score(r, x->metric, &scopes[2], x->maximize);
    }
    for (int i = 0; i < 2; i++) {
        if (isnan(v[i]))
            snprintf(cell(tb, row, nk + 4 + i), 64, "-");
        else
            rt_runfiles_format_short(cell(tb, row, nk + 4 + i), 64, v[i]);
    }
}

static void print_trials(const experiment *x)
{
    const char *keys[MAX_VALUE_KEYS];
    int nk = value_keys(x->trials, x->n, keys);
    table tb;
    if (table_init(&tb, x->n + 1, nk + 6) == 0) {
        const char *m = x->metric ? x->metric : "metric";
        snprintf(cell(&tb, 0, 0), 64, "trial");
        snprintf(cell(&tb, 0, 1), 64, "status");
        for (int i = 0; i < nk; i++)
            snprintf(cell(&tb, 0, 2 + i), 64, "%.63s", keys[i]);
        snprintf(cell(&tb, 0, nk + 2), 64, "iter");
        snprintf(cell(&tb, 0, nk + 3), 64, "total time (s)");
        snprintf(cell(&tb, 0, nk + 4), 64, "last %.50s", m);
        snprintf(cell(&tb, 0, nk + 5), 64, "best %.50s", m);
        for (int t = 0; t < x->n; t++)
            trial_cells(&tb, t + 1, x, t, keys, nk);
    }
    table_print_free(&tb);
}

/* The ASHA settings of the experiment (tune.* of a trial's params.json);
 * 0 when it does not use asha or asha_promote. */
static int asha_of(const experiment *x, rt_asha *a, int *promote)
{
    const json_t *tune = json_object_get(x->params, "tune");
    const char *sched = json_string_value(json_object_get(tune, "scheduler"));
    if (!sched || (strcmp(sched, "asha") && strcmp(sched, "asha_promote")))
        return 0;
    *promote = !strcmp(sched, "asha_promote");
    long long max_t = json_integer_value(json_object_get(tune, "max_t"));
    if (max_t <= 0)
        max_t = json_integer_value(json_object_get(json_object_get(x->params, "train"),
                                                   "epochs"));
    *a = (rt_asha){.grace = (int)json_integer_value(json_object_get(tune, "grace_period")),
                   .eta = (int)json_integer_value(json_object_get(tune, "reduction_factor")),
                   .max_t = (int)max_t,
                   .maximize = !strcmp(text_of(json_object_get(tune, "mode"), ""), "max")};
    return a->grace >= 1 && a->eta >= 2;
}

/* The value a trial needed at a rung to go on: asha's quantile of the
 * values recorded there; asha_promote's worst of the top floor(n / eta),
 * the ones that may be promoted. NaN: none yet. */
static double rung_cutoff(const rt_asha *a, int promote, const double *v, int n)
{
    if (!promote)
        return rt_asha_cutoff(a, v, n);
    int *order = malloc(((size_t)n + 1) * sizeof *order);
    int top = order ? rt_asha_top(a, v, n, order) : 0;
    double cutoff = top > 0 ? v[order[top - 1]] : NAN;
    free(order);
    return cutoff;
}

/* Per rung: how many trials recorded a value there (tune_rungs.json) and
 * the cutoff, computed as rtrain-tune's decisions are (src/tune/asha.c). */
static void print_rungs(const experiment *x)
{
    rt_asha a;
    int promote = 0, rungs[64];
    if (!asha_of(x, &a, &promote))
        return;
    int nr = rt_asha_rungs(&a, rungs, 64);
    double *v = malloc(((size_t)x->n + 1) * sizeof *v);
    table tb;
    if (v && table_init(&tb, nr + 1, 3) == 0) {
        snprintf(cell(&tb, 0, 0), 64, "rung (iteration)");
        snprintf(cell(&tb, 0, 1), 64, "trials");
        snprintf(cell(&tb, 0, 2), 64, "cutoff");
        for (int k = 0; k < nr; k++) {
            char key[32];
            int n = 0;
            snprintf(key, sizeof key, "%d", rungs[k]);
            for (int t = 0; t < x->n; t++) {
                const json_t *rv = json_object_get(json_object_get(x->trials[t].rungs, "rungs"),
                                                   key);
                if (json_is_number(rv))
                    v[n++] = json_number_value(rv);
            }
            snprintf(cell(&tb, k + 1, 0), 64, "%d", rungs[k]);
            snprintf(cell(&tb, k + 1, 1), 64, "%d", n);
            rt_runfiles_format_number(cell(&tb, k + 1, 2), 64, rung_cutoff(&a, promote, v, n));
            if (!cell(&tb, k + 1, 2)[0])
                snprintf(cell(&tb, k + 1, 2), 64, "-");
        }
        printf("\n%s rungs (grace period %d, reduction factor %d, max_t %d); cutoff: the %s "
               "a trial reaching the rung now needs to %s\n", promote ? "asha_promote" : "asha",
               a.grace, a.eta, a.max_t,
               text_of(json_object_get(json_object_get(x->params, "tune"), "metric"), "metric"),
               promote ? "be promoted" : "go on");
        table_print_free(&tb);
    }
    free(v);
}

/* "experiment DIR: N trials (2 RUNNING, 3 TERMINATED, ...)" */
static void print_counts(const experiment *x)
{
    printf("experiment %s: %d trial%s", x->arg, x->n, x->n == 1 ? "" : "s");
    const char *sep = " (";
    for (size_t s = 0; s < sizeof trial_statuses / sizeof trial_statuses[0]; s++) {
        int n = 0;
        for (int t = 0; t < x->n; t++)
            n += !strcmp(x->trials[t].status, trial_statuses[s]);
        if (n) {
            printf("%s%d %s", sep, n, trial_statuses[s]);
            sep = ", ";
        }
    }
    printf(")\n");
}

/* The first line of each ERROR trial's error. */
static void print_errors(const experiment *x)
{
    int shown = 0;
    for (int t = 0; t < x->n; t++) {
        const run_info *r = &x->trials[t];
        if (strcmp(r->status, "ERROR") != 0)
            continue;
        char message[4096];
        const char *text = json_string_value(json_object_get(r->tune, "error"));
        if (!text && r->error)
            rt_runfiles_error_field(message, sizeof message, r->error, "message");
        else
            snprintf(message, sizeof message, "%s", text ? text : "");
        message[strcspn(message, "\n")] = '\0';
        printf("%s  trial_%05d: %s\n", shown++ ? "" : "\nerrors:\n", t,
               message[0] ? message : "(no message)");
    }
}

/* The default view: counts, trials, rungs, the best trial, errors. */
static void print_experiment(const experiment *x, const options *o)
{
    const scope *s = o->scope ? o->scope : &scopes[0];
    print_counts(x);
    print_trials(x);
    print_rungs(x);
    double score;
    int t = best_trial(x, s, &score);
    if (t >= 0)
        printf("\nbest trial (%s %s, scope %s): trial_%05d, %.6g\n  %s\n", x->metric,
               x->maximize ? "max" : "min", s->name, t, score, x->trials[t].path);
    print_errors(x);
}

static int show_experiment(const char *dir, const options *o)
{
    experiment x;
    int rc = load_experiment(&x, dir, o);
    if (rc == 0 && x.n == 0) {
        fprintf(stderr, "rtrain-results: error: the experiment has no trials yet\n");
        rc = 1;
    }
    if (rc == 0 && o->plot) {
        const char *metric[] = {x.metric};
        rc = o->nmetrics ? plot(o->plot, x.trials, x.n, o->metrics, o->nmetrics)
             : x.metric ? plot(o->plot, x.trials, x.n, metric, 1)
             : plot(o->plot, x.trials, x.n, default_metrics, 3);
    }
    if (rc == 0) {
        if (o->csv)
            rc = print_csv(x.trials, x.n, o);
        else if (o->json)
            rc = print_json(x.trials, x.n, o);
        else if (o->best)
            rc = print_best_trial(&x, o);
        else if (!o->plot)
            print_experiment(&x, o);
    }
    free_experiment(&x);
    return rc;
}

/* 1 when dir is an rtrain-tune experiment (it holds tune.json). */
static int is_experiment(const char *dir)
{
    char probe[PATH_MAX + 16];
    snprintf(probe, sizeof probe, "%s/tune.json", dir);
    return access(probe, F_OK) == 0;
}

/* The directories to show: an rtrain-tune experiment stands for its
 * trial_* directories, in order. The caller frees *out (the strings stay
 * in `found`). */
static int expand_experiments(char **args, int nargs, char ***out, glob_t *found)
{
    int n = 0, flags = 0;
    memset(found, 0, sizeof *found);
    for (int i = 0; i < nargs; i++) {
        char pattern[PATH_MAX + 16];
        snprintf(pattern, sizeof pattern, "%s/trial_*", args[i]);
        if (is_experiment(args[i]) && glob(pattern, flags, NULL, found) == 0)
            flags = GLOB_APPEND;
    }
    *out = calloc((size_t)nargs + found->gl_pathc + 1, sizeof **out);
    if (!*out)
        return -1;
    size_t used = 0;
    for (int i = 0; i < nargs; i++) {
        if (!is_experiment(args[i])) {
            (*out)[n++] = args[i];
            continue;
        }
        /* this experiment's trials: the next run of glob's results with its prefix */
        size_t len = strlen(args[i]);
        while (used < found->gl_pathc && !strncmp(found->gl_pathv[used], args[i], len))
            (*out)[n++] = found->gl_pathv[used++];
    }
    return n;
}

/* Run directories (an experiment among them stands for its trials). */
static int show_runs(char **args, int nargs, const options *o)
{
    glob_t trials;
    char **dirs = NULL;
    int nruns = expand_experiments(args, nargs, &dirs, &trials);
    if (nruns < 0)
        return 1;
    if (nruns == 0) {
        fprintf(stderr, "rtrain-results: error: the experiment has no trials yet\n");
        globfree(&trials);
        free(dirs);
        return 1;
    }
    run_info *runs = calloc((size_t)nruns, sizeof *runs);
    if (!runs)
        return 1;
    int rc = 0;
    for (int k = 0; k < nruns && rc == 0; k++)
        rc = load_run(&runs[k], dirs[k], o);
    if (rc == 0 && o->plot) {
        int dm = o->nmetrics ? o->nmetrics : 3;
        rc = plot(o->plot, runs, nruns, o->nmetrics ? o->metrics : default_metrics, dm);
    }
    if (rc == 0) {
        if (o->csv)
            rc = print_csv(runs, nruns, o);
        else if (o->json)
            rc = print_json(runs, nruns, o);
        else if (o->best)
            rc = print_best(runs, nruns);
        else if (o->plot)
            ;   /* only the chart was asked for */
        else if (nruns == 1)
            print_result(&runs[0], o);
        else
            compare_runs(runs, nruns, o);
    }
    for (int k = 0; k < nruns; k++)
        free_run(&runs[k]);
    free(runs);
    free(dirs);
    globfree(&trials);
    return rc;
}

int main(int argc, char **argv)
{
    options o = {0};
    int first = parse_options(&o, argc, argv);
    if (first < 0)
        return 2;
    o.experiment = argc - first == 1 && is_experiment(argv[first]);
    if ((o.scope || o.overrides) && !o.experiment) {
        fprintf(stderr, "rtrain-results: --scope and --overrides need one rtrain-tune "
                "experiment directory\n");
        return 2;
    }
    int rc = o.experiment ? show_experiment(argv[first], &o)
                          : show_runs(argv + first, argc - first, &o);
    if (fflush(stdout) != 0)
        return 1;
    return rc;
}
