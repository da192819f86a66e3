/* rtrain run: the session every worker runs in (the analogue of Ray
 * Train's session: get_context, report), agreement across ranks, and the
 * run directory with its result files.
 *
 * A session lives on one communicator: all processes of the job
 * (rt_session_init), or a part of them (rt_session_init_comm), so that
 * several trainers can run side by side in one MPI job, each on its own
 * ranks. Several sessions may exist in one process one after another or
 * interleaved (a tuning driver's trials): each has its own communicator,
 * deadline and stop request; what is process-wide (a stop signal, the log
 * prefix, which names the process's rank in the whole job) is shared.
 *
 * Agreement protocol: any rank-local outcome that decides whether ranks go
 * on together (a config error, an unreadable file) is passed through
 * rt_session_agree() before anyone acts on it: the rule of rt_comm_agree
 * (rtrain/comm.h), the lowest failing rank's status and message on every
 * rank, so that rank 0 can print the one message that says what went
 * wrong. No rank leaves a collective alone. */
#ifndef RTRAIN_RUN_H
#define RTRAIN_RUN_H

#include "rtrain/core.h"
#include "rtrain/comm.h"
#include "rtrain/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where this worker sits (ray.train.get_context()), within the session's
 * communicator. */
typedef struct rt_context {
    int world_rank, world_size;   /* rank and size of the session's communicator */
    int local_rank, local_size;   /* its ranks sharing this node */
    int node_rank, num_nodes;
    char host[64];
} rt_context;

typedef struct rt_session rt_session;

/* Collective over all processes of the job. Initialises MPI (threads:
 * FUNNELED) unless the caller already did, and works out the context. */
rt_status rt_session_init(rt_session **out, int *argc, char ***argv);
/* Collective over comm: a session on the ranks of comm (from rt_comm_split
 * of another session's communicator, say), which it takes over (freed by
 * rt_session_finalize, also when this fails). MPI must be initialised. */
rt_status rt_session_init_comm(rt_session **out, rt_comm *comm);
/* Collective. Frees the communicator; finalises MPI if rt_session_init
 * initialised it. */
void rt_session_finalize(rt_session *s);
const rt_context *rt_session_context(const rt_session *s);
/* Not collective: the session's communicator (collectives of a user loop,
 * checkpoints). */
rt_comm *rt_session_comm(const rt_session *s);

/* Collective: this rank's GPU for the "cuda" backend, and the communicator
 * for the model's tensors. Every rank first reports how many GPUs it sees
 * and which one it would drive (its node-local rank among those
 * CUDA_VISIBLE_DEVICES shows); all ranks agree that every node has a GPU
 * for each of its ranks, else one message names the host and both counts,
 * before any GPU is opened. comm_backend ("auto", "nccl", "mpi", as
 * comm.backend) picks NCCL or MPI through host memory; auto is NCCL unless
 * ranks share a GPU. The GPU and the NCCL communicator are released by
 * rt_session_finalize (free the model first). */
rt_status rt_session_open_gpu(rt_session *s, const rt_gpu_opts *opts, const char *comm_backend);
/* Not collective: the communicator for the model's tensors (the NCCL one
 * after rt_session_open_gpu chose it, else rt_session_comm). */
rt_comm *rt_session_tensor_comm(const rt_session *s);

/* Collective: see the agreement protocol above. `local` is this rank's
 * status (its message in rt_error_message()). */
rt_status rt_session_agree(rt_session *s, rt_status local);

/* Not collective: rank 0 prints "rtrain: error: <message>" for a failed
 * status (other ranks stay quiet, the message was agreed) and returns the
 * process exit code for it. */
int rt_session_exit_code(const rt_session *s, rt_status st);

/* ---- stop signals, per-step agreement and the hang watchdog ----------------- */
/* Not collective. After this, SIGUSR1 and SIGTERM only set a flag (one for
 * the process: every session sees it); the training loop asks
 * rt_session_agree_step whether any rank saw one. */
void rt_session_catch_stop_signals(rt_session *s);
/* Not collective: 1 once this process caught a stop signal (after
 * rt_session_catch_stop_signals); a loop between trainings (rtrain-tune's
 * groups between trials) agrees on it before it stops. */
int rt_session_stop_caught(void);
/* Not collective: asks this session to stop at its next step agreement as
 * if a stop signal had arrived (a scheduler ending a trial early). */
void rt_session_request_stop(rt_session *s);

/* Deadline for every collective of the session (failure.step_timeout_s;
 * 0 = none): see the watchdog in rtrain/comm.h. Every rank sets the same
 * value. Not collective. */
