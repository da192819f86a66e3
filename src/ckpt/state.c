/* Training state <-> checkpoint file: what goes where in checkpoint.h5
 * (docs/checkpoint-format.md), loading with any world size, and the
 * verification used by find_latest and `rtrain-ckpt verify`.
 *
 *   /                     attributes: format, format_version, rtrain_version,
 *                         world_size, config_digest, step, epoch,
 *                         training_iteration, metric.<name>
 *   /model/<name>         parameters then buffers, state_dict names, global shapes
 *   /optimizer            attributes: type, step
 *   /optimizer/<slot>/<name>   state slot (momentum_buffer, exp_avg, ...) per parameter
 *   /scheduler            attribute step
 *   /rng                  attribute seed (the RNG is counter-based: keys come from it)
 *   /data                 attributes epoch, next_batch */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "internal.h"

/* ---- writing -------------------------------------------------------------------- */

/* ---- host copies of device tensors ----------------------------------------------------
 * Checkpoints read and write host memory. On a backend whose memory is the
 * host's, the slabs are used in place; otherwise (a GPU) they are copied:
 * the writer downloads them all before the file is created, so a failure
 * is agreed before any collective write starts (manager.c), and a load
 * reads into host copies that are uploaded only once every tensor was read,
 * so a failed load leaves the GPU's tensors as they were. */

static rt_status host_slab(float **host, int *copied, const rt_backend *be, float *slab,
                           size_t count, int download, const char *what)
{
    if (be->flags & RT_BACKEND_HOST_MEMORY) {
        *host = slab;
        return RT_OK;
    }
    RT_CHECK(rt_alloc(host, count ? count : 1, sizeof(float), what));
    *copied = 1;
    return download ? be->download(*host, slab, count * sizeof(float)) : RT_OK;
}

rt_status ckpt_host_slabs_get(ckpt_host_slabs *h, const rt_train_state *s, int what,
                              int download)
{
    *h = (ckpt_host_slabs){0};
    if (!s || !s->model)
        return RT_OK;
    h->optim_step = s->optim ? rt_optim_step_count(s->optim) : 0;
    rt_model *m = s->model;
    const rt_backend *be = rt_model_backend(m);
    if (what & RT_CKPT_LOAD_MODEL) {
        RT_CHECK(host_slab(&h->params, &h->copied, be, rt_model_params(m),
                           rt_model_num_params(m), download, "host copy of the parameters"));
        RT_CHECK(host_slab(&h->buffers, &h->copied, be, rt_model_buffers(m),
                           rt_model_num_buffers(m), download, "host copy of the buffers"));
    }
    if ((what & RT_CKPT_LOAD_OPTIMIZER) && s->optim)   /* the slots lie back to back */
        RT_CHECK(host_slab(&h->optim, &h->copied, be, rt_optim_state(s->optim, 0),
                           rt_model_num_params(m) * (size_t)rt_optim_state_slots(s->optim),
                           download, "host copy of the optimizer state"));
    return RT_OK;
}

rt_status ckpt_host_slabs_put(const ckpt_host_slabs *h, const rt_train_state *s)
{
    if (!h->copied)
        return RT_OK;
    rt_model *m = s->model;
    const rt_backend *be = rt_model_backend(m);
    if (h->params)
        RT_CHECK(be->upload(rt_model_params(m), h->params,
                            rt_model_num_params(m) * sizeof(float)));
    if (h->buffers)
        RT_CHECK(be->upload(rt_model_buffers(m), h->buffers,
                            rt_model_num_buffers(m) * sizeof(float)));
    if (h->optim)
        RT_CHECK(be->upload(rt_optim_state(s->optim, 0), h->optim,
                            rt_model_num_params(m) * (size_t)rt_optim_state_slots(s->optim) *
                            sizeof(float)));
    return RT_OK;
}

void ckpt_host_slabs_free(ckpt_host_slabs *h)
{
    if (h->copied) {
        rt_free(h->params);
        rt_free(h->buffers);
        rt_free(h->optim);
    }
    *h = (ckpt_host_slabs){0};
}

