/* The loader: walks the global batches of an epoch in the global order and
 * gathers this rank's part of each into a batch buffer, optionally on a
 * background thread that keeps up to `prefetch` batches ready.
 *
 * Buffers: prefetch + 1 slots, allocated once at create (the consumer holds
 * one slot, the batch last returned, while the thread fills the others);
 * nothing is allocated per batch. Batch k of the epoch lives in slot
 * (k - first) % nslots; at most nslots batches are in flight (held, ready
 * or being filled), so two live batches never share a slot.
 *
 * Protocol between the caller and the thread (all under mu):
 *   - the thread claims batch `filled` when the epoch is started and a slot
 *     is free, fills it WITHOUT the lock (reading perm and the dataset), then
 *     publishes it by incrementing `filled`, unless the generation changed;
 *   - rt_loader_next releases the held slot, waits until filled > taken and
 *     takes batch `taken`;
 *   - rt_loader_start_epoch bumps the generation (the thread's fill checks
 *     it after every sample and gives up), waits until no fill is running,
 *     then rewrites perm and the counters: that is what makes restarting
 *     mid-epoch safe.
 * A fill error is stored in the slot with its message (error records are
 * thread-local) and re-raised in the caller's thread by rt_loader_next; the
 * thread stops producing until the next start_epoch. All functions are
 * called from one thread (the training loop); none is collective. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "rtrain/data.h"
#include "data/formats.h"

#define LOADER_MAX_PREFETCH 64

typedef struct loader_slot {
    float *x;          /* [max_local][sample_size] */
    char *target;      /* [max_local][target_bytes] */
    int n;
    int64_t global_n, index, first;
    rt_status status;  /* fill failure, re-raised by rt_loader_next */
    char error[1024];  /* its message, carried across threads */
} loader_slot;

struct rt_loader {
    rt_dataset *ds;             /* not owned */
    rt_loader_opts o;
    int64_t count, batches;
    size_t sample_size, target_bytes;
    int max_local;
    int int_targets;            /* class or sequence targets: batches have y */
    uint32_t *perm;             /* [count] order of the current epoch */
    loader_slot *slots;
    int nslots;
    float *x_slab;              /* [nslots][max_local][sample_size] */
    char *target_slab;          /* [nslots][max_local][target_bytes] */
    /* augmentation (o.augment): the sample shape, pad value per channel, and
     * one sample of scratch (only one fill runs at a time) */
    int augment;
    const int64_t *shape;
    float pad[RT_MAX_CHANNELS];
    float *scratch;
    uint32_t *block_scratch;    /* the block shuffle's (o.shuffle_block), or NULL */

    pthread_mutex_t mu;
    pthread_cond_t cv_work;     /* thread waits: epoch started, slot freed, quit */
    pthread_cond_t cv_done;     /* caller waits: batch published, fill finished */
    pthread_t thread;
    int has_thread;
    _Atomic uint64_t gen;       /* bumped by start_epoch and free: cancels a fill */
    int started, quit, filling, stopped, held;
    int64_t epoch, first, filled, taken;
};

static loader_slot *slot_of(rt_loader *l, int64_t k)
{
    return &l->slots[(k - l->first) % l->nslots];
}

/* Fills slot with this rank's part of global batch k. gen: the generation
 * the fill belongs to; a change means start_epoch or free wants it stopped.
 * The next sample's stored row is asked for while this one is fetched
 * (rt_dataset_prefetch, formats.h); reading further ahead measured the same. */
