/* Unit tests for the csv format: numeric features and float targets read
 * exactly, column selection and its default, one-hot categories, integer
 * and text class targets, the evaluation split encoded with the training
 * split's encoding (and refusing what training never saw), row ranges,
 * missing-value policies, gzip input, line numbers (blank lines, CR LF,
 * quoted line breaks), and every error naming the file, the line and the
 * column. Files are written into a fresh mkdtemp directory, removed at the
 * end; a last test feeds random bytes and only asks that nothing crashes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "check.h"
#include "rtrain/data.h"

static char tmpdir[64];
static char written[64][160];   /* files to remove at the end */
static int nwritten;

static const char *tmp_path(const char *name)
{
    static char paths[16][160];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, 160, "%s/%s", tmpdir, name);
    return p;
}

static void remember(const char *path)
{
    for (int i = 0; i < nwritten; i++)
        if (strcmp(written[i], path) == 0)
            return;
    if (nwritten < 64)
        snprintf(written[nwritten++], sizeof written[0], "%s", path);
}

/* Writes `len` bytes (len < 0: strlen) to tmpdir/name; returns the path. */
static const char *write_bytes(const char *name, const char *text, long len)
{
    const char *path = tmp_path(name);
    size_t n = len < 0 ? strlen(text) : (size_t)len;
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return path;
    CHECK(fwrite(text, 1, n, f) == n);
    CHECK(fclose(f) == 0);
    remember(path);
    return path;
}

static const char *write_csv(const char *name, const char *text)
{
    return write_bytes(name, text, -1);
}

static const char *write_gz(const char *name, const char *text)
{
    const char *path = tmp_path(name);
    gzFile f = gzopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return path;
    CHECK(gzwrite(f, text, (unsigned)strlen(text)) == (int)strlen(text));
    CHECK(gzclose(f) == Z_OK);
    remember(path);
    return path;
}

static rt_status open_csv(rt_dataset **ds, const rt_data_source *src)
{
    return rt_dataset_open(ds, "csv", src, NULL);
}

/* Expects `code` and a message holding each of the (up to three) words. */
static void expect_error(rt_status code, rt_status got, const char *w1, const char *w2,
                         const char *w3)
{
    const char *msg = rt_error_message();
    CHECK_MSG(got == code, "got %s, expected %s (%s)", rt_status_name(got), rt_status_name(code),
              msg);
    const char *words[] = {w1, w2, w3};
    for (int i = 0; i < 3; i++)
        CHECK_MSG(!words[i] || strstr(msg, words[i]) != NULL, "message lacks '%s': %s",
                  words[i], msg);
    rt_error_clear();
}

/* "path:line", as messages name a cell's place. */
static const char *at_line(const char *path, int line)
{
    static char buf[4][192];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 192, "%s:%d", path, line);
    return b;
}

/* Fetches sample i and compares its input (exactly: values are read into
 * float32 once and copied) and its target. */
static void expect_float_sample(rt_dataset *ds, int64_t i, const float *want, int n, float y)
{
    float x[16], t = -12345.0f;
    CHECK_OK(rt_dataset_fetch(ds, i, x, &t));
    for (int j = 0; j < n; j++)
        CHECK_MSG(x[j] == want[j], "sample %lld value %d is %.9g, expected %.9g", (long long)i,
                  j, x[j], want[j]);
    CHECK_MSG(t == y, "sample %lld target %.9g, expected %.9g", (long long)i, t, y);
}

static void expect_class_sample(rt_dataset *ds, int64_t i, const float *want, int n, int y)
{
    float x[16];
    int32_t t = -1;
    CHECK_OK(rt_dataset_fetch(ds, i, x, &t));
    for (int j = 0; j < n; j++)
        CHECK_MSG(x[j] == want[j], "sample %lld value %d is %.9g, expected %.9g", (long long)i,
                  j, x[j], want[j]);
    CHECK_MSG(t == y, "sample %lld label %d, expected %d", (long long)i, t, y);
}

static void expect_encoding(rt_dataset *ds, const char *want)
{
    const char *got = rt_dataset_encoding(ds);
    CHECK_MSG(got && strcmp(got, want) == 0, "encoding %s, expected %s", got ? got : "(null)",
              want);
}

/* ---- reading values ---------------------------------------------------------------- */

