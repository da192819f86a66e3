/* The LightGBM table (src/gbdt/lightgbm.c) on 2 ranks, driven directly
 * with shards of a real table (gbdt_lightgbm.test writes them from
 * scikit-learn's bundled tables with tests/mpi/gbdt_lightgbm_ref.py):
 *
 *   train TABLE OBJECTIVE NUM_CLASS ROUNDS OUT
 *       trains ROUNDS rounds on this rank's shard of the training rows
 *       (the first floor(0.8 * rows) rows; rank r of P holds rows
 *       [r n / P, (r + 1) n / P)); checks that both ranks hold the same
 *       model; continues a second booster from the model saved after
 *       ROUNDS / 2 rounds for the other half and checks that it ends with
 *       the same model text (resume exactly); that the predictions of the
 *       validation shard (LightGBM's running scores) equal predictions from
 *       scratch, bit for bit; writes OUT.rank<r> (the model
 *       text) and OUT.rank<r>.pred (float32 predictions of this rank's
 *       validation shard), which gbdt_lightgbm.test compares with
 *       LightGBM's own socket-based distributed training.
 *   errors TABLE
 *       a missing library (exit code 2, how to get it), unknown, reserved
 *       and malformed parameters, an unknown objective, labels invalid for
 *       the objective on one rank only and a NaN label: one clear error on
 *       every rank, no hang, and a booster created after them trains; the
 *       warning that a resume with row sampling cannot be exact.
 *
 * The library is found as rtrain finds it (RTRAIN_LIGHTGBM_LIBRARY, the
 * install directory, a Python package). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "rtrain/comm_mpi.h"
#include "gbdt/library.h"

typedef struct table {
    int64_t rows, cols;
    float *x, *y;
} table;

static int read_table(const char *path, table *t)
{
    FILE *f = fopen(path, "rb");
    int64_t shape[2];
    if (!f || fread(shape, sizeof shape[0], 2, f) != 2 || shape[0] <= 0 || shape[1] <= 0) {
        fprintf(stderr, "cannot read %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    t->rows = shape[0];
    t->cols = shape[1];
    t->x = malloc((size_t)(t->rows * t->cols) * sizeof *t->x);
    t->y = malloc((size_t)t->rows * sizeof *t->y);
    int ok = t->x && t->y &&
        fread(t->x, sizeof *t->x, (size_t)(t->rows * t->cols), f) == (size_t)(t->rows * t->cols)
        && fread(t->y, sizeof *t->y, (size_t)t->rows, f) == (size_t)t->rows;
    fclose(f);
    return ok ? 0 : -1;
}

/* Rank r's contiguous shard of rows [first, first + n) of t. */
static rt_gbdt_shard shard_of(const table *t, int64_t first, int64_t n, int rank, int size)
{
    int64_t lo = rank * n / size, hi = (rank + 1) * n / size;
    rt_gbdt_shard s = {
        .x = t->x + (first + lo) * t->cols, .label = t->y + first + lo, .rows = hi - lo,
        .cols = t->cols, .first_row = first + lo, .global_rows = n,
    };
    return s;
}

static const rt_gbdt_library *L = &rt_gbdt_lightgbm;

/* The test's parameters, the same as the reference's (gbdt_lightgbm_ref.py). */
static const rt_gbdt_param test_params[] = {{"num_leaves", "15"}, {"verbosity", "-1"}};

static rt_gbdt_setup setup_for(rt_comm *comm, const char *objective, int num_class,
                               const rt_gbdt_shard *train)
{
    rt_gbdt_setup s = {
        .comm = comm, .objective = objective, .num_class = num_class, .threads = 1, .seed = 7,
        .params = test_params, .n_params = 2, .train = train,
    };
    return s;
}

/* 1 on every rank when the model text is the same on every rank. */
static int same_on_all_ranks(rt_comm *comm, const char *text, size_t len)
{
    int64_t n = (int64_t)len;
    if (rt_comm_broadcast(comm, &n, 1, RT_DTYPE_INT64, 0) != RT_OK)
        return 0;
    char *root = malloc((size_t)n + 1);
    int same = root != NULL;
    if (root && rt_comm_rank(comm) == 0)
        memcpy(root, text, len);
    if (root && rt_comm_broadcast(comm, root, (size_t)n, RT_DTYPE_BYTE, 0) != RT_OK)
        same = 0;
    same = same && (size_t)n == len && !memcmp(root, text, len);
    free(root);
    int all = same;
    if (rt_comm_allreduce(comm, &all, 1, RT_DTYPE_INT32, RT_REDUCE_MIN) != RT_OK)
        return 0;
    return all;
}

