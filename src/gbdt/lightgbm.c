/* src/gbdt/lightgbm.c — LightGBM behind rt_gbdt_library (library.h).
 *
 * Loading. LightGBM (MIT) is not a build dependency: lib_lightgbm.so, as
 * PyPI's lightgbm wheel ships it, is opened with dlopen the first time a
 * run asks for it, from the first of: the path given to open
 * (gbdt.lightgbm_library), $RTRAIN_LIGHTGBM_LIBRARY, RT_LIGHTGBM_DIR
 * (where scripts/install-deps.sh unpacks the wheel), an installed Python
 * package (lightgbm/lib/lib_lightgbm.so under the site-packages and
 * dist-packages of /usr/lib/python3*, /usr/local/lib/python3* and
 * ~/.local/lib/python3*), then the dynamic linker's own search. The wheel
 * has no C header: the prototypes below are rtrain's own declarations of
 * LightGBM's documented C API (c_api.h of LightGBM 4), and every function
 * is looked up by name, so a library without one is refused when opened.
 * The version is read from the VERSION.txt the wheel puts beside lib/.
 *
 * Distribution. LightGBM's data-parallel learner needs two collectives,
 * which it takes as plain function pointers
 * (LGBM_NetworkInitWithFunctions): a reduce-scatter of byte blocks with
 * its own reduction (histogram sums, best splits) and an all-gather of
 * byte blocks. They run here on a duplicate of the run's MPI communicator:
 * MPI_Ireduce_scatter over a contiguous type of LightGBM's element size
 * with an MPI_Op_create op that calls LightGBM's reducer, and
 * MPI_Iallgatherv; both wait under the communicator's deadline
 * (rt_comm_wait, so a hung rank is named and the job ended). The callbacks
 * have no user pointer, and LightGBM keeps its network in thread-local
 * state of the thread that called create: so the communicator and the
 * reducer in flight are file-level state here, and a process holds at most
 * one LightGBM booster at a time (create refuses a second), driven from
 * the thread that created it. The parameters say num_machines = P,
 * tree_learner = data and pre_partition = true: without num_machines every
 * rank would silently train alone on its shard.
 *
 * Bins. LightGBM builds its bin boundaries from a sample of each rank's
 * rows, each rank for a share of the features, and all-gathers them while
 * the training dataset is built (over the network above), so every rank
 * bins with the same boundaries, as in LightGBM's own socket-based
 * training. The validation shard becomes a dataset binned with the
 * training set's boundaries (its reference), added to the booster, so
 * LightGBM keeps its scores up to date round by round.
 *
 * Predictions. predict on the validation shard given to create (the same
 * rt_gbdt_shard object, its rows unchanged) reads those scores
 * (LGBM_BoosterGetPredict): the sum of the trees in the same order as
 * predicting from scratch, so the same bits (the test checks it), at the
 * cost of one pass over the rows instead of one per tree. Other rows, and
 * boosting types whose scores are not that plain sum (random forests'
 * average, DART's rescaled trees, linear trees), are predicted with
 * LGBM_BoosterPredictForMat.
 *
 * Errors. LightGBM reports errors through LGBM_GetLastError; some of its
 * calls are collective, and a rank that fails inside one would leave the
 * others waiting. So create first checks everything that depends on the
 * input on each rank alone, with LightGBM itself and before the network
 * exists: the parameters (unknown keys against LightGBM's own list, keys
 * rtrain sets, values LightGBM rejects), the objective, and the labels
 * (a throw-away booster over a dataset of the same shape with no stored
 * values, which runs the objective's label checks). The ranks agree on the
 * outcome (rt_comm_agree) before any collective call, so bad input is one
 * clear error on every rank. A collective LightGBM call that fails after
 * that ends the job through rt_comm_abort with LightGBM's message.
 *
 * Resume. A saved model is continued as LightGBM's Python init_model
 * does: its raw predictions on the training and validation shards
 * become their init_score, and it is merged (LGBM_BoosterMerge) into the new
 * booster as its first trees, so N + M rounds give the trees of N + M
 * straight rounds. */
#include <dlfcn.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "rtrain/comm_mpi.h"
#include "gbdt/library.h"

#ifndef RT_LIGHTGBM_DIR
#define RT_LIGHTGBM_DIR "/usr/local/lib/rtrain-lightgbm"
#endif
#define LGBM_SONAME "lib_lightgbm.so"
#define LGBM_GET_IT "get it with `python3 -m pip download lightgbm==4.7.0 --no-deps` and " \
    "`unzip -j lightgbm-4.7.0-*.whl lightgbm/lib/lib_lightgbm.so lightgbm/VERSION.txt " \
    "-d DIR`, then set " \
    "gbdt.lightgbm_library = \"DIR/" LGBM_SONAME "\" (or RTRAIN_LIGHTGBM_LIBRARY); " \
    "scripts/install-deps.sh unpacks it into " RT_LIGHTGBM_DIR

/* ---- LightGBM's C API: rtrain's declarations ------------------------------------- */

typedef void *lgbm_handle;   /* DatasetHandle, BoosterHandle */
typedef int32_t lgbm_size;   /* comm_size_t: byte counts of the collectives */

enum {
    LGBM_DTYPE_FLOAT32 = 0,
    LGBM_DTYPE_FLOAT64 = 1,
    LGBM_DTYPE_INT32 = 2,
    LGBM_ROW_MAJOR = 1,
    LGBM_PREDICT_NORMAL = 0,
    LGBM_PREDICT_RAW = 1,
};

/* out[0 .. bytes) op= in[0 .. bytes), elements of type_size bytes. */
typedef void (*lgbm_reducer)(const char *in, char *out, int type_size, lgbm_size bytes);
/* The reducer is passed by C++ reference: a pointer to the pointer. */
typedef void (*lgbm_reduce_scatter)(char *in, lgbm_size in_bytes, int type_size,
                                    const lgbm_size *block_start, const lgbm_size *block_len,
                                    int n_block, char *out, lgbm_size out_bytes,
                                    const lgbm_reducer *reducer);
typedef void (*lgbm_allgather)(char *in, lgbm_size in_bytes, const lgbm_size *block_start,
                               const lgbm_size *block_len, int n_block, char *out,
                               lgbm_size out_bytes);

