/* Batch prediction with a trained model (rt_predict, rtrain-predict): the
 * checkpoint's model on new data, with exactly the preprocessing training
 * used, on any number of ranks, into one output file.
 *
 * What comes from the run and not from the user: the model (params.json of
 * the checkpoint's run directory, its weights from the checkpoint), the
 * loss (which says what the outputs are: class scores, values, labels), the
 * input transforms (data.normalize), the columns and categories of a table
 * and the class names (the encoding), and the standardisation: the
 * checkpoint's "preprocessing" JSON, the one its evaluation used.
 *
 * Protocol (every step's outcome agreed before the next): verify the
 * checkpoint (ranks share the datasets) -> read params.json and the
 * preprocessing on every rank -> open the data, check it against the shape
 * and outputs the checkpoint recorded -> the evaluation's loader (global
 * batches of batch_size x ranks rows, in file order; rank r takes the block
 * [r*batch_size, (r+1)*batch_size) of each: the batches a one-rank run
 * reads, so the same bits on any number of ranks) -> build the model, load
 * its weights -> create the output under a temporary name -> the trainer's
 * evaluation loop (trainer_evaluate) with a hook: after each batch's
 * forward a rank turns its outputs into rows; once the batch is agreed,
 * every rank writes its rows: HDF5 collectively (rt_ckpt_write_rows), CSV
 * at offsets computed from an all-gather of the ranks' text lengths (pwrite
 * into one file) -> close, agree, rank 0 syncs and renames the temporary
 * over the output. A failure anywhere removes the temporary: no half file
 * is ever left under the output's name. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/fs.h"
#include "trainer.h"

#define PREDICT_FILE_MODE 0644
#define PREDICT_MAX_CLASSES 100000   /* names in a CSV header */

typedef enum out_kind { OUT_HDF5 = 0, OUT_CSV } out_kind;

typedef struct predictor {
    trainer t;                  /* the evaluation's part of a trainer: data, loader, model */
    const rt_predict_opts *o;
    rt_config cfg;
    char dir[RT_CKPT_PATH_MAX];        /* the checkpoint directory */
    char tmp[RT_CKPT_PATH_MAX + 16];   /* the output's temporary name */
    char *preprocessing;        /* the checkpoint's JSON */
    char *encoding;             /* its "encoding" member as text (NULL: none) */
    rt_shape in;                /* the model's input shape, as recorded */
    int outputs;                /* values the model gives per sample, as recorded */
    int labelled;               /* the data has targets: metrics too */
    rt_loss_metrics kind;
    char **classes;             /* class names of the encoding, or NULL */
    int nclasses;
    out_kind out;
    rt_ckpt_file *h5;           /* OUT_HDF5 */
    int fd;                     /* OUT_CSV */
    int64_t offset;             /* OUT_CSV: bytes written so far (all ranks) */
    int64_t rows_total;
    /* This rank's rows of the current batch. */
    int64_t first;
    int n;
    float *host;                /* [max batch][outputs]: the model's outputs */
    float *values;              /* [max batch][outputs]: probabilities or outputs */
    int64_t *pred, *row;        /* [max batch] */
    char *text;                 /* OUT_CSV: this rank's lines of the batch */
    size_t text_len, text_cap;
    int64_t *lengths;           /* [world] */
} predictor;

/* ---- the checkpoint and its run ------------------------------------------------- */

