/* An experiment of rt_tune_run (src/tune/internal.h): its search space and
 * shared settings, its directory, each trial's configuration, and the
 * record files of a trial (tune_trial.json and the schedulers' files),
 * which are written atomically so that a reader never sees half of one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config/internal.h"
#include "run/runfiles.h"
#include "internal.h"

int tune_maximize(const tune_experiment *e) { return !strcmp(e->base.tune.mode, "max"); }

static int pausing(const tune_experiment *e)
{
    return e->scheduler == SCHED_ASHA_PROMOTE || e->scheduler == SCHED_PBT;
}

/* The overrides that place trial t: its directory, its seed (unless the
 * experiment sets train.seed; PBT's after an exploit is the donor's), and
 * a checkpoint at every report where it may pause (it resumes from there):
 * each report for asha_promote, each perturbation_interval for PBT. */
static int place_trial(const tune_experiment *e, int64_t t, tune_trial_args *a)
{
    char seed[64] = "";
    int n = 0;
    snprintf(a->where[n++], sizeof a->where[0], "run.storage_path=\"%s\"", e->dir);
    snprintf(a->where[n++], sizeof a->where[0], "run.name=\"trial_%05lld\"", (long long)t);
    snprintf(a->where[n++], sizeof a->where[0], "run.overwrite=true");
    if (!rt_space_sets(e->space, "train.seed"))   /* each trial its own seed, from (seed, t) */
        snprintf(seed, sizeof seed, "train.seed=%lluL",
                 (unsigned long long)(rt_rng_key((uint64_t)e->base.tune.seed, (uint64_t)t, 0,
                                                 0) >> 2));
    if (e->scheduler == SCHED_PBT)
        tune_pbt_current(e, t, a, seed, sizeof seed);
    if (seed[0])
        snprintf(a->where[n++], sizeof a->where[0], "%s", seed);
    if (pausing(e))   /* a checkpoint where the trial may pause */
        snprintf(a->where[n++], sizeof a->where[0], "checkpoint.frequency=%d",
                 e->scheduler == SCHED_PBT ? e->base.tune.perturbation_interval : 1);
    return n;
}

rt_status tune_make_args(const tune_experiment *e, int64_t t, int placed, tune_trial_args *a)
{
    int plain = rt_space_num_plain_overrides(e->space), nd = rt_space_num_domains(e->space);
    char *const *po = rt_space_plain_overrides(e->space);
    if (plain + nd + (int)(sizeof a->where / sizeof a->where[0]) > TUNE_MAX_ARGS)
        return RT_ERROR(RT_ERR_CONFIG, "too many overrides (%d)", plain);
    RT_CHECK(rt_space_trial(e->space, (uint64_t)e->base.tune.seed, t, a->assign));
    int n = placed ? place_trial(e, t, a) : 0;
    a->argc = 0;
    for (int i = 0; i < plain; i++)
        a->argv[a->argc++] = po[i];
    for (int i = 0; i < nd; i++)
        a->argv[a->argc++] = a->assign[i];
    for (int i = 0; i < n; i++)
        a->argv[a->argc++] = a->where[i];
    return RT_OK;
}

rt_status tune_load_trial(const tune_experiment *e, int64_t t, rt_config *cfg)
{
    static tune_trial_args a;
    RT_CHECK(tune_make_args(e, t, 1, &a));
    return rt_config_load_trial(cfg, e->config, a.argc, a.argv);
}

/* STORAGE/NAME, as the trainer resolves a run directory, with NAME
 * tune_<config file name> when run.name is not given. */
static rt_status experiment_dir(tune_experiment *e)
{
    const char *storage = e->base.run.storage_path, *env = getenv("RTRAIN_STORAGE");
    if (!storage[0])
        storage = env && env[0] ? env : "rtrain_results";
    if (e->base.run.name[0])
        return rt_fs_path(e->dir, sizeof e->dir, "%s/%s", storage, e->base.run.name);
    const char *file = strrchr(e->config, '/') ? strrchr(e->config, '/') + 1 : e->config;
    return rt_fs_path(e->dir, sizeof e->dir, "%s/tune_%.*s", storage,
                      (int)strcspn(file, "."), file);
}

/* The space, the settings every trial shares (from any valid trial: tune.*
 * and run.* cannot be searched), the directory and the number of trials. */
