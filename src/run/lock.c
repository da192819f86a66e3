/* The run directory's lock, RUN/.lock: one job writes a run at a time.
 * Two jobs with the same run name (a requeued job and a manual resubmit)
 * would otherwise interleave result rows and remove each other's temporary
 * checkpoints.
 *
 * Rank 0 creates the lock when it opens the run and removes it at close.
 * It is created by link(2) of a private temporary (rt_fs_create_exclusive),
 * which is atomic also over NFS, where flock may not be. It holds the
 * owner: "host H", "pid P", "start S" (the process's start time in clock
 * ticks since boot, /proc/P/stat, so that a reused pid is not taken for the
 * owner), "job J" (SLURM_JOB_ID, else RTRAIN_LAUNCH_ID which rtrain-run sets
 * for its attempts; "-" for none) and "since T" (UTC). A thread of rank 0
 * refreshes the lock's modification time every RUN_LOCK_REFRESH_S seconds.
 *
 * An existing lock is stale, and taken over with a note, when
 *  - its job is this process's job (a Slurm requeue, an rtrain-run retry:
 *    the earlier attempt is over, wherever it ran);
 *  - it names this host and a process that no longer exists (or a pid
 *    that now belongs to a process started at another time): a crash;
 *  - it names another host and was not refreshed for RUN_LOCK_STALE_S:
 *    its owner died with its node (liveness cannot be asked across hosts).
 * Otherwise the run is refused with RT_ERR_CONFIG (exit 2), naming the
 * owner. A take-over removes the stale file first by rename to a private
 * name (only one of several contenders succeeds), then creates its own. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "run_internal.h"

#define RUN_LOCK_NAME ".lock"
#define RUN_LOCK_REFRESH_S 60
#define RUN_LOCK_STALE_S 600
#define RUN_LOCK_MAX_BYTES 4096

typedef struct lock_owner {
    char host[256], job[128], since[32];
    long long pid, start;
} lock_owner;

/* The start of file path into buf (NUL-terminated; "" if unreadable), with
 * plain stdio: no error record (see rt_run_unlock). */
static void read_start(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, size - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
}

/* Field 22 of /proc/pid/stat (start time in clock ticks); -1 if unknown. */
static long long process_start(long long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%lld/stat", pid);
    read_start(path, buf, sizeof buf);
    char *p = strrchr(buf, ')');   /* the command name may hold spaces */
    long long start = -1;
    for (int field = 2; p && *p; p++)
        if (*p == ' ' && ++field == 22) {
            start = strtoll(p + 1, NULL, 10);
            break;
        }
    return start;
}

static const char *own_job(void)
{
    const char *job = getenv("SLURM_JOB_ID");
    if (!job || !*job)
        job = getenv("RTRAIN_LAUNCH_ID");
    return job && *job ? job : "-";
}

static void parse_owner(const char *text, lock_owner *o)
{
    memset(o, 0, sizeof *o);
    o->pid = o->start = -1;
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        sscanf(line, "host %255s", o->host);
        sscanf(line, "pid %lld", &o->pid);
        sscanf(line, "start %lld", &o->start);
        sscanf(line, "job %127s", o->job);
        sscanf(line, "since %31s", o->since);
    }
}

/* Why the lock of `o` (modified at mtime) is stale, or NULL if its owner
 * may be alive. */
static const char *stale_reason(const rt_run *r, const lock_owner *o, time_t mtime)
{
    if (strcmp(o->job, "-") && !strcmp(o->job, own_job()))
        return "an earlier attempt of this job";
    if (!strcmp(o->host, r->host)) {
        if (o->pid <= 0 || (kill((pid_t)o->pid, 0) != 0 && errno == ESRCH))
            return "its process no longer exists";
        if (o->start >= 0 && process_start(o->pid) != o->start)
            return "its process no longer exists (the pid was reused)";
        return NULL;
    }
    if (difftime(time(NULL), mtime) > RUN_LOCK_STALE_S)
        return "it is on another host and was not refreshed for 10 minutes";
    return NULL;
}

static rt_status lock_text(const rt_run *r, char *buf, size_t size)
{
    char since[32];
    time_t now = time(NULL);
    strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    return rt_fs_path(buf, size, "host %s\npid %d\nstart %lld\njob %s\nsince %s\n", r->host,
                      (int)getpid(), process_start(getpid()), own_job(), since);
}

