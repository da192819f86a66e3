/* rtrain run: the session every worker runs in (the analogue of Ray
 * Train's session: get_context, report), agreement across ranks, and the
 * run directory with its result files.
 *
 * Agreement protocol: any rank-local outcome that decides whether ranks go
 * on together (a config error, an unreadable file) is passed through
 * rt_session_agree() before anyone acts on it. It all-reduces the lowest
 * failing rank; that rank broadcasts its status and message, so every rank
 * returns the same status and rank 0 can print the one message that says
 * what went wrong. No rank leaves a collective alone. */
#ifndef RTRAIN_RUN_H
#define RTRAIN_RUN_H

#include <mpi.h>
#include "rtrain/core.h"
#include "rtrain/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where this worker sits (ray.train.get_context()). */
typedef struct rt_context {
    int world_rank, world_size;
    int local_rank, local_size;   /* ranks sharing this node */
    int node_rank, num_nodes;
    char host[64];
} rt_context;

typedef struct rt_session rt_session;

/* Collective over MPI_COMM_WORLD. Initialises MPI (threads: FUNNELED) unless
 * the caller already did, and works out the context. */
rt_status rt_session_init(rt_session **out, int *argc, char ***argv);
/* Collective. Finalises MPI if rt_session_init initialised it. */
void rt_session_finalize(rt_session *s);
const rt_context *rt_session_context(const rt_session *s);
MPI_Comm rt_session_comm(const rt_session *s);

/* Collective: see the agreement protocol above. `local` is this rank's
 * status (its message in rt_error_message()). Returns RT_OK on every rank
 * or the first failing rank's status on every rank, with that rank's
 * message recorded (prefixed with its rank when it is not rank 0). */
rt_status rt_session_agree(rt_session *s, rt_status local);

/* Not collective: rank 0 prints "rtrain: error: <message>" for a failed
 * status (other ranks stay quiet, the message was agreed) and returns the
 * process exit code for it. */
int rt_session_exit_code(const rt_session *s, rt_status st);

/* Sets OpenBLAS threads: threads_per_worker, or cores / local ranks. */
int rt_session_set_threads(rt_session *s, int threads_per_worker);

/* ---- run directory and reports ---------------------------------------------- */
typedef struct rt_run rt_run;

/* Collective. Rank 0 creates storage_path/name/ (deriving the name from the
 * config file when unset) and writes params.json; the outcome is agreed. */
rt_status rt_run_open(rt_run **out, rt_session *s, const rt_config *cfg);
void rt_run_close(rt_run *r);
const char *rt_run_dir(const rt_run *r);

/* One metric of a report. NaN/Inf are written as null. */
typedef struct rt_metric { const char *name; double value; } rt_metric;

/* Collective in cadence (every rank calls it for every report), but only
 * rank 0's values are recorded: appends one JSON line to result.json with
 * the metrics plus training_iteration, timestamp and time_total_s. */
rt_status rt_report(rt_run *r, const rt_metric *metrics, int count);

#ifdef __cplusplus
}
#endif
#endif
