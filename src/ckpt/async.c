/* Asynchronous checkpoint saves (rtrain/ckpt.h, checkpoint.async): the
 * training loop stops only while rank 0 copies the state; a thread of
 * rank 0 writes and commits the checkpoint while training goes on.
 *
 * Protocol, for each save (every rank calls rt_ckpt_save_async):
 *  1. The previous save is waited for: rank 0 joins its thread, and its
 *     outcome (with its message) is agreed, so a failed write fails the
 *     next save, or the wait at the end, on every rank.
 *  2. The index is numbered after the committed checkpoints (the previous
 *     one included), as rt_ckpt_save numbers it.
 *  3. Rank 0 copies the state into memory of its own; the ranks agree on
 *     it. The replicas are identical (the trainer synchronises the buffers
 *     before a checkpoint), so rank 0's copy is the whole state. On a
 *     host-memory backend only the buffers (which forward changes) and the
 *     optimizer's step count are copied here; the thread copies the
 *     parameters and the optimizer state first thing, and the caller's
 *     next update of them (the optimizer step) waits for that copy
 *     (rt_ckpt_async_before_update): the copy overlaps the next forward
 *     and backward instead of stopping training. A GPU's tensors are
 *     downloaded here.
 *  4. Rank 0's thread writes the file from the copy with HDF5's POSIX
 *     driver (one process, no MPI in the thread; the HDF5 lock is held
 *     from create to close, so nothing else of the process calls HDF5 in
 *     between), then seals and commits it exactly as rt_ckpt_save does:
 *     temporary directory, fsync, manifest, read-only, rename (the commit
 *     point), index, retention. A crash before the rename leaves the
 *     previous checkpoint the newest and the index unchanged.
 * The file is the one rt_ckpt_save writes (the same datasets, checksums
 * and attributes, world_size the job's), so resume, rtrain-ckpt and h5py
 * read it the same. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

struct rt_ckpt_async {
    rt_comm *comm;
    int rank, world;
    int in_flight;                 /* rank 0: the thread runs (join it) */
    pthread_t thread;
    /* The job: the thread's alone while it runs. */
    char run_dir[RT_CKPT_PATH_MAX], tmp_dir[RT_CKPT_PATH_MAX], final_dir[RT_CKPT_PATH_MAX];
    char file[RT_CKPT_PATH_MAX];
    rt_train_state state;          /* scalars by value; model and optimizer for their tables */
    ckpt_host_slabs copy;          /* the tensors as they were */
    rt_ckpt_metric metrics[RT_CKPT_MAX_METRICS];
    char names[RT_CKPT_MAX_METRICS][RT_CKPT_METRIC_NAME_MAX];
    int num_metrics;
    rt_ckpt_policy policy;
    int has_policy;
    char score_attribute[RT_CKPT_METRIC_NAME_MAX];
    rt_status status;              /* the thread's outcome and message */
    char message[2048];
    /* Deferred copy (host memory): the live slabs the thread copies, and
     * whether it has (guarded by lock; before_update waits on copied_cv). */
    const float *live_params, *live_optim;
    size_t num_params, num_optim;
    int copied;
    pthread_mutex_t lock;
    pthread_cond_t copied_cv;
};

rt_status rt_ckpt_async_create(rt_ckpt_async **out, rt_comm *comm)
{
    RT_CHECK(rt_alloc(out, 1, sizeof **out, "asynchronous checkpoint writer"));
    pthread_mutex_init(&(*out)->lock, NULL);
    pthread_cond_init(&(*out)->copied_cv, NULL);
    (*out)->comm = comm;
    (*out)->rank = ckpt_rank(comm);
    (*out)->world = ckpt_world(comm);
    return RT_OK;
}

/* A private copy of n floats at src, or NULL without src. */
static rt_status copy_floats(float **dst, const float *src, size_t n, const char *what)
{
    if (!src)
        return RT_OK;
    RT_CHECK(rt_alloc(dst, n ? n : 1, sizeof(float), what));
    memcpy(*dst, src, n * sizeof(float));
    return RT_OK;
}

/* The thread's first act: the deferred copy, then the caller may update. */
static rt_status take_deferred_copy(rt_ckpt_async *w)
{
    rt_status st = RT_OK;
    if (w->live_params) {
        st = copy_floats(&w->copy.params, w->live_params, w->num_params,
                         "snapshot of the parameters");
        if (st == RT_OK)
            st = copy_floats(&w->copy.optim, w->live_optim, w->num_optim,
                             "snapshot of the optimizer state");
    }
    pthread_mutex_lock(&w->lock);
    w->copied = 1;
    pthread_cond_broadcast(&w->copied_cv);
    pthread_mutex_unlock(&w->lock);
    return st;
}

/* Step 4 (rank 0's thread). */
static void *write_job(void *arg)
{
    rt_ckpt_async *w = arg;
    const rt_ckpt_policy *policy = w->has_policy ? &w->policy : NULL;
    int deadline = ckpt_deadline_arm(policy, &w->state, 0, w->final_dir);
    rt_status st = take_deferred_copy(w);
    if (st == RT_OK)
        st = ckpt_prepare_dirs(w->run_dir, w->tmp_dir, w->final_dir,
                               ckpt_state_bytes(&w->state));
    ckpt_fault_point("ckpt_before_write", 0);
    int64_t file_bytes = 0;
    uint64_t file_sum = 0;
    if (st == RT_OK)
        st = ckpt_write_file(NULL, w->file, &w->state, &w->copy, w->world, w->metrics,
                             w->num_metrics, &file_bytes, &file_sum);
    if (st == RT_OK)
        st = ckpt_seal_dir(w->tmp_dir, w->file, file_bytes, file_sum, &w->state, w->world,
                           w->metrics, w->num_metrics);
    if (st != RT_OK) {
        if (rt_fs_remove_tree(w->tmp_dir) != RT_OK)
            rt_error_trace(__FILE__, __LINE__, "temporary checkpoint directory not removed");
    } else {
        ckpt_fault_point("ckpt_before_commit", 0);
        st = ckpt_commit(w->run_dir, w->tmp_dir, w->final_dir, policy);
    }
    w->status = st;
    snprintf(w->message, sizeof w->message, "%s", st == RT_OK ? "" : rt_error_message());
    rt_error_clear();
    ckpt_host_slabs_free(&w->copy);
    rt_deadline_disarm(deadline);
    return NULL;
}

