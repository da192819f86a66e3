/* Reading a run directory's files (see runfiles.h). Every file is untrusted
 * input, possibly still being written by a live run: lines and files are
 * bounded before anything is allocated, and a torn last line is reported to
 * the caller, not treated as an error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "rtrain/ckpt.h"
#include "runfiles.h"

void rt_runfiles_format_number(char *out, size_t size, double v)
{
    if (!isfinite(v)) {
        snprintf(out, size, "%s", "");
        return;
    }
    /* The fewest significant digits that read back exactly (17 always do),
     * then Python's layout: positional for exponents -4..15, else 1.5e+20. */
    char sci[40];
    int digits;
    for (digits = 1; digits < 17; digits++) {
        snprintf(sci, sizeof sci, "%.*e", digits - 1, v);
        if (strtod(sci, NULL) == v)
            break;
    }
    snprintf(sci, sizeof sci, "%.*e", digits - 1, v);
    int exp = atoi(strchr(sci, 'e') + 1);
    if (exp >= -4 && exp < 16)
        snprintf(out, size, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0, v);
    else
        snprintf(out, size, "%s", sci);
    if (!strpbrk(out, ".eE"))
        strncat(out, ".0", size - strlen(out) - 1);
}

void rt_runfiles_format_short(char *out, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(out, size, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v > 0 ? "inf" : "-inf");
        return;
    }
    /* Whole numbers (steps, epochs, samples) and values of 1000 or more
     * (rates) as integers; 2^53 and beyond are not counts any more. */
    if (fabs(v) < 9007199254740992.0 && (v == floor(v) || fabs(v) >= 999.5)) {
        snprintf(out, size, "%.0f", v);
        return;
    }
    if (fabs(v) >= 9007199254740992.0 || fabs(v) < 1e-4) {
        snprintf(out, size, "%.4g", v);
        return;
    }
    /* 4 significant digits, positional, without trailing zeros. */
    int exp = (int)floor(log10(fabs(v)));
    int decimals = 3 - exp;
    snprintf(out, size, "%.*f", decimals > 0 ? decimals : 0, v);
    if (strchr(out, '.')) {
        size_t n = strlen(out);
        while (n > 0 && out[n - 1] == '0')
            out[--n] = '\0';
        if (n > 0 && out[n - 1] == '.')
            out[--n] = '\0';
    }
}

static rt_status join_path(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return RT_ERROR(RT_ERR_INVALID_ARG, "path too long: %s/%s", dir, name);
    return RT_OK;
}

/* Reads one line of at most max bytes into buf (NUL-terminated, newline
 * kept). Returns the line length, 0 at EOF, -1 when the line is longer
 * than max (the rest of it is skipped). */
static long read_line(FILE *f, char *buf, size_t max)
{
    size_t len = 0;
    int c;
    while ((c = getc(f)) != EOF) {
        if (len + 1 >= max) {
            while (c != EOF && c != '\n')
                c = getc(f);
            return -1;
        }
        buf[len++] = (char)c;
        if (c == '\n')
            break;
    }
    buf[len] = '\0';
    return (long)len;
}

static int blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] == '\0';
}

/* One line of result.json: appended when it is an object, else counted. */
static void take_line(rt_run_rows *out, const char *line, long len, int at_eof)
{
    int terminated = len > 0 && line[len - 1] == '\n';
    json_t *obj = len > 0 ? json_loads(line, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, NULL)
                          : NULL;
    if (obj && json_is_object(obj)) {
        json_array_append_new(out->rows, obj);
        return;
    }
    json_decref(obj);
    if (!terminated && at_eof) {
        out->torn_line = out->lines;   /* a writer may be in the middle of it */
        return;
    }
    if (out->bad_lines++ == 0)
        out->first_bad_line = out->lines;
}