typedef struct lgbm_api {
    const char *(*GetLastError)(void);
    int (*DumpParamAliases)(int64_t buffer_len, int64_t *out_len, char *out);
    int (*RegisterLogCallback)(void (*callback)(const char *));
    int (*NetworkInitWithFunctions)(int num_machines, int rank, void *reduce_scatter,
                                    void *allgather);
    int (*NetworkFree)(void);
    int (*DatasetCreateFromMat)(const void *data, int data_type, int32_t rows, int32_t cols,
                                int row_major, const char *params, lgbm_handle reference,
                                lgbm_handle *out);
    int (*DatasetCreateFromCSR)(const void *indptr, int indptr_type, const int32_t *indices,
                                const void *data, int data_type, int64_t n_indptr,
                                int64_t n_elem, int64_t cols, const char *params,
                                lgbm_handle reference, lgbm_handle *out);
    int (*DatasetSetField)(lgbm_handle dataset, const char *field, const void *data, int n,
                           int type);
    int (*DatasetFree)(lgbm_handle dataset);
    int (*BoosterCreate)(lgbm_handle train, const char *params, lgbm_handle *out);
    int (*BoosterLoadModelFromString)(const char *model, int *out_iterations,
                                      lgbm_handle *out);
    int (*BoosterMerge)(lgbm_handle booster, lgbm_handle other);
    int (*BoosterAddValidData)(lgbm_handle booster, lgbm_handle valid);
    int (*BoosterGetPredict)(lgbm_handle booster, int data_idx, int64_t *out_len,
                             double *out);
    int (*BoosterUpdateOneIter)(lgbm_handle booster, int *is_finished);
    int (*BoosterGetCurrentIteration)(lgbm_handle booster, int *out);
    int (*BoosterGetNumClasses)(lgbm_handle booster, int *out);
    int (*BoosterCalcNumPredict)(lgbm_handle booster, int rows, int predict_type,
                                 int start_iteration, int num_iteration, int64_t *out_len);
    int (*BoosterPredictForMat)(lgbm_handle booster, const void *data, int data_type,
                                int32_t rows, int32_t cols, int row_major, int predict_type,
                                int start_iteration, int num_iteration, const char *params,
                                int64_t *out_len, double *out);
    int (*BoosterSaveModelToString)(lgbm_handle booster, int start_iteration,
                                    int num_iteration, int importance_type, int64_t buffer_len,
                                    int64_t *out_len, char *out);
    int (*BoosterFree)(lgbm_handle booster);
} lgbm_api;

#define LGBM_SYMBOL(name) { "LGBM_" #name, offsetof(lgbm_api, name) }
static const struct { const char *symbol; size_t offset; } lgbm_symbols[] = {
    LGBM_SYMBOL(GetLastError), LGBM_SYMBOL(DumpParamAliases), LGBM_SYMBOL(RegisterLogCallback),
    LGBM_SYMBOL(NetworkInitWithFunctions), LGBM_SYMBOL(NetworkFree),
    LGBM_SYMBOL(DatasetCreateFromMat), LGBM_SYMBOL(DatasetCreateFromCSR),
    LGBM_SYMBOL(DatasetSetField), LGBM_SYMBOL(DatasetFree), LGBM_SYMBOL(BoosterCreate),
    LGBM_SYMBOL(BoosterLoadModelFromString), LGBM_SYMBOL(BoosterMerge),
    LGBM_SYMBOL(BoosterAddValidData), LGBM_SYMBOL(BoosterGetPredict),
    LGBM_SYMBOL(BoosterUpdateOneIter),
    LGBM_SYMBOL(BoosterGetCurrentIteration), LGBM_SYMBOL(BoosterGetNumClasses),
    LGBM_SYMBOL(BoosterCalcNumPredict), LGBM_SYMBOL(BoosterPredictForMat),
    LGBM_SYMBOL(BoosterSaveModelToString), LGBM_SYMBOL(BoosterFree),
};

/* The library, once loaded (never unloaded). */
static struct {
    void *handle;
    char path[4096];
    char version[64];
    lgbm_api api;
} lib;

/* LightGBM's message for the failed call `what`. */
static rt_status lgbm_fail(rt_status code, const char *what)
{
    char text[1024];
    snprintf(text, sizeof text, "%s", lib.api.GetLastError());
    size_t n = strlen(text);
    while (n > 0 && strchr(" .\r\n", text[n - 1]))   /* "... line 375 .\n" */
        text[--n] = '\0';
    return RT_ERROR(code, "LightGBM %s: %s", what, text);
}

#define LGBM_TRY(code, call, what) \
    ((call) == 0 ? RT_OK : lgbm_fail((code), (what)))

/* ---- finding and opening lib_lightgbm.so ------------------------------------------ */

/* The version from VERSION.txt beside the library or one directory up (the
 * wheel's lightgbm/VERSION.txt, lightgbm/lib/lib_lightgbm.so). */
static void read_version(const char *path, char *out, size_t n)
{
    snprintf(out, n, "unknown");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return;
    *slash = '\0';
    const char *forms[] = {"%s/VERSION.txt", "%s/../VERSION.txt"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char file[4200], text[64] = "";
        snprintf(file, sizeof file, forms[i], dir);
        FILE *f = fopen(file, "r");
        if (!f)
            continue;
        int ok = fgets(text, sizeof text, f) != NULL;
        fclose(f);
        text[strcspn(text, " \t\r\n")] = '\0';
        if (ok && text[0]) {
            snprintf(out, n, "%s", text);
            return;
        }
    }
}

/* The installed Python packages' copy, or "" (the first match). */
static void python_package_path(char *out, size_t n)
{
    const char *home = getenv("HOME");
    char user[4096];
    snprintf(user, sizeof user, "%s/.local/lib/python3*/site-packages",
             home ? home : "/nonexistent");
    const char *roots[] = {"/usr/local/lib/python3*/dist-packages",
                           "/usr/local/lib/python3*/site-packages",
                           "/usr/lib/python3*/dist-packages", "/usr/lib/python3*/site-packages",
                           user};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof roots / sizeof roots[0] && !out[0]; i++) {
        char pattern[4300];
        glob_t g;
        snprintf(pattern, sizeof pattern, "%s/lightgbm/lib/" LGBM_SONAME, roots[i]);
        if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0)
            snprintf(out, n, "%s", g.gl_pathv[0]);
        globfree(&g);
    }
}

/* dlopen of path; records why not in why. */
static void *open_path(const char *path, char *why, size_t n)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, n, "%s", e ? e : "dlopen failed");
    }
    return h;
}

/* The handle of the library to use, its path in `path`. An explicit path
 * (argument or environment) that fails is an error of its own; the
 * searched places are tried in order. */
static rt_status find_library(const char *given, void **out, char *path, size_t n)
{
    char why[1024] = "";
    const char *env = getenv("RTRAIN_LIGHTGBM_LIBRARY");
    const char *explicit_path = given && given[0] ? given : env && env[0] ? env : NULL;
    if (explicit_path) {
        snprintf(path, n, "%s", explicit_path);
        if ((*out = open_path(path, why, sizeof why)) != NULL)
            return RT_OK;
        return RT_ERROR(RT_ERR_UNSUPPORTED, "LightGBM's library %s (%s) cannot be loaded: %s; "
                        "%s", path, given && given[0] ? "gbdt.lightgbm_library"
                        : "RTRAIN_LIGHTGBM_LIBRARY", why, LGBM_GET_IT);
    }
    char python[4096];
    python_package_path(python, sizeof python);
    const char *candidates[] = {RT_LIGHTGBM_DIR "/" LGBM_SONAME, python, LGBM_SONAME};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        if (!candidates[i][0])
            continue;
        char err[960];
        snprintf(path, n, "%s", candidates[i]);
        if ((*out = open_path(path, err, sizeof err)) != NULL)
            return RT_OK;
        /* A copy that is there but does not load (libgomp missing) says
         * more than "not found". */
        if (strchr(candidates[i], '/') && access(candidates[i], F_OK) == 0)
            snprintf(why, sizeof why, " (%s)", err);
    }
    return RT_ERROR(RT_ERR_UNSUPPORTED, "LightGBM's library %s was not found%s (looked in %s, "
                    "the lightgbm Python package's lib/ and the library path); %s",
                    LGBM_SONAME, why, RT_LIGHTGBM_DIR, LGBM_GET_IT);
}

