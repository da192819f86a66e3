/* rt_report: one report = one line of result.json and one row of
 * progress.csv, written by rank 0 (ray.train.report). Both files get the
 * same text for every number (the shortest decimal that reads back as the
 * same double), so they always agree.
 *
 * progress.csv keeps one header: a report with a column the file does not
 * have yet rewrites the whole file (new header, old rows padded with empty
 * cells) into a temporary file that is renamed over it, so no reader ever
 * sees a row that does not match the header. Also here: the helpers that
 * reduce metrics across ranks. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "run_internal.h"
#include "runfiles.h"

#define MAX_METRICS 4096
#define MAX_NAME 128

/* ---- a growing text buffer ------------------------------------------------------ */
typedef struct text { char *s; size_t len, cap; int failed; } text;

static void text_add(text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->s, cap);
        if (!p) {
            t->failed = 1;
            return;
        }
        t->s = p;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void text_str(text *t, const char *s) { text_add(t, s, strlen(s)); }

static void text_csv(text *t, const char *s)
{
    char small[256];
    size_t n = rt_runfiles_csv_cell(small, sizeof small, s);
    if (n < sizeof small) {
        text_add(t, small, n);
        return;
    }
    char *big = malloc(n + 1);
    if (!big) {
        t->failed = 1;
        return;
    }
    rt_runfiles_csv_cell(big, n + 1, s);
    text_add(t, big, n);
    free(big);
}

static void text_json_string(text *t, const char *s)
{
    json_t *js = json_string(s);
    char *enc = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
    json_decref(js);
    if (!enc) {
        t->failed = 1;
        return;
    }
    text_str(t, enc);
    free(enc);
}

/* ---- the fields of one report ----------------------------------------------------- */
typedef struct field {
    const char *name;
    char value[40];          /* number text; "" = null */
    const char *string;      /* non-NULL: a string value (checkpoint) */
} field;

static const char *const auto_names[] = {"time_this_iter_s", "time_total_s", "world_size",
                                         "timestamp"};

static int given(const rt_metric *m, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (!strcmp(m[i].name, name))
            return 1;
    return 0;
}

/* JSON strings must be UTF-8: refuse what jansson cannot encode. */
static rt_status check_utf8(const char *s, const char *what)
{
    json_t *js = json_string(s);
    if (!js)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_report: %s is not valid UTF-8", what);
    json_decref(js);
    return RT_OK;
}

static rt_status check_metrics(const rt_metric *m, int count)
{
    if (count < 0 || count > MAX_METRICS || (count > 0 && !m))
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_report: %d metrics (0..%d allowed)", count,
                        MAX_METRICS);
    for (int i = 0; i < count; i++) {
        const char *n = m[i].name;
        if (!n || !n[0] || strlen(n) >= MAX_NAME)
            return RT_ERROR(RT_ERR_INVALID_ARG, "rt_report: metric %d has an empty name or "
                            "one of %d characters or more", i, MAX_NAME);
        if (!strcmp(n, "training_iteration") || !strcmp(n, "checkpoint"))
            return RT_ERROR(RT_ERR_INVALID_ARG, "rt_report: metric name '%s' is reserved "
                            "(rt_report fills it in)", n);
        if (given(m, i, n))
            return RT_ERROR(RT_ERR_INVALID_ARG, "rt_report: metric '%s' appears twice", n);
        RT_CHECK(check_utf8(n, "metric name"));
    }
    return RT_OK;
}

/* Metrics, then the auto-filled fields the caller did not give; fields must
 * hold count + 6. */
static int build_fields(field *f, const rt_run *r, const rt_metric *m, int count,
                        const char *checkpoint, double now)
{
    int n = 0;
    for (int i = 0; i < count; i++, n++) {
        f[n] = (field){.name = m[i].name};
        rt_runfiles_format_number(f[n].value, sizeof f[n].value, m[i].value);
    }
    double autos[] = {now - r->last_report_time, now - r->start_time, (double)r->world_size};
    for (int i = 0; i < 3; i++)
        if (!given(m, count, auto_names[i])) {
            f[n] = (field){.name = auto_names[i]};
            rt_runfiles_format_number(f[n++].value, sizeof f[0].value, autos[i]);
        }
    f[n] = (field){.name = "training_iteration"};
    snprintf(f[n++].value, sizeof f[0].value, "%d", r->iteration);
    if (!given(m, count, "timestamp")) {
        f[n] = (field){.name = "timestamp"};
        snprintf(f[n++].value, sizeof f[0].value, "%lld", (long long)time(NULL));
    }
    if (checkpoint)
        f[n++] = (field){.name = "checkpoint", .string = checkpoint};
    return n;
}