static void test_numeric_features(void)
{
    const char *path = write_csv("num.csv", "a,b,c,y\n"
                                            "1.5,2,-3.25,10.5\n"
                                            "0.1,1e3, 4 ,-2\n"
                                            "\" 7 \",\"-0.5\",0x10,3.4028234e38\n");
    static const char *const feats[] = {"c", "a"};
    rt_data_source src = {.file = path, .target = RT_TARGET_VECTOR, .target_column = "y",
                          .features = feats, .num_features = 2};
    rt_dataset *ds = NULL;
    CHECK_OK(open_csv(&ds, &src));
    if (!ds)
        return;
    const rt_sample_desc *d = rt_dataset_desc(ds);
    CHECK(rt_dataset_count(ds) == 3);
    CHECK(d->ndim == 1 && d->shape[0] == 2 && d->dtype == RT_INPUT_F32);
    CHECK(d->target == RT_TARGET_VECTOR && d->target_size == 1);
    CHECK(rt_dataset_flags(ds) & RT_DATASET_THREAD_SAFE);
    /* Features in the order asked for, not the file's. */
    expect_float_sample(ds, 0, (const float[]){-3.25f, 1.5f}, 2, 10.5f);
    expect_float_sample(ds, 1, (const float[]){4.0f, 0.1f}, 2, -2.0f);
    expect_float_sample(ds, 2, (const float[]){16.0f, 7.0f}, 2, 3.4028234e38f);
    expect_encoding(ds, "{\"format\":\"csv\",\"target\":\"y\",\"target_kind\":\"vector\","
                        "\"features\":[{\"name\":\"c\"},{\"name\":\"a\"}]}");
    rt_dataset_free(ds);
}

static void test_default_features(void)
{
    /* The target in the middle: every other column, in file order. */
    const char *path = write_csv("all.csv", "p,y,q,r\n1,2,3,4\n5,6,7,8\n");
    rt_data_source src = {.file = path, .target = RT_TARGET_VECTOR, .target_column = "y"};
    rt_dataset *ds = NULL;
    CHECK_OK(open_csv(&ds, &src));
    if (!ds)
        return;
    CHECK(rt_dataset_desc(ds)->shape[0] == 3);
    expect_float_sample(ds, 0, (const float[]){1, 3, 4}, 3, 2);
    expect_float_sample(ds, 1, (const float[]){5, 7, 8}, 3, 6);
    rt_dataset_free(ds);
}

static void test_gzip(void)
{
    const char *path = write_gz("num.csv.gz", "a,y\n1.25,2\n-8,0.5\n");
    rt_data_source src = {.file = path, .target = RT_TARGET_VECTOR, .target_column = "y"};
    rt_dataset *ds = NULL;
    CHECK_OK(open_csv(&ds, &src));
    if (!ds)
        return;
    CHECK(rt_dataset_count(ds) == 2);
    expect_float_sample(ds, 0, (const float[]){1.25f}, 1, 2.0f);
    expect_float_sample(ds, 1, (const float[]){-8.0f}, 1, 0.5f);
    rt_dataset_free(ds);

    /* A byte-order mark and CR LF line ends are read as plain text. */
    path = write_csv("bom.csv", "\xEF\xBB\xBF" "a,y\r\n3,4\r\n");
    src.file = path;
    CHECK_OK(open_csv(&ds, &src));
    if (ds)
        expect_float_sample(ds, 0, (const float[]){3.0f}, 1, 4.0f);
    rt_dataset_free(ds);
}

static void test_categorical(void)
{
    const char *path = write_csv("cat.csv", "color,size,label\n"
                                            "red,1,0\n"
                                            "blue,2,1\n"
                                            "\"green\",3,2\n"
                                            "blue,4,1\n");
    static const char *const cats[] = {"color"};
    rt_data_source src = {.file = path, .target = RT_TARGET_CLASS, .target_column = "label",
                          .categorical = cats, .num_categorical = 1};
    rt_dataset *ds = NULL;
    CHECK_OK(open_csv(&ds, &src));
    if (!ds)
        return;
    /* Categories sorted as text: blue, green, red; then size. */
    CHECK(rt_dataset_desc(ds)->shape[0] == 4);
    CHECK(rt_dataset_num_classes(ds) == 3);
    expect_class_sample(ds, 0, (const float[]){0, 0, 1, 1}, 4, 0);
    expect_class_sample(ds, 1, (const float[]){1, 0, 0, 2}, 4, 1);
    expect_class_sample(ds, 2, (const float[]){0, 1, 0, 3}, 4, 2);
    expect_class_sample(ds, 3, (const float[]){1, 0, 0, 4}, 4, 1);
    expect_encoding(ds, "{\"format\":\"csv\",\"target\":\"label\",\"target_kind\":\"class\","
                        "\"num_classes\":3,\"features\":[{\"name\":\"color\",\"categories\":"
                        "[\"blue\",\"green\",\"red\"]},{\"name\":\"size\"}]}");
    rt_dataset_free(ds);
}

