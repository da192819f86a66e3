/* CSV datasets (data.format = "csv"): one table, plain or gzip-compressed,
 * whose first record names the columns. The rows are parsed with libcsv
 * (strict quoting) through zlib, which passes plain files through, into
 * memory: a float32 input row per sample and an int32 class or a float
 * target.
 *
 * Each split learns nothing on its own except the training split: it
 * learns the encoding (the categories of each categorical feature, the
 * class names of a text target, the means used to fill missing numbers)
 * from its own rows and records it as JSON (rt_dataset_set_encoding). An
 * evaluation split is opened with that JSON and encodes its rows the same
 * way, refusing what the training rows never had (an unseen category or
 * class) rather than guessing. The layout of the encoding:
 *
 *   {"format":"csv","target":"price","target_kind":"class"|"vector",
 *    "classes":["a","b"] (a text class target) | "num_classes":N (integer labels),
 *    "features":[{"name":"carat"},
 *                {"name":"cut","categories":["Fair","Good"]},
 *                {"name":"depth","fill":61.7}]}      (fill: data.fill_missing = mean)
 *
 * The file is untrusted input: fields and the column count are capped,
 * buffers grow only as rows arrive, and every message names the file and,
 * for a cell, its line and column. Line numbers are physical lines (blank
 * lines and line breaks inside quoted fields are counted); a record that
 * spans lines is reported at the line where it starts.
 *
 * Cell checks (numbers, missing values, ragged rows) apply to every row of
 * the file as it arrives; what is learned or looked up (categories,
 * classes, means) uses only the rows of this split, [first, last) of the
 * file (rt_data_source_rows). All rows are staged until the file ends,
 * because the row range depends on the row count; rt_csv_open_splits
 * builds both splits of data.test_fraction from one staging. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <csv.h>
#include <jansson.h>
#include <zlib.h>
#include "data/formats.h"

#define CSV_FIELD_MAX ((size_t)64 << 10)  /* bytes in one field */
#define CSV_COLUMNS_MAX 100000            /* columns of the header */
#define CSV_CHUNK ((size_t)64 << 10)      /* bytes handed to libcsv at a time */
#define CSV_LABEL_MAX (1 << 24)           /* integer class labels are below this */
#define CSV_FIRST_ROWS 1024               /* staged rows before the first growth */
#define CSV_SHOW 60                       /* characters of a cell quoted in a message */
#define CSV_LIST 600                      /* characters of a list of names in a message */
#define CSV_MISSING SIZE_MAX              /* a missing text cell's offset */

/* What happens to one column of the file as its cells arrive. */
enum { ROLE_IGNORED = 0, ROLE_NUMBER, ROLE_TEXT };

typedef struct csv_role {
    int kind;    /* ROLE_* */
    int target;  /* the target column (never missing) */
    int slot;    /* its number or text slot in the staged rows */
} csv_role;

/* One feature of the model's input, in input order. */
typedef struct csv_feature {
    char *name;
    int column;         /* index in this file's header */
    int categorical;
    int slot;           /* number slot (numeric) or text slot (categorical) */
    char **categories;  /* categorical: distinct training texts, sorted with strcmp */
    int ncat;
    int has_fill;
    double fill;        /* RT_FILL_MEAN: mean of the training rows' values */
    int64_t offset;     /* index of its first value in an input row */
} csv_feature;

/* What this split reads and how it encodes it: learned from the rows
 * (training split) or taken from the training split's encoding. */
typedef struct csv_plan {
    char *target;
    int target_column;
    rt_target_kind kind;
    char **classes;     /* a text class target: names sorted with strcmp; else NULL */
    int nclasses;
    int num_classes;    /* a class target: nclasses, or the largest integer label + 1 */
    csv_feature *features;
    int nfeatures;
    int nnum, ntext;    /* slots of the staged rows */
    int64_t inputs;     /* values of one input row */
} csv_plan;

/* Every row of the file as it arrived (only some become samples). */
typedef struct csv_table {
    int64_t rows, cap;
    float *num;         /* [cap][nnum]: NaN marks a missing cell */
    size_t *text;       /* [cap][ntext]: offsets into chars; CSV_MISSING: missing */
    int64_t *line;      /* [cap]: where each row starts, for messages */
    char *chars;        /* the text cells, each NUL-terminated */
    size_t used, size;
} csv_table;

/* The state libcsv's callbacks share. They cannot return a status, so the
 * first error is kept in `status` and every later callback does nothing. */
typedef struct csv_reader {
    const rt_data_source *src;
    const char *path;
    locale_t c_locale;  /* numbers are read as in the C locale, whatever the process's */
    rt_status status;
    int64_t line;       /* physical line where the current record starts */
    int64_t breaks;     /* line breaks inside the current record's quoted fields */
    int last_term;      /* the character that ended the previous record */
    int64_t field;      /* fields of the current record so far */
    int header_done;
    int64_t header_line;
    char **names;       /* the header's column names [ncols] */
    int ncols, names_cap;
    int *by_name;       /* column indices sorted by name [ncols] */
    csv_role *roles;    /* [ncols] */
    csv_plan plan;
    csv_table table;
} csv_reader;

/* The samples: what the dataset holds after open. */
typedef struct csv_data {
    float *x;           /* [rows][inputs] */
    void *y;            /* [rows]: int32 class or float value */
    int64_t inputs;
} csv_data;

/* ---- small helpers --------------------------------------------------------------- */

static char *copy_text(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    return c ? memcpy(c, s, n) : NULL;
}

