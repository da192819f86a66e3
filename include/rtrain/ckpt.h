/* rtrain ckpt: checkpoints as one parallel HDF5 file per checkpoint, the
 * commit protocol that makes them appear atomically, retention, resume.
 *
 * Two levels:
 * - named tensors in one HDF5 file (rt_ckpt_file_*, rt_ckpt_write_tensor,
 *   rt_ckpt_read_tensor, rt_ckpt_attr_*): float32 datasets with their global
 *   shapes, each with an XXH3-64 checksum attribute, plus user attributes.
 *   Every rank holds the full replica of a tensor (data parallelism); on
 *   write each rank writes a disjoint slice of its rows (dimension 0), on
 *   read each rank reads its slice and the replica is rebuilt with
 *   an all-gather, so write and read bandwidth scale with the ranks.
 * - training state (rt_ckpt_save / rt_ckpt_load / rt_ckpt_find_latest ...):
 *   model, optimizer, scheduler, RNG and data position in a run directory,
 *   one directory checkpoint_%06d per checkpoint, committed atomically,
 *   listed in checkpoint_index.json, with top-K retention.
 * The on-disk format and the commit protocol are described in
 * docs/checkpoint-format.md.
 *
 * Collectiveness: a function taking an rt_comm (or an rt_ckpt_file opened
 * with one) is collective over it: every rank calls it with the same
 * arguments and every rank gets the same status, agreed by the rule of
 * rt_comm_agree (a failure on one rank is reported on every rank with that
 * rank's message, prefixed with its rank). Pass a NULL communicator to
 * work on one process without MPI (the tools do): then nothing is
 * collective and MPI need not be initialised. Functions without a
 * communicator are not collective.
 *
 * Test-only fault hook: the environment variable RTRAIN_FAULT set to
 * ckpt_before_write, ckpt_during_write, ckpt_before_commit or
 * ckpt_before_index makes rt_ckpt_save raise SIGKILL in that phase (on
 * rank RTRAIN_FAULT_RANK only, if set; ckpt_before_index is a phase of rank
 * 0 only); ckpt_fail_write makes that rank's data write fail with an I/O
 * error instead. Only in a build configured with --enable-fault-injection
 * (src/core/fault.h lists every test-only fault). */
#ifndef RTRAIN_CKPT_H
#define RTRAIN_CKPT_H

#include <stddef.h>
#include <stdint.h>
#include "rtrain/core.h"
#include "rtrain/nn.h"
#include "rtrain/optim.h"
#include "rtrain/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RT_CKPT_FORMAT_VERSION 1
#define RT_CKPT_PATH_MAX 4096
#define RT_CKPT_MAX_NDIM 8
#define RT_CKPT_DIGEST_MAX 80          /* config digest, e.g. 64 hex digits */
#define RT_CKPT_MAX_METRICS 64         /* metrics stored with one checkpoint */
#define RT_CKPT_METRIC_NAME_MAX 64

/* ---- named tensors in one HDF5 file ------------------------------------- */
typedef struct rt_ckpt_file rt_ckpt_file;

/* Creates (truncating) an HDF5 file at path. comm != NULL: collective,
 * MPI-IO driver (on rt_comm_mpi(comm)), collective metadata and transfers.
 * NULL: one process, POSIX driver. */
rt_status rt_ckpt_file_create(rt_ckpt_file **out, rt_comm *comm, const char *path);
/* Opens an existing file read-only (same drivers as above). */
rt_status rt_ckpt_file_open(rt_ckpt_file **out, rt_comm *comm, const char *path);
/* Closes and frees f (also on failure; NULL is a no-op). Collective. A
 * failure here means the file is incomplete. */
rt_status rt_ckpt_file_close(rt_ckpt_file *f);
const char *rt_ckpt_file_path(const rt_ckpt_file *f);

/* Writes dataset `name` ("/model/fc.weight"; missing groups are created)
 * of global shape shape[ndim] (ndim 0: a scalar) from data, the full
 * row-major replica, which every rank passes. Each rank writes its slice
 * of rows; the XXH3-64 checksum of the whole tensor is stored in the
 * dataset's attribute "xxh3_64". Collective. */
