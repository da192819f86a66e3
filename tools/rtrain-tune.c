/* rtrain-tune: hyperparameter search inside one MPI job (rtrain/tune.h).
 *
 *   rtrain-tune [--list] CONFIG [key=value | key=domain(...) ...]
 *   mpirun -np N rtrain-tune [--resume-errored | --restart-errored] CONFIG ...
 *
 * The experiment is STORAGE/NAME (run.storage_path, run.name; NAME defaults
 * to tune_<config file name>, so the same command finds it again). Trial t
 * is an ordinary run directory STORAGE/NAME/trial_<t> that every rtrain tool
 * reads; its values are the search space's trial t (a function of
 * tune.seed and t). --list prints every trial's values and runs nothing.
 *
 * Protocol. Rank 0 records the search space in STORAGE/NAME/tune.json when
 * the experiment starts and compares it when it is run again (a changed
 * space is refused; more tune.num_samples extend the sweep); the outcome is
 * agreed. The job is cut into N/W groups of W ranks (rt_comm_split); each
 * group runs trials one after another in this process. A group's rank 0
 * claims the next trial that has no final record by creating
 * STORAGE/NAME/.claims/<launch>/<trial> with O_EXCL (no locks, no daemon)
 * and broadcasts it to its group; <launch> is one id per launch, so a trial
 * left unfinished by a killed job is claimed again by the next launch and
 * resumes from its checkpoints (an ordinary resume). A trial that fails at
 * run time is retried up to tune.max_failures times; an input error is not.
 * Its outcome goes to trial_<t>/tune_trial.json (written by the group's
 * rank 0, atomically); a trial with that record is never run again, unless
 * a launch says --resume-errored (an ERROR trial's record is dropped: it
 * resumes from its newest checkpoint) or --restart-errored (its directory
 * is removed: it starts again). At the end every rank agrees on the exit
 * code, and rank 0 prints the trials table with the best trial by
 * tune.metric and writes STORAGE/NAME/experiment.csv.
 *
 * ASHA (tune.scheduler = "asha", rtrain/tune.h): after each report the
 * trial's rank 0 looks for a rung due; the values other trials recorded
 * there come from their trial_<t>/tune_rungs.json (each written only by its
 * own trial, atomically), the decision is taken, and the trial's own value
 * and decision are added to its file before the trainer agrees on the
 * answer. A trial stopped there is recorded STOPPED. The records survive a
 * kill: a resumed trial is never judged twice at a rung.
 *
 * asha_promote: a trial pauses at each rung but the last (recorded PAUSED
 * with its rung); a group looking for work first promotes (see
 * claim_promotion), and while others still run it waits for their rungs
 * instead of ending. A promoted trial is an ordinary resume of its run. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "rtrain/rtrain.h"
#include "rtrain/tune.h"
#include "config/internal.h"
#include "core/fs.h"
#include "run/runfiles.h"

enum { MAX_ARGS = 4096, MEDIAN_MIN_SAMPLES = 3 /* Ray's min_samples_required */ };

enum { ERRORED_KEEP, ERRORED_RESUME, ERRORED_RESTART };
/* tune.scheduler, in the order of the schema's names (src/config/schema.c). */
typedef enum scheduler { SCHED_FIFO, SCHED_ASHA, SCHED_ASHA_PROMOTE, SCHED_MEDIAN } scheduler;

typedef struct experiment {
    const char *config;            /* the experiment file */
    int errored;                   /* ERRORED_*: what this launch does with ERROR trials */
    scheduler scheduler;           /* base.tune.scheduler */
    rt_space *space;
    rt_config base;                /* tune.* and run.*: the same for every trial */
    char dir[RT_PATH_MAX];         /* STORAGE/NAME */
    int64_t trials;                /* tune.num_samples x the grid's size */
    char launch[64];               /* this launch's id (claims) */
} experiment;

/* One trial's overrides: the plain ones, the trial's values, then where it
 * runs and (unless the experiment sets train.seed) its own seed. */
typedef struct trial_args {
    char assign[RT_SPACE_MAX_DOMAINS][RT_SPACE_ASSIGN_MAX];
    char where[5][RT_PATH_MAX + 64];
    char *argv[MAX_ARGS];
    int argc;
} trial_args;

/* ---- configuration ------------------------------------------------------------------ */

static int promoting(const experiment *e) { return e->scheduler == SCHED_ASHA_PROMOTE; }

