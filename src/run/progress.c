/* Console progress of rank 0: a per-epoch bar on a terminal, plain lines
 * when stdout is a file (Slurm logs, tests), a one-line summary per report
 * and the final summary table. Nothing here is collective and nothing here
 * fails: the display must never stop a training run. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run_internal.h"
#include "runfiles.h"

#define BAR_WIDTH 24
#define REDRAW_S 0.1     /* at most ~10 bar redraws per second */

static int shows_progress(const rt_run *r)
{
    return r && r->rank == 0 && r->progress.verbose >= 1;
}

void rt_progress_clear(rt_run *r)
{
    if (r && r->progress.bar_visible) {
        fputs("\r\033[K", stdout);
        fflush(stdout);
        r->progress.bar_visible = 0;
    }
}

void rt_run_progress_epoch(rt_run *r, long long epoch, long long epochs, long long steps)
{
    if (!shows_progress(r))
        return;
    rt_progress *p = &r->progress;
    p->epoch = epoch;
    p->epochs = epochs;
    p->steps = steps;
    p->epoch_start = p->last_draw = rt_time_now();
}

/* "1:02:03" or "2:03" */
static void format_duration(char *out, size_t size, double s)
{
    if (!isfinite(s) || s < 0 || s > 1e8) {
        snprintf(out, size, "?");
        return;
    }
    long t = lround(s);
    if (t >= 3600)
        snprintf(out, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, size, "%ld:%02ld", t / 60, t % 60);
}

static void epoch_label(char *out, size_t size, const rt_progress *p)
{
    if (p->epochs > 0)
        snprintf(out, size, "epoch %lld/%lld", p->epoch, p->epochs);
    else
        snprintf(out, size, "epoch %lld", p->epoch);
}

static void draw_bar(rt_progress *p, long long done, double rate, double eta, double loss)
{
    char label[64], eta_s[32], bar[BAR_WIDTH + 1];
    epoch_label(label, sizeof label, p);
    format_duration(eta_s, sizeof eta_s, eta);
    int filled = p->steps > 0 ? (int)(BAR_WIDTH * done / p->steps) : 0;
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    printf("\r%s [%s] %lld/%lld  %.1f it/s  ETA %s  loss %.4f\033[K", label, bar, done,
           p->steps, rate, eta_s, loss);
    fflush(stdout);
    p->bar_visible = 1;
}

void rt_run_progress_step(rt_run *r, long long done, double loss)
{
    if (!shows_progress(r))
        return;
    rt_progress *p = &r->progress;
    double now = rt_time_now();
    int last = p->steps > 0 && done >= p->steps;
    double interval = p->tty ? REDRAW_S : p->log_every_s;
    if (!last && now - p->last_draw < interval)
        return;
    if (!p->tty && last)
        return;   /* the report's summary line follows at once */
    p->last_draw = now;
    double elapsed = now - p->epoch_start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    double eta = rate > 0 && p->steps > 0 ? (double)(p->steps - done) / rate : NAN;
    if (p->tty) {
        draw_bar(p, done, rate, eta, loss);
        return;
    }
    char label[64], eta_s[32];
    epoch_label(label, sizeof label, p);
    format_duration(eta_s, sizeof eta_s, eta);
    rt_info("%s  step %lld/%lld  %.1f it/s  ETA %s  loss %.4f", label, done, p->steps, rate,
            eta_s, loss);
}

/* "name 0.1234 | ..." of the caller's metrics (rt_runfiles_format_short:
 * step 10320, samples_per_s 24140), epoch shown as E/N. */
void rt_progress_print_report(rt_run *r, const rt_metric *m, int count, double iter_time)
{
    if (!shows_progress(r))
        return;
    rt_progress_clear(r);
    char line[2048];
    size_t len = (size_t)snprintf(line, sizeof line, "[%d]", r->iteration);
    for (int i = 0; i < count && len < sizeof line; i++) {
        if (!strcmp(m[i].name, "epoch") && r->progress.epochs > 0)
            len += (size_t)snprintf(line + len, sizeof line - len, " epoch %.0f/%lld |",
                                    m[i].value, r->progress.epochs);
        else {
            char value[48];
            rt_runfiles_format_short(value, sizeof value, m[i].value);
            len += (size_t)snprintf(line + len, sizeof line - len, " %s %s |", m[i].name,
                                    value);
        }
    }
    if (len < sizeof line)
        snprintf(line + len, sizeof line - len, " %.2f s", iter_time);
    rt_info("%s", line);
}