rt_status rt_runfiles_read_rows(rt_run_rows *out, const char *dir)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(dir, &st) != 0)
        return RT_ERROR(RT_ERR_IO, "run directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return RT_ERROR(RT_ERR_IO, "%s is not a run directory (not a directory)", dir);
    char path[4200];
    RT_CHECK(join_path(path, sizeof path, dir, "result.json"));
    out->rows = json_array();
    char *buf = malloc(RT_RUNFILES_MAX_LINE);
    if (!out->rows || !buf) {
        free(buf);
        return RT_ERROR(RT_ERR_NOMEM, "out of memory reading %s", path);
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        free(buf);
        return errno == ENOENT ? RT_OK
                               : RT_ERROR(RT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    }
    long len;
    while ((len = read_line(f, buf, RT_RUNFILES_MAX_LINE)) != 0) {
        out->lines++;
        if (len > 0 && blank(buf))
            continue;
        if (len < 0) {
            if (out->bad_lines++ == 0)
                out->first_bad_line = out->lines;
            continue;
        }
        int c = getc(f);
        int at_eof = c == EOF;
        if (!at_eof)
            ungetc(c, f);
        take_line(out, buf, len, at_eof);
    }
    int err = ferror(f);
    fclose(f);
    free(buf);
    if (err)
        return RT_ERROR(RT_ERR_IO, "error reading %s", path);
    return RT_OK;
}

void rt_runfiles_free_rows(rt_run_rows *rows)
{
    json_decref(rows->rows);
    rows->rows = NULL;
}

/* Opens dir/name for reading after checking it is a regular file of at most
 * max bytes; *f = NULL when it does not exist. */
static rt_status open_bounded(FILE **f, long *size, const char *dir, const char *name, long max)
{
    char path[4200];
    RT_CHECK(join_path(path, sizeof path, dir, name));
    *f = NULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return RT_OK;
        return RT_ERROR(RT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode) || st.st_size > max)
        return RT_ERROR(RT_ERR_FORMAT, "%s is not a regular file of at most %ld bytes", path,
                        max);
    *f = fopen(path, "r");
    if (!*f)
        return RT_ERROR(RT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    *size = (long)st.st_size;
    return RT_OK;
}

rt_status rt_runfiles_read_json(json_t **out, const char *dir, const char *name)
{
    *out = NULL;
    FILE *f;
    long size;
    RT_CHECK(open_bounded(&f, &size, dir, name, RT_RUNFILES_MAX_JSON));
    if (!f)
        return RT_OK;
    json_error_t jerr;
    *out = json_loadf(f, JSON_DECODE_ANY, &jerr);
    fclose(f);
    if (!*out)
        return RT_ERROR(RT_ERR_FORMAT, "%s/%s:%d: not valid JSON: %s (the file is written "
                        "atomically, so this one was damaged or edited)", dir, name,
                        jerr.line, jerr.text);
    return RT_OK;
}

rt_status rt_runfiles_read_text(char **out, const char *dir, const char *name, size_t max)
{
    *out = NULL;
    FILE *f;
    long size;
    RT_CHECK(open_bounded(&f, &size, dir, name, (long)max));
    if (!f)
        return RT_OK;
    char *text = malloc((size_t)size + 1);
    size_t n = text ? fread(text, 1, (size_t)size, f) : 0;
    fclose(f);
    if (!text)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory reading %s/%s", dir, name);
    text[n] = '\0';
    *out = text;
    return RT_OK;
}

/* ---- checkpoints --------------------------------------------------------------- */

static double entry_score(const json_t *entry, const char *metric)
{
    if (!metric[0])
        return NAN;
    const json_t *v = json_object_get(json_object_get(entry, "metrics"), metric);
    if (!v)
        v = json_object_get(entry, metric);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* The sequence (commit order) of "checkpoint_000012"; -1 if not that form. */
static long long dir_sequence(const char *dir)
{
    const char *digits = strncmp(dir, "checkpoint_", 11) == 0 ? dir + 11 : NULL;
    if (!digits || !*digits || strspn(digits, "0123456789") != strlen(digits) ||
        strlen(digits) > 15)
        return -1;
    return strtoll(digits, NULL, 10);
}

static void resolve_score(rt_ckpt_ranking *out, const json_t *index, const char *metric,
                          const char *mode)
{
    if (!metric || !metric[0])
        metric = json_string_value(json_object_get(index, "score_attribute"));
    snprintf(out->metric, sizeof out->metric, "%s", metric ? metric : "");
    if (!mode || !mode[0])
        mode = json_string_value(json_object_get(index, "score_order"));
    out->maximize = !(mode && !strcmp(mode, "min"));
}

/* The index lists checkpoints in commit order: a name that does not tell
 * its sequence falls back to its position there. */
static rt_status collect_items(rt_ckpt_ranking *out, const json_t *list, rt_ckpt_score **scores)
{
    size_t n = json_array_size(list);
    out->items = calloc(n, sizeof *out->items);
    *scores = calloc(n, sizeof **scores);
    if (!out->items || !*scores)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory ranking %zu checkpoints", n);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(list, i);
        const char *dir = json_string_value(json_object_get(e, "dir"));
        if (!dir)
            continue;
        const json_t *it = json_object_get(e, "training_iteration");
        long long seq = dir_sequence(dir);
        rt_ranked_ckpt *item = &out->items[out->count];
        *item = (rt_ranked_ckpt){
            .dir = dir, .iteration = json_is_integer(it) ? (long long)json_integer_value(it) : -1,
            .sequence = seq >= 0 ? seq : (long long)i, .score = entry_score(e, out->metric),
        };
        (*scores)[out->count++] = (rt_ckpt_score){
            .sequence = item->sequence, .has_score = !isnan(item->score), .score = item->score,
        };
    }
    return RT_OK;
}

rt_status rt_runfiles_rank_checkpoints(rt_ckpt_ranking *out, const json_t *index,
                                       const char *metric, const char *mode)
{
    memset(out, 0, sizeof *out);
    out->latest = -1;
    resolve_score(out, index, metric, mode);
    const json_t *list = json_object_get(index, "checkpoints");
    if (json_array_size(list) == 0)
        return RT_OK;
    rt_ckpt_score *scores = NULL;
    int *order = NULL;
    rt_status st = collect_items(out, list, &scores);
    if (st == RT_OK && !(order = calloc((size_t)out->count + 1, sizeof *order)))
        st = RT_ERROR(RT_ERR_NOMEM, "out of memory ranking %d checkpoints", out->count);
    rt_ranked_ckpt *ranked = st == RT_OK ? calloc((size_t)out->count + 1, sizeof *ranked) : NULL;
    if (st == RT_OK && !ranked)
        st = RT_ERROR(RT_ERR_NOMEM, "out of memory ranking %d checkpoints", out->count);
    if (st == RT_OK) {
        rt_ckpt_rank(scores, out->count, out->metric[0] != '\0',
                     out->maximize ? RT_CKPT_SCORE_MAX : RT_CKPT_SCORE_MIN, order);
        for (int i = 0; i < out->count; i++)
            ranked[i] = out->items[order[i]];
        free(out->items);
        out->items = ranked;
        for (int i = 0; i < out->count; i++)
            if (out->latest < 0 || out->items[i].sequence > out->items[out->latest].sequence)
                out->latest = i;
    } else {
        free(ranked);
        rt_runfiles_free_checkpoints(out);
    }
    free(order);
    free(scores);
    return st;
}

void rt_runfiles_free_checkpoints(rt_ckpt_ranking *list)
{
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

rt_status rt_runfiles_restarts(int *out, const char *dir)
{
    *out = 0;
    json_t *doc;
    RT_CHECK(rt_runfiles_read_json(&doc, dir, "attempts.json"));
    if (!doc)
        return RT_OK;
    const json_t *restarts = json_object_get(doc, "restarts");
    const json_t *attempts = json_is_array(doc) ? doc : json_object_get(doc, "attempts");
    if (json_is_integer(restarts))
        *out = (int)json_integer_value(restarts);
    else if (json_is_integer(attempts))
        *out = (int)json_integer_value(attempts) - 1;
    else if (json_is_array(attempts))
        *out = (int)json_array_size(attempts) - 1;
    if (*out < 0)
        *out = 0;
    json_decref(doc);
    return RT_OK;
}

void rt_runfiles_error_field(char *out, size_t size, const char *text, const char *key)
{
    out[0] = '\0';
    size_t klen = strlen(key);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, key, klen) || line[klen] != ':')
            continue;
        const char *v = line + klen + 1;
        v += strspn(v, " ");
        /* The message is the last field and may span lines. */
        size_t len = !strcmp(key, "message") ? strlen(v) : strcspn(v, "\n");
        while (len > 0 && (v[len - 1] == '\n' || v[len - 1] == ' '))
            len--;
        snprintf(out, size, "%.*s", (int)len, v);
        return;
    }
}

