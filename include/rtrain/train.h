/* rtrain train: the built-in training loop (rt_trainer_run: what the
 * rtrain program runs), the thin layer a user's own training loop needs on
 * top of the session, data, nn, comm, ckpt and run modules (Ray Train's
 * prepare_model, prepare_data_loader and get_checkpoint), and models made
 * of the user's own layer types. The built-in loop is written on these
 * same helpers.
 *
 *   Ray Train                         rtrain
 *   ray.train.get_context()           rt_session_context(session)
 *   train.torch.prepare_model(m)      rt_prepare_model(session, model, bucket_bytes, &ddp)
 *   train.torch.prepare_data_loader   rt_prepare_data_loader(session, dataset, ...)
 *   ray.train.get_checkpoint()        rt_get_checkpoint(session, run, dir, size, &found)
 *   ray.train.report(m, checkpoint)   rt_report_checkpoint(session, run, m, n, &state, ...)
 *   ray.train.report(m)               rt_report(run, m, n, NULL)             (run.h)
 *   Checkpoint (model + optimizer)    rt_ckpt_save / rt_ckpt_load            (ckpt.h)
 *
 * See docs/api.md for a whole loop. */
#ifndef RTRAIN_TRAIN_H
#define RTRAIN_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "rtrain/core.h"
#include "rtrain/nn.h"
#include "rtrain/data.h"
#include "rtrain/comm.h"
#include "rtrain/config.h"
#include "rtrain/run.h"
#include "rtrain/ckpt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- user-defined models ------------------------------------------------------ */
/* A layer of the caller's own type: ops is the caller's table (it must stay
 * valid as long as the layer lives; `version` = RT_LAYER_OPS_VERSION and
 * `build`, `forward` and `backward` are required), impl its private state
 * (freed by ops->destroy, or with free() when destroy is NULL), name its
 * state_dict prefix ("fc1"). In build, the layer declares its parameters
 * with rt_builder_param(b, l, "weight", ...), which the model allocates,
 * initialises, bucket-all-reduces (DDP) and checkpoints like those of the
 * built-in layers. A layer that computes only through l->backend sets
 * RT_LAYER_ANY_BACKEND in ops->flags; one that loops over the memory
 * itself does not, and runs only on host-memory backends. Not collective. */
rt_status rt_layer_create_custom(rt_layer **out, const rt_layer_ops *ops, const char *name,
                                 void *impl);

/* A model of n top-level layers (the caller's own, from
 * rt_layer_create_custom, and/or built-in ones from rt_layer_create), run in
 * order on backend be (NULL: the default), for inputs of shape `in` and
 * batches up to max_batch; parameters are initialised from seed (the same
 * values on every rank). The model takes the layers over, also when it
 * fails (it frees them): the caller only frees the array. Names must be
 * unique. A layer without RT_LAYER_ANY_BACKEND on a backend whose memory is
 * not host memory is refused. Not collective. */
rt_status rt_model_create_from_layers(rt_model **out, const rt_backend *be, rt_layer **layers,
                                      int n, rt_shape in, int max_batch, uint64_t seed);

/* ---- prepare_model / prepare_data_loader / get_checkpoint ---------------------- */
/* Collective over the session's communicator: every rank passes its model,
 * built the same way. Broadcasts rank 0's parameters and buffers (so that
 * every rank starts from the same weights whatever its seed) and creates
 * the gradient buckets of at least bucket_bytes (0: 4 MiB, where PyTorch's
 * DDP takes 25); the watchdog's step timeout of the session applies to them. The
 * caller then trains with rt_ddp_begin_backward / rt_model_backward /
 * rt_ddp_finish and frees *out with rt_ddp_free before the model. The
 * outcome is agreed: every rank gets the same status. */
rt_status rt_prepare_model(rt_session *s, rt_model *model, size_t bucket_bytes,
                           rt_ddp **out);

/* Collective in outcome (ends with an agreement): a loader of this rank's
 * part of every global batch of o->global_batch samples of ds, in the
 * global order (the same whatever the number of ranks; shuffled by (seed,
 * epoch) when o->shuffle is set), o->prefetch batches prepared ahead by a
 * thread. o->rank and o->world_size are ignored: they come from the
 * session. global_batch must be at least the world size. The loader does
 * not own ds. */
rt_status rt_prepare_data_loader(rt_session *s, rt_dataset *ds, const rt_loader_opts *o,
                                 rt_loader **out);

/* What rt_get_checkpoint found. */
enum {
    RT_RESUME_NONE = 0,       /* no checkpoint: train from the start */
    RT_RESUME_CONTINUE = 1,   /* the run's own checkpoint: continue the run */
    RT_RESUME_INIT = 2        /* run.resume_from_checkpoint: a new run from its weights */
};

/* Collective: the checkpoint a run should restore from, as the built-in
 * trainer chooses it: cfg->run.resume_from_checkpoint when set
 * (*found = RT_RESUME_INIT), else, when cfg->run.resume is "auto", the
 * newest valid committed checkpoint of the run's directory
 * (*found = RT_RESUME_CONTINUE); *found = RT_RESUME_NONE (dir = "") when
 * there is none. Also removes what a crashed save left behind (call it
 * before the first rt_ckpt_save).
 * When the run starts over (NONE or INIT) in a directory that already
 * holds results: with run.resume = "never" that is a configuration error
 * unless run.overwrite is set, which removes the old checkpoints first;
 * with "auto" (results but no valid checkpoint) a warning. The reports
 * then start over (rt_run_resume_at(run, 0) is done here).
 * With RT_RESUME_CONTINUE the caller restores its state with
 * rt_ckpt_load(..., RT_CKPT_LOAD_ALL, ...) and continues the run's reports
 * with rt_run_resume_at(run, state.training_iteration); with RT_RESUME_INIT
 * it loads RT_CKPT_LOAD_MODEL only. */
