/* get_checkpoint: which checkpoint a user loop restores from, decided as
 * the built-in trainer decides it (src/cli/trainer_ckpt.c):
 * run.resume_from_checkpoint first (weights for a new run), then, with
 * run.resume = "auto", the newest committed checkpoint of the run that
 * verifies. rt_ckpt_find_latest is collective and its answer is the same
 * on every rank, so the choice is agreed without a further message. */
#include <stdio.h>
#include <string.h>
#include "rtrain/train.h"
#include "rtrain/ckpt.h"

rt_status rt_get_checkpoint(rt_session *s, rt_run *run, const rt_config *cfg, char *dir,
                            size_t size, int *found)
{
    *found = RT_RESUME_NONE;
    if (dir && size > 0)
        dir[0] = '\0';
    rt_status st = RT_OK;
    if (!run || !cfg || !dir || size == 0)
        st = RT_ERROR(RT_ERR_INVALID_ARG, "rt_get_checkpoint: run, cfg and dir are required");
    else if (strlen(cfg->run.resume_from_checkpoint) >= size)
        st = RT_ERROR(RT_ERR_INVALID_ARG, "rt_get_checkpoint: a buffer of %zu bytes is too "
                      "small for the path; pass RT_CKPT_PATH_MAX", size);
    RT_CHECK(rt_session_agree(s, st));
    rt_comm *comm = rt_session_comm(s);
    RT_CHECK(rt_ckpt_cleanup_stale(comm, rt_run_dir(run)));
    if (cfg->run.resume_from_checkpoint[0]) {
        snprintf(dir, size, "%s", cfg->run.resume_from_checkpoint);
        *found = RT_RESUME_INIT;
        return RT_OK;
    }
    if (strcmp(cfg->run.resume, "auto"))
        return RT_OK;
    int latest = 0;
    RT_CHECK(rt_ckpt_find_latest(comm, rt_run_dir(run), dir, size, &latest));
    *found = latest ? RT_RESUME_CONTINUE : RT_RESUME_NONE;
    return RT_OK;
}

rt_status rt_report_checkpoint(rt_session *s, rt_run *run, const rt_metric *metrics,
                               int count, rt_train_state *state,
                               const rt_ckpt_policy *policy, char *committed_dir,
                               size_t committed_dir_size)
{
    rt_status st = RT_OK;
    if (!run || !state || !state->model || count < 0 || (count > 0 && !metrics))
        st = RT_ERROR(RT_ERR_INVALID_ARG, "rt_report_checkpoint: run, state (with its model) "
                      "and metrics are required");
    else if (count > RT_CKPT_MAX_METRICS)
        st = RT_ERROR(RT_ERR_INVALID_ARG, "rt_report_checkpoint: %d metrics, a checkpoint "
                      "stores at most %d", count, RT_CKPT_MAX_METRICS);
    RT_CHECK(rt_session_agree(s, st));
    rt_comm *comm = rt_session_comm(s);
    int64_t index;
    RT_CHECK(rt_ckpt_next_index(comm, rt_run_dir(run), &index));
    char name[64];
    snprintf(name, sizeof name, "checkpoint_%06lld", (long long)index);
    RT_CHECK(rt_report(run, metrics, count, name));
    state->training_iteration = rt_run_iteration(run);
    rt_ckpt_metric m[RT_CKPT_MAX_METRICS];
    for (int i = 0; i < count; i++)
        m[i] = (rt_ckpt_metric){metrics[i].name, metrics[i].value};
    return rt_ckpt_save(comm, rt_run_dir(run), state, m, count, policy, committed_dir,
                        committed_dir_size);
}
