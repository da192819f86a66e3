/* Data-parallel gradient averaging with buckets (see rtrain/comm.h).
 *
 * Protocol per optimizer step, identical on every rank:
 *   rt_ddp_begin_backward -> model backward; after each top-level layer the
 *   hook starts, in order, every bucket whose slice is now final ->
 *   rt_ddp_finish starts the remaining buckets (same order) and waits.
 * Buckets are numbered from the end of the slab; starting them strictly in
 * that order on every rank keeps the non-blocking collectives matched. */
#include <stdlib.h>
#include "rtrain/comm.h"

typedef struct bucket {
    size_t begin, end;    /* slice [begin, end) of the gradient slab */
    MPI_Request request;
} bucket;

struct rt_ddp {
    MPI_Comm comm;
    rt_model *model;
    int world_size;
    bucket *buckets;      /* buckets[0] ends at the slab's end */
    int count;
    int next;             /* next bucket to start */
    int sync;
    double timeout_s;     /* 0: wait forever */
    rt_status error;      /* first failure inside the hook */
    MPI_Request *pending; /* scratch for waiting on all buckets */
};

static rt_status start_bucket(rt_ddp *d, bucket *b)
{
    float *grads = rt_model_grads(d->model);
    int n = (int)(b->end - b->begin);
    if (MPI_Iallreduce(MPI_IN_PLACE, grads + b->begin, n, MPI_FLOAT, MPI_SUM, d->comm,
                       &b->request) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "MPI_Iallreduce of a %d-float gradient bucket failed", n);
    return RT_OK;
}

/* After layer `layer`'s backward, gradients from its first parameter to the
 * end of the slab are final: start every bucket lying inside that range. */
static void on_layer_done(void *arg, int layer)
{
    rt_ddp *d = arg;
    if (!d->sync || d->error != RT_OK)
        return;
    size_t final_from = rt_model_layer_param_offset(d->model, layer);
    while (d->next < d->count && d->buckets[d->next].begin >= final_from) {
        d->error = start_bucket(d, &d->buckets[d->next]);
        d->next++;
        if (d->error != RT_OK)
            return;
    }
    /* Let MPI progress the collectives already started. */
    for (int i = 0; i < d->next; i++) {
        int done;
        MPI_Test(&d->buckets[i].request, &done, MPI_STATUS_IGNORE);
    }
}

/* Cuts the slab at layer boundaries, from the last layer backwards, into
 * slices of at least bucket_floats (a larger slice when a layer needs it;
 * MPI counts must also fit an int). */
static rt_status plan_buckets(rt_ddp *d, size_t bucket_floats)
{
    rt_model *m = d->model;
    int layers = rt_model_num_layers(m);
    size_t end = rt_model_num_params(m);
    RT_CHECK(rt_alloc(&d->buckets, (size_t)layers + 1, sizeof(bucket), "gradient buckets"));
    RT_CHECK(rt_alloc(&d->pending, (size_t)layers + 1, sizeof(MPI_Request), "bucket requests"));
    for (int i = layers - 1; i >= 0; i--) {
        size_t begin = rt_model_layer_param_offset(m, i);
        int last = i == 0;
        if (end > begin && (end - begin >= bucket_floats || last)) {
            if (end - begin > (size_t)1 << 30)
                return RT_ERROR(RT_ERR_UNSUPPORTED, "layer %d has more than 2^30 gradient "
                                "values in one bucket", i);
            d->buckets[d->count++] = (bucket){begin, end, MPI_REQUEST_NULL};
            end = begin;
        }
    }
    return RT_OK;
}

rt_status rt_ddp_create(rt_ddp **out, MPI_Comm comm, rt_model *m, size_t bucket_bytes)
{
    *out = NULL;
    rt_ddp *d = calloc(1, sizeof *d);
    if (!d)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory creating DDP state");
    d->comm = comm;
    d->model = m;
    d->sync = 1;
    MPI_Comm_size(comm, &d->world_size);
    size_t floats = bucket_bytes / sizeof(float);
    rt_status st = plan_buckets(d, floats ? floats : 1);
    if (st != RT_OK) {
        rt_ddp_free(d);
        return st;
    }
    if (d->world_size > 1)
        rt_model_set_backward_hook(m, on_layer_done, d);
    *out = d;
    return RT_OK;
}

void rt_ddp_free(rt_ddp *d)
{
    if (!d)
        return;
    rt_model_set_backward_hook(d->model, NULL, NULL);
    rt_free(d->buckets);
    rt_free(d->pending);
    free(d);
}

int rt_ddp_num_buckets(const rt_ddp *d) { return d->count; }
void rt_ddp_set_timeout(rt_ddp *d, double timeout_s) { d->timeout_s = timeout_s; }

void rt_ddp_begin_backward(rt_ddp *d, int sync)
{
    d->next = 0;
    d->sync = sync;
    d->error = RT_OK;
}

rt_status rt_ddp_finish(rt_ddp *d)
{
    if (d->world_size == 1 || !d->sync)
        return RT_OK;
    rt_status st = d->error;
    while (st == RT_OK && d->next < d->count)
        st = start_bucket(d, &d->buckets[d->next++]);
    /* Wait for every started bucket even after a failure, so that no
     * request is left pending on this rank (except on a timeout, after
     * which the job is aborted). */
    for (int i = 0; i < d->next; i++)
        d->pending[i] = d->buckets[i].request;
    rt_status waited = rt_comm_wait_all(d->pending, d->next, d->timeout_s);
    for (int i = 0; i < d->next; i++)
        d->buckets[i].request = d->pending[i];
    return st != RT_OK ? st : waited;
}