static rt_status loader_fill(rt_loader *l, int64_t k, loader_slot *s, uint64_t gen)
{
    int64_t g0 = k * l->o.global_batch;
    int64_t gn = l->count - g0 < l->o.global_batch ? l->count - g0 : l->o.global_batch;
    int64_t b, e;
    rt_loader_split(&l->o, gn, &b, &e);
    if (b < e)
        rt_dataset_prefetch(l->ds, l->perm[g0 + b]);
    for (int64_t i = b; i < e; i++) {
        if (atomic_load_explicit(&l->gen, memory_order_relaxed) != gen)
            return RT_OK;   /* cancelled: the slot is discarded */
        if (i + 1 < e)
            rt_dataset_prefetch(l->ds, l->perm[g0 + i + 1]);
        float *x = s->x + (size_t)(i - b) * l->sample_size;
        RT_CHECK(rt_dataset_fetch(l->ds, l->perm[g0 + i], x,
                                  s->target + (size_t)(i - b) * l->target_bytes));
        /* l->epoch is stable here: start_epoch waits for a running fill. */
        if (l->augment)
            rt_augment_apply(&l->o.augment, x, l->scratch, l->shape, l->pad, l->o.seed,
                             l->epoch, l->perm[g0 + i]);
    }
    s->n = (int)(e - b);
    s->global_n = gn;
    s->index = k;
    s->first = g0 + b;
    return RT_OK;
}

static int thread_may_fill(const rt_loader *l)
{
    int64_t in_flight = l->filled - l->taken + l->held;
    return l->started && !l->stopped && l->filled < l->batches && in_flight < l->nslots;
}

static void *loader_thread(void *arg)
{
    rt_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->quit && !thread_may_fill(l))
            pthread_cond_wait(&l->cv_work, &l->mu);
        if (l->quit)
            break;
        int64_t k = l->filled;
        loader_slot *s = slot_of(l, k);
        uint64_t gen = atomic_load(&l->gen);
        l->filling = 1;
        pthread_mutex_unlock(&l->mu);

        s->status = loader_fill(l, k, s, gen);
        if (s->status != RT_OK) {
            snprintf(s->error, sizeof s->error, "%s", rt_error_message());
            rt_error_clear();
        }

        pthread_mutex_lock(&l->mu);
        l->filling = 0;
        /* A cancelled fill is never published; start_epoch also waits for
         * it to end so that perm is not rewritten while it reads. */
        if (atomic_load(&l->gen) == gen) {
            l->filled++;
            l->stopped = s->status != RT_OK;
        }
        pthread_cond_broadcast(&l->cv_done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* The thread must not take the process's signals (SIGINT/SIGTERM handling
 * belongs to the training loop), so it starts with all of them blocked. */
static rt_status loader_start_thread(rt_loader *l)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&l->thread, NULL, loader_thread, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        return RT_ERROR(RT_ERR_NOMEM, "cannot start the data loader thread: %s; set "
                        "data.prefetch = 0 to load synchronously", strerror(err));
    l->has_thread = 1;
    return RT_OK;
}

static rt_status loader_check_opts(const rt_dataset *ds, const rt_loader_opts *o)
{
    int64_t n = rt_dataset_count(ds);
    if (o->world_size < 1 || o->rank < 0 || o->rank >= o->world_size)
        return RT_ERROR(RT_ERR_INVALID_ARG, "loader: rank %d is not in a world of %d ranks",
                        o->rank, o->world_size);
    if (o->global_batch < 1)
        return RT_ERROR(RT_ERR_CONFIG, "loader: global batch size must be >= 1 (got %lld); "
                        "fix data.batch_size / data.global_batch_size", (long long)o->global_batch);
    if (o->prefetch < 0 || o->prefetch > LOADER_MAX_PREFETCH)
        return RT_ERROR(RT_ERR_CONFIG, "loader: prefetch must be 0 to %d (got %d); fix "
                        "data.prefetch", LOADER_MAX_PREFETCH, o->prefetch);
    if (n < 1)
        return RT_ERROR(RT_ERR_INVALID_ARG, "loader: the dataset has no samples");
    if (o->shuffle_block < 0)
        return RT_ERROR(RT_ERR_CONFIG, "loader: data.shuffle_block must be >= 0 (got %lld)",
                        (long long)o->shuffle_block);
    if (o->rank_block < 0 || (o->rank_block > 0 &&
                              o->global_batch != o->rank_block * o->world_size))
        return RT_ERROR(RT_ERR_INVALID_ARG, "loader: rank_block %lld needs a global batch of "
                        "rank_block x %d ranks (got %lld)", (long long)o->rank_block,
                        o->world_size, (long long)o->global_batch);
    if ((uint64_t)n > UINT32_MAX)   /* the order is a uint32_t permutation */
        return RT_ERROR(RT_ERR_UNSUPPORTED, "loader: dataset of %lld samples; the loader "
                        "handles at most %u", (long long)n, UINT32_MAX);
    if (o->drop_last && o->global_batch > n)
        return RT_ERROR(RT_ERR_CONFIG, "loader: global batch of %lld with drop_last leaves no "
                        "batch of a %lld-sample dataset; lower the batch size or unset "
                        "data.drop_last", (long long)o->global_batch, (long long)n);
    return RT_OK;
}

