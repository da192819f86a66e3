/* rtrain config: a libconfig file plus key=value overrides, turned into one
 * typed, validated struct with every default filled in.
 *
 * Every key has an entry in one schema table (src/config/schema.c) with its
 * type, default, range and help text. Unknown keys, wrong types and
 * out-of-range values are errors naming file:line (or the override) and,
 * for unknown keys, the closest valid key.
 *
 * Not collective: every rank parses the same file; the caller agrees on the
 * outcome across ranks before acting on it. */
#ifndef RTRAIN_CONFIG_H
#define RTRAIN_CONFIG_H

#include <stdio.h>
#include "rtrain/core.h"
#include "rtrain/nn.h"
#include "rtrain/optim.h"
#include "rtrain/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Columns of a table named in a config (data.features, data.categorical). */
#define RT_MAX_COLUMNS 256
#define RT_COLUMN_NAME_MAX 128
/* model.params of a gbdt model: scalars passed to the library as text. */
#define RT_GBDT_MAX_PARAMS 64
#define RT_GBDT_PARAM_KEY_MAX 64
#define RT_GBDT_PARAM_VALUE_MAX 128
/* Patterns of model.init_exclude. */
#define RT_MAX_INIT_EXCLUDE 32

typedef struct rt_config {
    char source[RT_PATH_MAX];          /* the config file read */

    struct {
        char name[256];                /* "" : derived from the config name */
        char storage_path[RT_PATH_MAX];/* "" : $RTRAIN_STORAGE or ./rtrain_results */
        int verbose;                   /* 0..2 */
        double log_every_s;
        int log_per_rank;
        char resume[16];               /* "auto" | "never" */
        char resume_from_checkpoint[RT_PATH_MAX];
        int overwrite;
        int profile;                   /* time the loop's parts; print and write profile.* */
        int tensorboard;               /* rank 0 writes events.out.tfevents.* (TensorBoard) */
        int log_every_steps;           /* TensorBoard: loss and lr every N steps; 0: never */
    } run;

    struct {
        int num_workers;               /* 0: whatever MPI gives */
        int threads_per_worker;        /* 0: cores / local ranks */
        int use_gpu;
        char backend[16];              /* "auto" | a backend name (rtrain/backend.h) */
    } scaling;

    rt_model_spec model;
    struct {                           /* model.init_from / model.init_exclude */
        char from[RT_PATH_MAX];        /* weights a new run starts from; "": none */
        char exclude[RT_MAX_INIT_EXCLUDE][RT_COLUMN_NAME_MAX];   /* fnmatch patterns */
        int num_exclude;
    } init;

    struct {                           /* model.arch = "gbdt" (rtrain/gbdt.h) */
        char library[16];              /* model.library: "xgboost" | "lightgbm" */
        char objective[64];            /* model.objective: the library's own name */
        int num_rounds;                /* model.num_rounds: boosting rounds in all */
        int num_class;                 /* model.num_class: classes (0: from the data) */
        /* model.params, in file order, values as text */
        char param_keys[RT_GBDT_MAX_PARAMS][RT_GBDT_PARAM_KEY_MAX];
        char param_values[RT_GBDT_MAX_PARAMS][RT_GBDT_PARAM_VALUE_MAX];
        int num_params;
        char lightgbm_library[RT_PATH_MAX];   /* gbdt.lightgbm_library: lib_lightgbm.so */
    } gbdt;

    struct {
        char format[16];               /* "idx" | "hdf5" | "csv" */
        char dir[RT_PATH_MAX];         /* prefix for relative paths below */
        /* idx: two files per split */
        char train_images[RT_PATH_MAX], train_labels[RT_PATH_MAX];
        char test_images[RT_PATH_MAX], test_labels[RT_PATH_MAX];
        /* hdf5 and csv: one file per split; hdf5: dataset paths in it */
        char train_file[RT_PATH_MAX], train_x[256], train_y[256];
        char test_file[RT_PATH_MAX], test_x[256], test_y[256];
        double test_fraction;          /* no test file: the last rows of the training file */
        /* csv columns */
        char target[RT_COLUMN_NAME_MAX];
        char features[RT_MAX_COLUMNS][RT_COLUMN_NAME_MAX];
        int num_features;              /* 0: every column but the target */
        char categorical[RT_MAX_COLUMNS][RT_COLUMN_NAME_MAX];
        int num_categorical;
        char fill_missing[8];          /* "none" | "zero" | "mean" */
        char cache[8];                 /* hdf5: "rank" | "none" */
        int standardize;               /* inputs: (x - mean) / std of the training split */
        int standardize_target;        /* float targets too (metrics stay in their units) */
        int batch_size;                /* per worker */
        int global_batch_size;         /* 0: batch_size * world size */
        int eval_batch_size;           /* per worker; 0: = batch_size */
        int shuffle;
        long long shuffle_block;       /* 0: shuffle all samples; N: blocks of N; -1: the
                                        * dataset's block rows (streamed), else 0 */
        int drop_last;
        int prefetch;                  /* -1: auto (2 with a spare core, else 0) */
        rt_transform transform;
        rt_augment augment;            /* training split only */
    } data;

    rt_optim_opts optimizer;
    rt_schedule_opts schedule;

    struct {
        int epochs;
        long long seed;
        int accumulate_steps;
        long long steps_per_epoch;     /* 0: the whole epoch; N: stop each epoch after N steps */
        int eval_every;                /* evaluate every N epochs; 0: never */
        char loss[24];                 /* "cross_entropy" | "nll" */
    } train;

    struct {
        int num_to_keep;               /* 0: keep all */
        char score_attribute[64];
        char score_order[8];           /* "max" | "min" */
        int frequency;                 /* every N epochs; 0: only when asked */
        int at_end;
        int async;                     /* written by a thread of rank 0 (rtrain/ckpt.h) */
    } checkpoint;

    struct {
        int max_failures;              /* -1: unlimited */
        double step_timeout_s;         /* 0: no watchdog; < 0: automatic (rtrain/run.h) */
        double step_timeout_min_s;     /* the automatic timeout's floor */
        double checkpoint_timeout_s;   /* bound on one checkpoint save; 0: none */
        double setup_timeout_s;        /* deadline of the start-up's collectives; 0: none */
    } failure;

    struct {
        long long bucket_bytes;        /* gradient all-reduce bucket size */
        char backend[8];               /* "auto" | "nccl" | "mpi" (GPU tensors) */
    } comm;

    struct {
        int deterministic;             /* deterministic cuDNN algorithms only */
        int tf32;                      /* TF32 allowed */
    } gpu;

    struct {                           /* rtrain-tune (rtrain/tune.h); rtrain ignores it */
        int num_samples;               /* repetitions of the grid (random draws) */
        long long seed;                /* trial i's values: a function of (seed, i) */
        char metric[64];               /* reported metric a trial is judged by */
        char mode[8];                  /* "max" | "min" */
        int ranks_per_trial;           /* ranks of each group running trials */
        int max_failures;              /* retries of a failed trial (input errors never) */
        char scheduler[16];            /* "fifo" | "asha" | "asha_promote" | "median" | "pbt" */
        int grace_period;              /* ASHA: first rung (iterations) */
        int reduction_factor;          /* ASHA: eta */
        int max_t;                     /* ASHA: last rung bound; 0: train.epochs */
        int perturbation_interval;     /* PBT: reports between decisions */
        double quantile_fraction;      /* PBT: bottom/top fraction */
        double resample_probability;   /* PBT: explore by drawing again */
        double claim_timeout_s;        /* job arrays: a silent claim is dead after this */
    } tune;
} rt_config;