static void test_text_classes(void)
{
    const char *path = write_csv("species.csv", "x,species\n"
                                                "1,setosa\n"
                                                "2,virginica\n"
                                                "3,versicolor\n"
                                                "4,setosa\n"
                                                "5,7\n");
    rt_data_source src = {.file = path, .target = RT_TARGET_CLASS, .target_column = "species"};
    rt_dataset *ds = NULL;
    CHECK_OK(open_csv(&ds, &src));
    if (!ds)
        return;
    /* Any text makes every cell a class name, "7" included: 7 < setosa < ... */
    CHECK(rt_dataset_num_classes(ds) == 4);
    expect_class_sample(ds, 0, (const float[]){1}, 1, 1);
    expect_class_sample(ds, 1, (const float[]){2}, 1, 3);
    expect_class_sample(ds, 2, (const float[]){3}, 1, 2);
    expect_class_sample(ds, 3, (const float[]){4}, 1, 1);
    expect_class_sample(ds, 4, (const float[]){5}, 1, 0);
    expect_encoding(ds, "{\"format\":\"csv\",\"target\":\"species\",\"target_kind\":\"class\","
                        "\"classes\":[\"7\",\"setosa\",\"versicolor\",\"virginica\"],"
                        "\"features\":[{\"name\":\"x\"}]}");
    rt_dataset_free(ds);
}

/* ---- training and evaluation splits --------------------------------------------------- */

static const char cities[] = "city,temp,label\n"
                             "paris,1,cold\n"
                             "rome,2,hot\n"
                             "oslo,3,cold\n"
                             "rome,4,hot\n"
                             "paris,5,cold\n"
                             "oslo,6,cold\n"
                             "rome,7,hot\n"
                             "paris,8,cold\n";

static void test_splits(void)
{
    const char *path = write_csv("cities.csv", cities);
    static const char *const cats[] = {"city"};
    rt_data_source src = {.file = path, .target = RT_TARGET_CLASS, .target_column = "label",
                          .categorical = cats, .num_categorical = 1, .first = 0, .last = 0.75};
    rt_dataset *train = NULL, *eval = NULL;
    CHECK_OK(open_csv(&train, &src));
    if (!train)
        return;
    CHECK(rt_dataset_count(train) == 6);
    CHECK(rt_dataset_num_classes(train) == 2);
    expect_class_sample(train, 5, (const float[]){1, 0, 0, 6}, 4, 0);   /* oslo, cold */
    const char *enc = rt_dataset_encoding(train);
    CHECK(enc != NULL);

    rt_data_source ev = src;
    ev.first = 0.75;
    ev.last = 1;
    ev.encoding = enc;
    CHECK_OK(open_csv(&eval, &ev));
    if (eval) {
        CHECK(rt_dataset_count(eval) == 2);
        CHECK(rt_dataset_num_classes(eval) == 2);
        expect_class_sample(eval, 0, (const float[]){0, 0, 1, 7}, 4, 1);   /* rome, hot */
        expect_class_sample(eval, 1, (const float[]){0, 1, 0, 8}, 4, 0);   /* paris, cold */
        expect_encoding(eval, enc);
    }
    rt_dataset_free(eval);

    /* Evaluation rows with a category or a class training never saw. */
    const char *unseen = write_csv("unseen.csv", "label,city,temp\nhot,rome,1\ncold,berlin,2\n");
    ev.file = unseen;
    ev.first = ev.last = 0;
    expect_error(RT_ERR_FORMAT, open_csv(&eval, &ev), at_line(unseen, 3), "\"city\"",
                 "\"berlin\"");
    unseen = write_csv("unseen2.csv", "label,city,temp\nwarm,rome,1\n");
    ev.file = unseen;
    expect_error(RT_ERR_FORMAT, open_csv(&eval, &ev), at_line(unseen, 2), "\"warm\"",
                 "\"cold\", \"hot\"");
    /* The evaluation file's columns are found by name, in any order. */
    const char *moved = write_csv("moved.csv", "temp,label,extra,city\n9,hot,x,oslo\n");
    ev.file = moved;
    CHECK_OK(open_csv(&eval, &ev));
    if (eval)
        expect_class_sample(eval, 0, (const float[]){1, 0, 0, 9}, 4, 1);
    rt_dataset_free(eval);
    const char *lacking = write_csv("lacking.csv", "temp,label\n9,hot\n");
    ev.file = lacking;
    expect_error(RT_ERR_CONFIG, open_csv(&eval, &ev), lacking, "\"city\"", "\"temp\"");

    /* A malformed or foreign encoding is refused. */
    ev.file = path;
    ev.encoding = "{\"format\":\"csv\",";
    expect_error(RT_ERR_FORMAT, open_csv(&eval, &ev), path, "encoding", NULL);
    ev.encoding = "{\"format\":\"hdf5\",\"features\":[{\"name\":\"temp\"}]}";
    expect_error(RT_ERR_FORMAT, open_csv(&eval, &ev), path, "format", NULL);
    ev.encoding = "{\"format\":\"csv\",\"target\":\"label\",\"target_kind\":\"class\","
                  "\"classes\":[\"hot\",\"cold\"],\"features\":[{\"name\":\"temp\"}]}";
    expect_error(RT_ERR_FORMAT, open_csv(&eval, &ev), path, "sorted", NULL);
    ev.encoding = "{\"format\":\"csv\",\"target\":\"label\",\"target_kind\":\"vector\","
                  "\"features\":[{\"name\":\"temp\"}]}";
    expect_error(RT_ERR_CONFIG, open_csv(&eval, &ev), path, "vector", NULL);
    rt_dataset_free(train);
}