static void free_texts(char **list, int n)
{
    for (int i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

static int cmp_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Index of `text` in the sorted list, or -1. */
static int find_text(char *const *sorted, int n, const char *text)
{
    char *const *hit = n ? bsearch(&text, sorted, (size_t)n, sizeof *sorted, cmp_text) : NULL;
    return hit ? (int)(hit - sorted) : -1;
}

/* A cell as a message shows it: its first CSV_SHOW characters. */
static const char *show(const char *text, char *buf, size_t size)
{
    size_t n = strlen(text);
    if (n <= CSV_SHOW)
        return text;
    snprintf(buf, size, "%.*s...", CSV_SHOW, text);
    return buf;
}

/* "a, b, c" into buf, cut (with "... (N in all)") so messages stay short. */
static void list_names(char *buf, size_t size, const char *const *names, int n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (used + len + 24 > (size < CSV_LIST ? size : CSV_LIST)) {
            snprintf(buf + used, size - used, "%s... (%d in all)", i ? ", " : "", n);
            return;
        }
        used += (size_t)snprintf(buf + used, size - used, "%s\"%s\"", i ? ", " : "", names[i]);
    }
}

/* " (did you mean "x"?)" when a name is within a typo of `name`, else "". */
static void suggest(char *buf, size_t size, const char *name, const char *const *names, int n)
{
    int best = -1, best_d = INT_MAX;
    for (int i = 0; i < n; i++) {
        int d = rt_edit_distance(name, names[i]);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    size_t len = strlen(name);
    int allowed = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    buf[0] = '\0';
    if (best >= 0 && best_d <= allowed)
        snprintf(buf, size, " (did you mean \"%s\"?)", names[best]);
}

/* Line breaks in a quoted field: CR LF, CR and LF each end one line. */
static int64_t count_breaks(const char *s, size_t len)
{
    int64_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n' || (s[i] == '\r' && (i + 1 == len || s[i + 1] != '\n'));
    return n;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Clinger's fast path: a plain decimal (optional sign, digits with an
 * optional point, optional exponent) whose digits fit in 2^53 and whose
 * power of ten is at most 10^22 is m * 10^e or m / 10^-e in one rounding,
 * both operands exact, so the double is the correctly rounded one that
 * strtod returns. 0 = read into *out and *end, 1 = not such a number
 * (strtod decides). */
static int fast_decimal(const char *s, double *out, const char **end)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (FLT_EVAL_METHOD != 0)   /* the division must round once, in double */
        return 1;
    const char *p = s;
    int neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    uint64_t m = 0;
    int digits = 0, scale = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++)
        if ((m = m * 10 + (uint64_t)(*p - '0')) > (UINT64_C(1) << 53))
            return 1;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, digits++, scale--)
            if ((m = m * 10 + (uint64_t)(*p - '0')) > (UINT64_C(1) << 53))
                return 1;
    if (digits == 0)
        return 1;
    if (*p == 'e' || *p == 'E') {
        p++;
        int eneg = *p == '-', e = 0;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 1;
        for (; *p >= '0' && *p <= '9'; p++)
            if ((e = e * 10 + (*p - '0')) > 1000)
                return 1;
        scale += eneg ? -e : e;
    }
    if (scale < -22 || scale > 22 || !(*p == '\0' || is_blank(*p)))
        return 1;   /* "0x10", "1e5x": strtod reads them (or not) */
    double v = scale < 0 ? (double)m / pow10[-scale] : (double)m * pow10[scale];
    *out = neg ? -v : v;
    *end = p;
    return 0;
}

/* Reads a whole cell as a number in the C locale (surrounding blanks
 * allowed, as in a quoted " 1.5 "): 0 = read, 1 = not a number, 2 = a
 * number but not a finite float32 (nan, inf, 1e39). The same double as
 * strtod_l, most cells without it (fast_decimal). */
static int read_number(const char *text, locale_t loc, double *out)
{
    while (is_blank(*text))
        text++;
    const char *end;
    double v;
    if (fast_decimal(text, &v, &end) != 0) {
        char *e;
        v = strtod_l(text, &e, loc);
        end = e;
    }
    if (end == text)
        return 1;
    while (is_blank(*end))
        end++;
    if (*end != '\0')
        return 1;
    *out = v;
    return isfinite(v) && fabs(v) <= FLT_MAX ? 0 : 2;   /* checked before the cast to float */
}

/* What a class target cell is: an integer label (digits only), another
 * number, or text. */
enum { LABEL_INT, LABEL_NUMBER, LABEL_TEXT };

static int label_kind(const char *text, locale_t loc, int64_t *value)
{
    while (is_blank(*text))
        text++;
    const char *p = text;
    int64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v < CSV_LABEL_MAX ? v * 10 + (*p - '0') : v;   /* saturates: too large anyway */
        p++;
    }
    const char *end = p;
    while (is_blank(*end))
        end++;
    if (p > text && *end == '\0') {
        *value = v;
        return LABEL_INT;
    }
    double d;
    return read_number(text, loc, &d) == 1 ? LABEL_TEXT : LABEL_NUMBER;
}

/* A column named for messages: column N ("name"), N counted from 1. */
#define COLUMN_FMT "column %d (\"%s\")"
#define COLUMN_ARG(r, k) (k) + 1, (r)->names[(k)]

/* ---- the plan: which columns, in which order, encoded how ----------------------- */

static void plan_free(csv_plan *p)
{
    for (int i = 0; p->features && i < p->nfeatures; i++) {
        free(p->features[i].name);
        free_texts(p->features[i].categories, p->features[i].ncat);
    }
    free(p->features);
    free_texts(p->classes, p->nclasses);
    free(p->target);
    memset(p, 0, sizeof *p);
}

static rt_status out_of_memory(const csv_reader *r, const char *what)
{
    return RT_ERROR(RT_ERR_NOMEM, "out of memory reading csv file '%s' (%s)", r->path, what);
}

/* Adds a feature named `name` (copied) to the plan. */
static rt_status plan_add_feature(csv_reader *r, const char *name, csv_feature **out)
{
    csv_plan *p = &r->plan;
    csv_feature *f = realloc(p->features, (size_t)(p->nfeatures + 1) * sizeof *f);
    if (!f)
        return out_of_memory(r, "features");
    p->features = f;
    f += p->nfeatures;
    memset(f, 0, sizeof *f);
    if (!(f->name = copy_text(name)))
        return out_of_memory(r, "features");
    p->nfeatures++;
    *out = f;
    return RT_OK;
}

