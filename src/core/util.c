/* Allocation, time and string helpers shared by every module, and the
 * process's HDF5 lock. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rtrain/core.h"
#include "core/fault.h"

rt_status rt_alloc(void *out_ptr, size_t count, size_t elem_size, const char *what)
{
    void **out = (void **)out_ptr;
    *out = NULL;
    if (count == 0)
        count = 1;
    if (elem_size != 0 && count > SIZE_MAX / elem_size)
        return RT_ERROR(RT_ERR_NOMEM, "cannot allocate %s: %zu x %zu bytes overflows",
                        what, count, elem_size);
    size_t bytes = count * elem_size;
    bytes = (bytes + 63) & ~(size_t)63;
    const char *fail = rt_fault_arg("alloc", rt_log_rank() < 0 ? 0 : rt_log_rank(), -1);
    if (fail && what && strcmp(fail, what) == 0)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory allocating %s (%.1f MiB): injected "
                        "(RTRAIN_FAULT, test only)", what, (double)bytes / (1 << 20));
    void *p = aligned_alloc(64, bytes);
    if (!p)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory allocating %s (%.1f MiB)", what,
                        (double)bytes / (1 << 20));
    memset(p, 0, bytes);
    *out = p;
    return RT_OK;
}

void rt_free(void *ptr) { free(ptr); }

double rt_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int rt_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 255 || lb > 255)
        return (int)(la > lb ? la : lb);
    int row[256];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = diag + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* ---- the HDF5 lock (core.h) ---------------------------------------------------- */

static pthread_mutex_t hdf5_mutex;
static pthread_once_t hdf5_mutex_once = PTHREAD_ONCE_INIT;

static void hdf5_mutex_init(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&hdf5_mutex, &a);
    pthread_mutexattr_destroy(&a);
}

void rt_hdf5_lock(void)
{
    pthread_once(&hdf5_mutex_once, hdf5_mutex_init);
    pthread_mutex_lock(&hdf5_mutex);
}

void rt_hdf5_unlock(void) { pthread_mutex_unlock(&hdf5_mutex); }
