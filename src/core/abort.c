/* rt_abort: the one fatal path (see rtrain/core.h).
 *
 * Hooks live in a small fixed table (nothing is allocated on the way out),
 * each with the sequence number of its registration, and run newest first:
 * a GPU communicator registered after the session's MPI_Abort hook aborts
 * its own collectives before MPI ends the job. The message is printed
 * before any hook runs, in one write(2), so a hook that kills the process
 * cannot lose it. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "rtrain/core.h"

#define ABORT_MAX_HOOKS 16

static struct {
    rt_abort_hook_fn fn;
    void *arg;
    unsigned long seq;    /* registration order; 0: free slot */
} hooks[ABORT_MAX_HOOKS];
static unsigned long next_seq = 1;
static volatile sig_atomic_t aborting = 0;
static char abort_message[4096];

const char *rt_abort_message(void) { return abort_message; }

int rt_abort_hook_add(rt_abort_hook_fn fn, void *arg)
{
    for (int i = 0; fn && i < ABORT_MAX_HOOKS; i++)
        if (!hooks[i].seq) {
            hooks[i].fn = fn;
            hooks[i].arg = arg;
            hooks[i].seq = next_seq++;
            return i;
        }
    return -1;
}

void rt_abort_hook_remove(int handle)
{
    if (handle >= 0 && handle < ABORT_MAX_HOOKS)
        hooks[handle].seq = 0;
}

static void print_message(const char *fmt, va_list ap)
{
    char line[4096];
    size_t len = (size_t)snprintf(line, sizeof line, "rtrain: error: ");
    if (rt_log_rank() >= 0)
        len += (size_t)snprintf(line + len, sizeof line - len, "[rank %d %s] ", rt_log_rank(),
                                rt_log_host());
    if (len < sizeof line)
        vsnprintf(line + len, sizeof line - len, fmt, ap);
    snprintf(abort_message, sizeof abort_message, "%s", line + strlen("rtrain: error: "));
    len = strlen(line);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    fflush(stdout);
    ssize_t unused = write(STDERR_FILENO, line, len);
    (void)unused;
}

/* The slot of the newest hook registered before sequence number `below`. */
static int newest_before(unsigned long below)
{
    int best = -1;
    for (int i = 0; i < ABORT_MAX_HOOKS; i++)
        if (hooks[i].seq && hooks[i].seq < below &&
            (best < 0 || hooks[i].seq > hooks[best].seq))
            best = i;
    return best;
}

void rt_abort(const char *fmt, ...)
{
    if (aborting)
        _exit(RT_EXIT_FAILURE);   /* rt_abort from inside a hook */
    aborting = 1;
    va_list ap;
    va_start(ap, fmt);
    print_message(fmt, ap);
    va_end(ap);
    unsigned long below = next_seq;
    for (int i = newest_before(below); i >= 0; i = newest_before(below)) {
        below = hooks[i].seq;
        hooks[i].fn(hooks[i].arg, RT_EXIT_FAILURE);
    }
    _exit(RT_EXIT_FAILURE);
}