rt_status ckpt_check_metrics(const rt_ckpt_metric *metrics, int num_metrics)
{
    if (num_metrics < 0 || num_metrics > RT_CKPT_MAX_METRICS || (num_metrics && !metrics))
        return RT_ERROR(RT_ERR_INVALID_ARG, "a checkpoint holds 0 to %d metrics, not %d",
                        RT_CKPT_MAX_METRICS, num_metrics);
    for (int i = 0; i < num_metrics; i++) {
        const char *n = metrics[i].name;
        if (!n || !n[0] || strlen(n) >= RT_CKPT_METRIC_NAME_MAX || strchr(n, '/'))
            return RT_ERROR(RT_ERR_INVALID_ARG, "metric name \"%s\" cannot be stored in a "
                            "checkpoint (1 to %d bytes, no '/')", n ? n : "(null)",
                            RT_CKPT_METRIC_NAME_MAX - 1);
        for (int j = 0; j < i; j++)
            if (strcmp(metrics[j].name, n) == 0)
                return RT_ERROR(RT_ERR_INVALID_ARG, "metric %s is given twice", n);
    }
    return RT_OK;
}

static rt_status write_root_attrs(rt_ckpt_file *f, const rt_train_state *s, int world_size,
                                  const rt_ckpt_metric *metrics, int num_metrics)
{
    RT_CHECK(rt_ckpt_attr_set_string(f, "/", "format", CKPT_FORMAT_NAME));
    RT_CHECK(rt_ckpt_attr_set_int(f, "/", "format_version", RT_CKPT_FORMAT_VERSION));
    RT_CHECK(rt_ckpt_attr_set_string(f, "/", "rtrain_version", PACKAGE_VERSION));
    RT_CHECK(rt_ckpt_attr_set_int(f, "/", "world_size", world_size));
    RT_CHECK(rt_ckpt_attr_set_string(f, "/", "config_digest", s->config_digest));
    RT_CHECK(rt_ckpt_attr_set_int(f, "/", "step", s->step));
    RT_CHECK(rt_ckpt_attr_set_int(f, "/", "epoch", s->epoch));
    RT_CHECK(rt_ckpt_attr_set_int(f, "/", "training_iteration", s->training_iteration));
    for (int i = 0; i < num_metrics; i++) {
        char attr[RT_CKPT_METRIC_NAME_MAX + 16];
        snprintf(attr, sizeof attr, "%s%s", CKPT_METRIC_PREFIX, metrics[i].name);
        RT_CHECK(rt_ckpt_attr_set_double(f, "/", attr, metrics[i].value));
    }
    RT_CHECK(rt_ckpt_attr_set_int(f, "/scheduler", "step", s->step));
    RT_CHECK(rt_ckpt_attr_set_uint(f, "/rng", "seed", s->seed));
    RT_CHECK(rt_ckpt_attr_set_int(f, "/data", "epoch", s->epoch));
    RT_CHECK(rt_ckpt_attr_set_int(f, "/data", "next_batch", s->next_batch));
    if (s->preprocessing)
        RT_CHECK(rt_ckpt_attr_set_string(f, "/data", "preprocessing", s->preprocessing));
    return RT_OK;
}

static void tensor_shape64(const rt_tensor_info *t, int64_t *shape)
{
    for (int d = 0; d < t->ndim; d++)
        shape[d] = t->shape[d];
}

/* The model's tensors, for ckpt_write_tensors: /model/<name> from the
 * parameter or buffer slab. */
typedef struct model_tensors {
    rt_model *m;
    const ckpt_host_slabs *h;
} model_tensors;

static int describe_model_tensor(void *arg, int i, char *name, int *ndim, int64_t *shape,
                                 const float **data)
{
    const model_tensors *mt = arg;
    const rt_tensor_info *t = rt_model_tensor(mt->m, i);
    snprintf(name, RT_CKPT_PATH_MAX, "/model/%s", t->name);
    *ndim = t->ndim;
    tensor_shape64(t, shape);
    *data = (t->kind == RT_TENSOR_PARAM ? mt->h->params : mt->h->buffers) + t->offset;
    return 1;
}

static rt_status write_model(rt_ckpt_file *f, rt_model *m, const ckpt_host_slabs *h)
{
    model_tensors mt = {m, h};
    return ckpt_write_tensors(f, rt_model_num_tensors(m), describe_model_tensor, &mt);
}

/* One optimizer slot's tensors, for ckpt_write_tensors:
 * /optimizer/<slot>/<name> for each parameter tensor (buffers have no
 * optimizer state), in model order. */
typedef struct slot_tensors {
    rt_model *m;
    rt_optimizer *o;
    int slot;
    const float *slab;
} slot_tensors;

