/* rtrain data: what a sample is (rt_sample_desc), datasets and their
 * formats, transforms, the global sample order, per-rank batches and a
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

/* ---- what one sample is ---------------------------------------------------- */
#define RT_SAMPLE_MAX_NDIM 8

/* How a dataset stores its inputs; fetch always delivers float32. */
typedef enum rt_input_dtype {
    RT_INPUT_U8 = 0, RT_INPUT_I16, RT_INPUT_I32, RT_INPUT_F32, RT_INPUT_F64
} rt_input_dtype;

typedef struct rt_sample_desc {
    int ndim;                           /* of one sample's input (no batch dimension) */
    int64_t shape[RT_SAMPLE_MAX_NDIM];
    rt_input_dtype dtype;
    rt_target_kind target;
    int num_classes;                    /* RT_TARGET_CLASS: >= 1 */
    int target_size;                    /* values per sample: 1 for a class */
} rt_sample_desc;

/* Floats of one sample's input. */
size_t rt_sample_input_size(const rt_sample_desc *d);
/* Bytes of one sample's target (4 per value: int32 or float). */
size_t rt_sample_target_bytes(const rt_sample_desc *d);
/* The model's input shape [c, h, w] for a sample of shape [f] (-> [f, 1,
 * 1]), [c, l] (-> [c, l, 1]) or [c, h, w]; more dimensions are
 * RT_ERR_UNSUPPORTED naming the shape. */
rt_status rt_sample_model_shape(const rt_sample_desc *d, rt_shape *out);

/* ---- transforms ----------------------------------------------------------------- */
/* A chain of elementwise transforms the dataset applies to every fetched
 * input, in order, in float32 (as torchvision's ToTensor and Normalize
 * compute). Formats only read their values; the chain is the dataset's. */
#define RT_TRANSFORM_MAX 8

#define RT_MAX_CHANNELS 16

typedef enum rt_transform_kind {
    RT_TRANSFORM_DIVIDE = 0,      /* x = x / a       (ToTensor of 8-bit images: a = 255) */
    RT_TRANSFORM_NORMALIZE,       /* x = (x - a) / b (Normalize(mean=a, std=b)) */
    RT_TRANSFORM_NORMALIZE_CHANNELS   /* channel c: x = (x - mean[c]) / std[c], the chain's
                                       * channel_mean/std (Normalize with lists) */
} rt_transform_kind;

typedef struct rt_transform_step { rt_transform_kind kind; float a, b; } rt_transform_step;

typedef struct rt_transform_chain {
    int count;
    rt_transform_step steps[RT_TRANSFORM_MAX];
    /* RT_TRANSFORM_NORMALIZE_CHANNELS: the first dimension of a sample is
     * its `channels` channels, each a contiguous plane. */
    int channels;
    float channel_mean[RT_MAX_CHANNELS], channel_std[RT_MAX_CHANNELS];
} rt_transform_chain;

/* The pixel transform of a config (data.normalize): x = (raw/255 - mean) / std
 * when normalize is set, raw/255 otherwise (8-bit inputs). mean and std
 * each hold one value (every channel) or one per channel. */
typedef struct rt_transform {
    int normalize;
    int num_mean, num_std;
    float mean[RT_MAX_CHANNELS], std[RT_MAX_CHANNELS];
} rt_transform;

/* Appends a step; RT_ERR_INVALID_ARG when the chain is full or the step
 * divides by zero, a non-finite or a negative value. */
rt_status rt_transform_chain_add(rt_transform_chain *c, rt_transform_kind kind, float a,
                                 float b);
/* Sets the chain's per-channel values (n of each, 1..RT_MAX_CHANNELS) and
 * appends their step; RT_ERR_INVALID_ARG as rt_transform_chain_add. */
rt_status rt_transform_chain_add_channels(rt_transform_chain *c, const float *mean,
                                          const float *std, int n);
/* The chain for t (NULL: none) on inputs stored as dtype: 8-bit inputs are
 * divided by 255 first (ToTensor), then Normalize(mean, std) if set: one
 * scalar step when both have one value, else a per-channel step (a single
 * value is used for every channel). */
rt_status rt_transform_chain_from(rt_transform_chain *c, const rt_transform *t,
                                  rt_input_dtype dtype);
/* count: the sample's values; per-channel steps take count / channels per
 * plane. */
