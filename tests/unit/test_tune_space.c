/* Unit tests for search spaces (rtrain/tune.h): every domain kind from a
 * file and from overrides, the values of many trials (ranges, spread,
 * coverage, the grid's cross product), determinism in (seed, trial), that
 * the values written load as the configuration with exactly the value
 * drawn, what the file and overrides set, the JSON, and one test per
 * error class (status, file:line or override, a word of the fix).
 *
 * Config files are written into a fresh temporary directory. Expected
 * values come from the files written here and from the header's
 * semantics, never from the code under test. Values read back are
 * compared exactly: the assign text is the value, and the config stores
 * it as float or double (so a float field must equal (float)strtod). */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "config/internal.h"
#include "rtrain/config.h"
#include "rtrain/tune.h"

#define NTRIALS 200

static char tmpdir[] = "/tmp/rtrain_tune_space_XXXXXX";
static rt_config cfg;   /* large: static */
static char assign[RT_SPACE_MAX_DOMAINS][RT_SPACE_ASSIGN_MAX];

/* Writes `text` to tmpdir/name and returns the path (a static buffer of 8). */
static const char *write_file(const char *name, const char *text)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", p);
        exit(1);
    }
    return p;
}

static rt_status load(rt_space **s, const char *path, int n, ...)
{
    char *ovr[40];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < 40; i++)
        ovr[i] = va_arg(ap, char *);
    va_end(ap);
    rt_error_clear();
    return rt_space_load(s, path, n, ovr);
}

/* The load failed with RT_ERR_CONFIG, returned no space, and the message
 * contains every one of the NULL-terminated strings. */
static void expect_error_at(int line, rt_status st, rt_space *s, ...)
{
    check_count++;
    if (st != RT_ERR_CONFIG || s) {
        check_failures++;
        fprintf(stderr, "test_tune_space.c:%d: status %s, expected a configuration error (%s)\n",
                line, rt_status_name(st), rt_error_message());
        rt_space_free(s);
    }
    va_list ap;
    va_start(ap, s);
    check_message_va("test_tune_space.c", line, ap);
    va_end(ap);
}
#define EXPECT_ERROR(st, s, ...) expect_error_at(__LINE__, (st), (s), __VA_ARGS__, (const char *)NULL)

/* The value text of assign[i] after "key=", checking the key. */
static const char *value_of(int i, const char *key)
{
    size_t n = strlen(key);
    if (strncmp(assign[i], key, n) != 0 || assign[i][n] != '=') {
        fprintf(stderr, "assign[%d] = '%s', expected key %s\n", i, assign[i], key);
        return "nan";
    }
    return assign[i] + n + 1;
}

/* Loads the configuration of trial t: plain overrides, then the trial's values. */
static rt_status load_trial(const rt_space *s, const char *path)
{
    char *ovr[64];
    int np = rt_space_num_plain_overrides(s), nd = rt_space_num_domains(s);
    for (int i = 0; i < np; i++)
        ovr[i] = rt_space_plain_overrides(s)[i];
    for (int i = 0; i < nd; i++)
        ovr[np + i] = assign[i];
    return rt_config_load_trial(&cfg, path, np + nd, ovr);
}

/* ---- the space used by most tests: every kind, two grids ---------------------------- */
static const char *space_cfg =
    "model = { arch = \"mlp\"; hidden = { choice = ([32], [64, 64], [128]); }; "
    "output_relu = { grid = [false, true]; }; };\n"
    "optimizer = {\n"
    "  type = \"sgd\";\n"
    "  lr = { loguniform = [1e-4, 0.3]; };\n"
    "  momentum = { grid = (0.0, 0.5, 0.9); };\n"
    "  weight_decay = { uniform = [0.0, 0.01]; };\n"
    "};\n"
    "train = { epochs = { randint = [1, 4]; }; seed = 11; };\n"
    "data = { batch_size = { quniform = [16, 128, 16]; }; };\n";

/* The same domains as overrides. */
static char *space_ovr[] = {
    "model.hidden=choice([32], [64, 64], [128])", "model.output_relu=grid(false, true)",
    "optimizer.lr=loguniform(1e-4, 0.3)",         "optimizer.momentum=grid(0.0, 0.5, 0.9)",
    "optimizer.weight_decay=uniform(0.0, 0.01)",   "train.epochs=randint(1, 4)",
    "data.batch_size=quniform(16, 128, 16)"};