static rt_status loader_alloc(rt_loader *l)
{
    size_t per_x = (size_t)l->max_local * l->sample_size;
    RT_CHECK(rt_alloc(&l->perm, (size_t)l->count, sizeof *l->perm, "loader sample order"));
    RT_CHECK(rt_alloc(&l->slots, (size_t)l->nslots, sizeof *l->slots, "loader slots"));
    if (per_x > SIZE_MAX / (size_t)l->nslots)
        return RT_ERROR(RT_ERR_NOMEM, "loader batch buffers overflow (%d slots of %zu floats)",
                        l->nslots, per_x);
    RT_CHECK(rt_alloc(&l->x_slab, per_x * l->nslots, sizeof(float), "loader batch buffers"));
    size_t per_target = (size_t)l->max_local * l->target_bytes;
    RT_CHECK(rt_alloc(&l->target_slab, per_target, (size_t)l->nslots, "loader target buffers"));
    for (int i = 0; i < l->nslots; i++) {
        l->slots[i].x = l->x_slab + per_x * i;
        l->slots[i].target = l->target_slab + per_target * i;
    }
    if (l->augment)
        RT_CHECK(rt_alloc(&l->scratch, l->sample_size, sizeof(float), "augmentation scratch"));
    if (l->o.shuffle && l->o.shuffle_block > 0)
        RT_CHECK(rt_alloc(&l->block_scratch,
                          rt_sample_order_blocks_scratch(l->count, l->o.shuffle_block),
                          sizeof(uint32_t), "block shuffle"));
    return RT_OK;
}

rt_status rt_loader_create(rt_loader **out, rt_dataset *ds, const rt_loader_opts *o)
{
    *out = NULL;
    RT_CHECK(loader_check_opts(ds, o));
    RT_CHECK(rt_augment_check(&o->augment, rt_dataset_desc(ds)));
    rt_loader *l;
    RT_CHECK(rt_alloc(&l, 1, sizeof *l, "loader"));
    l->ds = ds;
    l->o = *o;
    l->count = rt_dataset_count(ds);
    l->batches = o->drop_last ? l->count / o->global_batch
                              : (l->count + o->global_batch - 1) / o->global_batch;
    int64_t largest = o->global_batch < l->count ? o->global_batch : l->count;
    l->max_local = (int)((largest + o->world_size - 1) / o->world_size);
    if (o->rank_block > 0)
        l->max_local = (int)(o->rank_block < l->count ? o->rank_block : l->count);
    const rt_sample_desc *desc = rt_dataset_desc(ds);
    l->sample_size = rt_sample_input_size(desc);
    l->target_bytes = rt_sample_target_bytes(desc);
    l->int_targets = desc->target != RT_TARGET_VECTOR;
    l->augment = o->augment.crop_padding > 0 || o->augment.hflip;
    l->shape = desc->shape;
    for (int c = 0; l->augment && c < desc->shape[0] && c < RT_MAX_CHANNELS; c++)
        l->pad[c] = rt_transform_zero(rt_dataset_transforms(ds), c);
    /* A dataset that must not be read from two threads is fetched on the
     * caller's thread: no prefetching. */
    if (!(rt_dataset_flags(ds) & RT_DATASET_THREAD_SAFE))
        l->o.prefetch = 0;
    l->nslots = l->o.prefetch + 1;
    atomic_init(&l->gen, 0);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    rt_status s;
    RT_CHECK_GOTO(s, loader_alloc(l), fail);
    if (l->o.prefetch > 0)
        RT_CHECK_GOTO(s, loader_start_thread(l), fail);
    *out = l;
    return RT_OK;
fail:
    rt_loader_free(l);
    return s;
}

