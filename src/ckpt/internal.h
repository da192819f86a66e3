/* Helpers shared by the files of the ckpt module (not a public API). */
#ifndef RTRAIN_CKPT_INTERNAL_H
#define RTRAIN_CKPT_INTERNAL_H

#include "rtrain/ckpt.h"
#include "core/fs.h"

#define CKPT_FILE_NAME "checkpoint.h5"
#define CKPT_MANIFEST_NAME "manifest.json"
#define CKPT_INDEX_NAME "checkpoint_index.json"
#define CKPT_INDEX_TMP_NAME ".checkpoint_index.json.tmp"
#define CKPT_DIR_PREFIX "checkpoint_"
#define CKPT_TMP_PREFIX ".tmp_checkpoint_"
#define CKPT_DELETED_PREFIX ".tmp_deleted_checkpoint_"
#define CKPT_METRIC_PREFIX "metric."
#define CKPT_FORMAT_NAME "rtrain-checkpoint"
#define CKPT_MAX_CHECKPOINTS 1000000   /* bound on directories listed in a run */

/* ---- agreement (agree.c) -------------------------------------------------- */
/* Every rank learns the outcome of a step each rank did locally (or only
 * rank 0 did: the others pass RT_OK), by rt_comm_agree's rule. A NULL
 * communicator (one process) returns local. */
rt_status ckpt_agree(rt_comm *comm, rt_status local);
int ckpt_rank(const rt_comm *comm);    /* 0 for NULL */
int ckpt_world(const rt_comm *comm);   /* 1 for NULL */

/* Test-only fault hook: kills this process with SIGKILL when
 * RTRAIN_FAULT == phase (and RTRAIN_FAULT_RANK, if set, == rank). */
void ckpt_fault_point(const char *phase, int rank);
/* 1 when RTRAIN_FAULT == phase applies to this rank (injected failures). */
int ckpt_fault_active(const char *phase, int rank);

/* ---- many tensors at once (h5tensor.c) ------------------------------------------ */
/* Fills candidate i of a batch and returns 1, or returns 0 to leave it
 * out: its dataset name (NUL-terminated, at most RT_CKPT_PATH_MAX bytes
 * with the NUL), rank, shape and data (the whole replica, as
 * rt_ckpt_write_tensor takes it). The same on every rank. */
typedef int (*ckpt_tensor_fn)(void *arg, int i, char *name, int *ndim, int64_t *shape,
                              const float **data);
/* rt_ckpt_write_tensor for the candidates 0 .. count-1 that `describe`
 * keeps: the same datasets and checksums, with the slices of all of them
 * written before the ranks agree once (h5tensor.c, "writing datasets").
 * Collective. */
rt_status ckpt_write_tensors(rt_ckpt_file *f, int count, ckpt_tensor_fn describe, void *arg);

/* ---- checkpoint directory names (listing.c) ---------------------------------- */
/* 1 and the index if name is `prefix` followed by 6 to 15 digits. */
int ckpt_parse_dir_name(const char *name, const char *prefix, int64_t *index);

/* ---- HDF5 files (h5file.c) --------------------------------------------------- */
/* "[10,512]" ("[]" for a scalar). */
void ckpt_format_shape(char *buf, size_t size, int ndim, const int64_t *shape);
/* Size in bytes of the file behind f (bounds sizes read from it). */
int64_t ckpt_file_size(const rt_ckpt_file *f);
int ckpt_file_rank(const rt_ckpt_file *f);
/* Root attributes "metric.<name>" into info's metrics. Collective. */
rt_status ckpt_read_metrics(rt_ckpt_file *f, rt_ckpt_info *info);
/* As rt_ckpt_foreach_tensor, for the byte datasets (rt_ckpt_write_bytes)
 * it skips; ndim is 1, shape[0] their length. Not collective. */
rt_status ckpt_foreach_bytes(rt_ckpt_file *f, const char *under, rt_ckpt_tensor_fn fn,
                             void *arg);
/* Number of links in group (which must exist). Collective. */
rt_status ckpt_group_count(rt_ckpt_file *f, const char *group, int64_t *count);

/* ---- manifest and index (index.c) ------------------------------------------- */
/* What the index lists for one checkpoint, read from its manifest. */
typedef struct ckpt_entry {
    int64_t index, training_iteration, step, epoch;
    int num_metrics;
    char metric_names[RT_CKPT_MAX_METRICS][RT_CKPT_METRIC_NAME_MAX];
    double metric_values[RT_CKPT_MAX_METRICS];
    int has_file_sum;                  /* the manifest has file_bytes and file_xxh3_64 */
    int64_t file_bytes;
    uint64_t file_sum;
} ckpt_entry;

/* Progress counters read from a checkpoint (training_iteration, epoch,
 * next_batch, step, the optimizer's step): RT_ERR_FORMAT naming path and
 * key unless 0 <= v <= CKPT_MAX_COUNT (CKPT_MAX_STEP for "step"). */