static rt_status trial_args_make(const experiment *e, uint64_t seed, int64_t t, int placed,
                                 trial_args *a)
{
    int plain = rt_space_num_plain_overrides(e->space), nd = rt_space_num_domains(e->space);
    char *const *po = rt_space_plain_overrides(e->space);
    if (plain + nd + 4 > MAX_ARGS)
        return RT_ERROR(RT_ERR_CONFIG, "too many overrides (%d)", plain);
    RT_CHECK(rt_space_trial(e->space, seed, t, a->assign));
    a->argc = 0;
    for (int i = 0; i < plain; i++)
        a->argv[a->argc++] = po[i];
    for (int i = 0; i < nd; i++)
        a->argv[a->argc++] = a->assign[i];
    if (!placed)
        return RT_OK;
    snprintf(a->where[0], sizeof a->where[0], "run.storage_path=\"%s\"", e->dir);
    snprintf(a->where[1], sizeof a->where[1], "run.name=\"trial_%05lld\"", (long long)t);
    snprintf(a->where[2], sizeof a->where[2], "run.overwrite=true");
    int n = 3;
    if (!rt_space_sets(e->space, "train.seed"))   /* each trial its own seed, from (seed, t) */
        snprintf(a->where[n++], sizeof a->where[0], "train.seed=%lluL",
                 (unsigned long long)(rt_rng_key(seed, (uint64_t)t, 0, 0) >> 2));
    if (promoting(e))   /* a paused trial resumes from the checkpoint of its rung */
        snprintf(a->where[n++], sizeof a->where[0], "checkpoint.frequency=1");
    for (int i = 0; i < n; i++)
        a->argv[a->argc++] = a->where[i];
    return RT_OK;
}

static rt_status load_trial(const experiment *e, int64_t t, rt_config *cfg)
{
    static trial_args a;
    RT_CHECK(trial_args_make(e, (uint64_t)e->base.tune.seed, t, 1, &a));
    return rt_config_load_trial(cfg, e->config, a.argc, a.argv);
}

/* STORAGE/NAME, as the trainer resolves a run directory, with NAME
 * tune_<config file name> when run.name is not given. */
static rt_status experiment_dir(experiment *e)
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
static rt_status open_experiment(experiment *e, const char *config, int argc, char **argv)
{
    static trial_args a;
    e->config = config;
    RT_CHECK(rt_space_load(&e->space, config, argc, argv));
    for (int i = 0; i < rt_space_num_domains(e->space); i++) {
        const char *key = rt_space_domain_key(e->space, i);
        if (!strncmp(key, "tune.", 5) || !strncmp(key, "run.", 4))
            return RT_ERROR(RT_ERR_CONFIG, "%s cannot be searched: it belongs to the "
                            "experiment, not to a trial", key);
    }
    RT_CHECK(trial_args_make(e, 0, 0, 0, &a));
    RT_CHECK(rt_config_load_trial(&e->base, config, a.argc, a.argv));
    RT_CHECK(experiment_dir(e));
    e->scheduler = (scheduler)rt_config_enum_value(rt_config_find_key("tune.scheduler"),
                                                   e->base.tune.scheduler);
    e->trials = (int64_t)e->base.tune.num_samples * rt_space_grid_size(e->space);
    return RT_OK;
}

/* ---- --list ------------------------------------------------------------------------- */

static int list_trials(const experiment *e)
{
    static trial_args a;
    printf("experiment %s: %lld trials (%d samples x grid %lld), seed %lld\n", e->dir,
           (long long)e->trials, e->base.tune.num_samples,
           (long long)rt_space_grid_size(e->space), (long long)e->base.tune.seed);
    for (int64_t t = 0; t < e->trials; t++) {
        if (trial_args_make(e, (uint64_t)e->base.tune.seed, t, 0, &a) != RT_OK)
            return RT_EXIT_INPUT;
        printf("trial_%05lld", (long long)t);
        for (int i = 0; i < rt_space_num_domains(e->space); i++)
            printf(" %s", a.assign[i]);
        printf("\n");
    }
    return RT_EXIT_OK;
}

/* ---- the experiment's record ----------------------------------------------------------- */

/* tune.json: the space as JSON (the part a restore must not change). */
static rt_status record_space(const experiment *e)
{
    char path[RT_PATH_MAX + 16], *json = NULL, *old = NULL;
    RT_CHECK(rt_fs_mkdir_p(e->dir, 0755, "the experiment directory (run.storage_path)"));
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/tune.json", e->dir));
    RT_CHECK(rt_space_json(e->space, &json));
    rt_status st = access(path, F_OK) == 0 ? rt_fs_read_small(path, 1 << 20, "tune.json", &old)
                                           : RT_OK;
    if (st == RT_OK && !old)
        st = rt_fs_write_atomic(path, json, 0644);
    else if (st == RT_OK && strcmp(old, json) != 0)
        st = RT_ERROR(RT_ERR_CONFIG, "the search space differs from the one experiment %s "
                      "started with (%s): keep the same domains to continue it, or give a new "
                      "run.name", e->dir, path);
    free(json);
    free(old);
    return st;
}

/* --resume-errored / --restart-errored: the ERROR trials lose their record
 * (they resume from their checkpoints) or their directory (they start
 * again). Rank 0, before any claim. */
