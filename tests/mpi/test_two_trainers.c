/* Two trainers in one MPI job: the ranks are split in two groups by parity
 * (rt_comm_split), each group opens a session on its communicator
 * (rt_session_init_comm) and runs the library's training loop
 * (rt_trainer_run) with its own run directory and seed:
 *
 *   mpirun -np 2 test_two_trainers CONFIG [key=value ...]
 *
 * trainer k (k = world rank % 2) adds run.name="trainer_k" and
 * train.seed=k+1 to the overrides. The exit code is the worst of the two
 * trainers' (tests/mpi/two_trainers.test compares their results with two
 * separate runs of rtrain). */
#include <stdio.h>
#include <stdlib.h>
#include "rtrain/rtrain.h"

enum { MAX_OVERRIDES = 64 };

static rt_status run_trainer(rt_session *s, int k, int argc, char **argv)
{
    static rt_config cfg;
    char name[64], seed[64];
    char *overrides[MAX_OVERRIDES + 2];
    int n = 0;
    for (int i = 2; i < argc && n < MAX_OVERRIDES; i++)
        overrides[n++] = argv[i];
    snprintf(name, sizeof name, "run.name=\"trainer_%d\"", k);
    snprintf(seed, sizeof seed, "train.seed=%d", k + 1);
    overrides[n++] = name;
    overrides[n++] = seed;
    RT_CHECK(rt_session_agree(s, rt_config_load(&cfg, argv[1], n, overrides)));
    return rt_trainer_run(s, &cfg);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mpirun -np N test_two_trainers CONFIG [key=value ...]\n");
        return RT_EXIT_INPUT;
    }
    rt_session *world = NULL;
    rt_status st = rt_session_init(&world, &argc, &argv);
    if (st != RT_OK)
        return rt_session_exit_code(world, st);
    int k = rt_session_context(world)->world_rank % 2;
    rt_comm *half = NULL;
    st = rt_comm_split(rt_session_comm(world), k, rt_session_context(world)->world_rank, &half);
    rt_session *s = NULL;
    if (st == RT_OK)
        st = rt_session_init_comm(&s, half);
    if (st == RT_OK)
        st = run_trainer(s, k, argc, argv);
    int32_t code = rt_session_exit_code(s ? s : world, st);
    rt_session_finalize(s);
    /* Every rank of the job ends with the worst code of the two trainers. */
    if (rt_comm_allreduce(rt_session_comm(world), &code, 1, RT_DTYPE_INT32, RT_REDUCE_MAX) !=
        RT_OK)
        code = RT_EXIT_FAILURE;
    rt_session_finalize(world);
    return code;
}
