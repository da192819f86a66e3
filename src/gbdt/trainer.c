/* src/gbdt/trainer.c — rt_gbdt_run: gradient-boosted trees over MPI.
 *
 * Every rank runs the same sequence:
 *   library (found, loaded: agreed) -> this rank's shards (shard.c) ->
 *   run directory -> resume decision and the checkpoint's model
 *   (checkpoint.c) -> the library's distributed booster (create, collective)
 *   -> per round: update (the library's own all-reduces), then ONE
 *   agreement carrying any rank's failure and any stop signal -> when due,
 *   a report with global metrics (metrics.c), and its checkpoint.
 * Rounds play the part of epochs: train.eval_every rounds per report,
 * checkpoint.frequency rounds per checkpoint (a round that is due for one
 * is reported), both at the last round. */
#include <stdio.h>
#include <string.h>
#include "internal.h"
#include "core/fault.h"

/* model.library in this build, or what to install. */
static rt_status pick_library(gbdt_trainer *g)
{
    const char *name = g->cfg->gbdt.library;
    g->lib = rt_gbdt_library_find(name);
    if (g->lib)
        return RT_OK;
    if (!strcmp(name, "xgboost"))
        return RT_ERROR(RT_ERR_UNSUPPORTED, "model.library = \"xgboost\": this build has no "
                        "XGBoost: install libxgboost-dev and reconfigure (./configure "
                        "--with-xgboost), or use model.library = \"lightgbm\"");
    return RT_ERROR(RT_ERR_UNSUPPORTED, "model.library = \"%s\" is not part of this build", name);
}

rt_status gbdt_open_library(gbdt_trainer *g)
{
    const rt_config *c = g->cfg;
    RT_CHECK(pick_library(g));
    if (!c->gbdt.objective[0])
        return RT_ERROR(RT_ERR_CONFIG, "model.arch = \"gbdt\" needs model.objective, the "
                        "library's objective name (e.g. \"binary:logistic\" for xgboost, "
                        "\"binary\" for lightgbm)");
    if (c->scaling.num_workers > 0 && c->scaling.num_workers != g->world)
        return RT_ERROR(RT_ERR_CONFIG, "scaling.num_workers = %d but MPI started %d ranks: "
                        "launch with mpirun -np %d or change scaling.num_workers",
                        c->scaling.num_workers, g->world, c->scaling.num_workers);
    const char *path = c->gbdt.lightgbm_library[0] ? c->gbdt.lightgbm_library : NULL;
    RT_CHECK(g->lib->open(path, g->version, sizeof g->version));
    g->task = g->lib->task(c->gbdt.objective);
    for (int i = 0; i < c->gbdt.num_params; i++)
        g->params[i] = (rt_gbdt_param){c->gbdt.param_keys[i], c->gbdt.param_values[i]};
    return RT_OK;
}

static rt_status create_booster(gbdt_trainer *g)
{
    rt_gbdt_setup s = {
        .comm = g->comm, .objective = g->cfg->gbdt.objective, .num_class = g->num_class,
        .threads = g->threads, .seed = (uint64_t)g->cfg->train.seed, .params = g->params,
        .n_params = g->cfg->gbdt.num_params, .train = &g->train.shard,
        .valid = g->valid.shard.global_rows ? &g->valid.shard : NULL,
        .model = g->resume_model, .model_len = g->resume_len,
    };
    RT_CHECK(g->lib->create(&g->booster, &s));
    rt_free(g->resume_model);
    g->resume_model = NULL;
    return RT_OK;
}

static rt_status setup(gbdt_trainer *g)
{
    RT_CHECK(rt_session_agree(g->session, gbdt_open_library(g)));
    RT_CHECK(gbdt_load_shards(g));
    RT_CHECK(rt_session_agree(g->session, gbdt_digests(g)));
    RT_CHECK(rt_run_open(&g->run, g->session, g->cfg));
    /* Automatic (< 0): its floor; boosting rounds are not measured. */
    double timeout = g->cfg->failure.step_timeout_s;
    rt_session_set_step_timeout(g->session, timeout < 0 ? g->cfg->failure.step_timeout_min_s
                                                        : timeout);
    rt_session_catch_stop_signals(g->session);
    RT_CHECK(gbdt_resume(g));
    return create_booster(g);   /* agreed by the library */
}

static int due(int every, int64_t round)
{
    return every > 0 && round % every == 0;
}

