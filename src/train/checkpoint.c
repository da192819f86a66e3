/* get_checkpoint and report-with-checkpoint for any training loop (the
 * built-in one included): which checkpoint a run restores from, what
 * happens to a directory that already holds results, and a report saved
 * with the checkpoint it names.
 *
 * Protocol of rt_get_checkpoint (collective; every decision is rank 0's or
 * comes from a collective call, so it is the same on every rank): remove a
 * crashed save's temporaries; then
 *   run.resume_from_checkpoint = PATH: a new run whose weights come from
 *     PATH (RT_RESUME_INIT);
 *   run.resume = "auto": continue from the newest valid committed
 *     checkpoint of the run directory (RT_RESUME_CONTINUE), found by the
 *     collective rt_ckpt_find_latest;
 *   otherwise the run starts over (RT_RESUME_NONE).
 * A run that starts over where results already are: run.resume = "never"
 * refuses it unless run.overwrite, which removes the old checkpoints (the
 * index first); "auto" warns. Its reports then start at iteration 1. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "rtrain/train.h"
#include "rtrain/ckpt.h"

/* Rank 0's answer to "does the run directory hold results already?"
 * (reports or committed checkpoints), given to every rank. */
static rt_status has_results(rt_session *s, rt_run *run, int *has)
{
    int32_t answer = 0;
    if (rt_session_context(s)->world_rank == 0) {
        char path[RT_PATH_MAX + 32];
        struct stat sb;
        snprintf(path, sizeof path, "%s/result.json", rt_run_dir(run));
        int64_t *idx = NULL;
        int n = 0;
        answer = stat(path, &sb) == 0 && sb.st_size > 0;
        if (rt_ckpt_list(rt_run_dir(run), &idx, &n) == RT_OK && n > 0)
            answer = 1;
        rt_error_clear();
        rt_free(idx);
    }
    RT_CHECK(rt_comm_broadcast(rt_session_comm(s), &answer, 1, RT_DTYPE_INT32, 0));
    *has = answer;
    return RT_OK;
}

static rt_status start_over(rt_session *s, rt_run *run, const rt_config *cfg)
{
    int has = 0;
    RT_CHECK(has_results(s, run, &has));
    int never = !strcmp(cfg->run.resume, "never");
    if (has && never && !cfg->run.overwrite)
        return RT_ERROR(RT_ERR_CONFIG, "run directory %s already holds results and "
                        "run.resume = \"never\": continue it with run.resume=auto, start it "
                        "over with run.overwrite=true, or choose another run.name",
                        rt_run_dir(run));
    if (has && never)
        RT_CHECK(rt_ckpt_remove_all(rt_session_comm(s), rt_run_dir(run)));
    else if (has && rt_session_context(s)->world_rank == 0)
        rt_warn("%s has results but no checkpoint to resume from: starting over",
                rt_run_dir(run));
    return rt_run_resume_at(run, 0);
}

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
        return start_over(s, run, cfg);
    }
    if (!strcmp(cfg->run.resume, "auto")) {
        int latest = 0;
        RT_CHECK(rt_ckpt_find_latest(comm, rt_run_dir(run), dir, size, &latest));
        if (latest) {
            *found = RT_RESUME_CONTINUE;
            return RT_OK;
        }
    }
    return start_over(s, run, cfg);
}

/* The report, then the checkpoint it names: written now, or by w's thread. */
static rt_status report_and_save(rt_session *s, rt_run *run, const rt_metric *metrics,
                                 int count, rt_train_state *state,
                                 const rt_ckpt_policy *policy, rt_ckpt_async *w,
                                 char *committed_dir, size_t committed_dir_size)
{
    rt_status st = RT_OK;
    if (!run || !state || (!state->model && !state->write_model) || count < 0 ||
        (count > 0 && !metrics))
        st = RT_ERROR(RT_ERR_INVALID_ARG, "rt_report_checkpoint: run, state (with its model) "
                      "and metrics are required");
    else if (w && !state->model)
        st = RT_ERROR(RT_ERR_INVALID_ARG, "rt_report_checkpoint_async: a model writer is "
                      "written synchronously; use rt_report_checkpoint");
    else if (count > RT_CKPT_MAX_METRICS)
        st = RT_ERROR(RT_ERR_INVALID_ARG, "rt_report_checkpoint: %d metrics, a checkpoint "
                      "stores at most %d", count, RT_CKPT_MAX_METRICS);
    RT_CHECK(rt_session_agree(s, st));
    rt_comm *comm = rt_session_comm(s);
    RT_CHECK(rt_ckpt_async_wait(w));   /* numbered after the one in flight */
    int64_t index;
    RT_CHECK(rt_ckpt_next_index(comm, rt_run_dir(run), &index));
    char name[64];
    snprintf(name, sizeof name, "checkpoint_%06lld", (long long)index);
    RT_CHECK(rt_report(run, metrics, count, name));
    state->training_iteration = rt_run_iteration(run);
    rt_ckpt_metric m[RT_CKPT_MAX_METRICS];
    for (int i = 0; i < count; i++)
        m[i] = (rt_ckpt_metric){metrics[i].name, metrics[i].value};
    if (w)
        return rt_ckpt_save_async(w, rt_run_dir(run), state, m, count, policy, committed_dir,
                                  committed_dir_size);
    return rt_ckpt_save(comm, rt_run_dir(run), state, m, count, policy, committed_dir,
                        committed_dir_size);
}

rt_status rt_report_checkpoint(rt_session *s, rt_run *run, const rt_metric *metrics,
                               int count, rt_train_state *state,
                               const rt_ckpt_policy *policy, char *committed_dir,
                               size_t committed_dir_size)
{
    return report_and_save(s, run, metrics, count, state, policy, NULL, committed_dir,
                           committed_dir_size);
}

rt_status rt_report_checkpoint_async(rt_session *s, rt_run *run, const rt_metric *metrics,
                                     int count, rt_train_state *state,
                                     const rt_ckpt_policy *policy, rt_ckpt_async *w,
                                     char *committed_dir, size_t committed_dir_size)
{
    return report_and_save(s, run, metrics, count, state, policy, w, committed_dir,
                           committed_dir_size);
}
