/* Status codes and the per-thread error record (see rtrain/core.h). */
#include <stdio.h>
#include <string.h>
#include "rtrain/core.h"

static const struct { const char *name; int exit_code; } status_table[RT_STATUS_COUNT] = {
    [RT_OK] = {"ok", RT_EXIT_OK},
    [RT_ERR_INVALID_ARG] = {"invalid argument", RT_EXIT_FAILURE},
    [RT_ERR_CONFIG] = {"configuration error", RT_EXIT_INPUT},
    [RT_ERR_IO] = {"I/O error", RT_EXIT_FAILURE},
    [RT_ERR_FORMAT] = {"malformed input", RT_EXIT_INPUT},
    [RT_ERR_NOMEM] = {"out of memory", RT_EXIT_FAILURE},
    [RT_ERR_MPI] = {"MPI error", RT_EXIT_FAILURE},
    [RT_ERR_NUMERIC] = {"numerical error", RT_EXIT_FAILURE},
    [RT_ERR_UNSUPPORTED] = {"unsupported", RT_EXIT_INPUT},
    [RT_ERR_INTERNAL] = {"internal error", RT_EXIT_FAILURE},
    [RT_ERR_TIMEOUT] = {"timeout", RT_EXIT_FAILURE},
    [RT_STOPPED] = {"stopped", RT_EXIT_PREEMPTED},
    [RT_ERR_DEVICE] = {"device error", RT_EXIT_FAILURE},
};

const char *rt_status_name(rt_status s)
{
    return (s >= 0 && s < RT_STATUS_COUNT) ? status_table[s].name : "unknown status";
}

int rt_status_exit_code(rt_status s)
{
    return (s >= 0 && s < RT_STATUS_COUNT) ? status_table[s].exit_code : RT_EXIT_FAILURE;
}

/* The first message of a failure is the one worth showing; frames added
 * while it propagates form a developer traceback. */
static _Thread_local char error_message[2048];
static _Thread_local char error_trace[2048];
static _Thread_local int error_set;

rt_status rt_error_set(rt_status code, const char *file, int line, const char *fmt, ...)
{
    if (!error_set) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error_message, sizeof error_message, fmt, ap);
        va_end(ap);
        error_trace[0] = '\0';
        error_set = 1;
    }
    rt_error_trace(file, line, "origin");
    return code;
}

void rt_error_trace(const char *file, int line, const char *expr)
{
    size_t used = strlen(error_trace);
    if (used + 1 < sizeof error_trace)
        snprintf(error_trace + used, sizeof error_trace - used, "  at %s:%d (%s)\n",
                 file, line, expr);
}

const char *rt_error_message(void) { return error_message; }
const char *rt_error_traceback(void) { return error_trace; }

void rt_error_clear(void)
{
    error_message[0] = '\0';
    error_trace[0] = '\0';
    error_set = 0;
}