rt_status rt_ckpt_write_tensor(rt_ckpt_file *f, const char *name, int ndim,
                               const int64_t *shape, const float *data);
/* Writes dataset `name` of len bytes (uint8, one dimension) from data,
 * which every rank passes whole: a model a library saves in its own
 * format. Checksummed like a tensor; listings of tensors
 * (rt_ckpt_foreach_tensor) skip it, rt_ckpt_verify checks it. Collective. */
rt_status rt_ckpt_write_bytes(rt_ckpt_file *f, const char *name, const void *data, size_t len);
/* Reads byte dataset `name` into *data (rt_free it; one more byte, 0, past
 * *len) on every rank and checks its checksum (RT_ERR_FORMAT naming file
 * and dataset). Collective. */
rt_status rt_ckpt_read_bytes(rt_ckpt_file *f, const char *name, char **data, size_t *len);

/* 1 if `name` exists in the file (a dataset or a group). Collective. */
rt_status rt_ckpt_exists(rt_ckpt_file *f, const char *name, int *exists);
/* Shape of float dataset `name`; RT_ERR_FORMAT naming the file if it is
 * missing or not a float32 dataset. Collective. */
rt_status rt_ckpt_tensor_shape(rt_ckpt_file *f, const char *name, int *ndim,
                               int64_t shape[RT_CKPT_MAX_NDIM]);
/* Reads dataset `name` into data (the full replica, on every rank). The
 * stored shape must equal shape[ndim] (RT_ERR_FORMAT naming both shapes
 * otherwise) and the checksum must match (RT_ERR_FORMAT naming file and
 * dataset). Collective. */
rt_status rt_ckpt_read_tensor(rt_ckpt_file *f, const char *name, int ndim,
                              const int64_t *shape, float *data);

/* Tables written in pieces (rtrain-predict's output): dataset `name` of
 * shape [rows] (cols 0) or [rows, cols], float32 or int64
 * (RT_DTYPE_FLOAT32, RT_DTYPE_INT64), created with every rank passing the
 * same arguments; then each rank writes its own n consecutive rows from
 * `first` (n may be 0; blocks of different ranks must not overlap) from
 * data[n][cols]. No checksum is stored. Both collective. */
rt_status rt_ckpt_create_rows(rt_ckpt_file *f, const char *name, rt_dtype dtype, int64_t rows,
                              int64_t cols);
rt_status rt_ckpt_write_rows(rt_ckpt_file *f, const char *name, rt_dtype dtype, int64_t first,
                             int64_t n, const void *data);

/* Attributes of object `obj` ("/" or a group path; set creates missing
 * groups, replaces an existing attribute). Every rank passes the same
 * value. Collective. Strings are fixed-length, NUL-terminated UTF-8 (bytes
 * in h5py: .decode()); variable-length ones, which files before format
 * 1's manifest checksum held, are read as well. */
rt_status rt_ckpt_attr_set_int(rt_ckpt_file *f, const char *obj, const char *attr, int64_t v);
rt_status rt_ckpt_attr_set_uint(rt_ckpt_file *f, const char *obj, const char *attr, uint64_t v);
rt_status rt_ckpt_attr_set_double(rt_ckpt_file *f, const char *obj, const char *attr, double v);
rt_status rt_ckpt_attr_set_string(rt_ckpt_file *f, const char *obj, const char *attr,
                                  const char *v);
/* Missing attribute or wrong type: RT_ERR_FORMAT naming file, object and
 * attribute. Integer reads accept any stored integer type that fits. */
rt_status rt_ckpt_attr_get_int(rt_ckpt_file *f, const char *obj, const char *attr, int64_t *v);
rt_status rt_ckpt_attr_get_uint(rt_ckpt_file *f, const char *obj, const char *attr, uint64_t *v);
rt_status rt_ckpt_attr_get_double(rt_ckpt_file *f, const char *obj, const char *attr, double *v);
rt_status rt_ckpt_attr_get_string(rt_ckpt_file *f, const char *obj, const char *attr,
                                  char *buf, size_t size);
