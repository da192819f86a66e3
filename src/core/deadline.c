/* Deadlines for phases that can block inside a library without end (see
 * rtrain/core.h): HDF5 I/O on a failing disk, a file system that stops
 * answering. rt_comm_wait bounds what goes through the communicator; this
 * bounds the rest.
 *
 * One watcher thread per process, started on the first arm, sleeps until
 * the earliest armed deadline (CLOCK_MONOTONIC). Past it, the watcher ends
 * the job through rt_abort with the phase's description: the thread that
 * is stuck cannot do it itself. Slots live in a small fixed table (nothing
 * allocated while arming); a full table arms nothing and says so. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "rtrain/core.h"

#define DEADLINE_SLOTS 16

static struct {
    int armed;
    double at, seconds;   /* monotonic time of the deadline; its length */
    char what[256];
} slots[DEADLINE_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed;
static int watcher_started;

static void *watch(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        int first = -1;
        for (int i = 0; i < DEADLINE_SLOTS; i++)
            if (slots[i].armed && (first < 0 || slots[i].at < slots[first].at))
                first = i;
        if (first < 0) {
            pthread_cond_wait(&changed, &lock);
            continue;
        }
        double now = rt_time_now();
        if (now >= slots[first].at) {
            char what[sizeof slots[0].what];
            double seconds = slots[first].seconds;
            snprintf(what, sizeof what, "%s", slots[first].what);
            pthread_mutex_unlock(&lock);
            rt_abort("%s did not complete within %.0f s (a full or failing file system, or "
                     "a rank that stopped?); aborting the job so that it can be retried",
                     what, seconds);
        }
        double wake = slots[first].at;
        struct timespec ts = {(time_t)wake, (long)((wake - (double)(time_t)wake) * 1e9)};
        pthread_cond_timedwait(&changed, &lock, &ts);
    }
    return NULL;
}

/* Called with the lock held. */
static int start_watcher(void)
{
    if (watcher_started)
        return 0;
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&changed, &a);
    pthread_condattr_destroy(&a);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int err = pthread_create(&t, &attr, watch, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0)
        return -1;
    watcher_started = 1;
    return 0;
}

int rt_deadline_arm(double seconds, const char *what)
{
    if (!(seconds > 0))
        return -1;
    int handle = -1;
    pthread_mutex_lock(&lock);
    if (start_watcher() == 0)
        for (int i = 0; i < DEADLINE_SLOTS && handle < 0; i++)
            if (!slots[i].armed) {
                slots[i].armed = 1;
                slots[i].seconds = seconds;
                slots[i].at = rt_time_now() + seconds;
                snprintf(slots[i].what, sizeof slots[i].what, "%s", what ? what : "a phase");
                handle = i;
            }
    if (handle >= 0)
        pthread_cond_signal(&changed);
    pthread_mutex_unlock(&lock);
    if (handle < 0)
        rt_warn("no deadline could be armed for %s: it is not bounded", what ? what : "a phase");
    return handle;
}

void rt_deadline_disarm(int handle)
{
    if (handle < 0 || handle >= DEADLINE_SLOTS)
        return;
    pthread_mutex_lock(&lock);
    slots[handle].armed = 0;
    pthread_cond_signal(&changed);
    pthread_mutex_unlock(&lock);
}
