/* Population based training (tune.scheduler = "pbt"; the rule is
 * rt_pbt_exploit, rtrain/tune.h), in synchronous rounds.
 *
 * Every trial pauses after each tune.perturbation_interval reports (the
 * report hook; its checkpoint of that report is saved first). Round k is
 * the decision at iteration k x interval: it is taken once every trial
 * that has not failed is paused there, by the first group that finds it
 * so (an exclusive "round.<k>" claim of the launch). Its decision:
 *  1. the trials are ranked by their tune.metric at that iteration
 *     (result.json), and rt_pbt_exploit picks a donor for each of the
 *     bottom quantile;
 *  2. for each recipient: the donor's newest committed checkpoint (the one
 *     of that iteration, verified) is committed as the recipient's newest
 *     checkpoint (rt_ckpt_import: a hard link of the read-only file, a copy
 *     across file systems), then the recipient's trial_<t>/tune_pbt.json
 *     is rewritten with its new values (rt_space_explore of the donor's;
 *     model.* and optimizer.type, which the checkpoint fixes, are the
 *     donor's as they are),
 *     the donor's train.seed (the data order belongs to the state it
 *     continues) and the round in its history;
 *  3. .pbt/round_<k>.json records the round (ranking and exploits): only
 *     then is the round decided.
 * Then each paused trial is continued by a group that claims "r<t>.<k>":
 * an ordinary resume from its newest checkpoint, with its current values,
 * so a recipient's next report continues from the donor's state and its
 * new learning rate applies from the next step. A decision a kill
 * interrupted is taken again by the next launch; a recipient whose
 * history already holds the round is left as it is, and importing a
 * checkpoint twice only adds a second identical newest one. While no
 * trial runs during a decision, each file still has one writer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "run/runfiles.h"
#include "internal.h"

static int interval(const tune_experiment *e) { return e->base.tune.perturbation_interval; }

int tune_pbt_hook(void *arg, const rt_metric *m, int count, int iteration)
{
    tune_hook *h = arg;
    (void)m;
    (void)count;
    /* Pause at each interval before the end (the last segment ends TERMINATED). */
    if (!h->judge || iteration % interval(h->e) != 0 || iteration >= h->e->base.train.epochs)
        return 0;
    h->out.paused = iteration;
    return 1;
}

void tune_pbt_current(const tune_experiment *e, int64_t t, tune_trial_args *a, char *seed,
                      size_t seed_size)
{
    json_t *rec = tune_read_trial_file(e, t, "tune_pbt.json");
    json_t *assign = json_object_get(rec, "assign");
    const char *s = json_string_value(json_object_get(rec, "seed"));
    int nd = rt_space_num_domains(e->space);
    if (json_array_size(assign) == (size_t)nd)
        for (int i = 0; i < nd; i++) {
            const char *v = json_string_value(json_array_get(assign, (size_t)i));
            if (v)
                snprintf(a->assign[i], sizeof a->assign[i], "%s", v);
        }
    if (s)
        snprintf(seed, seed_size, "%s", s);
    json_decref(rec);
}

/* ---- one round's decision --------------------------------------------------------------- */

/* Trial t's value of the metric at report `iteration` (NaN: none). */
static double value_at_iteration(const tune_experiment *e, int64_t t, int iteration)
{
    char dir[RT_PATH_MAX + 32];
    rt_run_rows rows;
    double value = NAN;
    if (tune_trial_path(dir, sizeof dir, e, t, NULL) != RT_OK ||
        rt_runfiles_read_rows(&rows, dir) != RT_OK) {
        rt_error_clear();
        return NAN;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows.rows, i, row) {
        json_t *v = json_object_get(row, e->base.tune.metric);
        if (json_integer_value(json_object_get(row, "training_iteration")) == iteration &&
            json_is_number(v))
            value = json_number_value(v);
    }
    rt_runfiles_free_rows(&rows);
    return value;
}

static rt_status round_path(const tune_experiment *e, int64_t round, char *path, size_t size)
{
    return rt_fs_path(path, size, "%s/.pbt/round_%lld.json", e->dir, (long long)round);
}

static int round_decided(const tune_experiment *e, int64_t round)
{
    char path[RT_PATH_MAX + 64];
    return round_path(e, round, path, sizeof path) == RT_OK && access(path, F_OK) == 0;
}

/* 1 when trial t's history already holds `round` (a decision redone). */
static int has_round(const tune_experiment *e, int64_t t, int64_t round)
{
    json_t *rec = tune_read_trial_file(e, t, "tune_pbt.json"), *h;
    size_t i;
    int has = 0;
    json_array_foreach(json_object_get(rec, "history"), i, h)
        has |= json_integer_value(json_object_get(h, "round")) == round;
    json_decref(rec);
    return has;
}