/* A string attribute of any length in *text (free() it), or *text = NULL
 * when obj has no such attribute. Collective. */
rt_status rt_ckpt_attr_get_text(rt_ckpt_file *f, const char *obj, const char *attr,
                                char **text);

/* Calls fn for every dataset under group `under` ("/" for all), in name
 * order, with its full path and shape; a dataset that is not float32 is
 * RT_ERR_FORMAT; stops at the first error fn returns. Not collective: only
 * for files opened without a communicator. */
typedef rt_status (*rt_ckpt_tensor_fn)(void *arg, const char *name, int ndim,
                                       const int64_t *shape);
rt_status rt_ckpt_foreach_tensor(rt_ckpt_file *f, const char *under, rt_ckpt_tensor_fn fn,
                                 void *arg);

/* ---- training state ------------------------------------------------------ */
typedef struct rt_ckpt_metric { const char *name; double value; } rt_ckpt_metric;

/* Writes what /model holds when the training has no rt_model (the
 * gradient-boosted trees of rtrain/gbdt.h: a library's model as bytes,
 * rt_ckpt_write_bytes, with attributes of /model). Collective. */
typedef rt_status (*rt_ckpt_model_writer)(rt_ckpt_file *f, void *arg);

/* What a checkpoint holds besides the model and optimizer slabs. */
typedef struct rt_train_state {
    rt_model *model;                 /* required, unless write_model is set */
    rt_ckpt_model_writer write_model;   /* with model NULL: writes /model instead */
    void *write_model_arg;
    int64_t write_model_bytes;       /* with write_model: about how many bytes it writes */
    rt_optimizer *optim;             /* NULL: no /optimizer group */
    const char *optimizer_type;      /* "sgd", "adam", ... (rt_optim_type_name); may be NULL */
    int64_t epoch;                   /* epoch to continue in */
    int64_t next_batch;              /* next global batch index within that epoch */
    int64_t step;                    /* optimizer steps done (also the scheduler's step) */
    int64_t training_iteration;      /* reports so far: 0 for a stop checkpoint before the first report */
    uint64_t seed;                   /* the run's seed (the RNG is counter-based) */
    char config_digest[RT_CKPT_DIGEST_MAX];   /* of the resolved configuration */
    /* What was fitted on the training data (JSON text: a dataset's
     * encoding, standardisation), stored as attribute "preprocessing" of
     * /data; NULL: none. */
    const char *preprocessing;
} rt_train_state;

/* Everything in a checkpoint except the tensors (rt_ckpt_read_info). */
typedef struct rt_ckpt_info {
    int64_t format_version;
    char rtrain_version[32];
    int64_t world_size;              /* ranks that wrote it */
    int64_t epoch, next_batch, step, training_iteration, optimizer_step;
    uint64_t seed;
    int has_optimizer;
    char optimizer_type[32];         /* "" when not recorded */
    char config_digest[RT_CKPT_DIGEST_MAX];
    int num_metrics;
    char metric_names[RT_CKPT_MAX_METRICS][RT_CKPT_METRIC_NAME_MAX];
    double metric_values[RT_CKPT_MAX_METRICS];   /* NaN stays NaN */
} rt_ckpt_info;

typedef enum rt_ckpt_score_order { RT_CKPT_SCORE_MAX = 0, RT_CKPT_SCORE_MIN = 1 } rt_ckpt_score_order;

/* Retention (Ray's CheckpointConfig). num_to_keep 0 keeps all; otherwise
 * the num_to_keep best by score_attribute (the newest ones when it is NULL
 * or ""), NaN or missing scores ranking worst, ties won by the newer one;
 * the newest checkpoint is always kept on top of those. */
