/* Preprocessing with state, fitted on the training split and kept with
 * the model: standardisation of inputs (data.standardize) and of float
 * targets (data.standardize_target), and the format's encoding (a CSV's
 * categories and class names). All of it travels as one JSON text, in
 * every checkpoint (/data attribute "preprocessing") and in params.json,
 * and a resumed run applies the checkpoint's, so evaluation, resume and
 * exported models see exactly what training saw.
 *
 * Fitting protocol (collective; the statistics do not depend on the number
 * of ranks): the split's N samples are cut into B fixed blocks, B =
 * min(64, N) (fewer when the samples are very wide, see block_count). Rank
 * r sums blocks r, r + W, r + 2W, ... in double; each block has its own
 * slot in one all-reduce, which the other ranks fill with exact zeros, and
 * every rank then adds the blocks in block order. Two passes: the means,
 * then the sums of squared deviations from them (numerically safer than
 * sums of squares). The standard deviation is the population one (numpy's
 * default, scikit-learn's StandardScaler); a zero one counts as 1, as in
 * StandardScaler. A failed fetch on any rank is agreed before each
 * all-reduce, so no rank is left waiting in it. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "trainer.h"

#define FIT_MAX_BLOCKS 64
#define FIT_MAX_SLOTS ((size_t)1 << 22)   /* doubles in one pass's all-reduce (32 MiB) */

/* Blocks depend only on N and the sample width, never on the world size. */
static int64_t block_count(int64_t n, size_t width)
{
    int64_t b = n < FIT_MAX_BLOCKS ? n : FIT_MAX_BLOCKS;
    while (b > 1 && (size_t)b * width > FIT_MAX_SLOTS)
        b /= 2;
    return b < 1 ? 1 : b;
}

typedef struct fit {
    rt_dataset *ds;
    size_t nx, ny;        /* values fitted: inputs (0: not fitted), float targets (0: not) */
    size_t width;         /* nx + ny */
    int64_t n, blocks;
    float *x;             /* [input size] one sample */
    float *y;             /* [target_size] its target */
    double *slots;        /* [blocks][width] */
    double *mean, *var;   /* [width] */
} fit;

/* Adds sample i's values (minus `center` when not NULL, squared) into acc. */
static rt_status add_sample(fit *f, int64_t i, const double *center, double *acc)
{
    RT_CHECK(rt_dataset_fetch(f->ds, i, f->x, f->y));
    for (size_t v = 0; v < f->width; v++) {
        double value = v < f->nx ? f->x[v] : f->y[v - f->nx];
        if (!isfinite(value))
            return RT_ERROR(RT_ERR_FORMAT, "training sample %lld has a non-finite %s (%g): "
                            "fix the data (rtrain-data verify finds such values)", (long long)i,
                            v < f->nx ? "input value" : "target value", value);
        acc[v] += center ? (value - center[v]) * (value - center[v]) : value;
    }
    return RT_OK;
}

/* One pass: this rank's blocks summed into their slots, agreed, reduced,
 * then the blocks added in order into out[width]. */
static rt_status fit_pass(trainer *t, fit *f, const double *center, double *out)
{
    const rt_context *ctx = t->ctx;
    memset(f->slots, 0, (size_t)f->blocks * f->width * sizeof *f->slots);
    rt_status st = RT_OK;
    for (int64_t b = ctx->world_rank; st == RT_OK && b < f->blocks; b += ctx->world_size) {
        int64_t lo = b * f->n / f->blocks, hi = (b + 1) * f->n / f->blocks;
        for (int64_t i = lo; st == RT_OK && i < hi; i++)
            st = add_sample(f, i, center, f->slots + (size_t)b * f->width);
    }
    RT_CHECK(rt_session_agree(t->session, st));
    RT_CHECK(rt_comm_allreduce(t->comm, f->slots, (size_t)f->blocks * f->width,
                               RT_DTYPE_FLOAT64, RT_REDUCE_SUM));
    memset(out, 0, f->width * sizeof *out);
    for (int64_t b = 0; b < f->blocks; b++)
        for (size_t v = 0; v < f->width; v++)
            out[v] += f->slots[(size_t)b * f->width + v];
    for (size_t v = 0; v < f->width; v++)
        out[v] /= (double)f->n;
    return RT_OK;
}

static void fit_free(fit *f)
{
    rt_free(f->x);
    rt_free(f->y);
    rt_free(f->slots);
    rt_free(f->mean);
    rt_free(f->var);
}

