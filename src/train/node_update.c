/* The node update: data-parallel steps of ranks that all share one node,
 * through node-shared memory instead of a gradient all-reduce.
 *
 * Why. With one thread per rank and no core to spare, an all-reduce of the
 * gradients costs each rank copies in and out of MPI's buffers, and then
 * every rank runs the whole optimizer step on its own copy, so the ranks of
 * a node do the same update N times. Here the gradients are read where the
 * backward left them, and each rank updates one slice of the model for all.
 *
 * Memory. One node-shared window holds the parameters and the optimizer
 * state once, for every rank of the node (placed there with
 * rt_model_create_in and rt_optim_create_in), and each rank's own gradient
 * slab. Outside the step below nobody writes the shared part, except while
 * the trainer is set up: every rank then writes the same values there (its
 * initial parameters, the broadcast from rank 0, a resumed checkpoint),
 * before the agreement that ends that stage, so the bytes never change
 * under a reader.
 *
 * The step, on every rank (collective over the communicator):
 *   1. Agree: every rank's backward has finished, and whether any failed
 *      (then nobody updates, and every rank returns the failure); the
 *      window's stores become visible to all (rt_comm_shared_agree).
 *   2. Rank r owns the slice [begin_r, end_r) of the slabs (cut at
 *      multiples of 16 floats, a cache line). Chunk by chunk, it sums every
 *      rank's gradients there in rank order into its own gradient slab and
 *      runs the optimizer on that chunk of the shared parameters and state
 *      (rt_optim_step_range: the same per-element arithmetic as a whole
 *      step). Chunks keep the sums and the update in the core's caches.
 *   3. Agree on the outcome and make the stores visible again: the shared
 *      parameters now hold what an all-reduce followed by a whole step
 *      gives.
 * The optimizer's step count then advances on every rank.
 *
 * Bits: for two ranks the sum is the all-reduce's (a + b = b + a); beyond
 * two the order is the rank order, fixed, so runs repeat bit for bit, but it
 * is not MPI's order. Other ranks' gradient slabs are left unsummed: nothing
 * reads gradients between the step and the next zero_grad.
 *
 * Deferred weight gradients. When every parameter belongs to a linear
 * layer (an MLP), the batch is small and there is one backward per step,
 * the ranks exchange activations instead of gradients: for a batch of n
 * samples a layer's dy[n][out] and x[n][in] are far smaller than its
 * gradient [out][in] (at 32 samples, 784 -> 512: 41 thousand floats
 * against 401 thousand). Each rank's backward then computes input
 * gradients only and copies dy and x into its exchange area in the window
 * (rt_model_defer_linear_grads; dy already cut into one block of columns
 * per owning rank). In step 2, rank r owns a block of rows (output
 * features) of every linear layer; it zeroes its rows' gradients, adds
 * each rank's dW = dy^T x and db = sum dy for those rows in rank order
 * (backend->linear_backward, dx NULL) and runs the optimizer on them. So
 * each core writes half of each weight gradient, as with two threads in
 * one process, and no gradient crosses between cores. The bits are those
 * of the summing path (each rank's contribution to an element is the same
 * product, added in rank order onto zero) where the backend's product
 * gives a block of rows the bits of the same rows of the whole: oneDNN's
 * sgemm and the naive backend do (test_kernels checks it). OpenBLAS's
 * kernels for small products depend on the product's size, so with
 * RTRAIN_CPU_GEMM=openblas the bits differ from the all-reduce's by
 * rounding (still the same from run to run). */
#include <stdlib.h>
#include <string.h>
#include "trainer.h"

#define SLICE_ALIGN 16       /* floats: one 64-byte cache line */
#define BLOCK_ALIGN 1024     /* floats: each rank's slabs start on a 4 KiB page */
#define CHUNK_FLOATS 8192    /* 32 KiB per slab: the chunk's slabs stay in L1/L2 */
#define SUM_BLOCK 256

/* A linear layer whose weight gradients are deferred, and where its dy and
 * x lie in each rank's exchange area. */
typedef struct node_linear {
    int layer;              /* top-level index in the model */
    rt_linear_layout at;
    size_t x_off, dy_off;   /* floats into the exchange area: x[max_batch][in], then
                             * dy as one [max_batch][rows] block per owning rank, the
                             * block of rows [r0, r1) starting at max_batch * r0 */
} node_linear;