rt_status rt_ckpt_async_wait(rt_ckpt_async *w)
{
    rt_status st = RT_OK;
    if (w && w->in_flight) {
        pthread_join(w->thread, NULL);
        w->in_flight = 0;
        if (w->status != RT_OK)   /* the thread's message, raised in this thread */
            st = RT_ERROR(w->status, "%s", w->message);
    }
    return w ? ckpt_agree(w->comm, st) : RT_OK;
}

/* What step 3 copies before returning: everything from a GPU; from host
 * memory the buffers and the step count, leaving the parameters and the
 * optimizer state to the thread. */
static rt_status snapshot_now(rt_ckpt_async *w, const rt_train_state *s)
{
    ckpt_host_slabs live;
    w->live_params = w->live_optim = NULL;
    w->copied = 0;
    RT_CHECK(ckpt_host_slabs_get(&live, s, RT_CKPT_LOAD_MODEL | RT_CKPT_LOAD_OPTIMIZER, 1));
    if (live.copied) {   /* downloaded: the copies are ours */
        w->copy = live;
        return RT_OK;
    }
    w->copy = (ckpt_host_slabs){.copied = 1, .optim_step = live.optim_step};
    w->live_params = live.params;
    w->live_optim = live.optim;
    w->num_params = rt_model_num_params(s->model);
    w->num_optim = s->optim ? w->num_params * (size_t)rt_optim_state_slots(s->optim) : 0;
    return copy_floats(&w->copy.buffers, live.buffers, rt_model_num_buffers(s->model),
                       "snapshot of the buffers");
}

void rt_ckpt_async_before_update(rt_ckpt_async *w)
{
    if (!w || !w->in_flight)
        return;
    pthread_mutex_lock(&w->lock);
    while (!w->copied)
        pthread_cond_wait(&w->copied_cv, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

/* Step 3 (rank 0): the job, with copies of everything the caller may
 * change or free once rt_ckpt_save_async returns. */
static rt_status stage_job(rt_ckpt_async *w, const rt_train_state *s,
                           const rt_ckpt_metric *metrics, int num_metrics,
                           const rt_ckpt_policy *policy)
{
    w->state = *s;
    w->num_metrics = num_metrics;
    for (int i = 0; i < num_metrics; i++) {
        snprintf(w->names[i], sizeof w->names[i], "%s", metrics[i].name);
        w->metrics[i] = (rt_ckpt_metric){w->names[i], metrics[i].value};
    }
    w->has_policy = policy != NULL;
    if (policy) {
        w->policy = *policy;
        if (policy->score_attribute) {
            snprintf(w->score_attribute, sizeof w->score_attribute, "%s",
                     policy->score_attribute);
            w->policy.score_attribute = w->score_attribute;
        }
    }
    RT_CHECK(snapshot_now(w, s));
    if (pthread_create(&w->thread, NULL, write_job, w) != 0) {
        ckpt_host_slabs_free(&w->copy);
        return RT_ERROR(RT_ERR_NOMEM, "cannot start the checkpoint writer thread");
    }
    w->in_flight = 1;
    return RT_OK;
}

rt_status rt_ckpt_save_async(rt_ckpt_async *w, const char *run_dir, const rt_train_state *s,
                             const rt_ckpt_metric *metrics, int num_metrics,
                             const rt_ckpt_policy *policy, char *committed_dir,
                             size_t committed_dir_size)
{
    RT_CHECK(rt_ckpt_async_wait(w));   /* step 1 */
    RT_CHECK(ckpt_check_save_args(run_dir, s, metrics, num_metrics, policy));
    int64_t next;
    RT_CHECK(rt_ckpt_next_index(w->comm, run_dir, &next));   /* step 2 */
    long long idx = (long long)next;
    RT_CHECK(rt_fs_path(w->run_dir, sizeof w->run_dir, "%s", run_dir));
    RT_CHECK(rt_fs_path(w->tmp_dir, sizeof w->tmp_dir, "%s/" CKPT_TMP_PREFIX "%06lld", run_dir,
                        idx));
    RT_CHECK(rt_fs_path(w->final_dir, sizeof w->final_dir, "%s/" CKPT_DIR_PREFIX "%06lld",
                        run_dir, idx));
    RT_CHECK(rt_fs_path(w->file, sizeof w->file, "%s/%s", w->tmp_dir, CKPT_FILE_NAME));
    RT_CHECK(ckpt_agree(w->comm, w->rank == 0 ? stage_job(w, s, metrics, num_metrics, policy)
                                              : RT_OK));   /* step 3, then 4 runs */
    if (committed_dir && committed_dir_size)
        snprintf(committed_dir, committed_dir_size, "%s", w->final_dir);
    return RT_OK;
}

void rt_ckpt_async_free(rt_ckpt_async *w)
{
    if (!w)
        return;
    if (w->in_flight)   /* the caller did not wait: finish the write, drop its outcome */
        pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->copied_cv);
    rt_free(w);
}
