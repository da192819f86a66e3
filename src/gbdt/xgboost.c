/* src/gbdt/xgboost.c — XGBoost (1.7, linked) behind rt_gbdt_library.
 *
 * Distribution: XGBoost 1.x has no MPI engine; its workers always dial a
 * rabit tracker. Rank 0 runs one (rabit_tracker.c) and broadcasts its
 * address; every rank then joins with XGCommunicatorInit, task id = its
 * rank, so rabit rank r holds rtrain's shard r. From then on XGBoost
 * all-reduces its histograms between the ranks itself, and every rank
 * holds the same trees after each round.
 *
 * XGBoost calls that communicate (DMatrix creation, which agrees on the
 * number of columns; configuration, which agrees on the number of
 * features; each boosting round) are made by every rank in the same order
 * with the same parameters, so an error there (an unknown objective) is
 * the same on every rank and nobody is left waiting. Predictions are made
 * in place from the dense rows (no DMatrix: local).
 *
 * Parameters as Python's xgboost.train sets them: validate_parameters=1,
 * then nthread, seed, objective, num_class and model.params in order; a
 * saved model is loaded between two passes of them (Booster(model_file=)).
 * A parameter XGBoost does not use is only a warning there; here the
 * warning, captured through XGBoost's log callback, is the error. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xgboost/c_api.h>
#include "library.h"
#include "rabit_tracker.h"

#define TRACKER_HOST_MAX 256
/* How long rank 0 waits at the end for the other workers' shutdown. */
#define TRACKER_STOP_S 60.0

struct rt_gbdt_booster {
    BoosterHandle bst;
    DMatrixHandle dtrain;
    rt_rabit_tracker *tracker;   /* rank 0 only */
    int communicator;            /* XGCommunicatorInit succeeded */
    int num_class;               /* outputs per row */
};

/* The last warning XGBoost logged (its log callback takes no argument, so
 * this is process-wide: one booster at a time per process). */
static char last_warning[1024];

static void log_callback(const char *msg)
{
    if (strstr(msg, "WARNING"))
        snprintf(last_warning, sizeof last_warning, "%s", msg);
    rt_debug("xgboost: %s", msg);
}

/* XGBoost's message without its "[time] WARNING: file:line: " prefix and
 * its stack trace, newlines made spaces. */
static const char *clean(const char *msg, char *buf, size_t size)
{
    const char *p = msg, *q;
    if (*p == '[' && (q = strchr(p, ']')) != NULL)
        p = q + 1;
    while (*p == ' ')
        p++;
    if (!strncmp(p, "WARNING: ", 9))
        p += 9;
    q = strstr(p, ": ");   /* "../src/learner.cc:767: " */
    if (q && q > p && isdigit((unsigned char)q[-1]) && !memchr(p, ' ', (size_t)(q - p)))
        p = q + 2;
    while (*p == ' ' || *p == '\n')
        p++;
    snprintf(buf, size, "%s", p);
    char *trace = strstr(buf, "Stack trace:");   /* for XGBoost's developers */
    if (trace)
        *trace = '\0';
    for (char *c = buf; *c; c++)
        if (*c == '\n')
            *c = ' ';
    for (size_t n = strlen(buf); n > 0 && buf[n - 1] == ' '; n--)
        buf[n - 1] = '\0';
    return buf;
}

static rt_status xgb_fail(rt_status code, const char *what)
{
    char buf[1024];
    return RT_ERROR(code, "xgboost: %s: %s", what, clean(XGBGetLastError(), buf, sizeof buf));
}

#define XGB(call, code, what) \
    do { if ((call) != 0) return xgb_fail(code, what); } while (0)

static rt_status xgb_open(const char *path, char *version, size_t version_len)
{
    (void)path;   /* linked, not loaded */
    int major = 0, minor = 0, patch = 0;
    XGBoostVersion(&major, &minor, &patch);
    snprintf(version, version_len, "%d.%d.%d", major, minor, patch);
    XGBRegisterLogCallback(log_callback);
    return RT_OK;
}

static rt_gbdt_task xgb_task(const char *objective)
{
    static const char *const regression[] = {
        "reg:squarederror", "reg:squaredlogerror", "reg:logistic", "reg:pseudohubererror",
        "reg:absoluteerror", "count:poisson", "reg:gamma", "reg:tweedie", NULL};
    for (int i = 0; regression[i]; i++)
        if (!strcmp(objective, regression[i]))
            return RT_GBDT_TASK_REGRESSION;
    if (!strcmp(objective, "binary:logistic"))
        return RT_GBDT_TASK_BINARY;
    if (!strcmp(objective, "multi:softprob"))
        return RT_GBDT_TASK_MULTICLASS;
    /* binary:logitraw, multi:softmax, rank:*, survival:*: outputs rtrain
     * has no metrics for */
    return RT_GBDT_TASK_UNKNOWN;
}

/* ---- joining the workers ------------------------------------------------------- */