static rt_status list_error(const csv_reader *r, rt_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An error ending with the file's columns, so the fix is in the message. */
static rt_status list_error(const csv_reader *r, rt_status code, const char *fmt, ...)
{
    char what[768], list[CSV_LIST + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    list_names(list, sizeof list, (const char *const *)r->names, r->ncols);
    return RT_ERROR(code, "%s; its columns are: %s", what, list);
}

/* The column called `name`, or -1. */
static int find_column(const csv_reader *r, const char *name)
{
    int lo = 0, hi = r->ncols;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(r->names[r->by_name[mid]], name);
        if (c == 0)
            return r->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static rt_status column_of(const csv_reader *r, const char *name, const char *key, int *out)
{
    *out = find_column(r, name);
    if (*out >= 0)
        return RT_OK;
    char hint[128];
    suggest(hint, sizeof hint, name, (const char *const *)r->names, r->ncols);
    return list_error(r, RT_ERR_CONFIG, "%s names column \"%s\", which csv file '%s' does not "
                      "have%s", key, name, r->path, hint);
}

/* Marks the features named in data.categorical. */
static rt_status plan_mark_categorical(csv_reader *r)
{
    const rt_data_source *s = r->src;
    for (int c = 0; c < s->num_categorical; c++) {
        const char *name = s->categorical ? s->categorical[c] : NULL;
        int i = 0;
        while (name && i < r->plan.nfeatures && strcmp(r->plan.features[i].name, name))
            i++;
        if (!name || i == r->plan.nfeatures)
            return RT_ERROR(RT_ERR_CONFIG, "data.categorical names \"%s\", which is not one of "
                            "the features read from csv file '%s' (data.features)",
                            name ? name : "", r->path);
        r->plan.features[i].categorical = 1;
    }
    return RT_OK;
}

/* Training split: the target and the features come from the source. */
static rt_status plan_from_source(csv_reader *r)
{
    const rt_data_source *s = r->src;
    csv_plan *p = &r->plan;
    if (!s->target_column || !s->target_column[0])
        return list_error(r, RT_ERR_CONFIG, "csv file '%s': data.target must name the column "
                          "to predict", r->path);
    if (!(p->target = copy_text(s->target_column)))
        return out_of_memory(r, "target");
    p->kind = s->target;
    csv_feature *f;
    for (int i = 0; i < s->num_features; i++) {
        if (!s->features || !s->features[i])
            return RT_ERROR(RT_ERR_CONFIG, "csv file '%s': data.features entry %d is empty",
                            r->path, i + 1);
        RT_CHECK(plan_add_feature(r, s->features[i], &f));
    }
    for (int k = 0; s->num_features == 0 && k < r->ncols; k++)
        if (strcmp(r->names[k], p->target))
            RT_CHECK(plan_add_feature(r, r->names[k], &f));
    if (p->nfeatures == 0)
        return list_error(r, RT_ERR_CONFIG, "csv file '%s' has no column besides the target "
                          "\"%s\" to use as a feature", r->path, p->target);
    return plan_mark_categorical(r);
}

/* Finds every planned column in this file's header and gives each its
 * role: a slot for its cells in the staged rows. */
static rt_status plan_resolve(csv_reader *r)
{
    csv_plan *p = &r->plan;
    if (!(r->roles = calloc((size_t)r->ncols, sizeof *r->roles)))
        return out_of_memory(r, "columns");
    p->target_column = -1;   /* no_target: the file need not have it; not read */
    if (!r->src->no_target)
        RT_CHECK(column_of(r, p->target, "data.target", &p->target_column));
    for (int i = 0; i < p->nfeatures; i++) {
        csv_feature *f = &p->features[i];
        RT_CHECK(column_of(r, f->name, r->src->encoding ? "the training split's encoding"
                                                         : "data.features", &f->column));
        csv_role *role = &r->roles[f->column];
        if (role->kind != ROLE_IGNORED || f->column == p->target_column)
            return RT_ERROR(RT_ERR_CONFIG, "csv file '%s': column \"%s\" is used twice (%s); "
                            "each column is read once, as the target or as one feature",
                            r->path, f->name, f->column == p->target_column ?
                            "as the target data.target and as a feature" :
                            "as two features");
        *role = f->categorical ? (csv_role){ROLE_TEXT, 0, p->ntext++}
                               : (csv_role){ROLE_NUMBER, 0, p->nnum++};
        f->slot = role->slot;
    }
    if (p->target_column >= 0)
        r->roles[p->target_column] = p->kind == RT_TARGET_CLASS
                                         ? (csv_role){ROLE_TEXT, 1, p->ntext++}
                                         : (csv_role){ROLE_NUMBER, 1, p->nnum++};
    return RT_OK;
}

/* ---- the encoding as JSON --------------------------------------------------------- */

/* A JSON string of `text`; an error when it is not UTF-8 (jansson refuses
 * it, and JSON could not carry it), showing the bytes beyond ASCII as \xNN. */
static rt_status json_text(const csv_reader *r, const char *text, const char *what, json_t **out)
{
    *out = json_string(text);
    if (*out)
        return RT_OK;
    char buf[4 * CSV_SHOW + 8];
    size_t used = 0;
    for (const unsigned char *c = (const unsigned char *)text; *c && used < 4 * CSV_SHOW; c++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, *c < 0x80 ? "%c" : "\\x%02x",
                                 *c);
    return RT_ERROR(RT_ERR_FORMAT, "csv file '%s': \"%s\" (%s) is not valid UTF-8; convert "
                    "the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)", r->path, buf, what);
}

static rt_status json_put(const csv_reader *r, json_t *obj, const char *key, json_t *value)
{
    if (value && (json_is_array(obj) ? json_array_append_new(obj, value)
                                     : json_object_set_new(obj, key, value)) == 0)
        return RT_OK;
    return out_of_memory(r, "encoding");
}

static rt_status json_text_list(const csv_reader *r, char *const *list, int n, const char *what,
                                json_t **out)
{
    json_t *a = *out = json_array();
    if (!a)
        return out_of_memory(r, "encoding");
    for (int i = 0; i < n; i++) {
        json_t *s;
        RT_CHECK(json_text(r, list[i], what, &s));
        RT_CHECK(json_put(r, a, NULL, s));
    }
    return RT_OK;
}

static rt_status json_feature(const csv_reader *r, const csv_feature *f, json_t **out)
{
    json_t *o = *out = json_object(), *v;
    if (!o)
        return out_of_memory(r, "encoding");
    RT_CHECK(json_text(r, f->name, "the column name", &v));
    RT_CHECK(json_put(r, o, "name", v));
    if (f->categorical) {
        char what[96];
        snprintf(what, sizeof what, "a category of column \"%.40s\"", f->name);
        rt_status s = json_text_list(r, f->categories, f->ncat, what, &v);
        if (s != RT_OK) {
            json_decref(v);
            return s;
        }
        RT_CHECK(json_put(r, o, "categories", v));
    }
    if (f->has_fill)
        RT_CHECK(json_put(r, o, "fill", json_real(f->fill)));
    return RT_OK;
}

/* Fills root with the plan in the documented key order (jansson keeps the
 * order of insertion). */
static rt_status encoding_fill(const csv_reader *r, json_t *root)
{
    const csv_plan *p = &r->plan;
    json_t *v;
    RT_CHECK(json_put(r, root, "format", json_string("csv")));
    RT_CHECK(json_text(r, p->target, "the column name", &v));
    RT_CHECK(json_put(r, root, "target", v));
    RT_CHECK(json_put(r, root, "target_kind", json_string(rt_target_kind_name(p->kind))));
    if (p->kind == RT_TARGET_CLASS && p->classes) {
        rt_status s = json_text_list(r, p->classes, p->nclasses, "a class name", &v);
        if (s != RT_OK) {
            json_decref(v);
            return s;
        }
        RT_CHECK(json_put(r, root, "classes", v));
    } else if (p->kind == RT_TARGET_CLASS) {
        RT_CHECK(json_put(r, root, "num_classes", json_integer(p->num_classes)));
    }
    json_t *features = json_array();
    RT_CHECK(json_put(r, root, "features", features));
    for (int i = 0; i < p->nfeatures; i++) {
        rt_status s = json_feature(r, &p->features[i], &v);
        if (s != RT_OK) {
            json_decref(v);
            return s;
        }
        RT_CHECK(json_put(r, features, NULL, v));
    }
    return RT_OK;
}

/* The JSON text of the plan (free()). Fill values keep 17 digits so the
 * evaluation split fills with exactly the training mean. */
static rt_status encoding_write(const csv_reader *r, char **out)
{
    *out = NULL;
    json_t *root = json_object();
    if (!root)
        return out_of_memory(r, "encoding");
    rt_status s = encoding_fill(r, root);
    if (s == RT_OK && !(*out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17))))
        s = out_of_memory(r, "encoding");
    json_decref(root);
    return s;
}

static rt_status encoding_error(const csv_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static rt_status encoding_error(const csv_reader *r, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return RT_ERROR(RT_ERR_FORMAT, "csv file '%s': the encoding learned from the training "
                    "split is malformed: %s (rtrain writes it; was params.json or the "
                    "checkpoint edited?)", r->path, what);
}

/* A non-empty array of strings in strictly increasing strcmp order (the
 * order the training split wrote), copied. */
static rt_status encoding_texts(const csv_reader *r, const json_t *a, const char *what,
                                char ***out, int *n)
{
    size_t count = json_array_size(a);
    if (!json_is_array(a) || count == 0 || count > INT_MAX / 2)
        return encoding_error(r, "%s is not a non-empty array of strings", what);
    if (!(*out = calloc(count, sizeof **out)))
        return out_of_memory(r, "encoding");
    for (*n = 0; (size_t)*n < count; (*n)++) {
        const char *t = json_string_value(json_array_get(a, (size_t)*n));
        if (!t || (*n > 0 && strcmp((*out)[*n - 1], t) >= 0))
            return encoding_error(r, "%s: entry %d is not a string in sorted order", what,
                                  *n + 1);
        if (!((*out)[*n] = copy_text(t)))
            return out_of_memory(r, "encoding");
    }
    return RT_OK;
}

static rt_status encoding_feature(csv_reader *r, const json_t *o, int i)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!json_is_object(o) || !name || !name[0])
        return encoding_error(r, "features[%d] has no \"name\"", i);
    csv_feature *f;
    RT_CHECK(plan_add_feature(r, name, &f));
    const json_t *cats = json_object_get(o, "categories"), *fill = json_object_get(o, "fill");
    if (cats) {
        f->categorical = 1;
        char what[96];
        snprintf(what, sizeof what, "the categories of \"%.40s\"", name);
        RT_CHECK(encoding_texts(r, cats, what, &f->categories, &f->ncat));
    }
    if (fill && (!json_is_number(fill) || !isfinite(json_number_value(fill)) || cats))
        return encoding_error(r, "the fill value of \"%s\" is not a finite number of a "
                              "numeric feature", name);
    f->has_fill = fill != NULL;
    f->fill = fill ? json_number_value(fill) : 0.0;
    if (r->src->fill_missing == RT_FILL_MEAN && !cats && !fill)
        return RT_ERROR(RT_ERR_CONFIG, "csv file '%s': data.fill_missing = \"mean\" but the "
                        "training split's encoding has no mean for column \"%s\" (it was "
                        "learned with another data.fill_missing)", r->path, name);
    return RT_OK;
}