static int describe_slot_tensor(void *arg, int i, char *name, int *ndim, int64_t *shape,
                                const float **data)
{
    const slot_tensors *st = arg;
    const rt_tensor_info *t = rt_model_tensor(st->m, i);
    if (t->kind != RT_TENSOR_PARAM)
        return 0;
    snprintf(name, RT_CKPT_PATH_MAX, "/optimizer/%s/%s", rt_optim_state_name(st->o, st->slot),
             t->name);
    *ndim = t->ndim;
    tensor_shape64(t, shape);
    *data = st->slab + t->offset;
    return 1;
}

static rt_status write_optimizer(rt_ckpt_file *f, const rt_train_state *s,
                                 const ckpt_host_slabs *h)
{
    rt_optimizer *o = s->optim;
    size_t num_params = rt_model_num_params(s->model);
    RT_CHECK(rt_ckpt_attr_set_string(f, "/optimizer", "type",
                                     s->optimizer_type ? s->optimizer_type : ""));
    RT_CHECK(rt_ckpt_attr_set_int(f, "/optimizer", "step", h->optim_step));
    for (int k = 0; k < rt_optim_state_slots(o); k++) {
        slot_tensors st = {s->model, o, k, h->optim + (size_t)k * num_params};
        RT_CHECK(ckpt_write_tensors(f, rt_model_num_tensors(s->model), describe_slot_tensor,
                                    &st));
    }
    return RT_OK;
}

rt_status ckpt_state_write(rt_ckpt_file *f, const rt_train_state *s, const ckpt_host_slabs *h,
                           int world_size, const rt_ckpt_metric *metrics, int num_metrics)
{
    RT_CHECK(write_root_attrs(f, s, world_size, metrics, num_metrics));
    if (s->model)
        RT_CHECK(write_model(f, s->model, h));
    else
        RT_CHECK(s->write_model(f, s->write_model_arg));
    /* Test-only: a rank dies with part of the datasets written. */
    ckpt_fault_point("ckpt_during_write", ckpt_file_rank(f));
    if (s->optim)
        RT_CHECK(write_optimizer(f, s, h));
    return RT_OK;
}

/* ---- reading ------------------------------------------------------------------- */

rt_status ckpt_info_read(rt_ckpt_file *f, rt_ckpt_info *info)
{
    memset(info, 0, sizeof *info);
    char format[64];
    RT_CHECK(rt_ckpt_attr_get_string(f, "/", "format", format, sizeof format));
    if (strcmp(format, CKPT_FORMAT_NAME) != 0)
        return RT_ERROR(RT_ERR_FORMAT, "%s is not an rtrain checkpoint (format \"%s\")",
                        rt_ckpt_file_path(f), format);
    RT_CHECK(rt_ckpt_attr_get_int(f, "/", "format_version", &info->format_version));
    if (info->format_version < 1 || info->format_version > RT_CKPT_FORMAT_VERSION)
        return RT_ERROR(RT_ERR_UNSUPPORTED, "%s has checkpoint format version %lld; this "
                        "rtrain (%s) reads versions 1 to %d: use a newer rtrain",
                        rt_ckpt_file_path(f), (long long)info->format_version, PACKAGE_VERSION,
                        RT_CKPT_FORMAT_VERSION);
    RT_CHECK(rt_ckpt_attr_get_string(f, "/", "rtrain_version", info->rtrain_version,
                                     sizeof info->rtrain_version));
    RT_CHECK(rt_ckpt_attr_get_int(f, "/", "world_size", &info->world_size));
    RT_CHECK(rt_ckpt_attr_get_string(f, "/", "config_digest", info->config_digest,
                                     sizeof info->config_digest));
    RT_CHECK(rt_ckpt_attr_get_int(f, "/", "step", &info->step));
    RT_CHECK(rt_ckpt_attr_get_int(f, "/", "epoch", &info->epoch));
    RT_CHECK(rt_ckpt_attr_get_int(f, "/", "training_iteration", &info->training_iteration));
    RT_CHECK(rt_ckpt_attr_get_int(f, "/data", "next_batch", &info->next_batch));
    RT_CHECK(rt_ckpt_attr_get_uint(f, "/rng", "seed", &info->seed));
    int64_t sched_step = 0, data_epoch = 0;
    RT_CHECK(rt_ckpt_attr_get_int(f, "/scheduler", "step", &sched_step));
    RT_CHECK(rt_ckpt_attr_get_int(f, "/data", "epoch", &data_epoch));
    static const char *const keys[] = {"step", "epoch", "training_iteration", "next_batch"};
    const int64_t values[] = {info->step, info->epoch, info->training_iteration,
                              info->next_batch};
    for (int i = 0; i < 4; i++)
        RT_CHECK(ckpt_check_progress(rt_ckpt_file_path(f), keys[i], values[i]));
    if (sched_step != info->step || data_epoch != info->epoch)
        return RT_ERROR(RT_ERR_FORMAT, "%s: /scheduler step or /data epoch disagrees with "
                        "the root attributes: the file is inconsistent", rt_ckpt_file_path(f));
    RT_CHECK(rt_ckpt_exists(f, "/optimizer", &info->has_optimizer));
    if (info->has_optimizer) {
        RT_CHECK(rt_ckpt_attr_get_string(f, "/optimizer", "type", info->optimizer_type,
                                         sizeof info->optimizer_type));
        RT_CHECK(rt_ckpt_attr_get_int(f, "/optimizer", "step", &info->optimizer_step));
        RT_CHECK(ckpt_check_progress(rt_ckpt_file_path(f), "step", info->optimizer_step));
    }
    RT_CHECK(ckpt_read_metrics(f, info));
    return RT_OK;
}

