/* GPU placement (see gpu_place.h). */
#include <string.h>
#include "run/gpu_place.h"

int rt_gpu_pick_device(int local_rank, int local_size, int count)
{
    if (count <= 0)
        return -1;
    return count >= local_size ? local_rank : local_rank % count;
}

/* Distinct GPUs among the ranks of `host` (by UUID), and its rank count. */
static void count_on_host(const rt_gpu_view *views, const char (*hosts)[64], int size,
                          const char *host, int *ranks, int *gpus, int *shared)
{
    *ranks = *gpus = 0;
    for (int r = 0; r < size; r++) {
        if (strcmp(hosts[r], host) != 0)
            continue;
        (*ranks)++;
        int seen_before = 0;
        for (int q = 0; q < r && !seen_before; q++)
            seen_before = !strcmp(hosts[q], host) && !memcmp(views[q].uuid, views[r].uuid, 16);
        if (seen_before)
            *shared = 1;
        else
            (*gpus)++;
    }
}

rt_status rt_gpu_plan(const rt_gpu_view *views, const char (*hosts)[64], int size,
                      const char *backend, int *use_nccl, int *shared)
{
    *use_nccl = 0;
    *shared = 0;
    for (int r = 0; r < size; r++)
        if (views[r].count <= 0)
            return RT_ERROR(RT_ERR_CONFIG, "scaling.use_gpu = true, but rank %d on host %s "
                            "sees no GPU (the node runs %d rank%s, each needing one): check "
                            "CUDA_VISIBLE_DEVICES and ask for GPUs (srun --gpus-per-task=1), "
                            "or set scaling.use_gpu = false", r, hosts[r],
                            views[r].local_size, views[r].local_size == 1 ? "" : "s");
    for (int r = 0; r < size; r++) {
        int ranks, gpus, host_shared = 0;
        count_on_host(views, hosts, size, hosts[r], &ranks, &gpus, &host_shared);
        if (host_shared && !strcmp(backend, "nccl"))
            return RT_ERROR(RT_ERR_CONFIG, "host %s runs %d ranks on %d GPU%s, and NCCL needs "
                            "a GPU per rank (comm.backend = nccl): start at most %d rank%s per "
                            "node (mpirun --map-by ppr:%d:node, srun --gpus-per-task=1), or "
                            "set comm.backend = mpi to let ranks share a GPU", hosts[r], ranks,
                            gpus, gpus == 1 ? "" : "s", gpus, gpus == 1 ? "" : "s", gpus);
        *shared |= host_shared;
    }
    /* One rank reduces nothing: auto makes no NCCL communicator then. */
    *use_nccl = !strcmp(backend, "nccl") || (!strcmp(backend, "auto") && !*shared && size > 1);
    return RT_OK;
}