static rt_status encoding_target(csv_reader *r, const json_t *root)
{
    csv_plan *p = &r->plan;
    const char *target = json_string_value(json_object_get(root, "target"));
    const char *kind = json_string_value(json_object_get(root, "target_kind"));
    if (!target || !target[0] || !kind)
        return encoding_error(r, "no \"target\" or \"target_kind\"");
    if (strcmp(kind, rt_target_kind_name(r->src->target)))
        return RT_ERROR(RT_ERR_CONFIG, "csv file '%s': the training split's encoding is for a "
                        "%s target but train.loss takes a %s target", r->path, kind,
                        rt_target_kind_name(r->src->target));
    if (r->src->target_column && strcmp(r->src->target_column, target))
        return RT_ERROR(RT_ERR_CONFIG, "csv file '%s': data.target is \"%s\" but the training "
                        "split's encoding was learned for target \"%s\"", r->path,
                        r->src->target_column, target);
    if (!(p->target = copy_text(target)))
        return out_of_memory(r, "encoding");
    p->kind = r->src->target;
    if (p->kind != RT_TARGET_CLASS)
        return RT_OK;
    const json_t *classes = json_object_get(root, "classes");
    if (classes) {
        RT_CHECK(encoding_texts(r, classes, "\"classes\"", &p->classes, &p->nclasses));
        p->num_classes = p->nclasses;
        return RT_OK;
    }
    json_int_t n = json_integer_value(json_object_get(root, "num_classes"));
    if (n < 1 || n > CSV_LABEL_MAX)
        return encoding_error(r, "a class target needs \"classes\" or \"num_classes\" "
                              "(1 to %d)", CSV_LABEL_MAX);
    p->num_classes = (int)n;
    return RT_OK;
}

/* Evaluation split: the plan is the training split's encoding. */
static rt_status plan_from_encoding(csv_reader *r)
{
    json_error_t err;
    json_t *root = json_loads(r->src->encoding, 0, &err);
    if (!json_is_object(root)) {
        json_decref(root);
        return encoding_error(r, "not a JSON object (%s)", root ? "another JSON value" : err.text);
    }
    rt_status s = RT_OK;
    const char *format = json_string_value(json_object_get(root, "format"));
    const json_t *features = json_object_get(root, "features");
    if (!format || strcmp(format, "csv"))
        s = encoding_error(r, "its \"format\" is not \"csv\"");
    else if (!json_is_array(features) || json_array_size(features) == 0)
        s = encoding_error(r, "\"features\" is not a non-empty array");
    else
        s = encoding_target(r, root);
    for (size_t i = 0; s == RT_OK && i < json_array_size(features); i++)
        s = encoding_feature(r, json_array_get(features, i), (int)i);
    json_decref(root);
    return s;
}

/* ---- reading the file ---------------------------------------------------------------- */

static int cmp_name_index(const void *a, const void *b, void *names)
{
    char **n = names;
    int c = strcmp(n[*(const int *)a], n[*(const int *)b]);
    return c ? c : *(const int *)a - *(const int *)b;
}

