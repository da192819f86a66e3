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
 *      window's stores become visible to all (node_agree: a barrier in the
 *      window, and an MPI agreement only when a rank failed).
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
 * rounding (still the same from run to run).
 *
 * The split forward. With deferred weight gradients and a core for every
 * rank's threads, the ranks also share the forward of the wide linear
 * layers (out >= SPLIT_MIN_ROWS per rank), as the threads of one process
 * do: rank r computes its block of rows (the rows it updates) for the
 * samples of every rank, instead of every rank multiplying its own samples
 * by the whole weight matrix. Why: at 32 samples per rank the forward
 * streams each matrix through every core; split, each core streams the half
 * it has just updated. The trainer brackets every training forward with
 * trainer_node_forward_begin and _end, on every rank; in between, the
 * model's linear layers call split_forward (rt_model_set_linear_forward),
 * which for a split layer
 *   1. copies this rank's input x[n][in] into the team area (rows
 *      [r * max_batch, r * max_batch + n) of the layer's x of all ranks),
 *      publishes n, and waits until every rank has (a barrier);
 *   2. multiplies the samples of all ranks, up to the last rank's with any,
 *      by its block of rows of w (one product: a rank with fewer than
 *      max_batch samples leaves rows that are computed and never read),
 *      into its own block of the layer's y;
 *   3. waits until every rank has (a barrier), and gathers its samples'
 *      outputs from every rank's block.
 * The deferred update then reads each rank's x of a split layer from the
 * team area, and the backward copies only dy there.
 *
 * The barriers are spin-waits on one cache line per rank in the window,
 * not MPI calls (run.profile's MPI step agreement takes 6-12 us per step
 * here, a split layer's forward 100-140): each rank stores its position (this forward's number and the
 * barrier's) with release order and waits until every rank's is at least
 * as far, yielding its core after a while (more ranks than cores). A rank
 * without samples in a batch still computes its rows for the others
 * (_end runs the split layers its forward did not). A rank whose step
 * fails before or inside the forward marks the forward failed and moves
 * its position to the forward's end, so nobody waits on it; a rank that
 * sees the mark stops its forward and reports success, because the failing
 * rank's own message reaches every rank at the step's agreement that
 * follows. Stores of one forward and reads of the next are ordered by the
 * step's agreements between them.
 *
 * Bits: each output is the backend's product over the same inputs. On
 * oneDNN a block of rows over more samples gives the bits of the whole
 * product of each rank's samples when a rank has at least 16 or so
 * samples; for a handful (oneDNN's kernels for very small products) they
 * differ by rounding. RTRAIN_NODE_FORWARD=own keeps each rank's forward to
 * itself, =split asks for the split also with more ranks than cores. */
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "trainer.h"

#define SLICE_ALIGN 16       /* floats: one 64-byte cache line */
#define BLOCK_ALIGN 1024     /* floats: each rank's slabs start on a 4 KiB page */
#define CHUNK_FLOATS 8192    /* 32 KiB per slab: the chunk's slabs stay in L1/L2 */
#define SUM_BLOCK 256
#define SPLIT_MIN_ROWS 64    /* rows per rank: a narrower block makes sgemm inefficient */
#define SPIN_CHECKS 4000     /* checks of a line before a waiting rank yields its core */

/* A linear layer whose weight gradients are deferred, and where its dy and
 * x lie in each rank's exchange area. */
typedef struct node_linear {
    int layer;              /* top-level index in the model */
    rt_linear_layout at;
    size_t x_off, dy_off;   /* floats into the exchange area: x[max_batch][in], then
                             * dy as one [max_batch][rows] block per owning rank, the
                             * block of rows [r0, r1) starting at max_batch * r0 */
    /* The split forward (split 1): floats into the team area of the x of
     * every rank, [ranks * max_batch][in] (the exchange holds no x then),
     * and of the outputs, one [ranks * max_batch][rows] block per owning
     * rank, the block of rows [r0, r1) at ty_off + ranks * max_batch * r0. */
    int split;
    size_t tx_off, ty_off;
} node_linear;

/* One rank's cache line for the barriers of the split forward and of the
 * step (below). */
typedef struct team_line {
    uint64_t pos;      /* the last forward barrier it reached: forward * phases + barrier */
    uint64_t failed;   /* the number of a forward it abandoned */
    uint64_t agreed;   /* the step agreements it reached */
    uint64_t refused;  /* the number of the last one it reached with a failure */
    int32_t n;         /* its samples in this forward */
} team_line;

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
    /* The split forward (num_split > 0) */
    int num_split;
    size_t team;           /* floats into the window where the team area starts */
    uint64_t forward;      /* this rank's count of training forwards, from 1 */
    int phase;             /* barriers passed in this forward */
    int next_split;        /* the next split layer this forward reaches */
    int in_forward;        /* between _begin and _end */
    int peer_failed;       /* a barrier found another rank's failure mark */
    uint64_t agreements;   /* this rank's step agreements so far */
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
/* After rank r's gradients: its batch size in the first cache line, its
 * team line in the second, then (deferral) its exchange area, the layers'
 * dy and x. */
static int *exchange_count_of(const trainer_node *nd, int r)
{
    return (int *)(block_of(nd, r) + nd->stride);
}
static team_line *team_line_of(const trainer_node *nd, int r)
{
    return (team_line *)(block_of(nd, r) + nd->stride + SLICE_ALIGN);
}
static float *exchange_of(const trainer_node *nd, int r)
{
    return block_of(nd, r) + nd->stride + 2 * SLICE_ALIGN;
}
/* After every rank's block: the split forward's x and y of every layer. */
static float *team_of(const trainer_node *nd)
{
    return nd->base + nd->stride + nd->state + (size_t)nd->ranks * nd->block;
}
/* Rank s's input to layer l in the last forward. */
static const float *x_of(const trainer_node *nd, const node_linear *l, int s)
{
    if (l->split)
        return team_of(nd) + l->tx_off + (size_t)s * nd->max_batch * l->at.in;
    return exchange_of(nd, s) + l->x_off;
}

/* The rows (output features) of a layer of `out` that rank r owns. */
static void rows_of(const trainer_node *nd, int out, int r, int *r0, int *r1)
{
    *r0 = (int)((long long)out * r / nd->ranks);
    *r1 = (int)((long long)out * (r + 1) / nd->ranks);
}

/* Top-level layer `layer`'s entry, or NULL. */
static const node_linear *linear_of(const trainer_node *nd, int layer)
{
    for (int i = 0; i < nd->num_linear; i++)
        if (nd->linear[i].layer == layer)
            return &nd->linear[i];
    return NULL;
}

/* Deferral pays when the exchange (dy and x of max_batch samples) is
 * smaller than the gradients it replaces, and needs every parameter in a
 * linear layer. Fills nd->linear (none: no deferral); plan_exchange then
 * places the layers in the exchange area. */
static rt_status plan_deferral(trainer_node *nd, const rt_model *planned)
{
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
    for (int i = 0; i < layers; i++)
        if (rt_model_linear_layout(planned, i, &at))
            nd->linear[nd->num_linear++] = (node_linear){.layer = i, .at = at};
    nd->max_batch = (int)mb;
    return RT_OK;
}

/* Each deferred layer's place in the exchange area: its x (unless the
 * split forward leaves it in the team area), then its dy. Returns the
 * area's floats. */
static size_t plan_exchange(trainer_node *nd)
{
    size_t off = 0, mb = (size_t)nd->max_batch;
    for (int i = 0; i < nd->num_linear; i++) {
        node_linear *l = &nd->linear[i];
        l->x_off = off;
        if (!l->split)
            off += round_up(mb * (size_t)l->at.in, SLICE_ALIGN);
        l->dy_off = off;
        off += round_up(mb * (size_t)l->at.out, SLICE_ALIGN);
    }
    return off;
}

/* With deferral: the split forward of the layers at least SPLIT_MIN_ROWS
 * rows wide per rank. Returns the team area's floats (0: no split). */
static size_t plan_split(trainer_node *nd, int ranks)
{
    size_t team = 0, samples = (size_t)ranks * (size_t)nd->max_batch;
    for (int i = 0; i < nd->num_linear; i++) {
        node_linear *l = &nd->linear[i];
        if (l->at.out < ranks * SPLIT_MIN_ROWS)
            continue;
        l->split = 1;
        l->tx_off = team;
        team += round_up(samples * (size_t)l->at.in, SLICE_ALIGN);
        l->ty_off = team;
        team += round_up(samples * (size_t)l->at.out, SLICE_ALIGN);
        nd->num_split++;
    }
    return team;
}

float *trainer_node_params(trainer_node *nd) { return params_of(nd); }
float *trainer_node_grads(trainer_node *nd) { return grads_of(nd, nd->rank); }
float *trainer_node_state(trainer_node *nd) { return nd->slots ? state_of(nd) : NULL; }

rt_status trainer_node_open(trainer_node **out, rt_comm *comm, rt_status local,
                            const rt_model *planned, int slots, int may_defer, int may_split)
{
    *out = NULL;
    trainer_node *nd = calloc(1, sizeof *nd);
    if (!nd && local == RT_OK)
        local = RT_ERROR(RT_ERR_NOMEM, "out of memory for the node update");
    int ranks = rt_comm_size(comm);
    size_t num_params = planned ? rt_model_num_params(planned) : 0, exchange = 0, team = 0;
    if (nd && planned && may_defer && local == RT_OK)
        local = plan_deferral(nd, planned);
    if (nd && may_split && local == RT_OK)
        team = round_up(plan_split(nd, ranks), BLOCK_ALIGN);
    if (nd && local == RT_OK)
        exchange = plan_exchange(nd);
    size_t stride = round_up(num_params ? num_params : 1, BLOCK_ALIGN);
    size_t state = round_up((size_t)(slots > 0 ? slots : 0) * num_params + 1, BLOCK_ALIGN);
    size_t block = stride + round_up(2 * SLICE_ALIGN + exchange, BLOCK_ALIGN);
    if (local == RT_OK &&
        block > (SIZE_MAX / sizeof(float) - stride - state - team) / (size_t)ranks)
        local = RT_ERROR(RT_ERR_NOMEM, "the node update's window of %d x %zu floats is too "
                         "large", ranks, block);
    void *base = NULL;
    int writer = 0;
    rt_comm_shared *window = NULL;
    rt_status st = rt_comm_shared_alloc(comm, local,
                                        (stride + state + (size_t)ranks * block + team) *
                                        sizeof(float), &window, &base, &writer);
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
    if (writer) {
        memset(params_of(nd), 0, (stride + state) * sizeof(float));
        memset(team_of(nd), 0, team * sizeof(float));
    }
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
    const node_linear *l = linear_of(nd, layer);
    if (!l)   /* every linear layer is in the table (plan_deferral) */
        return;
    *exchange_count_of(nd, nd->rank) = n;
    float *ex = exchange_of(nd, nd->rank);
    if (!l->split)   /* else the forward left it in the team area */
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

/* ---- the split forward ----------------------------------------------------------------- */

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spins until a rank's *counter reaches target (acquire order: what that
 * rank stored before it is then visible). After SPIN_CHECKS it yields the
 * core between checks (more ranks than cores). The barriers are not MPI
 * calls, so rt_comm_wait's watchdog does not see them: a wait longer than
 * the communicator's timeout (failure.step_timeout_s) ends here in the
 * watchdog's liveness round, which names the ranks that do not respond. */
static void wait_for(trainer_node *nd, const uint64_t *counter, uint64_t target,
                     const char *what)
{
    double deadline = 0.0;
    for (long spins = 0; __atomic_load_n(counter, __ATOMIC_ACQUIRE) < target; spins++) {
        if (spins < SPIN_CHECKS) {
            cpu_relax();
            continue;
        }
        sched_yield();
        double timeout = rt_comm_timeout(nd->comm);
        if (timeout <= 0.0)
            continue;
        if (deadline == 0.0)
            deadline = rt_time_now() + timeout;
        else if (rt_time_now() > deadline)
            rt_comm_abort_unresponsive(nd->comm, what);
    }
}

/* Waits until every rank has passed this rank's next barrier of the
 * forward. Fails (and notes peer_failed) when a rank marked the forward
 * failed. */
static rt_status team_barrier(trainer_node *nd)
{
    uint64_t target = nd->forward * (uint64_t)(2 * nd->num_split) + (uint64_t)++nd->phase;
    __atomic_store_n(&team_line_of(nd, nd->rank)->pos, target, __ATOMIC_RELEASE);
    for (int s = 0; s < nd->ranks; s++) {
        team_line *line = team_line_of(nd, s);
        wait_for(nd, &line->pos, target, "the node update's split forward");
        if (__atomic_load_n(&line->failed, __ATOMIC_RELAXED) == nd->forward) {
            nd->peer_failed = 1;
            return RT_ERROR(RT_ERR_INTERNAL, "rank %d of the node stopped during the split "
                            "forward", s);
        }
    }
    return RT_OK;
}

/* This rank will not reach the rest of the forward's barriers: mark the
 * forward failed and move to its end, so that nobody waits on it. */
static void team_abandon(trainer_node *nd)
{
    team_line *mine = team_line_of(nd, nd->rank);
    __atomic_store_n(&mine->failed, nd->forward, __ATOMIC_RELAXED);
    __atomic_store_n(&mine->pos, (nd->forward + 1) * (uint64_t)(2 * nd->num_split),
                     __ATOMIC_RELEASE);
}

/* Steps 1-3 of the split forward (above) for split layer l; y and x NULL
 * with n 0 for a rank without samples. */
static rt_status split_layer(trainer_node *nd, const node_linear *l, float *y, const float *x,
                             const float *w, const float *b, int n)
{
    int in = l->at.in, out = l->at.out, mb = nd->max_batch;
    float *team_x = team_of(nd) + l->tx_off;
    if (n > 0)
        memcpy(team_x + (size_t)nd->rank * mb * in, x, (size_t)n * in * sizeof(float));
    team_line_of(nd, nd->rank)->n = n;
    RT_CHECK(team_barrier(nd));
    int samples = 0;   /* rows of team_x up to the last rank's last sample */
    for (int s = 0; s < nd->ranks; s++) {
        int count = team_line_of(nd, s)->n;
        if (count > 0)
            samples = s * mb + count;
    }
    int r0, r1;
    rows_of(nd, out, nd->rank, &r0, &r1);
    float *mine = team_of(nd) + l->ty_off + (size_t)nd->ranks * mb * r0;
    if (samples > 0 && r1 > r0)
        RT_CHECK(nd->be->linear_forward(mine, team_x, w + (size_t)r0 * in, b ? b + r0 : NULL,
                                        samples, in, r1 - r0));
    RT_CHECK(team_barrier(nd));
    for (int q = 0; q < nd->ranks; q++) {
        rows_of(nd, out, q, &r0, &r1);
        size_t rows = (size_t)(r1 - r0);
        const float *block = team_of(nd) + l->ty_off + (size_t)nd->ranks * mb * r0 +
                             (size_t)nd->rank * mb * rows;
        for (int i = 0; i < n; i++)
            memcpy(y + (size_t)i * out + r0, block + (size_t)i * rows, rows * sizeof(float));
    }
    nd->next_split++;
    return RT_OK;
}

/* The i-th split layer in forward order. */
static const node_linear *split_at(const trainer_node *nd, int i)
{
    for (int k = 0; k < nd->num_linear; k++)
        if (nd->linear[k].split && i-- == 0)
            return &nd->linear[k];
    return NULL;
}

/* The model's linear forward (rt_model_set_linear_forward): split inside
 * a training forward, the backend's own elsewhere (evaluation). */
static rt_status split_forward(void *arg, int layer, float *y, const float *x, const float *w,
                               const float *b, int n, int in, int out)
{
    trainer_node *nd = arg;
    const node_linear *l = linear_of(nd, layer);
    if (!nd->in_forward || !l || !l->split)
        return nd->be->linear_forward(y, x, w, b, n, in, out);
    if (l != split_at(nd, nd->next_split))
        return RT_ERROR(RT_ERR_INTERNAL, "the split forward reached linear layer %d out of "
                        "order", layer);
    return split_layer(nd, l, y, x, w, b, n);
}

int trainer_node_splits_forward(const trainer_node *nd) { return nd && nd->num_split > 0; }

void trainer_node_forward_begin(trainer_node *nd)
{
    if (!trainer_node_splits_forward(nd))
        return;
    nd->forward++;
    nd->phase = 0;
    nd->next_split = 0;
    nd->peer_failed = 0;
    nd->in_forward = 1;
}

rt_status trainer_node_forward_end(trainer_node *nd, rt_status local)
{
    if (!trainer_node_splits_forward(nd))
        return local;
    /* A rank without samples (its forward did not run) computes its rows
     * for the others. The parameters are the shared ones. */
    const float *params = params_of(nd);
    while (local == RT_OK && nd->next_split < nd->num_split) {
        const node_linear *l = split_at(nd, nd->next_split);
        local = split_layer(nd, l, NULL, NULL, params + l->at.weight,
                            l->at.has_bias ? params + l->at.bias : NULL, 0);
    }
    nd->in_forward = 0;
    if (local == RT_OK)
        return RT_OK;
    team_abandon(nd);
    if (nd->peer_failed) {   /* the failing rank's message comes at the agreement */
        rt_error_clear();
        return RT_OK;
    }
    return local;
}

rt_status trainer_node_attach(trainer_node *nd, rt_model *m)
{
    nd->be = rt_model_backend(m);
    if (!trainer_node_defers(nd))
        return RT_OK;
    RT_CHECK(rt_model_defer_linear_grads(m, save_linear, nd));
    if (!trainer_node_splits_forward(nd))
        return RT_OK;
    return rt_model_set_linear_forward(m, split_forward, nd);
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
                                                 x_of(nd, l, s), NULL, n, l->at.in, (int)rows));
        }
        RT_CHECK(rt_optim_step_range(o, params, grads, lr, l->at.weight + (size_t)r0 * in,
                                     l->at.weight + (size_t)r1 * in));
        if (db)
            RT_CHECK(rt_optim_step_range(o, params, grads, lr, l->at.bias + r0,
                                         l->at.bias + r1));
    }
    return RT_OK;
}

