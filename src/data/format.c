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
    /* Both splits of one file in one read (NULL: opened one by one). */
    rt_status (*open_splits)(rt_dataset **train, rt_dataset **test, const rt_data_source *tr,
                             const rt_data_source *te);
} formats[] = {
    {"idx", rt_idx_open, NULL},
    {"hdf5", rt_hdf5_open, NULL},
    {"csv", rt_csv_open, rt_csv_open_splits},
};
#define NFORMATS ((int)(sizeof formats / sizeof formats[0]))

int rt_dataset_format_count(void) { return NFORMATS; }

const char *rt_dataset_format_name(int i)
{
    return i >= 0 && i < NFORMATS ? formats[i].name : NULL;
}

static rt_status find_format(const char *format, int *out)
{
    int f = 0;
    while (f < NFORMATS && !(format && strcmp(formats[f].name, format) == 0))
        f++;
    *out = f;
    if (f < NFORMATS)
        return RT_OK;
    char list[128] = "";
    size_t used = 0;
    for (int i = 0; i < NFORMATS && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                 formats[i].name);
    return RT_ERROR(RT_ERR_CONFIG, "data.format \"%s\" is not a format this rtrain reads "
                    "(%s)", format ? format : "", list);
}

/* The transforms t on ds; ds freed on failure. */
static rt_status add_transforms(rt_dataset *ds, const rt_transform *t)
{
    rt_transform_chain chain;
    rt_status st = rt_transform_chain_from(&chain, t, rt_dataset_desc(ds)->dtype);
    if (st == RT_OK)
        st = rt_dataset_set_transforms(ds, &chain);
    if (st != RT_OK)
        rt_dataset_free(ds);
    return st;
}

rt_status rt_dataset_open(rt_dataset **out, const char *format, const rt_data_source *src,
                          const rt_transform *t)
{
    *out = NULL;
    int f;
    RT_CHECK(find_format(format, &f));
    rt_dataset *ds = NULL;
    RT_CHECK(formats[f].open(&ds, src));
    RT_CHECK(add_transforms(ds, t));
    *out = ds;
    return RT_OK;
}

static int same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int same_list(const char *const *a, int na, const char *const *b, int nb)
{
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++)
        if (!same_text(a[i], b[i]))
            return 0;
    return 1;
}

/* Two sources reading the same columns of the same file, rows aside. */
static int same_table(const rt_data_source *a, const rt_data_source *b)
{
    return a->file && same_text(a->file, b->file) && same_text(a->x, b->x) &&
           same_text(a->y, b->y) && a->target == b->target &&
           same_text(a->target_column, b->target_column) &&
           same_list(a->features, a->num_features, b->features, b->num_features) &&
           same_list(a->categorical, a->num_categorical, b->categorical, b->num_categorical) &&
           a->fill_missing == b->fill_missing && !a->encoding && !a->no_target &&
           !b->no_target;
}

rt_status rt_dataset_open_splits(rt_dataset **train, rt_dataset **test, const char *format,
                                 const rt_data_source *train_src,
                                 const rt_data_source *test_src, const rt_transform *t)
{
    *train = *test = NULL;
    int f;
    RT_CHECK(find_format(format, &f));
    rt_dataset *a = NULL, *b = NULL;
    rt_status st;
    if (formats[f].open_splits && same_table(train_src, test_src)) {
        st = formats[f].open_splits(&a, &b, train_src, test_src);
    } else {
        st = formats[f].open(&a, train_src);
        if (st == RT_OK) {
            rt_data_source s = *test_src;
            s.encoding = rt_dataset_encoding(a);
            st = formats[f].open(&b, &s);
        }
    }
    if (st != RT_OK) {
        rt_dataset_free(a);
        rt_dataset_free(b);
        return st;
    }
    st = add_transforms(a, t);
    if (st != RT_OK) {
        rt_dataset_free(b);
        return st;
    }
    if ((st = add_transforms(b, t)) != RT_OK) {
        rt_dataset_free(a);
        return st;
    }
    *train = a;
    *test = b;
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
