/* run.profile: where the training loop's time goes, shown as PyTorch's
 * profiler summary (key_averages().table()) shows it. Every rank times its
 * own loop: each layer's forward and backward (the model adds them through
 * the training context: rtrain/nn.h's rt_layer_times), the backward hook
 * (DDP starting its bucket all-reduces) and the trainer's parts
 * (trainer.h's trainer_part); "other" is the loop's wall time less all of
 * them. At the end the ranks reduce these times once (a sum and a max) and
 * rank 0 prints the table and writes profile.txt (the same text) and
 * profile.json (the same numbers, unrounded) in the run directory.
 *
 * Which numbers: every row is the mean over ranks, so that the rows and
 * "other" add up to the mean wall time of the loop, which the % column
 * divides by; "Max s" is the slowest rank's total of the row, which shows
 * an imbalance (a rank that computes longer makes the others wait in the
 * next collective: their wait rows grow). Calls are one rank's (the max
 * over ranks; ranks make the same calls). Rows are sorted by total time,
 * "other" last. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "trainer.h"
#include "run/runfiles.h"

/* What each part is called (its category groups rows in profile.json). */
static const struct { const char *name, *category; } part_labels[PART_COUNT] = {
    [PART_LOSS] = {"loss", "loss"},
    [PART_OPTIMIZER] = {"optimizer step", "optimizer"},
    [PART_ZERO_GRAD] = {"zero_grad", "optimizer"},
    [PART_DATA] = {"data wait", "data"},
    [PART_GRAD_WAIT] = {"gradient all-reduce wait", "comm"},
    [PART_AGREE] = {"step agreement", "comm"},
    [PART_EPOCH_SYNC] = {"epoch-end reductions", "comm"},
    [PART_EVAL] = {"evaluation", "eval"},
    [PART_REPORT] = {"report", "report"},
    [PART_CHECKPOINT] = {"checkpoint pause", "checkpoint"},
    [PART_CKPT_COPY] = {"checkpoint copy wait (async)", "checkpoint"},
    [PART_CKPT_LAST] = {"last checkpoint's write (async)", "checkpoint"},
};

/* The timed entries, in the same order on every rank: forward and
 * backward of each layer, the backward hook, the parts, then "other". */
static int num_entries(const trainer_profile *p) { return 2 * p->layers->count + PART_COUNT + 2; }
static int hook_entry(const trainer_profile *p) { return 2 * p->layers->count; }
static int part_entry(const trainer_profile *p, int part) { return hook_entry(p) + 1 + part; }
static int other_entry(const trainer_profile *p) { return num_entries(p) - 1; }

rt_status trainer_profile_open(trainer *t)
{
    if (!t->cfg->run.profile)
        return RT_OK;
    trainer_profile *p = NULL;
    rt_status st = rt_alloc(&p, 1, sizeof *p, "profile");
    if (st == RT_OK)
        st = rt_layer_times_create(&p->layers, t->model);
    if (st == RT_OK) {
        p->first_step = t->step;
        p->first_epoch = t->epoch;
        t->prof = p;
    } else if (p) {
        rt_free(p);
    }
    RT_CHECK(rt_session_agree(t->session, st));
    p->start = rt_time_now();
    return RT_OK;
}

void trainer_profile_free(trainer *t)
{
    if (!t->prof)
        return;
    rt_layer_times_free(t->prof->layers);
    rt_free(t->prof);
    t->prof = NULL;
}

/* This rank's values: v[2k] seconds and v[2k + 1] calls of entry k, then
 * the wall time at v[2 * num_entries]. */
static void pack(const trainer_profile *p, double wall, double *v)
{
    const rt_layer_times *lt = p->layers;
    for (int i = 0; i < lt->count; i++)
        for (int pass = 0; pass < 2; pass++) {
            v[2 * (2 * i + pass)] = lt->rows[i].seconds[pass];
            v[2 * (2 * i + pass) + 1] = (double)lt->rows[i].calls[pass];
        }
    v[2 * hook_entry(p)] = lt->hook_seconds;
    v[2 * hook_entry(p) + 1] = (double)lt->hook_calls;
    for (int part = 0; part < PART_COUNT; part++) {
        v[2 * part_entry(p, part)] = p->seconds[part];
        v[2 * part_entry(p, part) + 1] = (double)p->calls[part];
    }
    double parts = 0.0;
    for (int k = 0; k < other_entry(p); k++)
        parts += v[2 * k];
    v[2 * other_entry(p)] = wall - parts;
    v[2 * other_entry(p) + 1] = 0.0;
    v[2 * num_entries(p)] = wall;
}

/* One row of the table. */
typedef struct prof_row {
    char name[RT_NAME_MAX];
    const char *type, *pass, *category;   /* type and pass may be NULL */
    double total, max, calls;
    int entry;
} prof_row;

