/* The generic dataset: a sample count, a sample description, a table of
 * functions (fetch, destroy) over an implementation pointer, and the
 * transform chain applied to every fetched input. Every format (idx files,
 * user callbacks) is one such table, so the loader never needs to know
 * where samples come from.
 *
 * Ownership: on success the dataset owns `impl` and rt_dataset_free calls
 * ops->destroy(impl); when rt_dataset_create fails the caller still owns it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rtrain/data.h"
#include "data/formats.h"

struct rt_dataset {
    rt_dataset_ops ops;   /* copied: callers may pass a stack table */
    void *impl;
    int64_t count;
    rt_sample_desc desc;
    rt_transform_chain transforms;
    char *encoding;       /* JSON text learned by the format, or NULL */
    int64_t block_rows;   /* rows the format reads together (0: any order is as cheap) */
    float *x_mean, *x_std;   /* [input size] standardisation, or NULL */
    float *y_mean, *y_std;   /* [target_size] (vector targets), or NULL */
    rt_dataset_row_fn row;   /* where a sample's stored input lies (formats.h), or NULL */
};

/* ---- sample descriptions --------------------------------------------------------- */

size_t rt_sample_input_size(const rt_sample_desc *d)
{
    size_t n = 1;
    for (int i = 0; i < d->ndim; i++)
        n *= (size_t)d->shape[i];
    return n;
}

size_t rt_sample_target_bytes(const rt_sample_desc *d)
{
    return 4 * (size_t)(d->target == RT_TARGET_CLASS ? 1 : d->target_size);
}

rt_status rt_sample_model_shape(const rt_sample_desc *d, rt_shape *out)
{
    *out = (rt_shape){0, 0, 0};
    const int64_t *s = d->shape;
    if (d->ndim < 1 || d->ndim > 3) {
        char shape[128] = "";
        size_t used = 0;
        for (int i = 0; i < d->ndim && i < RT_SAMPLE_MAX_NDIM && used < sizeof shape; i++)
            used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%lld", i ? ", " : "",
                                     (long long)s[i]);
        return RT_ERROR(RT_ERR_UNSUPPORTED, "samples of shape [%s] (%d dimensions): the "
                        "models take 1 to 3 ([features], [channels, length] or [channels, "
                        "height, width])", shape, d->ndim);
    }
    *out = (rt_shape){(int)s[0], d->ndim > 1 ? (int)s[1] : 1, d->ndim > 2 ? (int)s[2] : 1};
    return RT_OK;
}

static rt_status check_desc(const rt_sample_desc *d)
{
    if (d->ndim < 1 || d->ndim > RT_SAMPLE_MAX_NDIM)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_create: samples of %d dimensions "
                        "(1 to %d)", d->ndim, RT_SAMPLE_MAX_NDIM);
    size_t size = 1;
    for (int i = 0; i < d->ndim; i++) {
        if (d->shape[i] < 1 || d->shape[i] > INT32_MAX || size > ((size_t)1 << 30) /
                                                                 (size_t)d->shape[i])
            return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_create: dimension %d of the "
                            "sample shape is %lld (1 to 2^31-1, at most 2^30 values in all)", i,
                            (long long)d->shape[i]);
        size *= (size_t)d->shape[i];
    }
    if (d->target == RT_TARGET_CLASS && d->num_classes < 1)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_create: num_classes must be >= 1 (got "
                        "%d)", d->num_classes);
    if (d->target != RT_TARGET_CLASS && (d->target_size < 1 || d->target_size > (1 << 24)))
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_create: target_size must be 1 to 2^24 "
                        "(got %d)", d->target_size);
    if ((unsigned)d->target > RT_TARGET_SEQUENCE || (unsigned)d->dtype > RT_INPUT_F64)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_create: unknown target kind %d or "
                        "input type %d", (int)d->target, (int)d->dtype);
    return RT_OK;
}

/* ---- datasets ------------------------------------------------------------------ */