#define NSPACE_OVR ((int)(sizeof space_ovr / sizeof space_ovr[0]))

static const char *const space_keys[] = {"model.hidden", "model.output_relu", "optimizer.lr",
                                         "optimizer.momentum", "optimizer.weight_decay",
                                         "train.epochs", "data.batch_size"};
static const rt_domain_kind space_kinds[] = {RT_DOMAIN_CHOICE, RT_DOMAIN_GRID,
                                             RT_DOMAIN_LOGUNIFORM, RT_DOMAIN_GRID,
                                             RT_DOMAIN_UNIFORM, RT_DOMAIN_RANDINT,
                                             RT_DOMAIN_QUNIFORM};

static void check_structure(const rt_space *s)
{
    CHECK(rt_space_num_domains(s) == 7);
    for (int i = 0; i < 7 && i < rt_space_num_domains(s); i++) {
        CHECK_MSG(strcmp(rt_space_domain_key(s, i), space_keys[i]) == 0, "domain %d is %s", i,
                  rt_space_domain_key(s, i));
        CHECK(rt_space_domain_kind(s, i) == space_kinds[i]);
    }
    CHECK(rt_space_grid_size(s) == 6);
    CHECK(strcmp(rt_domain_kind_name(RT_DOMAIN_LOGUNIFORM), "loguniform") == 0);
}

/* 200 trials: every value in its domain, spread, coverage, and the grid. */
static void check_values(const rt_space *s, uint64_t seed)
{
    static const char *const hidden[] = {"[32]", "[64, 64]", "[128]"};
    static const char *const momentum[] = {"0.0", "0.5", "0.9"};
    static const char *const relu[] = {"false", "true"};
    int hidden_hits[3] = {0}, epochs_hits[5] = {0}, below_gm = 0, above_gm = 0;
    int bad = 0, cells_seen[6] = {0};
    double gm = sqrt(1e-4 * 0.3);
    for (int t = 0; t < NTRIALS; t++) {
        CHECK_OK(rt_space_trial(s, seed, t, assign));
        for (int h = 0; h < 3; h++)
            hidden_hits[h] += strcmp(value_of(0, "model.hidden"), hidden[h]) == 0;
        /* grid: output_relu (the first grid domain) fastest, then momentum */
        bad += strcmp(value_of(1, "model.output_relu"), relu[t % 2]) != 0;
        bad += strcmp(value_of(3, "optimizer.momentum"), momentum[(t / 2) % 3]) != 0;
        double lr = strtod(value_of(2, "optimizer.lr"), NULL);
        bad += !(lr >= 1e-4 && lr < 0.3);
        below_gm += lr < gm;
        above_gm += lr > gm;
        double wd = strtod(value_of(4, "optimizer.weight_decay"), NULL);
        bad += !(wd >= 0.0 && wd < 0.01);
        char *end;
        long e = strtol(value_of(5, "train.epochs"), &end, 10);
        bad += *end != '\0' || e < 1 || e >= 4;
        epochs_hits[e >= 0 && e <= 4 ? e : 0]++;
        long bs = strtol(value_of(6, "data.batch_size"), &end, 10);
        bad += *end != '\0' || bs % 16 != 0 || bs < 16 || bs > 128;
        /* each block of 6 consecutive trials covers every cell once */
        int cell = -1;
        for (int m = 0; m < 3; m++)
            for (int r = 0; r < 2; r++)
                if (!strcmp(value_of(3, "optimizer.momentum"), momentum[m]) &&
                    !strcmp(value_of(1, "model.output_relu"), relu[r]))
                    cell = r + 2 * m;
        if (cell >= 0)
            cells_seen[cell]++;
        if (t % 6 == 5) {
            for (int c = 0; c < 6; c++) {
                bad += cells_seen[c] != 1;
                cells_seen[c] = 0;
            }
        }
    }
    CHECK_MSG(bad == 0, "%d values out of their domain or grid cells out of order", bad);
    for (int h = 0; h < 3; h++)
        CHECK_MSG(hidden_hits[h] > 20, "choice %s drawn %d times of %d", hidden[h],
                  hidden_hits[h], NTRIALS);
    /* log-uniform: half below the geometric mean in expectation; 40 of 200 is
     * far in the tail (binomial sd ~7). */
    CHECK_MSG(below_gm > 40 && above_gm > 40, "loguniform: %d below, %d above %g", below_gm,
              above_gm, gm);
    CHECK(epochs_hits[1] > 0 && epochs_hits[2] > 0 && epochs_hits[3] > 0 && epochs_hits[4] == 0);
}