/* A checkpoint argument: the directory, or its checkpoint.h5. */
static rt_status checkpoint_dir(predictor *p)
{
    struct stat sb;
    const char *arg = p->o->checkpoint;
    RT_CHECK(rt_fs_path(p->dir, sizeof p->dir, "%s", arg));
    if (stat(arg, &sb) != 0)
        return RT_ERROR(RT_ERR_CONFIG, "checkpoint %s: %s (give a checkpoint directory, "
                        "RUN/checkpoint_NNNNNN, or its checkpoint.h5)", arg, strerror(errno));
    if (S_ISREG(sb.st_mode)) {
        char *slash = strrchr(p->dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(p->dir, sizeof p->dir, ".");
    }
    return RT_OK;
}

/* params.json of the run the checkpoint belongs to (its parent directory). */
static rt_status load_config(predictor *p)
{
    char path[RT_CKPT_PATH_MAX + 32];
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/../params.json", p->dir));
    if (access(path, R_OK) != 0)
        return RT_ERROR(RT_ERR_CONFIG, "%s: %s: the checkpoint's run directory must hold the "
                        "run's params.json (it records the model); keep the checkpoint "
                        "inside its run directory", path, strerror(errno));
    RT_CHECK(rt_config_load_params(&p->cfg, path));
    p->t.loss = rt_loss_find(p->cfg.train.loss);
    if (!p->t.loss)
        return RT_ERROR(RT_ERR_CONFIG, "%s: train.loss '%s' is not a loss of this rtrain",
                        path, p->cfg.train.loss);
    p->kind = rt_loss_metric_kind(p->t.loss);
    return RT_OK;
}

static rt_status class_names(predictor *p, json_t *enc)
{
    json_t *names = json_object_get(enc, "classes");
    if (!json_is_array(names))
        return RT_OK;
    size_t n = json_array_size(names);
    if (n > PREDICT_MAX_CLASSES)
        return RT_ERROR(RT_ERR_FORMAT, "%s: its encoding names %zu classes", p->dir, n);
    RT_CHECK(rt_alloc(&p->classes, n, sizeof *p->classes, "class names"));
    p->nclasses = (int)n;
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(names, i));
        if (!name || !(p->classes[i] = strdup(name)))
            return RT_ERROR(RT_ERR_FORMAT, "%s: class name %zu of its encoding is not text",
                            p->dir, i);
    }
    return RT_OK;
}

/* What the checkpoint recorded: the encoding, the class names, the model's
 * input shape and number of outputs. */
static rt_status parse_record(predictor *p)
{
    json_error_t err;
    json_t *root = p->preprocessing ? json_loads(p->preprocessing, 0, &err) : NULL;
    if (!json_is_object(root)) {
        json_decref(root);
        return RT_ERROR(RT_ERR_FORMAT, "checkpoint %s records no preprocessing (it was written "
                        "by an older rtrain): it cannot be used for prediction", p->dir);
    }
    rt_status st = RT_OK;
    json_t *enc = json_object_get(root, "encoding"), *shape = json_object_get(root, "input_shape");
    json_int_t outputs = json_integer_value(json_object_get(root, "outputs"));
    if (!json_is_array(shape) || json_array_size(shape) != 3 || outputs < 1)
        st = RT_ERROR(RT_ERR_FORMAT, "checkpoint %s does not record the model's input shape "
                      "and outputs (written by an older rtrain): it cannot be used for "
                      "prediction", p->dir);
    if (st == RT_OK) {
        p->in = (rt_shape){(int)json_integer_value(json_array_get(shape, 0)),
                           (int)json_integer_value(json_array_get(shape, 1)),
                           (int)json_integer_value(json_array_get(shape, 2))};
        p->outputs = (int)outputs;
    }
    if (st == RT_OK && json_is_object(enc)) {
        p->encoding = json_dumps(enc, JSON_COMPACT);
        if (!p->encoding)
            st = RT_ERROR(RT_ERR_NOMEM, "out of memory reading the encoding");
        if (st == RT_OK)
            st = class_names(p, enc);
    }
    json_decref(root);
    return st;
}

/* Every rank reads the configuration and the record; outcomes agreed. */
static rt_status read_checkpoint(predictor *p)
{
    rt_session *s = p->t.session;
    RT_CHECK(rt_session_agree(s, checkpoint_dir(p)));
    rt_status st = rt_ckpt_verify(p->t.comm, p->dir);
    if (st != RT_OK) {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", rt_error_message());
        rt_error_clear();
        st = RT_ERROR(RT_ERR_FORMAT, "checkpoint %s is not valid (as rtrain-ckpt verify "
                      "checks it): %s", p->dir, msg);
    }
    RT_CHECK(rt_session_agree(s, st));
    RT_CHECK(rt_session_agree(s, load_config(p)));
    RT_CHECK(rt_ckpt_read_preprocessing(p->t.comm, p->dir, &p->preprocessing));
    return rt_session_agree(s, parse_record(p));
}

/* ---- the data ---------------------------------------------------------------------- */

static const char *extension(const char *path)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