/* Where the workers find rank 0's tracker: loopback when every rank is on
 * rank 0's node, else rank 0's host name. */
static rt_status tracker_address(rt_comm *comm, char *host, size_t size)
{
    int one_node = rt_comm_job_ranks_on_node(comm) >= rt_comm_size(comm);
    int local = one_node;
    RT_CHECK(rt_comm_allreduce(comm, &local, 1, RT_DTYPE_INT32, RT_REDUCE_MIN));
    if (local) {
        snprintf(host, size, "127.0.0.1");
        return RT_OK;
    }
    if (gethostname(host, size) != 0)
        return RT_ERROR(RT_ERR_IO, "xgboost: cannot read this host's name for the tracker");
    host[size - 1] = '\0';
    return RT_OK;
}

/* Collective: rank 0 starts the tracker; its host and port are broadcast. */
static rt_status start_tracker(rt_gbdt_booster *b, rt_comm *comm, char *host, int *port)
{
    RT_CHECK(tracker_address(comm, host, TRACKER_HOST_MAX));
    rt_status st = RT_OK;
    if (rt_comm_rank(comm) == 0) {
        int loop = !strcmp(host, "127.0.0.1");
        st = rt_rabit_tracker_start(&b->tracker, loop ? host : NULL, rt_comm_size(comm), port);
    }
    RT_CHECK(rt_comm_agree(comm, st));
    RT_CHECK(rt_comm_broadcast(comm, host, TRACKER_HOST_MAX, RT_DTYPE_BYTE, 0));
    return rt_comm_broadcast(comm, port, 1, RT_DTYPE_INT32, 0);
}

/* Collective: every rank's XGBoost joins through the tracker. */
static rt_status join_workers(rt_gbdt_booster *b, rt_comm *comm)
{
    char host[TRACKER_HOST_MAX], config[TRACKER_HOST_MAX + 160];
    int port = 0;
    RT_CHECK(start_tracker(b, comm, host, &port));
    snprintf(config, sizeof config,
             "{\"xgboost_communicator\": \"rabit\", \"DMLC_TRACKER_URI\": \"%s\", "
             "\"DMLC_TRACKER_PORT\": %d, \"DMLC_TASK_ID\": \"%d\"}",
             host, port, rt_comm_rank(comm));
    rt_status st = XGCommunicatorInit(config) == 0
                       ? RT_OK : xgb_fail(RT_ERR_IO, "joining the workers (XGCommunicatorInit)");
    b->communicator = st == RT_OK;
    RT_CHECK(rt_comm_agree(comm, st));
    return RT_OK;
}

/* ---- the booster ------------------------------------------------------------------ */

static rt_status make_dmatrix(const rt_gbdt_shard *s, DMatrixHandle *out)
{
    XGB(XGDMatrixCreateFromMat(s->x, (bst_ulong)s->rows, (bst_ulong)s->cols, NAN, out),
        RT_ERR_FORMAT, "building the training matrix");
    XGB(XGDMatrixSetFloatInfo(*out, "label", s->label, (bst_ulong)s->rows), RT_ERR_FORMAT,
        "setting the labels");
    return RT_OK;
}

static rt_status set_param(rt_gbdt_booster *b, const char *key, const char *value,
                           const char *where)
{
    char what[256];
    snprintf(what, sizeof what, "%s = \"%s\" is rejected", where, value);
    XGB(XGBoosterSetParam(b->bst, key, value), RT_ERR_CONFIG, what);
    return RT_OK;
}

static rt_status set_params(rt_gbdt_booster *b, const rt_gbdt_setup *s)
{
    char num[32], where[160];
    RT_CHECK(set_param(b, "validate_parameters", "1", "validate_parameters"));
    snprintf(num, sizeof num, "%d", s->threads);
    RT_CHECK(set_param(b, "nthread", num, "scaling.threads_per_worker"));
    snprintf(num, sizeof num, "%llu", (unsigned long long)s->seed);
    RT_CHECK(set_param(b, "seed", num, "train.seed"));
    RT_CHECK(set_param(b, "objective", s->objective, "model.objective"));
    if (s->num_class > 1) {
        snprintf(num, sizeof num, "%d", s->num_class);
        RT_CHECK(set_param(b, "num_class", num, "model.num_class"));
    }
    for (int i = 0; i < s->n_params; i++) {
        snprintf(where, sizeof where, "model.params.%s", s->params[i].key);
        RT_CHECK(set_param(b, s->params[i].key, s->params[i].value, where));
    }
    return RT_OK;
}

/* Configures the learner now (collective in XGBoost: the ranks agree on
 * the number of features), so that a bad objective or parameter is
 * reported before the first round. */