/* The values written load, and the configuration holds exactly those values. */
static void check_loads(const rt_space *s, const char *path)
{
    for (int t = 0; t < 12; t++) {
        CHECK_OK(rt_space_trial(s, 5, t, assign));
        rt_status st = load_trial(s, path);
        CHECK_OK(st);
        if (st != RT_OK)
            continue;
        CHECK(cfg.optimizer.lr == (float)strtod(value_of(2, "optimizer.lr"), NULL));
        CHECK(cfg.optimizer.momentum == (float)strtod(value_of(3, "optimizer.momentum"), NULL));
        CHECK(cfg.optimizer.weight_decay ==
              (float)strtod(value_of(4, "optimizer.weight_decay"), NULL));
        CHECK(cfg.train.epochs == atoi(value_of(5, "train.epochs")));
        CHECK(cfg.data.batch_size == atoi(value_of(6, "data.batch_size")));
        CHECK(cfg.model.output_relu == (strcmp(value_of(1, "model.output_relu"), "true") == 0));
        char hidden[64];
        snprintf(hidden, sizeof hidden, cfg.model.num_hidden == 1 ? "[%d]" : "[%d, %d]",
                 cfg.model.hidden[0], cfg.model.hidden[1]);
        CHECK_MSG(strcmp(hidden, value_of(0, "model.hidden")) == 0, "hidden %s, drew %s", hidden,
                  value_of(0, "model.hidden"));
        CHECK(cfg.train.seed == 11);
    }
}

static void test_file_space(void)
{
    const char *path = write_file("space.cfg", space_cfg);
    rt_space *s = NULL;
    CHECK_OK(load(&s, path, 0));
    if (!s)
        return;
    check_structure(s);
    check_values(s, 7);
    check_loads(s, path);
    CHECK(rt_space_num_plain_overrides(s) == 0);
    CHECK(rt_space_sets(s, "train.seed") == 1);       /* a plain value in the file */
    CHECK(rt_space_sets(s, "optimizer.lr") == 1);     /* a domain in the file */
    CHECK(rt_space_sets(s, "run.name") == 0);
    CHECK(rt_space_sets(s, "no.such.key") == 0);
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_space_trial(s, 7, -1, assign));
    rt_space_free(s);
}

/* The override forms give the same space, the same JSON and the same values. */
static void test_override_space(void)
{
    const char *plain = write_file("plain.cfg", "model = { arch = \"mlp\"; };\n"
                                                "optimizer = { type = \"sgd\"; };\n");
    const char *path = write_file("space.cfg", space_cfg);
    char *ovr[NSPACE_OVR + 1];
    ovr[0] = "train.seed=11";
    for (int i = 0; i < NSPACE_OVR; i++)
        ovr[i + 1] = space_ovr[i];
    rt_space *s = NULL, *f = NULL;
    rt_error_clear();
    CHECK_OK(rt_space_load(&s, plain, NSPACE_OVR + 1, ovr));
    CHECK_OK(load(&f, path, 0));
    if (!s || !f) {
        rt_space_free(s);
        rt_space_free(f);
        return;
    }
    check_structure(s);
    check_values(s, 7);
    check_loads(s, plain);
    CHECK(rt_space_num_plain_overrides(s) == 1);
    CHECK(strcmp(rt_space_plain_overrides(s)[0], "train.seed=11") == 0);
    CHECK(rt_space_sets(s, "train.seed") == 1);       /* a plain override */
    CHECK(rt_space_sets(s, "data.batch_size") == 1);  /* a domain override */
    char *js = NULL, *jf = NULL;
    CHECK_OK(rt_space_json(s, &js));
    CHECK_OK(rt_space_json(f, &jf));
    CHECK_MSG(js && jf && strcmp(js, jf) == 0, "override JSON %s\nfile JSON %s", js, jf);
    char fa[RT_SPACE_MAX_DOMAINS][RT_SPACE_ASSIGN_MAX];
    int same = 1;
    for (int t = 0; t < 30; t++) {
        CHECK_OK(rt_space_trial(s, 3, t, assign));
        CHECK_OK(rt_space_trial(f, 3, t, fa));
        for (int i = 0; i < 7; i++)
            same &= strcmp(assign[i], fa[i]) == 0;
    }
    CHECK_MSG(same, "the override form draws other values than the file form");
    free(js);
    free(jf);
    rt_space_free(s);
    rt_space_free(f);
}