/* ---- result.json ------------------------------------------------------------------ */

static rt_status json_line(text *t, const field *f, int n)
{
    text_str(t, "{");
    for (int i = 0; i < n; i++) {
        if (i)
            text_str(t, ",");
        text_json_string(t, f[i].name);
        text_str(t, ":");
        if (f[i].string)
            text_json_string(t, f[i].string);
        else
            text_str(t, f[i].value[0] ? f[i].value : "null");   /* NaN/Inf: null */
    }
    text_str(t, "}\n");
    return t->failed ? RT_ERROR(RT_ERR_NOMEM, "out of memory formatting a report") : RT_OK;
}

static rt_status append_file(const char *dir, const char *name, const text *t)
{
    char path[RT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd;
    RT_CHECK(rt_fs_open_write(&fd, path, O_APPEND, RT_RUN_FILE_MODE, NULL));
    /* One write per line: a reader never sees half of a line it can parse. */
    rt_status st = rt_fs_write_all(fd, t->s, t->len, path);
    if (close(fd) != 0 && st == RT_OK)
        st = RT_ERROR(RT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return st;
}

/* A process killed while writing may leave a line without its newline; a
 * new line appended to it would be torn too, so the tail is cut off once,
 * before this process's first report. */
static rt_status trim_torn_tail(const char *dir, const char *name)
{
    char path[RT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? RT_OK
                               : RT_ERROR(RT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    off_t end = fstat(fd, &st) == 0 ? st.st_size : 0, keep = end;
    char c = '\n';
    while (keep > 0 && pread(fd, &c, 1, keep - 1) == 1 && c != '\n')
        keep--;
    rt_status s = RT_OK;
    if (keep < end) {
        rt_warn("%s: removing a torn last line (%lld bytes) left by an earlier process",
                path, (long long)(end - keep));
        if (ftruncate(fd, keep) != 0)
            s = RT_ERROR(RT_ERR_IO, "cannot truncate %s: %s", path, strerror(errno));
    }
    close(fd);
    return s;
}

/* ---- progress.csv ----------------------------------------------------------------- */

static rt_status add_column(rt_run *r, const char *name)
{
    if (r->ncolumns == r->columns_cap) {
        int cap = r->columns_cap ? 2 * r->columns_cap : 32;
        char **p = realloc(r->columns, (size_t)cap * sizeof *p);
        if (!p)
            return RT_ERROR(RT_ERR_NOMEM, "out of memory for progress.csv columns");
        r->columns = p;
        r->columns_cap = cap;
    }
    r->columns[r->ncolumns] = strdup(name);
    if (!r->columns[r->ncolumns])
        return RT_ERROR(RT_ERR_NOMEM, "out of memory for progress.csv columns");
    r->ncolumns++;
    return RT_OK;
}

/* Splits a CSV header line (quotes as text_csv writes them) into columns. */
static rt_status parse_header(rt_run *r, const char *line)
{
    char cell[MAX_NAME * 2 + 2];
    const char *p = line;
    while (*p && *p != '\n' && *p != '\r') {
        size_t n = 0;
        int quoted = *p == '"';
        p += quoted;
        for (; *p; p++) {
            if (quoted && *p == '"' && p[1] == '"')
                p++;
            else if (quoted && *p == '"') {
                p++;
                quoted = 0;
                continue;
            } else if (!quoted && (*p == ',' || *p == '\n' || *p == '\r'))
                break;
            if (n + 1 < sizeof cell)
                cell[n++] = *p;
        }
        cell[n] = '\0';
        RT_CHECK(add_column(r, cell));
        if (*p == ',')
            p++;
    }
    return RT_OK;
}

/* Columns of an existing progress.csv (a resumed run appends to it). */
static rt_status load_columns(rt_run *r)
{
    char path[RT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/progress.csv", r->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? RT_OK
                               : RT_ERROR(RT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, f);
    fclose(f);
    rt_status st = len > 0 ? parse_header(r, line) : RT_OK;
    free(line);
    return st;
}

static void header_text(text *t, const rt_run *r)
{
    for (int i = 0; i < r->ncolumns; i++) {
        if (i)
            text_str(t, ",");
        text_csv(t, r->columns[i]);
    }
    text_str(t, "\n");
}

/* Old rows, each padded with `added` empty cells, after the new header. */
static rt_status copy_rows(FILE *in, int fd, int added, const char *path)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, in);   /* the old header */
    rt_status st = RT_OK;
    text t = {0};
    while (st == RT_OK && len >= 0 && (len = getline(&line, &cap, in)) > 0) {
        t.len = 0;
        text_add(&t, line, (size_t)len - (line[len - 1] == '\n'));
        for (int i = 0; i < added; i++)
            text_str(&t, ",");
        text_str(&t, "\n");
        st = t.failed ? RT_ERROR(RT_ERR_NOMEM, "out of memory rewriting %s", path)
                      : rt_fs_write_all(fd, t.s, t.len, path);
    }
    free(t.s);
    free(line);
    return st;
}

typedef struct csv_rewrite { rt_run *r; int added; const char *path; } csv_rewrite;

/* The new header, then the old rows padded (rt_fs_replace's writer). */
static rt_status write_rewritten_csv(void *arg, int fd, const char *tmp)
{
    const csv_rewrite *c = arg;
    text h = {0};
    header_text(&h, c->r);
    rt_status st = h.failed ? RT_ERROR(RT_ERR_NOMEM, "out of memory rewriting %s", c->path)
                            : rt_fs_write_all(fd, h.s, h.len, tmp);
    free(h.s);
    FILE *in = st == RT_OK ? fopen(c->path, "r") : NULL;
    if (in) {
        st = copy_rows(in, fd, c->added, tmp);
        fclose(in);
    }
    return st;
}

static rt_status rewrite_csv(rt_run *r, int added)
{
    char path[RT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/progress.csv", r->dir);
    csv_rewrite c = {r, added, path};
    return rt_fs_replace(path, RT_RUN_FILE_MODE, write_rewritten_csv, &c);
}

static int column_of(const rt_run *r, const char *name)
{
    for (int i = 0; i < r->ncolumns; i++)
        if (!strcmp(r->columns[i], name))
            return i;
    return -1;
}

static rt_status append_csv(rt_run *r, const field *f, int n)
{
    int before = r->ncolumns;
    for (int i = 0; i < n; i++)
        if (column_of(r, f[i].name) < 0)
            RT_CHECK(add_column(r, f[i].name));
    if (r->ncolumns != before)
        RT_CHECK(rewrite_csv(r, r->ncolumns - before));
    text t = {0};
    for (int c = 0; c < r->ncolumns; c++) {
        if (c)
            text_str(&t, ",");
        for (int i = 0; i < n; i++)
            if (!strcmp(f[i].name, r->columns[c])) {
                text_csv(&t, f[i].string ? f[i].string : f[i].value);
                break;
            }
    }
    text_str(&t, "\n");
    rt_status st = t.failed ? RT_ERROR(RT_ERR_NOMEM, "out of memory formatting a report")
                            : append_file(r->dir, "progress.csv", &t);
    free(t.s);
    return st;
}

/* ---- the report ---------------------------------------------------------------------- */

static const char *relative_checkpoint(const rt_run *r, const char *ckpt)
{
    size_t n = strlen(r->dir);
    if (ckpt && !strncmp(ckpt, r->dir, n) && ckpt[n] == '/')
        return ckpt + n + 1;
    return ckpt;
}

/* The report's numbers (as written, so that TensorBoard shows what
 * result.json holds) to the events file; strings and nulls are left out. */
static rt_status tensorboard_report(rt_run *r, const field *f, int n)
{
    const char **names = NULL;
    double *values = NULL;
    rt_status st = rt_alloc(&names, (size_t)n, sizeof *names, "report names");
    if (st == RT_OK)
        st = rt_alloc(&values, (size_t)n, sizeof *values, "report values");
    int kept = 0;
    for (int i = 0; st == RT_OK && i < n; i++)
        if (!f[i].string && f[i].value[0]) {
            names[kept] = f[i].name;
            values[kept++] = strtod(f[i].value, NULL);
        }
    if (st == RT_OK)
        st = rt_tfevents_report(r, names, values, kept);
    rt_free(names);
    rt_free(values);
    return st;
}

static rt_status record(rt_run *r, const rt_metric *m, int count, const char *ckpt, double now)
{
    if (!r->files_checked) {
        RT_CHECK(trim_torn_tail(r->dir, "result.json"));
        RT_CHECK(trim_torn_tail(r->dir, "progress.csv"));
        RT_CHECK(load_columns(r));
        r->files_checked = 1;
    }
    field *f = malloc(((size_t)count + 6) * sizeof *f);
    if (!f)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory for a report of %d metrics", count);
    int n = build_fields(f, r, m, count, relative_checkpoint(r, ckpt), now);
    text line = {0};
    rt_status st = json_line(&line, f, n);
    if (st == RT_OK)
        st = append_file(r->dir, "result.json", &line);
    if (st == RT_OK)
        st = append_csv(r, f, n);
    if (st == RT_OK && r->tensorboard)
        st = tensorboard_report(r, f, n);
    if (st == RT_OK) {
        json_decref(r->last);
        r->last = json_loads(line.s, 0, NULL);
    }
    free(line.s);
    free(f);
    return st;
}

/* The session's report hook (a tuning scheduler) on the report just
 * recorded, agreed: any rank's "stop" stops the run (rt_run_should_stop). */
static rt_status ask_scheduler(rt_run *r, const rt_metric *metrics, int count)
{
    int stop = rt_session_ask_report_hook(r->session, metrics, count, r->iteration), any = 0;
    RT_CHECK(rt_comm_agree_flag(rt_session_comm(r->session), RT_OK, stop, &any));
    r->should_stop |= any;
    return RT_OK;
}

int rt_run_should_stop(const rt_run *r) { return r->should_stop; }

rt_status rt_report(rt_run *r, const rt_metric *metrics, int count, const char *checkpoint_dir)
{
    r->iteration++;
    double now = rt_time_now();
    rt_status st = check_metrics(metrics, count);
    if (st == RT_OK && checkpoint_dir)
        st = check_utf8(checkpoint_dir, "the checkpoint directory");
    if (st == RT_OK && r->rank == 0) {
        st = record(r, metrics, count, checkpoint_dir, now);
        if (st == RT_OK)
            rt_progress_print_report(r, metrics, count, now - r->last_report_time);
    }
    st = rt_session_agree(r->session, st);
    if (st != RT_OK) {
        r->iteration--;        /* agreed: no rank counts a refused report */
        return st;
    }
    r->last_report_time = now;
    return ask_scheduler(r, metrics, count);
}

/* ---- reductions ------------------------------------------------------------------- */

rt_status rt_run_reduce(rt_run *r, double *values, int count, rt_reduce_op op)
{
    if (count < 0 || (unsigned)op > RT_REDUCE_MAX)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_run_reduce: count %d, op %d", count, (int)op);
    return rt_comm_allreduce(rt_session_comm(r->session), values, (size_t)count,
                             RT_DTYPE_FLOAT64, op);
}

rt_status rt_run_reduce_metrics(rt_run *r, rt_metric *metrics, int count, rt_reduce_op op)
{
    double stack[64], *v = stack;
    rt_status st = RT_OK;
    if (count > (int)(sizeof stack / sizeof stack[0]))
        st = rt_alloc(&v, (size_t)count, sizeof *v, "metric values");
    /* Agreed: a rank without the buffer must not leave the others in the
     * all-reduce. */
    st = rt_session_agree(r->session, st);
    for (int i = 0; st == RT_OK && i < count; i++)
        v[i] = metrics[i].value;
    if (st == RT_OK)
        st = rt_run_reduce(r, v, count, op);
    for (int i = 0; st == RT_OK && i < count; i++)
        metrics[i].value = v[i];
    if (v != stack)
        rt_free(v);
    return st;
}