static rt_status configure(rt_gbdt_booster *b, const rt_gbdt_setup *s)
{
    bst_ulong len = 0;
    const char *json = NULL;
    last_warning[0] = '\0';
    char what[256];
    snprintf(what, sizeof what, "model.objective = \"%s\" with model.params is rejected",
             s->objective);
    XGB(XGBoosterSaveJsonConfig(b->bst, &len, &json), RT_ERR_CONFIG, what);
    if (strstr(last_warning, "not used")) {
        char buf[1024];
        return RT_ERROR(RT_ERR_CONFIG, "xgboost: model.params has a parameter it does not "
                        "know (%s): remove it or check its spelling",
                        clean(last_warning, buf, sizeof buf));
    }
    return RT_OK;
}

static rt_status build(rt_gbdt_booster *b, const rt_gbdt_setup *s)
{
    RT_CHECK(make_dmatrix(s->train, &b->dtrain));
    XGB(XGBoosterCreate(&b->dtrain, 1, &b->bst), RT_ERR_INTERNAL, "creating the booster");
    RT_CHECK(set_params(b, s));
    if (s->model) {
        XGB(XGBoosterLoadModelFromBuffer(b->bst, s->model, (bst_ulong)s->model_len),
            RT_ERR_FORMAT, "loading the checkpoint's model");
        RT_CHECK(set_params(b, s));
    }
    return configure(b, s);
}

static void xgb_free(rt_gbdt_booster *b);

static rt_status xgb_create(rt_gbdt_booster **out, const rt_gbdt_setup *s)
{
    *out = NULL;
    rt_gbdt_booster *b = NULL;
    RT_CHECK(rt_comm_agree(s->comm, rt_alloc(&b, 1, sizeof *b, "xgboost booster")));
    b->num_class = s->num_class > 1 ? s->num_class : 1;
    rt_status st = join_workers(b, s->comm);
    if (st == RT_OK)
        st = rt_comm_agree(s->comm, build(b, s));
    if (st != RT_OK) {
        xgb_free(b);
        return st;
    }
    *out = b;
    return RT_OK;
}

static rt_status xgb_update(rt_gbdt_booster *b)
{
    int rounds = 0;
    XGB(XGBoosterBoostedRounds(b->bst, &rounds), RT_ERR_INTERNAL, "counting rounds");
    XGB(XGBoosterUpdateOneIter(b->bst, rounds, b->dtrain), RT_ERR_CONFIG, "boosting a round");
    return RT_OK;
}

static int64_t xgb_rounds(const rt_gbdt_booster *b)
{
    int rounds = 0;
    return XGBoosterBoostedRounds(b->bst, &rounds) == 0 ? rounds : -1;
}

/* In-place prediction from the dense rows (array interface, no DMatrix). */
static rt_status xgb_predict(rt_gbdt_booster *b, const rt_gbdt_shard *rows, float *out)
{
    char array[256];
    snprintf(array, sizeof array,
             "{\"data\": [%llu, true], \"shape\": [%lld, %lld], \"typestr\": \"<f4\", "
             "\"version\": 3}", (unsigned long long)(uintptr_t)rows->x, (long long)rows->rows,
             (long long)rows->cols);
    static const char config[] = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                                 "\"iteration_end\": 0, \"strict_shape\": false, "
                                 "\"missing\": NaN, \"cache_id\": 0}";
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *res = NULL;
    if (rows->rows == 0)
        return RT_OK;
    XGB(XGBoosterPredictFromDense(b->bst, array, config, NULL, &shape, &dim, &res),
        RT_ERR_FORMAT, "predicting");
    memcpy(out, res, (size_t)rows->rows * (size_t)b->num_class * sizeof(float));
    return RT_OK;
}

static rt_status xgb_save(rt_gbdt_booster *b, char **bytes, size_t *len)
{
    bst_ulong n = 0;
    const char *p = NULL;
    *bytes = NULL;
    *len = 0;
    XGB(XGBoosterSaveModelToBuffer(b->bst, "{\"format\": \"json\"}", &n, &p), RT_ERR_INTERNAL,
        "saving the model");
    *bytes = malloc((size_t)n + 1);
    if (!*bytes)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory for the xgboost model (%llu bytes)",
                        (unsigned long long)n);
    memcpy(*bytes, p, (size_t)n);
    *len = (size_t)n;
    return RT_OK;
}

static void xgb_free(rt_gbdt_booster *b)
{
    if (!b)
        return;
    if (b->bst)
        XGBoosterFree(b->bst);
    if (b->dtrain)
        XGDMatrixFree(b->dtrain);
    if (b->communicator)   /* each worker tells the tracker it is done */
        XGCommunicatorFinalize();
    rt_status st = rt_rabit_tracker_stop(b->tracker, TRACKER_STOP_S);
    if (st != RT_OK)
        rt_warn("%s", rt_error_message());
    rt_free(b);
}

const rt_gbdt_library rt_gbdt_xgboost = {
    .name = "xgboost",
    .model_format = "xgboost-json",
    .open = xgb_open,
    .task = xgb_task,
    .create = xgb_create,
    .update = xgb_update,
    .rounds = xgb_rounds,
    .predict = xgb_predict,
    .save = xgb_save,
    .free = xgb_free,
};