/* Sorts the column names (for lookups) and refuses duplicates. */
static rt_status header_sort(csv_reader *r)
{
    if (!(r->by_name = malloc((size_t)r->ncols * sizeof *r->by_name)))
        return out_of_memory(r, "header");
    for (int i = 0; i < r->ncols; i++)
        r->by_name[i] = i;
    qsort_r(r->by_name, (size_t)r->ncols, sizeof *r->by_name, cmp_name_index, r->names);
    for (int i = 1; i < r->ncols; i++) {
        int a = r->by_name[i - 1], b = r->by_name[i];
        if (strcmp(r->names[a], r->names[b]) == 0)
            return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: the header names column \"%s\" twice "
                            "(columns %d and %d); column names must be unique", r->path,
                            (long long)r->header_line, r->names[a], a + 1, b + 1);
    }
    return RT_OK;
}

static rt_status header_field(csv_reader *r, const char *text, size_t len)
{
    if (r->ncols == CSV_COLUMNS_MAX)
        return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: the header has more than %d columns, more "
                        "than the csv format reads", r->path, (long long)r->line,
                        CSV_COLUMNS_MAX);
    if (len == 0 || memchr(text, '\0', len))
        return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: column %d of the header has %s; every column "
                        "needs a name (a pandas index column? write the file with "
                        "index=False)", r->path, (long long)r->line, r->ncols + 1,
                        len ? "a NUL byte in its name" : "no name");
    if (r->ncols == r->names_cap) {
        int cap = r->names_cap ? 2 * r->names_cap : 64;
        char **n = realloc(r->names, (size_t)cap * sizeof *n);
        if (!n)
            return out_of_memory(r, "header");
        r->names = n;
        r->names_cap = cap;
    }
    if (!(r->names[r->ncols] = copy_text(text)))
        return out_of_memory(r, "header");
    r->ncols++;
    return RT_OK;
}

static rt_status header_done(csv_reader *r)
{
    r->header_done = 1;
    r->header_line = r->line;
    RT_CHECK(header_sort(r));
    if (!r->src->encoding)
        RT_CHECK(plan_from_source(r));
    return plan_resolve(r);
}

/* Makes room for one more staged row, its cells all missing. */
static rt_status table_start_row(csv_reader *r)
{
    csv_table *t = &r->table;
    const csv_plan *p = &r->plan;
    if (t->rows == t->cap) {
        int64_t cap = t->cap ? 2 * t->cap : CSV_FIRST_ROWS;
        if ((uint64_t)cap > SIZE_MAX / sizeof(size_t) / (size_t)(p->nnum + p->ntext + 1))
            return out_of_memory(r, "rows");
        float *num = realloc(t->num, (size_t)cap * (size_t)p->nnum * sizeof *num + 1);
        t->num = num ? num : t->num;
        size_t *text = realloc(t->text, (size_t)cap * (size_t)p->ntext * sizeof *text + 1);
        t->text = text ? text : t->text;
        int64_t *line = realloc(t->line, (size_t)cap * sizeof *line);
        t->line = line ? line : t->line;
        if (!num || !text || !line)
            return out_of_memory(r, "rows");
        t->cap = cap;
    }
    for (int i = 0; i < p->nnum; i++)
        t->num[t->rows * p->nnum + i] = NAN;
    for (int i = 0; i < p->ntext; i++)
        t->text[t->rows * p->ntext + i] = CSV_MISSING;
    t->line[t->rows] = r->line;
    return RT_OK;
}

static rt_status table_add_text(csv_reader *r, int slot, const char *text, size_t len)
{
    csv_table *t = &r->table;
    if (t->size - t->used <= len) {
        size_t size = t->size ? t->size : CSV_CHUNK;
        while (size - t->used <= len)
            size = size <= SIZE_MAX / 2 ? 2 * size : SIZE_MAX;
        char *c = realloc(t->chars, size);
        if (!c)
            return out_of_memory(r, "text cells");
        t->chars = c;
        t->size = size;
    }
    memcpy(t->chars + t->used, text, len + 1);
    t->text[t->rows * r->plan.ntext + slot] = t->used;
    t->used += len + 1;
    return RT_OK;
}

static rt_status missing_cell(const csv_reader *r, int k, const csv_role *role)
{
    if (role->target)
        return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: " COLUMN_FMT " is empty: the target of every "
                        "row must be given", r->path, (long long)r->line, COLUMN_ARG(r, k));
    if (r->src->fill_missing == RT_FILL_NONE)
        return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: " COLUMN_FMT " is empty; give a value or set "
                        "data.fill_missing = \"zero\" or \"mean\"", r->path, (long long)r->line,
                        COLUMN_ARG(r, k));
    return RT_OK;   /* stays marked missing, filled when the samples are built */
}

static rt_status number_cell(const csv_reader *r, int k, const char *text, float *out)
{
    double v = 0.0;
    char buf[CSV_SHOW + 8];
    switch (read_number(text, r->c_locale, &v)) {
    case 0:
        *out = (float)v;
        return RT_OK;
    case 1:
        return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: " COLUMN_FMT ": cannot read \"%s\" as a "
                        "number", r->path, (long long)r->line, COLUMN_ARG(r, k),
                        show(text, buf, sizeof buf));
    default:
        return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: " COLUMN_FMT ": \"%s\" is not a finite "
                        "float32 number; NaN and Inf are refused in features and targets",
                        r->path, (long long)r->line, COLUMN_ARG(r, k),
                        show(text, buf, sizeof buf));
    }
}

/* One cell of a data row: staged by its column's role. */
static rt_status data_field(csv_reader *r, int k, const char *text, size_t len)
{
    if (k == 0)
        RT_CHECK(table_start_row(r));
    const csv_role *role = &r->roles[k];
    if (role->kind == ROLE_IGNORED)
        return RT_OK;
    if (len == 0)
        return missing_cell(r, k, role);
    if (memchr(text, '\0', len))
        return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: " COLUMN_FMT " holds a NUL byte; is this a "
                        "text file?", r->path, (long long)r->line, COLUMN_ARG(r, k));
    if (role->kind == ROLE_NUMBER)
        return number_cell(r, k, text,
                           &r->table.num[r->table.rows * r->plan.nnum + role->slot]);
    return table_add_text(r, role->slot, text, len);
}

static rt_status field_too_long(const csv_reader *r)
{
    return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: field %lld is longer than %zu bytes, more than "
                    "the csv format reads (an unclosed quote?)", r->path, (long long)r->line,
                    (long long)r->field + 1, CSV_FIELD_MAX);
}

/* libcsv: one field (NULL for an empty unquoted one). */
static void on_field(void *s, size_t len, void *arg)
{
    csv_reader *r = arg;
    if (r->status != RT_OK)
        return;
    const char *text = s ? s : "";
    r->breaks += count_breaks(text, len);
    if (len > CSV_FIELD_MAX)
        r->status = field_too_long(r);
    else if (!r->header_done)
        r->status = header_field(r, text, len);
    else if (r->field < r->ncols)
        r->status = data_field(r, (int)r->field, text, len);
    r->field++;   /* counted past the header's columns, to report a ragged row */
}

