/* Internal to the run module: which GPU each rank drives and how the
 * model's tensors are reduced across ranks, decided from every rank's view
 * of its node's GPUs (gathered by rt_session_open_gpu). A pure function of
 * the gathered table, so every rank reaches the same decision and the unit
 * test can try any layout without a GPU. */
#ifndef RTRAIN_RUN_GPU_PLACE_H
#define RTRAIN_RUN_GPU_PLACE_H

#include <stdint.h>
#include "rtrain/core.h"

/* One rank's view: how many GPUs it can see and the UUID of the one it
 * would drive (zeros when it sees none). */
typedef struct rt_gpu_view {
    int32_t count;
    int32_t local_rank, local_size;
    unsigned char uuid[16];
} rt_gpu_view;

/* The device index a rank drives: its node-local rank when the node's
 * GPUs are all visible to it, otherwise the rank's place modulo what it
 * sees (one GPU per task under srun --gpus-per-task=1 gives device 0);
 * -1 when it sees none. */
int rt_gpu_pick_device(int local_rank, int local_size, int count);

/* From every rank's view (views[size], hosts[size]) and comm.backend
 * ("auto", "nccl" or "mpi"): *use_nccl, and *shared = 1 when two ranks of
 * one node would drive the same GPU. Errors (the same on every rank): a
 * rank that sees no GPU, or ranks sharing a GPU with comm.backend = nccl;
 * each message names the host and both counts (ranks, GPUs). auto is nccl
 * unless ranks share a GPU, which NCCL refuses (then mpi), or there is one
 * rank (nothing to reduce). */
rt_status rt_gpu_plan(const rt_gpu_view *views, const char (*hosts)[64], int size,
                      const char *backend, int *use_nccl, int *shared);

#endif
