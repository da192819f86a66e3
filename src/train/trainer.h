/* The built-in training loop (rt_trainer_run, include/rtrain/train.h):
 * the state its files share (internal to src/train). */
#ifndef RTRAIN_TRAIN_TRAINER_H
#define RTRAIN_TRAIN_TRAINER_H

#include "rtrain/ckpt.h"
#include "rtrain/comm.h"
#include "rtrain/config.h"
#include "rtrain/data.h"
#include "rtrain/nn.h"
#include "rtrain/optim.h"
#include "rtrain/run.h"
#include "rtrain/train.h"

/* Sums over the current epoch (this rank), kept in checkpoints taken in
 * the middle of an epoch so the epoch's report is complete after a resume. */
typedef struct epoch_stats {
    double loss_sum;      /* sum of per-sample training losses */
    double samples;       /* samples trained */
    double train_time;    /* seconds spent training */
    double data_wait;     /* of which waiting for the loader's next batch (not in checkpoints:
                           * a resumed epoch reports the wait since the resume) */
} epoch_stats;

/* Standardisation fitted on the training split (preprocess.c): stats =
 * [nx + ny] means then [nx + ny] standard deviations, inputs first. */
typedef struct trainer_preprocess {
    size_t nx, ny;     /* input values / float target values standardised (0: none) */
    float *stats;
} trainer_preprocess;

/* Evaluation sums of one kind of loss (metrics.c). */
#define TRAINER_MAX_METRICS 16
typedef struct eval_sums {
    rt_loss_metrics kind;
    int outputs;
    size_t count;      /* doubles in v: loss, samples, then per kind */
    double *v;
} eval_sums;

/* run.profile (profile.c): the parts of the training loop it times besides
 * the layers, whose own times the model adds through the training context
 * (rt_nn_ctx.times). Each part is disjoint from the others, so the rows and
 * "other" add up to the loop's wall time. */
typedef enum trainer_part {
    PART_LOSS = 0,     /* rt_model_loss_grad */
    PART_OPTIMIZER,    /* rt_optim_step, or trainer_node_step (gradient sums included) */
    PART_ZERO_GRAD,    /* rt_model_zero_grad */
    PART_DATA,         /* waiting for the loader's next batch */
    PART_GRAD_WAIT,    /* rt_ddp_finish: the gradient all-reduces still running */
    PART_AGREE,        /* the step's agreement (one all-reduce) */
    PART_EPOCH_SYNC,   /* the epoch's sums and buffers across ranks */
    PART_EVAL,         /* evaluation of the test split */
    PART_REPORT,       /* a report without a checkpoint */
    PART_CHECKPOINT,   /* a report with its checkpoint, the one taken on a stop */
    PART_CKPT_COPY,    /* checkpoint.async: waiting for the writer's copy of the weights */
    PART_CKPT_LAST,    /* checkpoint.async: the wait for the last write at the end */
    PART_COUNT
} trainer_part;

typedef struct trainer_profile {
    rt_layer_times *layers;
    double seconds[PART_COUNT];
    int64_t calls[PART_COUNT];
    double start;               /* when the training loop began */
    int64_t first_step, first_epoch;   /* where it began (a resume continues) */
} trainer_profile;

/* The node update (node_update.c): the optimizer step of ranks that all
 * share one node, through node-shared memory instead of a gradient
 * all-reduce (the protocol is described there). */
typedef struct trainer_node trainer_node;

typedef struct trainer {
    rt_session *session;
    const rt_config *cfg;
    const rt_context *ctx;
    rt_comm *comm;
    rt_dataset *train_set, *test_set;
    rt_loader *train_loader, *test_loader;
    rt_model *model;
    rt_optimizer *optim;
    rt_ddp *ddp;
    trainer_node *node;         /* the node update, else NULL (gradients all-reduced) */
    rt_run *run;
    const rt_loss *loss;
    rt_model_spec model_spec;   /* the config's, with num_classes 0 taken from the data */
    trainer_preprocess pre;
    char *preprocessing;        /* pre and the data's encoding as JSON (checkpoints, params.json) */
    eval_sums eval;             /* the evaluation's sums (metrics.c) */
    /* data.features and data.categorical as the pointer lists rt_data_source takes */
    const char *features[RT_MAX_COLUMNS], *categorical[RT_MAX_COLUMNS];
    rt_node_memory node_memory; /* data.cache = "node": shared memory on t->comm */
    float *buffers_before;      /* buffer slab before the step's first forward (backend memory) */
    /* A failure of this rank after the step's agreement (backward, the
     * optimizer step): the other ranks learn it at the next agreement. */
    rt_status pending;
    int threads;                /* compute threads of this rank (rt_session_set_threads) */
    int64_t global_batch;
    int64_t steps_per_epoch;    /* optimizer steps per epoch */
    /* Position: everything a checkpoint must hold to continue exactly. */
    int64_t epoch;              /* epoch in progress (0-based) */
    int64_t next_batch;         /* global batch to continue from in that epoch */
    int64_t step;               /* optimizer steps done */
    /* failure.step_timeout_s < 0: the step times measured so far (this
     * process's first step is not: it warms up), until the timeout is set. */
    double step_s[RT_STEP_TIMEOUT_AUTO_STEPS];
    int steps_timed;            /* -1: not measuring */
    epoch_stats es;
    char config_digest[RT_CKPT_DIGEST_MAX];
    int64_t last_ckpt_step;     /* step of the newest checkpoint written (-1: none) */
    rt_ckpt_async *async;       /* checkpoint.async: the background writer, else NULL */
    int stop_early;             /* the session's report hook ended the training */
    trainer_profile *prof;      /* run.profile, else NULL */
    int check_only;             /* rtrain --check (check.c): no session, no communicator */
} trainer;

