/* Starting weights from a file (model.init_from, rt_ckpt_load_weights):
 * a safetensors file, an rtrain checkpoint (its directory or checkpoint.h5:
 * the tensors under /model) or an `rtrain-ckpt export` HDF5 file (the
 * tensors at its root), matched to the model by state_dict name.
 *
 * The match is strict, as PyTorch's load_state_dict(strict=True): every
 * model tensor must be in the file with the model's shape, and every file
 * tensor must be in the model, except the tensors that model.init_exclude's
 * patterns name (fnmatch, no flags: '*' also matches dots), which keep the
 * model's fresh initialisation (and are ignored in the file). Every problem
 * is collected first and reported in one message (RT_ERR_CONFIG); nothing
 * is changed in the model unless every tensor fits. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "internal.h"

/* Names listed per kind of problem in the message; the rest are counted. */
#define LIST_MAX 12

typedef struct src_tensor {
    char *name;                         /* state_dict name */
    char *dataset;                      /* HDF5: the dataset's path */
    int index;                          /* safetensors: the tensor's index */
    int ndim;
    int64_t shape[RT_CKPT_MAX_NDIM];
} src_tensor;

typedef struct weight_source {
    const char *path;                   /* as the user gave it */
    rt_safetensors *st;                 /* one of st and h5 is open */
    rt_ckpt_file *h5;
    int64_t h5_size;
    size_t prefix;                      /* HDF5: length of "/model/" or "/" */
    src_tensor *t;
    int n, cap;
} weight_source;

static rt_status add_tensor(weight_source *s, const char *name, int ndim, const int64_t *shape)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        src_tensor *p = realloc(s->t, (size_t)cap * sizeof *p);
        if (!p)
            return RT_ERROR(RT_ERR_NOMEM, "out of memory listing the tensors of %s", s->path);
        s->t = p;
        s->cap = cap;
    }
    src_tensor *t = &s->t[s->n];
    *t = (src_tensor){.name = strdup(name), .index = s->n, .ndim = ndim};
    if (!t->name)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory listing the tensors of %s", s->path);
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    s->n++;
    return RT_OK;
}

static rt_status list_h5_tensor(void *arg, const char *name, int ndim, const int64_t *shape)
{
    weight_source *s = arg;
    RT_CHECK(add_tensor(s, name + s->prefix, ndim, shape));
    s->t[s->n - 1].dataset = strdup(name);
    if (!s->t[s->n - 1].dataset)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory listing the tensors of %s", s->path);
    return RT_OK;
}

static rt_status open_h5(weight_source *s, const char *file)
{
    RT_CHECK(rt_ckpt_file_open(&s->h5, NULL, file));
    s->h5_size = ckpt_file_size(s->h5);
    int is_checkpoint = 0;
    RT_CHECK(rt_ckpt_exists(s->h5, "/model", &is_checkpoint));
    const char *group = is_checkpoint ? "/model" : "/";
    s->prefix = strlen(group) + (is_checkpoint ? 1 : 0);
    return rt_ckpt_foreach_tensor(s->h5, group, list_h5_tensor, s);
}

static rt_status open_safetensors(weight_source *s, const char *file)
{
    RT_CHECK(rt_safetensors_open(&s->st, file));
    for (int i = 0; i < rt_safetensors_count(s->st); i++) {
        const rt_safetensors_tensor *t = rt_safetensors_get(s->st, i);
        RT_CHECK(add_tensor(s, t->name, t->ndim, t->shape));
    }
    return RT_OK;
}

/* A directory is a checkpoint; a file is HDF5 by its signature, else
 * safetensors (which has none). */
static rt_status source_open(weight_source *s, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return RT_ERROR(RT_ERR_CONFIG, "model.init_from: %s does not exist: give a "
                        ".safetensors file or an rtrain checkpoint directory", path);
    char file[RT_CKPT_PATH_MAX];
    if (S_ISDIR(sb.st_mode)) {
        RT_CHECK(rt_fs_path(file, sizeof file, "%s/%s", path, CKPT_FILE_NAME));
        return open_h5(s, file);
    }
    static const unsigned char hdf5_magic[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f)
        fclose(f);
    if (got == sizeof head && !memcmp(head, hdf5_magic, sizeof head))
        return open_h5(s, path);
    return open_safetensors(s, path);
}

static void source_close(weight_source *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->t[i].name);
        free(s->t[i].dataset);
    }
    free(s->t);
    rt_safetensors_close(s->st);
    if (s->h5)
        rt_ckpt_file_close(s->h5);
}

static rt_status source_read(weight_source *s, const src_tensor *t, float *out)
{
    if (s->st)
        return rt_safetensors_read(s->st, t->index, out);
    return rt_ckpt_read_tensor(s->h5, t->dataset, t->ndim, t->shape, out);
}

static const src_tensor *source_find(const weight_source *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name))
            return &s->t[i];
    return NULL;
}

/* ---- matching -------------------------------------------------------------------------- */

static int excluded(const char *name, const char *const *patterns, int n, int *used)
{
    int hit = 0;
    for (int i = 0; i < n; i++)
        if (fnmatch(patterns[i], name, 0) == 0) {
            used[i] = 1;
            hit = 1;
        }
    return hit;
}

static int same_shape(const rt_tensor_info *m, const src_tensor *t)
{
    if (m->ndim != t->ndim)
        return 0;
    for (int d = 0; d < m->ndim; d++)
        if (m->shape[d] != t->shape[d])
            return 0;
    return 1;
}

/* One kind of problem, collected as a list for the message. */
typedef struct problems { FILE *text; int count; const char *title; } problems;

