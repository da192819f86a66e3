/* rtrain data: datasets, the global sample order, per-rank batches and a
 * prefetching loader.
 *
 * The global order of samples in epoch e is a permutation that depends only
 * on (seed, e), never on the number of ranks. Global batch i is positions
 * [i*G, min((i+1)*G, N)) of that order, and rank r of W takes its
 * contiguous part of it (sizes differ by at most one when G is not a
 * multiple of W). So the same global batches are seen whatever the world
 * size, and a run can resume on a different number of ranks.
 *
 * Nothing here is collective. */
#ifndef RTRAIN_DATA_H
#define RTRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>
#include "rtrain/core.h"
#include "rtrain/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RT_PATH_MAX 4096

/* ---- datasets --------------------------------------------------------------- */
/* A dataset is a count and a fetch function; transforms are applied by the
 * fetch. Implementations: idx files (in memory), user callbacks. */
typedef struct rt_dataset rt_dataset;

typedef struct rt_dataset_ops {
    /* Writes sample `index` as floats x[sample_shape] and its label. Must be
     * safe to call from the loader thread while the caller trains. */
    rt_status (*fetch)(void *impl, int64_t index, float *x, int32_t *label);
    void (*destroy)(void *impl);
} rt_dataset_ops;

rt_status rt_dataset_create(rt_dataset **out, const rt_dataset_ops *ops, void *impl,
                            int64_t count, rt_shape sample_shape, int num_classes);
void rt_dataset_free(rt_dataset *ds);
int64_t rt_dataset_count(const rt_dataset *ds);
rt_shape rt_dataset_sample_shape(const rt_dataset *ds);
int rt_dataset_num_classes(const rt_dataset *ds);
rt_status rt_dataset_fetch(rt_dataset *ds, int64_t index, float *x, int32_t *label);

/* Pixel transform applied on fetch: x = (raw/255 - mean) / std when
 * normalize is set, raw/255 otherwise. */
typedef struct rt_transform {
    int normalize;
    float mean, std;
} rt_transform;

/* idx files (MNIST/FashionMNIST), gzip-compressed or raw (detected from
 * the content). Headers are validated (magic, dimensions, counts, file
 * length) and every error names the file and what is wrong. */
rt_status rt_idx_dataset_open(rt_dataset **out, const char *images_path,
                              const char *labels_path, const rt_transform *t);

/* ---- loader ------------------------------------------------------------------ */
typedef struct rt_loader_opts {
    int64_t global_batch;  /* samples per global batch (all ranks together) */
    int rank, world_size;  /* this rank's part of each global batch */
    int shuffle;           /* 0: identity order (evaluation) */
    uint64_t seed;
    int drop_last;         /* drop a final global batch smaller than global_batch */
    int prefetch;          /* batches prepared ahead by the loader thread (0: none) */
} rt_loader_opts;

typedef struct rt_batch {
    const float *x;        /* [n][sample_shape] */
    const int32_t *y;      /* [n] */
    int n;                 /* this rank's samples (may be 0 for a tiny last batch) */
    int64_t global_n;      /* samples in the global batch */
    int64_t index;         /* global batch index within the epoch */
} rt_batch;

typedef struct rt_loader rt_loader;

rt_status rt_loader_create(rt_loader **out, rt_dataset *ds, const rt_loader_opts *o);
void rt_loader_free(rt_loader *l);
int64_t rt_loader_batches_per_epoch(const rt_loader *l);
/* Largest per-rank batch this loader produces. */
int rt_loader_max_local_batch(const rt_loader *l);
/* Starts epoch `epoch` at global batch `first_batch` (0, or a resume point). */
rt_status rt_loader_start_epoch(rt_loader *l, int64_t epoch, int64_t first_batch);
/* Next batch of the epoch; *done = 1 (and b untouched) at its end. The
 * batch stays valid until the next call. */
rt_status rt_loader_next(rt_loader *l, rt_batch *b, int *done);

/* Global order of epoch `epoch` for `count` samples (identity if !shuffle),
 * exposed for tests and tools. perm has count entries. */
void rt_sample_order(uint32_t *perm, int64_t count, uint64_t seed, int64_t epoch, int shuffle);
/* This rank's [begin, end) positions within a global batch of size g. */
void rt_batch_split(int64_t g, int rank, int world_size, int64_t *begin, int64_t *end);

#ifdef __cplusplus
}
#endif
#endif
