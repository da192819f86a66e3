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
/* Both splits of one csv file from one parse: train learns the encoding,
 * test (rows te->first..te->last of the same file, the same columns) is
 * encoded with it, as rt_csv_open with that encoding would. */
rt_status rt_csv_open_splits(rt_dataset **train, rt_dataset **test, const rt_data_source *tr,
                             const rt_data_source *te);

/* The rows [*begin, *end) of a file of `rows` rows that src selects
 * (rt_data_source.first/last); RT_ERR_CONFIG naming `file` when the
 * fractions are out of order or select no row. */
rt_status rt_data_source_rows(const rt_data_source *src, int64_t rows, int64_t *begin,
                              int64_t *end);

#endif