/* data.fill_missing and data.cache as their enum values (rt_fill_policy,
 * rt_cache_policy of rtrain/data.h). */
int rt_config_fill_policy(const rt_config *cfg);
int rt_config_cache_policy(const rt_config *cfg);

/* Fills every field with its default. */
void rt_config_defaults(rt_config *cfg);

/* Reads `path`, applies overrides ("optimizer.lr=0.01", values in libconfig
 * syntax; a bare word is taken as a string), validates, fills defaults and
 * resolves data paths against data.dir. */
rt_status rt_config_load(rt_config *cfg, const char *path, int noverrides,
                         char *const *overrides);

/* As rt_config_load, for one trial of a search (rtrain/tune.h): a domain
 * in the file (a group such as { loguniform = [1e-4, 0.3]; } where a value
 * goes) is left to the overrides, which must set its key. rt_config_load
 * refuses a domain, with a message that names rtrain-tune. */
rt_status rt_config_load_trial(rt_config *cfg, const char *path, int noverrides,
                               char *const *overrides);

/* Search-space domain names, in rt_domain_kind order (rtrain/tune.h):
 * "uniform", "quniform", "loguniform", "randint", "choice", "grid". The
 * index of `name`, or -1; the name of index i, or NULL. */
int rt_config_domain_index(const char *name);
const char *rt_config_domain_name(int i);

/* Reads a run's params.json (what rt_config_write_json wrote, with the
 * run's "preprocessing" member, which is skipped) back into cfg: the
 * configuration the run trained with, e.g. to rebuild its model from a
 * checkpoint. Unknown keys and wrong types are errors naming the file;
 * the checks across keys are not run again. Not collective. */
rt_status rt_config_load_params(rt_config *cfg, const char *path);

/* rt_config_write_json into memory: *text (free()) of *len bytes. */
rt_status rt_config_json_text(const rt_config *cfg, char **text, size_t *len);

/* "xxh3:<16 hex digits>" of cfg's JSON (rt_config_write_json): the digest
 * a checkpoint records of the configuration it was saved with. */
rt_status rt_config_digest(const rt_config *cfg, char *out, size_t size);

/* Writes the fully resolved configuration as one JSON object. */
rt_status rt_config_write_json(const rt_config *cfg, FILE *f);

/* Prints every key with its type, default and help (rtrain --help-config). */
void rt_config_print_reference(FILE *f);

#ifdef __cplusplus
}
#endif
#endif