/* 1 when pred, the predictions of the validation shard given to create
 * (LightGBM's running scores), has the bits of predicting those rows from
 * scratch (another shard object over the same rows). */
static int same_as_from_scratch(rt_gbdt_booster *b, const rt_gbdt_shard *valid,
                                const float *pred, int outputs)
{
    rt_gbdt_shard copy = *valid;
    size_t n = (size_t)(valid->rows * outputs);
    float *scratch = calloc(n ? n : 1, sizeof *scratch);
    int same = scratch && L->predict(b, &copy, scratch) == RT_OK &&
        !memcmp(scratch, pred, n * sizeof *pred);
    free(scratch);
    return same;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static int run_train(rt_comm *comm, const table *t, const char *objective, int num_class,
                     int rounds, const char *out)
{
    int rank = rt_comm_rank(comm), size = rt_comm_size(comm);
    int64_t n_train = (int64_t)(0.8 * (double)t->rows);
    rt_gbdt_shard train = shard_of(t, 0, n_train, rank, size);
    rt_gbdt_shard valid = shard_of(t, n_train, t->rows - n_train, rank, size);
    rt_gbdt_setup s = setup_for(comm, objective, num_class, &train);
    s.valid = &valid;
    CHECK(L->task(objective) != RT_GBDT_TASK_UNKNOWN);

    /* Straight: rounds rounds, the model saved at rounds / 2 on the way. */
    rt_gbdt_booster *b = NULL;
    CHECK_OK(L->create(&b, &s));
    if (!b)
        return 1;
    int half = rounds / 2;
    char *mid = NULL, *full = NULL;
    size_t mid_len = 0, full_len = 0;
    for (int i = 0; i < rounds; i++) {
        CHECK_OK(L->update(b));
        if (i + 1 == half)
            CHECK_OK(L->save(b, &mid, &mid_len));
    }
    CHECK_MSG(L->rounds(b) == rounds, "%lld rounds", (long long)L->rounds(b));
    CHECK_OK(L->save(b, &full, &full_len));
    CHECK_MSG(same_on_all_ranks(comm, full, full_len), "the ranks' models differ");
    int outputs = num_class > 1 ? num_class : 1;
    float *pred = calloc((size_t)(valid.rows * outputs), sizeof *pred);
    CHECK_OK(L->predict(b, &valid, pred));
    CHECK_MSG(same_as_from_scratch(b, &valid, pred, outputs), "straight run");
    L->free(b);

    /* Resumed: half the rounds from the model saved half-way. With a
     * deadline, so that LightGBM's collectives go through rt_comm_wait's
     * polling (the straight run above waited without one). */
    rt_comm_set_timeout(comm, 120);
    rt_gbdt_setup r = s;
    r.model = mid;
    r.model_len = mid_len;
    rt_gbdt_booster *c = NULL;
    CHECK_OK(L->create(&c, &r));
    if (c) {
        CHECK_MSG(L->rounds(c) == half, "resumed at %lld rounds", (long long)L->rounds(c));
        for (int i = half; i < rounds; i++)
            CHECK_OK(L->update(c));
        char *again = NULL;
        size_t again_len = 0;
        CHECK_OK(L->save(c, &again, &again_len));
        CHECK_MSG(again && again_len == full_len && !memcmp(again, full, full_len),
                  "%d + %d rounds differ from %d straight rounds", half, rounds - half, rounds);
        float *pred2 = calloc((size_t)(valid.rows * outputs), sizeof *pred2);
        CHECK_OK(L->predict(c, &valid, pred2));
        CHECK(!memcmp(pred, pred2, (size_t)(valid.rows * outputs) * sizeof *pred));
        CHECK_MSG(same_as_from_scratch(c, &valid, pred2, outputs), "resumed run");
        free(pred2);
        free(again);
        L->free(c);
    }

    char path[4096];
    snprintf(path, sizeof path, "%s.rank%d", out, rank);
    CHECK(write_file(path, full, full_len) == 0);
    snprintf(path, sizeof path, "%s.rank%d.pred", out, rank);
    CHECK(write_file(path, pred, (size_t)(valid.rows * outputs) * sizeof *pred) == 0);
    free(pred);
    free(mid);
    free(full);
    return 0;
}

static void check_message(int line, ...)
{
    va_list ap;
    va_start(ap, line);
    check_message_va(__FILE__, line, ap);
    va_end(ap);
}
#define CHECK_MESSAGE(...) check_message(__LINE__, __VA_ARGS__, (const char *)NULL)

/* create with one parameter more than the test's; the expected failure. */
static rt_status create_with(rt_comm *comm, const char *objective, const rt_gbdt_shard *train,
                             const char *key, const char *value)
{
    rt_gbdt_param p[3] = {test_params[0], test_params[1], {key, value}};
    rt_gbdt_setup s = setup_for(comm, objective, 1, train);
    s.params = p;
    s.n_params = key ? 3 : 2;
    rt_gbdt_booster *b = NULL;
    rt_status st = L->create(&b, &s);
    CHECK((st == RT_OK) == (b != NULL));
    L->free(b);
    return st;
}

static int run_errors(rt_comm *comm, table *t)
{
    int rank = rt_comm_rank(comm), size = rt_comm_size(comm);
    char version[64] = "";

    /* A missing library: exit code 2, how to get it. Before the real
     * library is opened (open keeps the first one it loads). */
    rt_status st = L->open("/nonexistent/lib_lightgbm.so", version, sizeof version);
    CHECK(st == RT_ERR_UNSUPPORTED && rt_status_exit_code(st) == 2);
    CHECK_MESSAGE("/nonexistent/lib_lightgbm.so", "gbdt.lightgbm_library",
                  "pip download lightgbm==4.7.0 --no-deps");
    const char *env = getenv("RTRAIN_LIGHTGBM_LIBRARY");
    char *saved = env ? strdup(env) : NULL;
    setenv("RTRAIN_LIGHTGBM_LIBRARY", "/nonexistent/env/lib_lightgbm.so", 1);
    CHECK(L->open(NULL, version, sizeof version) == RT_ERR_UNSUPPORTED);
    CHECK_MESSAGE("/nonexistent/env/lib_lightgbm.so", "RTRAIN_LIGHTGBM_LIBRARY");
    if (saved)
        setenv("RTRAIN_LIGHTGBM_LIBRARY", saved, 1);
    else
        unsetenv("RTRAIN_LIGHTGBM_LIBRARY");
    free(saved);
    CHECK_OK(L->open(NULL, version, sizeof version));
    CHECK_MSG(!strcmp(version, "4.7.0"), "version %s", version);
    /* Loaded once per process: another file is refused, none is fine. */
    CHECK(L->open("/other/lib_lightgbm.so", version, sizeof version) == RT_ERR_UNSUPPORTED);
    CHECK_MESSAGE("already loaded from", "/other/lib_lightgbm.so");
    unsetenv("RTRAIN_LIGHTGBM_LIBRARY");
    CHECK_OK(L->open(NULL, version, sizeof version));

    rt_gbdt_shard train = shard_of(t, 0, t->rows, rank, size);
    /* Parameters: unknown (with the closest name), set by rtrain,
     * malformed (LightGBM's message with the key), a tree learner that
     * needs every row on every rank. */
    CHECK(create_with(comm, "binary", &train, "num_leavs", "7") == RT_ERR_CONFIG);
    CHECK_MESSAGE("\"num_leavs\"", "did you mean \"num_leaves\"");
    CHECK(create_with(comm, "binary", &train, "num_machine", "4") == RT_ERR_CONFIG);
    CHECK_MESSAGE("\"num_machine\" is set by rtrain");
    /* num_leaf is an alias of num_leaves, which the test sets. */
    CHECK(create_with(comm, "binary", &train, "num_leaf", "7") == RT_ERR_CONFIG);
    CHECK_MESSAGE("\"num_leaves\" and \"num_leaf\"");
    CHECK(create_with(comm, "binary", &train, "max_bin", "abc") == RT_ERR_CONFIG);
    CHECK_MESSAGE("Parameter max_bin should be of type int, got \"abc\"");
    CHECK(create_with(comm, "binary", &train, "tree_learner", "feature") == RT_ERR_CONFIG);
    CHECK_MESSAGE("tree_learner", "\"data\" or \"voting\"");
    /* An unknown objective: LightGBM's message. */
    CHECK(L->task("binary_foo") == RT_GBDT_TASK_UNKNOWN);
    CHECK(create_with(comm, "binary_foo", &train, NULL, NULL) == RT_ERR_CONFIG);
    CHECK_MESSAGE("Unknown objective type name: binary_foo");

    /* Labels only rank 1 gets wrong: every rank fails with rank 1's
     * message. breast_cancer's labels are 0/1; 3 is not a binary label. */
    float keep = train.label[0];
    if (rank == 1)
        ((float *)train.label)[0] = 3;
    CHECK(create_with(comm, "binary", &train, NULL, NULL) == RT_ERR_FORMAT);
    CHECK_MESSAGE("[rank 1 ", "label of training row", "is 3", "0 or 1");
    /* ... and one LightGBM itself refuses (its message). */
    if (rank == 1)
        ((float *)train.label)[0] = -1;
    CHECK(create_with(comm, "poisson", &train, NULL, NULL) == RT_ERR_CONFIG);
    CHECK_MESSAGE("[rank 1 ", "at least one target label is negative");
    if (rank == 1)
        ((float *)train.label)[0] = NAN;
    CHECK(create_with(comm, "regression", &train, NULL, NULL) == RT_ERR_FORMAT);
    CHECK_MESSAGE("[rank 1 ", "label of training row", "finite");
    if (rank == 1)
        ((float *)train.label)[0] = keep;

    /* A rank without training rows (more ranks than rows). */
    rt_gbdt_shard empty = train;
    if (rank == 1)
        empty.rows = 0;
    CHECK(create_with(comm, "binary", &empty, NULL, NULL) == RT_ERR_CONFIG);
    CHECK_MESSAGE("[rank 1 ", "shard of the training table is empty");

    /* Nothing was left behind: a booster trains. */
    rt_gbdt_setup s = setup_for(comm, "binary", 1, &train);
    rt_gbdt_booster *b = NULL;
    CHECK_OK(L->create(&b, &s));
    if (b) {
        CHECK_OK(L->update(b));
        CHECK(L->rounds(b) == 1);
        /* One network per process. */
        rt_gbdt_booster *second = NULL;
        CHECK(L->create(&second, &s) == RT_ERR_UNSUPPORTED);
        CHECK_MESSAGE("one per process");
        L->free(b);
    }

    /* Continuing with row sampling: trees differ from an uninterrupted run
     * (LightGBM's random state starts anew), which rank 0 warns of. */
    rt_gbdt_param bagging[] = {{"bagging_fraction", "0.8"}, {"bagging_freq", "1"}};
    s.params = bagging;
    s.n_params = 2;
    char *model = NULL;
    size_t model_len = 0;
    b = NULL;
    CHECK_OK(L->create(&b, &s));
    if (b) {
        CHECK_OK(L->update(b));
        CHECK_OK(L->save(b, &model, &model_len));
        L->free(b);
    }
    char *log = NULL;
    size_t log_len = 0;
    FILE *f = open_memstream(&log, &log_len);
    rt_log_set_file(f);
    s.model = model;
    s.model_len = model_len;
    b = NULL;
    CHECK_OK(L->create(&b, &s));
    rt_log_set_file(NULL);
    fclose(f);
    CHECK_MSG((strstr(log, "random state starts anew") != NULL) == (rank == 0), "log: %s", log);
    L->free(b);
    free(log);
    free(model);
    return 0;
}

int main(int argc, char **argv)
{
    int owned = 0;
    if (rt_comm_mpi_init(&argc, &argv, &owned) != RT_OK)
        return 1;
    rt_comm *comm = NULL;
    CHECK_OK(rt_comm_world(&comm));
    table t = {0};
    int bad_usage = argc < 3 || (strcmp(argv[1], "train") && strcmp(argv[1], "errors")) ||
        (!strcmp(argv[1], "train") && argc != 7);
    if (bad_usage || read_table(argv[2], &t) != 0) {
        fprintf(stderr, "usage: test_gbdt_lightgbm train TABLE OBJECTIVE NUM_CLASS ROUNDS OUT"
                " | errors TABLE\n");
        return 1;
    }
    if (comm && !strcmp(argv[1], "errors")) {
        run_errors(comm, &t);
    } else if (comm) {
        char version[64];
        CHECK_OK(L->open(NULL, version, sizeof version));
        run_train(comm, &t, argv[3], atoi(argv[4]), atoi(argv[5]), argv[6]);
    }
    free(t.x);
    free(t.y);
    int rc = CHECK_DONE();
    rt_comm_free(comm);
    if (owned)
        rt_comm_mpi_finalize();
    return rc;
}