/* --format, else the input's extension, else the run's data.format. */
static const char *input_format(const predictor *p)
{
    if (p->o->format && p->o->format[0])
        return p->o->format;
    const char *ext = extension(p->o->input);
    if (!strcmp(ext, "h5") || !strcmp(ext, "hdf5"))
        return "hdf5";
    if (!strcmp(ext, "csv") || (!strcmp(ext, "gz") && strstr(p->o->input, ".csv.")))
        return "csv";
    return p->cfg.data.format;
}

static int is_none(const char *v) { return v && !strcmp(v, "none"); }

/* The source as the run's evaluation split was read, on the input file. */
static rt_status data_source(predictor *p, const char *format, rt_data_source *src)
{
    const rt_config *c = &p->cfg;
    const rt_predict_opts *o = p->o;
    trainer *t = &p->t;
    for (int i = 0; i < c->data.num_features; i++)
        t->features[i] = c->data.features[i];
    for (int i = 0; i < c->data.num_categorical; i++)
        t->categorical[i] = c->data.categorical[i];
    *src = (rt_data_source){
        .file = o->input, .target = rt_loss_target(t->loss),
        .features = t->features, .num_features = c->data.num_features,
        .categorical = t->categorical, .num_categorical = c->data.num_categorical,
        .fill_missing = (rt_fill_policy)rt_config_fill_policy(c),
        /* HDF5 rows are read from the file as a rank reaches them: each rank
         * reads only its own blocks (fetches run on this thread: prefetch 0). */
        .cache = RT_CACHE_NONE,
        .encoding = p->encoding, .no_target = is_none(o->label),
    };
    if (!strcmp(format, "idx")) {   /* x: images; labels only when given */
        src->x = o->input;
        src->y = o->label && !is_none(o->label) ? o->label : NULL;
        src->no_target = src->y == NULL;
    } else if (!strcmp(format, "hdf5")) {
        src->x = o->x ? o->x : c->data.test_x[0] ? c->data.test_x : c->data.train_x;
        src->y = o->label && !is_none(o->label) ? o->label
                 : c->data.test_y[0] ? c->data.test_y : c->data.train_y;
    } else {
        src->target_column = o->label && !is_none(o->label) ? o->label : c->data.target;
    }
    p->labelled = !src->no_target;
    return RT_OK;
}

/* The data must give the model what it was trained on. */
static rt_status check_data(predictor *p, const char *format)
{
    const rt_sample_desc *d = rt_dataset_desc(p->t.test_set);
    rt_shape have;
    RT_CHECK(rt_sample_model_shape(d, &have));
    if (have.c != p->in.c || have.h != p->in.h || have.w != p->in.w)
        return RT_ERROR(RT_ERR_CONFIG, "%s: its samples have shape [%d, %d, %d] (%zu values) "
                        "but the model of %s takes [%d, %d, %d] (%zu values): give data like "
                        "the training data (data.format = \"%s\"%s)", p->o->input, have.c,
                        have.h, have.w, rt_shape_size(have), p->dir, p->in.c, p->in.h,
                        p->in.w, rt_shape_size(p->in), format,
                        !strcmp(format, "hdf5") ? "; --x names the inputs' dataset" : "");
    if (p->labelled && d->target != rt_loss_target(p->t.loss))
        return RT_ERROR(RT_ERR_CONFIG, "%s: its targets are %s but the model's loss %s takes "
                        "%s targets: pass --label none to predict without them", p->o->input,
                        rt_target_kind_name(d->target), rt_loss_name(p->t.loss),
                        rt_target_kind_name(rt_loss_target(p->t.loss)));
    if (p->labelled && d->target == RT_TARGET_CLASS && d->num_classes > p->outputs)
        return RT_ERROR(RT_ERR_CONFIG, "%s: it has labels up to %d but the model of %s has %d "
                        "classes", p->o->input, d->num_classes - 1, p->dir, p->outputs);
    if (p->labelled && d->target == RT_TARGET_VECTOR && d->target_size != p->outputs)
        return RT_ERROR(RT_ERR_CONFIG, "%s: each target has %d values but the model of %s "
                        "gives %d", p->o->input, d->target_size, p->dir, p->outputs);
    return RT_OK;
}