void rt_transform_apply(const rt_transform_chain *c, float *x, size_t count);
/* The value a raw 0 of channel `channel` has after the chain (what an
 * image pads with: black after ToTensor and Normalize). */
float rt_transform_zero(const rt_transform_chain *c, int channel);

/* ---- datasets --------------------------------------------------------------- */
/* A dataset is a count, a sample description and a table of functions;
 * the dataset applies its transform chain to what fetch writes. Formats
 * (idx files, later HDF5 and CSV) and user callbacks are such tables. */
typedef struct rt_dataset rt_dataset;

/* The version of rt_dataset_ops this header describes (a table says which
 * one it was written for; another is refused with a message). */
#define RT_DATASET_OPS_VERSION 1

enum {
    /* fetch may run on the loader's thread while the caller computes (one
     * fetch at a time; it must not race with what the caller does, e.g. it
     * takes rt_hdf5_lock around HDF5 calls). Without it the loader
     * fetches on the caller's thread, without prefetching. */
    RT_DATASET_THREAD_SAFE = 1u << 0,
};

typedef struct rt_dataset_ops {
    unsigned version;      /* RT_DATASET_OPS_VERSION */
    unsigned flags;        /* RT_DATASET_* */
    /* Writes sample `index`: its input x[rt_sample_input_size] as float32
     * (before the transforms) and its target (int32[1] class, float or
     * int32[target_size]: the description says which). */
    rt_status (*fetch)(void *impl, int64_t index, float *x, void *target);
    void (*destroy)(void *impl);
} rt_dataset_ops;

/* desc is copied; its shape must be non-empty, a class target needs
 * num_classes >= 1, the others target_size >= 1. */
rt_status rt_dataset_create(rt_dataset **out, const rt_dataset_ops *ops, void *impl,
                            int64_t count, const rt_sample_desc *desc);
void rt_dataset_free(rt_dataset *ds);
int64_t rt_dataset_count(const rt_dataset *ds);
const rt_sample_desc *rt_dataset_desc(const rt_dataset *ds);
/* rt_sample_model_shape of the description ({0, 0, 0} when it has none). */
rt_shape rt_dataset_sample_shape(const rt_dataset *ds);
int rt_dataset_num_classes(const rt_dataset *ds);   /* 0 unless class targets */
unsigned rt_dataset_flags(const rt_dataset *ds);
/* The dataset's transform chain. */
const rt_transform_chain *rt_dataset_transforms(const rt_dataset *ds);
/* Replaces the dataset's transform chain (none at creation). */
rt_status rt_dataset_set_transforms(rt_dataset *ds, const rt_transform_chain *c);
/* Standardisation fitted on a training split (data.standardize): each
 * input value i becomes (x[i] - x_mean[i]) / x_std[i] after the transform
 * chain, and each float target value j (y_mean/y_std, vector targets
 * only) (t[j] - y_mean[j]) / y_std[j]. Arrays of rt_sample_input_size and
 * target_size values, or NULL to leave that side alone; copied (a later
 * call replaces them). Every std must be finite and > 0. Statistics are
 * fitted on what rt_dataset_fetch returns before this is set. */
typedef struct rt_standardization {
    const float *x_mean, *x_std;
    const float *y_mean, *y_std;
} rt_standardization;

rt_status rt_dataset_set_standardization(rt_dataset *ds, const rt_standardization *s);
/* Sample `index`, transformed and standardised; target as in
 * rt_dataset_ops.fetch. */
rt_status rt_dataset_fetch(rt_dataset *ds, int64_t index, float *x, void *target);

/* ---- dataset formats ------------------------------------------------------------ */
/* How missing cells of a table are handled (data.fill_missing). */
typedef enum rt_fill_policy {
    RT_FILL_NONE = 0,   /* a missing value is an error naming file:line:column */
    RT_FILL_ZERO,       /* numeric: 0; categorical: all-zero one-hot */
    RT_FILL_MEAN        /* numeric: the column's mean over the training split */
} rt_fill_policy;

/* How an HDF5 dataset is held (data.cache). */
typedef enum rt_cache_policy {
    RT_CACHE_RANK = 0,  /* each rank reads its split into memory once */
    RT_CACHE_NONE,      /* samples are read from the file on every fetch (hyperslabs) */
    RT_CACHE_NODE       /* read once per node into memory the node's ranks share */
} rt_cache_policy;

