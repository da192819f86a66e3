/* The checkpoint manager: saving with an atomic commit, the run's index,
 * retention, finding the checkpoint to resume from, and removing what a
 * crashed save left behind.
 *
 * Commit protocol (ARCHITECTURE.md invariant 4: committed checkpoints are
 * immutable). A checkpoint exists exactly when the directory
 * RUN/checkpoint_%06d exists; it only ever appears there by a rename of a
 * complete, synced directory, so a crash at any moment leaves either the
 * old state or the new checkpoint, never a partial one under that name.
 *  1. Rank 0 creates RUN (if missing) and the temporary directory
 *     RUN/.tmp_checkpoint_%06d (removing a stale one of the same index);
 *     an existing committed checkpoint of that index is an error. All
 *     ranks learn the outcome (broadcast).
 *  2. All ranks create checkpoint.h5 in it with the MPI-IO driver, write
 *     their slices of every dataset collectively, and close it. After
 *     each step the ranks agree on success (all-reduce), so a failure on
 *     one rank stops all of them at the same point.
 *  3. Rank 0 computes the size and XXH3-64 of the closed checkpoint.h5
 *     (reading it back while the disk writes it); every rank fsyncs it
 *     (each flushes what its node wrote); all-reduce. Rank 0 writes
 *     manifest.json with that size and sum (fsynced), makes the files
 *     read-only (0440) and fsyncs the temporary directory; broadcast.
 *  4. Rank 0 makes the directory read-only (0550), renames it to
 *     RUN/checkpoint_%06d (the commit point) and fsyncs RUN.
 *  5. Rank 0 lists the committed checkpoints (from their manifests),
 *     applies retention and writes RUN/checkpoint_index.json atomically
 *     (temporary file, fsync, rename, fsync RUN) listing those it keeps;
 *     only then renames each one to delete to RUN/.tmp_deleted_* and
 *     removes it. The newest checkpoint is always kept. The index is
 *     rebuilt from the directories each time, so an index left stale by a
 *     crash between 4 and 5 is corrected by the next save.
 *  6. Rank 0 broadcasts the outcome of 4-5 with its message, so every
 *     rank returns the same status.
 * If steps 1-3 fail, rank 0 removes the temporary directory and nothing
 * committed is touched. Temporaries left by a crash are removed by
 * rt_ckpt_cleanup_stale at the next start; nothing reads them before.
 *
 * Test-only fault points (RTRAIN_FAULT, see rtrain/ckpt.h) sit between the
 * steps: ckpt_before_write (after 1), ckpt_during_write (inside 2, model
 * written, optimizer not), ckpt_before_commit (after 3), ckpt_before_index
 * (after 4). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "internal.h"

static rt_status shared_list(rt_comm *comm, const char *run_dir, int64_t **idx, int *n);

/* ---- step 1 ------------------------------------------------------------------- */

int64_t ckpt_state_bytes(const rt_train_state *s)
{
    int64_t data = s->write_model_bytes;   /* a model written by write_model */
    if (s->model) {
        size_t params = rt_model_num_params(s->model);
        size_t floats = params + rt_model_num_buffers(s->model) +
                        (s->optim ? params * (size_t)rt_optim_state_slots(s->optim) : 0);
        data = (int64_t)(floats * sizeof(float));
    }
    /* HDF5's object headers, attributes and checksums: measured at under
     * 1 KiB per dataset; a fixed allowance plus 1/32 covers them. */
    return data + data / 32 + CKPT_SPACE_SLACK;
}

/* The space a file system offers this user, or -1 when it cannot say.
 * Checked before the collective create because HDF5 cannot fail cleanly
 * there: a rank whose metadata write at H5Fclose finds the disk full
 * leaves the others in a different barrier for ever. */
