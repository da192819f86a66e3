/* Checkpoints and resume for the built-in training loop, on the helpers a
 * user loop has too (rt_get_checkpoint decides what to restore and applies
 * run.resume / run.overwrite; rt_report_checkpoint writes an epoch's report
 * and its checkpoint). What is the trainer's own: the
 * current epoch's running sums carried by a checkpoint taken mid-epoch (a
 * stop signal), and restoring its position. A checkpoint is always written
 * after the report it belongs to, so a crash between the two leaves a
 * report row that the next resume drops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "trainer.h"

/* Mid-epoch checkpoints carry the epoch's running sums as these metrics. */
static const char *const partial_names[3] = {"epoch_loss_sum", "epoch_samples",
                                             "epoch_train_time_s"};

static rt_train_state train_state(trainer *t)
{
    rt_train_state s = {
        .model = t->model, .optim = t->optim,
        .optimizer_type = rt_optim_type_name(t->cfg->optimizer.type),
        .epoch = t->epoch, .next_batch = t->next_batch, .step = t->step,
        .training_iteration = rt_run_iteration(t->run),
        .seed = (uint64_t)t->cfg->train.seed,
        .preprocessing = t->preprocessing,
    };
    snprintf(s.config_digest, sizeof s.config_digest, "%s", t->config_digest);
    return s;
}

rt_ckpt_policy trainer_retention(const rt_config *c)
{
    return (rt_ckpt_policy){
        .num_to_keep = c->checkpoint.num_to_keep,
        .score_attribute = c->checkpoint.score_attribute,
        .score_order = strcmp(c->checkpoint.score_order, "min") ? RT_CKPT_SCORE_MAX
                                                                 : RT_CKPT_SCORE_MIN,
        .timeout_s = c->failure.checkpoint_timeout_s,
    };
}

rt_status trainer_report_checkpoint(trainer *t, const rt_metric *metrics, int count)
{
    rt_train_state s = train_state(t);
    rt_ckpt_policy policy = trainer_retention(t->cfg);
    char committed[RT_CKPT_PATH_MAX];
    double t0 = rt_time_now();
    RT_CHECK(rt_report_checkpoint_async(t->session, t->run, metrics, count, &s, &policy,
                                        t->async, committed, sizeof committed));
    t->last_ckpt_step = t->step;
    rt_debug("checkpoint %s %s in %.2f s", committed, t->async ? "copied" : "written",
             rt_time_now() - t0);
    return RT_OK;
}

/* A checkpoint of the current position without a report (a stop signal);
 * base (size bytes) receives its directory's name. */
static rt_status checkpoint_without_report(trainer *t, const rt_ckpt_metric *metrics, int count,
                                           char *base, size_t size)
{
    rt_train_state s = train_state(t);
    rt_ckpt_policy policy = trainer_retention(t->cfg);
    char committed[RT_CKPT_PATH_MAX];
    double t0 = rt_time_now();
    RT_CHECK(rt_ckpt_async_wait(t->async));   /* numbered after the one in flight */
    RT_CHECK(rt_ckpt_save(t->comm, rt_run_dir(t->run), &s, metrics, count, &policy, committed,
                          sizeof committed));
    t->last_ckpt_step = t->step;
    const char *slash = strrchr(committed, '/');
    snprintf(base, size, "%s", slash ? slash + 1 : committed);
    rt_debug("checkpoint %s written in %.2f s", base, rt_time_now() - t0);
    return RT_OK;
}

rt_status trainer_stop(trainer *t)
{
    double sums[2] = {t->es.loss_sum, t->es.samples};
    RT_CHECK(rt_comm_allreduce(t->comm, sums, 2, RT_DTYPE_FLOAT64, RT_REDUCE_SUM));
    RT_CHECK(trainer_sync_buffers(t));
    char name[RT_CKPT_PATH_MAX] = "the checkpoint of this step";
    if (t->last_ckpt_step != t->step) {
        rt_ckpt_metric m[] = {
            {"epoch", (double)t->epoch + 1}, {"step", (double)t->step},
            {partial_names[0], sums[0]}, {partial_names[1], sums[1]},
            {partial_names[2], t->es.train_time},
        };
        RT_CHECK(checkpoint_without_report(t, m, (int)(sizeof m / sizeof m[0]), name,
                                           sizeof name));
    }
    return RT_ERROR(RT_STOPPED, "stopped by a signal at epoch %lld, step %lld after writing "
                    "%s in %s; run the same command again to resume",
                    (long long)t->epoch + 1, (long long)t->step, name, rt_run_dir(t->run));
}

static double info_metric(const rt_ckpt_info *info, const char *name)
{
    for (int i = 0; i < info->num_metrics; i++)
        if (!strcmp(info->metric_names[i], name))
            return info->metric_values[i];
    return 0.0;
}