/* rt_dataset_open_splits reads a file once for both splits of
 * data.test_fraction: the same datasets, encoding and errors as opening the
 * training split and then the evaluation split with its encoding. */
static void same_splits(const char *path, rt_target_kind kind, rt_fill_policy fill,
                        const char *const *cats, int ncats)
{
    rt_data_source tr = {.file = path, .target = kind, .target_column = "label",
                         .categorical = cats, .num_categorical = ncats, .fill_missing = fill,
                         .first = 0, .last = 0.6};
    rt_data_source te = tr;
    te.first = 0.6;
    te.last = 1;
    rt_dataset *a = NULL, *b = NULL, *pa = NULL, *pb = NULL;
    rt_status want = open_csv(&a, &tr);
    if (want == RT_OK) {
        te.encoding = rt_dataset_encoding(a);
        want = open_csv(&b, &te);
        te.encoding = NULL;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", want == RT_OK ? "" : rt_error_message());
    rt_error_clear();
    rt_status got = rt_dataset_open_splits(&pa, &pb, "csv", &tr, &te, NULL);
    CHECK_MSG(got == want, "%s: open_splits returned %d, one by one %d", path, (int)got,
              (int)want);
    CHECK_MSG(got == RT_OK ? pa && pb : !pa && !pb, "%s: datasets on failure", path);
    if (got != RT_OK)
        CHECK_MSG(strcmp(msg, rt_error_message()) == 0, "%s: '%s' instead of '%s'", path,
                  rt_error_message(), msg);
    rt_error_clear();
    rt_dataset *one[2] = {a, b}, *two[2] = {pa, pb};
    for (int k = 0; got == RT_OK && want == RT_OK && k < 2; k++) {
        CHECK(rt_dataset_count(one[k]) == rt_dataset_count(two[k]));
        CHECK(strcmp(rt_dataset_encoding(one[k]), rt_dataset_encoding(two[k])) == 0);
        size_t n = rt_sample_input_size(rt_dataset_desc(one[k]));
        CHECK(n == rt_sample_input_size(rt_dataset_desc(two[k])) && n <= 16);
        for (int64_t i = 0; n <= 16 && i < rt_dataset_count(one[k]); i++) {
            float x[16], y[16];
            int32_t t, u;
            CHECK_OK(rt_dataset_fetch(one[k], i, x, &t));
            CHECK_OK(rt_dataset_fetch(two[k], i, y, &u));
            CHECK_MSG(memcmp(x, y, n * sizeof *x) == 0 && t == u, "%s: split %d row %lld "
                      "differs", path, k, (long long)i);
        }
    }
    rt_dataset_free(a);
    rt_dataset_free(b);
    rt_dataset_free(pa);
    rt_dataset_free(pb);
}

static void test_open_splits(void)
{
    static const char *const cats[] = {"city"};
    const char *t = write_csv("splits.csv", "city,temp,label\nparis,1,cold\nrome,,hot\n"
                                            "oslo,2,cold\nrome,4.25,hot\nparis,,cold\n"
                                            "oslo,6,cold\nrome,7,hot\nparis,8,cold\n"
                                            "rome,,hot\noslo,1e-3,cold\n");
    same_splits(t, RT_TARGET_CLASS, RT_FILL_MEAN, cats, 1);   /* mean 13.251/6 */
    same_splits(t, RT_TARGET_CLASS, RT_FILL_ZERO, cats, 1);
    same_splits(t, RT_TARGET_CLASS, RT_FILL_NONE, cats, 1);   /* an empty cell: an error */
    const char *n = write_csv("splits_n.csv", "a,b,label\n1,2,0.5\n3,,1.5\n5,6,2\n7,8,3\n"
                                              "9,1,4\n");
    same_splits(n, RT_TARGET_VECTOR, RT_FILL_MEAN, NULL, 0);
    const char *i = write_csv("splits_i.csv", "a,b,label\n1,2,0\n3,4,2\n5,6,1\n7,8,3\n"
                                              "9,1,1\n");
    same_splits(i, RT_TARGET_CLASS, RT_FILL_NONE, NULL, 0);   /* 3 at evaluation: unseen */
    const char *u = write_csv("splits_u.csv", "city,temp,label\nparis,1,a\nrome,2,b\n"
                                              "oslo,3,a\nrome,4,b\nberlin,5,a\n");
    same_splits(u, RT_TARGET_CLASS, RT_FILL_NONE, cats, 1);   /* berlin: unseen */
}

static void test_integer_labels_at_evaluation(void)
{
    const char *path = write_csv("ints.csv", "x,y\n1,0\n2,2\n3,1\n4,3\n");
    rt_data_source src = {.file = path, .target = RT_TARGET_CLASS, .target_column = "y",
                          .first = 0, .last = 0.75};
    rt_dataset *train = NULL, *eval = NULL;
    CHECK_OK(open_csv(&train, &src));
    if (!train)
        return;
    CHECK(rt_dataset_num_classes(train) == 3);   /* labels 0, 2, 1 */
    rt_data_source ev = src;
    ev.first = 0.75;
    ev.last = 1;
    ev.encoding = rt_dataset_encoding(train);
    expect_error(RT_ERR_FORMAT, open_csv(&eval, &ev), at_line(path, 5), "\"3\"", "0 to 2");
    rt_dataset_free(train);
}

/* ---- missing values --------------------------------------------------------------- */

static void test_fill(void)
{
    const char *path = write_csv("gaps.csv", "a,b,y\n"
                                             "1,x,1\n"
                                             ",y,2\n"
                                             "3,,3\n"
                                             ",x,4\n");
    static const char *const cats[] = {"b"};
    rt_data_source src = {.file = path, .target = RT_TARGET_VECTOR, .target_column = "y",
                          .categorical = cats, .num_categorical = 1};
    rt_dataset *ds = NULL;
    expect_error(RT_ERR_FORMAT, open_csv(&ds, &src), at_line(path, 3), "column 1 (\"a\")",
                 "data.fill_missing");

    src.fill_missing = RT_FILL_ZERO;
    CHECK_OK(open_csv(&ds, &src));
    if (ds) {
        /* Inputs: a, then b's one-hot over {x, y}. */
        expect_float_sample(ds, 1, (const float[]){0, 0, 1}, 3, 2);
        expect_float_sample(ds, 2, (const float[]){3, 0, 0}, 3, 3);
    }
    rt_dataset_free(ds);

    /* The mean is the training rows' (1 and 3: 2), and the evaluation
     * split fills with it, not with a mean of its own rows. */
    src.fill_missing = RT_FILL_MEAN;
    src.last = 0.75;
    rt_dataset *train = NULL, *eval = NULL;
    CHECK_OK(open_csv(&train, &src));
    if (!train)
        return;
    expect_float_sample(train, 1, (const float[]){2, 0, 1}, 3, 2);
    expect_encoding(train, "{\"format\":\"csv\",\"target\":\"y\",\"target_kind\":\"vector\","
                           "\"features\":[{\"name\":\"a\",\"fill\":2.0},{\"name\":\"b\","
                           "\"categories\":[\"x\",\"y\"]}]}");
    rt_data_source ev = src;
    ev.first = 0.75;
    ev.last = 1;
    ev.encoding = rt_dataset_encoding(train);
    CHECK_OK(open_csv(&eval, &ev));
    if (eval)
        expect_float_sample(eval, 0, (const float[]){2, 1, 0}, 3, 4);
    rt_dataset_free(eval);
    rt_dataset_free(train);

    /* A missing target is an error whatever the policy. */
    const char *no_target = write_csv("no-target.csv", "a,y\n1,2\n3,\n");
    src = (rt_data_source){.file = no_target, .target = RT_TARGET_VECTOR, .target_column = "y",
                           .fill_missing = RT_FILL_MEAN};
    expect_error(RT_ERR_FORMAT, open_csv(&ds, &src), at_line(no_target, 3), "\"y\"", "target");
}

/* Every cell reads as (float)strtod of its text, bit for bit: random
 * decimals of 1 to 20 digits, the point anywhere or absent, exponents of
 * -30 to 15 (all finite float32), leading zeros and signs (the reader's fast path for
 * short decimals and strtod for the rest must agree). */
static void test_numbers_as_strtod(void)
{
    enum { N = 3000 };
    static char text[N * 48 + 16];
    static float want[N];
    rt_rng rng;
    rt_rng_init(&rng, rt_rng_key(42, 11, 0, 0));
    int len = snprintf(text, sizeof text, "x,y\n");
    for (int i = 0; i < N; i++) {
        char cell[40];
        int n = 0, digits = 1 + (int)rt_rng_below(&rng, 20);
        int point = (int)rt_rng_below(&rng, (uint32_t)digits + 2) - 1;  /* -1: none */
        if (rt_rng_below(&rng, 3) == 0)
            cell[n++] = rt_rng_below(&rng, 2) ? '-' : '+';
        for (int d = 0; d < digits; d++) {
            if (d == point)
                cell[n++] = '.';
            cell[n++] = (char)('0' + rt_rng_below(&rng, d == 0 && i % 2 ? 1 : 10));
        }
        if (point == digits)
            cell[n++] = '.';
        if (rt_rng_below(&rng, 2))
            n += snprintf(cell + n, sizeof cell - (size_t)n, "e%d",
                          (int)rt_rng_below(&rng, 46) - 30);
        cell[n] = '\0';
        want[i] = (float)strtod(cell, NULL);
        len += snprintf(text + len, sizeof text - (size_t)len, "%s,%d\n", cell, i);
    }
    rt_data_source src = {.file = write_csv("numbers.csv", text), .target = RT_TARGET_VECTOR,
                          .target_column = "y"};
    rt_dataset *ds = NULL;
    CHECK_OK(open_csv(&ds, &src));
    for (int64_t i = 0; ds && i < N; i++) {
        float x, y;
        CHECK_OK(rt_dataset_fetch(ds, i, &x, &y));
        CHECK_MSG(memcmp(&x, &want[i], sizeof x) == 0, "row %lld: %a, strtod %a",
                  (long long)i, (double)x, (double)want[i]);
    }
    rt_dataset_free(ds);
}

/* ---- errors ------------------------------------------------------------------------- */

static rt_status open_vector(const char *path, const char *target, const char *const *feats,
                             int nfeats)
{
    rt_data_source src = {.file = path, .target = RT_TARGET_VECTOR, .target_column = target,
                          .features = feats, .num_features = nfeats};
    rt_dataset *ds = NULL;
    rt_status s = open_csv(&ds, &src);
    rt_dataset_free(ds);
    return s;
}

static void test_cell_errors(void)
{
    const char *p = write_csv("ragged.csv", "a,b,y\n1,2,3\n4,5\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 3), "2 fields",
                 "3 columns");
    p = write_csv("ragged2.csv", "a,b,y\n1,2,3,4\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 2), "4 fields",
                 "3 columns");
    p = write_csv("text.csv", "a,y\n1,2\nabc,3\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 3),
                 ": column 1 (\"a\"): cannot read \"abc\" as a number", NULL);
    p = write_csv("comma.csv", "a,y\n\"1,5\",3\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 2), "\"1,5\"", NULL);
    p = write_csv("target.csv", "a,y\n1,two\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 2), "\"two\"", NULL);
    const char *not_finite[] = {"nan", "inf", "-Infinity", "1e39", "NaN"};
    for (int i = 0; i < 5; i++) {
        char text[64];
        snprintf(text, sizeof text, "a,y\n1,2\n%s,3\n", not_finite[i]);
        p = write_csv("nan.csv", text);
        expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 3), not_finite[i],
                     "finite");
    }
    p = write_csv("latin1.csv", "city,y\nparis,1\n\xe9t\xe9,2\n");
    static const char *const cats[] = {"city"};
    rt_data_source src = {.file = p, .target = RT_TARGET_VECTOR, .target_column = "y",
                          .categorical = cats, .num_categorical = 1};
    rt_dataset *ds = NULL;
    expect_error(RT_ERR_FORMAT, open_csv(&ds, &src), p, "\"\\xe9t\\xe9\"", "UTF-8");
    p = write_csv("nan-target.csv", "a,y\n1,nan\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 2), "finite", NULL);
}