/* Buffers of one fit; the same outcome on every rank (sizes are global). */
static rt_status fit_alloc(fit *f)
{
    const rt_sample_desc *d = rt_dataset_desc(f->ds);
    RT_CHECK(rt_alloc(&f->x, rt_sample_input_size(d), sizeof *f->x, "standardisation sample"));
    RT_CHECK(rt_alloc(&f->y, (size_t)d->target_size, 4, "standardisation target"));
    RT_CHECK(rt_alloc(&f->slots, (size_t)f->blocks * f->width, sizeof *f->slots,
                      "standardisation sums"));
    RT_CHECK(rt_alloc(&f->mean, f->width, sizeof *f->mean, "standardisation means"));
    RT_CHECK(rt_alloc(&f->var, f->width, sizeof *f->var, "standardisation variances"));
    return RT_OK;
}

/* Float statistics from the double sums; a zero std counts as 1. */
static rt_status store_stats(trainer *t, const fit *f)
{
    trainer_preprocess *p = &t->pre;
    RT_CHECK(rt_alloc(&p->stats, 2 * f->width, sizeof *p->stats, "standardisation"));
    for (size_t v = 0; v < f->width; v++) {
        double sd = sqrt(f->var[v]);
        p->stats[v] = (float)f->mean[v];
        p->stats[f->width + v] = sd > 0 ? (float)sd : 1.0f;
    }
    p->nx = f->nx;
    p->ny = f->ny;
    return RT_OK;
}

rt_status trainer_fit_standardization(trainer *t)
{
    const rt_config *c = t->cfg;
    const rt_sample_desc *d = rt_dataset_desc(t->train_set);
    if (!c->data.standardize && !c->data.standardize_target)
        return RT_OK;
    if (c->data.standardize_target && d->target != RT_TARGET_VECTOR)
        return rt_session_agree(t->session, RT_ERROR(RT_ERR_CONFIG, "data.standardize_target "
                                "needs a regression loss (float targets), but train.loss = "
                                "\"%s\" takes %s targets: remove it", c->train.loss,
                                rt_target_kind_name(d->target)));
    fit f = {.ds = t->train_set, .n = rt_dataset_count(t->train_set)};
    f.nx = c->data.standardize ? rt_sample_input_size(d) : 0;
    f.ny = c->data.standardize_target ? (size_t)d->target_size : 0;
    f.width = f.nx + f.ny;
    f.blocks = block_count(f.n, f.width);
    rt_status st = rt_session_agree(t->session, fit_alloc(&f));
    if (st == RT_OK)
        st = fit_pass(t, &f, NULL, f.mean);
    if (st == RT_OK)
        st = fit_pass(t, &f, f.mean, f.var);
    if (st == RT_OK)
        st = rt_session_agree(t->session, store_stats(t, &f));
    fit_free(&f);
    RT_CHECK(st);
    return rt_session_agree(t->session, trainer_apply_standardization(t));
}

rt_status trainer_apply_standardization(trainer *t)
{
    const trainer_preprocess *p = &t->pre;
    size_t width = p->nx + p->ny;
    rt_standardization s = {
        .x_mean = p->nx ? p->stats : NULL, .x_std = p->nx ? p->stats + width : NULL,
        .y_mean = p->ny ? p->stats + p->nx : NULL,
        .y_std = p->ny ? p->stats + width + p->nx : NULL,
    };
    if (t->train_set)   /* none when predicting */
        RT_CHECK(rt_dataset_set_standardization(t->train_set, &s));
    return rt_dataset_set_standardization(t->test_set, &s);
}

/* ---- the JSON text ------------------------------------------------------------------ */

static json_t *float_array(const float *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static json_t *stats_object(const float *mean, const float *std, size_t n)
{
    if (n == 0)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "mean", float_array(mean, n));
    json_object_set_new(o, "std", float_array(std, n));
    return o;
}

rt_status trainer_preprocessing_json(const trainer *t, char **out)
{
    *out = NULL;
    const trainer_preprocess *p = &t->pre;
    size_t width = p->nx + p->ny;
    const char *encoding = rt_dataset_encoding(t->train_set);
    json_t *root = json_object();
    json_t *enc = encoding ? json_loads(encoding, 0, NULL) : json_null();
    if (!root || !enc) {
        json_decref(root);
        json_decref(enc);
        return RT_ERROR(RT_ERR_INTERNAL, "the dataset's encoding is not valid JSON");
    }
    json_object_set_new(root, "encoding", enc);
    json_object_set_new(root, "standardize", stats_object(p->stats, p->stats + width, p->nx));
    json_object_set_new(root, "standardize_target",
                        stats_object(p->stats + p->nx, p->stats + width + p->nx, p->ny));
    /* What the model takes and gives (rtrain-predict checks data against
     * it and builds the model with it). */
    rt_shape in = rt_model_input_shape(t->model);
    json_object_set_new(root, "input_shape", json_pack("[iii]", in.c, in.h, in.w));
    json_object_set_new(root, "outputs",
                        json_integer((json_int_t)rt_shape_size(rt_model_output_shape(t->model))));
    /* 9 significant digits read every float back exactly. */
    *out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!*out)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory writing the preprocessing as JSON");
    return RT_OK;
}