static rt_status check_space(const char *run_dir, int64_t need)
{
    struct statvfs vfs;
    if (need <= 0 || statvfs(run_dir, &vfs) != 0 || vfs.f_frsize == 0)
        return RT_OK;   /* unknown: the write's own errors (and the deadline) remain */
    if (ckpt_fault_active("ckpt_no_space_check", 0))
        return RT_OK;
    double free_b = (double)vfs.f_bavail * (double)vfs.f_frsize;
    if (free_b >= (double)need)
        return RT_OK;
    return RT_ERROR(RT_ERR_IO, "not enough free space for a checkpoint in %s: it needs about "
                    "%.1f MiB and the file system has %.1f MiB free (disk full or quota "
                    "reached): free space, lower checkpoint.num_to_keep or move "
                    "run.storage_path; the checkpoints committed before are intact",
                    run_dir, (double)need / 1048576.0, free_b / 1048576.0);
}

rt_status ckpt_prepare_dirs(const char *run_dir, const char *tmp_dir, const char *final_dir,
                            int64_t need_bytes)
{
    struct stat sb;
    if (mkdir(run_dir, 0750) != 0 && errno != EEXIST)
        return RT_ERROR(RT_ERR_IO, "cannot create run directory %s: %s (its parent must be "
                        "an existing, writable directory)", run_dir, strerror(errno));
    if (stat(run_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return RT_ERROR(RT_ERR_IO, "run directory %s is not a directory", run_dir);
    if (stat(final_dir, &sb) == 0)
        return RT_ERROR(RT_ERR_IO, "%s already exists: committed checkpoints are immutable "
                        "(is another run writing to %s, or was training_iteration not "
                        "restored on resume?)", final_dir, run_dir);
    RT_CHECK(rt_fs_remove_tree(tmp_dir));
    RT_CHECK(check_space(run_dir, need_bytes));
    if (mkdir(tmp_dir, 0750) != 0)
        return RT_ERROR(RT_ERR_IO, "cannot create %s: %s", tmp_dir, strerror(errno));
    return RT_OK;
}

/* ---- steps 2 and 3 ---------------------------------------------------------------- */

/* A write failed (agreed, so no rank writes any more): the file will be
 * removed, so its data is dropped now. On a full disk this frees the space
 * the close needs for HDF5's metadata, so that H5Fclose succeeds on every
 * rank alike instead of failing on some and leaving the others in its
 * barriers (and HDF5 with a half-closed file that crashes at exit). */
static void discard_data(const char *path)
{
    if (truncate(path, 0) != 0 && errno != ENOENT)
        rt_warn("cannot truncate %s after a failed write: %s", path, strerror(errno));
}

rt_status ckpt_write_file(rt_comm *comm, const char *path, const rt_train_state *s,
                          const ckpt_host_slabs *h, int world_size,
                          const rt_ckpt_metric *metrics, int num_metrics,
                          int64_t *file_bytes, uint64_t *file_sum)
{
    rt_ckpt_file *f = NULL;
    rt_status st = rt_ckpt_file_create(&f, comm, path);
    if (st == RT_OK) {
        st = ckpt_state_write(f, s, h, world_size, metrics, num_metrics);   /* agreed */
        if (st != RT_OK && ckpt_rank(comm) == 0)
            discard_data(path);
        rt_status cst = rt_ckpt_file_close(f);
        if (st == RT_OK)
            st = cst;
    }
    RT_CHECK(st);
    /* Rank 0 reads the closed file back for the manifest's whole-file
     * checksum while the disk is still writing it (the writeback started
     * dataset by dataset, h5file.c), instead of after the fsync: the bytes
     * are final once the file is closed, so the sum is that of the file as
     * synced, and the fsync after it mostly finds the work done. Then each
     * rank flushes what it wrote (on a parallel file system, the pages its
     * own client holds). */
    rt_status local = RT_OK;
    if (ckpt_rank(comm) == 0)
        local = ckpt_file_digest(path, 1, file_bytes, file_sum);
    if (local == RT_OK)
        local = rt_fs_fsync(path, 0);
    RT_CHECK(ckpt_agree(comm, local));
    return RT_OK;
}

static rt_status write_file(rt_comm *comm, const char *path, const rt_train_state *s,
                            const rt_ckpt_metric *metrics, int num_metrics,
                            int64_t *file_bytes, uint64_t *file_sum)
{
    /* Device tensors come to host memory first, agreed, so that no rank
     * leaves the others in the collective writes. */
    ckpt_host_slabs h;
    rt_status st = ckpt_agree(comm, ckpt_host_slabs_get(&h, s, RT_CKPT_LOAD_MODEL | RT_CKPT_LOAD_OPTIMIZER, 1));
    if (st == RT_OK)
        st = ckpt_write_file(comm, path, s, &h, ckpt_world(comm), metrics, num_metrics,
                             file_bytes, file_sum);
    ckpt_host_slabs_free(&h);
    return st;
}

rt_status ckpt_seal_dir(const char *tmp_dir, const char *file, int64_t file_bytes,
                        uint64_t file_sum, const rt_train_state *s, int world,
                        const rt_ckpt_metric *metrics, int num_metrics)
{
    char manifest[RT_CKPT_PATH_MAX];
    RT_CHECK(ckpt_manifest_write(tmp_dir, s, world, metrics, num_metrics, file_bytes,
                                 file_sum));
    RT_CHECK(rt_fs_path(manifest, sizeof manifest, "%s/%s", tmp_dir, CKPT_MANIFEST_NAME));
    if (chmod(file, 0440) != 0 || chmod(manifest, 0440) != 0)
        return RT_ERROR(RT_ERR_IO, "cannot make the files in %s read-only: %s", tmp_dir,
                        strerror(errno));
    RT_CHECK(rt_fs_fsync(tmp_dir, 1));
    return RT_OK;
}

/* ---- step 5 -------------------------------------------------------------------------- */

static rt_status delete_checkpoint(const char *run_dir, int64_t index)
{
    char from[RT_CKPT_PATH_MAX], to[RT_CKPT_PATH_MAX];
    RT_CHECK(rt_fs_path(from, sizeof from, "%s/" CKPT_DIR_PREFIX "%06lld", run_dir,
                        (long long)index));
    RT_CHECK(rt_fs_path(to, sizeof to, "%s/" CKPT_DELETED_PREFIX "%06lld", run_dir,
                        (long long)index));
    /* Out of the committed name space first, atomically: a crash while
     * removing leaves a temporary, never a half-deleted checkpoint. */
    RT_CHECK(rt_fs_remove_tree(to));
    if (rename(from, to) != 0)
        return RT_ERROR(RT_ERR_IO, "cannot rename %s to %s: %s", from, to, strerror(errno));
    RT_CHECK(rt_fs_remove_tree(to));
    return RT_OK;
}

/* Manifests of the committed checkpoints; one that cannot be read is left
 * out of the index (and so never deleted), with a warning. */
static rt_status read_entries(const char *run_dir, ckpt_entry **out, int *count)
{
    int64_t *idx = NULL;
    int n = 0, m = 0;
    *out = NULL;
    *count = 0;
    RT_CHECK(rt_ckpt_list(run_dir, &idx, &n));
    ckpt_entry *e = NULL;
    rt_status st = rt_alloc(&e, (size_t)(n ? n : 1), sizeof *e, "checkpoint index entries");
    for (int i = 0; st == RT_OK && i < n; i++) {
        char dir[RT_CKPT_PATH_MAX];
        st = rt_fs_path(dir, sizeof dir, "%s/" CKPT_DIR_PREFIX "%06lld", run_dir,
                        (long long)idx[i]);
        if (st != RT_OK)
            break;
        if (ckpt_manifest_read(dir, &e[m]) == RT_OK) {
            m++;
        } else {
            rt_warn("checkpoint %s is left out of the index and kept: %s", dir,
                    rt_error_message());
            rt_error_clear();
        }
    }
    rt_free(idx);
    if (st != RT_OK) {
        rt_free(e);
        return st;
    }
    *out = e;
    *count = m;
    return RT_OK;
}

static rt_status index_and_retain(const char *run_dir, const rt_ckpt_policy *policy)
{
    ckpt_entry *e = NULL;
    int n = 0;
    RT_CHECK(read_entries(run_dir, &e, &n));
    rt_ckpt_score *scores = NULL;
    int *keep = NULL;
    rt_status st = rt_alloc(&scores, (size_t)(n ? n : 1), sizeof *scores, "retention scores");
    if (st == RT_OK)
        st = rt_alloc(&keep, (size_t)(n ? n : 1), sizeof *keep, "retention flags");
    const char *attr = policy ? policy->score_attribute : NULL;
    for (int i = 0; st == RT_OK && i < n; i++) {
        scores[i] = (rt_ckpt_score){.sequence = e[i].index};
        for (int k = 0; attr && k < e[i].num_metrics; k++)
            if (strcmp(e[i].metric_names[k], attr) == 0) {
                scores[i].has_score = 1;
                scores[i].score = e[i].metric_values[k];
            }
    }
    if (st == RT_OK) {
        rt_ckpt_retention_select(scores, n, policy, keep);
        st = ckpt_index_write(run_dir, e, keep, n, policy);   /* before any deletion */
    }
    for (int i = 0; st == RT_OK && i < n; i++) {
        if (keep[i])
            continue;
        if (delete_checkpoint(run_dir, e[i].index) != RT_OK) {
            /* Not fatal: the checkpoint stays valid and the next save retries. */
            rt_warn("retention could not remove a checkpoint: %s", rt_error_message());
            rt_error_clear();
        }
    }
    rt_free(keep);
    rt_free(scores);
    rt_free(e);
    RT_CHECK(st);
    return RT_OK;
}

/* Steps 4 and 5 (rank 0). */
rt_status ckpt_commit(const char *run_dir, const char *tmp_dir, const char *final_dir,
                        const rt_ckpt_policy *policy)
{
    if (chmod(tmp_dir, 0550) != 0)
        return RT_ERROR(RT_ERR_IO, "cannot make %s read-only: %s", tmp_dir, strerror(errno));
    if (rename(tmp_dir, final_dir) != 0)
        return RT_ERROR(RT_ERR_IO, "cannot commit checkpoint: rename %s to %s: %s", tmp_dir,
                        final_dir, strerror(errno));
    RT_CHECK(rt_fs_fsync(run_dir, 1));
    ckpt_fault_point("ckpt_before_index", 0);
    rt_status st = index_and_retain(run_dir, policy);
    if (st != RT_OK)
        rt_warn("checkpoint %s is committed, but the index or retention failed", final_dir);
    RT_CHECK(st);
    return RT_OK;
}

rt_status ckpt_check_save_args(const char *run_dir, const rt_train_state *s,
                                 const rt_ckpt_metric *metrics, int num_metrics,
                                 const rt_ckpt_policy *policy)
{
    if (!run_dir || !run_dir[0] || !s || (!s->model && !s->write_model))
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_ckpt_save needs a run directory and a model "
                        "(or a model writer)");
    /* 0: before the first report (a stop signal in the first epoch). */
    if (s->training_iteration < 0)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_ckpt_save: training_iteration is %lld; it "
                        "counts reports and must be >= 0", (long long)s->training_iteration);
    if (policy && policy->num_to_keep < 0)
        return RT_ERROR(RT_ERR_INVALID_ARG, "checkpoint num_to_keep is %d (0 keeps all)",
                        policy->num_to_keep);
    RT_CHECK(ckpt_check_metrics(metrics, num_metrics));
    return RT_OK;
}