static void test_column_errors(void)
{
    const char *p = write_csv("dup.csv", "a,b,a,y\n1,2,3,4\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 1), "\"a\" twice",
                 NULL);
    p = write_csv("cols.csv", "carat,price,depth\n1,2,3\n");
    expect_error(RT_ERR_CONFIG, open_vector(p, "prise", NULL, 0), p, "\"prise\"",
                 "did you mean \"price\"");
    expect_error(RT_ERR_CONFIG, open_vector(p, "value", NULL, 0), p, "\"value\"",
                 "\"carat\", \"price\", \"depth\"");
    expect_error(RT_ERR_CONFIG, open_vector(p, NULL, NULL, 0), p, "data.target", "\"carat\"");
    static const char *const feats[] = {"carat", "dept"};
    expect_error(RT_ERR_CONFIG, open_vector(p, "price", feats, 2), p, "\"dept\"",
                 "did you mean \"depth\"");
    static const char *const twice[] = {"carat", "carat"};
    expect_error(RT_ERR_CONFIG, open_vector(p, "price", twice, 2), p, "\"carat\"", "twice");
    static const char *const with_target[] = {"carat", "price"};
    expect_error(RT_ERR_CONFIG, open_vector(p, "price", with_target, 2), p, "\"price\"",
                 "target");
    static const char *const cats[] = {"color"};
    rt_data_source src = {.file = p, .target = RT_TARGET_CLASS, .target_column = "price",
                          .categorical = cats, .num_categorical = 1};
    rt_dataset *ds = NULL;
    expect_error(RT_ERR_CONFIG, open_csv(&ds, &src), p, "\"color\"", "data.categorical");
    p = write_csv("only.csv", "y\n1\n");
    expect_error(RT_ERR_CONFIG, open_vector(p, "y", NULL, 0), p, "feature", NULL);
    p = write_csv("unnamed.csv", ",a,y\n0,1,2\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 1), "column 1", NULL);
}

static void test_label_errors(void)
{
    const char *p = write_csv("labels.csv", "x,y\n1,0\n2,1.5\n3,2\n");
    rt_data_source src = {.file = p, .target = RT_TARGET_CLASS, .target_column = "y"};
    rt_dataset *ds = NULL;
    expect_error(RT_ERR_FORMAT, open_csv(&ds, &src), at_line(p, 3), "\"1.5\"",
                 "labels must be integers >= 0 for a classifier (train.loss)");
    p = write_csv("negative.csv", "x,y\n1,0\n2,-1\n");
    src.file = p;
    expect_error(RT_ERR_FORMAT, open_csv(&ds, &src), at_line(p, 3), "\"-1\"", "integers >= 0");
    p = write_csv("huge.csv", "x,y\n1,0\n2,99999999999\n");
    src.file = p;
    expect_error(RT_ERR_FORMAT, open_csv(&ds, &src), p, "below", NULL);
    src.target = RT_TARGET_SEQUENCE;
    expect_error(RT_ERR_UNSUPPORTED, open_csv(&ds, &src), p, "sequence", NULL);
}

static void test_file_errors(void)
{
    const char *p = tmp_path("no-such.csv");
    expect_error(RT_ERR_CONFIG, open_vector(p, "y", NULL, 0), p, NULL, NULL);
    p = write_csv("empty.csv", "");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), p, "empty", NULL);
    p = write_csv("blank.csv", "\n\r\n  \n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), p, "empty", NULL);
    p = write_csv("header.csv", "a,y\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), p, "no data rows", NULL);
    p = write_csv("quote.csv", "a,y\n1,2\n3,\"4\"x\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 3), "quot", NULL);
    p = write_csv("quote2.csv", "a,y\n1,2\n3,4\"\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 3), "quot", NULL);
    p = write_csv("open.csv", "a,y\n1,2\n3,\"4\n5,6\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 3), "quot", NULL);

    /* A field longer than the cap, ended and still open at the end of the
     * file; neither is buffered whole. */
    size_t n = (size_t)200 << 10;
    char *big = malloc(n + 64);
    CHECK(big != NULL);
    if (!big)
        return;
    strcpy(big, "a,y\n1,");
    memset(big + 6, '7', n);
    strcpy(big + 6 + n, "\n");
    p = write_csv("long.csv", big);
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 2), "longer than",
                 NULL);
    big[6] = '"';
    big[6 + n] = '\0';
    p = write_csv("long2.csv", big);
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), at_line(p, 2), "longer than",
                 NULL);
    free(big);

    /* A gzip file cut short. */
    char text[4096];
    size_t used = (size_t)snprintf(text, sizeof text, "a,y\n");
    for (int i = 0; used + 32 < sizeof text; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "%d,%d\n", i * 7919 % 1000, i);
    p = write_gz("cut.csv.gz", text);
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    CHECK(truncate(p, size / 2) == 0);
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", NULL, 0), p, "gzip", NULL);
}