static rt_status open_data(predictor *p)
{
    const char *format = input_format(p);
    rt_data_source src;
    RT_CHECK(data_source(p, format, &src));
    rt_status st = rt_dataset_open(&p->t.test_set, format, &src, &p->cfg.data.transform);
    const char *label = src.target_column ? src.target_column : src.y;
    if (st != RT_OK && p->labelled && label && strstr(rt_error_message(), label)) {
        char msg[2048];   /* the targets are missing: say how to do without them */
        snprintf(msg, sizeof msg, "%s", rt_error_message());
        rt_error_clear();
        st = RT_ERROR(st, "%s; for data without targets pass --label none", msg);
    }
    RT_CHECK(st);
    return check_data(p, format);
}

/* The checkpoint's standardisation on the data (sized by the config's
 * data.standardize keys, as training fitted it). */
static rt_status standardise(predictor *p)
{
    trainer *t = &p->t;
    const rt_config *c = &p->cfg;
    t->pre.nx = c->data.standardize ? rt_shape_size(p->in) : 0;
    t->pre.ny = c->data.standardize_target ? (size_t)p->outputs : 0;
    size_t width = t->pre.nx + t->pre.ny;
    if (width)
        RT_CHECK(rt_alloc(&t->pre.stats, 2 * width, sizeof *t->pre.stats, "standardisation"));
    return trainer_apply_preprocessing_json(t, p->preprocessing, p->dir);
}

/* ---- the model --------------------------------------------------------------------------- */

/* The run's host backend (predictions run on the CPU; a GPU run's model
 * runs on the default one, without loading the GPU library). */
static const rt_backend *backend_of(const rt_config *c)
{
    const char *name = c->scaling.backend;
    int host_named = name[0] && strcmp(name, "auto") && strcmp(name, "cuda");
    const rt_backend *be = host_named ? rt_backend_find(name) : NULL;
    return be && (be->flags & RT_BACKEND_HOST_MEMORY) ? be : rt_backend_default();
}

static rt_status build_model(predictor *p)
{
    trainer *t = &p->t;
    rt_model_spec spec = p->cfg.model;
    if (spec.num_classes == 0)   /* "from the data" when training: as recorded */
        spec.num_classes = p->outputs;
    spec.bn_sync = 0;            /* evaluation mode: running statistics only */
    RT_CHECK(rt_model_create(&t->model, backend_of(&p->cfg), &spec, p->in,
                             rt_loader_max_local_batch(t->test_loader),
                             (uint64_t)p->cfg.train.seed));
    int outputs = (int)rt_shape_size(rt_model_output_shape(t->model));
    if (outputs != p->outputs)
        return RT_ERROR(RT_ERR_FORMAT, "%s: the model of params.json gives %d outputs but the "
                        "checkpoint records %d: params.json is not this checkpoint's", p->dir,
                        outputs, p->outputs);
    return RT_OK;
}

static rt_status load_weights(predictor *p, rt_ckpt_info *info)
{
    rt_train_state state = {.model = p->t.model};
    char digest[RT_CKPT_DIGEST_MAX];
    RT_CHECK(rt_session_agree(p->t.session, rt_config_digest(&p->cfg, digest, sizeof digest)));
    RT_CHECK(rt_ckpt_load(p->t.comm, p->dir, &state, RT_CKPT_LOAD_MODEL, info));
    if (strcmp(digest, info->config_digest) && p->t.ctx->world_rank == 0)
        rt_info("note: %s/../params.json differs from the configuration %s was saved with "
                "(the run went on with other settings); the model's shapes match it", p->dir,
                p->dir);
    return RT_OK;
}

/* ---- rows of the output ------------------------------------------------------------------- */

/* One sample's values: softmax probabilities (a classifier), sigmoid ones
 * (multilabel), or the outputs in the targets' own units (regression). */
static void row_values(const predictor *p, const float *out, float *v, int64_t *pred)
{
    int k = p->outputs;
    int best = 0;
    for (int j = 1; j < k; j++)
        best = out[j] > out[best] ? j : best;
    *pred = best;
    if (p->kind == RT_METRICS_CLASSIFY) {
        double sum = 0.0;
        for (int j = 0; j < k; j++)
            sum += exp((double)out[j] - (double)out[best]);
        for (int j = 0; j < k; j++)
            v[j] = (float)(exp((double)out[j] - (double)out[best]) / sum);
    } else if (p->kind == RT_METRICS_MULTILABEL) {
        for (int j = 0; j < k; j++)
            v[j] = (float)(1.0 / (1.0 + exp(-(double)out[j])));
    } else {
        const trainer_preprocess *pre = &p->t.pre;
        size_t width = pre->nx + pre->ny;
        for (int j = 0; j < k; j++)
            v[j] = pre->ny ? out[j] * pre->stats[width + pre->nx + (size_t)j] +
                             pre->stats[pre->nx + (size_t)j]
                           : out[j];
    }
}

