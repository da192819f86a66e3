/* Session checks under mpirun (3 ranks): the context (one node here), the
 * agreement protocol (a failure on one rank reaches every rank with that
 * rank's message), a stop signal seen by one rank reaching all, and
 * warnings from several ranks printed once with a count (the output is
 * checked by tests/mpi/session.test). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "check.h"
#include <mpi.h>
#include "rtrain/run.h"

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

    int failed = check_failures, any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int code = CHECK_DONE();
    rt_session_finalize(s);
    return any ? 1 : code;
}