/* The step's agreement (steps 1 and 3): every rank has arrived, and
 * whether any failed. A barrier on the team lines, as the split forward's:
 * each rank notes its failure (the agreement's number in `refused`), then
 * its arrival (release order), and waits for every rank's. When a rank
 * failed, every rank has seen it, and all of them then agree through MPI
 * (rt_comm_shared_agree), which brings every rank the failing rank's
 * message. A rank that refused agreement k is inside that MPI agreement
 * until every rank has read its mark, so it cannot overwrite it early.
 * Why not MPI every time: two MPI agreements per step took 15-19 us of
 * the MLP's step (timed at 781f470); a barrier here is a few cache-line
 * transfers when no rank is late. */
static rt_status node_agree(trainer_node *nd, rt_status local)
{
    uint64_t k = ++nd->agreements;
    team_line *mine = team_line_of(nd, nd->rank);
    if (local != RT_OK)
        __atomic_store_n(&mine->refused, k, __ATOMIC_RELAXED);
    __atomic_store_n(&mine->agreed, k, __ATOMIC_RELEASE);
    int any = local != RT_OK;
    for (int s = 0; s < nd->ranks; s++) {
        team_line *line = team_line_of(nd, s);
        wait_for(nd, &line->agreed, k, "the node update's agreement");
        any |= __atomic_load_n(&line->refused, __ATOMIC_RELAXED) == k;
    }
    if (!any)
        return RT_OK;
    return rt_comm_shared_agree(nd->comm, nd->window, local);
}

rt_status trainer_node_step(trainer_node *nd, rt_optimizer *o, float lr, rt_status local)
{
    RT_CHECK(node_agree(nd, local));
    rt_status st = nd->num_linear ? update_rows(nd, o, lr) : update_slice(nd, o, lr);
    RT_CHECK(node_agree(nd, st));
    /* Every rank has read the exchange: a rank without samples in the next
     * step (no backward) must not offer these again. */
    if (nd->num_linear)
        *exchange_count_of(nd, nd->rank) = 0;
    rt_optim_count_step(o);
    return RT_OK;
}