typedef struct prof_summary {
    prof_row *rows;
    int count;
    double wall, wall_max;
    int world, threads;
    long long steps, epochs;
} prof_summary;

static void label_entry(const trainer *t, int k, prof_row *r)
{
    const trainer_profile *p = t->prof;
    static const char *const passes[2] = {"forward", "backward"};
    r->type = r->pass = NULL;
    if (k < hook_entry(p)) {
        const rt_layer *l = p->layers->rows[k / 2].layer;
        snprintf(r->name, sizeof r->name, "%s", l->name);
        r->type = l->ops->type;
        r->pass = passes[k % 2];
        r->category = "layer";
    } else if (k == hook_entry(p)) {
        snprintf(r->name, sizeof r->name, "gradient all-reduce start");
        r->type = "backward hook";
        r->category = "comm";
    } else if (k < other_entry(p)) {
        int part = k - part_entry(p, 0);
        snprintf(r->name, sizeof r->name, "%s", part_labels[part].name);
        r->category = part_labels[part].category;
        if (part == PART_LOSS) {
            r->type = rt_loss_name(t->loss);
            r->pass = "forward+backward";
        } else if (part == PART_OPTIMIZER) {
            r->type = rt_optim_type_name(t->cfg->optimizer.type);
            if (t->node)   /* the gradients' sums and the copies are in it too */
                r->pass = "node update";
        }
    } else {
        snprintf(r->name, sizeof r->name, "other");
        r->category = "other";
    }
}

/* Larger totals first; equal ones in entry order (the same every run). */
static int by_total(const void *a, const void *b)
{
    const prof_row *x = a, *y = b;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return x->entry - y->entry;
}

/* The rows of entries some rank called (and "other"), from the sums and
 * maxima over ranks. */
static rt_status summarise(const trainer *t, const double *sum, const double *max,
                           prof_summary *s)
{
    const trainer_profile *p = t->prof;
    int n = num_entries(p);
    RT_CHECK(rt_alloc(&s->rows, (size_t)n, sizeof *s->rows, "profile rows"));
    s->world = t->ctx->world_size;
    s->threads = t->threads;
    s->steps = (long long)(t->step - p->first_step);
    s->epochs = (long long)(t->epoch - p->first_epoch);
    s->wall = sum[2 * n] / s->world;
    s->wall_max = max[2 * n];
    for (int k = 0; k < n; k++) {
        if (k != other_entry(p) && max[2 * k + 1] == 0)
            continue;
        prof_row *r = &s->rows[s->count++];
        label_entry(t, k, r);
        r->entry = k;
        r->total = sum[2 * k] / s->world;
        r->max = max[2 * k];
        r->calls = max[2 * k + 1];
    }
    qsort(s->rows, (size_t)(s->count - 1), sizeof *s->rows, by_total);   /* other stays last */
    return RT_OK;
}

/* ---- the text ------------------------------------------------------------------ */

#define COLS 7
#define CELL 160

static void row_cells(const prof_summary *s, const prof_row *r, char (*c)[CELL])
{
    int other = !strcmp(r->category, "other");
    if (r->type)
        snprintf(c[0], CELL, "%s (%s)", r->name, r->type);
    else
        snprintf(c[0], CELL, "%s", r->name);
    snprintf(c[1], CELL, "%s", r->pass ? r->pass : "");
    if (other)
        snprintf(c[2], CELL, "-");
    else
        snprintf(c[2], CELL, "%.0f", r->calls);
    snprintf(c[3], CELL, "%.4f", r->total);
    snprintf(c[4], CELL, "%.1f", s->wall > 0 ? 100.0 * r->total / s->wall : 0.0);
    if (other || r->calls == 0)
        snprintf(c[5], CELL, "-");
    else
        snprintf(c[5], CELL, "%.3f", 1e3 * r->total / r->calls);
    snprintf(c[6], CELL, "%.4f", r->max);
}

static const char *const head[COLS] = {"Name", "Pass", "Calls", "Total s", "% of wall",
                                       "Mean ms", "Max s"};

/* The boxed table of rtrain's other summaries (rt_runfiles_print_table). */
static rt_status print_rows(FILE *f, const prof_summary *s)
{
    size_t cells = (size_t)(s->count + 1) * COLS;
    char (*text)[CELL] = NULL;
    const char **ptrs = NULL;
    rt_status st = rt_alloc(&text, cells, CELL, "profile table");
    if (st == RT_OK)
        st = rt_alloc(&ptrs, cells, sizeof *ptrs, "profile table");
    if (st == RT_OK) {
        for (int c = 0; c < COLS; c++)
            ptrs[c] = head[c];
        for (size_t i = COLS; i < cells; i++)
            ptrs[i] = text[i];
        for (int i = 0; i < s->count; i++)
            row_cells(s, &s->rows[i], text + (size_t)(i + 1) * COLS);
        rt_runfiles_print_table_text(f, ptrs, s->count + 1, COLS, 1u);   /* names left */
    }
    rt_free(text);
    rt_free(ptrs);
    return st;
}