static void problem(problems *p, const char *fmt, const char *a, const char *b, const char *c)
{
    if (p->count < LIST_MAX) {
        fprintf(p->text, "%s", p->count ? ", " : "");
        fprintf(p->text, fmt, a, b, c);
    }
    p->count++;
}

static void shape_text(char *buf, size_t size, int ndim, const int *shape32,
                       const int64_t *shape64)
{
    int64_t s[RT_CKPT_MAX_NDIM];
    for (int d = 0; d < ndim; d++)
        s[d] = shape32 ? shape32[d] : shape64[d];
    ckpt_format_shape(buf, size, ndim, s);
}

/* Every missing, unexpected and mis-shaped tensor and every pattern that
 * names nothing, in one message (RT_ERR_CONFIG); *kept = model tensors
 * excluded. */
static rt_status match(const weight_source *s, rt_model *m, const char *const *patterns,
                       int npatterns, int *kept)
{
    char *texts[4] = {0};
    size_t lens[4];
    problems p[4] = {{NULL, 0, "missing from the file"}, {NULL, 0, "not in the model"},
                     {NULL, 0, "shapes differ"},
                     {NULL, 0, "model.init_exclude patterns that name no tensor"}};
    for (int k = 0; k < 4; k++)
        p[k].text = open_memstream(&texts[k], &lens[k]);
    int used[RT_CKPT_MAX_EXCLUDE] = {0};
    *kept = 0;
    for (int i = 0; i < rt_model_num_tensors(m); i++) {
        const rt_tensor_info *mt = rt_model_tensor(m, i);
        if (excluded(mt->name, patterns, npatterns, used)) {
            (*kept)++;
            continue;
        }
        const src_tensor *t = source_find(s, mt->name);
        char a[96], b[96];
        if (!t)
            problem(&p[0], "%s%s%s", mt->name, "", "");
        else if (!same_shape(mt, t)) {
            shape_text(a, sizeof a, t->ndim, NULL, t->shape);
            shape_text(b, sizeof b, mt->ndim, mt->shape, NULL);
            problem(&p[2], "%s is %s in the file, %s in the model", mt->name, a, b);
        }
    }
    for (int i = 0; i < s->n; i++)
        if (!excluded(s->t[i].name, patterns, npatterns, used) &&
            !rt_model_find_tensor(m, s->t[i].name))
            problem(&p[1], "%s%s%s", s->t[i].name, "", "");
    for (int i = 0; i < npatterns; i++)
        if (!used[i])
            problem(&p[3], "\"%s\"%s%s", patterns[i], "", "");
    char *msg = NULL;
    size_t msg_len = 0;
    FILE *out = open_memstream(&msg, &msg_len);
    int total = 0;
    for (int k = 0; k < 4; k++) {
        if (p[k].text)
            fclose(p[k].text);
        if (p[k].count && out) {
            fprintf(out, "%s%s (%d): %s", total ? "; " : "", p[k].title, p[k].count,
                    texts[k] ? texts[k] : "");
            if (p[k].count > LIST_MAX)
                fprintf(out, " and %d more", p[k].count - LIST_MAX);
        }
        total += p[k].count;
        free(texts[k]);
    }
    if (out)
        fclose(out);
    rt_status st = RT_OK;
    if (total)
        st = RT_ERROR(RT_ERR_CONFIG, "model.init_from: %s does not fit the model: %s. Keep the "
                      "model's own initialisation of tensors with model.init_exclude (shell "
                      "patterns of state_dict names, e.g. [\"fc.*\"] for a new classifier), "
                      "or check model.arch and model.num_classes", s->path,
                      msg ? msg : "(out of memory describing it)");
    free(msg);
    return st;
}

/* ---- loading ----------------------------------------------------------------------------- */

static rt_status load_matched(weight_source *s, rt_model *m, const char *const *patterns,
                              int npatterns, int *loaded)
{
    rt_train_state state = {.model = m};
    ckpt_host_slabs h;
    int used[RT_CKPT_MAX_EXCLUDE] = {0};
    /* Downloaded: the tensors left out keep their values. */
    rt_status st = ckpt_host_slabs_get(&h, &state, RT_CKPT_LOAD_MODEL, 1);
    for (int i = 0; st == RT_OK && i < rt_model_num_tensors(m); i++) {
        const rt_tensor_info *mt = rt_model_tensor(m, i);
        if (excluded(mt->name, patterns, npatterns, used))
            continue;
        float *base = mt->kind == RT_TENSOR_PARAM ? h.params : h.buffers;
        st = source_read(s, source_find(s, mt->name), base + mt->offset);
        *loaded += st == RT_OK;
    }
    if (st == RT_OK)
        st = ckpt_host_slabs_put(&h, &state);
    ckpt_host_slabs_free(&h);
    return st;
}

rt_status rt_ckpt_load_weights(rt_model *m, const char *path, const char *const *exclude,
                               int nexclude, int *loaded, int *kept)
{
    *loaded = *kept = 0;
    if (!m || !path || nexclude < 0 || nexclude > RT_CKPT_MAX_EXCLUDE || (nexclude && !exclude))
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_ckpt_load_weights: a model, a path and 0 to %d "
                        "patterns are required", RT_CKPT_MAX_EXCLUDE);
    weight_source s = {.path = path};
    rt_status st = source_open(&s, path);
    if (st == RT_OK)
        st = match(&s, m, exclude, nexclude, kept);
    if (st == RT_OK)
        st = load_matched(&s, m, exclude, nexclude, loaded);
    source_close(&s);
    return st;
}