static rt_status load_model(rt_ckpt_file *f, rt_model *m, const ckpt_host_slabs *h)
{
    int64_t stored = 0;
    int n = rt_model_num_tensors(m);
    RT_CHECK(ckpt_group_count(f, "/model", &stored));
    if (stored != n)
        return RT_ERROR(RT_ERR_CONFIG, "checkpoint %s has %lld tensors under /model, the model "
                        "has %d: the config's model differs from the one saved",
                        rt_ckpt_file_path(f), (long long)stored, n);
    float *params = h->params, *buffers = h->buffers;
    for (int i = 0; i < n; i++) {
        const rt_tensor_info *t = rt_model_tensor(m, i);
        char name[RT_NAME_MAX + 16];
        int64_t want[RT_MAX_NDIM], got[RT_CKPT_MAX_NDIM];
        int nd = 0, exists = 0;
        snprintf(name, sizeof name, "/model/%s", t->name);
        tensor_shape64(t, want);
        RT_CHECK(rt_ckpt_exists(f, name, &exists));
        if (!exists)
            return RT_ERROR(RT_ERR_CONFIG, "checkpoint %s has no %s, which the model has: the "
                            "config's model differs from the one saved",
                            rt_ckpt_file_path(f), t->name);
        RT_CHECK(rt_ckpt_tensor_shape(f, name, &nd, got));
        int same = nd == t->ndim;
        for (int d = 0; same && d < nd; d++)
            same = got[d] == want[d];
        if (!same) {
            char a[128], b[128];
            ckpt_format_shape(a, sizeof a, nd, got);
            ckpt_format_shape(b, sizeof b, t->ndim, want);
            return RT_ERROR(RT_ERR_CONFIG, "checkpoint %s has %s %s, model expects %s %s: the "
                            "config's model differs from the one saved",
                            rt_ckpt_file_path(f), t->name, a, t->name, b);
        }
        float *base = t->kind == RT_TENSOR_PARAM ? params : buffers;
        RT_CHECK(rt_ckpt_read_tensor(f, name, t->ndim, want, base + t->offset));
    }
    return RT_OK;
}

