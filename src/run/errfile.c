/* error.txt: the first failure of a run, written by rank 0 from the message
 * every rank agreed on (rt_session_agree), so it names the rank that failed
 * first even when that was not rank 0. Format: "key: value" lines (rank,
 * host, step, status, time) and the message last, which may span lines;
 * rtrain-results reads it back with rt_runfiles_error_field. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "run_internal.h"

/* Splits "[rank R host] msg" (rt_session_agree's prefix for ranks other
 * than 0) into rank, host and message; otherwise rank 0 and this host. */
static const char *split_origin(const char *msg, int *rank, char *host, size_t size,
                                const char *own_host)
{
    int r = -1, n = 0;
    char h[64];
    if (sscanf(msg, "[rank %d %63[^]]]%n", &r, h, &n) == 2 && n > 0 && r >= 0) {
        *rank = r;
        snprintf(host, size, "%s", h);
        return msg + n + (msg[n] == ' ');
    }
    *rank = 0;
    snprintf(host, size, "%s", own_host);
    return msg;
}

/* Plain system calls, not rt_status: the error record holds the failure
 * being written and must stay as it is. Returns 0 or an errno value. */
static int write_error_file(const rt_run *r, rt_status st, long long step, const char *message)
{
    int rank;
    char host[64], stamp[32], path[RT_PATH_MAX + 32];
    const char *msg = split_origin(message, &rank, host, sizeof host, r->host);
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "rank: %d\nhost: %s\nstep: %lld\nreport: %d\nstatus: %s\ntime: %s\n"
                     "message: %s\n", rank, host, step, r->iteration, rt_status_name(st),
                     stamp, msg);
    if (n < 0 || (size_t)n >= sizeof text)
        n = (int)strlen(text);
    snprintf(path, sizeof path, "%s/error.txt", r->dir);
    /* Not through a planted symbolic link, not into a FIFO (see
     * rt_fs_open_write; plain calls here, see above). */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
                  RT_RUN_FILE_MODE);
    if (fd < 0)
        return errno;
    if (!rt_fs_regular_blocking(fd) || ftruncate(fd, 0) != 0) {
        close(fd);
        return EINVAL;
    }
    int err = fchmod(fd, RT_RUN_FILE_MODE) != 0 ? errno : 0;
    for (const char *p = text; !err && n > 0;) {
        ssize_t w = write(fd, p, (size_t)n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            err = w < 0 ? errno : EIO;
        else
            p += w, n -= (int)w;
    }
    if (close(fd) != 0 && !err)
        err = errno;
    return err;
}

void rt_run_abort_hook(void *arg, int exit_code)
{
    (void)exit_code;
    const rt_run *r = arg;
    const char *msg = rt_abort_message();
    rt_status st = strstr(msg, "did not complete within") ? RT_ERR_TIMEOUT : RT_ERR_INTERNAL;
    int err = write_error_file(r, st, -1, msg);
    if (err) {   /* said on stderr in one write: the process is on its way out */
        char line[RT_PATH_MAX + 128];
        int n = snprintf(line, sizeof line, "rtrain: could not write %s/error.txt: %s\n",
                         r->dir, strerror(err));
        ssize_t unused = write(STDERR_FILENO, line, n > 0 && (size_t)n < sizeof line
                                                         ? (size_t)n : strlen(line));
        (void)unused;
    }
}

rt_status rt_run_fail(rt_run *r, rt_status st, long long step)
{
    if (!r || r->rank != 0 || st == RT_OK || st == RT_STOPPED)
        return st;
    rt_progress_clear(r);
    int err = write_error_file(r, st, step, rt_error_message());
    if (err)
        rt_warn("could not write %s/error.txt: %s", r->dir, strerror(err));
    return st;
}