/* The setup stages of trainer.c that rt_trainer_check (check.c) runs too,
 * so that a check and a run find the same errors. None is collective: the
 * training loop agrees on each outcome. */
rt_status trainer_pick_loss(trainer *t);
/* t->global_batch from the config and t->ctx->world_size. */
rt_status trainer_resolve_batch(trainer *t);
/* Both splits, checked against each other and the loss. */
rt_status trainer_open_datasets(trainer *t);
/* The options of the training and the evaluation loader. */
void trainer_loader_opts(const trainer *t, rt_loader_opts *train, rt_loader_opts *test);
/* Optimizer steps per epoch (needs the training loader). */
rt_status trainer_plan_epochs(trainer *t);
/* The backend scaling.backend and scaling.use_gpu name ("cpu", "cuda"). */
const char *trainer_backend_name(const rt_config *c);
/* That name (*name), checked against scaling.use_gpu and this build
 * without loading a backend's library. */
rt_status trainer_backend_in_build(const rt_config *c, const char **name);
/* t->model for the loaders' batches and the data's shape and classes, on
 * backend be; plan_only: rt_model_plan (sizes, no memory). */
rt_status trainer_create_model(trainer *t, const rt_backend *be, int plan_only);
/* Collective over comm: the node-shared window for the parameters of
 * `planned` (rt_model_plan, the same model on every rank) and `slots`
 * optimizer state arrays per rank, every rank's block zeroed. may_defer:
 * the linear layers' weight gradients may be deferred (one backward per
 * optimizer step); whether they are is decided here, the same on every
 * rank. may_split: with deferral, the ranks may also split the forward of
 * the wide linear layers (the same value on every rank). local: this
 * rank's outcome so far (agreed first, as rt_comm_shared_alloc). */
rt_status trainer_node_open(trainer_node **out, rt_comm *comm, rt_status local,
                            const rt_model *planned, int slots, int may_defer, int may_split);
/* Once the model lives in the window (rt_model_create_in): with deferred
 * weight gradients, its linear layers hand their dy and x to the node. */
rt_status trainer_node_attach(trainer_node *nd, rt_model *m);
/* 1 when the weight gradients are deferred: the step forms every gradient
 * itself, so the trainer needs no zero_grad. */
int trainer_node_defers(const trainer_node *nd);
/* 1 when the ranks split the forward of the wide linear layers. Then every
 * training forward of every rank, also one that does not run (a failure
 * before it, no samples), sits between _begin and _end: collective.
 * _end(local) returns this rank's outcome of the forward, or RT_OK when
 * it stopped because another rank failed (whose failure the step's next
 * agreement brings). Without the split both do nothing (nd may be NULL). */
int trainer_node_splits_forward(const trainer_node *nd);
void trainer_node_forward_begin(trainer_node *nd);
rt_status trainer_node_forward_end(trainer_node *nd, rt_status local);
/* This rank's slabs in the window, for rt_model_create_in and
 * rt_optim_create_in (state: NULL when there are no slots). */
float *trainer_node_params(trainer_node *nd);
float *trainer_node_grads(trainer_node *nd);
float *trainer_node_state(trainer_node *nd);
/* Collective: one optimizer step of every rank's copy from the sum of
 * every rank's gradients, after each rank's backward. local: this rank's
 * outcome of the step so far (its backward); when any rank failed, nothing
 * is updated and every rank returns the failure. */
rt_status trainer_node_step(trainer_node *nd, rt_optimizer *o, float lr, rt_status local);
void trainer_node_free(trainer_node *nd);

/* Frees everything t holds. */
void trainer_free(trainer *t);

/* check.c: rtrain --check's line describing a split (the gbdt module's
 * check prints its splits with it too). */
void trainer_print_split(FILE *f, const char *what, const rt_dataset *ds);

/* Where the two splits of c's data are (trainer.c): idx files name two
 * files each; hdf5 and csv one file each, or the last data.test_fraction
 * of the training file's rows for evaluation. Columns and policies are
 * the same for both; targets of kind `target`. features and categorical
 * (RT_MAX_COLUMNS pointers each) and node_memory must outlive the
 * sources, which point to them. Not collective. The gbdt trainer opens
 * its tables through it too. */