typedef struct rt_ckpt_policy {
    int num_to_keep;
    const char *score_attribute;
    rt_ckpt_score_order score_order;
    /* Bound on one save: past timeout_s plus 1 s per 10 MB of checkpoint
     * the job ends through rt_abort (HDF5 I/O on a failing file system has
     * no timeout of its own); 0: none. */
    double timeout_s;
} rt_ckpt_policy;

/* Saves state and metrics as run_dir/checkpoint_%06d, numbered in commit
 * order (one more than the highest committed; with one checkpoint per
 * report, as the built-in loop saves them, this is training_iteration - 1
 * as in Ray, but a preemption checkpoint between two reports gets its own
 * number) with the commit protocol of docs/checkpoint-format.md, rewrites
 * run_dir/checkpoint_index.json, then applies policy (NULL: keep all).
 * committed_dir (may be NULL) receives the committed directory's path.
 * Every rank passes the same state and metrics. The directory run_dir is
 * created if missing (its parent must exist). An existing committed
 * checkpoint of the same index is an error (committed checkpoints are
 * immutable). On failure nothing is committed and earlier checkpoints are
 * untouched, unless the failure came after the commit (index or retention),
 * which the message says. Collective. */
rt_status rt_ckpt_save(rt_comm *comm, const char *run_dir, const rt_train_state *state,
                       const rt_ckpt_metric *metrics, int num_metrics,
                       const rt_ckpt_policy *policy, char *committed_dir,
                       size_t committed_dir_size);

enum {
    RT_CKPT_LOAD_MODEL = 1,       /* parameters and buffers */
    RT_CKPT_LOAD_OPTIMIZER = 2,   /* state slots and step count */
    RT_CKPT_LOAD_PROGRESS = 4,    /* epoch, next_batch, step, training_iteration, seed */
    RT_CKPT_LOAD_ALL = 7
};

/* Restores the parts in `what` from checkpoint directory ckpt_dir into
 * state (model and optimizer must be built with the checkpoint's shapes;
 * any world size works). info (may be NULL) receives the checkpoint's
 * attributes, e.g. to compare config digests. Checksums are verified.
 * Collective. */
rt_status rt_ckpt_load(rt_comm *comm, const char *ckpt_dir, rt_train_state *state, int what,
                       rt_ckpt_info *info);

/* The "preprocessing" text of checkpoint directory ckpt_dir in *json
 * (free() it), or NULL when the checkpoint has none. Collective. */
rt_status rt_ckpt_read_preprocessing(rt_comm *comm, const char *ckpt_dir, char **json);

/* Newest committed checkpoint of run_dir that verifies (structure and
 * checksums; the ranks share the reading). An invalid one is logged with
 * its file and reason and the previous one is tried. *found = 0 and RT_OK
 * when there is no committed checkpoint; RT_ERR_FORMAT when there are some
 * but none is valid (nothing is deleted). Collective. */
rt_status rt_ckpt_find_latest(rt_comm *comm, const char *run_dir, char *out_dir,
                              size_t out_size, int *found);

/* Removes temporaries a crashed save left in run_dir (.tmp_checkpoint_*,
 * .tmp_deleted_*, the index's temporary file). Call at the start of a run,
 * before any save. A missing run_dir is fine. Collective. */
rt_status rt_ckpt_cleanup_stale(rt_comm *comm, const char *run_dir);

/* Index the next rt_ckpt_save in run_dir will commit under (so that a
 * report can name the checkpoint it is saved with). Collective. */
rt_status rt_ckpt_next_index(rt_comm *comm, const char *run_dir, int64_t *index);

/* Removes every checkpoint of run_dir and its index (run.overwrite): the
 * index goes first, so nothing half-removed is ever listed. Collective. */
rt_status rt_ckpt_remove_all(rt_comm *comm, const char *run_dir);