/* Memory shared by the ranks of a node, for RT_CACHE_NODE. The trainer
 * builds it on its communicator (rtrain/comm.h rt_comm_shared_*), so the
 * data module needs no MPI. alloc and ready are collective over every
 * rank opening the dataset and return the status agreed across them
 * (local: this rank's so far, so that a rank that failed earlier still
 * takes part); exactly one rank per node gets *writer = 1 and fills the
 * memory between alloc and ready; release frees it (collective over the
 * node, at rt_dataset_free). */
typedef struct rt_node_memory {
    rt_status (*alloc)(void *arg, rt_status local, size_t bytes, void **ptr, int *writer,
                       void **handle);
    rt_status (*ready)(void *arg, void *handle, rt_status local);
    void (*release)(void *arg, void *handle);
    void *arg;
} rt_node_memory;

/* Where one split of a dataset is, and how to read it. Formats read what
 * they need: idx reads two files (x: images, y: labels); hdf5 reads `file`
 * and takes x and y as the paths of its input and target datasets; csv
 * reads `file` and the column fields. */
typedef struct rt_data_source {
    const char *file;
    const char *x;
    const char *y;
    /* Only rows [floor(first * N), floor(last * N)) of the N in the file
     * (data.test_fraction takes the last rows for evaluation, as Ray
     * Data's train_test_split(shuffle=False)). first = last = 0 means all. */
    double first, last;
    /* What the loss takes (train.loss): class indices or float vectors.
     * Formats that could read either (a CSV target, HDF5 labels) follow it. */
    rt_target_kind target;
    /* Tables (csv): the target column, the feature columns in order
     * (num_features = 0: every column but the target), and which of them
     * are categorical (one-hot encoded, categories sorted as text). */
    const char *target_column;
    const char *const *features;
    int num_features;
    const char *const *categorical;
    int num_categorical;
    rt_fill_policy fill_missing;
    rt_cache_policy cache;
    const rt_node_memory *node_memory;   /* RT_CACHE_NODE (NULL: RT_CACHE_RANK instead) */
    /* The encoding learned from the training split (the JSON text of
     * rt_dataset_encoding of it): categories, class names and fill values
     * are taken from it instead of being learned. NULL for the training
     * split itself. */
    const char *encoding;
    /* The file holds no targets (inputs to predict): idx needs no labels
     * file, hdf5 no y dataset, csv no target column (it takes the target's
     * kind and classes from `encoding`). Fetch then writes zero targets
     * (class 0, or 0.0 for each of target_size values); a class target's
     * num_classes is the encoding's, else 1. */
    int no_target;
} rt_data_source;

/* The encoding a format learned from its rows (JSON text, owned by the
 * dataset; NULL when the format learns nothing: idx, hdf5). Stored in
 * checkpoints and params.json; pass it as rt_data_source.encoding when
 * opening another split of the same data. */
const char *rt_dataset_encoding(const rt_dataset *ds);
/* For formats: copies json (NULL: none) as the dataset's encoding. */
rt_status rt_dataset_set_encoding(rt_dataset *ds, const char *json);
/* Rows a format reads together when it streams from a file (an HDF5
 * dataset's chunk rows): the block size data.shuffle_block should have.
 * 0 (the default): any order is as cheap. */
int64_t rt_dataset_block_rows(const rt_dataset *ds);
rt_status rt_dataset_set_block_rows(rt_dataset *ds, int64_t rows);

/* Opens src in the format named `format` (data.format: "idx") and gives
 * it the chain of transform t for its input type (NULL: none). An unknown
 * format is RT_ERR_CONFIG listing the known ones. */
rt_status rt_dataset_open(rt_dataset **out, const char *format, const rt_data_source *src,
                          const rt_transform *t);
/* Both splits of one dataset in `format`, each with the transforms t:
 * *train from train_src, then *test from test_src with the encoding the
 * training split learned (test_src->encoding is not read). The same
 * datasets as rt_dataset_open of one and then the other; a csv file both
 * read with the same columns (data.test_fraction) is parsed once. Local.
 * On failure both are NULL. */
rt_status rt_dataset_open_splits(rt_dataset **train, rt_dataset **test, const char *format,
                                 const rt_data_source *train_src,
                                 const rt_data_source *test_src, const rt_transform *t);