/* The report of the rounds since the last one (training_iteration, time
 * and timestamp are rt_report's), with its checkpoint when one is due. */
static rt_status report_round(gbdt_trainer *g, int64_t round, int ckpt)
{
    rt_metric m[GBDT_MAX_METRICS];
    int count = 0;
    m[count++] = (rt_metric){"round", (double)round};
    RT_CHECK(gbdt_eval_metrics(g, m, &count));
    m[count++] = (rt_metric){"time_per_round_s", g->train_time / (double)g->rounds_since_report};
    m[count++] = (rt_metric){"train_time_s", g->train_time};
    g->train_time = 0;
    g->rounds_since_report = 0;
    if (ckpt)
        RT_CHECK(gbdt_checkpoint(g, m, count));
    else
        RT_CHECK(rt_report(g->run, m, count, NULL));
    g->stop_early = rt_run_should_stop(g->run);   /* the report hook's answer, agreed */
    return RT_OK;
}

/* The checkpoint of a stop signal seen after `round`: with the round's
 * report when one is due (a resumed run goes on with the next round's, so
 * the rows are those of a run never stopped), else without a row. */
static rt_status stop(gbdt_trainer *g, int64_t round, int report_due)
{
    if (report_due)
        RT_CHECK(report_round(g, round, 1));
    else
        RT_CHECK(gbdt_checkpoint(g, NULL, 0));
    return RT_ERROR(RT_STOPPED, "stopped by a signal after round %lld with its checkpoint in "
                    "%s; run the same command again to resume", (long long)round,
                    rt_run_dir(g->run));
}

/* One round, agreed; then its report and checkpoint when due. */
static rt_status train_round(gbdt_trainer *g, int64_t round)
{
    const rt_config *c = g->cfg;
    rt_comm_set_step(g->comm, (long long)round);   /* named by the watchdog */
    double t0 = rt_time_now();
    rt_status st = g->lib->update(g->booster);
    g->train_time += rt_time_now() - t0;
    g->rounds_since_report++;
    int stopping = 0;
    RT_CHECK(rt_session_agree_step(g->session, st, &stopping));
    rt_fault_after_step(g->rank, (long long)round);
    int last = round == c->gbdt.num_rounds;
    int ckpt = due(c->checkpoint.frequency, round) || (last && c->checkpoint.at_end);
    int report = ckpt || last || due(c->train.eval_every, round);
    if (stopping)
        return stop(g, round, report);
    if (report)
        RT_CHECK(report_round(g, round, ckpt));
    return RT_OK;
}

static void gbdt_free(gbdt_trainer *g)
{
    if (g->lib && g->lib->free)
        g->lib->free(g->booster);
    rt_run_close(g->run);
    gbdt_rows_free(&g->train);
    gbdt_rows_free(&g->valid);
    rt_free(g->resume_model);
}

static void log_start(const gbdt_trainer *g, int64_t done)
{
    rt_info("rtrain: %d rank(s) x %d thread(s), gbdt %s %s (%s), %lld training and %lld "
            "evaluation rows x %lld features, %lld of %d rounds done, run dir %s", g->world,
            g->threads, g->lib->name, g->version, g->cfg->gbdt.objective,
            (long long)g->train.shard.global_rows, (long long)g->valid.shard.global_rows,
            (long long)g->train.shard.cols, (long long)done, g->cfg->gbdt.num_rounds,
            rt_run_dir(g->run));
}

rt_status rt_gbdt_run(rt_session *s, const rt_config *cfg)
{
    const rt_context *ctx = rt_session_context(s);
    gbdt_trainer g = {.session = s, .cfg = cfg, .comm = rt_session_comm(s),
                      .rank = ctx->world_rank, .world = ctx->world_size,
                      .last_ckpt_round = -1};
    rt_comm_set_step(g.comm, -1);
    g.threads = rt_session_set_threads(s, cfg->scaling.threads_per_worker);
    rt_status st = setup(&g);
    int64_t round = st == RT_OK ? g.lib->rounds(g.booster) : 0;
    if (st == RT_OK)
        log_start(&g, round);
    while (st == RT_OK && round < cfg->gbdt.num_rounds && !g.stop_early)
        st = train_round(&g, ++round);
    if (g.run) {   /* st is agreed: every rank gets here */
        st = rt_run_fail(g.run, st, round);
        rt_run_print_summary(g.run, st);
    }
    gbdt_free(&g);
    return st;
}