static rt_status load_optimizer(rt_ckpt_file *f, rt_train_state *s, const rt_ckpt_info *info,
                                const ckpt_host_slabs *h)
{
    const char *path = rt_ckpt_file_path(f);
    if (!s->optim)
        return RT_ERROR(RT_ERR_INVALID_ARG, "loading optimizer state from %s needs an "
                        "optimizer in the training state", path);
    if (!info->has_optimizer)
        return RT_ERROR(RT_ERR_CONFIG, "checkpoint %s has no optimizer state: load the model "
                        "weights only", path);
    if (s->optimizer_type && info->optimizer_type[0] &&
        strcmp(s->optimizer_type, info->optimizer_type) != 0)
        return RT_ERROR(RT_ERR_CONFIG, "checkpoint %s was saved with optimizer %s, the "
                        "training uses %s: use the same optimizer or load the model weights "
                        "only", path, info->optimizer_type, s->optimizer_type);
    rt_optimizer *o = s->optim;
    for (int k = 0; k < rt_optim_state_slots(o); k++) {
        float *slab = h->optim + (size_t)k * rt_model_num_params(s->model);
        char group[RT_NAME_MAX + 16];
        int exists = 0;
        snprintf(group, sizeof group, "/optimizer/%s", rt_optim_state_name(o, k));
        RT_CHECK(rt_ckpt_exists(f, group, &exists));
        if (!exists)
            return RT_ERROR(RT_ERR_CONFIG, "checkpoint %s has no optimizer state %s (saved "
                            "with optimizer \"%s\"): use the same optimizer or load the model "
                            "weights only", path, rt_optim_state_name(o, k),
                            info->optimizer_type);
        for (int i = 0; i < rt_model_num_tensors(s->model); i++) {
            const rt_tensor_info *t = rt_model_tensor(s->model, i);
            if (t->kind != RT_TENSOR_PARAM)
                continue;
            char name[2 * RT_NAME_MAX + 16];
            int64_t shape[RT_MAX_NDIM];
            snprintf(name, sizeof name, "%s/%s", group, t->name);
            tensor_shape64(t, shape);
            RT_CHECK(rt_ckpt_read_tensor(f, name, t->ndim, shape, slab + t->offset));
        }
    }
    rt_optim_set_step_count(o, info->optimizer_step);
    return RT_OK;
}

static rt_status load_parts(rt_ckpt_file *f, rt_train_state *s, int what, rt_ckpt_info *info,
                            const ckpt_host_slabs *h)
{
    RT_CHECK(ckpt_info_read(f, info));
    if ((what & RT_CKPT_LOAD_MODEL) && !s->model)
        return RT_ERROR(RT_ERR_INVALID_ARG, "loading %s needs a model in the training state",
                        rt_ckpt_file_path(f));
    if (what & RT_CKPT_LOAD_MODEL)
        RT_CHECK(load_model(f, s->model, h));
    if (what & RT_CKPT_LOAD_OPTIMIZER)
        RT_CHECK(load_optimizer(f, s, info, h));
    if (what & RT_CKPT_LOAD_PROGRESS) {
        s->epoch = info->epoch;
        s->next_batch = info->next_batch;
        s->step = info->step;
        s->training_iteration = info->training_iteration;
        s->seed = info->seed;
    }
    return RT_OK;
}

rt_status rt_ckpt_load(rt_comm *comm, const char *ckpt_dir, rt_train_state *s, int what,
                       rt_ckpt_info *info)
{
    char path[RT_CKPT_PATH_MAX];
    rt_ckpt_info local;
    if (!info)
        info = &local;
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/%s", ckpt_dir, CKPT_FILE_NAME));
    ckpt_host_slabs h;
    rt_status st = ckpt_host_slabs_get(&h, s, what, 0);
    st = ckpt_agree(comm, st);
    rt_ckpt_file *f = NULL;
    if (st == RT_OK)
        st = rt_ckpt_file_open(&f, comm, path);
    if (st == RT_OK) {
        st = load_parts(f, s, what, info, &h);   /* agreed step by step */
        rt_status cst = rt_ckpt_file_close(f);
        if (st == RT_OK)
            st = cst;
    }
    if (st == RT_OK)
        st = ckpt_host_slabs_put(&h, s);   /* to the GPU once everything was read */
    ckpt_host_slabs_free(&h);
    return st;
}

rt_status rt_ckpt_read_preprocessing(rt_comm *comm, const char *ckpt_dir, char **json)
{
    *json = NULL;
    char path[RT_CKPT_PATH_MAX];
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/%s", ckpt_dir, CKPT_FILE_NAME));
    rt_ckpt_file *f = NULL;
    RT_CHECK(rt_ckpt_file_open(&f, comm, path));
    rt_status st = rt_ckpt_attr_get_text(f, "/data", "preprocessing", json);
    rt_status cst = rt_ckpt_file_close(f);
    if (st == RT_OK)
        st = cst;
    if (st != RT_OK) {
        free(*json);
        *json = NULL;
    }
    return st;
}

rt_status rt_ckpt_read_info(const char *ckpt_dir, rt_ckpt_info *info)
{
    char path[RT_CKPT_PATH_MAX];
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/%s", ckpt_dir, CKPT_FILE_NAME));
    rt_ckpt_file *f = NULL;
    RT_CHECK(rt_ckpt_file_open(&f, NULL, path));
    rt_status st = ckpt_info_read(f, info);
    rt_status cst = rt_ckpt_file_close(f);
    RT_CHECK(st);
    RT_CHECK(cst);
    return RT_OK;
}

