/* rtrain core: status codes, the one error convention, logging, aligned
 * allocation and the counter-based random number generator.
 *
 * Error convention: every function that can fail returns rt_status. The
 * function that detects a failure records one user-facing message with
 * RT_ERROR (what went wrong, where, how to fix it) and returns its code;
 * callers pass it up with RT_CHECK, which appends a file:line trace frame.
 * The program's top level prints the message once (rt_error_message) and
 * exits with rt_status_exit_code(). Nothing in the library calls exit().
 *
 * The one fatal path: a failure that would leave other ranks waiting inside
 * a collective (a gradient all-reduce that cannot be started, a watchdog
 * deadline passed) cannot be returned, because the peers would never learn
 * of it. rt_abort() prints one message and ends the whole job through the
 * hooks registered with rt_abort_hook_add (the session registers
 * MPI_Abort; a GPU communicator registers its own abort before it).
 *
 * None of the functions in this header is collective. */
#ifndef RTRAIN_CORE_H
#define RTRAIN_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rt_status {
    RT_OK = 0,
    RT_ERR_INVALID_ARG,  /* a caller passed something impossible (a bug) */
    RT_ERR_CONFIG,       /* configuration file or override is wrong */
    RT_ERR_IO,           /* a file could not be opened, read or written */
    RT_ERR_FORMAT,       /* a file's content is malformed or truncated */
    RT_ERR_NOMEM,        /* an allocation failed */
    RT_ERR_MPI,          /* an MPI call failed */
    RT_ERR_NUMERIC,      /* NaN/Inf where a finite value is required */
    RT_ERR_UNSUPPORTED,  /* valid request this build cannot do */
    RT_ERR_INTERNAL,     /* invariant broken inside rtrain (a bug) */
    RT_ERR_TIMEOUT,      /* a collective did not complete in time (a rank hangs) */
    RT_STOPPED,          /* stopped on a signal after checkpointing (not a failure) */
    RT_ERR_DEVICE,       /* the GPU, its driver or a GPU library (CUDA, cuDNN, NCCL) failed */
    RT_STATUS_COUNT
} rt_status;

/* Process exit codes, documented in the README. A launcher uses them to
 * decide whether to retry: input errors are never retried. */
enum {
    RT_EXIT_OK = 0,
    RT_EXIT_FAILURE = 1,     /* runtime failure: retry may help */
    RT_EXIT_INPUT = 2,       /* config/data/usage error: fix the input */
    RT_EXIT_PREEMPTED = 3,   /* stopped by signal after checkpointing */
};

const char *rt_status_name(rt_status s);
int rt_status_exit_code(rt_status s);

/* Records the first message of the current failure (later calls before
 * rt_error_clear() only add trace frames) and returns code. Thread-local. */
