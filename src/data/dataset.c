/* The generic dataset: a sample count, a sample shape, a class count and a
 * table of functions (fetch, destroy) over an implementation pointer. Every
 * format (idx files, user callbacks) is one such table, so the loader never
 * needs to know where samples come from.
 *
 * Ownership: on success the dataset owns `impl` and rt_dataset_free calls
 * ops->destroy(impl); when rt_dataset_create fails the caller still owns it. */
#include <stdlib.h>
#include "rtrain/data.h"

struct rt_dataset {
    rt_dataset_ops ops;   /* copied: callers may pass a stack table */
    void *impl;
    int64_t count;
    rt_shape shape;
    int num_classes;
};

rt_status rt_dataset_create(rt_dataset **out, const rt_dataset_ops *ops, void *impl,
                            int64_t count, rt_shape sample_shape, int num_classes)
{
    *out = NULL;
    if (!ops || !ops->fetch)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_create: ops->fetch is required");
    if (count < 0)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_create: negative sample count %lld",
                        (long long)count);
    if (sample_shape.c < 1 || sample_shape.h < 1 || sample_shape.w < 1)
        return RT_ERROR(RT_ERR_INVALID_ARG,
                        "rt_dataset_create: sample shape %dx%dx%d has an empty dimension",
                        sample_shape.c, sample_shape.h, sample_shape.w);
    if (num_classes < 1)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_dataset_create: num_classes must be >= 1 (got %d)",
                        num_classes);
    rt_dataset *ds;
    RT_CHECK(rt_alloc(&ds, 1, sizeof *ds, "dataset"));
    ds->ops = *ops;
    ds->impl = impl;
    ds->count = count;
    ds->shape = sample_shape;
    ds->num_classes = num_classes;
    *out = ds;
    return RT_OK;
}

void rt_dataset_free(rt_dataset *ds)
{
    if (!ds)
        return;
    if (ds->ops.destroy)
        ds->ops.destroy(ds->impl);
    rt_free(ds);
}

int64_t rt_dataset_count(const rt_dataset *ds) { return ds->count; }
rt_shape rt_dataset_sample_shape(const rt_dataset *ds) { return ds->shape; }
int rt_dataset_num_classes(const rt_dataset *ds) { return ds->num_classes; }

rt_status rt_dataset_fetch(rt_dataset *ds, int64_t index, float *x, int32_t *label)
{
    if (index < 0 || index >= ds->count)
        return RT_ERROR(RT_ERR_INVALID_ARG, "sample index %lld out of range [0, %lld)",
                        (long long)index, (long long)ds->count);
    RT_CHECK(ds->ops.fetch(ds->impl, index, x, label));
    return RT_OK;
}
