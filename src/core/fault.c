/* Test-only fault injection (see fault.h). */
#include <stdlib.h>
#include <string.h>
#include "core/fault.h"

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
