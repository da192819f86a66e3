/* The table of dataset formats (data.format): a name and an open function
 * each. A new format is its file (a reader producing an rt_dataset with
 * its sample description) and one row here; the transform chain, the
 * loader and the trainer need nothing new. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "data/formats.h"

static const struct {
    const char *name;
    rt_status (*open)(rt_dataset **out, const rt_data_source *src);
} formats[] = {
    {"idx", rt_idx_open},
    {"hdf5", rt_hdf5_open},
    {"csv", rt_csv_open},
};
#define NFORMATS ((int)(sizeof formats / sizeof formats[0]))

int rt_dataset_format_count(void) { return NFORMATS; }

const char *rt_dataset_format_name(int i)
{
    return i >= 0 && i < NFORMATS ? formats[i].name : NULL;
}

rt_status rt_dataset_open(rt_dataset **out, const char *format, const rt_data_source *src,
                          const rt_transform *t)
{
    *out = NULL;
    int f = 0;
    while (f < NFORMATS && !(format && strcmp(formats[f].name, format) == 0))
        f++;
    if (f == NFORMATS) {
        char list[128] = "";
        size_t used = 0;
        for (int i = 0; i < NFORMATS && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                     formats[i].name);
        return RT_ERROR(RT_ERR_CONFIG, "data.format \"%s\" is not a format this rtrain reads "
                        "(%s)", format ? format : "", list);
    }
    rt_dataset *ds = NULL;
    RT_CHECK(formats[f].open(&ds, src));
    rt_transform_chain chain;
    rt_status st = rt_transform_chain_from(&chain, t, rt_dataset_desc(ds)->dtype);
    if (st == RT_OK)
        st = rt_dataset_set_transforms(ds, &chain);
    if (st != RT_OK) {
        rt_dataset_free(ds);
        return st;
    }
    *out = ds;
    return RT_OK;
}

rt_status rt_data_source_rows(const rt_data_source *src, int64_t rows, int64_t *begin,
                              int64_t *end)
{
    double first = src->first, last = src->last;
    if (first == 0.0 && last == 0.0)
        last = 1.0;
    if (!(first >= 0.0 && first < last && last <= 1.0))
        return RT_ERROR(RT_ERR_CONFIG, "%s: rows from fraction %g to %g of the file cannot be "
                        "selected (0 <= first < last <= 1); check data.test_fraction",
                        src->file ? src->file : "dataset", first, last);
    *begin = (int64_t)floor(first * (double)rows);
    *end = (int64_t)floor(last * (double)rows);
    if (*end <= *begin)
        return RT_ERROR(RT_ERR_CONFIG, "%s: the %lld rows of the file leave no row between "
                        "fractions %g and %g; lower data.test_fraction or use more data",
                        src->file ? src->file : "dataset", (long long)rows, first, last);
    return RT_OK;
}

rt_status rt_idx_dataset_open(rt_dataset **out, const char *images_path,
                              const char *labels_path, const rt_transform *t)
{
    rt_data_source src = {.x = images_path, .y = labels_path};
    return rt_dataset_open(out, "idx", &src, t);
}