/* ---- verification ------------------------------------------------------------------ */

typedef struct verify_ctx {
    rt_ckpt_file *f;
    int rank, world, seen;
    int64_t file_size;
    float *buf;
    uint64_t buf_count;
} verify_ctx;

/* Reads (and so checksums) every world-th dataset, starting at rank. */
static rt_status verify_tensor(void *arg, const char *name, int ndim, const int64_t *shape)
{
    verify_ctx *v = arg;
    if (v->seen++ % v->world != v->rank)
        return RT_OK;
    /* Bound the size by the file's before allocating: contiguous data must
     * lie inside the file. */
    uint64_t count = 1, limit = v->file_size > 0 ? (uint64_t)v->file_size / 4 : 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] != 0 && count > limit / (uint64_t)shape[d]) {
            count = limit + 1;
            break;
        }
        count *= (uint64_t)shape[d];
    }
    if (count > limit)
        return RT_ERROR(RT_ERR_FORMAT, "%s: dataset %s claims more data than the file's %lld "
                        "bytes: the file is truncated or corrupt", rt_ckpt_file_path(v->f),
                        name, (long long)v->file_size);
    if (count > v->buf_count) {
        rt_free(v->buf);
        v->buf = NULL;
        v->buf_count = 0;
        RT_CHECK(rt_alloc(&v->buf, (size_t)count, sizeof(float), "checkpoint verify buffer"));
        v->buf_count = count;
    }
    RT_CHECK(rt_ckpt_read_tensor(v->f, name, ndim, shape, v->buf));
    return RT_OK;
}

/* Reads (and so checksums) every world-th byte dataset, after the tensors. */
static rt_status verify_bytes(void *arg, const char *name, int ndim, const int64_t *shape)
{
    verify_ctx *v = arg;
    (void)ndim;
    (void)shape;
    if (v->seen++ % v->world != v->rank)
        return RT_OK;
    char *data = NULL;
    size_t len = 0;
    rt_status st = rt_ckpt_read_bytes(v->f, name, &data, &len);
    rt_free(data);
    return st;
}

/* This rank's share of the checks of one checkpoint directory. */
static rt_status verify_local(const char *ckpt_dir, int rank, int world)
{
    ckpt_entry entry;
    RT_CHECK(ckpt_manifest_read(ckpt_dir, &entry));
    char path[RT_CKPT_PATH_MAX];
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/%s", ckpt_dir, CKPT_FILE_NAME));
    rt_ckpt_file *f = NULL;
    RT_CHECK(rt_ckpt_file_open(&f, NULL, path));
    rt_ckpt_info info;
    verify_ctx v = {.f = f, .rank = rank, .world = world, .file_size = ckpt_file_size(f)};
    rt_status st = ckpt_info_read(f, &info);
    if (st == RT_OK && info.training_iteration != entry.training_iteration)
        st = RT_ERROR(RT_ERR_FORMAT, "%s: training_iteration %lld differs from the manifest's "
                      "%lld: the directory is inconsistent", path,
                      (long long)info.training_iteration, (long long)entry.training_iteration);
    static const char *const groups[] = {"/model", "/scheduler", "/rng", "/data"};
    for (size_t i = 0; st == RT_OK && i < sizeof groups / sizeof groups[0]; i++) {
        int exists = 0;
        st = rt_ckpt_exists(f, groups[i], &exists);
        if (st == RT_OK && !exists)
            st = RT_ERROR(RT_ERR_FORMAT, "%s has no group %s", path, groups[i]);
    }
    if (st == RT_OK)
        st = rt_ckpt_foreach_tensor(f, "/", verify_tensor, &v);
    if (st == RT_OK)
        st = ckpt_foreach_bytes(f, "/", verify_bytes, &v);
    rt_free(v.buf);
    rt_status cst = rt_ckpt_file_close(f);
    RT_CHECK(st);
    RT_CHECK(cst);
    return RT_OK;
}

rt_status rt_ckpt_verify(rt_comm *comm, const char *ckpt_dir)
{
    rt_status st = verify_local(ckpt_dir, ckpt_rank(comm), ckpt_world(comm));
    RT_CHECK(ckpt_agree(comm, st));
    return RT_OK;
}