rt_status rt_dataset_create(rt_dataset **out, const rt_dataset_ops *ops, void *impl,
                            int64_t count, const rt_sample_desc *desc)
{
    *out = NULL;
    if (!ops || !ops->fetch || !desc)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_create: ops->fetch and a sample "
                        "description are required");
    if (ops->version != RT_DATASET_OPS_VERSION)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_create: dataset ops of version %u, "
                        "this rtrain expects %d: set .version = RT_DATASET_OPS_VERSION and "
                        "recompile against these headers", ops->version,
                        RT_DATASET_OPS_VERSION);
    if (count < 0)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_create: negative sample count %lld",
                        (long long)count);
    RT_CHECK(check_desc(desc));
    rt_dataset *ds;
    RT_CHECK(rt_alloc(&ds, 1, sizeof *ds, "dataset"));
    ds->ops = *ops;
    ds->impl = impl;
    ds->count = count;
    ds->desc = *desc;
    if (ds->desc.target == RT_TARGET_CLASS)
        ds->desc.target_size = 1;
    else
        ds->desc.num_classes = 0;
    *out = ds;
    return RT_OK;
}

void rt_dataset_free(rt_dataset *ds)
{
    if (!ds)
        return;
    if (ds->ops.destroy)
        ds->ops.destroy(ds->impl);
    rt_free(ds->encoding);
    rt_free(ds->x_mean);
    rt_free(ds->x_std);
    rt_free(ds->y_mean);
    rt_free(ds->y_std);
    rt_free(ds);
}

int64_t rt_dataset_count(const rt_dataset *ds) { return ds->count; }
const rt_sample_desc *rt_dataset_desc(const rt_dataset *ds) { return &ds->desc; }
int rt_dataset_num_classes(const rt_dataset *ds) { return ds->desc.num_classes; }
unsigned rt_dataset_flags(const rt_dataset *ds) { return ds->ops.flags; }

const char *rt_dataset_encoding(const rt_dataset *ds) { return ds->encoding; }
int64_t rt_dataset_block_rows(const rt_dataset *ds) { return ds->block_rows; }

rt_status rt_dataset_set_block_rows(rt_dataset *ds, int64_t rows)
{
    if (rows < 0)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_set_block_rows: %lld rows",
                        (long long)rows);
    ds->block_rows = rows;
    return RT_OK;
}

rt_status rt_dataset_set_encoding(rt_dataset *ds, const char *json)
{
    char *copy = NULL;
    if (json) {
        size_t n = strlen(json) + 1;
        RT_CHECK(rt_alloc(&copy, n, 1, "dataset encoding"));
        memcpy(copy, json, n);
    }
    rt_free(ds->encoding);
    ds->encoding = copy;
    return RT_OK;
}

rt_shape rt_dataset_sample_shape(const rt_dataset *ds)
{
    rt_shape s;
    if (rt_sample_model_shape(&ds->desc, &s) != RT_OK)
        rt_error_clear();   /* {0, 0, 0}: the model refuses it with its own message */
    return s;
}

const rt_transform_chain *rt_dataset_transforms(const rt_dataset *ds) { return &ds->transforms; }

rt_status rt_dataset_set_transforms(rt_dataset *ds, const rt_transform_chain *c)
{
    if (!c || c->count < 0 || c->count > RT_TRANSFORM_MAX)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_set_transforms: a chain of 0 to %d "
                        "steps", RT_TRANSFORM_MAX);
    for (int s = 0; s < c->count; s++)
        if (c->steps[s].kind == RT_TRANSFORM_NORMALIZE_CHANNELS &&
            (int64_t)c->channels != ds->desc.shape[0])
            return RT_ERROR(RT_ERR_CONFIG, "data.normalize has %d values per channel but the "
                            "samples have %lld channel(s) (their first dimension): give one "
                            "value, or one per channel", c->channels,
                            (long long)ds->desc.shape[0]);
    ds->transforms = *c;
    return RT_OK;
}

void rt_dataset_set_row_fn(rt_dataset *ds, rt_dataset_row_fn row)
{
    ds->row = row;
}

void rt_dataset_prefetch(const rt_dataset *ds, int64_t index)
{
    if (!ds->row || index < 0 || index >= ds->count)
        return;
    size_t bytes = 0;
    const char *p = ds->row(ds->impl, index, &bytes);
    if (!p)
        return;
    for (size_t off = 0; off < bytes; off += 64)
        __builtin_prefetch(p + off);
}

