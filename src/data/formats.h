/* The dataset formats of this build (internal): each format's file
 * defines its open function; format.c lists them by name. */
#ifndef RTRAIN_DATA_FORMATS_H
#define RTRAIN_DATA_FORMATS_H

#include "rtrain/data.h"

/* idx.c: MNIST-style files, x = images, y = labels. */
rt_status rt_idx_open(rt_dataset **out, const rt_data_source *src);
/* hdf5.c: one HDF5 file, x and y the paths of its input and target datasets. */
rt_status rt_hdf5_open(rt_dataset **out, const rt_data_source *src);
/* csv.c: a table with a header row; columns chosen by name. */
rt_status rt_csv_open(rt_dataset **out, const rt_data_source *src);

/* The rows [*begin, *end) of a file of `rows` rows that src selects
 * (rt_data_source.first/last); RT_ERR_CONFIG naming `file` when the
 * fractions are out of order or select no row. */
rt_status rt_data_source_rows(const rt_data_source *src, int64_t rows, int64_t *begin,
                              int64_t *end);

#endif