/* The checkpoint's preprocessing replaces what was fitted (checkpoints
 * written before it was stored have none: the fitted one stays). */
static rt_status take_preprocessing(trainer *t, const char *dir)
{
    char *json = NULL;
    RT_CHECK(rt_ckpt_read_preprocessing(t->comm, dir, &json));
    rt_status st = json ? trainer_apply_preprocessing_json(t, json, dir) : RT_OK;
    free(json);
    return rt_session_agree(t->session, st);
}

static rt_status continue_from(trainer *t, const char *dir)
{
    RT_CHECK(take_preprocessing(t, dir));
    rt_train_state s = train_state(t);
    rt_ckpt_info info;
    RT_CHECK(rt_ckpt_load(t->comm, dir, &s, RT_CKPT_LOAD_ALL, &info));
    if (s.seed != (uint64_t)t->cfg->train.seed)
        return RT_ERROR(RT_ERR_CONFIG, "checkpoint %s was trained with train.seed = %llu but "
                        "the configuration says %lld: resume with train.seed=%llu", dir,
                        (unsigned long long)s.seed, (long long)t->cfg->train.seed,
                        (unsigned long long)s.seed);
    /* Expected when a run is extended (train.epochs) or moved: say so, go on;
     * a model that no longer fits the checkpoint was refused by the load. */
    if (strcmp(info.config_digest, t->config_digest))
        rt_info("note: the configuration differs from the one %s was saved with; "
                "continuing with the current one", dir);
    t->epoch = s.epoch;
    t->next_batch = s.next_batch;
    t->step = s.step;
    t->last_ckpt_step = s.step;
    if (t->next_batch > 0 && t->ctx->world_rank == 0)   /* the sums are global: rank 0 holds them */
        t->es = (epoch_stats){.loss_sum = info_metric(&info, partial_names[0]),
                              .samples = info_metric(&info, partial_names[1]),
                              .train_time = info_metric(&info, partial_names[2])};
    rt_info("resuming from %s: epoch %lld, global batch %lld, step %lld", dir,
            (long long)t->epoch + 1, (long long)t->next_batch, (long long)t->step);
    return rt_run_resume_at_step(t->run, (int)s.training_iteration, (long long)s.step);
}

_Static_assert(RT_MAX_INIT_EXCLUDE <= RT_CKPT_MAX_EXCLUDE,
               "model.init_exclude holds no more patterns than rt_ckpt_load_weights takes");

/* model.init_from: a new run's weights (fine-tuning). Rank 0 reads the
 * file into its model, the outcome is agreed, and the model is broadcast
 * from rank 0 (as rt_prepare_model did with the fresh one). The optimizer
 * state stays fresh; the data's preprocessing is fitted on this run's data. */
static rt_status init_from(trainer *t)
{
    const rt_config *c = t->cfg;
    const char *exclude[RT_MAX_INIT_EXCLUDE];
    for (int i = 0; i < c->init.num_exclude; i++)
        exclude[i] = c->init.exclude[i];
    int loaded = 0, kept = 0;
    rt_status st = RT_OK;
    if (t->ctx->world_rank == 0)
        st = rt_ckpt_load_weights(t->model, c->init.from, exclude, c->init.num_exclude,
                                  &loaded, &kept);
    RT_CHECK(rt_session_agree(t->session, st));
    RT_CHECK(rt_comm_broadcast_model(rt_session_tensor_comm(t->session), t->model));
    if (t->ctx->world_rank == 0)
        rt_info("initialised the model from %s: %d tensors loaded, %d kept their fresh "
                "initialisation (model.init_exclude)", c->init.from, loaded, kept);
    return RT_OK;
}

rt_status trainer_resume(trainer *t)
{
    /* Agreed: a rank that cannot hash the config must not leave the others
     * waiting in the collective calls below. */
    RT_CHECK(rt_session_agree(t->session, rt_config_digest(t->cfg, t->config_digest,
                                                                sizeof t->config_digest)));
    char dir[RT_CKPT_PATH_MAX];
    int found = RT_RESUME_NONE;
    RT_CHECK(rt_get_checkpoint(t->session, t->run, t->cfg, dir, sizeof dir, &found));
    if (found == RT_RESUME_CONTINUE)
        return continue_from(t, dir);
    if (found == RT_RESUME_INIT) {
        rt_train_state s = train_state(t);
        RT_CHECK(take_preprocessing(t, dir));
        RT_CHECK(rt_ckpt_load(t->comm, dir, &s, RT_CKPT_LOAD_MODEL, NULL));
        rt_info("initialised the model from %s", dir);
    }
    /* A run that continues from its own checkpoint has its weights already. */
    if (found == RT_RESUME_NONE && t->cfg->init.from[0])
        return init_from(t);
    return RT_OK;
}