int ckpt_deadline_arm(const rt_ckpt_policy *policy, const rt_train_state *s, int rank,
                      const char *final_dir)
{
    if (!policy || !(policy->timeout_s > 0))
        return -1;
    double seconds = policy->timeout_s + (double)ckpt_state_bytes(s) / 10e6;
    /* The other ranks wait a little longer, so that rank 0, which writes
     * error.txt in its abort, is normally the one that ends the job. */
    if (rank != 0)
        seconds += 5 + seconds / 10;
    char what[RT_CKPT_PATH_MAX + 32];
    snprintf(what, sizeof what, "the checkpoint save of %s", final_dir);
    return rt_deadline_arm(seconds, what);
}

static rt_status save(rt_comm *comm, const char *run_dir, const rt_train_state *s,
                      const rt_ckpt_metric *metrics, int num_metrics,
                      const rt_ckpt_policy *policy, char *committed_dir,
                      size_t committed_dir_size, int *deadline);

rt_status rt_ckpt_save(rt_comm *comm, const char *run_dir, const rt_train_state *s,
                       const rt_ckpt_metric *metrics, int num_metrics,
                       const rt_ckpt_policy *policy, char *committed_dir,
                       size_t committed_dir_size)
{
    int deadline = -1;
    rt_status st = save(comm, run_dir, s, metrics, num_metrics, policy, committed_dir,
                        committed_dir_size, &deadline);
    rt_deadline_disarm(deadline);
    return st;
}