/* Removes the stale lock at path (by rename first: of several processes
 * taking it over, one removes it). */
static rt_status take_over(const char *path)
{
    char moved[RT_PATH_MAX + 64];
    RT_CHECK(rt_fs_path(moved, sizeof moved, "%s.stale.%d", path, (int)getpid()));
    if (rename(path, moved) != 0)
        return errno == ENOENT ? RT_OK
                               : RT_ERROR(RT_ERR_IO, "cannot remove the stale lock %s: %s",
                                          path, strerror(errno));
    unlink(moved);
    return RT_OK;
}

static void *refresh_loop(void *arg)
{
    rt_run *r = arg;
    pthread_mutex_lock(&r->lock_mutex);
    while (!r->lock_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += RUN_LOCK_REFRESH_S;
        pthread_cond_timedwait(&r->lock_cv, &r->lock_mutex, &until);
        if (!r->lock_stop)
            utimensat(AT_FDCWD, r->lock_path, NULL, 0);
    }
    pthread_mutex_unlock(&r->lock_mutex);
    return NULL;
}

rt_status rt_run_lock(rt_run *r)
{
    char text[1024];
    RT_CHECK(rt_fs_path(r->lock_path, sizeof r->lock_path, "%s/" RUN_LOCK_NAME, r->dir));
    RT_CHECK(lock_text(r, text, sizeof text));
    for (int attempt = 0; attempt < 3; attempt++) {
        int created = 0;
        RT_CHECK(rt_fs_create_exclusive(r->lock_path, text, RT_RUN_FILE_MODE, &created));
        if (created) {
            pthread_mutex_init(&r->lock_mutex, NULL);
            pthread_cond_init(&r->lock_cv, NULL);
            r->lock_stop = 0;
            r->locked = pthread_create(&r->lock_thread, NULL, refresh_loop, r) == 0 ? 2 : 1;
            return RT_OK;
        }
        char *held = NULL;
        struct stat sb;
        if (stat(r->lock_path, &sb) != 0)
            continue;   /* released meanwhile */
        RT_CHECK(rt_fs_read_small(r->lock_path, RUN_LOCK_MAX_BYTES, "run lock", &held));
        lock_owner o;
        parse_owner(held, &o);
        rt_free(held);
        const char *why = stale_reason(r, &o, sb.st_mtime);
        if (!why)
            return RT_ERROR(RT_ERR_CONFIG, "run directory %s is in use by another job: process "
                            "%lld on host %s (job %s) holds %s since %s. Two jobs writing one "
                            "run would interleave its results: wait for that job to end, or "
                            "choose another run.name; if it is certainly gone, remove %s",
                            r->dir, o.pid, o.host[0] ? o.host : "?", o.job[0] ? o.job : "-",
                            r->lock_path, o.since[0] ? o.since : "?", r->lock_path);
        rt_info("taking over the lock of %s from process %lld on host %s: %s", r->dir, o.pid,
                o.host[0] ? o.host : "?", why);
        RT_CHECK(take_over(r->lock_path));
    }
    return RT_ERROR(RT_ERR_IO, "cannot take the lock %s: other processes keep taking it",
                    r->lock_path);
}

void rt_run_unlock(rt_run *r)
{
    if (!r->locked)
        return;
    if (r->locked == 2) {
        pthread_mutex_lock(&r->lock_mutex);
        r->lock_stop = 1;
        pthread_cond_signal(&r->lock_cv);
        pthread_mutex_unlock(&r->lock_mutex);
        pthread_join(r->lock_thread, NULL);
    }
    pthread_cond_destroy(&r->lock_cv);
    pthread_mutex_destroy(&r->lock_mutex);
    /* Only our own lock: one taken over meanwhile (we were thought dead)
     * belongs to its new owner. Plain stdio: the error record may hold the
     * run's failure, which must reach the exit message unchanged. */
    char held[RUN_LOCK_MAX_BYTES + 1];
    read_start(r->lock_path, held, sizeof held);
    lock_owner o;
    parse_owner(held, &o);
    if (o.pid == (long long)getpid() && !strcmp(o.host, r->host))
        unlink(r->lock_path);
    r->locked = 0;
}