/* Line numbers count physical lines: blank lines, CR LF ends and line
 * breaks inside quoted fields. */
static void test_line_numbers(void)
{
    static const char *const feats[] = {"a"};
    const char *p = write_csv("lines.csv", "t,a,y\n"
                                           "p,1,2\n"
                                           "\n"
                                           "\"multi\nline\",2,3\n"
                                           "q,bad,4\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", feats, 1), at_line(p, 6), "\"bad\"", NULL);
    p = write_csv("lines-crlf.csv", "t,a,y\r\n"
                                    "p,1,2\r\n"
                                    "\r\n"
                                    "\"multi\r\nline\",2,3\r\n"
                                    "q,bad,4\r\n");
    expect_error(RT_ERR_FORMAT, open_vector(p, "y", feats, 1), at_line(p, 6), "\"bad\"", NULL);
    /* The last row without a line end is still read. */
    p = write_csv("no-eol.csv", "a,y\n1,2\n3,4");
    rt_data_source src = {.file = p, .target = RT_TARGET_VECTOR, .target_column = "y"};
    rt_dataset *ds = NULL;
    CHECK_OK(open_csv(&ds, &src));
    if (ds) {
        CHECK(rt_dataset_count(ds) == 2);
        expect_float_sample(ds, 1, (const float[]){3}, 1, 4);
    }
    rt_dataset_free(ds);
}

