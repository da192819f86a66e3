/* src/gbdt/checkpoint.c — the boosted model in the run's checkpoints.
 *
 * A checkpoint is the ckpt module's (directory, commit protocol, index,
 * retention, verify); its /model group holds the library's own model file
 * as one byte dataset, /model/gbdt, with attributes arch, library,
 * library_version, format (the library's native format), rounds,
 * objective and params_digest. `rtrain-ckpt export` writes those bytes as
 * the file the library's own tools load.
 *
 * Before writing, the ranks agree that they hold the same model: each
 * hashes its model bytes (XXH3-64) and the minimum and maximum over ranks
 * must be equal, so a checkpoint never holds one rank's diverged trees.
 * The root's step is the rounds done; epoch and next_batch are 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "internal.h"
#include "train/trainer.h"

#define MODEL_DATASET RT_GBDT_CKPT_MODEL

typedef struct model_bytes { gbdt_trainer *g; char *bytes; size_t len; int64_t rounds; } model_bytes;

rt_status gbdt_digests(gbdt_trainer *g)
{
    const rt_config *c = g->cfg;
    XXH3_state_t *h = XXH3_createState();
    if (!h)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory hashing the parameters");
    XXH3_64bits_reset(h);
    char num[32];
    snprintf(num, sizeof num, "%d", g->num_class);
    const char *parts[] = {c->gbdt.library, c->gbdt.objective, num};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        XXH3_64bits_update(h, parts[i], strlen(parts[i]) + 1);
    for (int i = 0; i < c->gbdt.num_params; i++) {
        XXH3_64bits_update(h, c->gbdt.param_keys[i], strlen(c->gbdt.param_keys[i]) + 1);
        XXH3_64bits_update(h, c->gbdt.param_values[i], strlen(c->gbdt.param_values[i]) + 1);
    }
    snprintf(g->params_digest, sizeof g->params_digest, "xxh3:%016llx",
             (unsigned long long)XXH3_64bits_digest(h));
    XXH3_freeState(h);
    return rt_config_digest(c, g->config_digest, sizeof g->config_digest);
}

static rt_status write_model(rt_ckpt_file *f, void *arg)
{
    const model_bytes *mb = arg;
    const gbdt_trainer *g = mb->g;
    RT_CHECK(rt_ckpt_write_bytes(f, MODEL_DATASET, mb->bytes, mb->len));
    RT_CHECK(rt_ckpt_attr_set_string(f, "/model", "arch", "gbdt"));
    RT_CHECK(rt_ckpt_attr_set_string(f, "/model", "library", g->lib->name));
    RT_CHECK(rt_ckpt_attr_set_string(f, "/model", "library_version", g->version));
    RT_CHECK(rt_ckpt_attr_set_string(f, "/model", "format", g->lib->model_format));
    RT_CHECK(rt_ckpt_attr_set_int(f, "/model", "rounds", mb->rounds));
    RT_CHECK(rt_ckpt_attr_set_string(f, "/model", "objective", g->cfg->gbdt.objective));
    return rt_ckpt_attr_set_string(f, "/model", "params_digest", g->params_digest);
}

/* This rank's model bytes, and the agreement that every rank has the same. */
static rt_status agreed_model(gbdt_trainer *g, model_bytes *mb)
{
    *mb = (model_bytes){.g = g, .rounds = g->lib->rounds(g->booster)};
    rt_status st = g->lib->save(g->booster, &mb->bytes, &mb->len);
    RT_CHECK(rt_session_agree(g->session, st));
    int64_t h[2];
    h[0] = (int64_t)XXH3_64bits(mb->bytes, mb->len);
    h[1] = ~h[0];   /* MIN of both: the smallest hash and ~ the largest */
    RT_CHECK(rt_comm_allreduce(g->comm, h, 2, RT_DTYPE_INT64, RT_REDUCE_MIN));
    if (h[0] != ~h[1])
        return RT_ERROR(RT_ERR_INTERNAL, "the ranks hold different models after round %lld "
                        "(model hashes differ): the library's distributed training diverged; "
                        "no checkpoint is written", (long long)mb->rounds);
    return RT_OK;
}