static void test_determinism(void)
{
    const char *path = write_file("space.cfg", space_cfg);
    rt_space *a = NULL, *b = NULL;
    CHECK_OK(load(&a, path, 0));
    CHECK_OK(load(&b, path, 0));
    if (!a || !b) {
        rt_space_free(a);
        rt_space_free(b);
        return;
    }
    char other[RT_SPACE_MAX_DOMAINS][RT_SPACE_ASSIGN_MAX];
    int same = 1, lr_differs = 0;
    for (int t = 0; t < 50; t++) {
        CHECK_OK(rt_space_trial(a, 7, t, assign));
        CHECK_OK(rt_space_trial(b, 7, t, other));
        for (int i = 0; i < 7; i++)
            same &= strcmp(assign[i], other[i]) == 0;
        CHECK_OK(rt_space_trial(b, 8, t, other));
        lr_differs += strcmp(assign[2], other[2]) != 0;
    }
    CHECK_MSG(same, "the same (seed, trial) gave different values");
    CHECK_MSG(lr_differs == 50, "seeds 7 and 8 gave the same lr in %d of 50 trials",
              50 - lr_differs);
    /* trial order does not matter: trial 17 alone equals trial 17 after others */
    CHECK_OK(rt_space_trial(a, 7, 17, assign));
    CHECK_OK(rt_space_trial(b, 9, 3, other));
    CHECK_OK(rt_space_trial(b, 7, 17, other));
    CHECK(strcmp(assign[2], other[2]) == 0 && strcmp(assign[4], other[4]) == 0);
    char *j1 = NULL, *j2 = NULL;
    CHECK_OK(rt_space_json(a, &j1));
    CHECK_OK(rt_space_json(b, &j2));
    CHECK(j1 && j2 && strcmp(j1, j2) == 0);
    if (j1) {
        for (int i = 0; i < 7; i++) {
            char want[96];
            snprintf(want, sizeof want, "\"key\":\"%s\"", space_keys[i]);
            CHECK_MSG(strstr(j1, want), "JSON lacks %s: %s", want, j1);
        }
        CHECK_MSG(strstr(j1, "{\"key\":\"optimizer.lr\",\"kind\":\"loguniform\","
                             "\"args\":\"[0.0001, 0.3]\"}"), "%s", j1);
        CHECK_MSG(strstr(j1, "\"args\":\"([32], [64, 64], [128])\""), "%s", j1);
        json_error_t err;
        json_t *root = json_loads(j1, 0, &err);
        CHECK(root && json_array_size(json_object_get(root, "domains")) == 7);
        json_decref(root);
    }
    free(j1);
    free(j2);
    rt_space_free(a);
    rt_space_free(b);
}

/* What sets a key; a plain override pins a domain's key; later wins. */
static void test_sets_and_pins(void)
{
    const char *none = write_file("none.cfg", "optimizer = { lr = { uniform = [0.1, 0.2]; }; };\n");
    rt_space *s = NULL;
    CHECK_OK(load(&s, none, 0));
    CHECK(s && rt_space_sets(s, "train.seed") == 0);
    rt_space_free(s);
    s = NULL;
    CHECK_OK(load(&s, none, 1, "train.seed=5"));
    CHECK(s && rt_space_sets(s, "train.seed") == 1);
    rt_space_free(s);
    s = NULL;
    CHECK_OK(load(&s, none, 1, "train={ seed = 5; }"));   /* a group's value */
    CHECK(s && rt_space_sets(s, "train.seed") == 1 && rt_space_sets(s, "train.epochs") == 0);
    rt_space_free(s);
    s = NULL;
    /* pinned: no domain left, the file loads with the plain override alone */
    CHECK_OK(load(&s, none, 1, "optimizer.lr=0.15"));
    if (s) {
        CHECK(rt_space_num_domains(s) == 0 && rt_space_grid_size(s) == 1);
        CHECK_OK(load_trial(s, none));
        CHECK(cfg.optimizer.lr == 0.15f);
    }
    rt_space_free(s);
    s = NULL;
    /* a domain override replaces the file's domain */
    CHECK_OK(load(&s, none, 1, "optimizer.lr=grid(0.5, 0.25)"));
    if (s) {
        CHECK(rt_space_num_domains(s) == 1 && rt_space_domain_kind(s, 0) == RT_DOMAIN_GRID);
        CHECK(rt_space_grid_size(s) == 2);
        CHECK_OK(rt_space_trial(s, 0, 3, assign));
        CHECK_MSG(strcmp(assign[0], "optimizer.lr=0.25") == 0, "%s", assign[0]);
    }
    rt_space_free(s);
}

