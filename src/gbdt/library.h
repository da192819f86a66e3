/* src/gbdt/library.h — one gradient-boosting library behind a table.
 *
 * rtrain does not boost trees itself: it drives LightGBM (lightgbm.c,
 * loaded with dlopen at run time) or XGBoost (xgboost.c, linked when
 * ./configure finds it). The gbdt trainer reads this rank's contiguous
 * shard of the training and validation tables into row-major float
 * matrices (rt_gbdt_shard), then talks to the library only through this
 * table, so it never includes a library header and both libraries get the
 * same reports, metrics, checkpoints and resume.
 *
 * Distribution: every rank of `comm` holds one shard; `create` joins the
 * library's own distributed training over rtrain's communicator (LightGBM:
 * reduce-scatter/all-gather functions over MPI; XGBoost: a rabit tracker on
 * rank 0 whose address is broadcast), so after each `update` every rank
 * holds the same trees.
 *
 * Metrics are not the library's: the trainer computes them from `predict`
 * on each rank's validation rows, as sums all-reduced across ranks (AUC
 * from all ranks' predictions), so they are global on both libraries.
 *
 * Collective: open is local (each rank loads the library; the trainer
 * agrees on the outcome); create, update and free are collective over
 * setup->comm; predict, save and rounds are local. Every entry returns
 * rt_status with a message that names the library, the call and, for a
 * rejected parameter, the key (the library's own message passed through).
 */
#ifndef RTRAIN_SRC_GBDT_LIBRARY_H
#define RTRAIN_SRC_GBDT_LIBRARY_H

#include <stddef.h>
#include <stdint.h>

#include "rtrain/comm.h"
#include "rtrain/core.h"

/* What the objective predicts: decides the metrics and the prediction
 * layout (outputs per row: 1, or num_class for multiclass). */
typedef enum rt_gbdt_task {
    RT_GBDT_TASK_UNKNOWN = 0, /* not known to rtrain: the library decides */
    RT_GBDT_TASK_REGRESSION,  /* prediction = value; metrics rmse, mae */
    RT_GBDT_TASK_BINARY,      /* prediction = P(label 1); logloss, error, auc */
    RT_GBDT_TASK_MULTICLASS,  /* prediction = num_class probabilities; mlogloss, merror */
} rt_gbdt_task;

/* One rank's rows of a table. */
typedef struct rt_gbdt_shard {
    const float *x;      /* [rows][cols] row-major; NaN = missing */
    const float *label;  /* [rows] */
    int64_t rows;
    int64_t cols;
    int64_t first_row;   /* global index of this shard's first row */
    int64_t global_rows; /* rows over all ranks */
} rt_gbdt_shard;

/* model.params, in file order, as strings (numbers printed with %.17g). */
typedef struct rt_gbdt_param {
    const char *key;
    const char *value;
} rt_gbdt_param;

typedef struct rt_gbdt_setup {
    rt_comm *comm;              /* every rank of the run */
    const char *objective;      /* the library's own objective name */
    int num_class;              /* > 1 for multiclass, else 1 */
    int threads;                /* threads per rank */
    uint64_t seed;              /* train.seed */
    const rt_gbdt_param *params;
    int n_params;
    const rt_gbdt_shard *train;
    const rt_gbdt_shard *valid; /* NULL without a validation set */
    const void *model;          /* a saved model to continue from, or NULL */
    size_t model_len;
} rt_gbdt_setup;

typedef struct rt_gbdt_booster rt_gbdt_booster; /* the library's state */

typedef struct rt_gbdt_library {
    const char *name;           /* "lightgbm", "xgboost": model.library */
    const char *model_format;   /* the native file format, e.g. "lightgbm-text", "xgboost-json" */
    /* Local. Loads the library (path: gbdt.lightgbm_library, or NULL to
     * search) and writes its version. Missing library: RT_ERR_UNSUPPORTED with a
     * message saying what to install or set. */
    rt_status (*open)(const char *path, char *version, size_t version_len);
    /* Local, pure: the task of a library objective name. */
    rt_gbdt_task (*task)(const char *objective);
    /* Collective: datasets, booster, the distributed network; continues
     * from setup->model when given (the result must boost exactly the trees
     * an uninterrupted run would). */
    rt_status (*create)(rt_gbdt_booster **out, const rt_gbdt_setup *setup);
    /* Collective: one boosting round. */
    rt_status (*update)(rt_gbdt_booster *b);
    /* Local: rounds in the model (including those continued from). */
    int64_t (*rounds)(const rt_gbdt_booster *b);
    /* Local: transformed predictions (probabilities, values) for the rows
     * of `rows`: out[rows->rows * outputs], outputs = num_class or 1. */
    rt_status (*predict)(rt_gbdt_booster *b, const rt_gbdt_shard *rows, float *out);
    /* Local: the model in the native format; *bytes is malloc'ed. The
     * bytes are identical on every rank after the same rounds. */
    rt_status (*save)(rt_gbdt_booster *b, char **bytes, size_t *len);
    /* Collective: leaves the network, frees everything. NULL is allowed. */
    void (*free)(rt_gbdt_booster *b);
} rt_gbdt_library;

/* The libraries built in; NULL when unknown (or, for xgboost, not built). */
const rt_gbdt_library *rt_gbdt_library_find(const char *name);

extern const rt_gbdt_library rt_gbdt_lightgbm;
#ifdef RTRAIN_HAVE_XGBOOST
extern const rt_gbdt_library rt_gbdt_xgboost;
#endif

#endif
