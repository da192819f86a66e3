/* Checks that involve more than one key, run once every value is in place,
 * and resolution of the data paths. A message points at the value that
 * has to change (its FILE:LINE or override); a problem with defaults only
 * names the config file. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "config/internal.h"

static const rt_cfg_assign *given(const rt_cfg_assign *const *last, const char *path)
{
    const rt_key *k = rt_config_find_key(path);
    return k ? last[rt_config_key_index(k)] : NULL;
}

/* Fails at assignment a, or at the config file when a is NULL (a default). */
static rt_status fail_at(const rt_config *cfg, const rt_cfg_assign *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rt_status fail_at(const rt_config *cfg, const rt_cfg_assign *a, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (a)
        return rt_config_fail(a->setting, a->override, "%s", msg);
    return RT_ERROR(RT_ERR_CONFIG, "%s: %s", cfg->source, msg);
}

static int word_in(const char *word, const char *list)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

/* A key meant for one variant (optimizer.momentum for sgd) given while
 * another is selected is almost always a mistake, so it is an error. */
static rt_status check_only_for(const rt_config *cfg, const rt_cfg_assign *const *last)
{
    for (int i = 0; i < rt_config_num_keys(); i++) {
        const rt_key *k = rt_config_key(i);
        const rt_key *sel = rt_config_group_selector(k);
        if (!k->only_for || !last[i] || !sel)
            continue;
        const char *current = rt_config_enum_get(sel, cfg);
        if (!word_in(current, k->only_for))
            return fail_at(cfg, last[i], "%s only applies when %s is %s, but %s is \"%s\": "
                           "remove it or change %s", k->path, sel->path, k->only_for,
                           sel->path, current, sel->path);
    }
    return RT_OK;
}

static rt_status check_model(const rt_config *cfg, const rt_cfg_assign *const *last)
{
    if (cfg->model.arch == RT_ARCH_SEQUENTIAL && cfg->model.num_layers == 0)
        return fail_at(cfg, given(last, "model.arch"), "model.arch = \"sequential\" needs "
                       "model.layers, e.g. layers = ( { type = \"flatten\"; }, "
                       "{ type = \"linear\"; out = 10; } );");
    return RT_OK;
}

/* model.init_from starts a new run from weights; run.resume_from_checkpoint
 * does too, with the checkpoint's preprocessing: one source of weights. */
static rt_status check_init(const rt_config *cfg, const rt_cfg_assign *const *last)
{
    if (cfg->init.from[0] && cfg->run.resume_from_checkpoint[0])
        return fail_at(cfg, given(last, "model.init_from"), "model.init_from and "
                       "run.resume_from_checkpoint both give the starting weights: keep one "
                       "(init_from for fine-tuning, resume_from_checkpoint to continue a run "
                       "with its data preprocessing)");
    if (cfg->init.num_exclude > 0 && !cfg->init.from[0])
        return fail_at(cfg, given(last, "model.init_exclude"), "model.init_exclude only "
                       "applies with model.init_from: set it or remove model.init_exclude");
    return RT_OK;
}

static rt_status check_data(const rt_config *cfg, const rt_cfg_assign *const *last)
{
    const rt_cfg_assign *b = given(last, "data.batch_size");
    const rt_cfg_assign *g = given(last, "data.global_batch_size");
    if (b && g && cfg->data.global_batch_size != 0) {
        char where[1024];
        rt_config_where(where, sizeof where, g->setting, g->override);
        return fail_at(cfg, b, "data.batch_size and data.global_batch_size (%s) are both "
                       "given: give one of them (batch_size per worker, or global_batch_size "
                       "split across workers)", where);
    }
    const rt_cfg_assign *mean = given(last, "data.normalize.mean");
    const rt_cfg_assign *std = given(last, "data.normalize.std");
    if (cfg->data.transform.normalize && (!mean || !std)) {
        const rt_cfg_assign *at = given(last, "data.normalize");
        return fail_at(cfg, at ? at : mean ? mean : std, "data.normalize needs both mean and "
                       "std: write normalize = { mean = 0.2860; std = 0.3530; }; (or "
                       "normalize = false)");
    }
    return RT_OK;
}

static rt_status check_optimizer(const rt_config *cfg, const rt_cfg_assign *const *last)
{
    const rt_optim_opts *o = &cfg->optimizer;
    if (o->type == RT_OPTIM_SGD && o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return fail_at(cfg, given(last, "optimizer.nesterov"), "optimizer.nesterov needs "
                       "optimizer.momentum > 0 and optimizer.dampening = 0 (as torch.optim.SGD)");
    const rt_schedule_opts *sc = &cfg->schedule;
    if (sc->type == RT_SCHEDULE_COSINE && sc->min_lr > o->lr) {
        const rt_cfg_assign *at = given(last, "schedule.min_lr");
        return fail_at(cfg, at ? at : given(last, "optimizer.lr"), "schedule.min_lr (%g) is "
                       "above optimizer.lr (%g): cosine decays from lr down to min_lr",
                       (double)sc->min_lr, (double)o->lr);
    }
    if (sc->warmup_steps > 0 && sc->warmup_start_factor <= 0)
        return fail_at(cfg, given(last, "schedule.warmup_start_factor"),
                       "schedule.warmup_start_factor must be above 0 when warmup_steps > 0");
    return RT_OK;
}

rt_status rt_config_validate(const rt_config *cfg, const rt_cfg_assign *const *last)
{
    RT_CHECK(check_only_for(cfg, last));
    RT_CHECK(check_model(cfg, last));
    RT_CHECK(check_init(cfg, last));
    RT_CHECK(check_data(cfg, last));
    RT_CHECK(check_optimizer(cfg, last));
    return RT_OK;
}

/* ---- data paths ------------------------------------------------------------------- */
static rt_status join(const rt_config *cfg, char *out, size_t n, const char *dir,
                      const char *name, const char *key)
{
    size_t dlen = strlen(dir);
    while (dlen > 0 && dir[dlen - 1] == '/')   /* "/data/" and "/" join without "//" */
        dlen--;
    char tmp[RT_PATH_MAX];
    int len = snprintf(tmp, sizeof tmp, "%.*s/%s", (int)dlen, dir, name);
    if (len < 0 || (size_t)len >= n || (size_t)len >= sizeof tmp)
        return RT_ERROR(RT_ERR_CONFIG, "%s: %s: path too long once joined with data.dir (at "
                        "most %zu characters)", cfg->source, key, n - 1);
    memcpy(out, tmp, (size_t)len + 1);
    return RT_OK;
}

rt_status rt_config_resolve_paths(rt_config *cfg)
{
    /* A relative data.dir is taken from the current directory, as a path
     * typed in a shell would be; written absolute so params.json says
     * exactly what was read. */
    char cwd[RT_PATH_MAX];
    if (!cfg->data.dir[0] && !strcmp(cfg->data.format, "idx"))   /* the installed FashionMNIST */
        snprintf(cfg->data.dir, sizeof cfg->data.dir, "%s", "/usr/share/datasets/fashion-mnist");
    if (cfg->data.dir[0] != '/' && getcwd(cwd, sizeof cwd)) {
        const char *rel = cfg->data.dir;
        while (rel[0] == '.' && rel[1] == '/')
            rel += 2;
        if (strcmp(rel, ".") == 0 || rel[0] == '\0')
            snprintf(cfg->data.dir, sizeof cfg->data.dir, "%s", cwd);
        else
            RT_CHECK(join(cfg, cfg->data.dir, sizeof cfg->data.dir, cwd, rel, "data.dir"));
    }
    struct { char *path; const char *key; } files[] = {
        {cfg->data.train_images, "data.train.images"},
        {cfg->data.train_labels, "data.train.labels"},
        {cfg->data.test_images, "data.test.images"},
        {cfg->data.test_labels, "data.test.labels"},
        {cfg->data.train_file, "data.train.file"},
        {cfg->data.test_file, "data.test.file"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        /* "" stays "": nothing given; the data module reports it if needed. */
        if (files[i].path[0] == '\0' || files[i].path[0] == '/')
            continue;
        char name[RT_PATH_MAX];
        snprintf(name, sizeof name, "%s", files[i].path);
        RT_CHECK(join(cfg, files[i].path, RT_PATH_MAX, cfg->data.dir, name, files[i].key));
    }
    return RT_OK;
}