#define CKPT_MAX_COUNT ((int64_t)INT32_MAX - 1)
#define CKPT_MAX_STEP ((int64_t)1 << 53)
rt_status ckpt_check_progress(const char *path, const char *key, int64_t v);
/* Size and XXH3-64 of the whole file at path (a regular file). own: the
 * caller's own file, just written and closed, that nothing else changes
 * (read through a mapping); 0 for any file a reader is handed (read()). */
rt_status ckpt_file_digest(const char *path, int own, int64_t *bytes, uint64_t *sum);
/* Checks checkpoint file `file` against the manifest.json beside it (size
 * and XXH3-64 of the whole file) before anything parses it: RT_ERR_FORMAT
 * when they differ. No manifest, or one from before it carried the sum:
 * nothing to check. Not collective. */
rt_status ckpt_check_file(const char *file);
rt_status ckpt_manifest_write(const char *dir, const rt_train_state *s, int world_size,
                              const rt_ckpt_metric *metrics, int num_metrics,
                              int64_t file_bytes, uint64_t file_sum);
rt_status ckpt_manifest_read(const char *ckpt_dir, ckpt_entry *e);
/* Rewrites run_dir's index (atomically) listing entries[i] with keep[i]. */
rt_status ckpt_index_write(const char *run_dir, const ckpt_entry *entries, const int *keep,
                           int n, const rt_ckpt_policy *policy);

/* ---- state <-> file (state.c) ----------------------------------------------- */
/* The model's and optimizer's slabs as host memory (state.c), those that
 * `what` names (RT_CKPT_LOAD_MODEL: parameters and buffers;
 * RT_CKPT_LOAD_OPTIMIZER: its state): the slabs themselves on a
 * host-memory backend, else host copies, downloaded when `download` (for
 * a write) and uploaded by _put (after a read). Not collective. */
typedef struct ckpt_host_slabs {
    float *params, *buffers, *optim;   /* optim: every state slot, back to back */
    int copied;                        /* 1: they are copies to free */
    int64_t optim_step;                /* the optimizer's step count with them */
} ckpt_host_slabs;
rt_status ckpt_host_slabs_get(ckpt_host_slabs *h, const rt_train_state *s, int what,
                              int download);
rt_status ckpt_host_slabs_put(const ckpt_host_slabs *h, const rt_train_state *s);
void ckpt_host_slabs_free(ckpt_host_slabs *h);


rt_status ckpt_state_write(rt_ckpt_file *f, const rt_train_state *s, const ckpt_host_slabs *h,
                           int world_size, const rt_ckpt_metric *metrics, int num_metrics);
rt_status ckpt_info_read(rt_ckpt_file *f, rt_ckpt_info *info);
rt_status ckpt_check_metrics(const rt_ckpt_metric *metrics, int num_metrics);

/* ---- the steps of a save (manager.c), shared with async.c ---------------------- */
rt_status ckpt_check_save_args(const char *run_dir, const rt_train_state *s,
                               const rt_ckpt_metric *metrics, int num_metrics,
                               const rt_ckpt_policy *policy);
/* Bytes a checkpoint of s takes on disk, with room for HDF5's metadata
 * (at least CKPT_SPACE_SLACK more than the tensors). */
#define CKPT_SPACE_SLACK ((int64_t)512 * 1024)
int64_t ckpt_state_bytes(const rt_train_state *s);
/* Arms the deadline of one save by policy->timeout_s (rt_deadline_arm's
 * handle, -1 for none). */
int ckpt_deadline_arm(const rt_ckpt_policy *policy, const rt_train_state *s, int rank,
                      const char *final_dir);
/* Step 1 (rank 0): the run directory and a fresh temporary directory,
 * after checking that the file system has need_bytes free (0: no check). */
rt_status ckpt_prepare_dirs(const char *run_dir, const char *tmp_dir, const char *final_dir,
                            int64_t need_bytes);
/* Step 2: path written from h (world_size as recorded), then fsynced; on
 * rank 0 (ckpt_rank(comm) == 0) *file_bytes and *file_sum are the size and
 * XXH3-64 of the whole file (ckpt_file_digest). */
rt_status ckpt_write_file(rt_comm *comm, const char *path, const rt_train_state *s,
                          const ckpt_host_slabs *h, int world_size,
                          const rt_ckpt_metric *metrics, int num_metrics,
                          int64_t *file_bytes, uint64_t *file_sum);
/* Step 3 (rank 0): manifest (with the file's size and sum from
 * ckpt_write_file), read-only files, the directory synced. */
rt_status ckpt_seal_dir(const char *tmp_dir, const char *file, int64_t file_bytes,
                        uint64_t file_sum, const rt_train_state *s, int world,
                        const rt_ckpt_metric *metrics, int num_metrics);
/* Steps 4 and 5 (rank 0): rename (the commit), index, retention. */
rt_status ckpt_commit(const char *run_dir, const char *tmp_dir, const char *final_dir,
                      const rt_ckpt_policy *policy);

#endif