static rt_status row_done(csv_reader *r)
{
    if (r->field != r->ncols)
        return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: this row has %lld fields but the header "
                        "(line %lld) has %d columns", r->path, (long long)r->line,
                        (long long)r->field, (long long)r->header_line, r->ncols);
    r->table.rows++;
    return RT_OK;
}

/* libcsv: the end of a record, c its terminator (-1 at the end of the
 * file). With CSV_REPALL_NL blank lines arrive as records of no fields,
 * so every line break is seen: CR LF counts once. */
static void on_record(int c, void *arg)
{
    csv_reader *r = arg;
    if (r->status != RT_OK)
        return;
    if (r->field > 0) {
        r->status = r->header_done ? row_done(r) : header_done(r);
        r->line += r->breaks;
    }
    int lf_of_crlf = c == '\n' && r->last_term == '\r' && r->field == 0;
    if ((c == '\n' || c == '\r') && !lf_of_crlf)
        r->line++;
    r->last_term = c;
    r->field = 0;
    r->breaks = 0;
}

/* zlib's verdict on the stream after reading stopped. */
static rt_status check_stream(const csv_reader *r, gzFile gz)
{
    int zerr = Z_OK;
    const char *msg = gzerror(gz, &zerr);
    if (zerr == Z_OK || zerr == Z_STREAM_END)
        return RT_OK;
    if (zerr == Z_ERRNO)
        return RT_ERROR(RT_ERR_IO, "reading csv file '%s' failed: %s", r->path,
                        strerror(errno));
    const char *colon = strstr(msg, ": ");   /* drop zlib's "<path>: " prefix */
    return RT_ERROR(RT_ERR_FORMAT, "csv file '%s' is a damaged gzip file: zlib reports '%s' "
                    "near line %lld; copy or compress it again", r->path,
                    colon ? colon + 2 : msg, (long long)r->line);
}

/* What libcsv refused: a quoting error (strict mode), or memory. */
static rt_status parse_error(const csv_reader *r, struct csv_parser *p)
{
    if (csv_error(p) == CSV_ENOMEM || csv_error(p) == CSV_ETOOBIG)
        return out_of_memory(r, "a field");
    return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: malformed quoting in field %lld (%s): a quote "
                    "inside an unquoted field, text after a closing quote, or a quote never "
                    "closed; quote the whole field and double the quotes inside it", r->path,
                    (long long)r->line, (long long)r->field + 1, csv_strerror(csv_error(p)));
}

/* Hands the file to libcsv chunk by chunk; the callbacks stage the rows. */
static rt_status parse_stream(csv_reader *r, gzFile gz, struct csv_parser *p, char *buf)
{
    for (int first = 1;; first = 0) {
        int n = gzread(gz, buf, (unsigned)CSV_CHUNK);
        if (n <= 0)
            break;
        size_t skip = first && n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;  /* BOM */
        size_t len = (size_t)n - skip;
        size_t done = csv_parse(p, buf + skip, len, on_field, on_record, r);
        RT_CHECK(r->status);
        if (done != len)
            return parse_error(r, p);
        /* A field still being read: libcsv buffers it whole, so stop it here. */
        if (csv_get_buffer_size(p) > CSV_FIELD_MAX + CSV_CHUNK)
            return field_too_long(r);
    }
    RT_CHECK(check_stream(r, gz));
    if (csv_fini(p, on_field, on_record, r) != 0)
        return parse_error(r, p);
    return r->status;
}

static rt_status read_file(csv_reader *r)
{
    gzFile gz = gzopen(r->path, "rb");
    if (!gz)   /* a path the configuration names: bad input (exit 2), like a missing column */
        return RT_ERROR(RT_ERR_CONFIG, "cannot open csv file '%s': %s; check data.train.file, "
                        "data.test.file and data.dir", r->path, strerror(errno ? errno : ENOMEM));
    gzbuffer(gz, 1 << 17);
    struct csv_parser p;
    char *buf = malloc(CSV_CHUNK);
    rt_status s = buf ? RT_OK : out_of_memory(r, "read buffer");
    if (s == RT_OK && csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL |
                                       CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0)
        s = out_of_memory(r, "parser");
    if (s == RT_OK) {
        csv_set_blk_size(&p, 4096);   /* libcsv grows its field buffer by this much */
        s = parse_stream(r, gz, &p, buf);
        csv_free(&p);
    }
    free(buf);
    gzclose(gz);
    return s;
}

/* ---- learning from the training rows ----------------------------------------------- */

static const char *cell_text(const csv_reader *r, int64_t row, int slot)
{
    size_t off = r->table.text[row * r->plan.ntext + slot];
    return off == CSV_MISSING ? NULL : r->table.chars + off;
}

/* The distinct texts of a slot over rows [begin, end), sorted, copied. */
static rt_status distinct_texts(csv_reader *r, int slot, int64_t begin, int64_t end,
                                char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    const char **all = malloc((size_t)(end - begin) * sizeof *all);
    if (!all)
        return out_of_memory(r, "categories");
    size_t count = 0;
    for (int64_t i = begin; i < end; i++)
        if ((all[count] = cell_text(r, i, slot)))
            count++;
    qsort(all, count, sizeof *all, cmp_text);
    size_t distinct = 0;
    for (size_t i = 0; i < count; i++)
        if (i == 0 || strcmp(all[i], all[distinct - 1]))
            all[distinct++] = all[i];
    rt_status s = RT_OK;
    if (distinct > INT_MAX / 2 || !(*out = calloc(distinct + 1, sizeof **out)))
        s = out_of_memory(r, "categories");
    for (size_t i = 0; s == RT_OK && i < distinct; i++, (*n)++)
        if (!((*out)[i] = copy_text(all[i])))
            s = out_of_memory(r, "categories");
    free(all);
    return s;
}

static rt_status learn_categories(csv_reader *r, csv_feature *f, int64_t begin, int64_t end)
{
    RT_CHECK(distinct_texts(r, f->slot, begin, end, &f->categories, &f->ncat));
    if (f->ncat == 0)
        return RT_ERROR(RT_ERR_FORMAT, "csv file '%s': categorical column \"%s\" is empty in "
                        "every training row, so it has no category to encode", r->path,
                        f->name);
    return RT_OK;
}

