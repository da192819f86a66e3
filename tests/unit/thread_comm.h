/* A test double of rt_comm: the ranks are threads of one process, so that
 * unit tests can check collective code paths (synchronised BatchNorm)
 * without mpirun. Collectives complete before their start returns (each
 * rank waits for the others at a barrier); only SUM/MIN/MAX all-reduces
 * of float32, float64 and int32, broadcasts and all-gathers exist. */
#ifndef RTRAIN_TESTS_THREAD_COMM_H
#define RTRAIN_TESTS_THREAD_COMM_H

#include <pthread.h>
#include "rtrain/comm.h"

#define THREAD_COMM_MAX 8

typedef struct thread_group {
    int size;
    pthread_barrier_t barrier;
    void *slot[THREAD_COMM_MAX];   /* each rank's buffer during a collective */
} thread_group;

void thread_group_init(thread_group *g, int size);
void thread_group_destroy(thread_group *g);
/* Called by the thread of `rank`, all ranks at once (it is collective):
 * its communicator over the group. Free with rt_comm_free from that
 * thread. */
rt_status thread_comm_create(thread_group *g, int rank, rt_comm **out);

#endif