/* Keys the checkpoint fixes: the model's shape and the optimizer's state
 * slots. A recipient takes the donor's value (drawn per trial, never
 * perturbed), else the donor's checkpoint would not load. */
static int fixed_by_checkpoint(const char *key)
{
    return !strncmp(key, "model.", 6) || !strcmp(key, "optimizer.type");
}

/* Recipient r continues from donor d: d's checkpoint becomes r's newest,
 * then r's values, seed and history are rewritten. */
static rt_status exploit(const tune_experiment *e, int64_t r, int64_t d, int64_t round,
                         int iteration)
{
    static tune_trial_args da, ra;
    char donor_dir[RT_PATH_MAX + 32], recipient_dir[RT_PATH_MAX + 32], ckpt[RT_CKPT_PATH_MAX];
    char imported[RT_CKPT_PATH_MAX];
    char explored[RT_SPACE_MAX_DOMAINS][RT_SPACE_ASSIGN_MAX];
    int found = 0;
    RT_CHECK(tune_trial_path(donor_dir, sizeof donor_dir, e, d, NULL));
    RT_CHECK(tune_trial_path(recipient_dir, sizeof recipient_dir, e, r, NULL));
    RT_CHECK(rt_ckpt_find_latest(NULL, donor_dir, ckpt, sizeof ckpt, &found));
    if (!found)
        return RT_ERROR(RT_ERR_FORMAT, "PBT: trial_%05lld has no checkpoint for "
                        "trial_%05lld to continue from", (long long)d, (long long)r);
    RT_CHECK(rt_ckpt_import(recipient_dir, ckpt, imported, sizeof imported));
    RT_CHECK(tune_make_args(e, d, 1, &da));   /* the donor's values and seed now */
    RT_CHECK(rt_space_explore(e->space, (uint64_t)e->base.tune.seed, r, round,
                              e->base.tune.resample_probability, da.assign, explored));
    for (int i = 0; i < rt_space_num_domains(e->space); i++)
        if (fixed_by_checkpoint(rt_space_domain_key(e->space, i)))
            snprintf(explored[i], sizeof explored[i], "%s", da.assign[i]);
    RT_CHECK(tune_make_args(e, r, 1, &ra));   /* the recipient's, for its history */
    json_t *rec = tune_read_trial_file(e, r, "tune_pbt.json");
    if (!rec)
        rec = json_object();
    json_t *assign = json_array(), *before = json_array(), *history;
    for (int i = 0; i < rt_space_num_domains(e->space); i++) {
        json_array_append_new(assign, json_string(explored[i]));
        json_array_append_new(before, json_string(ra.assign[i]));
    }
    json_object_set_new(rec, "assign", assign);
    for (int i = 0; i < (int)(sizeof da.where / sizeof da.where[0]); i++)
        if (!strncmp(da.where[i], "train.seed=", 11))
            json_object_set_new(rec, "seed", json_string(da.where[i]));
    if (!json_is_array(history = json_object_get(rec, "history")))
        json_object_set_new(rec, "history", history = json_array());
    json_array_append_new(history, json_pack("{s:I,s:i,s:I,s:s,s:o,s:O}", "round",
                                             (json_int_t)round, "iteration", iteration,
                                             "donor", (json_int_t)d, "checkpoint", imported,
                                             "before", before, "after", assign));
    rt_status st = tune_write_trial_file(e, r, "tune_pbt.json", rec);
    json_decref(rec);
    fprintf(stderr, "rtrain-tune: PBT round %lld: trial_%05lld continues from trial_%05lld\n",
            (long long)round, (long long)r, (long long)d);
    return st;
}

/* Decides round `round` for the trials paused at its iteration. */
static rt_status decide_round(const tune_experiment *e, int64_t round, const int64_t *ids, int n)
{
    int iteration = (int)(round * interval(e));
    double *values = malloc(((size_t)n + 1) * sizeof *values);
    int *donor = malloc(((size_t)n + 1) * sizeof *donor);
    rt_status st = values && donor ? RT_OK
                   : RT_ERROR(RT_ERR_NOMEM, "out of memory deciding a PBT round");
    for (int i = 0; st == RT_OK && i < n; i++)
        values[i] = value_at_iteration(e, ids[i], iteration);
    if (st == RT_OK && rt_pbt_exploit(values, ids, n, e->base.tune.quantile_fraction,
                                      tune_maximize(e), (uint64_t)e->base.tune.seed, round,
                                      donor) < 0)
        st = RT_ERROR(RT_ERR_NOMEM, "out of memory deciding a PBT round");
    json_t *rec = json_pack("{s:I,s:i,s:[],s:[]}", "round", (json_int_t)round, "iteration",
                            iteration, "ranking", "exploits");
    for (int i = 0; st == RT_OK && i < n; i++) {
        json_array_append_new(json_object_get(rec, "ranking"),
                              json_pack("{s:I,s:o}", "trial", (json_int_t)ids[i], "value",
                                        isnan(values[i]) ? json_null() : json_real(values[i])));
        if (donor[i] < 0)
            continue;
        json_array_append_new(json_object_get(rec, "exploits"),
                              json_pack("{s:I,s:I}", "recipient", (json_int_t)ids[i], "donor",
                                        (json_int_t)ids[donor[i]]));
        if (!has_round(e, ids[i], round))
            st = exploit(e, ids[i], ids[donor[i]], round, iteration);
    }
    char dir[RT_PATH_MAX + 16], path[RT_PATH_MAX + 64], *text = NULL;
    if (st == RT_OK)
        st = rt_fs_path(dir, sizeof dir, "%s/.pbt", e->dir);
    if (st == RT_OK)
        st = rt_fs_mkdir_p(dir, 0755, "the experiment directory");
    if (st == RT_OK)
        st = round_path(e, round, path, sizeof path);
    if (st == RT_OK && !(text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER)))
        st = RT_ERROR(RT_ERR_NOMEM, "out of memory writing a PBT round");
    if (st == RT_OK)
        st = rt_fs_write_atomic(path, text, 0644);   /* the round is decided */
    free(text);
    json_decref(rec);
    free(values);
    free(donor);
    return st;
}

