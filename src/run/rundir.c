/* The run directory (storage_path/name/) and its result files. Only rank 0
 * touches the filesystem; the outcome and the directory name are agreed so
 * that every rank knows where the run lives. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <jansson.h>
#include "rtrain/run.h"

struct rt_run {
    rt_session *session;
    char dir[RT_PATH_MAX];
    int iteration;        /* reports so far */
    double start_time;
};

/* mkdir -p with mode 0750 for every directory it creates. */
static rt_status make_dirs(const char *path)
{
    char buf[RT_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return RT_ERROR(RT_ERR_CONFIG, "run directory path is too long: %s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0750) != 0 && errno != EEXIST)
                return RT_ERROR(RT_ERR_IO, "cannot create directory %s: %s (check "
                                "run.storage_path and its permissions)", buf, strerror(errno));
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    return RT_OK;
}

static void config_basename(char *out, size_t size, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, size, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

/* storage_path: override/config > $RTRAIN_STORAGE > ./rtrain_results */
static void resolve_dir(char *dir, size_t size, const rt_config *cfg)
{
    const char *storage = cfg->run.storage_path;
    if (!storage[0])
        storage = getenv("RTRAIN_STORAGE");
    if (!storage || !storage[0])
        storage = "rtrain_results";
    if (cfg->run.name[0]) {
        snprintf(dir, size, "%s/%s", storage, cfg->run.name);
        return;
    }
    char base[256], stamp[32];
    config_basename(base, sizeof base, cfg->source);
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%d_%H-%M-%S", gmtime(&now));
    snprintf(dir, size, "%s/rtrain_%s_%s", storage, base, stamp);
}

static rt_status write_params(const char *dir, const rt_config *cfg)
{
    char path[RT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/params.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return RT_ERROR(RT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    rt_status st = rt_config_write_json(cfg, f);
    if (fclose(f) != 0 && st == RT_OK)
        st = RT_ERROR(RT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return st;
}

static rt_status open_on_rank0(rt_run *r, const rt_config *cfg)
{
    resolve_dir(r->dir, sizeof r->dir, cfg);
    RT_CHECK(make_dirs(r->dir));
    return write_params(r->dir, cfg);
}

rt_status rt_run_open(rt_run **out, rt_session *s, const rt_config *cfg)
{
    *out = NULL;
    rt_run *r = calloc(1, sizeof *r);
    rt_status st = r ? RT_OK : RT_ERROR(RT_ERR_NOMEM, "out of memory opening the run");
    if (st == RT_OK) {
        r->session = s;
        r->start_time = rt_time_now();
        if (rt_session_context(s)->world_rank == 0)
            st = open_on_rank0(r, cfg);
    }
    st = rt_session_agree(s, st);
    if (st == RT_OK && MPI_Bcast(r->dir, sizeof r->dir, MPI_CHAR, 0,
                                 rt_session_comm(s)) != MPI_SUCCESS)
        st = RT_ERROR(RT_ERR_MPI, "MPI_Bcast of the run directory failed");
    if (st != RT_OK) {
        free(r);
        return st;
    }
    *out = r;
    return RT_OK;
}

void rt_run_close(rt_run *r) { free(r); }
const char *rt_run_dir(const rt_run *r) { return r->dir; }

static json_t *metric_value(double v)
{
    /* JSON has no NaN/Inf: null keeps every line valid JSON. */
    return isfinite(v) ? json_real(v) : json_null();
}

static rt_status append_result(rt_run *r, const rt_metric *metrics, int count)
{
    json_t *obj = json_object();
    for (int i = 0; i < count; i++)
        json_object_set_new(obj, metrics[i].name, metric_value(metrics[i].value));
    json_object_set_new(obj, "training_iteration", json_integer(r->iteration));
    json_object_set_new(obj, "time_total_s", json_real(rt_time_now() - r->start_time));
    json_object_set_new(obj, "timestamp", json_integer((json_int_t)time(NULL)));
    char *line = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(obj);
    if (!line)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory formatting a report");
    char path[RT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/result.json", r->dir);
    FILE *f = fopen(path, "a");
    rt_status st = RT_OK;
    if (!f || fprintf(f, "%s\n", line) < 0 || fclose(f) != 0)
        st = RT_ERROR(RT_ERR_IO, "cannot append to %s: %s", path, strerror(errno));
    free(line);
    return st;
}

rt_status rt_report(rt_run *r, const rt_metric *metrics, int count)
{
    r->iteration++;
    rt_status st = RT_OK;
    if (rt_session_context(r->session)->world_rank == 0)
        st = append_result(r, metrics, count);
    return rt_session_agree(r->session, st);
}