static rt_status save(rt_comm *comm, const char *run_dir, const rt_train_state *s,
                      const rt_ckpt_metric *metrics, int num_metrics,
                      const rt_ckpt_policy *policy, char *committed_dir,
                      size_t committed_dir_size, int *deadline)
{
    int rank = ckpt_rank(comm), world = ckpt_world(comm);
    RT_CHECK(ckpt_check_save_args(run_dir, s, metrics, num_metrics, policy));   /* same on all ranks */
    int64_t next;
    RT_CHECK(rt_ckpt_next_index(comm, run_dir, &next));
    long long idx = (long long)next;
    char tmp_dir[RT_CKPT_PATH_MAX], final_dir[RT_CKPT_PATH_MAX], file[RT_CKPT_PATH_MAX];
    RT_CHECK(rt_fs_path(tmp_dir, sizeof tmp_dir, "%s/" CKPT_TMP_PREFIX "%06lld", run_dir, idx));
    RT_CHECK(rt_fs_path(final_dir, sizeof final_dir, "%s/" CKPT_DIR_PREFIX "%06lld", run_dir, idx));
    RT_CHECK(rt_fs_path(file, sizeof file, "%s/%s", tmp_dir, CKPT_FILE_NAME));
    if (committed_dir && committed_dir_size)
        committed_dir[0] = '\0';
    *deadline = ckpt_deadline_arm(policy, s, rank, final_dir);

    RT_CHECK(ckpt_agree(comm, rank == 0 ? ckpt_prepare_dirs(run_dir, tmp_dir, final_dir,
                                                            ckpt_state_bytes(s))
                                        : RT_OK));
    ckpt_fault_point("ckpt_before_write", rank);
    int64_t file_bytes = 0;
    uint64_t file_sum = 0;   /* rank 0's */
    rt_status st = write_file(comm, file, s, metrics, num_metrics, &file_bytes, &file_sum);
    if (st == RT_OK)
        st = ckpt_agree(comm, rank == 0 ? ckpt_seal_dir(tmp_dir, file, file_bytes, file_sum,
                                                        s, world, metrics, num_metrics)
                                        : RT_OK);
    if (st != RT_OK) {
        if (rank == 0 && rt_fs_remove_tree(tmp_dir) != RT_OK)
            rt_error_trace(__FILE__, __LINE__, "temporary checkpoint directory not removed");
        RT_CHECK(st);
    }
    ckpt_fault_point("ckpt_before_commit", rank);
    RT_CHECK(ckpt_agree(comm, rank == 0 ? ckpt_commit(run_dir, tmp_dir, final_dir, policy)
                                        : RT_OK));
    if (committed_dir && committed_dir_size)
        snprintf(committed_dir, committed_dir_size, "%s", final_dir);
    return RT_OK;
}