struct trainer_node {
    rt_comm *comm;
    rt_comm_shared *window;
    float *base;
    size_t n;          /* parameters */
    size_t stride;     /* floats of one slab (n, rounded up) */
    size_t state;      /* floats of the optimizer state (rounded up) */
    size_t block;      /* floats per rank: its gradients and exchange area */
    int slots;         /* optimizer state arrays */
    int ranks, rank;
    /* Deferred weight gradients (num_linear > 0) */
    node_linear *linear;
    int num_linear, max_batch;
    const rt_backend *be;
};

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

/* The window: the parameters and the optimizer state once, then each
 * rank's block: its gradient slab and its exchange area. */
static float *params_of(const trainer_node *nd) { return nd->base; }
static float *state_of(const trainer_node *nd) { return nd->base + nd->stride; }
static float *block_of(const trainer_node *nd, int r)
{
    return nd->base + nd->stride + nd->state + (size_t)r * nd->block;
}
static float *grads_of(const trainer_node *nd, int r) { return block_of(nd, r); }
/* Rank r's exchange area: its batch size in the first cache line, then
 * the layers' dy and x. */
static int *exchange_count_of(const trainer_node *nd, int r)
{
    return (int *)(block_of(nd, r) + nd->stride);
}
static float *exchange_of(const trainer_node *nd, int r)
{
    return block_of(nd, r) + nd->stride + SLICE_ALIGN;
}

/* The rows (output features) of a layer of `out` that rank r owns. */
static void rows_of(const trainer_node *nd, int out, int r, int *r0, int *r1)
{
    *r0 = (int)((long long)out * r / nd->ranks);
    *r1 = (int)((long long)out * (r + 1) / nd->ranks);
}

/* Deferral pays when the exchange (dy and x of max_batch samples) is
 * smaller than the gradients it replaces, and needs every parameter in a
 * linear layer. Fills nd->linear and returns the exchange's floats (0: no
 * deferral). */
static rt_status plan_deferral(trainer_node *nd, const rt_model *planned, size_t *floats)
{
    *floats = 0;
    int layers = rt_model_num_layers(planned), count = 0;
    size_t covered = 0, exchange = 0, mb = (size_t)rt_model_max_batch(planned);
    rt_linear_layout at;
    for (int i = 0; i < layers; i++)
        if (rt_model_linear_layout(planned, i, &at)) {
            count++;
            covered += (size_t)at.in * at.out + (at.has_bias ? (size_t)at.out : 0);
            exchange += round_up(mb * (size_t)at.in, SLICE_ALIGN) +
                        round_up(mb * (size_t)at.out, SLICE_ALIGN);
        }
    if (count == 0 || covered != rt_model_num_params(planned) || exchange >= covered)
        return RT_OK;
    RT_CHECK(rt_alloc(&nd->linear, (size_t)count, sizeof *nd->linear, "node update layers"));
    size_t off = 0;
    for (int i = 0; i < layers; i++)
        if (rt_model_linear_layout(planned, i, &at)) {
            node_linear *l = &nd->linear[nd->num_linear++];
            *l = (node_linear){.layer = i, .at = at, .x_off = off};
            off += round_up(mb * (size_t)at.in, SLICE_ALIGN);
            l->dy_off = off;
            off += round_up(mb * (size_t)at.out, SLICE_ALIGN);
        }
    nd->max_batch = (int)mb;
    *floats = SLICE_ALIGN + off;
    return RT_OK;
}

float *trainer_node_params(trainer_node *nd) { return params_of(nd); }
float *trainer_node_grads(trainer_node *nd) { return grads_of(nd, nd->rank); }
float *trainer_node_state(trainer_node *nd) { return nd->slots ? state_of(nd) : NULL; }