rt_status rt_dataset_fetch(rt_dataset *ds, int64_t index, float *x, void *target)
{
    if (index < 0 || index >= ds->count)
        return RT_ERROR(RT_ERR_INVALID_ARG, "sample index %lld out of range [0, %lld)",
                        (long long)index, (long long)ds->count);
    RT_CHECK(ds->ops.fetch(ds->impl, index, x, target));
    size_t nx = rt_sample_input_size(&ds->desc);
    rt_transform_apply(&ds->transforms, x, nx);
    if (ds->x_mean)
        for (size_t i = 0; i < nx; i++)
            x[i] = (x[i] - ds->x_mean[i]) / ds->x_std[i];
    if (ds->y_mean) {
        float *t = target;
        for (int j = 0; j < ds->desc.target_size; j++)
            t[j] = (t[j] - ds->y_mean[j]) / ds->y_std[j];
    }
    return RT_OK;
}

/* A copy of src[n] in *dst (NULL when src is NULL); stds must be > 0. */
static rt_status copy_stats(float **dst, const float *src, size_t n, int is_std)
{
    rt_free(*dst);
    *dst = NULL;
    if (!src)
        return RT_OK;
    for (size_t i = 0; is_std && i < n; i++)
        if (!(src[i] > 0.0f) || !isfinite(src[i]))
            return RT_ERROR(RT_ERR_NUMERIC, "standardisation: standard deviation %zu is %g "
                            "(must be finite and > 0)", i, (double)src[i]);
    for (size_t i = 0; !is_std && i < n; i++)
        if (!isfinite(src[i]))
            return RT_ERROR(RT_ERR_NUMERIC, "standardisation: mean %zu is %g (must be finite)",
                            i, (double)src[i]);
    RT_CHECK(rt_alloc(dst, n, sizeof **dst, "standardisation"));
    memcpy(*dst, src, n * sizeof **dst);
    return RT_OK;
}

rt_status rt_dataset_set_standardization(rt_dataset *ds, const rt_standardization *s)
{
    if ((!s->x_mean) != (!s->x_std) || (!s->y_mean) != (!s->y_std))
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_set_standardization: give means and "
                        "standard deviations together");
    if (s->y_mean && ds->desc.target != RT_TARGET_VECTOR)
        return RT_ERROR(RT_ERR_CONFIG, "data.standardize_target needs float targets (a "
                        "regression loss), but the dataset has %s targets",
                        rt_target_kind_name(ds->desc.target));
    size_t nx = rt_sample_input_size(&ds->desc), ny = (size_t)ds->desc.target_size;
    RT_CHECK(copy_stats(&ds->x_mean, s->x_mean, nx, 0));
    RT_CHECK(copy_stats(&ds->x_std, s->x_std, nx, 1));
    RT_CHECK(copy_stats(&ds->y_mean, s->y_mean, ny, 0));
    return copy_stats(&ds->y_std, s->y_std, ny, 1);
}

/* ---- transforms ------------------------------------------------------------------- */

rt_status rt_transform_chain_add(rt_transform_chain *c, rt_transform_kind kind, float a,
                                 float b)
{
    if (c->count >= RT_TRANSFORM_MAX)
        return RT_ERROR(RT_ERR_INVALID_ARG, "transform chain full (%d steps)",
                        RT_TRANSFORM_MAX);
    float divisor = kind == RT_TRANSFORM_DIVIDE ? a : b;
    if ((unsigned)kind > RT_TRANSFORM_NORMALIZE_CHANNELS || !isfinite(a) || !isfinite(b) ||
        !(divisor > 0.0f))
        return RT_ERROR(RT_ERR_INVALID_ARG, "transform needs finite values and a divisor > 0 "
                        "(got %g, %g); fix data.normalize", (double)a, (double)b);
    c->steps[c->count++] = (rt_transform_step){kind, a, b};
    return RT_OK;
}