/* ---- importing another run's checkpoint ------------------------------------------------ */

/* src into dst: a hard link (committed files are read-only and never
 * change, so sharing the inode is safe), or a copy on another file system. */
static rt_status link_or_copy(const char *src, const char *dst)
{
    if (link(src, dst) == 0)
        return RT_OK;
    if (errno != EXDEV && errno != EPERM && errno != EMLINK)
        return RT_ERROR(RT_ERR_IO, "cannot link %s to %s: %s", src, dst, strerror(errno));
    FILE *in = fopen(src, "rb");
    if (!in)
        return RT_ERROR(RT_ERR_IO, "cannot read %s: %s", src, strerror(errno));
    int fd = -1;
    rt_status st = rt_fs_open_write(&fd, dst, O_CREAT | O_EXCL, 0640, "a checkpoint copy");
    char buf[1 << 16];
    for (size_t n; st == RT_OK && (n = fread(buf, 1, sizeof buf, in)) > 0;)
        st = rt_fs_write_all(fd, buf, n, dst);
    if (st == RT_OK && ferror(in))
        st = RT_ERROR(RT_ERR_IO, "cannot read %s", src);
    fclose(in);
    if (fd >= 0 && close(fd) != 0 && st == RT_OK)
        st = RT_ERROR(RT_ERR_IO, "cannot write %s: %s", dst, strerror(errno));
    if (st == RT_OK && chmod(dst, 0440) != 0)
        st = RT_ERROR(RT_ERR_IO, "cannot make %s read-only: %s", dst, strerror(errno));
    return st;
}