/* Loads the library once per process (it is never unloaded); a later open
 * that names another file is refused. */
static rt_status lgbm_open(const char *path, char *version, size_t version_len)
{
    const char *env = getenv("RTRAIN_LIGHTGBM_LIBRARY");
    const char *wanted = path && path[0] ? path : env && env[0] ? env : NULL;
    if (lib.handle && wanted && strcmp(wanted, lib.path) != 0)
        return RT_ERROR(RT_ERR_UNSUPPORTED, "LightGBM is already loaded from %s in this "
                        "process; it cannot also be loaded from %s", lib.path, wanted);
    if (!lib.handle) {
        void *h = NULL;
        char found[4096];
        RT_CHECK(find_library(path, &h, found, sizeof found));
        lgbm_api api;
        for (size_t i = 0; i < sizeof lgbm_symbols / sizeof lgbm_symbols[0]; i++) {
            void *f = dlsym(h, lgbm_symbols[i].symbol);
            if (!f) {
                dlclose(h);
                return RT_ERROR(RT_ERR_UNSUPPORTED, "%s has no %s: it is not LightGBM 4 "
                                "(rtrain is tested with 4.7.0); %s", found,
                                lgbm_symbols[i].symbol, LGBM_GET_IT);
            }
            memcpy((char *)&api + lgbm_symbols[i].offset, &f, sizeof f);
        }
        lib.api = api;
        lib.handle = h;
        snprintf(lib.path, sizeof lib.path, "%s", found);
        read_version(found, lib.version, sizeof lib.version);
        rt_debug("LightGBM %s loaded from %s", lib.version, lib.path);
    }
    if (version && version_len)
        snprintf(version, version_len, "%s", lib.version);
    return RT_OK;
}

/* ---- objectives -------------------------------------------------------------------- */

/* LightGBM's objective names and aliases (its parameter documentation)
 * and what they predict. Ranking (lambdarank, rank_xendcg) and
 * cross-entropy on probabilities are left to the library (UNKNOWN). */
static const struct { const char *name; rt_gbdt_task task; } objective_tasks[] = {
    {"regression", RT_GBDT_TASK_REGRESSION}, {"regression_l2", RT_GBDT_TASK_REGRESSION},
    {"l2", RT_GBDT_TASK_REGRESSION}, {"mean_squared_error", RT_GBDT_TASK_REGRESSION},
    {"mse", RT_GBDT_TASK_REGRESSION}, {"l2_root", RT_GBDT_TASK_REGRESSION},
    {"root_mean_squared_error", RT_GBDT_TASK_REGRESSION}, {"rmse", RT_GBDT_TASK_REGRESSION},
    {"regression_l1", RT_GBDT_TASK_REGRESSION}, {"l1", RT_GBDT_TASK_REGRESSION},
    {"mean_absolute_error", RT_GBDT_TASK_REGRESSION}, {"mae", RT_GBDT_TASK_REGRESSION},
    {"huber", RT_GBDT_TASK_REGRESSION}, {"fair", RT_GBDT_TASK_REGRESSION},
    {"poisson", RT_GBDT_TASK_REGRESSION}, {"quantile", RT_GBDT_TASK_REGRESSION},
    {"mape", RT_GBDT_TASK_REGRESSION},
    {"mean_absolute_percentage_error", RT_GBDT_TASK_REGRESSION},
    {"gamma", RT_GBDT_TASK_REGRESSION}, {"tweedie", RT_GBDT_TASK_REGRESSION},
    {"binary", RT_GBDT_TASK_BINARY},
    {"multiclass", RT_GBDT_TASK_MULTICLASS}, {"softmax", RT_GBDT_TASK_MULTICLASS},
    {"multiclassova", RT_GBDT_TASK_MULTICLASS}, {"multiclass_ova", RT_GBDT_TASK_MULTICLASS},
    {"ova", RT_GBDT_TASK_MULTICLASS}, {"ovr", RT_GBDT_TASK_MULTICLASS},
};

static rt_gbdt_task lgbm_task(const char *objective)
{
    for (size_t i = 0; objective && i < sizeof objective_tasks / sizeof objective_tasks[0]; i++)
        if (!strcmp(objective, objective_tasks[i].name))
            return objective_tasks[i].task;
    return RT_GBDT_TASK_UNKNOWN;
}

/* ---- LightGBM's log ---------------------------------------------------------------- */

/* LightGBM writes a line in pieces ("[LightGBM] [Info] ", the text, "\n")
 * to the callback of the thread that registered it: the pieces are joined
 * here. Warnings are rtrain warnings on rank 0 (every rank grows the same
 * trees, so they would repeat), everything else is debug output; errors
 * come back through LGBM_GetLastError. Quiet while create checks the
 * input on a throw-away booster. */
static _Thread_local char log_line[1024];
static _Thread_local size_t log_len;
static _Thread_local int log_quiet;

static void log_flush(void)
{
    log_line[log_len] = '\0';
    log_len = 0;
    if (log_quiet)
        return;
    const char *text = log_line;
    if (!strncmp(text, "[LightGBM] ", 11))
        text += 11;
    if (!strncmp(text, "[Warning] ", 10) && rt_log_rank() <= 0)
        rt_warn("LightGBM: %s", text + 10);
    else if (strncmp(text, "[Fatal] ", 8) != 0)
        rt_debug("LightGBM: %s", text);
}

static void log_callback(const char *piece)
{
    for (; *piece; piece++) {
        if (*piece == '\n')
            log_flush();
        else if (log_len + 1 < sizeof log_line)
            log_line[log_len++] = *piece;
    }
}

/* ---- the network --------------------------------------------------------------------- */

/* One LightGBM network per process (see the file comment). */
#define NET_TYPES 8
static struct {
    rt_comm *comm;             /* NULL: no network */
    MPI_Comm mpi;              /* a duplicate of rt_comm_mpi(comm) */
    MPI_Op op;                 /* calls `reducer` */
    lgbm_reducer reducer;      /* of the reduce-scatter in progress */
    int *counts, *displs;      /* [size] */
    char *scratch;             /* packed input of a reduce-scatter */
    size_t scratch_len;
    struct { int size; MPI_Datatype type; } types[NET_TYPES];   /* contiguous, by size */
} net;