rt_status rt_get_checkpoint(rt_session *s, rt_run *run, const rt_config *cfg, char *dir,
                            size_t size, int *found);

/* Collective (ray.train.report(metrics, checkpoint=...)): reports metrics
 * with rt_report naming the checkpoint, then saves state as that
 * checkpoint of the run directory with rt_ckpt_save (the metrics stored
 * with it, retention by policy, NULL: keep all). state->training_iteration
 * is set to the report's iteration, so that a resume continues the
 * reports after it; the caller sets the rest (model, optimizer, epoch and
 * next_batch to continue at, step, seed). A crash between the report and
 * the commit leaves a report row that the next resume drops. committed_dir
 * (may be NULL) receives the checkpoint directory's path. */
rt_status rt_report_checkpoint(rt_session *s, rt_run *run, const rt_metric *metrics,
                               int count, rt_train_state *state,
                               const rt_ckpt_policy *policy, char *committed_dir,
                               size_t committed_dir_size);

/* rt_report_checkpoint with the checkpoint written by w's thread
 * (rt_ckpt_save_async, checkpoint.async): the call returns once the state
 * is copied. The save in flight, if any, is waited for first; wait for the
 * last with rt_ckpt_async_wait before the run ends. Collective. */
rt_status rt_report_checkpoint_async(rt_session *s, rt_run *run, const rt_metric *metrics,
                                     int count, rt_train_state *state,
                                     const rt_ckpt_policy *policy, rt_ckpt_async *w,
                                     char *committed_dir, size_t committed_dir_size);

/* ---- the built-in training loop ----------------------------------------------------- */
/* Collective over the session's communicator: trains as cfg describes
 * (what `rtrain CONFIG` does): data, model on the configured backend, DDP,
 * optimizer and schedule, one report per epoch with its evaluation and
 * checkpoint, resume (rt_get_checkpoint), the stop-signal checkpoint, and
 * error.txt and the summary on failure. Returns an agreed status: RT_OK,
 * RT_STOPPED after a stop signal (its checkpoint written), or the failure.
 * Several trainers may run in one job, each on the session of its own
 * communicator (rt_comm_split + rt_session_init_comm), each with its own
 * run directory. */
rt_status rt_trainer_run(rt_session *s, const rt_config *cfg);

/* Not collective; needs no MPI (MPI need not be initialised): checks what
 * rt_trainer_run would set up for cfg on world_size ranks without
 * training (rtrain --check): the loss, the batch split, both datasets
 * (their files, shapes and targets; an HDF5 file's inputs are not read),
 * the epochs and the model (planned, rt_model_plan: no memory taken).
 * Prints to `out` the resolved configuration, the data, how the global
 * batch splits over the ranks, the model's layers with their parameters,
 * and the memory each rank needs. Returns the status a run would fail
 * with at set-up (the same message), or RT_OK. Nothing is written to the
 * run directory. */
rt_status rt_trainer_check(const rt_config *cfg, int world_size, FILE *out);

/* rt_trainer_run with a report hook (rtrain/run.h): installed on the
 * session for the run's reports (NULL: the session's own hook stays, if
 * any, as with rt_trainer_run); training ends after the report
 * (and its checkpoint, when one is due) at which the hook asked, and the
 * run ends TERMINATED with the reports so far. */
rt_status rt_trainer_run_with(rt_session *s, const rt_config *cfg, rt_report_hook hook,
                              void *arg);

/* ---- using a trained model ------------------------------------------------------------ */
/* What rt_predict reads and writes (rtrain-predict's options). */
typedef struct rt_predict_opts {
    const char *checkpoint;   /* a checkpoint directory RUN/checkpoint_NNNNNN, or its .h5 */
    const char *input;        /* the data (idx: the images file) */
    const char *output;       /* predictions.h5 or predictions.csv (by the extension) */
    const char *format;       /* "idx" | "hdf5" | "csv"; NULL: by the input's extension,
                               * else the run's data.format */
    const char *x;            /* hdf5: the inputs' dataset (NULL: the run's data.test.x) */
    const char *label;        /* the targets: hdf5 dataset, csv column, idx labels file;
                               * "none": the data has none; NULL: the run's (idx: none) */
    int batch_size;           /* samples per rank and batch, >= 1 */
    int threads;              /* compute threads per rank; 0: as rtrain sets them */
    FILE *report;             /* rank 0's summary (NULL: stdout) */
} rt_predict_opts;

/* Collective over the session's communicator: predictions of the model of
 * checkpoint o->checkpoint on every row of o->input, written to one file
 * o->output by all ranks (of every global batch of batch_size x ranks rows
 * in file order, rank r predicts and writes the block [r*batch_size,
 * (r+1)*batch_size): a one-rank run's batches, so the same bits on any
 * number of ranks), with the model, the input transforms, the
 * encoding, the standardisation and the class names the run recorded
 * (params.json of the checkpoint's run directory, the checkpoint's
 * preprocessing). With targets in the data, rank 0 also prints the
 * evaluation's metrics next to those the checkpoint recorded. The output
 * appears whole or not at all (a temporary renamed at the end). Returns an
 * agreed status. Formats: docs/predict.md. */
rt_status rt_predict(rt_session *s, const rt_predict_opts *o);

#ifdef __cplusplus
}
#endif
#endif