rt_status trainer_node_open(trainer_node **out, rt_comm *comm, rt_status local,
                            const rt_model *planned, int slots, int may_defer)
{
    *out = NULL;
    trainer_node *nd = calloc(1, sizeof *nd);
    if (!nd && local == RT_OK)
        local = RT_ERROR(RT_ERR_NOMEM, "out of memory for the node update");
    size_t num_params = planned ? rt_model_num_params(planned) : 0, exchange = 0;
    if (nd && planned && may_defer && local == RT_OK)
        local = plan_deferral(nd, planned, &exchange);
    size_t stride = round_up(num_params ? num_params : 1, BLOCK_ALIGN);
    size_t state = round_up((size_t)(slots > 0 ? slots : 0) * num_params + 1, BLOCK_ALIGN);
    size_t block = stride + round_up(exchange, BLOCK_ALIGN);
    int ranks = rt_comm_size(comm);
    if (local == RT_OK && block > (SIZE_MAX / sizeof(float) - stride - state) / (size_t)ranks)
        local = RT_ERROR(RT_ERR_NOMEM, "the node update's window of %d x %zu floats is too "
                         "large", ranks, block);
    void *base = NULL;
    int writer = 0;
    rt_comm_shared *window = NULL;
    rt_status st = rt_comm_shared_alloc(comm, local,
                                        (stride + state + (size_t)ranks * block) * sizeof(float),
                                        &window, &base, &writer);
    if (st != RT_OK) {
        if (nd)
            rt_free(nd->linear);
        free(nd);
        return st;
    }
    nd->comm = comm;
    nd->window = window;
    nd->base = base;
    nd->n = num_params;
    nd->stride = stride;
    nd->state = state;
    nd->block = block;
    nd->slots = slots;
    nd->ranks = ranks;
    nd->rank = rt_comm_rank(comm);
    /* Each rank clears its own block, which also places its pages near the
     * core that uses them; the node's first rank the shared part (the
     * optimizer's state starts at zero). */
    if (writer)
        memset(params_of(nd), 0, (stride + state) * sizeof(float));
    memset(block_of(nd, nd->rank), 0, block * sizeof(float));
    st = rt_comm_shared_ready(comm, window, RT_OK);
    if (st != RT_OK) {
        trainer_node_free(nd);
        return st;
    }
    *out = nd;
    return RT_OK;
}

void trainer_node_free(trainer_node *nd)
{
    if (!nd)
        return;
    rt_comm_shared_free(nd->window);
    rt_free(nd->linear);
    free(nd);
}

int trainer_node_defers(const trainer_node *nd) { return nd && nd->num_linear > 0; }

/* The model's backward (rt_model_defer_linear_grads): this rank's n, x,
 * and dy cut into the owners' column blocks, into its exchange area. */
static void save_linear(void *arg, int layer, const float *dy, const float *x, int n)
{
    trainer_node *nd = arg;
    const node_linear *l = NULL;
    for (int i = 0; i < nd->num_linear && !l; i++)
        if (nd->linear[i].layer == layer)
            l = &nd->linear[i];
    if (!l)   /* every linear layer is in the table (plan_deferral) */
        return;
    *exchange_count_of(nd, nd->rank) = n;
    float *ex = exchange_of(nd, nd->rank);
    memcpy(ex + l->x_off, x, (size_t)n * l->at.in * sizeof(float));
    for (int q = 0; q < nd->ranks; q++) {
        int r0, r1;
        rows_of(nd, l->at.out, q, &r0, &r1);
        size_t rows = (size_t)(r1 - r0);
        float *dst = ex + l->dy_off + (size_t)nd->max_batch * r0;
        for (int i = 0; i < n; i++)
            memcpy(dst + (size_t)i * rows, dy + (size_t)i * l->at.out + r0, rows * sizeof(float));
    }
}

rt_status trainer_node_attach(trainer_node *nd, rt_model *m)
{
    nd->be = rt_model_backend(m);
    if (!trainer_node_defers(nd))
        return RT_OK;
    return rt_model_defer_linear_grads(m, save_linear, nd);
}

/* Rank r's slice of the slabs. */
static void slice_of(const trainer_node *nd, int r, size_t *begin, size_t *end)
{
    size_t per = round_up((nd->n + (size_t)nd->ranks - 1) / (size_t)nd->ranks, SLICE_ALIGN);
    *begin = (size_t)r * per < nd->n ? (size_t)r * per : nd->n;
    *end = *begin + per < nd->n ? *begin + per : nd->n;
}