static void put_char(char *out, size_t size, size_t *n, char c)
{
    if (*n + 1 < size)
        out[*n] = c;
    (*n)++;
}

size_t rt_runfiles_csv_cell(char *out, size_t size, const char *s)
{
    int quote = s[strcspn(s, ",\"\r\n")] != '\0';
    size_t n = 0;
    if (quote)
        put_char(out, size, &n, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            put_char(out, size, &n, '"');   /* doubled */
        put_char(out, size, &n, *p);
    }
    if (quote)
        put_char(out, size, &n, '"');
    if (size > 0)
        out[n < size ? n : size - 1] = '\0';
    return n;
}

/* ---- tables -------------------------------------------------------------------- */

static void table_rule(FILE *f, const int *width, int cols)
{
    for (int c = 0; c < cols; c++) {
        fputc('+', f);
        for (int i = 0; i < width[c] + 2; i++)
            fputc('-', f);
    }
    fputs("+\n", f);
}

/* Numbers, and "-" (no value) in their columns, are right-aligned. */
static int numeric_cell(const char *s)
{
    return (*s >= '0' && *s <= '9') || !strcmp(s, "-") ||
           ((*s == '-' || *s == '.') && s[1] >= '0' && s[1] <= '9');
}

void rt_runfiles_print_table(FILE *f, const char *const *cells, int rows, int cols)
{
    rt_runfiles_print_table_text(f, cells, rows, cols, 0);
}

void rt_runfiles_print_table_text(FILE *f, const char *const *cells, int rows, int cols,
                                  unsigned text_cols)
{
    int width[64] = {0};
    if (cols > 64)
        cols = 64;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            int w = (int)strlen(cells[r * cols + c]);
            if (w > width[c])
                width[c] = w;
        }
    table_rule(f, width, cols);
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            const char *s = cells[r * cols + c];
            int right = r > 0 && !(c < 32 && (text_cols >> c & 1u)) && numeric_cell(s);
            fprintf(f, "| %*s%-*s ", right ? width[c] : 0, right ? s : "",
                    right ? 0 : width[c], right ? "" : s);
        }
        fputs("|\n", f);
        if (r == 0)
            table_rule(f, width, cols);
    }
    table_rule(f, width, cols);
}