rt_status rt_transform_chain_from(rt_transform_chain *c, const rt_transform *t,
                                  rt_input_dtype dtype)
{
    memset(c, 0, sizeof *c);
    if (dtype == RT_INPUT_U8)
        RT_CHECK(rt_transform_chain_add(c, RT_TRANSFORM_DIVIDE, 255.0f, 0.0f));
    if (!t || !t->normalize)
        return RT_OK;
    if (t->num_mean <= 1 && t->num_std <= 1)
        return rt_transform_chain_add(c, RT_TRANSFORM_NORMALIZE, t->mean[0], t->std[0]);
    int n = t->num_mean > t->num_std ? t->num_mean : t->num_std;
    if ((t->num_mean > 1 && t->num_mean != n) || (t->num_std > 1 && t->num_std != n) ||
        n > RT_MAX_CHANNELS)
        return RT_ERROR(RT_ERR_CONFIG, "data.normalize has %d means and %d standard "
                        "deviations: give one value or one per channel for each",
                        t->num_mean, t->num_std);
    float mean[RT_MAX_CHANNELS], std[RT_MAX_CHANNELS];
    for (int i = 0; i < n; i++) {
        mean[i] = t->mean[t->num_mean > 1 ? i : 0];
        std[i] = t->std[t->num_std > 1 ? i : 0];
    }
    return rt_transform_chain_add_channels(c, mean, std, n);
}

rt_status rt_transform_chain_add_channels(rt_transform_chain *c, const float *mean,
                                          const float *std, int n)
{
    if (n < 1 || n > RT_MAX_CHANNELS)
        return RT_ERROR(RT_ERR_INVALID_ARG, "per-channel normalisation of %d channels (1 to "
                        "%d)", n, RT_MAX_CHANNELS);
    for (int i = 0; i < n; i++)
        if (!isfinite(mean[i]) || !isfinite(std[i]) || !(std[i] > 0.0f))
            return RT_ERROR(RT_ERR_INVALID_ARG, "transform needs finite values and a divisor "
                            "> 0 (channel %d: mean %g, std %g); fix data.normalize", i,
                            (double)mean[i], (double)std[i]);
    RT_CHECK(rt_transform_chain_add(c, RT_TRANSFORM_NORMALIZE_CHANNELS, 0.0f, 1.0f));
    c->channels = n;
    memcpy(c->channel_mean, mean, (size_t)n * sizeof *mean);
    memcpy(c->channel_std, std, (size_t)n * sizeof *std);
    return RT_OK;
}

float rt_transform_zero(const rt_transform_chain *c, int channel)
{
    float v = 0.0f;
    for (int s = 0; s < c->count; s++) {
        const rt_transform_step *st = &c->steps[s];
        if (st->kind == RT_TRANSFORM_DIVIDE)
            v = v / st->a;
        else if (st->kind == RT_TRANSFORM_NORMALIZE)
            v = (v - st->a) / st->b;
        else
            v = (v - c->channel_mean[channel]) / c->channel_std[channel];
    }
    return v;
}

/* Channel c of a sample is the plane [c * count / channels, (c + 1) * ...). */
static void normalize_channels(const rt_transform_chain *c, float *x, size_t count)
{
    size_t plane = count / (size_t)c->channels;
    for (int ch = 0; ch < c->channels; ch++) {
        const float m = c->channel_mean[ch], s = c->channel_std[ch];
        float *p = x + (size_t)ch * plane;
        for (size_t i = 0; i < plane; i++)
            p[i] = (p[i] - m) / s;
    }
}

/* rt_transform_apply's loops, once per instruction set (RT_CPU_CLONES). */
RT_CPU_CLONES
static void transform_steps(const rt_transform_chain *c, float *x, size_t count)
{
    for (int s = 0; s < c->count; s++) {
        const float a = c->steps[s].a, b = c->steps[s].b;
        if (c->steps[s].kind == RT_TRANSFORM_DIVIDE)
            for (size_t i = 0; i < count; i++)
                x[i] = x[i] / a;
        else if (c->steps[s].kind == RT_TRANSFORM_NORMALIZE)
            for (size_t i = 0; i < count; i++)
                x[i] = (x[i] - a) / b;
        else
            normalize_channels(c, x, count);
    }
}

void rt_transform_apply(const rt_transform_chain *c, float *x, size_t count)
{
    transform_steps(c, x, count);
}