/* Values of other types written back in config-file syntax load as given. */
static void test_value_syntax(void)
{
    const char *path = write_file("syntax.cfg",
        "run = { name = { choice = (\"a \\\"quoted\\\" name\", \"back\\\\slash\"); }; };\n"
        "train = { steps_per_epoch = { choice = [5000000000L]; }; };\n"
        "optimizer = { type = { grid = (\"adam\", \"adamw\"); }; momentum = 0.0; };\n");
    rt_space *s = NULL;
    /* momentum is SGD's: the file's own value fails with every value of the grid */
    EXPECT_ERROR(load(&s, path, 0), s, "syntax.cfg:3", "optimizer.momentum only applies",
                 "\"adam\"");
    path = write_file("syntax.cfg",
        "run = { name = { choice = (\"a \\\"quoted\\\" name\", \"back\\\\slash\"); }; };\n"
        "train = { steps_per_epoch = { choice = [5000000000L]; }; };\n"
        "optimizer = { type = { grid = (\"adam\", \"adamw\"); }; };\n");
    CHECK_OK(load(&s, path, 0));
    if (!s)
        return;
    int names = 0;
    for (int t = 0; t < 20; t++) {
        CHECK_OK(rt_space_trial(s, 1, t, assign));
        CHECK_OK(load_trial(s, path));
        names |= strcmp(cfg.run.name, "a \"quoted\" name") == 0 ? 1 :
                 strcmp(cfg.run.name, "back\\slash") == 0 ? 2 : 4;
        CHECK(cfg.train.steps_per_epoch == 5000000000LL);
        CHECK(cfg.optimizer.type == (t % 2 ? RT_OPTIM_ADAMW : RT_OPTIM_ADAM));
    }
    CHECK_MSG(names == 3, "run.name values seen: mask %d", names);
    CHECK_MSG(strcmp(assign[1], "train.steps_per_epoch=5000000000L") == 0, "%s", assign[1]);
    rt_space_free(s);
}

/* A float key holds a float: the value drawn is rounded to one, and stays
 * below b even where b - a is a few float steps. */
static void test_float_keys(void)
{
    const char *path = write_file("float.cfg", "optimizer = { type = \"sgd\"; momentum = "
                                               "{ uniform = [0.99999, 1.0]; }; };\n");
    rt_space *s = NULL;
    CHECK_OK(load(&s, path, 0));
    if (!s)
        return;
    int bad = 0;
    for (int t = 0; t < NTRIALS; t++) {
        CHECK_OK(rt_space_trial(s, 2, t, assign));
        double v = strtod(value_of(0, "optimizer.momentum"), NULL);
        bad += v != (double)(float)v || !(v >= 0.99999 && v < 1.0);
    }
    CHECK_MSG(bad == 0, "%d momentum values not floats in [0.99999, 1)", bad);
    rt_space_free(s);
}

/* ---- errors ------------------------------------------------------------------------ */
static void expect_file_error(int line, const char *text, const char *where, const char *w1,
                              const char *w2)
{
    const char *path = write_file("bad.cfg", text);
    rt_space *s = NULL;
    rt_status st = load(&s, path, 0);
    expect_error_at(line, st, s, where, w1, w2, (const char *)NULL);
}
#define FILE_ERROR(text, where, w1, w2) expect_file_error(__LINE__, text, where, w1, w2)