rt_status rt_ckpt_import(const char *run_dir, const char *src_dir, char *committed_dir,
                         size_t committed_dir_size)
{
    RT_CHECK(rt_ckpt_verify(NULL, src_dir));
    int64_t next;
    RT_CHECK(rt_ckpt_next_index(NULL, run_dir, &next));
    char tmp_dir[RT_CKPT_PATH_MAX], final_dir[RT_CKPT_PATH_MAX];
    RT_CHECK(rt_fs_path(tmp_dir, sizeof tmp_dir, "%s/" CKPT_TMP_PREFIX "%06lld", run_dir,
                        (long long)next));
    RT_CHECK(rt_fs_path(final_dir, sizeof final_dir, "%s/" CKPT_DIR_PREFIX "%06lld", run_dir,
                        (long long)next));
    RT_CHECK(ckpt_prepare_dirs(run_dir, tmp_dir, final_dir, 0));
    static const char *const files[] = {CKPT_FILE_NAME, CKPT_MANIFEST_NAME};
    rt_status st = RT_OK;
    for (int i = 0; st == RT_OK && i < 2; i++) {
        char from[RT_CKPT_PATH_MAX], to[RT_CKPT_PATH_MAX];
        st = rt_fs_path(from, sizeof from, "%s/%s", src_dir, files[i]);
        if (st == RT_OK)
            st = rt_fs_path(to, sizeof to, "%s/%s", tmp_dir, files[i]);
        if (st == RT_OK)
            st = link_or_copy(from, to);
        if (st == RT_OK)
            st = rt_fs_fsync(to, 0);
    }
    if (st == RT_OK)
        st = rt_fs_fsync(tmp_dir, 1);
    if (st == RT_OK)
        st = ckpt_commit(run_dir, tmp_dir, final_dir, NULL);
    else if (rt_fs_remove_tree(tmp_dir) != RT_OK)
        rt_error_trace(__FILE__, __LINE__, "temporary checkpoint directory not removed");
    RT_CHECK(st);
    if (committed_dir && committed_dir_size)
        snprintf(committed_dir, committed_dir_size, "%s", final_dir);
    return RT_OK;
}

/* ---- start of a run -------------------------------------------------------------------- */

static int is_stale_name(const char *name)
{
    return strncmp(name, CKPT_TMP_PREFIX, strlen(CKPT_TMP_PREFIX)) == 0 ||
           strncmp(name, CKPT_DELETED_PREFIX, strlen(CKPT_DELETED_PREFIX)) == 0 ||
           strcmp(name, CKPT_INDEX_TMP_NAME) == 0;
}

static rt_status remove_stale(const char *run_dir)
{
    DIR *d = opendir(run_dir);
    if (!d)
        return errno == ENOENT ? RT_OK
                               : RT_ERROR(RT_ERR_IO, "cannot list run directory %s: %s",
                                          run_dir, strerror(errno));
    rt_status st = RT_OK;
    int removed = 0;
    struct dirent *de;
    while (st == RT_OK && (de = readdir(d)) != NULL) {
        if (!is_stale_name(de->d_name))
            continue;
        char path[RT_CKPT_PATH_MAX];
        st = rt_fs_path(path, sizeof path, "%s/%s", run_dir, de->d_name);
        if (st == RT_OK)
            st = rt_fs_remove_tree(path);
        removed += st == RT_OK;
    }
    closedir(d);
    RT_CHECK(st);
    if (removed)
        rt_info("removed %d temporary checkpoint file(s) left in %s by an interrupted save",
                removed, run_dir);
    return RT_OK;
}

rt_status rt_ckpt_cleanup_stale(rt_comm *comm, const char *run_dir)
{
    int rank = ckpt_rank(comm);
    RT_CHECK(ckpt_agree(comm, rank == 0 ? remove_stale(run_dir) : RT_OK));
    return RT_OK;
}