static void net_check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS)
        return;
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, text, &len);
    rt_comm_abort(net.comm, "LightGBM's %s over MPI failed: %s", what, text);
}

static void net_wait(MPI_Request r, const char *what)
{
    rt_comm_req req = rt_comm_mpi_request(r);
    if (rt_comm_wait(net.comm, &req, 1, what) != RT_OK)
        rt_comm_abort(net.comm, "%s", rt_error_message());
}

/* The user op: LightGBM's reducer over `len` elements of the contiguous
 * type (out op= in, as MPI's inout op= in). */
static void net_reduce_op(void *in, void *inout, int *len, MPI_Datatype *type)
{
    int size = 0;
    MPI_Type_size(*type, &size);
    net.reducer(in, inout, size, (lgbm_size)(*len * size));
}

static MPI_Datatype net_type(int size)
{
    for (int i = 0; i < NET_TYPES; i++)
        if (net.types[i].size == size)
            return net.types[i].type;
    int slot = 0;
    while (slot < NET_TYPES - 1 && net.types[slot].size)
        slot++;
    if (net.types[slot].size)   /* full: replace the last */
        MPI_Type_free(&net.types[slot].type);
    net_check(MPI_Type_contiguous(size, MPI_BYTE, &net.types[slot].type), "type creation");
    net_check(MPI_Type_commit(&net.types[slot].type), "type creation");
    net.types[slot].size = size;
    return net.types[slot].type;
}

static char *net_scratch(size_t bytes)
{
    if (bytes > net.scratch_len) {
        char *p = realloc(net.scratch, bytes);
        if (!p)
            rt_comm_abort(net.comm, "out of memory for LightGBM's reduce-scatter (%zu bytes)",
                          bytes);
        net.scratch = p;
        net.scratch_len = bytes;
    }
    return net.scratch;
}

/* LightGBM's reduce-scatter: block i of in (block_start[i], block_len[i]
 * bytes) reduced over the ranks lands in out on rank i. MPI wants the
 * blocks in rank order, back to back, and apart from out: packed into
 * scratch when they are not. */
static void net_reduce_scatter(char *in, lgbm_size in_bytes, int type_size,
                               const lgbm_size *block_start, const lgbm_size *block_len,
                               int n_block, char *out, lgbm_size out_bytes,
                               const lgbm_reducer *reducer)
{
    int size = rt_comm_size(net.comm);
    if (n_block != size || type_size <= 0)
        rt_comm_abort(net.comm, "LightGBM's reduce-scatter has %d blocks of %d-byte elements "
                      "on %d ranks", n_block, type_size, size);
    lgbm_size total = 0;
    int packed = 1;
    for (int i = 0; i < size; i++) {
        if (block_len[i] % type_size)
            rt_comm_abort(net.comm, "LightGBM's reduce-scatter block of %d bytes is not a "
                          "multiple of its %d-byte elements", (int)block_len[i], type_size);
        packed = packed && block_start[i] == total;
        net.counts[i] = block_len[i] / type_size;
        total += block_len[i];
    }
    const char *send = in;
    int overlap = in < out + out_bytes && out < in + in_bytes;
    if (!packed || overlap) {
        char *s = net_scratch((size_t)total);
        for (int i = 0, at = 0; i < size; at += block_len[i], i++)
            memcpy(s + at, in + block_start[i], (size_t)block_len[i]);
        send = s;
    }
    net.reducer = *reducer;
    MPI_Request r;
    net_check(MPI_Ireduce_scatter(send, out, net.counts, net_type(type_size), net.op, net.mpi,
                                  &r), "reduce-scatter");
    net_wait(r, "LightGBM's reduce-scatter");
}

/* LightGBM's all-gather: rank i's block_len[i] bytes (in) land at
 * out + block_start[i] on every rank. In place in out (in may be out). */
static void net_allgather(char *in, lgbm_size in_bytes, const lgbm_size *block_start,
                          const lgbm_size *block_len, int n_block, char *out,
                          lgbm_size out_bytes)
{
    int size = rt_comm_size(net.comm), rank = rt_comm_rank(net.comm);
    if (n_block != size || in_bytes != block_len[rank])
        rt_comm_abort(net.comm, "LightGBM's all-gather has %d blocks on %d ranks", n_block,
                      size);
    for (int i = 0; i < size; i++) {
        net.counts[i] = block_len[i];
        net.displs[i] = block_start[i];
    }
    memmove(out + block_start[rank], in, (size_t)in_bytes);
    MPI_Request r;
    net_check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, net.counts, net.displs,
                              MPI_BYTE, net.mpi, &r), "all-gather");
    net_wait(r, "LightGBM's all-gather");
}

/* Collective over comm: LightGBM's network over a duplicate of comm. */
static rt_status net_open(rt_comm *comm)
{
    int size = rt_comm_size(comm);
    net.comm = comm;   /* from here on net_close tidies up */
    net.counts = calloc((size_t)size, sizeof *net.counts);
    net.displs = calloc((size_t)size, sizeof *net.displs);
    rt_status st = net.counts && net.displs ? RT_OK
        : RT_ERROR(RT_ERR_NOMEM, "LightGBM's network tables for %d ranks", size);
    RT_CHECK(rt_comm_agree(comm, st));
    int rc = MPI_Comm_dup(rt_comm_mpi(comm), &net.mpi);
    if (rc == MPI_SUCCESS)
        rc = MPI_Op_create(net_reduce_op, 1, &net.op);
    st = rc == MPI_SUCCESS ? RT_OK : RT_ERROR(RT_ERR_MPI, "MPI_Comm_dup/MPI_Op_create for "
                                              "LightGBM's network failed (code %d)", rc);
    /* The types LightGBM calls them through. */
    lgbm_reduce_scatter reduce_scatter = net_reduce_scatter;
    lgbm_allgather allgather = net_allgather;
    if (st == RT_OK)
        st = LGBM_TRY(RT_ERR_INTERNAL, lib.api.NetworkInitWithFunctions(
                          size, rt_comm_rank(comm), (void *)reduce_scatter, (void *)allgather),
                      "LGBM_NetworkInitWithFunctions");
    return rt_comm_agree(comm, st);
}

/* Collective over net.comm; nothing when no network is open. */
static void net_close(void)
{
    if (!net.comm)
        return;
    lib.api.NetworkFree();
    for (int i = 0; i < NET_TYPES; i++)
        if (net.types[i].size)
            MPI_Type_free(&net.types[i].type);
    if (net.op != MPI_OP_NULL && net.op != 0)
        MPI_Op_free(&net.op);
    if (net.mpi != MPI_COMM_NULL && net.mpi != 0)
        MPI_Comm_free(&net.mpi);
    free(net.counts);
    free(net.displs);
    free(net.scratch);
    memset(&net, 0, sizeof net);
}

/* ---- parameters ---------------------------------------------------------------------- */

/* Main names of the parameters rtrain sets itself, and where the user
 * sets them instead. */
