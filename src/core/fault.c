/* Test-only fault injection (see fault.h). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/fault.h"

#ifdef RT_FAULT_INJECTION

void rt_fault_notice(int rank) { (void)rank; }

const char *rt_fault_arg(const char *name, int rank, int default_rank)
{
    const char *fault = getenv("RTRAIN_FAULT");
    size_t len = strlen(name);
    if (!fault || strncmp(fault, name, len) != 0 || (fault[len] != '\0' && fault[len] != ':'))
        return NULL;
    const char *r = getenv("RTRAIN_FAULT_RANK");
    int applies = r && *r ? atoi(r) == rank : default_rank < 0 || rank == default_rank;
    if (!applies)
        return NULL;
    return fault[len] == ':' ? fault + len + 1 : fault + len;
}

static int step_listed(const char *list, long long step)
{
    const char *p = list;
    while (*p) {
        char *end;
        long long n = strtoll(p, &end, 10);
        if (end == p)
            return 0;
        if (n == step)
            return 1;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

static const struct { const char *name; int sig; } step_faults[] = {
    {"kill_at_step", SIGKILL},
    {"usr1_at_step", SIGUSR1},
};

void rt_fault_after_step(int rank, long long step)
{
    int sig = 0;
    const char *steps = NULL;
    for (size_t i = 0; i < sizeof step_faults / sizeof step_faults[0] && !sig; i++)
        if ((steps = rt_fault_arg(step_faults[i].name, rank, 0)) != NULL)
            sig = step_faults[i].sig;
    if (!sig || !step_listed(steps, step))
        return;
    const char *dir = getenv("RTRAIN_FAULT_DIR");
    if (dir) {
        char marker[4096];
        snprintf(marker, sizeof marker, "%s/fault.%lld", dir, step);
        int fd = open(marker, O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd < 0)
            return;   /* fired before: disarmed */
        close(fd);
    }
    fprintf(stderr, "rtrain: test fault: rank %d raises %s after step %lld\n", rank,
            strsignal(sig), step);
    fflush(stderr);
    raise(sig);
}

#else

void rt_fault_notice(int rank)
{
    if (rank == 0 && getenv("RTRAIN_FAULT"))
        fprintf(stderr, "rtrain: note: RTRAIN_FAULT is set, but this build has no fault "
                "injection (configure --enable-fault-injection); it is ignored\n");
}

#endif