static rt_status text_add(predictor *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static rt_status text_add(predictor *p, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = p->text_cap - p->text_len;
        int n = vsnprintf(p->text ? p->text + p->text_len : NULL, p->text ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return RT_ERROR(RT_ERR_INTERNAL, "cannot format a line of %s", p->o->output);
        if (p->text && (size_t)n < room) {
            p->text_len += (size_t)n;
            return RT_OK;
        }
        size_t cap = p->text_cap ? 2 * p->text_cap : 1 << 16;
        while (cap - p->text_len <= (size_t)n)
            cap *= 2;
        char *grown = realloc(p->text, cap);
        if (!grown)
            return RT_ERROR(RT_ERR_NOMEM, "out of memory formatting %s", p->o->output);
        p->text = grown;
        p->text_cap = cap;
    }
}

/* A CSV cell: a class name quoted when it needs it (RFC 4180). */
static rt_status csv_cell(predictor *p, const char *text)
{
    if (!strpbrk(text, ",\"\r\n"))
        return text_add(p, "%s", text);
    RT_CHECK(text_add(p, "\""));
    for (const char *c = text; *c; c++)
        RT_CHECK(text_add(p, *c == '"' ? "\"\"" : "%c", *c));
    return text_add(p, "\"");
}

/* This rank's lines of the batch: row,prediction,values... */
static rt_status csv_lines(predictor *p)
{
    p->text_len = 0;
    int classify = p->kind != RT_METRICS_REGRESS;
    for (int i = 0; i < p->n; i++) {
        RT_CHECK(text_add(p, "%lld", (long long)p->row[i]));
        if (classify) {
            RT_CHECK(text_add(p, ","));
            if (p->classes && p->pred[i] < p->nclasses)
                RT_CHECK(csv_cell(p, p->classes[p->pred[i]]));
            else
                RT_CHECK(text_add(p, "%lld", (long long)p->pred[i]));
        }
        for (int j = 0; j < p->outputs; j++)
            RT_CHECK(text_add(p, ",%.9g", (double)p->values[(size_t)i * p->outputs + j]));
        RT_CHECK(text_add(p, "\n"));
    }
    return RT_OK;
}

/* Hook, after this rank's forward of b: its rows from the outputs. */
static rt_status on_batch(void *arg, const rt_batch *b, const float *out)
{
    predictor *p = arg;
    p->first = b->first;   /* no shuffle: positions are rows of the file */
    p->n = b->n;
    size_t k = (size_t)p->outputs;
    RT_CHECK(rt_model_backend(p->t.model)->download(p->host, out, (size_t)b->n * k * 4));
    for (int i = 0; i < b->n; i++) {
        row_values(p, p->host + (size_t)i * k, p->values + (size_t)i * k, &p->pred[i]);
        p->row[i] = p->first + i;
    }
    return p->out == OUT_CSV ? csv_lines(p) : RT_OK;
}

static const char *values_name(const predictor *p)
{
    return p->kind == RT_METRICS_REGRESS ? "/outputs" : "/probabilities";
}

/* CSV: each rank's lines go after those of the ranks before it. */
static rt_status write_csv_rows(predictor *p)
{
    const rt_context *ctx = p->t.ctx;
    int64_t mine = (int64_t)p->text_len;
    RT_CHECK(rt_comm_allgather(p->t.comm, &mine, p->lengths, 1, RT_DTYPE_INT64));
    int64_t at = p->offset, total = 0;
    for (int r = 0; r < ctx->world_size; r++) {
        at += r < ctx->world_rank ? p->lengths[r] : 0;
        total += p->lengths[r];
    }
    rt_status st = RT_OK;
    for (size_t done = 0; st == RT_OK && done < p->text_len;) {
        ssize_t w = pwrite(p->fd, p->text + done, p->text_len - done, (off_t)(at + (int64_t)done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            st = RT_ERROR(RT_ERR_IO, "cannot write %s: %s", p->tmp,
                          w < 0 ? strerror(errno) : "no progress (disk full?)");
        else
            done += (size_t)w;
    }
    p->offset += total;
    return rt_session_agree(p->t.session, st);
}

/* Hook, on every rank once the batch is agreed: its rows into the file. */
static rt_status on_agreed(void *arg, const rt_batch *b)
{
    predictor *p = arg;
    if (b->n == 0) {   /* this rank had no rows of the batch */
        p->first = 0;
        p->n = 0;
        p->text_len = 0;
    }
    if (p->out == OUT_CSV)
        return write_csv_rows(p);
    RT_CHECK(rt_ckpt_write_rows(p->h5, values_name(p), RT_DTYPE_FLOAT32, p->first, p->n,
                                p->values));
    if (p->kind != RT_METRICS_REGRESS)
        RT_CHECK(rt_ckpt_write_rows(p->h5, "/prediction", RT_DTYPE_INT64, p->first, p->n,
                                    p->pred));
    return rt_ckpt_write_rows(p->h5, "/row", RT_DTYPE_INT64, p->first, p->n, p->row);
}

/* ---- the output file ------------------------------------------------------------------ */

static rt_status output_kind(predictor *p)
{
    const char *ext = extension(p->o->output);
    if (!strcmp(ext, "h5") || !strcmp(ext, "hdf5"))
        p->out = OUT_HDF5;
    else if (!strcmp(ext, "csv"))
        p->out = OUT_CSV;
    else
        return RT_ERROR(RT_ERR_CONFIG, "output %s: name it .h5 (HDF5) or .csv", p->o->output);
    return RT_OK;
}

/* The CSV header: row,prediction,p_<class>... (classes by name when the
 * encoding recorded names) or row,<target> / row,output_<j> (regression). */
static rt_status csv_header(predictor *p)
{
    p->text_len = 0;
    RT_CHECK(text_add(p, "row"));
    if (p->kind == RT_METRICS_REGRESS) {
        json_t *enc = p->encoding ? json_loads(p->encoding, 0, NULL) : NULL;
        const char *target = json_string_value(json_object_get(enc, "target"));
        rt_status st = RT_OK;
        if (target && p->outputs == 1) {
            st = text_add(p, ",");
            if (st == RT_OK)
                st = csv_cell(p, target);
        }
        for (int j = 0; st == RT_OK && !(target && p->outputs == 1) && j < p->outputs; j++)
            st = text_add(p, ",output_%d", j);
        json_decref(enc);
        RT_CHECK(st);
        return text_add(p, "\n");
    }
    RT_CHECK(text_add(p, ",prediction"));
    for (int j = 0; j < p->outputs; j++) {
        if (p->classes && j < p->nclasses) {
            char name[512];
            snprintf(name, sizeof name, "p_%s", p->classes[j]);
            RT_CHECK(text_add(p, ","));
            RT_CHECK(csv_cell(p, name));
        } else {
            RT_CHECK(text_add(p, ",p_%d", j));
        }
    }
    return text_add(p, "\n");
}

/* Rank 0 creates the temporary (a path that cannot be written fails here,
 * before any work) and, for CSV, writes the header (in p->text). */
static rt_status create_on_rank0(predictor *p)
{
    int fd = -1;
    if (rt_fs_open_write(&fd, p->tmp, 0, PREDICT_FILE_MODE, "check the output path and its "
                         "directory's permissions") != RT_OK) {
        char msg[2048];   /* a path the user gave: an input error (exit 2) */
        snprintf(msg, sizeof msg, "%s", rt_error_message());
        rt_error_clear();
        return RT_ERROR(RT_ERR_CONFIG, "output %s: %s", p->o->output, msg);
    }
    rt_status st = RT_OK;
    if (p->out == OUT_CSV)
        st = rt_fs_write_all(fd, p->text, p->text_len, p->tmp);
    close(fd);
    return st;
}

static rt_status create_h5(predictor *p)
{
    int64_t n = p->rows_total;
    RT_CHECK(rt_ckpt_file_create(&p->h5, p->t.comm, p->tmp));
    RT_CHECK(rt_ckpt_create_rows(p->h5, values_name(p), RT_DTYPE_FLOAT32, n, p->outputs));
    if (p->kind != RT_METRICS_REGRESS)
        RT_CHECK(rt_ckpt_create_rows(p->h5, "/prediction", RT_DTYPE_INT64, n, 0));
    RT_CHECK(rt_ckpt_create_rows(p->h5, "/row", RT_DTYPE_INT64, n, 0));
    RT_CHECK(rt_ckpt_attr_set_string(p->h5, "/", "checkpoint", p->dir));
    RT_CHECK(rt_ckpt_attr_set_string(p->h5, "/", "loss", rt_loss_name(p->t.loss)));
    if (!p->classes)
        return RT_OK;
    json_t *names = json_array();
    for (int j = 0; names && j < p->nclasses; j++)
        json_array_append_new(names, json_string(p->classes[j]));
    char *text = names ? json_dumps(names, JSON_COMPACT) : NULL;
    json_decref(names);
    rt_status st = text ? rt_ckpt_attr_set_string(p->h5, "/", "classes", text)
                        : RT_ERROR(RT_ERR_NOMEM, "out of memory writing the class names");
    free(text);
    return st;
}

static rt_status open_output(predictor *p)
{
    rt_session *s = p->t.session;
    RT_CHECK(rt_session_agree(s, output_kind(p)));
    if (p->out == OUT_CSV)   /* every rank knows the header's length */
        RT_CHECK(rt_session_agree(s, csv_header(p)));
    p->offset = (int64_t)p->text_len;
    RT_CHECK(rt_session_agree(s, rt_fs_temp_path(p->tmp, sizeof p->tmp, p->o->output)));
    RT_CHECK(rt_session_agree(s, p->t.ctx->world_rank == 0 ? create_on_rank0(p) : RT_OK));
    p->rows_total = rt_dataset_count(p->t.test_set);
    if (p->out == OUT_HDF5)
        return create_h5(p);
    rt_status st = RT_OK;
    p->fd = open(p->tmp, O_WRONLY | O_CLOEXEC);
    if (p->fd < 0)
        st = RT_ERROR(RT_ERR_IO, "cannot open %s on this rank: %s (the output must be on a "
                      "file system every rank sees)", p->tmp, strerror(errno));
    return rt_session_agree(s, st);
}

/* Closes the output; with st == RT_OK syncs it and renames it over the
 * output (rank 0), else removes the temporary. Collective. */
static rt_status finish_output(predictor *p, rt_status st)
{
    if (p->h5) {
        rt_status c = rt_ckpt_file_close(p->h5);
        p->h5 = NULL;
        st = st == RT_OK ? c : st;
    }
    if (p->fd >= 0) {
        rt_status c = fsync(p->fd) == 0 ? RT_OK
                      : RT_ERROR(RT_ERR_IO, "cannot sync %s: %s", p->tmp, strerror(errno));
        close(p->fd);
        p->fd = -1;
        st = rt_session_agree(p->t.session, st == RT_OK ? c : st);
    }
    if (!p->tmp[0] || p->t.ctx->world_rank != 0)
        return st;
    rt_status done = st;
    if (st == RT_OK)
        done = rt_fs_fsync(p->tmp, 0);
    if (done == RT_OK && rename(p->tmp, p->o->output) != 0)
        done = RT_ERROR(RT_ERR_IO, "cannot rename %s to %s: %s", p->tmp, p->o->output,
                        strerror(errno));
    if (done != RT_OK)
        remove(p->tmp);
    return done;
}

/* ---- the whole ------------------------------------------------------------------------- */

static rt_status prepare(predictor *p)
{
    trainer *t = &p->t;
    rt_session *s = t->session;
    RT_CHECK(read_checkpoint(p));
    t->threads = rt_session_set_threads(s, p->o->threads > 0 ? p->o->threads
                                                            : p->cfg.scaling.threads_per_worker);
    RT_CHECK(rt_session_agree(s, open_data(p)));
    RT_CHECK(rt_session_agree(s, standardise(p)));
    /* Each rank's batches are those of a one-rank run: the same bits. */
    rt_loader_opts lo = {.global_batch = (int64_t)p->o->batch_size * t->ctx->world_size,
                         .rank_block = p->o->batch_size};
    RT_CHECK(rt_prepare_data_loader(s, t->test_set, &lo, &t->test_loader));
    RT_CHECK(rt_session_agree(s, build_model(p)));
    size_t rows = (size_t)rt_loader_max_local_batch(t->test_loader), k = (size_t)p->outputs;
    rt_status st = rt_alloc(&p->host, rows * k, sizeof *p->host, "model outputs");
    if (st == RT_OK)
        st = rt_alloc(&p->values, rows * k, sizeof *p->values, "predictions");
    if (st == RT_OK)
        st = rt_alloc(&p->pred, rows, sizeof *p->pred, "predictions");
    if (st == RT_OK)
        st = rt_alloc(&p->row, rows, sizeof *p->row, "row indices");
    if (st == RT_OK)
        st = rt_alloc(&p->lengths, (size_t)t->ctx->world_size, sizeof *p->lengths, "lengths");
    if (st == RT_OK && p->labelled)
        st = eval_sums_init(&t->eval, t);
    return rt_session_agree(s, st);
}

static void print_summary(predictor *p, const rt_ckpt_info *info, double seconds)
{
    FILE *f = p->o->report ? p->o->report : stdout;
    trainer *t = &p->t;
    fprintf(f, "rtrain-predict: %lld rows of %s -> %s (%d rank(s) x %d thread(s), %.2f s)\n",
            (long long)p->rows_total, p->o->input, p->o->output, t->ctx->world_size,
            t->threads, seconds);
    if (!p->labelled)
        return;
    rt_metric m[TRAINER_MAX_METRICS];
    int count = 0;
    eval_metrics(t, &t->eval, m, &count);
    fprintf(f, "evaluation:");
    for (int i = 0; i < count; i++)
        fprintf(f, " %s=%.6g", m[i].name, m[i].value);
    fprintf(f, "\ncheckpoint: ");
    for (int i = 0, shown = 0; i < info->num_metrics; i++)
        if (!strncmp(info->metric_names[i], "val_", 4))
            fprintf(f, "%s%s=%.6g", shown++ ? " " : "", info->metric_names[i],
                    info->metric_values[i]);
    fprintf(f, " (recorded by training on its evaluation data)\n");
}

static void predictor_free(predictor *p)
{
    trainer *t = &p->t;
    rt_model_free(t->model);
    rt_loader_free(t->test_loader);
    rt_dataset_free(t->test_set);
    rt_free(t->pre.stats);
    eval_sums_free(&t->eval);
    free(p->preprocessing);
    free(p->encoding);
    for (int i = 0; p->classes && i < p->nclasses; i++)
        free(p->classes[i]);
    rt_free(p->classes);
    rt_free(p->host);
    rt_free(p->values);
    rt_free(p->pred);
    rt_free(p->row);
    rt_free(p->lengths);
    free(p->text);
}

rt_status rt_predict(rt_session *s, const rt_predict_opts *o)
{
    predictor *p = NULL;
    rt_status st = !o || !o->checkpoint || !o->input || !o->output || o->batch_size < 1
                       ? RT_ERROR(RT_ERR_INVALID_ARG, "rt_predict: checkpoint, input, output "
                                  "and a batch size >= 1 are required")
                       : rt_alloc(&p, 1, sizeof *p, "predictor");
    RT_CHECK(rt_session_agree(s, st));
    p->o = o;
    p->fd = -1;
    p->t = (trainer){.session = s, .cfg = &p->cfg, .ctx = rt_session_context(s),
                     .comm = rt_session_comm(s)};
    double start = rt_time_now();
    rt_ckpt_info info;
    st = prepare(p);
    if (st == RT_OK)
        st = load_weights(p, &info);
    if (st == RT_OK)
        st = open_output(p);
    if (st == RT_OK) {
        trainer_eval_hook hook = {on_batch, on_agreed, p};
        st = trainer_evaluate(&p->t, p->labelled ? &p->t.eval : NULL, &hook);
    }
    if (p->tmp[0])
        st = rt_session_agree(s, finish_output(p, st));
    if (st == RT_OK && p->t.ctx->world_rank == 0)
        print_summary(p, &info, rt_time_now() - start);
    predictor_free(p);
    rt_free(p);
    return st;
}