static rt_status learn_mean(csv_reader *r, csv_feature *f, int64_t begin, int64_t end)
{
    double sum = 0.0;
    int64_t count = 0;
    for (int64_t i = begin; i < end; i++) {
        float v = r->table.num[i * r->plan.nnum + f->slot];
        if (!isnan(v)) {
            sum += v;
            count++;
        }
    }
    if (count == 0)
        return RT_ERROR(RT_ERR_FORMAT, "csv file '%s': column \"%s\" is empty in every training "
                        "row, so data.fill_missing = \"mean\" has no mean to fill it with",
                        r->path, f->name);
    f->has_fill = 1;
    f->fill = sum / (double)count;
    return RT_OK;
}

/* A class target: integer labels when every training cell is one
 * (num_classes = the largest + 1), text class names when any cell is
 * text; a number that is not a label (1.5, -1) is an error. */
static rt_status learn_classes(csv_reader *r, int64_t begin, int64_t end)
{
    csv_plan *p = &r->plan;
    int slot = r->roles[p->target_column].slot;
    int64_t max = -1, bad = -1, value;
    int any_text = 0;
    for (int64_t i = begin; i < end && !any_text; i++) {
        int kind = label_kind(cell_text(r, i, slot), r->c_locale, &value);
        any_text = kind == LABEL_TEXT;
        if (kind == LABEL_NUMBER && bad < 0)
            bad = i;
        if (kind == LABEL_INT)
            max = value > max ? value : max;
    }
    if (any_text) {
        RT_CHECK(distinct_texts(r, slot, begin, end, &p->classes, &p->nclasses));
        p->num_classes = p->nclasses;
        return RT_OK;
    }
    char buf[CSV_SHOW + 8];
    if (bad >= 0)
        return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: " COLUMN_FMT ": \"%s\" is not a class label: "
                        "labels must be integers >= 0 for a classifier (train.loss), or "
                        "text class names", r->path, (long long)r->table.line[bad],
                        COLUMN_ARG(r, p->target_column),
                        show(cell_text(r, bad, slot), buf, sizeof buf));
    if (max >= CSV_LABEL_MAX)
        return RT_ERROR(RT_ERR_FORMAT, "csv file '%s': column \"%s\" holds class label %lld "
                        "or more; integer labels must be below %d", r->path, p->target,
                        (long long)max, CSV_LABEL_MAX);
    p->num_classes = (int)max + 1;
    return RT_OK;
}

/* Training split: categories, means and classes from rows [begin, end). */
static rt_status plan_learn(csv_reader *r, int64_t begin, int64_t end)
{
    for (int i = 0; i < r->plan.nfeatures; i++) {
        csv_feature *f = &r->plan.features[i];
        if (f->categorical)
            RT_CHECK(learn_categories(r, f, begin, end));
        else if (r->src->fill_missing == RT_FILL_MEAN)
            RT_CHECK(learn_mean(r, f, begin, end));
    }
    if (r->plan.kind == RT_TARGET_CLASS)
        RT_CHECK(learn_classes(r, begin, end));
    return RT_OK;
}

/* Where each feature's values go in an input row, and how many in all. */
static rt_status plan_layout(csv_reader *r)
{
    int64_t at = 0;
    for (int i = 0; i < r->plan.nfeatures; i++) {
        csv_feature *f = &r->plan.features[i];
        f->offset = at;
        at += f->categorical ? f->ncat : 1;
    }
    if (at > (1 << 30))
        return RT_ERROR(RT_ERR_FORMAT, "csv file '%s': the features encode to %lld input "
                        "values, more than 2^30; a categorical column with too many "
                        "categories?", r->path, (long long)at);
    r->plan.inputs = at;
    return RT_OK;
}

/* ---- building the samples ------------------------------------------------------------ */

static rt_status unseen_error(const csv_reader *r, int64_t row, int column, const char *text,
                              char *const *known, int n, const char *what)
{
    char buf[CSV_SHOW + 8], list[CSV_LIST + 32];
    list_names(list, sizeof list, (const char *const *)known, n);
    return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: " COLUMN_FMT ": %s \"%s\" does not occur in the "
                    "training split, which has: %s", r->path, (long long)r->table.line[row],
                    COLUMN_ARG(r, column), what, show(text, buf, sizeof buf), list);
}

static rt_status write_feature(const csv_reader *r, const csv_feature *f, int64_t row, float *x)
{
    if (f->categorical) {
        const char *text = cell_text(r, row, f->slot);
        if (!text)
            return RT_OK;   /* missing: all-zero one-hot (x is zero-filled) */
        int c = find_text(f->categories, f->ncat, text);
        if (c < 0)
            return unseen_error(r, row, f->column, text, f->categories, f->ncat, "category");
        x[f->offset + c] = 1.0f;
        return RT_OK;
    }
    float v = r->table.num[row * r->plan.nnum + f->slot];
    if (isnan(v))
        v = r->src->fill_missing == RT_FILL_MEAN ? (float)f->fill : 0.0f;
    x[f->offset] = v;
    return RT_OK;
}

static rt_status write_class(const csv_reader *r, int64_t row, int32_t *y)
{
    const csv_plan *p = &r->plan;
    const char *text = cell_text(r, row, r->roles[p->target_column].slot);
    int64_t value = -1;
    if (p->classes) {
        int c = find_text(p->classes, p->nclasses, text);
        if (c < 0)
            return unseen_error(r, row, p->target_column, text, p->classes, p->nclasses,
                                "class");
        *y = c;
        return RT_OK;
    }
    if (label_kind(text, r->c_locale, &value) != LABEL_INT || value >= p->num_classes) {
        char buf[CSV_SHOW + 8];
        return RT_ERROR(RT_ERR_FORMAT, "%s:%lld: " COLUMN_FMT ": \"%s\" is not a class label "
                        "0 to %d, the labels of the training split", r->path,
                        (long long)r->table.line[row], COLUMN_ARG(r, p->target_column),
                        show(text, buf, sizeof buf), p->num_classes - 1);
    }
    *y = (int32_t)value;
    return RT_OK;
}

static void csv_destroy(void *impl)
{
    csv_data *d = impl;
    if (!d)
        return;
    rt_free(d->x);
    rt_free(d->y);
    rt_free(d);
}