rt_status trainer_data_sources(const rt_config *c, rt_target_kind target,
                               const char **features, const char **categorical,
                               const rt_node_memory *node_memory, rt_data_source *train,
                               rt_data_source *test);

/* profile.c. Collective: the profile when run.profile asks for one (its
 * clock starts now). */
rt_status trainer_profile_open(trainer *t);
/* Collective: the profile over ranks; rank 0 prints it and writes
 * profile.txt and profile.json in the run directory. */
rt_status trainer_profile_report(trainer *t);
void trainer_profile_free(trainer *t);

/* The start of a timed part: now with a profile, else 0 without reading
 * the clock (a run without a profile pays one branch). */
static inline double trainer_clock(const trainer *t) { return t->prof ? rt_time_now() : 0.0; }

/* Adds `seconds` (one call) to part; nothing without a profile. */
static inline void trainer_count(trainer *t, trainer_part part, double seconds)
{
    if (t->prof) {
        t->prof->seconds[part] += seconds;
        t->prof->calls[part]++;
    }
}

/* Adds the time since start (trainer_clock's) to part. */
static inline void trainer_time(trainer *t, trainer_part part, double start)
{
    if (t->prof)
        trainer_count(t, part, rt_time_now() - start);
}

/* Collective: every rank takes rank 0's buffers (BatchNorm running
 * statistics). Without synchronised BatchNorm each rank's follow its own
 * batches; training does not read them (it normalises with batch
 * statistics), but evaluation and checkpoints do, and a checkpoint is
 * written from identical replicas. PyTorch DDP broadcasts them too. */
rt_status trainer_sync_buffers(trainer *t);

/* preprocess.c. Collective: fits data.standardize(_target) on the training
 * split and applies it to both splits. */
rt_status trainer_fit_standardization(trainer *t);
/* Applies t->pre to both splits (not collective). */
rt_status trainer_apply_standardization(trainer *t);
/* The preprocessing (encoding and standardisation) as JSON text (free()). */
rt_status trainer_preprocessing_json(const trainer *t, char **out);
/* Takes a checkpoint's preprocessing (named `where` in messages): its
 * standardisation replaces the fitted one; its encoding must equal the
 * data's. Not collective (every rank reads the same text). */
rt_status trainer_apply_preprocessing_json(trainer *t, const char *text, const char *where);
void trainer_preprocess_free(trainer *t);

/* metrics.c: evaluation sums of one loss kind and the metrics made of them. */
rt_status eval_sums_init(eval_sums *e, const trainer *t);
void eval_sums_free(eval_sums *e);
void eval_sums_clear(eval_sums *e);
/* Adds one evaluated batch (the model's last forward holds it). */
rt_status eval_sums_add(eval_sums *e, trainer *t, const rt_batch *b);
/* Appends val_* metrics to m (at *count): from reduced sums, or NaN
 * values under the same names when e is NULL (no evaluation this epoch). */
void eval_metrics(const trainer *t, const eval_sums *e, rt_metric *m, int *count);

/* trainer_ckpt.c: the checkpoint.* retention policy (score_attribute
 * points into c). */
rt_ckpt_policy trainer_retention(const rt_config *c);
/* trainer.c: the evaluation loop over t->test_loader in its order, the
 * model in eval mode; e (may be NULL) receives the all-reduced sums. A
 * hook (may be NULL) sees every batch: `batch` on this rank after its
 * forward (b->n > 0; out = the model's output [b->n][outputs] in backend
 * memory), then, once the batch's outcome is agreed, `agreed` on every
 * rank (also with b->n = 0), where collective writes go. Collective. */
typedef struct trainer_eval_hook {
    rt_status (*batch)(void *arg, const rt_batch *b, const float *out);
    rt_status (*agreed)(void *arg, const rt_batch *b);
    void *arg;
} trainer_eval_hook;
rt_status trainer_evaluate(trainer *t, eval_sums *e, const trainer_eval_hook *hook);

/* trainer_ckpt.c: checkpoints and resume (all collective). */
rt_status trainer_resume(trainer *t);
/* The epoch's report and the checkpoint of the current position it names. */
rt_status trainer_report_checkpoint(trainer *t, const rt_metric *metrics, int count);
/* Checkpoint in the middle of an epoch on a stop signal: returns RT_STOPPED. */
rt_status trainer_stop(trainer *t);

/* fault.c: test-only fault injection (see fault.c). */
void trainer_fault_after_step(const trainer *t);
/* RTRAIN_FAULT=stop_at:PHASE (setup, resume): the rank (RTRAIN_FAULT_RANK,
 * default 0) freezes with SIGSTOP there. */
void trainer_fault_stop_at(const trainer *t, const char *phase);
/* The backend to build the model on: be, or a test-only wrapper of it
 * whose kernels fail (RTRAIN_FAULT=kernel_fail:N on this rank). */
const rt_backend *trainer_fault_backend(const trainer *t, const rt_backend *be);

#endif
