/* The NCCL pieces of the CUDA library that the comm module drives
 * (src/comm/comm_nccl.c), declared without any CUDA or NCCL type so that
 * the comm module needs no GPU header and this library no MPI header.
 *
 * Ordering: a collective is queued on the communicator's own stream after
 * an event recorded on the compute stream, so it covers exactly the kernels
 * queued before it was started (DDP starts a bucket right after the layers
 * it covers) and backward goes on while it runs. Its completion is another
 * event, polled by rt_nccl_test; the host waits for it before queuing
 * anything that reads the result. Not collective unless said. */
#ifndef RTRAIN_BACKEND_CUDA_NCCL_H
#define RTRAIN_BACKEND_CUDA_NCCL_H

#include <stddef.h>
#include <stdint.h>
#include "rtrain/core.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { RT_NCCL_ID_BYTES = 128 };   /* sizeof(ncclUniqueId) */

typedef struct rt_nccl rt_nccl;

/* Element types and operations, numbered as rt_dtype and rt_reduce_op. */
enum { RT_NCCL_FLOAT32, RT_NCCL_FLOAT64, RT_NCCL_INT32, RT_NCCL_INT64, RT_NCCL_BYTE };
enum { RT_NCCL_SUM, RT_NCCL_MIN = 2, RT_NCCL_MAX = 3 };

/* Rank 0 makes the id; every rank passes the same bytes to rt_nccl_create. */
rt_status rt_nccl_unique_id(unsigned char id[RT_NCCL_ID_BYTES]);
/* Collective over the `size` ranks holding id: the communicator on the GPU
 * that rt_gpu_open chose. Non-blocking: its creation, and any later call
 * NCCL leaves in progress, take at most timeout_s seconds (0: no limit),
 * else RT_ERR_TIMEOUT. */
rt_status rt_nccl_create(rt_nccl **out, const unsigned char id[RT_NCCL_ID_BYTES], int rank,
                         int size, double timeout_s);
/* Start a collective in place on device memory; *handle is for test. */
rt_status rt_nccl_allreduce(rt_nccl *n, void *buf, size_t count, int dtype, int op,
                            uintptr_t *handle);
rt_status rt_nccl_broadcast(rt_nccl *n, void *buf, size_t count, int dtype, int root,
                            uintptr_t *handle);
/* *done = 1 once the collective has completed on the GPU; the handle is
 * then free for reuse. An asynchronous NCCL error (a peer failed) is
 * returned as RT_ERR_DEVICE. */
rt_status rt_nccl_test(rt_nccl *n, uintptr_t handle, int *done);
/* The deadline of calls NCCL leaves in progress from now on (0: none). */
void rt_nccl_set_timeout(rt_nccl *n, double timeout_s);
/* Ends every operation of the communicator at once (the fatal path). */
void rt_nccl_abort(rt_nccl *n);
void rt_nccl_free(rt_nccl *n);

#ifdef __cplusplus
}
#endif
#endif