/* ---- the next work -------------------------------------------------------------------- */

/* The population now: the trials paused at the lowest iteration (ids,
 * *n, *lowest), and whether every trial that has not failed is paused
 * there (the round can be decided). */
static int gather(const tune_experiment *e, int64_t *ids, int *n, int *lowest)
{
    int all_paused = 1, others = 0;   /* others: trials not failed and not paused */
    *n = 0;
    *lowest = 0;
    for (int64_t t = 0; t < e->trials; t++) {
        char status[32];
        int at;
        tune_trial_state(e, t, status, sizeof status, &at);
        if (!strcmp(status, "ERROR"))
            continue;
        if (strcmp(status, "PAUSED") != 0) {
            others++;
            continue;
        }
        if (*n > 0 && at > *lowest) {
            all_paused = 0;   /* paused further on than the lowest */
            continue;
        }
        if (*n > 0 && at < *lowest) {
            all_paused = 0;   /* those gathered so far are further on */
            *n = 0;
        }
        *lowest = at;
        ids[(*n)++] = t;
    }
    return all_paused && others == 0 && *n > 0;
}

/* 1 while a group decides `round` (its lock is fresh: a group that died
 * deciding does not hold the others up for longer than
 * tune.claim_timeout_s). */
static int round_locked(const tune_experiment *e, int64_t round)
{
    char path[RT_PATH_MAX + 128];
    struct stat sb;
    if (rt_fs_path(path, sizeof path, "%s/.claims/%s/round.%lld", e->dir, e->launch,
                   (long long)round) != RT_OK) {
        rt_error_clear();
        return 0;
    }
    return stat(path, &sb) == 0 &&
           difftime(time(NULL), sb.st_mtime) <= e->base.tune.claim_timeout_s;
}

/* Claims the first trial of ids (paused at `round`'s iteration) that no
 * group has continued yet. */
static rt_status claim_continuation(const tune_experiment *e, const int64_t *ids, int n,
                                    int64_t round, tune_work *w)
{
    for (int i = 0; i < n; i++) {
        int got = 0;
        snprintf(w->unit, sizeof w->unit, "r%05lld.%lld", (long long)ids[i], (long long)round);
        RT_CHECK(tune_claim_unit(e, w->unit, &got));
        if (got) {
            w->t = ids[i];
            return RT_OK;
        }
    }
    return RT_OK;
}

rt_status tune_pbt_next(const tune_experiment *e, tune_work *w)
{
    RT_CHECK(tune_claim_new(e, w));   /* round 0: trials not started yet */
    if (w->t >= 0)
        return RT_OK;
    int64_t *ids = malloc(((size_t)e->trials + 1) * sizeof *ids);
    if (!ids)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory choosing PBT work");
    int n = 0, lowest = 0, all_paused = gather(e, ids, &n, &lowest);
    int64_t round = lowest / interval(e);
    rt_status st = RT_OK;
    if (n > 0 && !round_decided(e, round) && all_paused) {
        char lock[48];
        int got = 0;
        snprintf(lock, sizeof lock, "round.%lld", (long long)round);
        st = tune_claim_file(e, lock, &got);
        if (st == RT_OK && got)
            st = decide_round(e, round, ids, n);
    }
    if (st == RT_OK && n > 0 && round_decided(e, round))
        st = claim_continuation(e, ids, n, round, w);
    /* Nothing now, but the others' trials will reach a round, or one is
     * being decided. */
    if (st == RT_OK && w->t < 0 &&
        (tune_others_running(e) || (n > 0 && !round_decided(e, round) &&
                                    round_locked(e, round))))
        w->t = -2;
    free(ids);
    return st;
}