/* ---- asynchronous saves (checkpoint.async) ----------------------------------------
 * rt_ckpt_save with the writing moved off the training loop: the call
 * returns once rank 0 has taken what the next forward would change (the
 * parameters and optimizer state are copied by the writer before the next
 * update: rt_ckpt_async_before_update);
 * a thread of rank 0 writes the file from the copy and commits it with the
 * same protocol and the same file (src/ckpt/async.c). A crash during the
 * write leaves the previous checkpoint valid and the index unchanged. One
 * save at a time: each save, and rt_ckpt_async_wait, first waits for the
 * one in flight and agrees on its outcome. */
typedef struct rt_ckpt_async rt_ckpt_async;
/* Not collective: a writer for saves over comm (NULL: one process). */
rt_status rt_ckpt_async_create(rt_ckpt_async **out, rt_comm *comm);
/* Collective: as rt_ckpt_save (committed_dir receives the name the
 * checkpoint is committed under), except that the file is written after
 * the call returns; its failure is returned by the next save or wait. */
rt_status rt_ckpt_save_async(rt_ckpt_async *w, const char *run_dir, const rt_train_state *state,
                             const rt_ckpt_metric *metrics, int num_metrics,
                             const rt_ckpt_policy *policy, char *committed_dir,
                             size_t committed_dir_size);
/* Not collective: returns once the save in flight has its own copy of the
 * parameters and the optimizer state. Call it before changing them (the
 * optimizer step) after rt_ckpt_save_async: on a host-memory backend the
 * writer copies them while the next forward and backward run. NULL and no
 * save in flight return at once. */
void rt_ckpt_async_before_update(rt_ckpt_async *w);
/* Collective: waits for the save in flight (none: returns at once, after
 * an agreement) and returns its outcome on every rank. NULL is allowed. */
rt_status rt_ckpt_async_wait(rt_ckpt_async *w);
/* Not collective: frees w, after finishing a write still in flight (its
 * outcome is lost: wait first). NULL is allowed. */
void rt_ckpt_async_free(rt_ckpt_async *w);

/* Commits a copy of the checkpoint directory src_dir (of another run) as
 * run_dir's next checkpoint, with the commit protocol of rt_ckpt_save
 * (temporary directory, sync, rename, index); its files are hard-linked
 * (committed files are read-only and never change) or copied across file
 * systems. src_dir is verified first, so a run resuming from run_dir never
 * loads a missing or damaged copy. A PBT exploit (rtrain-tune) uses it.
 * Not collective: one process, while no run writes run_dir. */
rt_status rt_ckpt_import(const char *run_dir, const char *src_dir, char *committed_dir,
                         size_t committed_dir_size);

/* Checks a checkpoint directory: manifest, structure, every dataset's
 * checksum. On failure the message names the file and the reason.
 * Collective (ranks share the datasets); NULL for one process. */
rt_status rt_ckpt_verify(rt_comm *comm, const char *ckpt_dir);

/* Reads the attributes of checkpoint directory ckpt_dir (opens it with the
 * POSIX driver). Not collective. */
rt_status rt_ckpt_read_info(const char *ckpt_dir, rt_ckpt_info *info);

/* Indices (commit order) of the committed checkpoint directories
 * in run_dir, ascending; *indices is freed with rt_free (NULL when *count
 * is 0). A missing run_dir has none. Not collective. */
rt_status rt_ckpt_list(const char *run_dir, int64_t **indices, int *count);

/* One checkpoint as retention sees it. */
typedef struct rt_ckpt_score {
    int64_t sequence;  /* commit order (directory index): larger is newer */
    int has_score;    /* 0: the score attribute was not reported */
    double score;     /* NaN ranks like a missing score */
} rt_ckpt_score;

/* The order in which retention keeps checkpoints and rtrain-results shows
 * them: ranked[0..n) receives indices into entries, best first. With
 * by_score: usable scores (present, not NaN) before the others, better
 * first by `order`; ties, and everything without by_score, newest (highest
 * sequence) first. Not collective. */
void rt_ckpt_rank(const rt_ckpt_score *entries, int n, int by_score, rt_ckpt_score_order order,
                  int *ranked);