static rt_train_state train_state(gbdt_trainer *g, model_bytes *mb)
{
    rt_train_state s = {.write_model = write_model, .write_model_arg = mb,
                        .write_model_bytes = (int64_t)mb->len,
                        .step = mb->rounds, .seed = (uint64_t)g->cfg->train.seed,
                        .training_iteration = rt_run_iteration(g->run)};
    snprintf(s.config_digest, sizeof s.config_digest, "%s", g->config_digest);
    return s;
}

rt_status gbdt_checkpoint(gbdt_trainer *g, const rt_metric *m, int count)
{
    model_bytes mb;
    rt_status st = agreed_model(g, &mb);
    rt_train_state s = train_state(g, &mb);
    rt_ckpt_policy policy = trainer_retention(g->cfg);
    if (st == RT_OK && m)
        st = rt_report_checkpoint(g->session, g->run, m, count, &s, &policy, NULL, 0);
    else if (st == RT_OK) {   /* a stop between reports: no report row */
        s.training_iteration = s.training_iteration > 0 ? s.training_iteration : 1;
        rt_ckpt_metric round = {"round", (double)mb.rounds};
        st = rt_ckpt_save(g->comm, rt_run_dir(g->run), &s, &round, 1, &policy, NULL, 0);
    }
    free(mb.bytes);
    if (st == RT_OK)
        g->last_ckpt_round = mb.rounds;
    return st;
}

/* The model bytes of checkpoint dir, which must hold this library's model. */
static rt_status read_model(gbdt_trainer *g, const char *dir)
{
    char path[RT_CKPT_PATH_MAX + 32], library[32] = "";
    snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
    rt_ckpt_file *f = NULL;
    RT_CHECK(rt_ckpt_file_open(&f, g->comm, path));
    int exists = 0;
    rt_status st = rt_ckpt_exists(f, MODEL_DATASET, &exists);
    if (st == RT_OK && !exists)
        st = RT_ERROR(RT_ERR_CONFIG, "checkpoint %s holds no gradient-boosted model (it was "
                      "written by another model.arch): resume from a gbdt run's checkpoint",
                      dir);
    if (st == RT_OK)
        st = rt_ckpt_attr_get_string(f, "/model", "library", library, sizeof library);
    if (st == RT_OK && strcmp(library, g->lib->name) != 0)
        st = RT_ERROR(RT_ERR_CONFIG, "checkpoint %s holds a %s model but model.library = "
                      "\"%s\": use the library it was trained with", dir, library,
                      g->lib->name);
    if (st == RT_OK)
        st = rt_ckpt_read_bytes(f, MODEL_DATASET, &g->resume_model, &g->resume_len);
    rt_status cst = rt_ckpt_file_close(f);
    return st == RT_OK ? cst : st;
}

rt_status gbdt_resume(gbdt_trainer *g)
{
    char dir[RT_CKPT_PATH_MAX];
    int found = RT_RESUME_NONE;
    RT_CHECK(rt_get_checkpoint(g->session, g->run, g->cfg, dir, sizeof dir, &found));
    if (found == RT_RESUME_NONE)
        return RT_OK;
    RT_CHECK(read_model(g, dir));
    rt_train_state s = {0};
    rt_ckpt_info info;
    RT_CHECK(rt_ckpt_load(g->comm, dir, &s, RT_CKPT_LOAD_PROGRESS, &info));
    if (found == RT_RESUME_INIT) {
        rt_info("starting from the model of %s (%lld rounds)", dir, (long long)s.step);
        return RT_OK;
    }
    if (strcmp(info.config_digest, g->config_digest))
        rt_info("note: the configuration differs from the one %s was saved with; "
                "continuing with the current one", dir);
    g->last_ckpt_round = s.step;
    rt_info("resuming from %s: %lld rounds done", dir, (long long)s.step);
    return rt_run_resume_at(g->run, (int)s.training_iteration);
}
