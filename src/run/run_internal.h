/* Internal to the run module: the rt_run handle shared by rundir.c (the
 * directory), report.c (result.json, progress.csv), progress.c (console)
 * and errfile.c (error.txt), and their small file helpers. */
#ifndef RTRAIN_RUN_INTERNAL_H
#define RTRAIN_RUN_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include "rtrain/run.h"
#include "core/fs.h"

#define RT_RUN_DIR_MODE 0750
#define RT_RUN_FILE_MODE 0640

/* Console progress state (rank 0). */
typedef struct rt_progress {
    int tty;               /* stdout is a terminal: redraw a bar with \r */
    int verbose;           /* run.verbose */
    double log_every_s;    /* plain-line interval when not a terminal */
    long long epoch, epochs, steps;
    double epoch_start;    /* rt_time_now() when the epoch began */
    double last_draw;      /* last bar redraw or plain line */
    int bar_visible;       /* a bar is on the current line: clear it first */
} rt_progress;

struct rt_run {
    rt_session *session;
    int rank, world_size;
    char host[64];
    char dir[RT_PATH_MAX];
    int iteration;              /* reports so far */
    int should_stop;            /* the session's report hook asked to stop (agreed) */
    double start_time, last_report_time;
    /* rank 0: progress.csv columns in file order */
    char **columns;
    int ncolumns, columns_cap;
    int files_checked;          /* torn tails of the result files were trimmed */
    json_t *last;               /* rank 0: the last report written */
    char score_attribute[64], score_order[8];   /* checkpoint.*, for the summary */
    FILE *rank_log;             /* rank_N.log, or NULL */
    FILE *outer_log;            /* the log file before this run's: restored at close */
    int tensorboard;            /* run.tensorboard: rank 0 writes events files */
    int tb_fd;                  /* rank 0: this process's events file, or -1 (not yet) */
    char tb_path[RT_PATH_MAX + 128];
    /* rank 0: the run directory's lock (lock.c); locked 2: with its
     * refresh thread */
    int locked, lock_stop;
    char lock_path[RT_PATH_MAX + 16];
    pthread_t lock_thread;
    pthread_mutex_t lock_mutex;
    pthread_cond_t lock_cv;
    int abort_hook;             /* rank 0: rt_abort_hook_add's handle (error.txt), or -1 */
    rt_progress progress;
};

/* session.c: the session's report hook on a report (0 without one). */
int rt_session_ask_report_hook(rt_session *s, const rt_metric *metrics, int count,
                               int iteration);

/* progress.c: rank 0's one-line summary of a report just recorded. */
void rt_progress_print_report(rt_run *r, const rt_metric *metrics, int count,
                              double iter_time);
/* lock.c (rank 0): takes RUN/.lock for the life of the run (RT_ERR_CONFIG
 * when another live job holds it), and releases it. */
rt_status rt_run_lock(rt_run *r);
void rt_run_unlock(rt_run *r);

/* errfile.c: rank 0's abort hook, which writes the abort's message into
 * error.txt (a watchdog or a deadline that ends the job). */
void rt_run_abort_hook(void *arg, int exit_code);

/* progress.c: clears a bar left on the current terminal line. */
void rt_progress_clear(rt_run *r);

/* tfevents.c: TensorBoard event files (rank 0; nothing elsewhere or
 * without run.tensorboard). One Event at step `step` with the scalars
 * values[i] tagged prefix + tags[i], written at once; the file is created
 * on the first call. */
rt_status rt_tfevents_write(rt_run *r, int64_t step, const char *prefix,
                            const char *const *tags, const float *values, int n);
/* The numeric fields of a report (names[i], values[i]) at step
 * r->iteration, without those TensorBoard is not given (tfevents.c). */
rt_status rt_tfevents_report(rt_run *r, const char *const *names, const double *values, int n);
/* Resuming: earlier events files lose the report events past `iteration`
 * and the "step/" events past `step` (files left without scalars are
 * removed); this process's file, if open, is closed. Rank 0 only. */
rt_status rt_tfevents_trim(rt_run *r, int64_t iteration, int64_t step);
void rt_tfevents_close(rt_run *r);

#endif