/* Encodes rows [begin, end) of the staged table into samples. */
static rt_status build_samples(const csv_reader *r, int64_t begin, int64_t end, csv_data **out)
{
    const csv_plan *p = &r->plan;
    int64_t n = end - begin;
    csv_data *d;
    RT_CHECK(rt_alloc(&d, 1, sizeof *d, "csv dataset"));
    d->inputs = p->inputs;
    rt_status s;
    if ((uint64_t)n > SIZE_MAX / (uint64_t)p->inputs) {
        s = out_of_memory(r, "samples");
        goto fail;
    }
    RT_CHECK_GOTO(s, rt_alloc(&d->x, (size_t)(n * p->inputs), sizeof(float), "csv inputs"),
                  fail);
    RT_CHECK_GOTO(s, rt_alloc(&d->y, (size_t)n, 4, "csv targets"), fail);
    int tslot = p->target_column >= 0 ? r->roles[p->target_column].slot : -1;
    for (int64_t i = 0; i < n; i++) {
        float *x = d->x + i * p->inputs;
        for (int f = 0; f < p->nfeatures; f++)
            RT_CHECK_GOTO(s, write_feature(r, &p->features[f], begin + i, x), fail);
        if (tslot < 0)
            continue;   /* no_target: the targets stay 0 */
        if (p->kind == RT_TARGET_CLASS)
            RT_CHECK_GOTO(s, write_class(r, begin + i, (int32_t *)d->y + i), fail);
        else
            ((float *)d->y)[i] = r->table.num[(begin + i) * p->nnum + tslot];
    }
    *out = d;
    return RT_OK;
fail:
    csv_destroy(d);
    return s;
}

static rt_status csv_fetch(void *impl, int64_t index, float *x, void *target)
{
    const csv_data *d = impl;
    memcpy(x, d->x + index * d->inputs, (size_t)d->inputs * sizeof *x);
    memcpy(target, (const char *)d->y + 4 * index, 4);   /* int32 class or float value */
    return RT_OK;
}

static const void *csv_row(void *impl, int64_t index, size_t *bytes)
{
    const csv_data *d = impl;
    *bytes = (size_t)d->inputs * sizeof *d->x;
    return d->x + index * d->inputs;
}

/* Read-only after open: fetch is safe on the loader's thread. */
static const rt_dataset_ops csv_ops = {
    .version = RT_DATASET_OPS_VERSION, .flags = RT_DATASET_THREAD_SAFE,
    .fetch = csv_fetch, .destroy = csv_destroy,
};

/* ---- opening ------------------------------------------------------------------------ */

static void reader_free(csv_reader *r)
{
    free_texts(r->names, r->ncols);
    free(r->by_name);
    free(r->roles);
    plan_free(&r->plan);
    free(r->table.num);
    free(r->table.text);
    free(r->table.line);
    free(r->table.chars);
    if (r->c_locale)
        freelocale(r->c_locale);
}

/* The samples of this split as a dataset carrying `encoding`. */
static rt_status make_dataset(csv_reader *r, int64_t begin, int64_t end, const char *encoding,
                              rt_dataset **out)
{
    csv_data *d = NULL;
    RT_CHECK(build_samples(r, begin, end, &d));
    const csv_plan *p = &r->plan;
    rt_sample_desc desc = {.ndim = 1, .shape = {p->inputs}, .dtype = RT_INPUT_F32,
                           .target = p->kind, .num_classes = p->num_classes, .target_size = 1};
    rt_status s = rt_dataset_create(out, &csv_ops, d, end - begin, &desc);
    if (s != RT_OK) {
        csv_destroy(d);
        return s;
    }
    rt_dataset_set_row_fn(*out, csv_row);
    if ((s = rt_dataset_set_encoding(*out, encoding)) != RT_OK) {
        rt_dataset_free(*out);
        *out = NULL;
    }
    return s;
}

/* After the file: this split's rows, the encoding, the samples. */
static rt_status finish(csv_reader *r, rt_dataset **out)
{
    if (!r->header_done)
        return RT_ERROR(RT_ERR_FORMAT, "csv file '%s' is empty: it needs a header row naming "
                        "the columns, then one row per sample", r->path);
    if (r->table.rows == 0)
        return RT_ERROR(RT_ERR_FORMAT, "csv file '%s' has a header but no data rows", r->path);
    int64_t begin, end;
    RT_CHECK(rt_data_source_rows(r->src, r->table.rows, &begin, &end));
    if (r->src->encoding) {
        RT_CHECK(plan_layout(r));
        return make_dataset(r, begin, end, r->src->encoding, out);
    }
    RT_CHECK(plan_learn(r, begin, end));
    RT_CHECK(plan_layout(r));
    char *json;
    RT_CHECK(encoding_write(r, &json));
    rt_status s = make_dataset(r, begin, end, json, out);
    free(json);
    return s;
}

/* The checks of a source before reading (rt_csv_open). */
static rt_status check_source(const rt_data_source *src)
{
    if (!src || !src->file || !src->file[0])
        return RT_ERROR(RT_ERR_CONFIG, "the csv format reads one file: set data.train.file "
                        "(and data.test.file, or data.test_fraction)");
    if (src->target != RT_TARGET_CLASS && src->target != RT_TARGET_VECTOR)
        return RT_ERROR(RT_ERR_UNSUPPORTED, "csv file '%s': train.loss takes %s targets; a "
                        "csv target is a class or a number", src->file,
                        rt_target_kind_name(src->target));
    if (src->no_target && !src->encoding)
        return RT_ERROR(RT_ERR_CONFIG, "csv file '%s': a table without its target column is "
                        "read with the encoding a training split learned (its columns and "
                        "classes)", src->file);
    return RT_OK;
}

/* The file read into r (its plan from src's encoding, or from src). */
static rt_status read_source(csv_reader *r, const rt_data_source *src)
{
    *r = (csv_reader){.src = src, .path = src->file, .line = 1};
    RT_CHECK(check_source(src));
    if (!(r->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0)))
        return out_of_memory(r, "C locale");
    if (src->encoding)
        RT_CHECK(plan_from_encoding(r));
    return read_file(r);
}

rt_status rt_csv_open(rt_dataset **out, const rt_data_source *src)
{
    *out = NULL;
    csv_reader r;
    rt_status s = read_source(&r, src);
    if (s == RT_OK)
        s = finish(&r, out);
    reader_free(&r);
    return s;
}

/* The plan learned from tr's rows is the plan the encoding it writes gives
 * back (the fill values' JSON keeps 17 digits), so te's rows are encoded
 * as rt_csv_open of te with that encoding would. */
rt_status rt_csv_open_splits(rt_dataset **train, rt_dataset **test, const rt_data_source *tr,
                             const rt_data_source *te)
{
    *train = *test = NULL;
    csv_reader r;
    int64_t begin, end;
    rt_status s = read_source(&r, tr);
    if (s == RT_OK)
        s = finish(&r, train);
    if (s == RT_OK) {
        r.src = te;
        s = rt_data_source_rows(te, r.table.rows, &begin, &end);
    }
    if (s == RT_OK)
        s = make_dataset(&r, begin, end, rt_dataset_encoding(*train), test);
    if (s != RT_OK) {
        rt_dataset_free(*train);
        *train = NULL;
    }
    reader_free(&r);
    return s;
}
