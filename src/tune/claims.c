/* Which group runs what (src/tune/internal.h), with nothing but files: no
 * locks, no daemon, no database.
 *
 * Claims are files under STORAGE/NAME/.claims/LAUNCH/. LAUNCH is one id per
 * launch (rank 0's clock and process), so a trial that a killed launch
 * left unfinished is claimed again by the next one and resumes from its
 * checkpoints; the tasks of a Slurm job array share LAUNCH =
 * array-<SLURM_ARRAY_JOB_ID>, so that they divide one experiment's trials
 * between them. A claim is made by link(2) of a file holding its owner
 * ("<task> <restart>", from SLURM_ARRAY_TASK_ID and SLURM_RESTART_COUNT) to
 * the claim's name: exactly one creator succeeds, also over NFS. Names:
 * "<t>" for a trial started or continued, "p<t>.<rung>" for an
 * asha_promote promotion, "r<t>.<round>" for a PBT trial continued in a
 * round; each followed by "done.<name>" when its group is through with it.
 *
 * Liveness. The group running a claim refreshes the claim's modification
 * time at every report (tune_work_alive); a claim not done whose time is
 * older than tune.claim_timeout_s belongs to a task that died. A group
 * with nothing to claim waits for live claims only (asha_promote and PBT
 * wait for the others' rungs and rounds). A requeued array task (a higher
 * restart count of the same task) takes its own dead claims over: it
 * creates "<name>.<task>.<restart>" exclusively (so that only one of its
 * groups does) and rewrites the owner. Another task's dead claim is left
 * to the next launch. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

static rt_status claims_dir(const tune_experiment *e, char *dir, size_t size)
{
    RT_CHECK(rt_fs_path(dir, size, "%s/.claims/%s", e->dir, e->launch));
    return rt_fs_mkdir_p(dir, 0755, "the experiment directory");
}

/* The launch's id and this task's place in a job array, from rank 0's
 * environment and clock, broadcast. */
rt_status tune_launch(tune_experiment *e, rt_comm *world)
{
    char id[sizeof e->launch] = "";
    int32_t task_restart[2] = {0, 0};
    const char *array = getenv("SLURM_ARRAY_JOB_ID"), *task = getenv("SLURM_ARRAY_TASK_ID");
    const char *restart = getenv("SLURM_RESTART_COUNT");
    if (array && array[0]) {
        snprintf(id, sizeof id, "array-%.40s", array);
        task_restart[0] = task ? atoi(task) : 0;
        task_restart[1] = restart ? atoi(restart) : 0;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(id, sizeof id, "%lld-%09ld-%d", (long long)ts.tv_sec, ts.tv_nsec, (int)getpid());
    }
    RT_CHECK(rt_comm_broadcast(world, id, sizeof id, RT_DTYPE_BYTE, 0));
    RT_CHECK(rt_comm_broadcast(world, task_restart, 2, RT_DTYPE_INT32, 0));
    memcpy(e->launch, id, sizeof id);
    e->task = task_restart[0];
    e->restart = task_restart[1];
    return RT_OK;
}