/* Rank 0's list of committed checkpoints, given to every rank. */
static rt_status shared_list(rt_comm *comm, const char *run_dir, int64_t **idx, int *n)
{
    int rank = ckpt_rank(comm);
    *idx = NULL;
    *n = 0;
    RT_CHECK(ckpt_agree(comm, rank == 0 ? rt_ckpt_list(run_dir, idx, n) : RT_OK));
    if (comm == NULL)
        return RT_OK;
    int32_t count = *n;
    rt_status st = rt_comm_broadcast(comm, &count, 1, RT_DTYPE_INT32, 0);
    *n = count;
    if (st == RT_OK && count > 0 && rank != 0)
        st = rt_alloc(idx, (size_t)count, sizeof **idx, "checkpoint list");
    /* Agreed: a rank that cannot hold the list must not leave the others
     * in the broadcast. */
    if (count > 0)
        st = ckpt_agree(comm, st);
    if (st == RT_OK && count > 0)
        st = rt_comm_broadcast(comm, *idx, (size_t)count, RT_DTYPE_INT64, 0);
    if (st != RT_OK) {
        rt_free(*idx);
        *idx = NULL;
        *n = 0;
    }
    return st;
}

rt_status rt_ckpt_find_latest(rt_comm *comm, const char *run_dir, char *out_dir,
                              size_t out_size, int *found)
{
    int64_t *idx = NULL;
    int n = 0;
    *found = 0;
    RT_CHECK(shared_list(comm, run_dir, &idx, &n));
    char first_reason[1024] = "";
    rt_status st = RT_OK;
    for (int i = n - 1; i >= 0 && !*found; i--) {
        char dir[RT_CKPT_PATH_MAX];
        st = rt_fs_path(dir, sizeof dir, "%s/" CKPT_DIR_PREFIX "%06lld", run_dir,
                        (long long)idx[i]);
        if (st != RT_OK)
            break;
        if (rt_ckpt_verify(comm, dir) == RT_OK) {
            *found = 1;
            st = rt_fs_path(out_dir, out_size, "%s", dir);
            break;
        }
        if (!first_reason[0])
            snprintf(first_reason, sizeof first_reason, "%s", rt_error_message());
        if (ckpt_rank(comm) == 0)
            rt_warn("checkpoint %s is not valid and is skipped: %s", dir, rt_error_message());
        rt_error_clear();
    }
    rt_free(idx);
    RT_CHECK(st);
    if (n > 0 && !*found)
        return RT_ERROR(RT_ERR_FORMAT, "no valid checkpoint in %s: all %d committed checkpoints "
                        "failed verification (newest: %s); nothing was deleted: inspect them "
                        "with rtrain-ckpt verify", run_dir, n, first_reason);
    return RT_OK;
}

static rt_status remove_all(const char *run_dir)
{
    char index[RT_CKPT_PATH_MAX];
    RT_CHECK(rt_fs_path(index, sizeof index, "%s/" CKPT_INDEX_NAME, run_dir));
    if (unlink(index) != 0 && errno != ENOENT)
        return RT_ERROR(RT_ERR_IO, "cannot remove %s: %s", index, strerror(errno));
    int64_t *idx = NULL;
    int n = 0;
    RT_CHECK(rt_ckpt_list(run_dir, &idx, &n));
    rt_status st = RT_OK;
    for (int i = 0; st == RT_OK && i < n; i++)
        st = delete_checkpoint(run_dir, idx[i]);
    rt_free(idx);
    return st;
}

rt_status rt_ckpt_remove_all(rt_comm *comm, const char *run_dir)
{
    return ckpt_agree(comm, ckpt_rank(comm) == 0 ? remove_all(run_dir) : RT_OK);
}

/* The next number in commit order; every rank gets rank 0's list. */
rt_status rt_ckpt_next_index(rt_comm *comm, const char *run_dir, int64_t *index)
{
    int64_t *committed = NULL;
    int n = 0;
    RT_CHECK(shared_list(comm, run_dir, &committed, &n));
    *index = n ? committed[n - 1] + 1 : 0;
    rt_free(committed);
    return RT_OK;
}
