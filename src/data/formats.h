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

/* The per-value loops of fetching (converting stored bytes to float, the
 * transform chain's divisions) are compiled three times, for AVX-512, for
 * AVX2 and for the baseline x86-64 the library targets, and the loader
 * picks the CPU's own once (GCC's function multiversioning): division is
 * the slowest of these loops, and AVX-512 divides 16 floats per
 * instruction where the baseline's SSE2 divides 4. Conversions and
 * divisions are exact IEEE operations, so every clone gives the same bits.
 * A multiversioned function must carry this on its first declaration (clang). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(RT_NO_CPU_CLONES)
#define RT_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RT_CPU_CLONES
#endif

/* Reading ahead. A sample's stored input sits at a random place of a large
 * array (idx pixels, an HDF5 or CSV table held in memory), so fetching it
 * waits mostly on memory. A format whose rows are in memory tells the
 * dataset where a row lies; the loader then asks for sample i+1's row
 * while it fetches sample i. The MLP's data wait on 2 ranks fell by a
 * third with it, and by a further sixth with the clones above
 * (bench/RESULTS.md, "Reading ahead").
 * row(impl, index, &bytes): the address and size of sample `index`'s
 * stored input, or NULL where it is not in memory (streamed). */
typedef const void *(*rt_dataset_row_fn)(void *impl, int64_t index, size_t *bytes);
void rt_dataset_set_row_fn(rt_dataset *ds, rt_dataset_row_fn row);
/* Asks the memory system for sample `index`'s stored input (a hint: no
 * effect on any result; nothing for an index out of range or a dataset
 * without a row function). */
void rt_dataset_prefetch(const rt_dataset *ds, int64_t index);

/* The rows [*begin, *end) of a file of `rows` rows that src selects
 * (rt_data_source.first/last); RT_ERR_CONFIG naming `file` when the
 * fractions are out of order or select no row. */
rt_status rt_data_source_rows(const rt_data_source *src, int64_t rows, int64_t *begin,
                              int64_t *end);

#endif