rt_status tune_claim_file(const tune_experiment *e, const char *name, int *got)
{
    char dir[RT_PATH_MAX + 64], path[RT_PATH_MAX + 128];
    RT_CHECK(claims_dir(e, dir, sizeof dir));
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/%s", dir, name));
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    *got = fd >= 0;
    if (fd >= 0)
        close(fd);
    else if (errno != EEXIST)
        return RT_ERROR(RT_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    return RT_OK;
}

/* Creates claim `name` holding this launch's owner, by link(2). */
static rt_status link_claim(const tune_experiment *e, const char *dir, const char *name,
                            int *got)
{
    char tmp[RT_PATH_MAX + 128], path[RT_PATH_MAX + 128], owner[64];
    snprintf(owner, sizeof owner, "%d %d\n", e->task, e->restart);
    RT_CHECK(rt_fs_path(tmp, sizeof tmp, "%s/.owner.%d.%s", dir, (int)getpid(), name));
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/%s", dir, name));
    RT_CHECK(rt_fs_write_file(tmp, owner, 0644));
    int rc = link(tmp, path), err = errno;
    unlink(tmp);
    *got = rc == 0;
    if (rc != 0 && err != EEXIST)
        return RT_ERROR(RT_ERR_IO, "cannot create the claim %s: %s", path, strerror(err));
    return RT_OK;
}

static int claim_done(const char *dir, const char *name)
{
    char done[RT_PATH_MAX + 160];
    snprintf(done, sizeof done, "%s/done.%s", dir, name);
    return access(done, F_OK) == 0;
}

/* A requeued array task takes over its own claim left by an earlier run
 * of the task (see the file's comment). */
static rt_status take_over(const tune_experiment *e, const char *dir, const char *name,
                           int *got)
{
    char path[RT_PATH_MAX + 128], *text = NULL, mark[96];
    int task = -1, restart = -1;
    *got = 0;
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/%s", dir, name));
    if (rt_fs_read_small(path, 64, "a claim", &text) != RT_OK) {
        rt_error_clear();   /* gone or unreadable: not ours to take */
        return RT_OK;
    }
    int parsed = sscanf(text, "%d %d", &task, &restart) == 2;
    free(text);
    if (!parsed || task != e->task || restart >= e->restart || claim_done(dir, name))
        return RT_OK;
    snprintf(mark, sizeof mark, "%s.%d.%d", name, e->task, e->restart);
    RT_CHECK(tune_claim_file(e, mark, got));
    if (*got) {
        char owner[64];
        snprintf(owner, sizeof owner, "%d %d\n", e->task, e->restart);
        RT_CHECK(rt_fs_write_atomic(path, owner, 0644));
    }
    return RT_OK;
}

/* Claims unit `name` for this launch: a new claim, or one of this task's
 * own from before a requeue. */
rt_status tune_claim_unit(const tune_experiment *e, const char *name, int *got)
{
    char dir[RT_PATH_MAX + 64], path[RT_PATH_MAX + 128];
    RT_CHECK(claims_dir(e, dir, sizeof dir));
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/%s", dir, name));
    *got = 0;
    if (access(path, F_OK) != 0)   /* the common case of a taken claim costs one stat */
        RT_CHECK(link_claim(e, dir, name, got));
    if (!*got && e->restart > 0)
        RT_CHECK(take_over(e, dir, name, got));
    return RT_OK;
}

static int promoted_mark(const tune_experiment *e, int64_t t, int rung, int create)
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

/* A trial to start or continue: no record yet, or (asha_promote) paused at
 * a rung whose promotion was interrupted. */
static int trial_open(const tune_experiment *e, int64_t t)
{
    char status[32];
    int paused_at;
    tune_trial_state(e, t, status, sizeof status, &paused_at);
    return !status[0] || (e->scheduler == SCHED_ASHA_PROMOTE && !strcmp(status, "PAUSED") &&
                          promoted_mark(e, t, paused_at, 0));
}

/* The first open trial no group of this launch has claimed (-1: none). */
rt_status tune_claim_new(const tune_experiment *e, tune_work *w)
{
    w->t = -1;
    for (int64_t t = 0; t < e->trials; t++) {
        int got = 0;
        if (!trial_open(e, t))
            continue;
        snprintf(w->unit, sizeof w->unit, "%05lld", (long long)t);
        RT_CHECK(tune_claim_unit(e, w->unit, &got));
        if (got) {
            w->t = t;
            return RT_OK;
        }
    }
    return RT_OK;
}

/* asha_promote: from the highest rung but the last down, the best of the
 * top floor(n / eta) trials recorded at the rung that is paused there and
 * not promoted from it yet. */
rt_status tune_claim_promotion(const tune_experiment *e, int64_t *out)
{
    rt_asha a = tune_asha_of(e);
    int rungs[64], nr = rt_asha_rungs(&a, rungs, 64);
    double *values = malloc(((size_t)e->trials + 1) * sizeof *values);
    int64_t *ids = malloc(((size_t)e->trials + 1) * sizeof *ids);
    int *order = malloc(((size_t)e->trials + 1) * sizeof *order);
    rt_status st = values && ids && order ? RT_OK
                   : RT_ERROR(RT_ERR_NOMEM, "out of memory choosing a promotion");
    *out = -1;
    for (int k = nr - 2; st == RT_OK && k >= 0 && *out < 0; k--) {
        int n = 0;
        for (int64_t t = 0; t < e->trials; t++)
            if (tune_value_at(e, t, rungs[k], &values[n]))
                ids[n++] = t;
        int top = rt_asha_top(&a, values, n, order);
        for (int i = 0; st == RT_OK && i < top && *out < 0; i++) {
            int64_t t = ids[order[i]];
            char status[32], name[48];
            int paused_at, got = 0;
            tune_trial_state(e, t, status, sizeof status, &paused_at);
            if (strcmp(status, "PAUSED") != 0 || paused_at != rungs[k] ||
                !promoted_mark(e, t, rungs[k], 1))
                continue;
            snprintf(name, sizeof name, "p%05lld.%d", (long long)t, rungs[k]);
            st = tune_claim_unit(e, name, &got);
            *out = t;
        }
    }
    free(values);
    free(ids);
    free(order);
    return st;
}

/* 1 when claim `name` of dir is not done and was refreshed within
 * tune.claim_timeout_s. */
static int claim_alive(const tune_experiment *e, const char *dir, const char *name)
{
    char path[RT_PATH_MAX + 160];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (claim_done(dir, name) || stat(path, &sb) != 0)
        return 0;
    return difftime(time(NULL), sb.st_mtime) <= e->base.tune.claim_timeout_s;
}

/* A claim's name, not a marker or a temporary: "<t>", "p<t>.<rung>",
 * "r<t>.<round>"; its trial in *t. */
static int claim_name(const char *name, int64_t *t)
{
    const char *p = name[0] == 'p' || name[0] == 'r' ? name + 1 : name;
    char *end;
    if (name[0] == '.' || !strncmp(name, "done.", 5) || *p < '0' || *p > '9')
        return 0;
    *t = strtoll(p, &end, 10);
    /* "<name>.<task>.<restart>" marks a take-over, not a claim */
    int dots = 0;
    for (const char *c = end; *c; c++)
        dots += *c == '.';
    return dots == (name[0] == 'p' || name[0] == 'r' ? 1 : 0);
}

/* Calls fn(arg, t) for each live claim of this launch. */
static int for_live_claims(const tune_experiment *e, void (*fn)(void *, int64_t), void *arg)
{
    char dir[RT_PATH_MAX + 64];
    if (rt_fs_path(dir, sizeof dir, "%s/.claims/%s", e->dir, e->launch) != RT_OK) {
        rt_error_clear();
        return 0;
    }
    DIR *d = opendir(dir);
    int live = 0;
    for (struct dirent *de; d && (de = readdir(d)) != NULL;) {
        int64_t t;
        if (!claim_name(de->d_name, &t) || !claim_alive(e, dir, de->d_name))
            continue;
        live++;
        if (fn)
            fn(arg, t);
    }
    if (d)
        closedir(d);
    return live;
}

int tune_others_running(const tune_experiment *e) { return for_live_claims(e, NULL, NULL) > 0; }

static void mark_live(void *arg, int64_t t) { ((unsigned char *)arg)[t] = 1; }

int64_t tune_unfinished(const tune_experiment *e)
{
    unsigned char *live = calloc((size_t)e->trials + 1, 1);
    int64_t n = 0;
    if (live)
        for_live_claims(e, mark_live, live);
    for (int64_t t = 0; t < e->trials; t++) {
        char status[32];
        int paused_at;
        tune_trial_state(e, t, status, sizeof status, &paused_at);
        /* asha_promote leaves the trials it did not promote paused: final */
        int open = !status[0] || (e->scheduler == SCHED_PBT && !strcmp(status, "PAUSED"));
        n += open && !(live && t < e->trials && live[t]);
    }
    free(live);
    return n;
}

rt_status tune_next_work(const tune_experiment *e, tune_work *w)
{
    w->t = -1;
    w->unit[0] = '\0';
    if (e->scheduler == SCHED_PBT)
        return tune_pbt_next(e, w);
    if (e->scheduler == SCHED_ASHA_PROMOTE)
        RT_CHECK(tune_claim_promotion(e, &w->t));
    if (w->t >= 0) {
        char status[32];
        int paused_at;
        tune_trial_state(e, w->t, status, sizeof status, &paused_at);
        snprintf(w->unit, sizeof w->unit, "p%05lld.%d", (long long)w->t, paused_at);
        return RT_OK;
    }
    RT_CHECK(tune_claim_new(e, w));
    if (w->t < 0 && e->scheduler == SCHED_ASHA_PROMOTE && tune_others_running(e))
        w->t = -2;   /* the others' rungs may make a trial promotable */
    return RT_OK;
}

void tune_work_done(const tune_experiment *e, const tune_work *w)
{
    char name[64];
    int got;
    snprintf(name, sizeof name, "done.%s", w->unit);
    if (tune_claim_file(e, name, &got) != RT_OK)
        rt_error_clear();   /* only idle groups' waiting depends on it */
}

void tune_work_alive(const tune_experiment *e, const tune_work *w)
{
    char path[RT_PATH_MAX + 128];
    if (rt_fs_path(path, sizeof path, "%s/.claims/%s/%s", e->dir, e->launch, w->unit) != RT_OK)
        rt_error_clear();
    else
        utimensat(AT_FDCWD, path, NULL, 0);   /* best effort: a missed refresh is harmless */
}
