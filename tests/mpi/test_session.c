/* Session checks under mpirun (3 ranks): the context (one node here), the
 * agreement protocol (a failure on one rank reaches every rank with that
 * rank's message), sessions on parts of the job (their own context,
 * agreement and stop requests; threads counted over the whole node), a
 * stop signal seen by one rank reaching all, a metric reduction whose
 * buffer one rank cannot allocate (agreed, not a hang), and warnings from
 * several ranks printed once with a count (the output is checked by
 * tests/mpi/session.test). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include <mpi.h>
#include "config.h"
#include "rtrain/run.h"
#include "core/fs.h"

int main(int argc, char **argv)
{
    rt_session *s = NULL;
    CHECK_OK(rt_session_init(&s, &argc, &argv));
    if (!s)
        return 1;
    const rt_context *c = rt_session_context(s);
    CHECK(c->world_size == 3);
    CHECK(c->local_size == 3 && c->local_rank == c->world_rank);
    CHECK(c->num_nodes == 1 && c->node_rank == 0);
    CHECK(c->host[0] != '\0');

    /* Everyone fine: OK everywhere. */
    CHECK(rt_session_agree(s, RT_OK) == RT_OK);
    /* Rank 2 fails: every rank gets its status and message. */
    rt_status local = RT_OK;
    if (c->world_rank == 2)
        local = RT_ERROR(RT_ERR_IO, "cannot read /data/x: Permission denied");
    rt_status agreed = rt_session_agree(s, local);
    CHECK(agreed == RT_ERR_IO);
    CHECK_MSG(strstr(rt_error_message(), "[rank 2 ") &&
              strstr(rt_error_message(), "cannot read /data/x"), "%s", rt_error_message());
    rt_error_clear();

    /* Sessions on parts of the job: rank 0 alone, ranks 1 and 2 together. */
    rt_comm *part = NULL;
    CHECK_OK(rt_comm_split(rt_session_comm(s), c->world_rank == 0 ? 0 : 1, c->world_rank,
                           &part));
    rt_session *sub = NULL;
    CHECK_OK(rt_session_init_comm(&sub, part));
    const rt_context *sc = rt_session_context(sub);
    CHECK(sc->world_size == (c->world_rank == 0 ? 1 : 2));
    CHECK(sc->world_rank == (c->world_rank == 0 ? 0 : c->world_rank - 1));
    CHECK(sc->local_size == sc->world_size && sc->num_nodes == 1 && sc->node_rank == 0);
    /* The node's cores are shared by the 3 ranks of the job, whatever the
     * session: a part must not take all of them. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int want = cores / 3 < 1 ? 1 : (int)(cores / 3);
    CHECK_MSG(rt_session_set_threads(sub, 0) == want, "threads %d, want %d",
              rt_session_set_threads(sub, 0), want);
    /* Rank 2's failure reaches rank 1, named by its rank in the part. */
    local = c->world_rank == 2 ? RT_ERROR(RT_ERR_IO, "only in the second part") : RT_OK;
    agreed = rt_session_agree(sub, local);
    if (c->world_rank == 0)
        CHECK(agreed == RT_OK);
    else
        CHECK_MSG(agreed == RT_ERR_IO && strstr(rt_error_message(), "[rank 1 ") &&
                  strstr(rt_error_message(), "only in the second part"), "%s",
                  rt_error_message());
    rt_error_clear();
    /* A stop request stops the session it was made on, not the others. */
    if (c->world_rank == 0)
        rt_session_request_stop(sub);
    int part_stop = -1;
    CHECK(rt_session_agree_step(sub, RT_OK, &part_stop) == RT_OK);
    CHECK(part_stop == (c->world_rank == 0));
    rt_session_finalize(sub);
    int world_stop = -1;
    CHECK(rt_session_agree_step(s, RT_OK, &world_stop) == RT_OK && world_stop == 0);

    /* A stop signal seen by rank 1 only stops everyone. */
    int stop = -1;
    rt_session_catch_stop_signals(s);
    CHECK(rt_session_agree_step(s, RT_OK, &stop) == RT_OK && stop == 0);
    if (c->world_rank == 1)
        raise(SIGUSR1);
    CHECK(rt_session_agree_step(s, RT_OK, &stop) == RT_OK && stop == 1);

    /* Ranks 1 and 2 warn alike, rank 0 not at all: one line, count 2. */
    rt_session_warn_all(s, c->world_rank ? "dataset cache is cold" : NULL);
    rt_session_warn_all(s, c->world_rank == 2 ? "only on two" : NULL);

    /* A reduction of more metrics than fit on the stack allocates first; a
     * rank that cannot (an injected failure on rank 1) must not leave the
     * others in the all-reduce: every rank gets rank 1's failure. */
    static rt_config cfg;
    rt_config_defaults(&cfg);
    char storage[64];
    snprintf(storage, sizeof storage, "/tmp/rt_test_session_%d", (int)getppid());
    snprintf(cfg.run.storage_path, sizeof cfg.run.storage_path, "%s", storage);
    snprintf(cfg.run.name, sizeof cfg.run.name, "reduce");
    rt_run *run = NULL;
    CHECK_OK(rt_run_open(&run, s, &cfg));
    enum { MANY = 80 };
    static rt_metric many[MANY];
    for (int i = 0; i < MANY; i++)
        many[i] = (rt_metric){"m", (double)(c->world_rank + i)};
    if (run) {
        CHECK_OK(rt_run_reduce_metrics(run, many, MANY, RT_REDUCE_SUM));
        CHECK(many[5].value == 3 * 5 + 0 + 1 + 2);
#ifdef RT_FAULT_INJECTION   /* an injected failure: test-only hooks */
        setenv("RTRAIN_FAULT", "alloc:metric values", 1);
        setenv("RTRAIN_FAULT_RANK", "1", 1);
        rt_status r = rt_run_reduce_metrics(run, many, MANY, RT_REDUCE_SUM);
        unsetenv("RTRAIN_FAULT");
        unsetenv("RTRAIN_FAULT_RANK");
        CHECK_MSG(r == RT_ERR_NOMEM && strstr(rt_error_message(), "[rank 1 ") &&
                  strstr(rt_error_message(), "metric values"), "%s", rt_error_message());
        rt_error_clear();
        CHECK(rt_session_agree(s, RT_OK) == RT_OK);   /* every rank is still in step */
#endif
    }
    rt_run_close(run);
    if (c->world_rank == 0)
        CHECK_OK(rt_fs_remove_tree(storage));

    int failed = check_failures, any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int code = CHECK_DONE();
    rt_session_finalize(s);
    return any ? 1 : code;
}
