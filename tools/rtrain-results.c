/* rtrain-results: what a run produced (Ray Train's Result), read from its
 * run directory without MPI, so it works on a login node while the run is
 * still going, after it failed, and on a copy of the directory.
 *
 *   rtrain-results RUN_DIR              the Result
 *   rtrain-results RUN_DIR RUN_DIR...   one comparison table
 *   rtrain-results EXPERIMENT_DIR       rtrain-tune's trials, as a comparison
 *                                       table with the values each trial took
 *   rtrain-results --csv | --json | --best | --plot FILE.svg ... RUN_DIR...
 *
 * Exit codes: 0 done; 1 nothing to show (--best without a scored
 * checkpoint, an unreadable file); 2 usage error or a path that is not a
 * run directory. */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "run/runfiles.h"
#include "svgplot.h"

#define MAX_METRICS 16

typedef struct options {
    int csv, json, best;
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
} run_info;

enum { MAX_VALUE_KEYS = 32 };   /* searched keys shown (rtrain/tune.h) */

static const char *const default_metrics[] = {"train_loss", "val_loss", "val_accuracy"};

static void usage(FILE *f)
{
    fputs("usage: rtrain-results [options] RUN_DIR...\n"
          "Shows what an rtrain run produced: status, last metrics, checkpoints, error,\n"
          "restarts. With several run directories: one comparison table. An\n"
          "rtrain-tune experiment directory stands for its trials (with the values\n"
          "each took, and STOPPED for a trial ASHA stopped).\n"
          "  --csv            every report as CSV (a 'run' column with several runs)\n"
          "  --json           the Result as JSON (an array with several runs)\n"
          "  --best           only the path of the best checkpoint (exit 1 if none)\n"
          "  --metric M       metric for best checkpoints, comparison and --plot\n"
          "                   (repeat or comma-separate for several; default: the\n"
          "                   run's checkpoint.score_attribute; for --plot\n"
          "                   train_loss, val_loss, val_accuracy)\n"
          "  --mode min|max   whether lower or higher M is better (default: the run's\n"
          "                   checkpoint.score_order)\n"
          "  --plot FILE.svg  draw the metrics against epoch into an SVG file\n"
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
        snprintf(out, size, "%.4g", json_real_value(v));
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

/* ---- --csv ------------------------------------------------------------------------- */

static void csv_put(const char *s, int first)
{
    char cell[8192];
    rt_runfiles_csv_cell(cell, sizeof cell, s);
    printf("%s%s", first ? "" : ",", cell);
}

static int print_csv(run_info *runs, int nruns, const options *o)
{
    json_t *keys = union_keys(runs, nruns, o);
    int with_run = nruns > 1;
    if (with_run)
        csv_put("run", 1);
    for (size_t c = 0; c < json_array_size(keys); c++)
        csv_put(json_string_value(json_array_get(keys, c)), c == 0 && !with_run);
    printf("\n");
    for (int k = 0; k < nruns; k++) {
        json_t *rows = runs[k].rows.rows;
        for (size_t i = (size_t)first_row(&runs[k], o); i < json_array_size(rows); i++) {
            if (with_run)
                csv_put(runs[k].arg, 1);
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
    json_t *out = nruns == 1 ? result_json(&runs[0], o) : json_array();
    for (int k = 0; nruns > 1 && k < nruns; k++)
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
            ss[ns++] = (svg_series){.label = nruns > 1 ? runs[k].arg : metrics[m], .x = xy[0],
                                    .y = xy[1], .n = (int)json_array_size(runs[k].rows.rows)};
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

int main(int argc, char **argv)
{
    options o = {0};
    int first = parse_options(&o, argc, argv);
    if (first < 0)
        return 2;
    glob_t trials;
    char **dirs = NULL;
    int nruns = expand_experiments(argv + first, argc - first, &dirs, &trials);
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
        rc = load_run(&runs[k], dirs[k], &o);
    if (rc == 0 && o.plot) {
        int dm = o.nmetrics ? o.nmetrics : 3;
        rc = plot(o.plot, runs, nruns, o.nmetrics ? o.metrics : default_metrics, dm);
    }
    if (rc == 0) {
        if (o.csv)
            rc = print_csv(runs, nruns, &o);
        else if (o.json)
            rc = print_json(runs, nruns, &o);
        else if (o.best)
            rc = print_best(runs, nruns);
        else if (o.plot)
            ;   /* only the chart was asked for */
        else if (nruns == 1)
            print_result(&runs[0], &o);
        else
            compare_runs(runs, nruns, &o);
    }
    for (int k = 0; k < nruns; k++)
        free_run(&runs[k]);
    free(runs);
    free(dirs);
    globfree(&trials);
    if (fflush(stdout) != 0)
        return 1;
    return rc;
}