static rt_status reopen_errored(const experiment *e)
{
    for (int64_t t = 0; e->errored != ERRORED_KEEP && t < e->trials; t++) {
        char dir[RT_PATH_MAX + 32], path[RT_PATH_MAX + 64];
        json_t *rec = NULL;
        RT_CHECK(rt_fs_path(dir, sizeof dir, "%s/trial_%05lld", e->dir, (long long)t));
        if (rt_runfiles_read_json(&rec, dir, "tune_trial.json") != RT_OK)
            rt_error_clear();   /* unreadable: not an ERROR record */
        const char *status = json_string_value(json_object_get(rec, "status"));
        int errored = status && !strcmp(status, "ERROR");
        json_decref(rec);
        if (!errored)
            continue;
        fprintf(stderr, "rtrain-tune: trial_%05lld (ERROR) %s\n", (long long)t,
                e->errored == ERRORED_RESUME ? "resumes" : "starts again");
        if (e->errored == ERRORED_RESTART) {
            RT_CHECK(rt_fs_remove_tree(dir));
        } else {
            RT_CHECK(rt_fs_path(path, sizeof path, "%s/tune_trial.json", dir));
            if (unlink(path) != 0)
                return RT_ERROR(RT_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
        }
    }
    return RT_OK;
}

static json_t *read_rungs(const experiment *e, int64_t t);
static rt_asha asha_of(const experiment *e);

/* Trial t's value at `rung`, if it has one. */
static int value_at(const experiment *e, int64_t t, int rung, double *value)
{
    char key[32];
    snprintf(key, sizeof key, "%d", rung);
    json_t *rec = read_rungs(e, t), *v = json_object_get(json_object_get(rec, "rungs"), key);
    int has = json_is_number(v);
    if (has)
        *value = json_number_value(v);
    json_decref(rec);
    return has;
}

/* ---- claiming trials -------------------------------------------------------------------
 * Claims are files created with O_EXCL under .claims/<launch>/: "<t>" for a
 * trial started or continued, "p<t>.<rung>" for a promotion (asha_promote),
 * each followed by "done.<name>" when the group is through with it, so that
 * an idle group knows whether others are still running. A promotion is
 * also marked once for all launches (.promoted/<t>.<rung>): a trial is
 * promoted from a rung at most once, and a promotion a kill interrupted is
 * continued by the next launch like any unfinished trial. */

static rt_status claim_file(const experiment *e, const char *name, int *got)
{
    char dir[RT_PATH_MAX + 64], path[RT_PATH_MAX + 128];
    RT_CHECK(rt_fs_path(dir, sizeof dir, "%s/.claims/%s", e->dir, e->launch));
    RT_CHECK(rt_fs_mkdir_p(dir, 0755, "the experiment directory"));
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/%s", dir, name));
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    *got = fd >= 0;
    if (fd >= 0)
        close(fd);
    return RT_OK;
}

/* Trial t's record: its status ("" without one) and the rung it paused at. */
static void trial_state(const experiment *e, int64_t t, char *status, size_t size, int *rung)
{
    char dir[RT_PATH_MAX + 32];
    json_t *rec = NULL;
    snprintf(dir, sizeof dir, "%s/trial_%05lld", e->dir, (long long)t);
    if (rt_runfiles_read_json(&rec, dir, "tune_trial.json") != RT_OK)
        rt_error_clear();   /* unreadable: as if there were none */
    const char *s = json_string_value(json_object_get(rec, "status"));
    snprintf(status, size, "%s", s ? s : "");
    *rung = (int)json_integer_value(json_object_get(rec, "rung"));
    json_decref(rec);
}

static int promoted_mark(const experiment *e, int64_t t, int rung, int create)
{
    char dir[RT_PATH_MAX + 32], path[RT_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/.promoted", e->dir);
    snprintf(path, sizeof path, "%s/%05lld.%d", dir, (long long)t, rung);
    if (!create)
        return access(path, F_OK) == 0;
    if (rt_fs_mkdir_p(dir, 0755, "the experiment directory") != RT_OK) {
        rt_error_clear();
        return 0;
    }
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

/* A trial to start or continue: no record yet, or paused at a rung whose
 * promotion was interrupted. */
static int trial_open(const experiment *e, int64_t t)
{
    char status[32];
    int rung;
    trial_state(e, t, status, sizeof status, &rung);
    return !status[0] || (!strcmp(status, "PAUSED") && promoted_mark(e, t, rung, 0));
}

/* The first open trial this launch has not given to a group yet (-1: none). */
static rt_status claim_next(const experiment *e, int64_t *out)
{
    *out = -1;
    for (int64_t t = 0; t < e->trials; t++) {
        char name[32];
        int got = 0;
        if (!trial_open(e, t))
            continue;
        snprintf(name, sizeof name, "%05lld", (long long)t);
        RT_CHECK(claim_file(e, name, &got));
        if (got) {
            *out = t;
            return RT_OK;
        }
    }
    return RT_OK;
}

/* asha_promote: from the highest rung but the last down, the best of the
 * top floor(n / eta) trials recorded at the rung that is paused there and
 * not promoted from it yet. */
static rt_status claim_promotion(const experiment *e, int64_t *out)
{
    rt_asha a = asha_of(e);
    int rungs[64], nr = rt_asha_rungs(&a, rungs, 64);
    double *values = malloc(((size_t)e->trials + 1) * sizeof *values);
    int64_t *ids = malloc(((size_t)e->trials + 1) * sizeof *ids);
    int *order = malloc(((size_t)e->trials + 1) * sizeof *order);
    *out = -1;
    for (int k = nr - 2; values && ids && order && k >= 0 && *out < 0; k--) {
        int n = 0;
        for (int64_t t = 0; t < e->trials; t++)
            if (value_at(e, t, rungs[k], &values[n]))
                ids[n++] = t;
        int top = rt_asha_top(&a, values, n, order);
        for (int i = 0; i < top && *out < 0; i++) {
            int64_t t = ids[order[i]];
            char status[32], name[48];
            int rung, got = 0;
            trial_state(e, t, status, sizeof status, &rung);
            if (strcmp(status, "PAUSED") != 0 || rung != rungs[k] ||
                !promoted_mark(e, t, rungs[k], 1))
                continue;
            snprintf(name, sizeof name, "p%05lld.%d", (long long)t, rungs[k]);
            rt_status st = claim_file(e, name, &got);
            if (st != RT_OK) {
                free(values);
                free(ids);
                free(order);
                return st;
            }
            *out = t;
        }
    }
    free(values);
    free(ids);
    free(order);
    return RT_OK;
}

/* 1 when a claim of this launch has no "done." file yet: a group is still
 * running it. */
static int others_running(const experiment *e)
{
    char dir[RT_PATH_MAX + 64], done[sizeof dir + 300];
    if (rt_fs_path(dir, sizeof dir, "%s/.claims/%s", e->dir, e->launch) != RT_OK) {
        rt_error_clear();
        return 0;
    }
    DIR *d = opendir(dir);
    int running = 0;
    for (struct dirent *de; d && !running && (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.' || !strncmp(de->d_name, "done.", 5))
            continue;
        snprintf(done, sizeof done, "%s/done.%s", dir, de->d_name);
        running = access(done, F_OK) != 0;
    }
    if (d)
        closedir(d);
    return running;
}

/* The group's next piece of work (rank 0): a promotion, else an open
 * trial; -1: nothing left; -2: nothing now, but others still run trials
 * whose rungs may make one promotable (asha_promote). */
static rt_status next_work(const experiment *e, int64_t *t, char *unit, size_t size)
{
    *t = -1;
    if (promoting(e))
        RT_CHECK(claim_promotion(e, t));
    if (*t >= 0) {
        char status[32];
        int rung;
        trial_state(e, *t, status, sizeof status, &rung);
        snprintf(unit, size, "p%05lld.%d", (long long)*t, rung);
        return RT_OK;
    }
    RT_CHECK(claim_next(e, t));
    snprintf(unit, size, "%05lld", (long long)*t);
    if (*t < 0 && promoting(e) && others_running(e))
        *t = -2;
    return RT_OK;
}

/* The group is through with `unit` (asha_promote's bookkeeping). */
static void work_done(const experiment *e, const char *unit)
{
    char name[64];
    int got;
    snprintf(name, sizeof name, "done.%s", unit);
    if (claim_file(e, name, &got) != RT_OK)
        rt_error_clear();   /* only idle groups' waiting depends on it */
}

/* ---- running trials -------------------------------------------------------------------- */

/* trial_<t>/name holds rec (written atomically: readers never see half). */
static rt_status write_trial_json(const experiment *e, int64_t t, const char *name,
                                  const json_t *rec)
{
    char path[RT_PATH_MAX + 64];
    char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory writing %s", name);
    rt_status st = rt_fs_path(path, sizeof path, "%s/trial_%05lld/%s", e->dir, (long long)t,
                              name);
    if (st == RT_OK)
        st = rt_fs_write_atomic(path, text, 0644);
    free(text);
    return st;
}

/* trial_<t>/tune_trial.json: the outcome, the values, the attempts. */
static rt_status record_trial(const experiment *e, int64_t t, rt_status st, int stopped,
                              int paused, int attempts, const char *error)
{
    static trial_args a;
    RT_CHECK(trial_args_make(e, (uint64_t)e->base.tune.seed, t, 0, &a));
    json_t *values = json_object(), *rec = json_object();
    for (int i = 0; i < rt_space_num_domains(e->space); i++) {
        const char *eq = strchr(a.assign[i], '=');
        json_object_set_new(values, rt_space_domain_key(e->space, i),
                            json_string(eq ? eq + 1 : a.assign[i]));
    }
    json_object_set_new(rec, "trial", json_integer(t));
    json_object_set_new(rec, "status", json_string(st != RT_OK ? "ERROR"
                                                   : stopped ? "STOPPED"
                                                   : paused ? "PAUSED" : "TERMINATED"));
    if (paused)
        json_object_set_new(rec, "rung", json_integer(paused));
    if (stopped)
        json_object_set_new(rec, "stopped_at", json_integer(stopped));
    json_object_set_new(rec, "exit_code", json_integer(rt_status_exit_code(st)));
    json_object_set_new(rec, "attempts", json_integer(attempts));
    json_object_set_new(rec, "values", values);
    if (st != RT_OK)
        json_object_set_new(rec, "error", json_string(error));
    rt_status ws = write_trial_json(e, t, "tune_trial.json", rec);
    json_decref(rec);
    return ws;
}

/* ---- ASHA ------------------------------------------------------------------------------ */

typedef struct asha_hook {
    const experiment *e;
    int64_t t;
    int judge;          /* this rank takes the decisions (the trial's rank 0) */
    int stopped;        /* the trial was stopped at this iteration (asha, median), 0: not */
    int paused;         /* the rung the trial paused at (asha_promote), 0: none */
} asha_hook;

static rt_asha asha_of(const experiment *e)
{
    return (rt_asha){.grace = e->base.tune.grace_period, .eta = e->base.tune.reduction_factor,
                     .max_t = e->base.tune.max_t > 0 ? e->base.tune.max_t
                                                     : e->base.train.epochs,
                     .maximize = !strcmp(e->base.tune.mode, "max")};
}

/* Trial t's tune_rungs.json ({"rungs": {"<iteration>": value}, ...}), or an
 * empty record. */
static json_t *read_rungs(const experiment *e, int64_t t)
{
    char dir[RT_PATH_MAX + 32];
    json_t *rec = NULL;
    snprintf(dir, sizeof dir, "%s/trial_%05lld", e->dir, (long long)t);
    if (rt_runfiles_read_json(&rec, dir, "tune_rungs.json") != RT_OK)
        rt_error_clear();   /* unreadable: as if nothing was recorded */
    if (!json_is_object(rec)) {
        json_decref(rec);
        rec = json_pack("{s:{}}", "rungs");
    }
    return rec;
}

/* The values the other trials recorded at `rung`. */
static int others_at(const experiment *e, int64_t self, int rung, double *values)
{
    char key[32];
    int n = 0;
    snprintf(key, sizeof key, "%d", rung);
    for (int64_t t = 0; t < e->trials; t++) {
        if (t == self)
            continue;
        json_t *rec = read_rungs(e, t);
        json_t *v = json_object_get(json_object_get(rec, "rungs"), key);
        if (json_is_number(v))
            values[n++] = json_number_value(v);
        json_decref(rec);
    }
    return n;
}


/* done[k] = 1 for each rung the trial already has a value at. */
static void rungs_recorded(const json_t *mine, const int *rungs, int nr, int *done)
{
    for (int k = 0; k < nr; k++) {
        char key[32];
        snprintf(key, sizeof key, "%d", rungs[k]);
        done[k] = json_object_get(mine, key) != NULL;
    }
}

/* The report hook (rt_trainer_run_with): judges the trial at a rung due. */
static int asha_judge(void *arg, const rt_metric *m, int count, int iteration)
{
    asha_hook *h = arg;
    const experiment *e = h->e;
    double value = NAN;
    for (int i = 0; i < count; i++)
        if (!strcmp(m[i].name, e->base.tune.metric))
            value = m[i].value;
    if (!h->judge || isnan(value))
        return 0;   /* a report without the metric is not judged */
    rt_asha a = asha_of(e);
    int rungs[64], done[64] = {0}, nr = rt_asha_rungs(&a, rungs, 64);
    json_t *rec = read_rungs(e, h->t), *mine = json_object_get(rec, "rungs");
    rungs_recorded(mine, rungs, nr, done);
    int k = rt_asha_rung_due(&a, iteration, done);
    if (k < 0) {
        json_decref(rec);
        return 0;
    }
    int stop;
    if (promoting(e)) {   /* pause at every rung but the last; promotion decides */
        stop = k < nr - 1;
        h->paused = stop ? rungs[k] : 0;
    } else {
        double *others = malloc(((size_t)e->trials + 1) * sizeof *others);
        int n = others ? others_at(e, h->t, rungs[k], others) : 0;
        stop = others && rt_asha_should_stop(&a, value, others, n);
        free(others);
        h->stopped = stop ? iteration : 0;
    }
    char key[32];
    snprintf(key, sizeof key, "%d", rungs[k]);
    json_object_set_new(mine, key, json_real(value));
    if (stop)
        json_object_set_new(rec, promoting(e) ? "paused_at" : "stopped_at",
                            json_integer(rungs[k]));
    if (write_trial_json(e, h->t, "tune_rungs.json", rec) != RT_OK) {
        fprintf(stderr, "rtrain-tune: warning: %s\n", rt_error_message());
        rt_error_clear();
    }
    json_decref(rec);
    return stop;
}

/* ---- median stopping -------------------------------------------------------------------- */

/* Trial t's values of the metric and their iterations (result.json). */
static int metric_rows(const experiment *e, int64_t t, double **its, double **values)
{
    char dir[RT_PATH_MAX + 32];
    rt_run_rows rows;
    *its = *values = NULL;
    snprintf(dir, sizeof dir, "%s/trial_%05lld", e->dir, (long long)t);
    if (rt_runfiles_read_rows(&rows, dir) != RT_OK) {
        rt_error_clear();
        return 0;
    }
    size_t n = json_array_size(rows.rows), i;
    *its = malloc((n + 1) * sizeof **its);
    *values = malloc((n + 1) * sizeof **values);
    json_t *row;
    int k = 0;
    json_array_foreach(rows.rows, i, row) {
        json_t *v = json_object_get(row, e->base.tune.metric);
        if (*its && *values && json_is_number(v)) {
            (*its)[k] = json_number_value(json_object_get(row, "training_iteration"));
            (*values)[k++] = json_number_value(v);
        }
    }
    rt_runfiles_free_rows(&rows);
    return k;
}

/* The report hook for tune.scheduler = median (Ray's MedianStoppingRule,
 * rtrain/tune.h), judged on the trials' result.json files. */
static int median_judge(void *arg, const rt_metric *m, int count, int iteration)
{
    asha_hook *h = arg;
    const experiment *e = h->e;
    (void)m;
    (void)count;
    if (!h->judge || iteration < e->base.tune.grace_period)
        return 0;
    int maximize = !strcmp(e->base.tune.mode, "max"), n = 0;
    double *its, *values, best = NAN;
    int own = metric_rows(e, h->t, &its, &values);   /* this report included */
    for (int i = 0; i < own; i++)
        if (isnan(best) || (maximize ? values[i] > best : values[i] < best))
            best = values[i];
    free(its);
    free(values);
    double *means = malloc(((size_t)e->trials + 1) * sizeof *means);
    for (int64_t t = 0; means && t < e->trials; t++) {
        if (t == h->t)
            continue;
        int k = metric_rows(e, t, &its, &values);
        means[n++] = rt_median_running_mean(its, values, k, e->base.tune.grace_period,
                                             iteration);
        free(its);
        free(values);
    }
    int stop = means && rt_median_should_stop(best, means, n, MEDIAN_MIN_SAMPLES, maximize);
    free(means);
    h->stopped = stop ? iteration : 0;
    return stop;
}

/* One attempt of trial t on the group: its own session on a copy of the
 * group's communicator (a session takes its communicator over). */
static rt_status run_attempt(const experiment *e, rt_comm *group, int64_t t, asha_hook *h)
{
    static rt_config cfg;
    rt_status st = rt_comm_agree(group, load_trial(e, t, &cfg));
    if (st != RT_OK)
        return st;
    rt_comm *c = NULL;
    RT_CHECK(rt_comm_split(group, 0, rt_comm_rank(group), &c));
    rt_session *s = NULL;
    RT_CHECK(rt_session_init_comm(&s, c));
    h->judge = rt_comm_rank(group) == 0;
    h->stopped = h->paused = 0;
    rt_report_hook hook = e->scheduler == SCHED_MEDIAN ? median_judge
                          : e->scheduler == SCHED_FIFO ? NULL : asha_judge;
    st = rt_trainer_run_with(s, &cfg, hook, h);
    rt_session_finalize(s);
    return st;
}

/* Trial t to its end: retried after a run-time failure (from its newest
 * checkpoint, as any resume), never after an input error or a stop. */
static rt_status run_trial(const experiment *e, rt_comm *group, int64_t t)
{
    int attempts = 0;
    rt_status st;
    asha_hook h = {.e = e, .t = t};
    do {
        rt_error_clear();
        st = run_attempt(e, group, t, &h);
        attempts++;
    } while (st != RT_OK && st != RT_STOPPED && rt_status_exit_code(st) == RT_EXIT_FAILURE &&
             attempts <= e->base.tune.max_failures);
    if (st == RT_STOPPED)   /* not final: the next launch continues it */
        return st;
    /* The trial's failure is recorded and the sweep goes on. */
    char error[2048];
    snprintf(error, sizeof error, "%s", st == RT_OK ? "" : rt_error_message());
    rt_error_clear();
    if (rt_comm_rank(group) == 0)
        fprintf(stderr, "rtrain-tune: trial_%05lld %s after %d attempt%s%s%s\n",
                (long long)t, st != RT_OK ? "failed" : h.stopped ? "stopped early"
                              : h.paused ? "paused at its rung" : "finished",
                attempts,
                attempts == 1 ? "" : "s", st == RT_OK ? "" : ": ", error);
    rt_status rec = rt_comm_rank(group) == 0
                    ? record_trial(e, t, st, h.stopped, h.paused, attempts, error) : RT_OK;
    RT_CHECK(rt_comm_agree(group, rec));
    return st;
}

/* The group's loop: claim (rank 0), broadcast, run, until none is left or
 * a stop signal. A failed trial is recorded and the sweep goes on (as Ray
 * Tune's): the exit code says whether the sweep itself completed. */
static int run_group(const experiment *e, rt_comm *group)
{
    for (;;) {
        int64_t t = -1;
        char unit[48] = "";
        rt_status st = rt_comm_rank(group) == 0 ? next_work(e, &t, unit, sizeof unit) : RT_OK;
        st = rt_comm_agree(group, st);
        if (st == RT_OK)
            st = rt_comm_broadcast(group, &t, 1, RT_DTYPE_INT64, 0);
        if (st != RT_OK)
            return rt_status_exit_code(st);
        if (t == -2) {   /* asha_promote: wait for the others' rungs */
            struct timespec nap = {0, 200 * 1000 * 1000};
            nanosleep(&nap, NULL);
            continue;
        }
        if (t < 0)
            return RT_EXIT_OK;
        st = run_trial(e, group, t);
        if (rt_comm_rank(group) == 0)
            work_done(e, unit);
        if (st == RT_STOPPED)
            return RT_EXIT_PREEMPTED;
    }
}

/* ---- the trials table ------------------------------------------------------------------- */

enum { TABLE_FIXED = 5, MAX_TABLE_COLS = TABLE_FIXED + RT_SPACE_MAX_DOMAINS };

/* The last and the best (by metric and mode) value of `metric` in a run's
 * reports, and how many reports there were. */
static void trial_metric(const char *dir, const char *metric, int maximize, double *last,
                         double *best, long *iterations)
{
    rt_run_rows rows;
    *last = *best = NAN;
    *iterations = 0;
    if (rt_runfiles_read_rows(&rows, dir) != RT_OK) {
        rt_error_clear();
        return;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows.rows, i, row) {
        json_t *v = json_object_get(row, metric);
        (*iterations)++;
        if (!json_is_number(v))
            continue;
        *last = json_number_value(v);
        if (isnan(*best) || (maximize ? *last > *best : *last < *best))
            *best = *last;
    }
    rt_runfiles_free_rows(&rows);
}

/* One row of the table for trial t into cells (strings owned by `store`). */
static void trial_row(const experiment *e, int64_t t, char (*store)[96], const char **cells,
                      double *best_out)
{
    char dir[RT_PATH_MAX + 32];
    json_t *rec = NULL;
    int nd = rt_space_num_domains(e->space), maximize = !strcmp(e->base.tune.mode, "max");
    snprintf(dir, sizeof dir, "%s/trial_%05lld", e->dir, (long long)t);
    if (rt_runfiles_read_json(&rec, dir, "tune_trial.json") != RT_OK)
        rt_error_clear();
    double last, best;
    long its;
    trial_metric(dir, e->base.tune.metric, maximize, &last, &best, &its);
    const char *status = rec ? json_string_value(json_object_get(rec, "status")) : NULL;
    /* A trial ASHA stopped competes with what it reached. */
    *best_out = status && strcmp(status, "ERROR") != 0 ? best : NAN;
    snprintf(store[0], 96, "trial_%05lld", (long long)t);
    snprintf(store[1], 96, "%s", rec ? json_string_value(json_object_get(rec, "status"))
                                     : "PENDING");
    for (int i = 0; i < nd; i++) {
        json_t *v = rec ? json_object_get(json_object_get(rec, "values"),
                                          rt_space_domain_key(e->space, i)) : NULL;
        snprintf(store[2 + i], 96, "%s", json_is_string(v) ? json_string_value(v) : "");
    }
    snprintf(store[2 + nd], 96, "%ld", its);
    rt_runfiles_format_number(store[3 + nd], 96, last);
    rt_runfiles_format_number(store[4 + nd], 96, best);
    for (int c = 0; c < TABLE_FIXED + nd; c++)
        cells[c] = store[c];
    json_decref(rec);
}

/* experiment.csv: the table's cells (rt_runfiles_csv_cell quoting). */
static rt_status write_csv(const experiment *e, const char **cells, int rows, int cols)
{
    char path[RT_PATH_MAX + 32], cell[1024];
    size_t size = 1, used = 0;
    for (int i = 0; i < rows * cols; i++)
        size += 2 * strlen(cells[i]) + 4;
    char *text = malloc(size);
    if (!text)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory for experiment.csv");
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            rt_runfiles_csv_cell(cell, sizeof cell, cells[r * cols + c]);
            used += (size_t)snprintf(text + used, size - used, "%s%s", cell,
                                     c + 1 < cols ? "," : "\n");
        }
    rt_status st = rt_fs_path(path, sizeof path, "%s/experiment.csv", e->dir);
    if (st == RT_OK)
        st = rt_fs_write_atomic(path, text, 0644);
    free(text);
    return st;
}

/* Prints the trials and the best one; writes experiment.csv. */
static rt_status report(const experiment *e)
{
    int nd = rt_space_num_domains(e->space), cols = TABLE_FIXED + nd;
    int64_t rows = e->trials + 1;
    char (*store)[96] = calloc((size_t)(rows * cols), sizeof *store);
    const char **cells = calloc((size_t)(rows * cols), sizeof *cells);
    if (!store || !cells) {
        free(store);
        free(cells);
        return RT_ERROR(RT_ERR_NOMEM, "out of memory for the trials table");
    }
    const char *head[MAX_TABLE_COLS] = {"trial", "status"};
    for (int i = 0; i < nd; i++)
        head[2 + i] = rt_space_domain_key(e->space, i);
    head[2 + nd] = "iterations";
    head[3 + nd] = "last";
    head[4 + nd] = "best";
    memcpy(cells, head, (size_t)cols * sizeof *cells);
    int64_t best_trial = -1;
    double best = NAN;
    int maximize = !strcmp(e->base.tune.mode, "max");
    for (int64_t t = 0; t < e->trials; t++) {
        double b;
        trial_row(e, t, store + (t + 1) * cols, cells + (t + 1) * cols, &b);
        if (!isnan(b) && (isnan(best) || (maximize ? b > best : b < best))) {
            best = b;
            best_trial = t;
        }
    }
    printf("\nexperiment %s: %s (%s)\n", e->dir, e->base.tune.metric, e->base.tune.mode);
    rt_runfiles_print_table(stdout, cells, (int)rows, cols);
    if (best_trial >= 0)
        printf("best: trial_%05lld, %s %s %.6g\n", (long long)best_trial, e->base.tune.metric,
               maximize ? "max" : "min", best);
    rt_status st = write_csv(e, cells, (int)rows, cols);
    free(store);
    free(cells);
    return st;
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: rtrain-tune [--list] CONFIG [key=value | 'key=domain(args)' ...]\n"
               "       mpirun -np N rtrain-tune [--resume-errored | --restart-errored] CONFIG ...\n"
               "domains: uniform(a, b), quniform(a, b, q), loguniform(a, b), randint(a, b),\n"
               "         choice(v, ...), grid(v, ...);\n"
               "in the file: key = { loguniform = [a, b]; };\n");
}

/* One id for this launch, from rank 0's clock and process (claims). */
static rt_status launch_id(rt_session *s, experiment *e)
{
    char id[sizeof e->launch] = "";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(id, sizeof id, "%lld-%09ld-%d", (long long)ts.tv_sec, ts.tv_nsec, (int)getpid());
    RT_CHECK(rt_comm_broadcast(rt_session_comm(s), id, sizeof id, RT_DTYPE_BYTE, 0));
    memcpy(e->launch, id, sizeof id);
    return RT_OK;
}

/* Everything but --list: record, split into groups, run, report. */
static int run_sweep(rt_session *s, experiment *e)
{
    rt_comm *world = rt_session_comm(s), *group = NULL;
    int rank = rt_comm_rank(world), size = rt_comm_size(world);
    int w = e->base.tune.ranks_per_trial;
    rt_status st = size % w == 0 ? RT_OK
                   : RT_ERROR(RT_ERR_CONFIG, "tune.ranks_per_trial = %d does not divide the %d "
                              "ranks: launch a multiple of %d ranks", w, size, w);
    if (st == RT_OK && rank == 0)
        st = record_space(e);
    if (st == RT_OK && rank == 0)
        st = reopen_errored(e);
    st = rt_session_agree(s, st);
    if (st == RT_OK)
        st = launch_id(s, e);
    if (st == RT_OK)
        st = rt_comm_split(world, rank / w, rank, &group);
    if (st != RT_OK)
        return rt_session_exit_code(s, st);
    if (rank == 0)
        fprintf(stderr, "rtrain-tune: %lld trials in %s, %d group%s of %d rank%s\n",
                (long long)e->trials, e->dir, size / w, size / w == 1 ? "" : "s", w,
                w == 1 ? "" : "s");
    int code = run_group(e, group);
    rt_comm_free(group);
    int32_t worst = code;
    if (rt_comm_allreduce(world, &worst, 1, RT_DTYPE_INT32, RT_REDUCE_MAX) != RT_OK)
        worst = RT_EXIT_FAILURE;
    if (rank == 0 && worst != RT_EXIT_PREEMPTED && report(e) != RT_OK)
        fprintf(stderr, "rtrain-tune: error: %s\n", rt_error_message());
    return worst;
}

int main(int argc, char **argv)
{
    static experiment e;
    int list = 0, first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (!strcmp(argv[first], "--list"))
            list = 1;
        else if (!strcmp(argv[first], "--resume-errored"))
            e.errored = ERRORED_RESUME;
        else if (!strcmp(argv[first], "--restart-errored"))
            e.errored = ERRORED_RESTART;
        else if (!strcmp(argv[first], "--help") || !strcmp(argv[first], "-h")) {
            usage(stdout);
            return RT_EXIT_OK;
        } else {
            fprintf(stderr, "rtrain-tune: error: unknown option '%s'\n", argv[first]);
            usage(stderr);
            return RT_EXIT_INPUT;
        }
    }
    if (first >= argc) {
        usage(stderr);
        return RT_EXIT_INPUT;
    }
    char *config = argv[first];
    if (list) {   /* no MPI */
        if (open_experiment(&e, config, argc - first - 1, argv + first + 1) != RT_OK) {
            fprintf(stderr, "rtrain-tune: error: %s\n", rt_error_message());
            return RT_EXIT_INPUT;
        }
        int code = list_trials(&e);
        rt_space_free(e.space);
        return code;
    }
    rt_session *s = NULL;
    rt_status st = rt_session_init(&s, &argc, &argv);
    if (st != RT_OK)
        return rt_session_exit_code(s, st);
    st = rt_session_agree(s, open_experiment(&e, config, argc - first - 1, argv + first + 1));
    int code = st == RT_OK ? run_sweep(s, &e) : rt_session_exit_code(s, st);
    rt_space_free(e.space);
    rt_session_finalize(s);
    return code;
}