/* Random text: even trials are bytes drawn from CSV's own alphabet, odd
 * ones rows of plausible cells (some empty, quoted, multi-line, not UTF-8,
 * one too many). Any outcome but a crash (or, under valgrind, a bad read or
 * a leak) is fine; a failure must name the file. */
static int random_text(rt_rng *rng, int trial, char *text, int size)
{
    static const char alphabet[] = "ab,,\"\"\n\r 01.-e\t\xc3\xa9x";
    static const char *const cells[] = {"1", "2.5", "-3", "0", "x", "\"y\"", "", "\xc3\xa9",
                                        "\"a\nb\"", "7", "\xe9", "1,2"};
    int len = snprintf(text, (size_t)size, trial % 4 < 2 ? "a,b\n" : "b,a\n");
    if (trial % 2 == 0) {
        int want = len + (int)rt_rng_below(rng, (uint32_t)(size - len - 1));
        while (len < want)
            text[len++] = alphabet[rt_rng_below(rng, sizeof alphabet - 1)];
        return len;
    }
    int rows = 1 + (int)rt_rng_below(rng, 8);
    for (int i = 0; i < rows && len + 40 < size; i++) {
        const char *c1 = cells[rt_rng_below(rng, 12)], *c2 = cells[rt_rng_below(rng, 12)];
        len += snprintf(text + len, (size_t)(size - len), "%s,%s\n", c1, c2);
    }
    return len;
}

