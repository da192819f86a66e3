/* rtrain comm over MPI: the one public header that names MPI types, for
 * code that needs the MPI communicator behind an rt_comm (parallel HDF5's
 * MPI-IO driver) or that embeds rtrain in an MPI program of its own.
 * Compile with mpicc. */
#ifndef RTRAIN_COMM_MPI_H
#define RTRAIN_COMM_MPI_H

#include <mpi.h>
#include "rtrain/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Not collective: the MPI communicator of c (for an NCCL communicator, the
 * MPI communicator it was bootstrapped from). Valid while c lives. */
MPI_Comm rt_comm_mpi(const rt_comm *c);

/* Not collective: a request for rt_comm_wait (its deadline and watchdog)
 * over an MPI request started on a communicator over the same processes
 * as the rt_comm it is waited on with (a library's collective that
 * rt_comm does not wrap, such as LightGBM's reduce-scatter with its own
 * reduction). */
rt_comm_req rt_comm_mpi_request(MPI_Request r);

/* Collective over comm: an rt_comm over a duplicate of comm (the caller
 * keeps comm). */
rt_status rt_comm_from_mpi(MPI_Comm comm, rt_comm **out);

/* Initialises MPI (threads: FUNNELED) unless the caller already did;
 * *owned = 1 when this call did, and rt_comm_mpi_finalize should then be
 * called at the end (rt_session_init/finalize do both). Before MPI_Init it
 * chooses the ring algorithm for Open MPI's non-blocking all-reduce
 * (coll/libnbc), which DDP buckets use: for 2 ranks its default heuristic
 * took 25 ms for ResNet18's 44.7 MB of gradients where the ring takes 14
 * ms and a blocking MPI_Allreduce 17 ms (bench/RESULTS.md); a user's own
 * OMPI_MCA_coll_libnbc_iallreduce_algorithm wins. Collective over all
 * processes. */
rt_status rt_comm_mpi_init(int *argc, char ***argv, int *owned);
void rt_comm_mpi_finalize(void);

#ifdef __cplusplus
}
#endif
#endif