/* ---- the final summary ---------------------------------------------------------- */

static int summary_metric(const char *name)
{
    static const char *const skip[] = {"epoch", "step", "time_this_iter_s", "time_total_s",
                                       "world_size", "training_iteration", "timestamp",
                                       "checkpoint", "train_time_s"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (!strcmp(name, skip[i]))
            return 0;
    return 1;
}

static void value_text(char *out, size_t size, const json_t *v)
{
    if (json_is_string(v))
        snprintf(out, size, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, size, "%lld", (long long)json_integer_value(v));
    else if (json_is_number(v))
        rt_runfiles_format_short(out, size, json_number_value(v));
    else
        snprintf(out, size, "-");
}

#define SUMMARY_METRICS 4

/* Columns: run, status, iter, total time, then up to 4 metrics of the last report. */
static void print_table(const rt_run *r, const char *status)
{
    const char *base = strrchr(r->dir, '/');
    char cells[2][4 + SUMMARY_METRICS][48];
    const char *ptrs[2 * (4 + SUMMARY_METRICS)];
    int cols = 4;
    snprintf(cells[0][0], 48, "run");
    snprintf(cells[0][1], 48, "status");
    snprintf(cells[0][2], 48, "iter");
    snprintf(cells[0][3], 48, "total time (s)");
    snprintf(cells[1][0], 48, "%.47s", base ? base + 1 : r->dir);
    snprintf(cells[1][1], 48, "%s", status);
    snprintf(cells[1][2], 48, "%d", r->iteration);
    snprintf(cells[1][3], 48, "%.1f", rt_time_now() - r->start_time);
    const char *key;
    json_t *v;
    json_object_foreach(r->last, key, v) {
        if (cols == 4 + SUMMARY_METRICS || !summary_metric(key))
            continue;
        snprintf(cells[0][cols], 48, "%s", key);
        value_text(cells[1][cols], 48, v);
        cols++;
    }
    for (int row = 0; row < 2; row++)
        for (int c = 0; c < cols; c++)
            ptrs[row * cols + c] = cells[row][c];
    rt_runfiles_print_table(stdout, ptrs, 2, cols);
}

static void print_checkpoints(const rt_run *r)
{
    json_t *index = NULL;
    rt_ckpt_ranking list = {0};
    if (rt_runfiles_read_json(&index, r->dir, "checkpoint_index.json") != RT_OK ||
        rt_runfiles_rank_checkpoints(&list, index, r->score_attribute, r->score_order) != RT_OK) {
        printf("Checkpoints: %s\n", rt_error_message());
        rt_error_clear();
    } else if (list.count == 0) {
        printf("Checkpoints: none\n");
    } else {
        printf("Latest checkpoint: %s/%s\n", r->dir, list.items[list.latest].dir);
        if (list.metric[0] && !isnan(list.items[0].score)) {
            char score[48];
            rt_runfiles_format_short(score, sizeof score, list.items[0].score);
            printf("Best checkpoint: %s/%s (%s %s)\n", r->dir, list.items[0].dir,
                   list.metric, score);
        }
    }
    rt_runfiles_free_checkpoints(&list);
    json_decref(index);
}

void rt_run_print_summary(rt_run *r, rt_status st)
{
    if (!r || r->rank != 0)
        return;
    rt_progress_clear(r);
    const char *status = st == RT_OK ? "TERMINATED" : st == RT_STOPPED ? "STOPPED" : "ERROR";
    printf("\nRun status: %s after %d report(s)\n", status, r->iteration);
    print_table(r, status);
    print_checkpoints(r);
    if (st != RT_OK && st != RT_STOPPED)
        printf("Error: see %s/error.txt\n", r->dir);
    char abs[PATH_MAX];
    printf("Run path: %s\n", realpath(r->dir, abs) ? abs : r->dir);
    fflush(stdout);
}