/* The table as PyTorch's profiler prints it: a line saying what the numbers
 * are, the rows, and the wall time they divide. */
static rt_status format_text(const prof_summary *s, char **text)
{
    size_t len = 0;
    FILE *f = open_memstream(text, &len);
    if (!f)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory formatting the profile");
    fprintf(f, "Profile (run.profile): %d rank(s) x %d thread(s), %lld step(s) in %lld "
            "epoch(s)\nTimes are the mean over ranks, Max s the slowest rank's, %% of wall "
            "the share of the training loop's wall time; sorted by total, other last.\n",
            s->world, s->threads, s->steps, s->epochs);
    rt_status st = print_rows(f, s);
    fprintf(f, "Training loop wall time: %.3f s (mean over ranks), %.3f s (slowest rank)\n",
            s->wall, s->wall_max);
    if (ferror(f) && st == RT_OK)
        st = RT_ERROR(RT_ERR_NOMEM, "out of memory formatting the profile");
    fclose(f);
    return st;
}

/* ---- the JSON ------------------------------------------------------------------ */

static json_t *string_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *row_json(const prof_summary *s, const prof_row *r)
{
    int other = !strcmp(r->category, "other");
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "type", string_or_null(r->type));
    json_object_set_new(o, "pass", string_or_null(r->pass));
    json_object_set_new(o, "category", json_string(r->category));
    json_object_set_new(o, "calls", json_integer((json_int_t)r->calls));
    json_object_set_new(o, "total_s", json_real(r->total));
    json_object_set_new(o, "percent", json_real(s->wall > 0 ? 100.0 * r->total / s->wall : 0));
    json_object_set_new(o, "mean_ms", other || r->calls == 0
                                          ? json_null() : json_real(1e3 * r->total / r->calls));
    json_object_set_new(o, "max_s", json_real(r->max));
    return o;
}

static rt_status format_json(const prof_summary *s, char **text)
{
    json_t *rows = json_array();
    for (int i = 0; i < s->count; i++)
        json_array_append_new(rows, row_json(s, &s->rows[i]));
    json_t *root = json_pack("{s:i, s:s, s:i, s:i, s:I, s:I, s:f, s:f, s:o}", "version", 1,
                             "statistic", "mean over ranks; max_s: the slowest rank's",
                             "world_size", s->world, "threads", s->threads,
                             "steps", (json_int_t)s->steps, "epochs", (json_int_t)s->epochs,
                             "wall_s", s->wall, "wall_max_s", s->wall_max, "rows", rows);
    *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(root);
    if (!*text)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory writing profile.json");
    return RT_OK;
}

/* Rank 0: both texts from the reduced values. */
static rt_status format_profile(const trainer *t, const double *sum, const double *max,
                                char **text, char **json)
{
    prof_summary s = {0};
    rt_status st = summarise(t, sum, max, &s);
    if (st == RT_OK)
        st = format_text(&s, text);
    if (st == RT_OK)
        st = format_json(&s, json);
    rt_free(s.rows);
    return st;
}

/* Sums and maxima over ranks of this rank's values (n doubles each). */
static rt_status reduce(trainer *t, double *sum, double *max, size_t n)
{
    memcpy(max, sum, n * sizeof *max);
    RT_CHECK(rt_comm_allreduce(t->comm, sum, n, RT_DTYPE_FLOAT64, RT_REDUCE_SUM));
    return rt_comm_allreduce(t->comm, max, n, RT_DTYPE_FLOAT64, RT_REDUCE_MAX);
}

static rt_status report_values(trainer *t, double *sum, double *max, size_t n)
{
    char *text = NULL, *json = NULL;
    RT_CHECK(reduce(t, sum, max, n));
    rt_status st = t->ctx->world_rank == 0 ? format_profile(t, sum, max, &text, &json) : RT_OK;
    st = rt_session_agree(t->session, st);
    if (st == RT_OK && text) {
        printf("\n%s", text);
        fflush(stdout);
    }
    if (st == RT_OK)
        st = rt_run_write_file(t->run, "profile.txt", text);
    if (st == RT_OK)
        st = rt_run_write_file(t->run, "profile.json", json);
    free(text);
    free(json);
    return st;
}

rt_status trainer_profile_report(trainer *t)
{
    trainer_profile *p = t->prof;
    double wall = rt_time_now() - p->start;
    size_t n = 2 * (size_t)num_entries(p) + 1;
    double *v = NULL;
    rt_status st = rt_alloc(&v, 2 * n, sizeof *v, "profile values");
    RT_CHECK(rt_session_agree(t->session, st));
    pack(p, wall, v);
    st = report_values(t, v, v + n, n);
    rt_free(v);
    return st;
}