/* This rank's gradients over [lo, hi) become the sum of every rank's, added
 * in rank order. In place: each element is read from every slab before it
 * is written. */
static void sum_gradients(const trainer_node *nd, size_t lo, size_t hi)
{
    float *dst = grads_of(nd, nd->rank);
    /* Two ranks, the common case, in one pass: 40 us per step of the 2 x 1
     * MLP here, against 97 us for the blocked loop below. */
    if (nd->ranks == 2) {
        const float *a = grads_of(nd, 0), *b = grads_of(nd, 1);
        for (size_t i = lo; i < hi; i++)
            dst[i] = a[i] + b[i];
        return;
    }
    float acc[SUM_BLOCK];
    for (size_t b = lo; b < hi; b += SUM_BLOCK) {
        size_t len = hi - b < SUM_BLOCK ? hi - b : SUM_BLOCK;
        const float *first = grads_of(nd, 0) + b;
        for (size_t j = 0; j < len; j++)
            acc[j] = first[j];
        for (int r = 1; r < nd->ranks; r++) {
            const float *g = grads_of(nd, r) + b;
            for (size_t j = 0; j < len; j++)
                acc[j] += g[j];
        }
        memcpy(dst + b, acc, len * sizeof(float));
    }
}

static rt_status update_slice(trainer_node *nd, rt_optimizer *o, float lr)
{
    size_t begin, end;
    slice_of(nd, nd->rank, &begin, &end);
    float *params = params_of(nd), *grads = grads_of(nd, nd->rank);
    for (size_t lo = begin; lo < end; lo += CHUNK_FLOATS) {
        size_t hi = end - lo < CHUNK_FLOATS ? end : lo + CHUNK_FLOATS;
        sum_gradients(nd, lo, hi);
        RT_CHECK(rt_optim_step_range(o, params, grads, lr, lo, hi));
    }
    return RT_OK;
}

/* Deferred weight gradients: this rank's rows of every linear layer,
 * formed from every rank's dy and x, and updated. */
static rt_status update_rows(trainer_node *nd, rt_optimizer *o, float lr)
{
    float *params = params_of(nd), *grads = grads_of(nd, nd->rank);
    for (int i = 0; i < nd->num_linear; i++) {
        const node_linear *l = &nd->linear[i];
        int r0, r1;
        rows_of(nd, l->at.out, nd->rank, &r0, &r1);
        if (r1 <= r0)
            continue;
        size_t in = (size_t)l->at.in, rows = (size_t)(r1 - r0);
        float *dw = grads + l->at.weight + (size_t)r0 * in;
        float *db = l->at.has_bias ? grads + l->at.bias + r0 : NULL;
        memset(dw, 0, rows * in * sizeof(float));
        if (db)
            memset(db, 0, rows * sizeof(float));
        for (int s = 0; s < nd->ranks; s++) {
            int n = *exchange_count_of(nd, s);
            const float *ex = exchange_of(nd, s);
            if (n > 0)
                RT_CHECK(nd->be->linear_backward(NULL, dw, db,
                                                 ex + l->dy_off + (size_t)nd->max_batch * r0,
                                                 ex + l->x_off, NULL, n, l->at.in, (int)rows));
        }
        RT_CHECK(rt_optim_step_range(o, params, grads, lr, l->at.weight + (size_t)r0 * in,
                                     l->at.weight + (size_t)r1 * in));
        if (db)
            RT_CHECK(rt_optim_step_range(o, params, grads, lr, l->at.bias + r0,
                                         l->at.bias + r1));
    }
    return RT_OK;
}

rt_status trainer_node_step(trainer_node *nd, rt_optimizer *o, float lr, rt_status local)
{
    RT_CHECK(rt_comm_shared_agree(nd->comm, nd->window, local));
    rt_status st = nd->num_linear ? update_rows(nd, o, lr) : update_slice(nd, o, lr);
    RT_CHECK(rt_comm_shared_agree(nd->comm, nd->window, st));
    /* Every rank has read the exchange: a rank without samples in the next
     * step (no backward) must not offer these again. */
    if (nd->num_linear)
        *exchange_count_of(nd, nd->rank) = 0;
    rt_optim_count_step(o);
    return RT_OK;
}