static void test_hostile_input(void)
{
    static const char *const cats[] = {"a"};
    rt_rng rng;
    rt_rng_init(&rng, rt_rng_key(42, 7, 0, 0));
    char text[256];
    int opened = 0;
    for (int trial = 0; trial < 400; trial++) {
        int len = random_text(&rng, trial, text, (int)sizeof text);
        const char *p = write_bytes("fuzz.csv", text, len);
        rt_data_source src = {.file = p, .target = trial % 3 ? RT_TARGET_CLASS : RT_TARGET_VECTOR,
                              .target_column = "b", .fill_missing = (rt_fill_policy)(trial % 3),
                              .categorical = trial % 4 ? cats : NULL,
                              .num_categorical = trial % 4 ? 1 : 0};
        rt_dataset *ds = NULL;
        if (open_csv(&ds, &src) == RT_OK) {
            opened++;
            float x[64];
            int32_t y;
            for (int64_t i = 0; i < rt_dataset_count(ds) && rt_dataset_desc(ds)->shape[0] <= 64;
                 i++)
                CHECK_OK(rt_dataset_fetch(ds, i, x, &y));
            rt_dataset_free(ds);
        } else {
            CHECK_MSG(strstr(rt_error_message(), p) != NULL, "message does not name %s: %s", p,
                      rt_error_message());
        }
        rt_error_clear();
    }
    printf("hostile input: %d of 400 random files opened\n", opened);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rt_test_csv_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_numeric_features();
    test_default_features();
    test_gzip();
    test_categorical();
    test_text_classes();
    test_splits();
    test_open_splits();
    test_integer_labels_at_evaluation();
    test_fill();
    test_numbers_as_strtod();
    test_cell_errors();
    test_column_errors();
    test_label_errors();
    test_file_errors();
    test_line_numbers();
    test_hostile_input();
    for (int i = 0; i < nwritten; i++)
        unlink(written[i]);
    CHECK_MSG(rmdir(tmpdir) == 0, "could not remove %s (a file left behind?)", tmpdir);
    return CHECK_DONE();
}
