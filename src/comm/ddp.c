/* Data-parallel gradient averaging with buckets (see rtrain/comm.h).
 *
 * Protocol per optimizer step, identical on every rank:
 *   rt_ddp_begin_backward -> model backward; after each top-level layer the
 *   hook starts, in order, every bucket whose slice is now final ->
 *   rt_ddp_finish starts the remaining buckets (same order) and waits.
 * Buckets are numbered from the end of the slab; starting them strictly in
 * that order on every rank keeps the non-blocking collectives matched. A
 * backward that fails part-way on one rank still reaches rt_ddp_finish,
 * which starts every bucket that rank had not: the collectives stay
 * matched and the caller agrees on the failure afterwards.
 *
 * Staging (an MPI communicator and gradients in GPU memory): each bucket
 * is copied to a host copy of the slab when it starts (the copy waits for
 * the layers it covers), reduced there, and the whole slab goes back to
 * the device once every bucket has completed. */
#include <stdlib.h>
#include "comm/comm_internal.h"
#include "core/fault.h"

typedef struct bucket {
    size_t begin, end;    /* slice [begin, end) of the gradient slab */
} bucket;

struct rt_ddp {
    rt_comm *comm;
    rt_model *model;
    bucket *buckets;      /* buckets[0] ends at the slab's end */
    rt_comm_req *reqs;    /* [count]: one all-reduce per bucket */
    int count;
    int next;             /* next bucket to start */
    int sync;
    float *host_grads;    /* [num_params] host copy when staging, else NULL */
};

/* The other ranks start this bucket's all-reduce whatever happens here, so
 * a failure to start it cannot be returned: it ends the job. */
static void start_bucket(rt_ddp *d, int i)
{
    bucket *b = &d->buckets[i];
    float *grads = rt_model_grads(d->model);
    rt_status st = RT_OK;
    if (d->host_grads) {
        st = rt_model_backend(d->model)->download(d->host_grads + b->begin, grads + b->begin,
                                                  (b->end - b->begin) * sizeof(float));
        grads = d->host_grads;
    }
    if (st == RT_OK)
        st = rt_comm_iallreduce(d->comm, grads + b->begin, b->end - b->begin,
                                RT_DTYPE_FLOAT32, RT_REDUCE_SUM, &d->reqs[i]);
    if (st == RT_OK && i == 0 && rt_fault_arg("ddp_bucket_fail", rt_comm_rank(d->comm), -1))
        st = RT_ERROR(RT_ERR_MPI, "injected (RTRAIN_FAULT, test only)");
    if (st != RT_OK)
        rt_comm_abort(d->comm, "cannot start the all-reduce of gradient bucket %d (%zu "
                      "values): %s", i, b->end - b->begin, rt_error_message());
}

/* After layer `layer`'s backward, gradients from its first parameter to the
 * end of the slab are final: start every bucket lying inside that range. */
static void on_layer_done(void *arg, int layer)
{
    rt_ddp *d = arg;
    if (!d->sync)
        return;
    size_t final_from = rt_model_layer_param_offset(d->model, layer);
    while (d->next < d->count && d->buckets[d->next].begin >= final_from)
        start_bucket(d, d->next++);
    /* Let the communicator progress the collectives already started. */
    rt_comm_progress(d->comm, d->reqs, d->next);
}

/* Cuts the slab at layer boundaries, from the last layer backwards, into
 * slices of at least bucket_floats (a larger slice when a layer needs it;
 * one non-blocking all-reduce takes at most 2^30 values). */
static rt_status plan_buckets(rt_ddp *d, size_t bucket_floats)
{
    rt_model *m = d->model;
    int layers = rt_model_num_layers(m);
    size_t end = rt_model_num_params(m);
    RT_CHECK(rt_alloc(&d->buckets, (size_t)layers + 1, sizeof(bucket), "gradient buckets"));
    RT_CHECK(rt_alloc(&d->reqs, (size_t)layers + 1, sizeof(rt_comm_req), "bucket requests"));
    for (int i = layers - 1; i >= 0; i--) {
        size_t begin = rt_model_layer_param_offset(m, i);
        int last = i == 0;
        if (end > begin && (end - begin >= bucket_floats || last)) {
            if (end - begin > (size_t)1 << 30)
                return RT_ERROR(RT_ERR_UNSUPPORTED, "layer %d has more than 2^30 gradient "
                                "values in one bucket", i);
            d->buckets[d->count++] = (bucket){begin, end};
            end = begin;
        }
    }
    return RT_OK;
}

rt_status rt_ddp_create(rt_ddp **out, rt_comm *comm, rt_model *m, size_t bucket_bytes)
{
    *out = NULL;
    RT_CHECK(rt_comm_check_model_memory(comm, m));
    rt_ddp *d = calloc(1, sizeof *d);
    if (!d)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory creating DDP state");
    d->comm = comm;
    d->model = m;
    d->sync = 1;
    size_t floats = bucket_bytes / sizeof(float);
    rt_status st = plan_buckets(d, floats ? floats : 1);
    if (st == RT_OK && rt_comm_size(comm) > 1 && rt_comm_stages_tensors(comm, rt_model_backend(m)))
        st = rt_alloc(&d->host_grads, rt_model_num_params(m) ? rt_model_num_params(m) : 1,
                      sizeof(float), "host copy of the gradients");
    if (st != RT_OK) {
        rt_ddp_free(d);
        return st;
    }
    if (rt_comm_size(comm) > 1)
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
    rt_free(d->reqs);
    rt_free(d->host_grads);
    free(d);
}

int rt_ddp_num_buckets(const rt_ddp *d) { return d->count; }

void rt_ddp_begin_backward(rt_ddp *d, int sync)
{
    d->next = 0;
    d->sync = sync;
}

rt_status rt_ddp_finish(rt_ddp *d)
{
    if (rt_comm_size(d->comm) == 1 || !d->sync)
        return RT_OK;
    while (d->next < d->count)
        start_bucket(d, d->next++);
    RT_CHECK(rt_comm_wait(d->comm, d->reqs, d->count, "the gradient all-reduce"));
    if (!d->host_grads)
        return RT_OK;
    return rt_model_backend(d->model)->upload(rt_model_grads(d->model), d->host_grads,
                                              rt_model_num_params(d->model) * sizeof(float));
}