rt_status rt_error_set(rt_status code, const char *file, int line,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void rt_error_trace(const char *file, int line, const char *expr);
const char *rt_error_message(void);   /* "" when no error recorded */
const char *rt_error_traceback(void); /* file:line frames, newest last */
void rt_error_clear(void);

#define RT_ERROR(code, ...) rt_error_set((code), __FILE__, __LINE__, __VA_ARGS__)

#define RT_CHECK(expr)                                                  \
    do {                                                                \
        rt_status rt_check_status_ = (expr);                            \
        if (rt_check_status_ != RT_OK) {                                \
            rt_error_trace(__FILE__, __LINE__, #expr);                  \
            return rt_check_status_;                                    \
        }                                                               \
    } while (0)

/* Like RT_CHECK but jumps to a cleanup label with the status stored in s. */
#define RT_CHECK_GOTO(s, expr, label)                                   \
    do {                                                                \
        (s) = (expr);                                                   \
        if ((s) != RT_OK) {                                             \
            rt_error_trace(__FILE__, __LINE__, #expr);                  \
            goto label;                                                 \
        }                                                               \
    } while (0)

/* ---- logging ---------------------------------------------------------- */
typedef enum rt_log_level {
    RT_LOG_ERROR = 0, RT_LOG_WARN = 1, RT_LOG_INFO = 2, RT_LOG_DEBUG = 3
} rt_log_level;

/* rank < 0: no prefix (single process). Ranks other than 0 print only
 * warnings and errors, prefixed "[rank R host]". */
void rt_log_set_rank(int rank, const char *host);
void rt_log_set_level(rt_log_level level);
rt_log_level rt_log_get_level(void);
/* Also writes every line this process logs (within the level, including
 * information of ranks other than 0) to f, flushed per line; NULL stops. */
void rt_log_set_file(FILE *f);
FILE *rt_log_get_file(void);
void rt_log(rt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define rt_info(...) rt_log(RT_LOG_INFO, __VA_ARGS__)
#define rt_warn(...) rt_log(RT_LOG_WARN, __VA_ARGS__)
#define rt_debug(...) rt_log(RT_LOG_DEBUG, __VA_ARGS__)

/* The rank and host of this process as set by rt_log_set_rank (rank < 0:
 * not set), for messages that must say where they come from. */
int rt_log_rank(void);
const char *rt_log_host(void);

/* ---- the one fatal path ------------------------------------------------- */
/* A hook that ends the job (MPI_Abort, ncclCommAbort, ...): called with the
 * exit code the job should end with. A hook may return (it only tidied
 * up); the next one is then called. */
typedef void (*rt_abort_hook_fn)(void *arg, int exit_code);
/* Registers fn(arg); hooks run newest first. Returns a handle for
 * rt_abort_hook_remove, or -1 when the table (16 hooks) is full. */
int rt_abort_hook_add(rt_abort_hook_fn fn, void *arg);
void rt_abort_hook_remove(int handle);
/* Prints "rtrain: error: [rank R host] <message>" on stderr, runs the
 * hooks, and ends the process with RT_EXIT_FAILURE if none of them did.
 * A call from inside a hook (an abort that fails) ends the process at
 * once. Never returns. */
void rt_abort(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The message of the rt_abort under way ("" before one): for an abort hook
 * that records it (rank 0's error.txt). */
const char *rt_abort_message(void);

/* ---- deadlines ------------------------------------------------------------ */
/* A bound on a phase that can block inside a library with no timeout of its
 * own (HDF5 I/O on a full or failing disk; collectives go through
 * rt_comm_wait's deadline instead). A thread of the process watches the
 * armed deadlines; past one it ends the job through rt_abort, naming `what`
 * ("checkpoint 3 in runs/a"). seconds <= 0 arms nothing. Returns a handle
 * for rt_deadline_disarm, or -1 when nothing was armed (disarming -1 does
 * nothing). Thread-safe; not collective. */
int rt_deadline_arm(double seconds, const char *what);
void rt_deadline_disarm(int handle);

/* ---- allocation --------------------------------------------------------- */
/* 64-byte aligned, zero-filled. On failure records RT_ERR_NOMEM naming
 * what (e.g. "parameter slab") and the size. */
rt_status rt_alloc(void *out_ptr, size_t count, size_t elem_size, const char *what);
void rt_free(void *ptr);

/* ---- the HDF5 lock ------------------------------------------------------------ */
/* The parallel HDF5 library is not thread-safe: every use of it in this
 * process holds this lock (recursive): a checkpoint file from open to
 * close (the training thread), a dataset's open, reads and close (the
 * training thread, or a loader thread streaming an HDF5 dataset). */
void rt_hdf5_lock(void);
void rt_hdf5_unlock(void);

/* ---- counter-based RNG (Philox4x32-10) ---------------------------------- */
/* A stream is identified by a 64-bit key; value i of the stream depends only
 * on (key, i), so any rank can compute any part of any stream, and a resumed
 * run reproduces the same numbers by restoring the counter. */
typedef struct rt_rng {
    uint64_t key;
    uint64_t counter;  /* index of the next 128-bit block */
    uint32_t buf[4];
    int buf_pos;       /* 4 = buffer empty */
} rt_rng;

/* Key for a stream from a seed and up to three stream indices (epoch,
 * parameter index, ...): distinct tuples give independent streams. */
uint64_t rt_rng_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
void rt_rng_init(rt_rng *rng, uint64_t key);
void rt_philox4x32(uint64_t key, uint64_t counter, uint32_t out[4]);
uint32_t rt_rng_u32(rt_rng *rng);
float rt_rng_uniform(rt_rng *rng);           /* [0, 1) with 24 random bits */
uint32_t rt_rng_below(rt_rng *rng, uint32_t n); /* unbiased, in [0, n) */
float rt_rng_normal(rt_rng *rng);            /* N(0,1), Box-Muller */

/* Deterministic permutation of 0..n-1 (Fisher-Yates) driven by key. */
void rt_rng_permutation(uint64_t key, uint32_t *perm, uint32_t n);

/* ---- small helpers ------------------------------------------------------ */
double rt_time_now(void);   /* monotonic seconds */
/* Levenshtein distance, for "did you mean" suggestions. */
int rt_edit_distance(const char *a, const char *b);

#ifdef __cplusplus
}
#endif
#endif