void rt_session_set_step_timeout(rt_session *s, double seconds);
double rt_session_step_timeout(const rt_session *s);
/* The automatic step timeout (failure.step_timeout_s < 0): the larger of
 * min_s and RT_STEP_TIMEOUT_AUTO_FACTOR times the median of the n step
 * times step_s[] (seconds; n > 0; the array is reordered). Not collective. */
#define RT_STEP_TIMEOUT_AUTO_FACTOR 20.0
#define RT_STEP_TIMEOUT_AUTO_STEPS 10   /* steps measured, after the first */
double rt_session_step_timeout_auto(double *step_s, int n, double min_s);

/* Collective, once per step: agrees on `local` as rt_session_agree does and
 * sets *stop on every rank when any rank has caught a stop signal or been
 * asked to stop. One small all-reduce, under the deadline. */
rt_status rt_session_agree_step(rt_session *s, rt_status local, int *stop);

/* Collective: every rank passes its warning (NULL: none). Rank 0 prints
 * each distinct text once, with the number of ranks and which ones, e.g.
 * "warning: disk almost full (on 6 of 8 ranks: 1-6)". */
void rt_session_warn_all(rt_session *s, const char *warning);

/* Not collective. Sets the CPU kernels' threads: threads_per_worker, or
 * the node's cores divided by the ranks of the whole job on the node (all
 * sessions together, so that side-by-side trainers do not oversubscribe
 * it). Returns the count. */
int rt_session_set_threads(rt_session *s, int threads_per_worker);

/* ---- run directory and reports ---------------------------------------------- */
/* A run lives in storage_path/name/ (see README "Run directory"). Only rank 0
 * writes there: params.json, result.json (JSON lines), progress.csv (the same
 * rows), error.txt on failure; every rank writes rank_N.log when
 * run.log_per_rank is set. Directories are made 0750 and files 0640 whatever
 * the umask; a storage path owned by another user (not root) or
 * world-writable without the sticky bit is refused. */
typedef struct rt_run rt_run;

/* Collective. Rank 0 checks the storage path, creates storage_path/name/
 * (deriving the name from the config file when unset) and writes
 * params.json; the outcome and the directory are agreed. Also sets the log
 * level from run.verbose and opens rank_N.log when run.log_per_rank. */
rt_status rt_run_open(rt_run **out, rt_session *s, const rt_config *cfg);
/* Not collective, writes nothing: the run directory rt_run_open would
 * make for cfg (into dir), after the same checks of the storage path (a
 * run name with '/', a storage path another user owns or anybody may
 * rewrite), with the same messages; *exists = 1 when it is there already
 * (a resume). For rtrain --check. */
rt_status rt_run_check_dir(const rt_config *cfg, char *dir, size_t size, int *exists);
/* Collective. Rank 0 rewrites params.json as the configuration plus a
 * "preprocessing" member holding `json` (what was fitted on the training
 * data: the dataset's encoding, standardisation); the outcome is agreed. */
rt_status rt_run_record_preprocessing(rt_run *r, const rt_config *cfg, const char *json);
/* Collective. Rank 0 writes `text` (other ranks may pass NULL) as the
 * file `name` of the run directory, atomically (a reader sees the old file
 * or the new one); the outcome is agreed. For a user loop's own files and
 * the trainer's profile.txt / profile.json. */
rt_status rt_run_write_file(rt_run *r, const char *name, const char *text);
/* Not collective. Closes rank_N.log; NULL is allowed. */
void rt_run_close(rt_run *r);
/* Not collective. The run directory as agreed (same string on every rank). */
const char *rt_run_dir(const rt_run *r);
/* Not collective. Reports made so far (the last training_iteration). */
int rt_run_iteration(const rt_run *r);
/* Collective. Continues the run after report `iteration` (0: from the
 * start): result.json and progress.csv keep their first `iteration` rows
 * (rows of an interrupted attempt after the checkpoint resumed from are
 * dropped) and the next report is iteration + 1. */
rt_status rt_run_resume_at(rt_run *r, int iteration);
/* Collective. rt_run_resume_at for a loop that logs per-step scalars
 * (rt_run_log_scalars): the TensorBoard files also lose the per-step
 * scalars past optimizer step `step` (rt_run_resume_at keeps them all when
 * iteration > 0 and drops them all when it is 0). */
rt_status rt_run_resume_at_step(rt_run *r, int iteration, long long step);

/* One metric of a report. NaN/Inf are written as null (empty in progress.csv). */
typedef struct rt_metric { const char *name; double value; } rt_metric;