rt_status tune_open(tune_experiment *e, const char *config, int noverrides,
                    char *const *overrides)
{
    static tune_trial_args a;
    e->config = config;
    RT_CHECK(rt_space_load(&e->space, config, noverrides, overrides));
    for (int i = 0; i < rt_space_num_domains(e->space); i++) {
        const char *key = rt_space_domain_key(e->space, i);
        if (!strncmp(key, "tune.", 5) || !strncmp(key, "run.", 4))
            return RT_ERROR(RT_ERR_CONFIG, "%s cannot be searched: it belongs to the "
                            "experiment, not to a trial", key);
    }
    RT_CHECK(tune_make_args(e, 0, 0, &a));
    RT_CHECK(rt_config_load_trial(&e->base, config, a.argc, a.argv));
    RT_CHECK(experiment_dir(e));
    e->scheduler = (tune_scheduler)rt_config_enum_value(rt_config_find_key("tune.scheduler"),
                                                        e->base.tune.scheduler);
    e->trials = (int64_t)e->base.tune.num_samples * rt_space_grid_size(e->space);
    if (e->scheduler == SCHED_PBT && rt_space_grid_size(e->space) > 1)
        return RT_ERROR(RT_ERR_CONFIG, "tune.scheduler = pbt explores values around the ones "
                        "it drew: use choice instead of grid in the search space");
    return RT_OK;
}

rt_status rt_tune_list(FILE *out, const char *config, int noverrides, char *const *overrides)
{
    static tune_experiment e;
    static tune_trial_args a;
    memset(&e, 0, sizeof e);
    rt_status st = tune_open(&e, config, noverrides, overrides);
    if (st == RT_OK)
        fprintf(out, "experiment %s: %lld trials (%d samples x grid %lld), seed %lld\n", e.dir,
                (long long)e.trials, e.base.tune.num_samples,
                (long long)rt_space_grid_size(e.space), (long long)e.base.tune.seed);
    for (int64_t t = 0; st == RT_OK && t < e.trials; t++) {
        st = tune_make_args(&e, t, 0, &a);
        fprintf(out, "trial_%05lld", (long long)t);
        for (int i = 0; st == RT_OK && i < rt_space_num_domains(e.space); i++)
            fprintf(out, " %s", a.assign[i]);
        fprintf(out, "\n");
    }
    rt_space_free(e.space);
    return st;
}

/* ---- the experiment's record ----------------------------------------------------------- */

/* tune.json: the space as JSON (the part a restore must not change). */
rt_status tune_record_space(const tune_experiment *e)
{
    char path[RT_PATH_MAX + 16], *json = NULL, *old = NULL;
    RT_CHECK(rt_fs_mkdir_p(e->dir, 0755, "the experiment directory (run.storage_path)"));
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/tune.json", e->dir));
    RT_CHECK(rt_space_json(e->space, &json));
    /* The first launch records it; the tasks of a job array start at once. */
    int created = 0;
    rt_status st = rt_fs_create_exclusive(path, json, 0644, &created);
    if (st == RT_OK && !created)
        st = rt_fs_read_small(path, 1 << 20, "tune.json", &old);
    if (st == RT_OK && old && strcmp(old, json) != 0)
        st = RT_ERROR(RT_ERR_CONFIG, "the search space differs from the one experiment %s "
                      "started with (%s): keep the same domains to continue it, or give a new "
                      "run.name", e->dir, path);
    free(json);
    free(old);
    return st;
}

rt_status tune_trial_path(char *buf, size_t size, const tune_experiment *e, int64_t t,
                          const char *name)
{
    return name ? rt_fs_path(buf, size, "%s/trial_%05lld/%s", e->dir, (long long)t, name)
                : rt_fs_path(buf, size, "%s/trial_%05lld", e->dir, (long long)t);
}

json_t *tune_read_trial_file(const tune_experiment *e, int64_t t, const char *name)
{
    char dir[RT_PATH_MAX + 32];
    json_t *rec = NULL;
    if (tune_trial_path(dir, sizeof dir, e, t, NULL) != RT_OK ||
        rt_runfiles_read_json(&rec, dir, name) != RT_OK)
        rt_error_clear();   /* unreadable: as if there were none */
    if (rec && !json_is_object(rec)) {
        json_decref(rec);
        rec = NULL;
    }
    return rec;
}