static void test_file_errors(void)
{
    FILE_ERROR("optimizer = {\n  lrr = { uniform = [0.1, 0.2]; };\n};\n", "bad.cfg:2",
               "unknown key 'optimizer.lrr'", "did you mean 'optimizer.lr'");
    FILE_ERROR("optimizer = {\n  lr = { uniform = [0.2, 0.1]; };\n};\n", "bad.cfg:2",
               "optimizer.lr = uniform [0.2, 0.1]", "lower bound");
    FILE_ERROR("\noptimizer = { lr = { loguniform = [0.0, 0.1]; }; };\n", "bad.cfg:2",
               "loguniform", "0 < a");
    FILE_ERROR("train = { epochs = { randint = (1.0, 4); }; };\n", "bad.cfg:1", "randint",
               "integers");
    FILE_ERROR("optimizer = { lr = { quniform = [0.1, 0.5, 0.0]; }; };\n", "bad.cfg:1",
               "quniform", "q must be > 0");
    FILE_ERROR("data = { batch_size = { quniform = (16, 128, 2.5); }; };\n", "bad.cfg:1",
               "data.batch_size", "integer q");
    FILE_ERROR("train = { epochs = { uniform = [1, 5]; }; };\n", "bad.cfg:1", "train.epochs",
               "randint");
    FILE_ERROR("optimizer = { type = { uniform = [0, 1]; }; };\n", "bad.cfg:1",
               "optimizer.type", "choice or grid");
    FILE_ERROR("optimizer = { lr = { uniform = [0.1]; }; };\n", "bad.cfg:1", "uniform takes",
               "[a, b]");
    FILE_ERROR("model = {\n  hidden = { choice = (); };\n};\n", "bad.cfg:2", "model.hidden",
               "1 to 1024 values");
    FILE_ERROR("optimizer = { lr = { choice = 0.1; }; };\n", "bad.cfg:1", "optimizer.lr",
               "a list");
    /* the schema: ranges at both ends, types of a choice */
    FILE_ERROR("optimizer = {\n  lr = { uniform = [-1.0, 0.1]; };\n};\n", "bad.cfg:2",
               "-1.0 is not accepted", "out of range");
    FILE_ERROR("optimizer = { lr = { loguniform = [1e-4, 3e3]; }; };\n", "bad.cfg:1",
               "just below 3000.0 (2999.999755859375)", "out of range");
    FILE_ERROR("train = {\n\n  epochs = { randint = [0, 5]; };\n};\n", "bad.cfg:3",
               "train.epochs = randint [0, 5]: 0 is not accepted", "out of range");
    FILE_ERROR("optimizer = { lr = { choice = (0.1, \"fast\"); }; };\n", "bad.cfg:1",
               "\"fast\" is not accepted", "must be a number");
    FILE_ERROR("train = { epochs = { grid = (2, 3.0); }; };\n", "bad.cfg:1",
               "3.0 is not accepted", "must be an integer");
    FILE_ERROR("optimizer = { type = \"adam\"; momentum = { grid = [0.0, 0.9]; }; };\n",
               "bad.cfg:1", "optimizer.momentum", "not accepted");
    /* a domain on a group, a mistake elsewhere in the file, a syntax error */
    FILE_ERROR("optimizer = { grid = [0.1, 0.2]; };\n", "bad.cfg:1", "'optimizer' is a group",
               "optimizer.lr");
    FILE_ERROR("optimizer = { lr = { uniform = [0.1, 0.2]; }; };\ntrian = { epochs = 2; };\n",
               "bad.cfg:2", "unknown key 'trian'", "did you mean 'train'");
    FILE_ERROR("optimizer = { lr = { uniform = [0.1, 0.2]; };\n", "bad.cfg:2", "syntax error",
               "");
}