/* The formats of this build, in order: 0 <= i < rt_dataset_format_count(). */
int rt_dataset_format_count(void);
const char *rt_dataset_format_name(int i);

/* idx files (MNIST/FashionMNIST), gzip-compressed or raw (detected from
 * the content): rt_dataset_open("idx") of {.x = images, .y = labels}.
 * Headers are validated (magic, dimensions, counts, file length) and every
 * error names the file and what is wrong. */
rt_status rt_idx_dataset_open(rt_dataset **out, const char *images_path,
                              const char *labels_path, const rt_transform *t);

/* ---- augmentation ----------------------------------------------------------------- */
/* Random changes to training images [channels, height, width], made by the
 * loader after the dataset's transforms (RandomCrop with padding, then
 * RandomHorizontalFlip, as torchvision composes them). The random choices
 * of sample `index` in epoch `epoch` come from the counter-based stream
 * rt_rng_key(seed, epoch, RT_AUGMENT_STREAM, index): the same on every
 * rank, any world size and after a resume. */
typedef struct rt_augment {
    int crop_padding;   /* > 0: pad each side by this many pixels, crop a random window */
    int hflip;          /* flip left-right with probability 1/2 */
} rt_augment;

/* RT_OK when a is off or fits samples described by d (images, a padding
 * smaller than the image); RT_ERR_CONFIG naming data.augment otherwise. */
rt_status rt_augment_check(const rt_augment *a, const rt_sample_desc *d);
/* Changes x[c][h][w] in place; pad[c] is the value of a padded pixel,
 * scratch holds c*h*w floats. */
void rt_augment_apply(const rt_augment *a, float *x, float *scratch, const int64_t *shape,
                      const float *pad, uint64_t seed, int64_t epoch, int64_t index);

/* ---- loader ------------------------------------------------------------------ */
typedef struct rt_loader_opts {
    int64_t global_batch;  /* samples per global batch (all ranks together) */
    int rank, world_size;  /* this rank's part of each global batch */
    int shuffle;           /* 0: identity order (evaluation) */
    int64_t shuffle_block; /* > 0: block shuffle of that many consecutive samples (for data
                            * streamed from a file: a batch touches few chunks) */
    uint64_t seed;
    int drop_last;         /* drop a final global batch smaller than global_batch */
    int prefetch;          /* batches prepared ahead by the loader thread (0: none;
                            * always 0 for a dataset without RT_DATASET_THREAD_SAFE) */
    rt_augment augment;    /* random changes to each sample (zero: none) */
    int64_t rank_block;    /* > 0: rank r takes positions [r*rank_block, (r+1)*rank_block)
                            * of each global batch (clipped to it; global_batch must be
                            * world_size * rank_block) instead of an even split: each rank's
                            * batches are those one rank with global batch rank_block reads,
                            * so the computed rows are the same bits on any number of ranks
                            * (prediction). 0: the even split */
} rt_loader_opts;

typedef struct rt_batch {
    const float *x;        /* [n][input size] */
    const void *target;    /* [n][target]: int32 classes or tokens, or floats */
    const int32_t *y;      /* = target for class and sequence targets, else NULL */
    int n;                 /* this rank's samples (may be 0 for a tiny last batch) */
    int64_t global_n;      /* samples in the global batch */
    int64_t index;         /* global batch index within the epoch */
    int64_t first;         /* position of this rank's first sample in the epoch's order */
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
/* The block shuffle (rt_loader_opts.shuffle_block): blocks of `block`
 * (>= 1) consecutive samples in a shuffled order, each block's samples
 * shuffled among themselves; depends only on (seed, epoch, block).
 * scratch holds rt_sample_order_blocks_scratch(count, block) entries. */
size_t rt_sample_order_blocks_scratch(int64_t count, int64_t block);
void rt_sample_order_blocks(uint32_t *perm, int64_t count, int64_t block, uint64_t seed,
                            int64_t epoch, uint32_t *scratch);
/* This rank's [begin, end) positions within a global batch of size g. */
void rt_batch_split(int64_t g, int rank, int world_size, int64_t *begin, int64_t *end);
/* The same for a loader's options (o->rank_block's blocks, or the even split). */
void rt_loader_split(const rt_loader_opts *o, int64_t g, int64_t *begin, int64_t *end);

#ifdef __cplusplus
}
#endif
#endif