static const struct { const char *name; const char *instead; } reserved[] = {
    {"objective", "model.objective"}, {"num_class", "model.num_class"},
    {"num_threads", "the run's threads per rank"}, {"seed", "train.seed"},
    {"num_iterations", "model.num_rounds"}, {"num_machines", "the number of MPI ranks"},
    {"machines", "mpirun (rtrain's network is MPI)"},
    {"machine_list_filename", "mpirun (rtrain's network is MPI)"},
    {"local_listen_port", "mpirun (rtrain's network is MPI)"},
    {"time_out", "failure.step_timeout_s"}, {"pre_partition", "nothing (always true)"},
    {"task", "nothing (rtrain trains)"}, {"data", "the data section"},
    {"valid", "the data section"}, {"input_model", "rtrain's checkpoints"},
    {"output_model", "rtrain's checkpoints"},
};

/* LightGBM's parameter names: an object main name -> [aliases]. */
static rt_status param_names(json_t **out)
{
    int64_t len = 0;
    char probe[1];
    if (lib.api.DumpParamAliases(sizeof probe, &len, probe) != 0)
        return lgbm_fail(RT_ERR_INTERNAL, "LGBM_DumpParamAliases");
    char *text = malloc((size_t)len + 1);
    if (!text)
        return RT_ERROR(RT_ERR_NOMEM, "LightGBM's parameter list (%lld bytes)", (long long)len);
    rt_status st = LGBM_TRY(RT_ERR_INTERNAL, lib.api.DumpParamAliases(len + 1, &len, text),
                            "LGBM_DumpParamAliases");
    json_error_t err;
    *out = st == RT_OK ? json_loads(text, 0, &err) : NULL;
    free(text);
    if (st == RT_OK && !json_is_object(*out)) {
        json_decref(*out);
        st = RT_ERROR(RT_ERR_INTERNAL, "LightGBM's parameter list is not a JSON object");
    }
    return st;
}

/* The main name of key (a name or an alias), or NULL when LightGBM has no
 * such parameter; *closest gets the nearest name for a suggestion. */
static const char *main_name(json_t *names, const char *key, const char **closest)
{
    const char *name;
    json_t *aliases;
    int best = INT_MAX;
    *closest = NULL;
    json_object_foreach(names, name, aliases) {
        if (!strcmp(name, key))
            return name;
        size_t i;
        json_t *a;
        json_array_foreach(aliases, i, a)
            if (json_is_string(a) && !strcmp(json_string_value(a), key))
                return name;
        int d = rt_edit_distance(name, key);
        if (d < best) {
            best = d;
            *closest = name;
        }
    }
    return NULL;
}

/* Checks one of model.params; *main_out is its main name. */
static rt_status check_param(json_t *names, const rt_gbdt_param *p, const char **main_out)
{
    const char *closest;
    const char *m = main_name(names, p->key, &closest);
    if (!m)
        return RT_ERROR(RT_ERR_CONFIG, "model.params: LightGBM %s has no parameter \"%s\"%s%s%s",
                        lib.version, p->key, closest ? " (did you mean \"" : "",
                        closest ? closest : "", closest ? "\"?)" : "");
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (!strcmp(m, reserved[i].name))
            return RT_ERROR(RT_ERR_CONFIG, "model.params: \"%s\" is set by rtrain; use %s",
                            p->key, reserved[i].instead);
    if (!p->value[0] || strpbrk(p->value, " \t\r\n"))
        return RT_ERROR(RT_ERR_CONFIG, "model.params.%s = \"%s\": LightGBM parameter values "
                        "cannot be empty or contain white space", p->key, p->value);
    if (!strcmp(m, "tree_learner") && strcmp(p->value, "data") && strcmp(p->value, "voting")
        && strcmp(p->value, "data_parallel") && strcmp(p->value, "voting_parallel"))
        return RT_ERROR(RT_ERR_CONFIG, "model.params.%s = \"%s\": every rank holds a shard of "
                        "the rows, so LightGBM's tree learner must be \"data\" or \"voting\"",
                        p->key, p->value);
    *main_out = m;
    return RT_OK;
}

/* 1 when LightGBM draws random numbers while boosting with this setting
 * (row or feature sampling, DART, GOSS, extra trees): its random state
 * starts anew in a continued booster, so the trees after a resume are not
 * those of an uninterrupted run (the same holds for LightGBM's own
 * init_model). */
static int draws_randomly(const char *name, const char *value)
{
    static const char *fractions[] = {"bagging_fraction", "pos_bagging_fraction",
                                      "neg_bagging_fraction", "feature_fraction",
                                      "feature_fraction_bynode"};
    for (size_t i = 0; i < sizeof fractions / sizeof fractions[0]; i++)
        if (!strcmp(name, fractions[i]))
            return atof(value) < 1.0;
    if (!strcmp(name, "extra_trees"))
        return !strcmp(value, "true") || atoi(value) != 0;
    if (!strcmp(name, "boosting"))
        return strcmp(value, "gbdt") && strcmp(value, "gbrt");
    if (!strcmp(name, "data_sample_strategy"))
        return !strcmp(value, "goss");
    return 0;
}

/* What the parameters imply beyond the string. */
typedef struct param_facts {
    int random;        /* a setting draws random numbers (draws_randomly) */
    int plain_sum;     /* scores are the plain sum of the trees: boosting gbdt, no linear trees */
} param_facts;

/* The parameter string of the datasets and the booster ("key=value ...",
 * malloc'ed): what rtrain sets, its defaults for determinism unless the
 * user chose (deterministic, force_col_wise), then model.params. machines
 * = P for the real network, 1 for the local check. */