/* Collective in cadence: every rank calls it for every report (it ends with
 * an agreement), but only rank 0's values are recorded. Appends one line to
 * result.json and one row to progress.csv with the metrics in the given order
 * followed by the auto-filled fields time_this_iter_s (since the previous
 * report, or the run's start), time_total_s, world_size, training_iteration
 * (1-based count of reports), timestamp (Unix seconds) and, when
 * checkpoint_dir is not NULL, checkpoint (its name relative to the run
 * directory). A metric named like an auto-filled field replaces it, except
 * training_iteration and checkpoint, which are refused; so are empty and
 * duplicate names. epoch and step, when given, are ordinary metrics. Rank 0
 * also prints a one-line summary (run.verbose >= 1). */
rt_status rt_report(rt_run *r, const rt_metric *metrics, int count,
                    const char *checkpoint_dir);

/* TensorBoard (run.tensorboard, on by default): rank 0 writes
 * events.out.tfevents.<time>.<host>.<pid>.<n> in the run directory (a new
 * file each time a process opens or resumes the run; TensorBoard reads
 * them all as one run). Every rt_report adds its
 * numeric fields at step = training_iteration, tagged with their names
 * (training_iteration, timestamp and time_total_s left out, as Ray's
 * logger does; NaN/Inf left out, as they are null in result.json), as
 * float32 scalars. Events are written when made (a killed run keeps them);
 * docs/api.md describes the files and what a resume does to them. */
#define RT_RUN_MAX_STEP_SCALARS 64
/* Not collective: rank 0 adds metrics[0..count) (count <= 64) at optimizer
 * step `step` under the tags "step/<name>" (NaN/Inf left out); other
 * ranks, and runs without run.tensorboard, return RT_OK at once. The
 * values are rank 0's: reduce them first (rt_run_reduce) for global ones.
 * The built-in loop logs train_loss and lr every run.log_every_steps. */
rt_status rt_run_log_scalars(rt_run *r, long long step, const rt_metric *metrics, int count);

/* A scheduler's say on each report (rtrain-tune's ASHA, median stopping,
 * PBT; the C API's rt_tune_run): called on every rank by rt_report once
 * the report is recorded, with its metrics and training_iteration; returns
 * 1 to end the run there, 0 to go on. */
typedef int (*rt_report_hook)(void *arg, const rt_metric *metrics, int count,
                              int iteration);
/* Not collective. Installs hook(arg) for every report of the runs on
 * session s (NULL: none). rt_report then agrees on its answer: when any
 * rank's hook asks, rt_run_should_stop returns 1 on every rank. */
void rt_session_set_report_hook(rt_session *s, rt_report_hook hook, void *arg);
/* Not collective. 1 once a report's hook asked the run to stop (the same on
 * every rank): a training loop ends there, after the checkpoint it was
 * about to save, and returns RT_OK (the trial ends, not in error; Ray
 * Tune's stopped trial). */
int rt_run_should_stop(const rt_run *r);

/* Collective (rt_comm_allreduce over rt_session_comm): replaces
 * values[0..count) on every rank by their reduction over all ranks
 * (rt_reduce_op of rtrain/comm.h). MEAN divides the sum by the world size. */
rt_status rt_run_reduce(rt_run *r, double *values, int count, rt_reduce_op op);
/* Collective: the same for the values of metrics[0..count). */
rt_status rt_run_reduce_metrics(rt_run *r, rt_metric *metrics, int count, rt_reduce_op op);

/* Console progress of rank 0 (other ranks return at once; none of these is
 * collective). On a terminal: a one-line bar per epoch with step/total, ETA,
 * it/s and the current loss, redrawn at most 10 times a second; otherwise a
 * plain line at most every run.log_every_s seconds. run.verbose = 0 shows
 * nothing but errors and the final summary. */
/* An epoch starts: epoch is 1-based, epochs the planned total (0: unknown),
 * steps the optimizer steps it will have (0: unknown). */
void rt_run_progress_epoch(rt_run *r, long long epoch, long long epochs, long long steps);
/* `done` steps of the epoch are finished; loss is rank 0's running loss
 * (NaN: none to show). */
void rt_run_progress_step(rt_run *r, long long done, double loss);

/* Not collective, but call it on every rank with an agreed failure status
 * (from rt_session_agree): rank 0 writes error.txt (first failing rank, host,
 * step, status, message) from the agreed message. step is the global
 * optimizer step in progress (-1: unknown). r may be NULL (no run directory
 * yet: nothing is written). Returns st, so that `return rt_run_fail(...)`
 * passes the failure on; a failure to write error.txt is only a warning. */
rt_status rt_run_fail(rt_run *r, rt_status st, long long step);

/* Not collective: rank 0 prints the final summary table (also at
 * run.verbose = 0): status (TERMINATED or ERROR), iterations, total time,
 * the last metrics, the latest and best checkpoint (read from the run's
 * checkpoint_index.json, written by the checkpoint manager) and the run
 * path. r may be NULL. */
void rt_run_print_summary(rt_run *r, rt_status st);

#ifdef __cplusplus
}
#endif
#endif