static void test_override_errors(void)
{
    const char *plain = write_file("plain.cfg", "model = { arch = \"mlp\"; };\n");
    rt_space *s = NULL;
    EXPECT_ERROR(load(&s, plain, 1, "optimizer.lrr=uniform(0.1, 0.2)"), s,
                 "override 'optimizer.lrr=uniform(0.1, 0.2)'", "did you mean 'optimizer.lr'");
    EXPECT_ERROR(load(&s, plain, 1, "optimizer.lr=uniform(0.2, 0.1"), s,
                 "override 'optimizer.lr=uniform(0.2, 0.1'", "parentheses");
    EXPECT_ERROR(load(&s, plain, 1, "optimizer.type=choice(sgd, adam)"), s,
                 "override 'optimizer.type=choice(sgd, adam)'", "syntax error", "\"text\"");
    EXPECT_ERROR(load(&s, plain, 1, "optimizer.lr=loguniform(-1, 1)"), s,
                 "override 'optimizer.lr=loguniform(-1, 1)'", "0 < a");
    EXPECT_ERROR(load(&s, plain, 1, "optimizer=grid(0.1, 0.2)"), s, "override 'optimizer=grid",
                 "is a group");
    EXPECT_ERROR(load(&s, plain, 1, "train.epochs=randint(0, 3)"), s,
                 "override 'train.epochs=randint(0, 3)'", "0 is not accepted");
    EXPECT_ERROR(load(&s, plain, 1, "optimizer.lr=choice()"), s, "optimizer.lr=choice()",
                 "1 to 1024");
    EXPECT_ERROR(load(&s, plain, 1, "train.seed=randint(0, 5000000000)"), s,
                 "override 'train.seed=randint(0, 5000000000)'", "5000000000L");
    EXPECT_ERROR(load(&s, plain, 1, "train.steps_per_epoch=choice(\"1e99\", -3000000000)"), s,
                 "override", "3000000000L");
    /* beyond 32 bits with L, floats with exponents and hex within range are fine */
    CHECK_OK(load(&s, plain, 2, "train.seed=randint(2, 5000000000L)",
                  "optimizer.lr=loguniform(1e-5, 1E+1)"));
    if (s) {
        int big = 0;
        for (int t = 0; t < 20; t++) {
            CHECK_OK(rt_space_trial(s, 0, t, assign));
            CHECK_OK(load_trial(s, plain));
            CHECK(cfg.train.seed == strtoll(value_of(0, "train.seed"), NULL, 10));
            big += cfg.train.seed > 2147483647LL;
        }
        CHECK_MSG(big > 10, "%d of 20 seeds above 2^31 (expected about 19)", big);
    }
    rt_space_free(s);
    s = NULL;
    CHECK_OK(load(&s, plain, 1, "train.epochs=grid(0x10, 3)"));
    rt_space_free(s);
    s = NULL;
    /* a plain override's own mistake is the config module's message */
    EXPECT_ERROR(load(&s, plain, 2, "optimizer.lr=uniform(0.1, 0.2)", "train.epochs=0"), s,
                 "override 'train.epochs=0'", "out of range");
}

/* At most RT_SPACE_MAX_DOMAINS domains, 1024 values, a grid of 1e6 cells. */
static void test_limits(void)
{
    const char *plain = write_file("plain.cfg", "model = { arch = \"mlp\"; };\n");
    static char texts[RT_SPACE_MAX_DOMAINS + 1][300];
    char *ovr[RT_SPACE_MAX_DOMAINS + 1];
    int n = 0;
    for (int i = 0; i < rt_config_num_keys() && n <= RT_SPACE_MAX_DOMAINS; i++) {
        snprintf(texts[n], sizeof texts[n], "%s=choice(0)", rt_config_key(i)->path);
        ovr[n] = texts[n];
        n++;
    }
    rt_space *s = NULL;
    rt_error_clear();
    rt_status st = rt_space_load(&s, plain, n, ovr);
    EXPECT_ERROR(st, s, "more than 32");

    static char big[2][8 * 1100], many[8 * 1100 + 8];
    int len = snprintf(big[0], sizeof big[0], "train.epochs=grid(1");
    int len2 = snprintf(big[1], sizeof big[1], "train.eval_every=grid(1");
    for (int i = 1; i < 1024; i++) {
        len += snprintf(big[0] + len, sizeof big[0] - len, ", 1");
        len2 += snprintf(big[1] + len2, sizeof big[1] - len2, ", 1");
    }
    snprintf(many, sizeof many, "%s, 1)", big[0]);
    snprintf(big[0] + len, sizeof big[0] - len, ")");
    snprintf(big[1] + len2, sizeof big[1] - len2, ")");
    EXPECT_ERROR(load(&s, plain, 2, big[0], big[1]), s, "train.eval_every", "more than 1000000");
    EXPECT_ERROR(load(&s, plain, 1, many), s, "train.epochs", "1 to 1024 values");
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_file_space();
    test_override_space();
    test_determinism();
    test_sets_and_pins();
    test_value_syntax();
    test_float_keys();
    test_file_errors();
    test_override_errors();
    test_limits();
    const char *names[] = {"space.cfg", "plain.cfg", "none.cfg", "syntax.cfg", "float.cfg",
                           "bad.cfg"};
    char p[600];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    return CHECK_DONE();
}