rt_status tune_write_trial_file(const tune_experiment *e, int64_t t, const char *name,
                                const json_t *rec)
{
    char path[RT_PATH_MAX + 64];
    char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory writing %s", name);
    rt_status st = tune_trial_path(path, sizeof path, e, t, name);
    if (st == RT_OK)
        st = rt_fs_write_atomic(path, text, 0644);
    free(text);
    return st;
}

void tune_trial_state(const tune_experiment *e, int64_t t, char *status, size_t size,
                      int *paused_at)
{
    json_t *rec = tune_read_trial_file(e, t, "tune_trial.json");
    const char *s = json_string_value(json_object_get(rec, "status"));
    snprintf(status, size, "%s", s ? s : "");
    *paused_at = (int)json_integer_value(json_object_get(rec, "paused_at"));
    json_decref(rec);
}

/* --resume-errored / --restart-errored: the ERROR trials lose their record
 * (they resume from their checkpoints) or their directory (they start
 * again). Rank 0, before any claim. */
rt_status tune_reopen_errored(const tune_experiment *e)
{
    for (int64_t t = 0; e->errored != RT_TUNE_ERRORED_KEEP && t < e->trials; t++) {
        char dir[RT_PATH_MAX + 32], path[RT_PATH_MAX + 64], status[32];
        int paused_at;
        tune_trial_state(e, t, status, sizeof status, &paused_at);
        if (strcmp(status, "ERROR") != 0)
            continue;
        fprintf(stderr, "rtrain-tune: trial_%05lld (ERROR) %s\n", (long long)t,
                e->errored == RT_TUNE_ERRORED_RESUME ? "resumes" : "starts again");
        RT_CHECK(tune_trial_path(dir, sizeof dir, e, t, NULL));
        if (e->errored == RT_TUNE_ERRORED_RESTART) {
            RT_CHECK(rt_fs_remove_tree(dir));
        } else {
            RT_CHECK(tune_trial_path(path, sizeof path, e, t, "tune_trial.json"));
            if (unlink(path) != 0)
                return RT_ERROR(RT_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
        }
    }
    return RT_OK;
}

/* The trial's values as they are now (PBT's after its exploits). */
static json_t *values_json(const tune_experiment *e, int64_t t)
{
    static tune_trial_args a;
    json_t *values = json_object();
    if (tune_make_args(e, t, 1, &a) != RT_OK) {
        rt_error_clear();
        return values;
    }
    for (int i = 0; i < rt_space_num_domains(e->space); i++) {
        const char *eq = strchr(a.assign[i], '=');
        json_object_set_new(values, rt_space_domain_key(e->space, i),
                            json_string(eq ? eq + 1 : a.assign[i]));
    }
    return values;
}

/* trial_<t>/tune_trial.json: the outcome, the values, the attempts. */
rt_status tune_record_trial(const tune_experiment *e, int64_t t, const tune_outcome *o)
{
    json_t *rec = json_object();
    rt_status st = o->status;
    json_object_set_new(rec, "trial", json_integer(t));
    json_object_set_new(rec, "status", json_string(st != RT_OK ? "ERROR"
                                                   : o->stopped ? "STOPPED"
                                                   : o->paused ? "PAUSED" : "TERMINATED"));
    if (st == RT_OK && o->paused) {
        json_object_set_new(rec, "paused_at", json_integer(o->paused));
        if (e->scheduler == SCHED_ASHA_PROMOTE)   /* rtrain-results shows the rung */
            json_object_set_new(rec, "rung", json_integer(o->paused));
    }
    if (st == RT_OK && o->stopped)
        json_object_set_new(rec, "stopped_at", json_integer(o->stopped));
    json_object_set_new(rec, "exit_code", json_integer(rt_status_exit_code(st)));
    json_object_set_new(rec, "attempts", json_integer(o->attempts));
    json_object_set_new(rec, "values", values_json(e, t));
    if (st != RT_OK)
        json_object_set_new(rec, "error", json_string(o->error));
    rt_status ws = tune_write_trial_file(e, t, "tune_trial.json", rec);
    json_decref(rec);
    return ws;
}