static rt_status build_params(const rt_gbdt_setup *s, int machines, char **out,
                              param_facts *facts)
{
    *facts = (param_facts){.plain_sum = 1};
    json_t *names = NULL;
    RT_CHECK(param_names(&names));
    int user_learner = 0, user_determinism = 0;
    const char **mains = calloc((size_t)s->n_params + 1, sizeof *mains);
    rt_status st = mains ? RT_OK : RT_ERROR(RT_ERR_NOMEM, "LightGBM's parameter names");
    for (int i = 0; i < s->n_params && st == RT_OK; i++) {
        const char *m = NULL;
        st = check_param(names, &s->params[i], &m);
        /* LightGBM keeps the first of two settings of a parameter. */
        for (int j = 0; j < i && st == RT_OK; j++)
            if (!strcmp(mains[j], m))
                st = RT_ERROR(RT_ERR_CONFIG, "model.params: \"%s\" and \"%s\" both set "
                              "LightGBM's parameter %s", s->params[j].key, s->params[i].key, m);
        if (st == RT_OK) {
            mains[i] = m;
            user_learner |= !strcmp(m, "tree_learner");
            user_determinism |= !strcmp(m, "deterministic") || !strcmp(m, "force_col_wise")
                || !strcmp(m, "force_row_wise");
            const char *v = s->params[i].value;
            facts->random |= draws_randomly(m, v);
            if ((!strcmp(m, "boosting") && strcmp(v, "gbdt") && strcmp(v, "gbrt"))
                || (!strcmp(m, "linear_tree") && (!strcmp(v, "true") || atoi(v) != 0)))
                facts->plain_sum = 0;
        }
    }
    free(mains);
    json_decref(names);
    RT_CHECK(st);
    if (!s->objective || !s->objective[0] || strpbrk(s->objective, " \t\r\n="))
        return RT_ERROR(RT_ERR_CONFIG, "model.objective = \"%s\" is not a LightGBM objective "
                        "name", s->objective ? s->objective : "");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return RT_ERROR(RT_ERR_NOMEM, "LightGBM's parameter string");
    /* LightGBM's seed is an int: train.seed modulo 2^31. */
    fprintf(f, "objective=%s num_class=%d num_threads=%d seed=%d num_machines=%d "
            "pre_partition=true", s->objective, s->num_class > 1 ? s->num_class : 1,
            s->threads > 0 ? s->threads : 1, (int)(s->seed & 0x7fffffff), machines);
    if (!user_learner)
        fprintf(f, " tree_learner=%s", machines > 1 ? "data" : "serial");
    if (!user_determinism)
        fprintf(f, " deterministic=true force_col_wise=true");
    for (int i = 0; i < s->n_params; i++)
        fprintf(f, " %s=%s", s->params[i].key, s->params[i].value);
    if (fclose(f) != 0 || !text) {
        free(text);
        return RT_ERROR(RT_ERR_NOMEM, "LightGBM's parameter string");
    }
    *out = text;
    return RT_OK;
}

/* ---- the booster ------------------------------------------------------------------------ */

struct rt_gbdt_booster {
    lgbm_handle booster;
    lgbm_handle train, valid;   /* the shards' datasets; valid may be NULL */
    const rt_gbdt_shard *valid_shard;   /* as given to create, for incremental predictions */
    const float *valid_x;
    int64_t valid_rows;
    int outputs;                /* predictions per row */
    char predict_params[64];
};

/* The labels rtrain's metrics of a task assume: binary 0 or 1, multiclass
 * a class index; LightGBM's own checks (after these) cover the rest. */
static rt_status check_label(float y, rt_gbdt_task task, int num_class, const char *name,
                             int64_t row)
{
    if (!isfinite(y))
        return RT_ERROR(RT_ERR_FORMAT, "the label of %s row %lld is %g: labels must be "
                        "finite numbers", name, (long long)row, (double)y);
    if (task == RT_GBDT_TASK_BINARY && y != 0 && y != 1)
        return RT_ERROR(RT_ERR_FORMAT, "the label of %s row %lld is %g: a binary objective "
                        "needs labels 0 or 1", name, (long long)row, (double)y);
    if (task == RT_GBDT_TASK_MULTICLASS && (y != floorf(y) || y < 0 || y >= (float)num_class))
        return RT_ERROR(RT_ERR_FORMAT, "the label of %s row %lld is %g: a multiclass objective "
                        "needs class indices 0 to %d (model.num_class = %d)", name,
                        (long long)row, (double)y, num_class - 1, num_class);
    return RT_OK;
}

/* A shard LightGBM can take, with labels the objective accepts; cols: the
 * training table's features (0 when d is the training shard). */
static rt_status check_shard(const rt_gbdt_setup *s, const rt_gbdt_shard *d, const char *name,
                             int64_t cols)
{
    if (!d || d->rows < 0 || d->rows > INT32_MAX || d->cols <= 0 || d->cols > INT32_MAX
        || (d->rows > 0 && (!d->x || !d->label)))
        return RT_ERROR(RT_ERR_INVALID_ARG, "the %s shard (%lld rows x %lld columns) cannot be "
                        "given to LightGBM (at most 2^31 - 1 rows per rank)", name,
                        d ? (long long)d->rows : -1LL, d ? (long long)d->cols : -1LL);
    if (cols == 0 && d->rows == 0)
        return RT_ERROR(RT_ERR_CONFIG, "this rank's shard of the training table is empty: "
                        "LightGBM needs rows on every rank (%lld rows for %d ranks)",
                        (long long)d->global_rows, rt_comm_size(s->comm));
    if (cols > 0 && d->cols != cols)
        return RT_ERROR(RT_ERR_CONFIG, "the %s table has %lld features, the training table "
                        "%lld", name, (long long)d->cols, (long long)cols);
    rt_gbdt_task task = lgbm_task(s->objective);
    if (task == RT_GBDT_TASK_MULTICLASS && s->num_class < 2)
        return RT_ERROR(RT_ERR_CONFIG, "model.objective = \"%s\" needs model.num_class of 2 or "
                        "more (it is %d)", s->objective, s->num_class);
    for (int64_t i = 0; i < d->rows; i++)
        RT_CHECK(check_label(d->label[i], task, s->num_class, name, d->first_row + i));
    return RT_OK;
}

/* Local: the objective's checks of the parameters and of this rank's
 * labels, on a booster over a dataset of the shard's shape that stores
 * no values (a CSR matrix without entries), with no network. */
static rt_status check_locally(const rt_gbdt_setup *s, const char *params)
{
    const rt_gbdt_shard *t = s->train;
    int32_t *indptr = calloc((size_t)t->rows + 1, sizeof *indptr);
    if (!indptr)
        return RT_ERROR(RT_ERR_NOMEM, "LightGBM's label check (%lld rows)", (long long)t->rows);
    int32_t index = 0;
    float value = 0;
    lgbm_handle d = NULL, b = NULL;
    log_quiet = 1;
    rt_status st = LGBM_TRY(RT_ERR_CONFIG, lib.api.DatasetCreateFromCSR(
                                indptr, LGBM_DTYPE_INT32, &index, &value, LGBM_DTYPE_FLOAT32,
                                t->rows + 1, 0, t->cols, params, NULL, &d),
                            "rejected the parameters (model.objective, "
                            "model.num_class, model.params)");
    if (st == RT_OK)
        st = LGBM_TRY(RT_ERR_CONFIG, lib.api.DatasetSetField(d, "label", t->label,
                                                             (int)t->rows, LGBM_DTYPE_FLOAT32),
                      "rejected the labels");
    if (st == RT_OK)
        st = LGBM_TRY(RT_ERR_CONFIG, lib.api.BoosterCreate(d, params, &b),
                      "rejected the objective, parameters or labels");
    log_quiet = 0;
    if (b)
        lib.api.BoosterFree(b);
    if (d)
        lib.api.DatasetFree(d);
    free(indptr);
    return st;
}

/* Local: the raw predictions of model on d as LightGBM's init_score
 * ([outputs][rows], class-major), malloc'ed in *out. */