void rt_loader_free(rt_loader *l)
{
    if (!l)
        return;
    if (l->has_thread) {
        pthread_mutex_lock(&l->mu);
        l->quit = 1;
        atomic_fetch_add(&l->gen, 1);
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    pthread_cond_destroy(&l->cv_done);
    pthread_cond_destroy(&l->cv_work);
    pthread_mutex_destroy(&l->mu);
    rt_free(l->x_slab);
    rt_free(l->target_slab);
    rt_free(l->slots);
    rt_free(l->perm);
    rt_free(l->scratch);
    rt_free(l->block_scratch);
    rt_free(l);
}

int64_t rt_loader_batches_per_epoch(const rt_loader *l) { return l->batches; }
int rt_loader_max_local_batch(const rt_loader *l) { return l->max_local; }

rt_status rt_loader_start_epoch(rt_loader *l, int64_t epoch, int64_t first_batch)
{
    if (epoch < 0 || first_batch < 0 || first_batch > l->batches)
        return RT_ERROR(RT_ERR_INVALID_ARG, "loader: cannot start epoch %lld at batch %lld "
                        "(an epoch has %lld batches)", (long long)epoch,
                        (long long)first_batch, (long long)l->batches);
    pthread_mutex_lock(&l->mu);
    atomic_fetch_add(&l->gen, 1);
    l->started = 0;
    while (l->filling)   /* the fill sees the new generation and returns */
        pthread_cond_wait(&l->cv_done, &l->mu);
    if (l->block_scratch)
        rt_sample_order_blocks(l->perm, l->count, l->o.shuffle_block, l->o.seed, epoch,
                               l->block_scratch);
    else
        rt_sample_order(l->perm, l->count, l->o.seed, epoch, l->o.shuffle);
    l->epoch = epoch;
    l->first = l->filled = l->taken = first_batch;
    l->held = l->stopped = 0;
    l->started = 1;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    return RT_OK;
}

static void batch_from_slot(const rt_loader *l, rt_batch *b, const loader_slot *s)
{
    b->x = s->x;
    b->target = s->target;
    b->y = l->int_targets ? (const int32_t *)(const void *)s->target : NULL;
    b->n = s->n;
    b->global_n = s->global_n;
    b->index = s->index;
    b->first = s->first;
}

/* prefetch 0: the caller's thread fills the only slot. */
static rt_status loader_next_sync(rt_loader *l, rt_batch *b)
{
    loader_slot *s = &l->slots[0];
    RT_CHECK(loader_fill(l, l->taken, s, atomic_load(&l->gen)));
    l->taken++;
    batch_from_slot(l, b, s);
    return RT_OK;
}

static rt_status loader_next_async(rt_loader *l, rt_batch *b)
{
    pthread_mutex_lock(&l->mu);
    if (l->held) {
        l->held = 0;
        pthread_cond_broadcast(&l->cv_work);
    }
    while (l->filled <= l->taken)
        pthread_cond_wait(&l->cv_done, &l->mu);
    loader_slot *s = slot_of(l, l->taken);
    if (s->status == RT_OK) {
        l->taken++;
        l->held = 1;
        batch_from_slot(l, b, s);
    }
    rt_status st = s->status;
    pthread_mutex_unlock(&l->mu);
    /* The slot stays failed (and the thread stopped) until start_epoch, so
     * asking again reports the same error. */
    if (st != RT_OK)
        return RT_ERROR(st, "%s", s->error);
    return RT_OK;
}

rt_status rt_loader_next(rt_loader *l, rt_batch *b, int *done)
{
    *done = 0;
    if (!l->started)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_loader_next called before "
                        "rt_loader_start_epoch");
    if (l->taken >= l->batches) {
        *done = 1;
        return RT_OK;
    }
    if (l->has_thread)
        RT_CHECK(loader_next_async(l, b));
    else
        RT_CHECK(loader_next_sync(l, b));
    return RT_OK;
}