/* keep[i] = 1 for the checkpoints policy keeps, 0 for those to delete
 * (see rt_ckpt_policy): the num_to_keep first of rt_ckpt_rank, plus the
 * newest. Not collective. */
void rt_ckpt_retention_select(const rt_ckpt_score *entries, int n,
                              const rt_ckpt_policy *policy, int *keep);

/* ---- safetensors files (src/ckpt/safetensors.c) ----------------------------------
 * The format of Hugging Face's safetensors: an 8-byte little-endian header
 * size, a JSON header naming each tensor's dtype, shape and byte range, the
 * tensors' bytes. Files are untrusted input: every size and offset is
 * checked against the file before anything is read or allocated from it
 * (RT_ERR_FORMAT naming the file and the tensor). None of these functions
 * is collective. */
typedef struct rt_safetensors rt_safetensors;
typedef struct rt_safetensors_tensor {
    const char *name;                /* valid while the file is open */
    const char *dtype;               /* "F32", "F64", "F16", "BF16", "I64", ... */
    int ndim;
    int64_t shape[RT_CKPT_MAX_NDIM];
    uint64_t count;                  /* elements */
} rt_safetensors_tensor;
/* Opens path and parses its header. */
rt_status rt_safetensors_open(rt_safetensors **out, const char *path);
void rt_safetensors_close(rt_safetensors *f);   /* NULL is a no-op */
int rt_safetensors_count(const rt_safetensors *f);
/* Tensor i (0..count-1) in header order, or NULL. */
const rt_safetensors_tensor *rt_safetensors_get(const rt_safetensors *f, int i);
int rt_safetensors_find(const rt_safetensors *f, const char *name);   /* -1: none */
/* The __metadata__ string of key, or NULL. */
const char *rt_safetensors_metadata(const rt_safetensors *f, const char *key);
/* Tensor i converted to float32 into out[count] (F32, F64, F16, BF16, I64,
 * I32, I16, I8, U8, BOOL are read). */
rt_status rt_safetensors_read(rt_safetensors *f, int i, float *out);

/* One tensor to write: name and shape; its values come from the fill
 * callback, which writes tensor i's count floats into out. */
typedef struct rt_safetensors_entry {
    const char *name;
    int ndim;
    int64_t shape[RT_CKPT_MAX_NDIM];
} rt_safetensors_entry;
typedef rt_status (*rt_safetensors_fill)(void *arg, int i, float *out);
/* Writes tensors t[0..n) as float32 little-endian, back to back in that
 * order, with metadata keys[i] = values[i] (strings, as the format
 * requires) under "__metadata__"; the header is padded with spaces to a
 * multiple of 8 bytes. The file is written under a temporary name and
 * renamed over path (a failure leaves path as it was), with `mode`. */
rt_status rt_safetensors_write(const char *path, int mode, const rt_safetensors_entry *t, int n,
                               rt_safetensors_fill fill, void *arg,
                               const char *const *meta_keys, const char *const *meta_values,
                               int nmeta);

/* ---- starting weights (model.init_from; src/ckpt/weights.c) ------------------------ */
#define RT_CKPT_MAX_EXCLUDE 32
/* Loads m's parameters and buffers by state_dict name from path: a
 * .safetensors file, an rtrain checkpoint directory (or its checkpoint.h5)
 * or an `rtrain-ckpt export` HDF5 file. Tensors whose names match one of
 * the fnmatch patterns exclude[0..nexclude) keep m's values (and are
 * ignored in the file). Every other model tensor must be in the file with
 * m's shape and every other file tensor must be in m; otherwise nothing is
 * changed and one RT_ERR_CONFIG message lists every missing, unexpected
 * and mis-shaped tensor (and every pattern that matches nothing). *loaded
 * and *kept receive the tensors loaded and left out. Not collective: one
 * process loads (the trainer's rank 0, which then broadcasts the model). */
rt_status rt_ckpt_load_weights(rt_model *m, const char *path, const char *const *exclude,
                               int nexclude, int *loaded, int *kept);

#ifdef __cplusplus
}
#endif
#endif