static rt_status init_score(lgbm_handle model, const rt_gbdt_shard *d, int outputs,
                            const char *predict_params, double **out)
{
    size_t n = (size_t)d->rows * (size_t)outputs;
    double *raw = malloc((n ? n : 1) * sizeof *raw), *score = malloc((n ? n : 1) * sizeof *score);
    rt_status st = raw && score ? RT_OK
        : RT_ERROR(RT_ERR_NOMEM, "the init scores of %lld rows", (long long)d->rows);
    int64_t len = 0;
    if (st == RT_OK && d->rows > 0)
        st = LGBM_TRY(RT_ERR_FORMAT, lib.api.BoosterPredictForMat(
                          model, d->x, LGBM_DTYPE_FLOAT32, (int32_t)d->rows, (int32_t)d->cols,
                          LGBM_ROW_MAJOR, LGBM_PREDICT_RAW, 0, -1, predict_params, &len, raw),
                      "could not predict with the model continued from");
    if (st == RT_OK && d->rows > 0 && (size_t)len != n)
        st = RT_ERROR(RT_ERR_FORMAT, "the model continued from gives %lld outputs for %lld "
                      "rows, expected %d per row", (long long)len, (long long)d->rows, outputs);
    for (size_t i = 0; st == RT_OK && i < (size_t)d->rows; i++)
        for (int j = 0; j < outputs; j++)
            score[(size_t)j * (size_t)d->rows + i] = raw[i * (size_t)outputs + (size_t)j];
    free(raw);
    if (st != RT_OK) {
        free(score);
        return st;
    }
    *out = score;
    return RT_OK;
}

/* Local: the saved model to continue from, and the init scores of the
 * shards (valid_score stays NULL without validation rows). */
static rt_status load_model(const rt_gbdt_setup *s, const rt_gbdt_booster *b,
                            lgbm_handle *model, double **train_score, double **valid_score)
{
    char *text = malloc(s->model_len + 1);
    if (!text)
        return RT_ERROR(RT_ERR_NOMEM, "the model continued from (%zu bytes)", s->model_len);
    memcpy(text, s->model, s->model_len);
    text[s->model_len] = '\0';
    int iterations = 0, classes = 0;
    rt_status st = LGBM_TRY(RT_ERR_FORMAT, lib.api.BoosterLoadModelFromString(
                                text, &iterations, model), "could not load the model "
                            "continued from");
    free(text);
    RT_CHECK(st);
    st = LGBM_TRY(RT_ERR_FORMAT, lib.api.BoosterGetNumClasses(*model, &classes),
                  "could not read the model's classes");
    if (st == RT_OK && classes != (s->num_class > 1 ? s->num_class : 1))
        st = RT_ERROR(RT_ERR_CONFIG, "the model continued from has %d classes, "
                      "model.num_class is %d", classes, s->num_class);
    if (st == RT_OK)
        st = init_score(*model, s->train, b->outputs, b->predict_params, train_score);
    if (st == RT_OK && s->valid && s->valid->rows > 0)
        st = init_score(*model, s->valid, b->outputs, b->predict_params, valid_score);
    return st;
}

/* Local: a dataset's label and init_score fields. */
static rt_status set_fields(lgbm_handle d, const rt_gbdt_shard *shard, const double *score,
                            int outputs)
{
    RT_CHECK(LGBM_TRY(RT_ERR_CONFIG, lib.api.DatasetSetField(d, "label", shard->label,
                                                             (int)shard->rows,
                                                             LGBM_DTYPE_FLOAT32),
                      "LGBM_DatasetSetField(label)"));
    if (score)
        RT_CHECK(LGBM_TRY(RT_ERR_CONFIG, lib.api.DatasetSetField(
                              d, "init_score", score, (int)(shard->rows * outputs),
                              LGBM_DTYPE_FLOAT64), "LGBM_DatasetSetField(init_score)"));
    return RT_OK;
}

/* A collective LightGBM call that failed on this rank leaves the others
 * inside it: the job ends (the input was checked before). */
static void collective_ok(rt_comm *comm, int rc, const char *what)
{
    if (rc != 0) {
        lgbm_fail(RT_ERR_INTERNAL, what);
        rt_comm_abort(comm, "%s", rt_error_message());
    }
}

/* Local: the validation dataset (the training set's bins), added to the
 * booster; predict reads its scores when plain_sum. */
static rt_status add_valid(rt_gbdt_booster *b, const rt_gbdt_shard *v, const double *score,
                           const char *params, int plain_sum)
{
    RT_CHECK(LGBM_TRY(RT_ERR_CONFIG, lib.api.DatasetCreateFromMat(
                          v->x, LGBM_DTYPE_FLOAT32, (int32_t)v->rows, (int32_t)v->cols,
                          LGBM_ROW_MAJOR, params, b->train, &b->valid),
                      "LGBM_DatasetCreateFromMat (validation set)"));
    RT_CHECK(set_fields(b->valid, v, score, b->outputs));
    RT_CHECK(LGBM_TRY(RT_ERR_INTERNAL, lib.api.BoosterAddValidData(b->booster, b->valid),
                      "LGBM_BoosterAddValidData"));
    if (plain_sum) {
        b->valid_shard = v;
        b->valid_x = v->x;
        b->valid_rows = v->rows;
    }
    return RT_OK;
}

static void lgbm_free(rt_gbdt_booster *b);

