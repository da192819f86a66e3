/* rtrain comm: collectives on float slabs and data-parallel gradient
 * averaging (DDP) with buckets.
 *
 * Buckets are contiguous slices of the model's gradient slab (views, no
 * copies), formed from the last layer backwards so that they become final
 * in the order backward produces them. As soon as backward has finished
 * every layer a bucket covers, its MPI_Iallreduce is started, so
 * communication overlaps the rest of backward; rt_ddp_finish waits for all
 * of them before the optimizer step. Every rank builds the same buckets
 * from the same model, so the collectives match. All functions here are
 * collective over the communicator given at creation. */
#ifndef RTRAIN_COMM_H
#define RTRAIN_COMM_H

#include <stddef.h>
#include <mpi.h>
#include "rtrain/core.h"
#include "rtrain/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Call before MPI_Init (rt_session_init does). Chooses the ring algorithm
 * for Open MPI's non-blocking all-reduce (coll/libnbc), which DDP buckets
 * use: for 2 ranks its default heuristic took 25 ms for ResNet18's 44.7 MB
 * of gradients where the ring takes 14 ms and a blocking MPI_Allreduce
 * 17 ms (bench/RESULTS.md). Only sets what the user has not set in the
 * environment (OMPI_MCA_coll_libnbc_iallreduce_algorithm); other MPIs
 * ignore it. Not collective. */
void rt_comm_tune_before_init(void);

/* In-place sum of count floats across comm (any count, beyond INT_MAX too). */
rt_status rt_comm_allreduce_sum(MPI_Comm comm, float *buf, size_t count);
rt_status rt_comm_allreduce_sum_double(MPI_Comm comm, double *buf, size_t count);
rt_status rt_comm_broadcast(MPI_Comm comm, float *buf, size_t count, int root);

/* Waits for n requests; with timeout_s > 0 gives up after that long and
 * returns RT_ERR_TIMEOUT (the requests stay pending: the caller is expected
 * to abort the job). Not collective by itself. */
rt_status rt_comm_wait_all(MPI_Request *reqs, int n, double timeout_s);

/* rt_nn_ctx.reduce_sum for synchronised BatchNorm: sums count floats in
 * place across the communicator *(MPI_Comm *)comm. A failure aborts the
 * job (a layer cannot return a status). Collective. */
void rt_comm_nn_reduce_sum(void *comm, float *buf, size_t count);

/* Parameters and buffers of rank 0 to every rank, before training. */
rt_status rt_comm_broadcast_model(MPI_Comm comm, rt_model *m);

typedef struct rt_ddp rt_ddp;

/* Buckets of at least bucket_bytes (at layer boundaries; one parameter
 * layer may exceed it). Installs a backward hook on m. */
rt_status rt_ddp_create(rt_ddp **out, MPI_Comm comm, rt_model *m, size_t bucket_bytes);
void rt_ddp_free(rt_ddp *d);
int rt_ddp_num_buckets(const rt_ddp *d);
/* A bucket not complete timeout_s after rt_ddp_finish began waiting makes
 * it return RT_ERR_TIMEOUT (0: wait forever). */
void rt_ddp_set_timeout(rt_ddp *d, double timeout_s);
/* sync = 0 for accumulation micro-steps: gradients stay local. */
void rt_ddp_begin_backward(rt_ddp *d, int sync);
/* Starts buckets not yet started and waits for all. Gradients are SUMMED:
 * the loss is scaled by 1/(global batch) so the sum is the global mean. */
rt_status rt_ddp_finish(rt_ddp *d);

#ifdef __cplusplus
}
#endif
#endif
