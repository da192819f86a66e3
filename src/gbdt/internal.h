/* src/gbdt/internal.h — the gbdt trainer's parts (internal):
 * trainer.c (setup, rounds, reports), shard.c (each rank's rows of the
 * tables), metrics.c (global metrics from predictions), checkpoint.c (the
 * model in the run's checkpoints). */
#ifndef RTRAIN_SRC_GBDT_INTERNAL_H
#define RTRAIN_SRC_GBDT_INTERNAL_H

#include "rtrain/ckpt.h"
#include "rtrain/gbdt.h"
#include "rtrain/train.h"
#include "library.h"

#define GBDT_MAX_METRICS 16

/* One rank's rows of a split, owned. */
typedef struct gbdt_rows {
    rt_gbdt_shard shard;     /* views of x and label */
    float *x, *label;
} gbdt_rows;

typedef struct gbdt_trainer {
    rt_session *session;
    const rt_config *cfg;
    rt_comm *comm;
    int rank, world, threads;
    const rt_gbdt_library *lib;
    char version[64];               /* the library's */
    rt_gbdt_task task;
    int num_class;                  /* setup's: > 1 for multiclass, else 1 */
    gbdt_rows train, valid;         /* valid.shard.global_rows 0: no evaluation split */
    rt_gbdt_param params[RT_GBDT_MAX_PARAMS];
    rt_gbdt_booster *booster;
    rt_run *run;
    char config_digest[RT_CKPT_DIGEST_MAX];
    char params_digest[RT_CKPT_DIGEST_MAX];   /* of objective, num_class and model.params */
    int64_t last_ckpt_round;        /* round of the newest checkpoint (-1: none) */
    double train_time;              /* seconds in update since the last report */
    int64_t rounds_since_report;
    int stop_early;                 /* the report hook asked to stop */
    char *resume_model;             /* the checkpoint's model bytes (rt_free), or NULL */
    size_t resume_len;
} gbdt_trainer;

/* trainer.c. Local: model.library found and loaded, the objective's task
 * and the parameters in g (the caller agrees on the outcome). */
rt_status gbdt_open_library(gbdt_trainer *g);

/* shard.c. Local: both splits of the config opened (node_memory: for
 * data.cache = "node", or NULL; check_only: leave the inputs in the file),
 * their features checked against each other. */
rt_status gbdt_open_splits(const gbdt_trainer *g, const rt_node_memory *node_memory,
                           int check_only, rt_dataset **train, rt_dataset **test);
/* shard.c. Collective: this rank's rows [r*N/P, (r+1)*N/P) of the training
 * and evaluation splits, and the labels checked against the task. */
rt_status gbdt_load_shards(gbdt_trainer *g);
void gbdt_rows_free(gbdt_rows *r);

/* metrics.c. Collective: the task's metrics on the whole evaluation split
 * (val_rmse and val_mae; val_logloss, val_error and val_auc; val_mlogloss
 * and val_merror) appended to m at *count; nothing without a split or for
 * a task rtrain does not know. */
rt_status gbdt_eval_metrics(gbdt_trainer *g, rt_metric *m, int *count);
/* Exact ROC AUC of n (score, label) pairs, ties counted half as in
 * sklearn's roc_auc_score; NaN when one class is absent. Sorts in place. */
typedef struct gbdt_scored { float score; float label; } gbdt_scored;
double gbdt_auc(gbdt_scored *v, int64_t n);

/* checkpoint.c (collective). */
rt_status gbdt_digests(gbdt_trainer *g);
/* The report m[count] and the checkpoint of the current model (train: a
 * report with the checkpoint it names; with m NULL a checkpoint without a
 * report, after a stop signal). */
rt_status gbdt_checkpoint(gbdt_trainer *g, const rt_metric *m, int count);
/* The checkpoint to continue from (rt_get_checkpoint's choice): its model
 * bytes in g->resume_model and the run's reports continued after it. */
rt_status gbdt_resume(gbdt_trainer *g);

#endif