static rt_status lgbm_create(rt_gbdt_booster **out, const rt_gbdt_setup *s)
{
    *out = NULL;
    rt_comm *comm = s->comm;
    int size = rt_comm_size(comm);
    rt_gbdt_booster *b = calloc(1, sizeof *b);
    char *params = NULL, *local_params = NULL;
    lgbm_handle model = NULL;
    double *train_score = NULL, *valid_score = NULL;
    param_facts facts = {0}, local_facts;
    int network = 0;

    /* 1. Everything that depends on this rank's input, checked locally. */
    rt_status st = b ? RT_OK : RT_ERROR(RT_ERR_NOMEM, "a LightGBM booster");
    if (st == RT_OK && !lib.handle)
        st = RT_ERROR(RT_ERR_INVALID_ARG, "LightGBM's library is not open (call open first)");
    if (st == RT_OK && strcmp(rt_comm_kind(comm), "mpi") != 0)
        st = RT_ERROR(RT_ERR_UNSUPPORTED, "LightGBM runs over an MPI communicator, not %s",
                      rt_comm_kind(comm));
    if (st == RT_OK && net.comm)
        st = RT_ERROR(RT_ERR_UNSUPPORTED, "a LightGBM booster is already training in this "
                      "process: LightGBM's network is one per process");
    if (st == RT_OK)
        st = check_shard(s, s->train, "training", 0);
    if (st == RT_OK && s->valid)
        st = check_shard(s, s->valid, "validation", s->train->cols);
    if (st == RT_OK) {
        b->outputs = s->num_class > 1 ? s->num_class : 1;
        snprintf(b->predict_params, sizeof b->predict_params, "num_threads=%d",
                 s->threads > 0 ? s->threads : 1);
        lib.api.RegisterLogCallback(log_callback);
        st = build_params(s, size, &params, &facts);
    }
    if (st == RT_OK)
        st = build_params(s, 1, &local_params, &local_facts);
    if (st == RT_OK)
        st = check_locally(s, local_params);
    if (st == RT_OK && s->model)
        st = load_model(s, b, &model, &train_score, &valid_score);
    free(local_params);
    st = rt_comm_agree(comm, st);
    if (st == RT_OK && s->model && facts.random && rt_comm_rank(comm) == 0)
        rt_warn("LightGBM: continuing from a saved model with row or feature sampling, DART, "
                "GOSS or extra trees: LightGBM's random state starts anew, so the trees from "
                "here differ from those of an uninterrupted run");

    /* 2. The network; the training dataset, whose bins the ranks build
     *    together; its local fields; the booster; the validation dataset
     *    (local: the training set's bins). */
    if (st == RT_OK) {
        st = net_open(comm);
        network = 1;
    }
    if (st == RT_OK) {
        const rt_gbdt_shard *t = s->train;
        collective_ok(comm, lib.api.DatasetCreateFromMat(t->x, LGBM_DTYPE_FLOAT32,
                                                         (int32_t)t->rows, (int32_t)t->cols,
                                                         LGBM_ROW_MAJOR, params, NULL,
                                                         &b->train),
                      "LGBM_DatasetCreateFromMat (training set)");
        st = set_fields(b->train, t, train_score, b->outputs);
        st = rt_comm_agree(comm, st);
    }
    if (st == RT_OK) {
        collective_ok(comm, lib.api.BoosterCreate(b->train, params, &b->booster),
                      "LGBM_BoosterCreate");
        if (model)
            st = LGBM_TRY(RT_ERR_INTERNAL, lib.api.BoosterMerge(b->booster, model),
                          "LGBM_BoosterMerge");
        if (st == RT_OK && s->valid && s->valid->rows > 0)
            st = add_valid(b, s->valid, valid_score, params, facts.plain_sum);
        st = rt_comm_agree(comm, st);
    }

    if (model)
        lib.api.BoosterFree(model);
    free(train_score);
    free(valid_score);
    free(params);
    if (st != RT_OK) {
        if (network)
            lgbm_free(b);   /* collective, as create is */
        else
            free(b);
        return st;
    }
    *out = b;
    return RT_OK;
}

static rt_status lgbm_update(rt_gbdt_booster *b)
{
    int finished = 0;
    collective_ok(net.comm, lib.api.BoosterUpdateOneIter(b->booster, &finished),
                  "LGBM_BoosterUpdateOneIter");
    return RT_OK;
}

static int64_t lgbm_rounds(const rt_gbdt_booster *b)
{
    int it = 0;
    if (lib.api.BoosterGetCurrentIteration(b->booster, &it) != 0)
        return -1;
    return it;
}

static rt_status lgbm_predict(rt_gbdt_booster *b, const rt_gbdt_shard *rows, float *out)
{
    if (rows->rows == 0)
        return RT_OK;
    if (rows->rows > INT32_MAX || rows->cols > INT32_MAX)
        return RT_ERROR(RT_ERR_INVALID_ARG, "LightGBM predicts at most 2^31 - 1 rows at once");
    int64_t n = 0;
    RT_CHECK(LGBM_TRY(RT_ERR_INTERNAL, lib.api.BoosterCalcNumPredict(
                          b->booster, (int)rows->rows, LGBM_PREDICT_NORMAL, 0, -1, &n),
                      "LGBM_BoosterCalcNumPredict"));
    if (n != rows->rows * b->outputs)
        return RT_ERROR(RT_ERR_INTERNAL, "LightGBM gives %lld predictions for %lld rows, "
                        "expected %d per row", (long long)n, (long long)rows->rows, b->outputs);
    double *p = malloc((size_t)n * sizeof *p);
    if (!p)
        return RT_ERROR(RT_ERR_NOMEM, "LightGBM's predictions (%lld values)", (long long)n);
    rt_status st;
    if (rows == b->valid_shard && rows->x == b->valid_x && rows->rows == b->valid_rows) {
        /* The validation set's scores, [outputs][rows] (class-major). */
        int64_t len = 0;
        st = LGBM_TRY(RT_ERR_INTERNAL, lib.api.BoosterGetPredict(b->booster, 1, &len, p),
                      "LGBM_BoosterGetPredict");
        if (st == RT_OK && len != n)
            st = RT_ERROR(RT_ERR_INTERNAL, "LightGBM gives %lld validation scores, expected "
                          "%lld", (long long)len, (long long)n);
        for (int64_t i = 0; st == RT_OK && i < rows->rows; i++)
            for (int j = 0; j < b->outputs; j++)
                out[i * b->outputs + j] = (float)p[(int64_t)j * rows->rows + i];
    } else {
        st = LGBM_TRY(RT_ERR_INTERNAL, lib.api.BoosterPredictForMat(
                          b->booster, rows->x, LGBM_DTYPE_FLOAT32, (int32_t)rows->rows,
                          (int32_t)rows->cols, LGBM_ROW_MAJOR, LGBM_PREDICT_NORMAL, 0, -1,
                          b->predict_params, &n, p), "LGBM_BoosterPredictForMat");
        for (int64_t i = 0; st == RT_OK && i < n; i++)
            out[i] = (float)p[i];
    }
    free(p);
    return st;
}

static rt_status lgbm_save(rt_gbdt_booster *b, char **bytes, size_t *len)
{
    int64_t n = 0;
    char probe[1];
    /* All iterations (0, -1), split-count importances (0), as LightGBM's
     * Python model_to_string writes them. */
    RT_CHECK(LGBM_TRY(RT_ERR_INTERNAL, lib.api.BoosterSaveModelToString(
                          b->booster, 0, -1, 0, sizeof probe, &n, probe),
                      "LGBM_BoosterSaveModelToString"));
    char *text = malloc((size_t)n);
    if (!text)
        return RT_ERROR(RT_ERR_NOMEM, "the LightGBM model text (%lld bytes)", (long long)n);
    rt_status st = LGBM_TRY(RT_ERR_INTERNAL, lib.api.BoosterSaveModelToString(
                                b->booster, 0, -1, 0, n, &n, text),
                            "LGBM_BoosterSaveModelToString");
    if (st != RT_OK) {
        free(text);
        return st;
    }
    *bytes = text;
    *len = strlen(text);   /* n counts the terminating NUL */
    return RT_OK;
}

static void lgbm_free(rt_gbdt_booster *b)
{
    if (!b)
        return;
    if (b->booster)
        lib.api.BoosterFree(b->booster);
    if (b->valid)
        lib.api.DatasetFree(b->valid);
    if (b->train)
        lib.api.DatasetFree(b->train);
    net_close();
    free(b);
}

const rt_gbdt_library rt_gbdt_lightgbm = {
    .name = "lightgbm",
    .model_format = "lightgbm-text",
    .open = lgbm_open,
    .task = lgbm_task,
    .create = lgbm_create,
    .update = lgbm_update,
    .rounds = lgbm_rounds,
    .predict = lgbm_predict,
    .save = lgbm_save,
    .free = lgbm_free,
};