/* n floats of member `key`.`field` of root into dst; n must match. */
static rt_status read_floats(json_t *root, const char *key, const char *field, float *dst,
                             size_t n, const char *where)
{
    json_t *a = json_object_get(json_object_get(root, key), field);
    if (!json_is_array(a) || json_array_size(a) != n)
        return RT_ERROR(RT_ERR_FORMAT, "%s: preprocessing %s.%s should hold %zu numbers for "
                        "this data", where, key, field, n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_number(v))
            return RT_ERROR(RT_ERR_FORMAT, "%s: preprocessing %s.%s[%zu] is not a number",
                            where, key, field, i);
        dst[i] = (float)json_number_value(v);
    }
    return RT_OK;
}

/* The checkpoint's standardisation replaces the fitted one; it must be
 * for the same kind of data (the same widths). */
static rt_status take_stats(trainer *t, json_t *root, const char *where)
{
    trainer_preprocess *p = &t->pre;
    size_t width = p->nx + p->ny;
    int has_x = json_is_object(json_object_get(root, "standardize"));
    int has_y = json_is_object(json_object_get(root, "standardize_target"));
    if (has_x != (p->nx > 0) || has_y != (p->ny > 0))
        return RT_ERROR(RT_ERR_CONFIG, "%s was trained with data.standardize = %s and "
                        "data.standardize_target = %s: set them the same to resume from it",
                        where, has_x ? "true" : "false", has_y ? "true" : "false");
    if (p->nx) {
        RT_CHECK(read_floats(root, "standardize", "mean", p->stats, p->nx, where));
        RT_CHECK(read_floats(root, "standardize", "std", p->stats + width, p->nx, where));
    }
    if (p->ny) {
        RT_CHECK(read_floats(root, "standardize_target", "mean", p->stats + p->nx, p->ny,
                             where));
        RT_CHECK(read_floats(root, "standardize_target", "std", p->stats + width + p->nx,
                             p->ny, where));
    }
    return trainer_apply_standardization(t);
}

/* The data's encoding is learned again from the same training file on a
 * resume; a different one (the file changed) would feed the model other
 * columns, so it is refused. */
static rt_status same_encoding(const trainer *t, json_t *root, const char *where)
{
    if (!t->train_set)   /* predicting: the data was opened with this encoding */
        return RT_OK;
    const char *mine = rt_dataset_encoding(t->train_set);
    json_t *now = mine ? json_loads(mine, 0, NULL) : json_null();
    json_t *then = json_object_get(root, "encoding");
    int equal = then ? json_equal(now, then) : 0;
    json_decref(now);
    if (!equal)
        return RT_ERROR(RT_ERR_CONFIG, "the training data's encoding (its columns, categories "
                        "or class names) differs from the one %s was trained with: resume "
                        "with the same training file, or start a new run", where);
    return RT_OK;
}

rt_status trainer_apply_preprocessing_json(trainer *t, const char *text, const char *where)
{
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    if (!json_is_object(root)) {
        json_decref(root);
        return RT_ERROR(RT_ERR_FORMAT, "%s: its preprocessing is not valid JSON (%s)", where,
                        err.text);
    }
    rt_status st = same_encoding(t, root, where);
    if (st == RT_OK && t->pre.nx + t->pre.ny > 0)
        st = take_stats(t, root, where);
    else if (st == RT_OK && (json_is_object(json_object_get(root, "standardize")) ||
                             json_is_object(json_object_get(root, "standardize_target"))))
        st = RT_ERROR(RT_ERR_CONFIG, "%s was trained with standardised data: set "
                      "data.standardize (and data.standardize_target) as it had them",
                      where);
    json_decref(root);
    return st;
}

void trainer_preprocess_free(trainer *t)
{
    rt_free(t->pre.stats);
    t->pre = (trainer_preprocess){0};
    free(t->preprocessing);
    t->preprocessing = NULL;
}
