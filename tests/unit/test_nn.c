/* Unit tests for nn: every layer type's backward against central finite
 * differences of L = sum(out * r) (r fixed random weights), BatchNorm's
 * running statistics and synchronised mode, BasicBlock against the same
 * computation assembled from plain layers, dropout masks, losses, the
 * ResNet18 / MLP structure and names, initialisation, config errors, and
 * per-layer timing (rt_layer_times: every layer once, the same bits).
 *
 * Finite differences: the model runs in float32 and L is summed in double.
 * With a step h, float rounding of the outputs puts an absolute error of
 * about (rounding of L) / (2h) on the quotient; layers linear in the
 * perturbed value have no truncation error and BatchNorm's h^2 term is
 * ~1e-4 relative. Measured with h = 1e-2, every single-layer case agrees to
 * 2e-5 + 1e-4 |fd|; the default tolerance 5e-4 + 2e-3 |fd| leaves a factor
 * of ~10 and still catches a 1% error in BatchNorm's input-gradient
 * correction. Models with interior ReLUs (BasicBlock, small networks) use
 * h = 1e-3 so that crossing a kink is unlikely; rounding noise then
 * reaches ~5e-4 (measured), so they allow 3e-3 + 2e-2 |fd|. Inputs of
 * top-level ReLU and max-pooling layers are kept further than h from their
 * kinks (and from ties), where a difference quotient is not a derivative. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "rtrain/nn.h"
#include "thread_comm.h"

typedef struct fd_tol { double h, atol, rtol; } fd_tol;
static const fd_tol default_tol = {1e-2, 5e-4, 2e-3};

/* The backend the models are built on (the gradient checks run on every
 * backend of the build: see main). */
static const rt_backend *be;

static const rt_nn_ctx train_ctx = {.train = 1, .rng_key = 12345};
static const rt_nn_ctx eval_ctx = {.train = 0};

/* ---- helpers --------------------------------------------------------------- */
static void fill_uniform(float *x, size_t count, uint64_t key, float lo, float hi)
{
    rt_rng rng;
    rt_rng_init(&rng, key);
    for (size_t i = 0; i < count; i++)
        x[i] = lo + (hi - lo) * rt_rng_uniform(&rng);
}

/* Values with |x| in [0.1, 1]: at least 10 steps h away from ReLU's kink. */
static void fill_away_from_zero(float *x, size_t count, uint64_t key)
{
    fill_uniform(x, count, key, 0.1f, 1.0f);
    rt_rng rng;
    rt_rng_init(&rng, key + 1);
    for (size_t i = 0; i < count; i++)
        if (rt_rng_u32(&rng) & 1)
            x[i] = -x[i];
}

/* Distinct values 0.05 apart in random order: max-pool windows never tie
 * within a step h = 1e-2. */
static void fill_distinct(float *x, size_t count, uint64_t key)
{
    uint32_t *perm = malloc(count * sizeof *perm);
    rt_rng_permutation(key, perm, (uint32_t)count);
    for (size_t i = 0; i < count; i++)
        x[i] = 0.05f * ((float)perm[i] - (float)count / 2);
    free(perm);
}

static rt_layer_spec spec_of(rt_layer_type type)
{
    rt_layer_spec s;
    rt_layer_spec_default(&s, type);
    return s;
}

static rt_layer_spec conv(int out, int kernel, int stride, int padding, int bias)
{
    rt_layer_spec s = spec_of(RT_LAYER_CONV2D);
    s.out = out;
    s.kernel = kernel;
    s.stride = stride;
    s.padding = padding;
    s.bias = bias;
    return s;
}

/* rt_model_forward's output, or NULL when it failed (the caller checks). */
static const float *fwd(rt_model *m, const rt_nn_ctx *ctx, const float *x, int n)
{
    const float *out = NULL;
    if (rt_model_forward(m, ctx, x, n, &out) != RT_OK) {
        fprintf(stderr, "forward failed: %s\n", rt_error_message());
        rt_error_clear();
        return NULL;
    }
    return out;
}

/* The losses of the backend under test, returning the sum as the tests
 * use it. */
static double cross_entropy(float *dz, const float *z, const int32_t *labels, int n, int classes,
                            float scale)
{
    double sum = 0.0;
    CHECK_OK(be->cross_entropy(&sum, dz, z, labels, n, classes, scale));
    return sum;
}

static double nll_loss(float *dz, const float *z, const int32_t *labels, int n, int classes,
                       float scale)
{
    double sum = 0.0;
    CHECK_OK(be->nll_loss(&sum, dz, z, labels, n, classes, scale));
    return sum;
}

static int64_t count_correct(const float *z, const int32_t *labels, int n, int classes)
{
    int64_t correct = -1;
    CHECK_OK(be->count_correct(&correct, z, labels, n, classes));
    return correct;
}

static rt_model *make_seq(const rt_layer_spec *specs, int count, rt_shape in, int max_batch,
                          uint64_t seed)
{
    rt_model_spec ms;
    rt_model_spec_default(&ms, RT_ARCH_SEQUENTIAL);
    memcpy(ms.layers, specs, (size_t)count * sizeof *specs);
    ms.num_layers = count;
    rt_model *m = NULL;
    CHECK_OK(rt_model_create(&m, be, &ms, in, max_batch, seed));
    return m;
}

static double weighted_sum(rt_model *m, const rt_nn_ctx *ctx, const float *x, int n,
                           const float *r)
{
    const float *out = fwd(m, ctx, x, n);
    size_t count = (size_t)n * rt_shape_size(rt_model_output_shape(m));
    double s = 0;
    for (size_t i = 0; i < count; i++)
        s += (double)out[i] * r[i];
    return s;
}

/* Central difference of L in the value *v (a parameter or an input). */
static double diff_at(rt_model *m, const rt_nn_ctx *ctx, const float *x, int n,
                      const float *r, float *v, double h)
{
    float saved = *v;
    float up = (float)(saved + h), down = (float)(saved - h);
    *v = up;
    double lp = weighted_sum(m, ctx, x, n, r);
    *v = down;
    double lm = weighted_sum(m, ctx, x, n, r);
    *v = saved;
    return (lp - lm) / ((double)up - (double)down);
}

/* Compares up to ~limit entries of analytic against finite differences of
 * the values at vals; returns how many were off. */
static int compare_entries(const char *what, const char *kind, rt_model *m,
                           const rt_nn_ctx *ctx, float *x, int n, const float *r,
                           float *vals, const float *analytic, size_t count, fd_tol tol)
{
    size_t step = count > 300 ? count / 300 : 1;
    int bad = 0;
    for (size_t j = 0; j < count; j += step) {
        double fd = diff_at(m, ctx, x, n, r, &vals[j], tol.h);
        if (!(fabs(analytic[j] - fd) <= tol.atol + tol.rtol * fabs(fd))) {
            if (bad < 5)
                fprintf(stderr, "%s: %s gradient [%zu] = %.6g, finite difference %.6g\n",
                        what, kind, j, (double)analytic[j], fd);
            bad++;
        }
    }
    return bad;
}

/* Checks rt_model_backward's parameter gradients and, for one-layer models,
 * the layer's input gradient (the model never asks layer 0 for it, so the
 * test calls the layer's backward itself, right after the model's). */
static void check_grads(const char *what, rt_model *m, const rt_nn_ctx *ctx, const float *x0,
                        int n, fd_tol tol)
{
    size_t nin = (size_t)n * rt_shape_size(rt_model_input_shape(m));
    size_t nout = (size_t)n * rt_shape_size(rt_model_output_shape(m));
    size_t np = rt_model_num_params(m);
    float *x = malloc(nin * sizeof *x), *dx = malloc(nin * sizeof *dx);
    float *r = malloc(nout * sizeof *r), *g = malloc((np + 1) * sizeof *g);
    memcpy(x, x0, nin * sizeof *x);
    fill_uniform(r, nout, 99, -1.0f, 1.0f);

    CHECK_OK(rt_model_zero_grad(m));
    const float *out = fwd(m, ctx, x, n);
    CHECK(out != NULL);
    CHECK_OK(rt_model_backward(m, ctx, r, n));
    memcpy(g, rt_model_grads(m), np * sizeof *g);
    int single = rt_model_num_layers(m) == 1;
    if (single) {
        rt_layer *l = rt_model_layer(m, 0);
        CHECK_OK(l->ops->backward(l, ctx, dx, r, x, out, n));
    }
    int bad = compare_entries(what, "parameter", m, ctx, x, n, r, rt_model_params(m), g, np,
                              tol);
    CHECK_MSG(bad == 0, "%s: %d parameter gradients differ from finite differences", what, bad);
    if (single) {
        bad = compare_entries(what, "input", m, ctx, x, n, r, x, dx, nin, tol);
        CHECK_MSG(bad == 0, "%s: %d input gradients differ from finite differences", what, bad);
    }
    free(x);
    free(dx);
    free(r);
    free(g);
}

/* Builds a sequential model, fills an input with `fill`, checks gradients. */
static void grad_case(const char *what, const rt_layer_spec *specs, int count, rt_shape in,
                      int n, const rt_nn_ctx *ctx, int fill, fd_tol tol)
{
    rt_model *m = make_seq(specs, count, in, n, 7);
    if (!m)
        return;
    size_t nin = (size_t)n * rt_shape_size(in);
    float *x = malloc(nin * sizeof *x);
    if (fill == 0)
        fill_uniform(x, nin, 5, -1.0f, 1.0f);
    else if (fill == 1)
        fill_away_from_zero(x, nin, 5);
    else
        fill_distinct(x, nin, 5);
    check_grads(what, m, ctx, x, n, tol);
    free(x);
    rt_model_free(m);
}

enum { FILL_UNIFORM = 0, FILL_AWAY_FROM_ZERO = 1, FILL_DISTINCT = 2 };

/* ---- per-layer gradient checks ------------------------------------------------ */
static void test_linear_conv_grads(void)
{
    rt_layer_spec lin = spec_of(RT_LAYER_LINEAR);
    lin.out = 5;
    grad_case("linear", &lin, 1, (rt_shape){7, 1, 1}, 3, &train_ctx, FILL_UNIFORM, default_tol);
    lin.bias = 0;
    grad_case("linear no bias, batch 1", &lin, 1, (rt_shape){7, 1, 1}, 1, &train_ctx,
              FILL_UNIFORM, default_tol);
    /* Linear straight on a [c, h, w] input reads it as c*h*w features. */
    lin.bias = 1;
    grad_case("linear on [2,3,3]", &lin, 1, (rt_shape){2, 3, 3}, 2, &train_ctx, FILL_UNIFORM,
              default_tol);

    rt_layer_spec c = conv(4, 3, 1, 1, 1);
    grad_case("conv 3x3 pad 1", &c, 1, (rt_shape){3, 5, 5}, 2, &train_ctx, FILL_UNIFORM,
              default_tol);
    c = conv(3, 3, 2, 0, 1);
    grad_case("conv stride 2 pad 0", &c, 1, (rt_shape){2, 5, 5}, 2, &train_ctx, FILL_UNIFORM,
              default_tol);
    c = conv(2, 4, 3, 2, 0);
    grad_case("conv k4 stride 3 pad 2, non-square", &c, 1, (rt_shape){2, 6, 7}, 2, &train_ctx,
              FILL_UNIFORM, default_tol);
    c = conv(3, 1, 1, 0, 1);
    grad_case("conv 1x1, batch 1", &c, 1, (rt_shape){4, 3, 3}, 1, &train_ctx, FILL_UNIFORM,
              default_tol);
    c = conv(2, 4, 1, 0, 1);
    grad_case("conv kernel = input", &c, 1, (rt_shape){3, 4, 4}, 2, &train_ctx, FILL_UNIFORM,
              default_tol);
    c = conv(2, 3, 2, 2, 1);
    grad_case("conv pad 2 > kernel/2", &c, 1, (rt_shape){1, 4, 4}, 1, &train_ctx, FILL_UNIFORM,
              default_tol);
}

static void test_elementwise_pool_grads(void)
{
    rt_layer_spec s = spec_of(RT_LAYER_RELU);
    grad_case("relu", &s, 1, (rt_shape){3, 4, 4}, 2, &train_ctx, FILL_AWAY_FROM_ZERO,
              default_tol);
    s = spec_of(RT_LAYER_MAXPOOL2D);
    s.kernel = 2;   /* stride 0: = kernel */
    grad_case("maxpool 2", &s, 1, (rt_shape){2, 4, 5}, 2, &train_ctx, FILL_DISTINCT,
              default_tol);
    s.kernel = 3;
    s.stride = 2;
    s.padding = 1;
    grad_case("maxpool 3/2/1", &s, 1, (rt_shape){2, 7, 7}, 1, &train_ctx, FILL_DISTINCT,
              default_tol);
    s = spec_of(RT_LAYER_AVGPOOL);
    grad_case("avgpool", &s, 1, (rt_shape){3, 3, 4}, 2, &train_ctx, FILL_UNIFORM, default_tol);
    s = spec_of(RT_LAYER_FLATTEN);
    grad_case("flatten", &s, 1, (rt_shape){2, 3, 3}, 2, &train_ctx, FILL_UNIFORM, default_tol);
    s = spec_of(RT_LAYER_DROPOUT);
    s.p = 0.3f;   /* fixed ctx->rng_key: the mask is the same in every forward call */
    grad_case("dropout train", &s, 1, (rt_shape){20, 1, 1}, 3, &train_ctx, FILL_UNIFORM,
              default_tol);
    grad_case("dropout eval", &s, 1, (rt_shape){20, 1, 1}, 3, &eval_ctx, FILL_UNIFORM,
              default_tol);

    /* A small network: conv -> relu -> maxpool -> flatten -> linear. */
    rt_layer_spec net[5] = {conv(3, 3, 1, 1, 1), spec_of(RT_LAYER_RELU),
                            spec_of(RT_LAYER_MAXPOOL2D), spec_of(RT_LAYER_FLATTEN),
                            spec_of(RT_LAYER_LINEAR)};
    net[2].kernel = 2;
    net[4].out = 4;
    /* Smaller step: interior ReLU/max kinks are not controlled here, so keep
     * h small enough that crossing one is unlikely; rounding noise grows to
     * ~1e-6 / 2e-3 = 5e-4, still under atol. */
    fd_tol tol = {1e-3, 3e-3, 2e-2};
    grad_case("conv-relu-pool-flatten-linear", net, 5, (rt_shape){2, 6, 6}, 2, &train_ctx,
              FILL_UNIFORM, tol);
}

static void test_batchnorm_grads(void)
{
    rt_layer_spec bn = spec_of(RT_LAYER_BATCHNORM2D);
    grad_case("batchnorm train, batch 4", &bn, 1, (rt_shape){3, 2, 3}, 4, &train_ctx,
              FILL_UNIFORM, default_tol);
    grad_case("batchnorm train, batch 1 spatial 4x4", &bn, 1, (rt_shape){2, 4, 4}, 1,
              &train_ctx, FILL_UNIFORM, default_tol);
    /* Eval mode: normalise with running statistics changed by one train step. */
    rt_model *m = make_seq(&bn, 1, (rt_shape){3, 2, 2}, 4, 1);
    if (!m)
        return;
    float x[48];
    fill_uniform(x, 48, 3, -2.0f, 3.0f);
    fwd(m, &train_ctx, x, 4);
    check_grads("batchnorm eval", m, &eval_ctx, x, 4, default_tol);
    rt_model_free(m);
}

static void test_basicblock_grads(void)
{
    rt_layer_spec b = spec_of(RT_LAYER_BASICBLOCK);
    b.out = 4;
    b.stride = 1;
    /* Interior ReLUs: small step, as for the small network above. */
    fd_tol tol = {1e-3, 3e-3, 2e-2};
    grad_case("basicblock identity", &b, 1, (rt_shape){4, 4, 4}, 2, &train_ctx, FILL_UNIFORM,
              tol);
    b.stride = 2;
    grad_case("basicblock downsample stride 2", &b, 1, (rt_shape){3, 5, 5}, 2, &train_ctx,
              FILL_UNIFORM, tol);
    b.stride = 1;
    grad_case("basicblock downsample channels, batch 1", &b, 1, (rt_shape){2, 4, 4}, 1,
              &train_ctx, FILL_UNIFORM, tol);
}

/* ---- BatchNorm statistics ------------------------------------------------------- */
static void test_batchnorm_running_stats(void)
{
    rt_layer_spec bn = spec_of(RT_LAYER_BATCHNORM2D);
    enum { N = 3, C = 2, HW = 4 };
    rt_model *m = make_seq(&bn, 1, (rt_shape){C, 2, 2}, N, 1);
    if (!m)
        return;
    float x[N * C * HW];
    fill_uniform(x, N * C * HW, 11, -1.0f, 2.0f);
    const float *y = fwd(m, &train_ctx, x, N);
    const rt_tensor_info *rm = rt_model_find_tensor(m, "0.running_mean");
    const rt_tensor_info *rv = rt_model_find_tensor(m, "0.running_var");
    const rt_tensor_info *nb = rt_model_find_tensor(m, "0.num_batches_tracked");
    CHECK(rm && rv && nb && nb->ndim == 0 && nb->count == 1);
    if (!rm || !rv || !nb)
        return;
    float *buf = rt_model_buffers(m);
    for (int c = 0; c < C; c++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < HW; k++)
                s += x[(i * C + c) * HW + k];
        double mean = s / (N * HW);
        for (int i = 0; i < N; i++)
            for (int k = 0; k < HW; k++) {
                double d = x[(i * C + c) * HW + k] - mean;
                s2 += d * d;
            }
        double var = s2 / (N * HW), unbiased = s2 / (N * HW - 1);
        /* float statistics from float sums: 1e-5 covers their rounding. */
        CHECK_CLOSE(buf[rm->offset + c], 0.1 * mean, 1e-5, 1e-4);
        CHECK_CLOSE(buf[rv->offset + c], 0.9 + 0.1 * unbiased, 1e-5, 1e-4);
        /* Output with weight 1, bias 0: (x - mean) / sqrt(var + eps). */
        int i0 = c * HW;
        CHECK_CLOSE(y[i0], (x[i0] - mean) / sqrt(var + 1e-5), 1e-4, 1e-4);
    }
    CHECK(buf[nb->offset] == 1.0f);
    fwd(m, &train_ctx, x, N);
    CHECK(buf[nb->offset] == 2.0f);
    fwd(m, &eval_ctx, x, N);   /* eval never counts */
    CHECK(buf[nb->offset] == 2.0f);
    rt_model_free(m);
}

/* Synchronised BatchNorm: two threads stand in for two ranks (a thread
 * communicator, thread_comm.h), each with half of a batch; their all-reduce
 * adds both ranks' buffers in rank order. Outputs, running statistics and
 * the summed gradients must equal one model on the whole batch. */
typedef struct rank_job {
    thread_group *group;
    int rank;
    rt_model *model;
    const float *x, *dout;
    int n;
    const float *y;   /* this rank's output */
} rank_job;

static void *rank_main(void *arg)
{
    rank_job *j = arg;
    rt_comm *comm = NULL;
    if (thread_comm_create(j->group, j->rank, &comm) != RT_OK)
        return NULL;
    rt_nn_ctx ctx = {.train = 1, .sync_comm = comm};
    CHECK_OK(rt_model_zero_grad(j->model));
    j->y = fwd(j->model, &ctx, j->x, j->n);
    CHECK_OK(rt_model_backward(j->model, &ctx, j->dout, j->n));
    rt_comm_free(comm);
    return NULL;
}

static void test_sync_batchnorm(void)
{
    enum { N = 4, HALF = 2 };
    rt_shape in = {3, 5, 5};
    rt_layer_spec layers[2] = {conv(4, 3, 1, 1, 1), spec_of(RT_LAYER_BATCHNORM2D)};
    rt_model *ref = make_seq(layers, 2, in, N, 3);
    rt_model *r0 = make_seq(layers, 2, in, HALF, 3), *r1 = make_seq(layers, 2, in, HALF, 3);
    if (!ref || !r0 || !r1)
        return;
    size_t nin = rt_shape_size(in), nout = rt_shape_size(rt_model_output_shape(ref));
    float x[N * 75], dout[N * 100];
    fill_uniform(x, N * nin, 21, -1.0f, 1.0f);
    fill_uniform(dout, N * nout, 22, -1.0f, 1.0f);

    CHECK_OK(rt_model_zero_grad(ref));
    const float *yref = fwd(ref, &train_ctx, x, N);
    CHECK_OK(rt_model_backward(ref, &train_ctx, dout, N));

    thread_group group;
    thread_group_init(&group, 2);
    rank_job jobs[2] = {{&group, 0, r0, x, dout, HALF, NULL},
                        {&group, 1, r1, x + HALF * nin, dout + HALF * nout, HALF, NULL}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, rank_main, &jobs[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    thread_group_destroy(&group);

    /* Same sums reduced in a different order: float rounding only, so
     * 1e-5 on outputs of size ~1 and 1e-4 on gradient sums. */
    int bad = 0;
    for (int r = 0; r < 2; r++)
        for (size_t i = 0; jobs[r].y && i < HALF * nout; i++)
            bad += !(fabsf(jobs[r].y[i] - yref[r * HALF * nout + i]) <= 1e-5f);
    CHECK(jobs[0].y && jobs[1].y);
    CHECK_MSG(bad == 0, "sync BN: %d outputs differ from the full batch's", bad);
    size_t np = rt_model_num_params(ref);
    const float *g = rt_model_grads(ref), *g0 = rt_model_grads(r0), *g1 = rt_model_grads(r1);
    bad = 0;
    for (size_t i = 0; i < np; i++)
        if (!(fabs((double)g0[i] + g1[i] - g[i]) <= 1e-4 + 1e-4 * fabs(g[i])))
            bad++;
    CHECK_MSG(bad == 0, "sync BN: %d summed gradients differ from the full batch's", bad);
    size_t nb = rt_model_num_buffers(ref);
    const float *b = rt_model_buffers(ref), *b0 = rt_model_buffers(r0),
                *b1 = rt_model_buffers(r1);
    bad = 0;
    for (size_t i = 0; i < nb; i++)
        if (!(fabs(b0[i] - b[i]) <= 1e-5 + 1e-5 * fabs(b[i])) || b0[i] != b1[i])
            bad++;
    CHECK_MSG(bad == 0, "sync BN: %d running statistics differ", bad);
    rt_model_free(ref);
    rt_model_free(r0);
    rt_model_free(r1);
}

/* ---- BasicBlock against plain layers ---------------------------------------------- */
/* The block's output must be relu(main(x) + shortcut(x)) with main = conv3x3,
 * bn, relu, conv3x3, bn and shortcut = x or (conv1x1, bn), built here from
 * separate sequential models that get the block's parameters (the block
 * declares them in the same order: conv1, bn1, conv2, bn2, downsample). */
static void check_block_composition(rt_shape in, int planes, int stride)
{
    enum { N = 2 };
    rt_layer_spec b = spec_of(RT_LAYER_BASICBLOCK);
    b.out = planes;
    b.stride = stride;
    rt_layer_spec main_specs[5] = {conv(planes, 3, stride, 1, 0),
                                   spec_of(RT_LAYER_BATCHNORM2D), spec_of(RT_LAYER_RELU),
                                   conv(planes, 3, 1, 1, 0), spec_of(RT_LAYER_BATCHNORM2D)};
    rt_layer_spec ds_specs[2] = {conv(planes, 1, stride, 0, 0), spec_of(RT_LAYER_BATCHNORM2D)};
    int has_ds = stride != 1 || in.c != planes;
    rt_model *block = make_seq(&b, 1, in, N, 5);
    rt_model *mainm = make_seq(main_specs, 5, in, N, 6);
    rt_model *dsm = has_ds ? make_seq(ds_specs, 2, in, N, 7) : NULL;
    if (!block || !mainm || (has_ds && !dsm))
        return;
    size_t nm = rt_model_num_params(mainm), nd = dsm ? rt_model_num_params(dsm) : 0;
    CHECK(rt_model_num_params(block) == nm + nd);
    memcpy(rt_model_params(mainm), rt_model_params(block), nm * sizeof(float));
    if (dsm)
        memcpy(rt_model_params(dsm), rt_model_params(block) + nm, nd * sizeof(float));
    size_t nin = rt_shape_size(in), nout = rt_shape_size(rt_model_output_shape(block));
    float *x = malloc(N * nin * sizeof *x);
    fill_uniform(x, N * nin, 8, -1.0f, 1.0f);
    const float *y = fwd(block, &train_ctx, x, N);
    const float *ym = fwd(mainm, &train_ctx, x, N);
    const float *yd = dsm ? fwd(dsm, &train_ctx, x, N) : x;
    int bad = 0;
    for (size_t i = 0; i < N * nout; i++) {
        float want = ym[i] + yd[i] > 0 ? ym[i] + yd[i] : 0;
        bad += !(fabsf(y[i] - want) <= 1e-5f);   /* same float ops in the same order */
    }
    CHECK_MSG(bad == 0, "basicblock stride %d: %d outputs differ from the plain layers", stride,
              bad);
    free(x);
    rt_model_free(block);
    rt_model_free(mainm);
    rt_model_free(dsm);
}

static void test_basicblock_composition(void)
{
    check_block_composition((rt_shape){4, 5, 5}, 4, 1);
    check_block_composition((rt_shape){3, 6, 6}, 5, 2);
}

/* ---- dropout ---------------------------------------------------------------------- */
static void test_dropout_mask(void)
{
    enum { F = 4000 };
    rt_layer_spec s = spec_of(RT_LAYER_DROPOUT);
    CHECK(s.p == 0.5f);
    rt_model *m = make_seq(&s, 1, (rt_shape){F, 1, 1}, 1, 1);
    if (!m)
        return;
    float *x = malloc(F * sizeof *x), *y1 = malloc(F * sizeof *y1);
    fill_uniform(x, F, 4, 0.5f, 1.5f);
    memcpy(y1, fwd(m, &train_ctx, x, 1), F * sizeof *y1);
    int zeros = 0, scaled = 0;
    for (int i = 0; i < F; i++) {
        zeros += y1[i] == 0.0f;
        scaled += fabsf(y1[i] - 2.0f * x[i]) <= 1e-6f * x[i];
    }
    /* Binomial(4000, 0.5): standard deviation 0.0079 of the fraction; 5 sigma. */
    CHECK_CLOSE((double)zeros / F, 0.5, 0.04, 0);
    CHECK(zeros + scaled == F);
    const float *y2 = fwd(m, &train_ctx, x, 1);
    CHECK(memcmp(y1, y2, F * sizeof *y1) == 0);
    rt_nn_ctx other = train_ctx;
    other.rng_key++;
    const float *y3 = fwd(m, &other, x, 1);
    CHECK(memcmp(y1, y3, F * sizeof *y1) != 0);
    const float *y4 = fwd(m, &eval_ctx, x, 1);
    CHECK(memcmp(x, y4, F * sizeof *x) == 0);
    free(x);
    free(y1);
    rt_model_free(m);
}

/* ---- losses ------------------------------------------------------------------------- */
static void test_losses(void)
{
    float z[9] = {0, 0, 0, 1, 2, 3, 1000, 0, -1000};
    int32_t labels[3] = {0, 2, 1};
    float dz[9];
    /* log 3; log(1 + e^-1 + e^-2); 1000 + log(1 + e^-1000 + e^-2000) = 1000. */
    double want = log(3.0) + log(1 + exp(-1.0) + exp(-2.0)) + 1000.0;
    double got = cross_entropy(dz, z, labels, 3, 3, 0.5f);
    CHECK_CLOSE(got, want, 1e-9, 1e-9);   /* double arithmetic on exact inputs */
    CHECK_CLOSE(dz[0], 0.5 * (1.0 / 3 - 1), 1e-7, 1e-6);
    CHECK_CLOSE(dz[1], 0.5 / 3, 1e-7, 1e-6);
    CHECK_CLOSE(dz[6], 0.5, 1e-7, 1e-6);
    CHECK_CLOSE(dz[7], -0.5, 1e-7, 1e-6);
    CHECK(isfinite(dz[8]) && fabsf(dz[8]) < 1e-30f);

    /* Finite differences of the summed loss (scale 1) on random logits; the
     * loss is smooth and computed in double, so 1e-4 is generous. */
    float zr[12];
    int32_t lr[3] = {3, 0, 2};
    fill_uniform(zr, 12, 31, -3.0f, 3.0f);
    float dzr[12];
    cross_entropy(dzr, zr, lr, 3, 4, 1.0f);
    int bad = 0;
    for (int i = 0; i < 12; i++) {
        float saved = zr[i];
        zr[i] = saved + 1e-2f;
        double lp = cross_entropy(NULL, zr, lr, 3, 4, 1.0f);
        zr[i] = saved - 1e-2f;
        double lm = cross_entropy(NULL, zr, lr, 3, 4, 1.0f);
        zr[i] = saved;
        double fd = (lp - lm) / ((double)(saved + 1e-2f) - (double)(saved - 1e-2f));
        bad += !(fabs(fd - dzr[i]) <= 1e-4);
    }
    CHECK(bad == 0);

    float logp[6] = {-0.1f, -2.0f, -3.0f, -1.5f, -0.5f, -4.0f};
    int32_t nl[2] = {1, 2};
    float dlogp[6];
    CHECK_CLOSE(nll_loss(dlogp, logp, nl, 2, 3, 0.25f), 2.0 + 4.0, 1e-6, 1e-6);
    CHECK(dlogp[1] == -0.25f && dlogp[5] == -0.25f && dlogp[0] == 0 && dlogp[3] == 0);

    int32_t bad_label[1] = {5};
    CHECK(isnan(cross_entropy(NULL, z, bad_label, 1, 3, 1.0f)));

    float ties[6] = {1, 1, 0, 0, 2, 2};
    int32_t t1[2] = {0, 1}, t2[2] = {1, 2};
    CHECK(count_correct(ties, t1, 2, 3) == 2);   /* first maximum wins */
    CHECK(count_correct(ties, t2, 2, 3) == 0);
}

/* ---- architectures ------------------------------------------------------------------- */
static size_t conv_params(size_t cin, size_t cout, size_t k) { return cin * cout * k * k; }
static size_t block_params(size_t cin, size_t cout, int ds)
{
    return conv_params(cin, cout, 3) + 2 * cout + conv_params(cout, cout, 3) + 2 * cout +
           (ds ? conv_params(cin, cout, 1) + 2 * cout : 0);
}

static void check_shape(const rt_model *m, const char *name, int ndim, int d0, int d1, int d2,
                        int d3)
{
    const rt_tensor_info *t = rt_model_find_tensor(m, name);
    CHECK_MSG(t != NULL, "tensor %s missing", name);
    if (!t)
        return;
    int want[4] = {d0, d1, d2, d3};
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = t->shape[d] == want[d];
    CHECK_MSG(ok, "tensor %s has the wrong shape", name);
}

static int hook_calls[RT_MAX_LAYERS], hook_count;
static void record_hook(void *arg, int layer)
{
    (void)arg;
    if (hook_count < RT_MAX_LAYERS)
        hook_calls[hook_count] = layer;
    hook_count++;
}

static void test_resnet18(void)
{
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_RESNET18);
    spec.num_classes = 10;
    spec.conv1_kernel = 7;
    spec.conv1_stride = 2;
    spec.conv1_padding = 3;
    rt_model *m = NULL;
    CHECK_OK(rt_model_create(&m, be, &spec, (rt_shape){1, 28, 28}, 2, 42));
    if (!m)
        return;
    /* torchvision's resnet18 from its layer sizes, with 1 input channel. */
    size_t want = conv_params(1, 64, 7) + 2 * 64;
    size_t chans[5] = {64, 64, 128, 256, 512};
    for (int stage = 1; stage <= 4; stage++)
        want += block_params(chans[stage - 1], chans[stage], stage > 1) +
                block_params(chans[stage], chans[stage], 0);
    want += 512 * 10 + 10;
    CHECK(rt_model_num_params(m) == want);
    CHECK(want == 11175370);   /* also torch: sum(p.numel()) of this model */

    rt_shape out = rt_model_output_shape(m);
    CHECK(out.c == 10 && out.h == 1 && out.w == 1);
    CHECK(rt_model_num_layers(m) == 15);
    check_shape(m, "conv1.weight", 4, 64, 1, 7, 7);
    check_shape(m, "layer1.0.conv1.weight", 4, 64, 64, 3, 3);
    check_shape(m, "layer2.0.downsample.0.weight", 4, 128, 64, 1, 1);
    check_shape(m, "layer2.0.downsample.1.running_var", 1, 128, 0, 0, 0);
    check_shape(m, "layer4.1.bn2.bias", 1, 512, 0, 0, 0);
    check_shape(m, "bn1.running_mean", 1, 64, 0, 0, 0);
    check_shape(m, "bn1.num_batches_tracked", 0, 0, 0, 0, 0);
    check_shape(m, "fc.weight", 2, 10, 512, 0, 0);
    check_shape(m, "fc.bias", 1, 10, 0, 0, 0);
    CHECK(rt_model_find_tensor(m, "layer1.0.downsample.0.weight") == NULL);
    CHECK(rt_model_find_tensor(m, "conv1.bias") == NULL);

    /* Parameters first, packed in slab order; then buffers, packed. */
    size_t poff = 0, boff = 0;
    int seen_buffer = 0, ordered = 1, nparam_tensors = 0;
    for (int i = 0; i < rt_model_num_tensors(m); i++) {
        const rt_tensor_info *t = rt_model_tensor(m, i);
        size_t *off = t->kind == RT_TENSOR_PARAM ? &poff : &boff;
        seen_buffer |= t->kind == RT_TENSOR_BUFFER;
        ordered &= !(seen_buffer && t->kind == RT_TENSOR_PARAM) && t->offset == *off;
        *off += t->count;
        nparam_tensors += t->kind == RT_TENSOR_PARAM;
    }
    CHECK(ordered && poff == want && boff == rt_model_num_buffers(m));
    CHECK(nparam_tensors == 62);   /* len(list(resnet18().parameters())) */
    CHECK(strcmp(rt_model_tensor(m, 0)->name, "conv1.weight") == 0);
    CHECK(strcmp(rt_model_tensor(m, 1)->name, "bn1.weight") == 0);
    CHECK(strcmp(rt_model_tensor(m, 61)->name, "fc.bias") == 0);
    CHECK(strcmp(rt_model_tensor(m, 62)->name, "bn1.running_mean") == 0);

    /* torchvision init: kaiming_normal fan_out for convs (std sqrt(2/4608)
     * for layer4's 3x3 convs; 2.4M draws, so 1% is ~15 standard errors),
     * BN weight 1 / bias 0, fc U(-1/sqrt(512), 1/sqrt(512)). */
    const rt_tensor_info *w = rt_model_find_tensor(m, "layer4.1.conv2.weight");
    const float *p = rt_model_params(m);
    double s2 = 0;
    for (size_t i = 0; w && i < w->count; i++)
        s2 += (double)p[w->offset + i] * p[w->offset + i];
    CHECK(w && fabs(sqrt(s2 / w->count) / sqrt(2.0 / 4608) - 1) < 0.01);
    const rt_tensor_info *fw = rt_model_find_tensor(m, "fc.weight");
    float maxabs = 0;
    for (size_t i = 0; fw && i < fw->count; i++)
        maxabs = fmaxf(maxabs, fabsf(p[fw->offset + i]));
    CHECK(maxabs <= 1.0f / sqrtf(512.0f) && maxabs > 0.9f / sqrtf(512.0f));
    const rt_tensor_info *g1 = rt_model_find_tensor(m, "layer3.0.bn1.weight");
    CHECK(g1 && p[g1->offset] == 1.0f && p[g1->offset + 255] == 1.0f);

    /* Forward/backward: finite outputs; the hook sees layers 14..0 in order;
     * layer offsets rise to the fc's. */
    float x[2 * 784], dout[20];
    fill_uniform(x, 2 * 784, 1, 0.0f, 1.0f);
    fill_uniform(dout, 20, 2, -0.1f, 0.1f);
    const float *y = fwd(m, &train_ctx, x, 2);
    int finite = y != NULL;
    for (int i = 0; finite && i < 20; i++)
        finite = isfinite(y[i]);
    CHECK(finite);
    rt_model_set_backward_hook(m, record_hook, NULL);
    CHECK_OK(rt_model_zero_grad(m));
    CHECK_OK(rt_model_backward(m, &train_ctx, dout, 2));
    int order = hook_count == 15;
    for (int i = 0; order && i < 15; i++)
        order = hook_calls[i] == 14 - i;
    CHECK(order);
    CHECK(rt_model_layer_param_offset(m, 0) == 0);
    CHECK(rt_model_layer_param_offset(m, 14) == want - 5130);
    CHECK(rt_model_layer_param_offset(m, 15) == want);
    const float *g = rt_model_grads(m);
    double gsum = 0;
    for (size_t i = 0; i < want; i++)
        gsum += fabs(g[i]);
    CHECK(isfinite(gsum) && gsum > 0);
    y = fwd(m, &eval_ctx, x, 1);
    CHECK(y != NULL && isfinite(y[0]));
    rt_model_print_summary(m);

    /* Same seed, same values; another seed, other values. */
    rt_model *same = NULL, *other = NULL;
    CHECK_OK(rt_model_create(&same, be, &spec, (rt_shape){1, 28, 28}, 1, 42));
    CHECK_OK(rt_model_create(&other, be, &spec, (rt_shape){1, 28, 28}, 1, 43));
    if (same && other) {
        rt_model *fresh = NULL;
        CHECK_OK(rt_model_create(&fresh, be, &spec, (rt_shape){1, 28, 28}, 4, 42));
        if (fresh)
            CHECK(memcmp(rt_model_params(same), rt_model_params(fresh), want * 4) == 0);
        CHECK(memcmp(rt_model_params(same), rt_model_params(other), want * 4) != 0);
        rt_model_free(fresh);
    }
    rt_model_free(same);
    rt_model_free(other);
    rt_model_free(m);
}

static void test_mlp(void)
{
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_MLP);
    CHECK(spec.num_hidden == 2 && spec.hidden[0] == 512 && spec.hidden[1] == 512);
    rt_model *m = NULL;
    CHECK_OK(rt_model_create(&m, be, &spec, (rt_shape){1, 28, 28}, 4, 1));
    if (!m)
        return;
    CHECK(rt_model_num_layers(m) == 6);   /* flatten + (linear, relu) x 2 + linear */
    CHECK(strcmp(rt_model_layer(m, 5)->name, "linear_relu_stack.4") == 0);
    check_shape(m, "linear_relu_stack.0.weight", 2, 512, 784, 0, 0);
    check_shape(m, "linear_relu_stack.2.weight", 2, 512, 512, 0, 0);
    check_shape(m, "linear_relu_stack.4.bias", 1, 10, 0, 0, 0);
    CHECK(rt_model_num_params(m) == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10);
    rt_model_free(m);
    spec.output_relu = 0;
    spec.num_hidden = 1;
    spec.hidden[0] = 8;
    CHECK_OK(rt_model_create(&m, be, &spec, (rt_shape){1, 4, 4}, 4, 1));
    if (m) {
        CHECK(rt_model_num_layers(m) == 4);
        check_shape(m, "linear_relu_stack.2.weight", 2, 10, 8, 0, 0);
        /* The whole network's parameter gradients; the kinks of its one ReLU
         * layer are avoided by the small step. */
        float x[64];
        fill_uniform(x, 64, 9, -1.0f, 1.0f);
        fd_tol tol = {1e-3, 3e-3, 2e-2};
        check_grads("mlp", m, &train_ctx, x, 4, tol);
    }
    rt_model_free(m);
}

/* ---- planned models (rtrain --check) --------------------------------------------------- */
/* The CPU backend with an alloc that adds up what the model asks for. */
static size_t counted_bytes;
static rt_status counting_alloc(void **out, size_t bytes, const char *what)
{
    counted_bytes += bytes;
    return rt_backend_default()->alloc(out, bytes, what);
}

static size_t tensor_floats(const rt_model *m, rt_tensor_kind kind)
{
    size_t n = 0;
    for (int i = 0; i < rt_model_num_tensors(m); i++)
        if (rt_model_tensor(m, i)->kind == kind)
            n += rt_model_tensor(m, i)->count;
    return n;
}

/* A planned model has the built one's layers, tensors and sizes, takes no
 * backend memory, and reports the memory the built one allocates. */
static void test_model_plan(void)
{
    rt_backend counting = *rt_backend_default();
    counting.alloc = counting_alloc;
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_RESNET18);
    spec.num_classes = 10;
    rt_shape in = {1, 28, 28};
    rt_model *planned = NULL, *built = NULL;
    counted_bytes = 0;
    CHECK_OK(rt_model_plan(&planned, &counting, &spec, in, 8));
    CHECK(counted_bytes == 0);
    CHECK_OK(rt_model_create(&built, &counting, &spec, in, 8, 1));
    if (!planned || !built) {
        rt_model_free(planned);
        rt_model_free(built);
        return;
    }
    CHECK(rt_model_num_params(planned) == rt_model_num_params(built));
    CHECK(rt_model_num_buffers(planned) == rt_model_num_buffers(built));
    CHECK(rt_model_num_layers(planned) == rt_model_num_layers(built));
    int same = rt_model_num_tensors(planned) == rt_model_num_tensors(built);
    for (int i = 0; same && i < rt_model_num_tensors(built); i++) {
        const rt_tensor_info *a = rt_model_tensor(planned, i), *b = rt_model_tensor(built, i);
        same = !strcmp(a->name, b->name) && a->count == b->count && a->offset == b->offset;
    }
    CHECK(same);
    for (int i = 0; i < rt_model_num_layers(built); i++) {
        rt_shape a = rt_model_layer(planned, i)->out_shape, b = rt_model_layer(built, i)->out_shape;
        CHECK(a.c == b.c && a.h == b.h && a.w == b.w);
    }
    rt_model_memory pm, bm;
    rt_model_memory_use(planned, &pm);
    rt_model_memory_use(built, &bm);
    CHECK(memcmp(&pm, &bm, sizeof pm) == 0);
    /* The slabs are the tensors' values; everything the model allocated
     * is what it reports (every piece of this model is non-empty). */
    CHECK(pm.params == 4 * tensor_floats(built, RT_TENSOR_PARAM) && pm.grads == pm.params);
    CHECK(pm.buffers == 4 * tensor_floats(built, RT_TENSOR_BUFFER));
    CHECK(pm.saved > 0 && pm.scratch > 0 && pm.activations > 0);
    size_t reported = pm.params + pm.grads + pm.buffers + pm.saved + pm.scratch + pm.activations;
    CHECK_MSG(counted_bytes == reported, "allocated %zu bytes, reported %zu", counted_bytes,
              reported);
    /* Activations grow with the batch: twice the samples, at least twice
     * the layer outputs' share (here: more than the parameters). */
    rt_model *big = NULL;
    CHECK_OK(rt_model_plan(&big, &counting, &spec, in, 16));
    if (big) {
        rt_model_memory gm;
        rt_model_memory_use(big, &gm);
        CHECK(gm.params == pm.params && gm.activations > pm.activations);
    }
    rt_model_free(big);
    /* Nothing to compute with. */
    float x[784] = {0};
    CHECK(rt_model_forward(planned, NULL, x, 1, NULL) == RT_ERR_INVALID_ARG);
    CHECK(rt_model_zero_grad(planned) == RT_ERR_INVALID_ARG);
    rt_error_clear();
    rt_model_free(planned);
    rt_model_free(built);
}

/* ---- configuration errors -------------------------------------------------------------- */
static void test_config_errors(void)
{
    CHECK(rt_layer_type_from_name("batchnorm2d") == RT_LAYER_BATCHNORM2D);
    CHECK(rt_layer_type_from_name("basicblock") == RT_LAYER_BASICBLOCK);
    CHECK(rt_layer_type_from_name("conv3d") == -1);
    for (int t = 0; t < RT_LAYER_TYPE_COUNT; t++)
        CHECK(rt_layer_type_from_name(rt_layer_type_name((rt_layer_type)t)) == t);
    rt_layer_spec d = spec_of(RT_LAYER_BATCHNORM2D);
    CHECK(d.eps == 1e-5f && d.momentum == 0.1f && d.bias == 1);
    d = spec_of(RT_LAYER_MAXPOOL2D);
    CHECK(d.stride == 0);

    rt_model_spec spec;
    rt_model *m = NULL;
    rt_model_spec_default(&spec, RT_ARCH_SEQUENTIAL);
    CHECK_FAILS(RT_ERR_CONFIG, rt_model_create(&m, be, &spec, (rt_shape){1, 4, 4}, 2, 1));

    /* A 5x5 kernel on the 2x2 map a first conv leaves: names layer 1 and type. */
    spec.layers[0] = conv(2, 3, 1, 0, 1);
    spec.layers[1] = conv(2, 5, 1, 0, 1);
    spec.num_layers = 2;
    rt_error_clear();
    CHECK(rt_model_create(&m, be, &spec, (rt_shape){1, 4, 4}, 2, 1) == RT_ERR_CONFIG);
    CHECK(strstr(rt_error_message(), "'1'") && strstr(rt_error_message(), "conv2d"));
    CHECK(m == NULL);
    rt_error_clear();

    spec.layers[1] = spec_of(RT_LAYER_MAXPOOL2D);
    spec.layers[1].kernel = 2;
    spec.layers[1].padding = 2;
    CHECK_FAILS(RT_ERR_CONFIG, rt_model_create(&m, be, &spec, (rt_shape){1, 4, 4}, 2, 1));
    spec.layers[1] = spec_of(RT_LAYER_DROPOUT);
    spec.layers[1].p = 1.5f;
    CHECK_FAILS(RT_ERR_CONFIG, rt_model_create(&m, be, &spec, (rt_shape){1, 4, 4}, 2, 1));
    spec.layers[1] = spec_of(RT_LAYER_LINEAR);   /* out features 0 */
    CHECK_FAILS(RT_ERR_CONFIG, rt_model_create(&m, be, &spec, (rt_shape){1, 4, 4}, 2, 1));
    spec.layers[1].out = 3;
    CHECK_FAILS(RT_ERR_CONFIG, rt_model_create(&m, be, &spec, (rt_shape){1, 4, 4}, 0, 1));
    CHECK_FAILS(RT_ERR_CONFIG, rt_model_create(&m, be, &spec, (rt_shape){0, 4, 4}, 2, 1));
    /* Linear after an unflattened conv reads c*h*w features. */
    CHECK_OK(rt_model_create(&m, be, &spec, (rt_shape){1, 4, 4}, 2, 1));
    if (m)
        check_shape(m, "1.weight", 2, 3, 8, 0, 0);
    float x[32] = {0};
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_model_forward(m, &eval_ctx, x, 3, NULL));   /* > max_batch */
    rt_error_clear();
    rt_model_free(m);

    rt_model_spec_default(&spec, RT_ARCH_RESNET18);
    spec.num_classes = 0;
    CHECK_FAILS(RT_ERR_CONFIG, rt_model_create(&m, be, &spec, (rt_shape){3, 32, 32}, 2, 1));
    rt_model_spec_default(&spec, RT_ARCH_RESNET18);
    /* 7x7 stride 2 on 4x4 works; layer4's stride then needs >= 1 pixel: it
     * always gets one, so a tiny input is fine, not an error. */
    CHECK_OK(rt_model_create(&m, be, &spec, (rt_shape){3, 4, 4}, 1, 1));
    rt_model_free(m);
}

/* ---- losses on float targets ------------------------------------------------------------- */
typedef rt_status (*vector_loss_fn)(double *, float *, const float *, const float *, int, int,
                                    float);

/* The per-element loss of each vector loss in double, as torch defines it
 * (MSELoss, L1Loss, SmoothL1Loss with beta 1, BCEWithLogitsLoss). */
static double reference_elem(int which, double o, double y)
{
    double d = o - y;
    switch (which) {
    case 0: return d * d;
    case 1: return fabs(d);
    case 2: return fabs(d) < 1 ? 0.5 * d * d : fabs(d) - 0.5;
    default: return log1p(exp(-fabs(o))) + (o > 0 ? o : 0) - o * y;
    }
}

/* Values against the formulas (a sample's loss is the mean over its k
 * elements), gradients against central differences, for n = 3, k = 2. */
static void test_vector_losses(void)
{
    const char *names[4] = {"mse", "l1", "smooth_l1", "bce_with_logits"};
    vector_loss_fn fns[4] = {be->mse_loss, be->l1_loss, be->smooth_l1_loss, be->bce_logits_loss};
    float out[6] = {0.3f, -2.5f, 1.7f, 40.0f, -0.2f, -35.0f};
    float y[6] = {1.0f, -0.1f, 1.0f, 1.0f, 0.0f, 1.0f};
    for (int w = 0; w < 4; w++) {
        float dout[6];
        double sum = 0;
        CHECK_OK(fns[w](&sum, dout, out, y, 3, 2, 0.5f));
        double want = 0;
        for (int i = 0; i < 6; i++)
            want += reference_elem(w, out[i], y[i]) / 2;
        CHECK_MSG(fabs(sum - want) <= 1e-9 * (1 + fabs(want)), "%s: loss %.12g, want %.12g",
                  names[w], sum, want);
        /* Central differences of the summed loss (scale 0.5) away from the
         * kinks of l1 and smooth_l1 (|o - y| = 0 or 1): steps of 1e-3
         * on a loss computed in double; 1e-4 covers the float rounding
         * of the inputs and outputs. */
        int bad = 0;
        for (int i = 0; i < 6; i++) {
            float saved = out[i];
            double lp, lm;
            out[i] = saved + 1e-3f;
            fns[w](&lp, NULL, out, y, 3, 2, 0.5f);
            out[i] = saved - 1e-3f;
            fns[w](&lm, NULL, out, y, 3, 2, 0.5f);
            out[i] = saved;
            double fd = 0.5 * (lp - lm) / ((double)(saved + 1e-3f) - (double)(saved - 1e-3f));
            bad += !(fabs(fd - dout[i]) <= 1e-4);
        }
        CHECK_MSG(bad == 0, "%s: %d gradients differ from finite differences", names[w], bad);
    }
    /* bce on logits far from 0 stays finite (no exp overflow). */
    float big[2] = {500.0f, -500.0f}, t01[2] = {0.0f, 1.0f}, dbig[2];
    double sum = 0;
    CHECK_OK(be->bce_logits_loss(&sum, dbig, big, t01, 1, 2, 1.0f));
    CHECK_CLOSE(sum, 500.0, 1e-9, 1e-9);
    CHECK_CLOSE(dbig[0], 0.5, 1e-7, 1e-7);
    CHECK_CLOSE(dbig[1], -0.5, 1e-7, 1e-7);

    /* The metric sums: per output (o-y)^2, |o-y|, y, y^2, [o > 0 == y > 0.5]. */
    double sums[10] = {0};
    CHECK_OK(be->target_sums(sums, out, y, 3, 2));
    double want0[5] = {0.49 + 0.49 + 0.04, 0.7 + 0.7 + 0.2, 2.0, 2.0, 3.0};
    for (int j = 0; j < 5; j++)
        CHECK_CLOSE(sums[j], want0[j], 1e-6, 1e-6);
    CHECK_CLOSE(sums[5 + 4], 2.0, 0, 0);   /* output 1: (-2.5, -0.1) and (40, 1) agree, (-35, 1) not */
}

/* ---- per-layer timing -------------------------------------------------------------- */

static int count_hook_calls;
static void count_hook(void *arg, int layer)
{
    (void)arg;
    (void)layer;
    count_hook_calls++;
}

/* A profile's times: one row per layer, children of the block after it in
 * state_dict order, one call per pass each, own times that add up to no
 * more than the whole pass (the block's excludes its children's), the
 * backward hook timed; and the same bits as the same model run untimed. */
static void test_layer_times(void)
{
    enum { N = 2 };
    rt_layer_spec block = spec_of(RT_LAYER_BASICBLOCK), drop = spec_of(RT_LAYER_DROPOUT),
                  lin = spec_of(RT_LAYER_LINEAR);
    block.out = 6;
    block.stride = 2;
    lin.out = 3;
    rt_layer_spec specs[6] = {conv(4, 3, 1, 1, 0), block, spec_of(RT_LAYER_RELU), drop,
                              spec_of(RT_LAYER_FLATTEN), lin};
    rt_shape in = {3, 6, 6};
    rt_model *timed = make_seq(specs, 6, in, N, 21), *plain = make_seq(specs, 6, in, N, 21);
    rt_layer_times *times = NULL;
    if (timed)
        CHECK_OK(rt_layer_times_create(&times, timed));
    if (!timed || !plain || !times)
        return;
    static const char *const names[] = {"0", "1", "1.conv1", "1.bn1", "1.relu", "1.conv2",
                                        "1.bn2", "1.downsample.0", "1.downsample.1", "2", "3",
                                        "4", "5"};
    int rows = (int)(sizeof names / sizeof names[0]);
    CHECK(times->count == rows);
    for (int i = 0; i < rows && i < times->count; i++)
        CHECK_MSG(!strcmp(times->rows[i].layer->name, names[i]), "row %d is '%s', want '%s'",
                  i, times->rows[i].layer->name, names[i]);

    float x[N * 108], dout[N * 3];
    fill_uniform(x, N * 108, 31, -1.0f, 1.0f);
    fill_uniform(dout, N * 3, 32, -1.0f, 1.0f);
    rt_nn_ctx ctx = train_ctx;
    ctx.times = times;
    rt_model_set_backward_hook(timed, count_hook, NULL);
    count_hook_calls = 0;
    double start = rt_time_now();
    const float *y = fwd(timed, &ctx, x, N);
    CHECK_OK(rt_model_zero_grad(timed));
    CHECK_OK(rt_model_backward(timed, &ctx, dout, N));
    double elapsed = rt_time_now() - start;
    const float *yp = fwd(plain, &train_ctx, x, N);
    CHECK_OK(rt_model_zero_grad(plain));
    CHECK_OK(rt_model_backward(plain, &train_ctx, dout, N));

    double own = times->hook_seconds;
    int once = 1;
    for (int i = 0; i < times->count; i++)
        for (int pass = 0; pass < 2; pass++) {
            once &= times->rows[i].calls[pass] == 1 && times->rows[i].seconds[pass] >= 0;
            own += times->rows[i].seconds[pass];
        }
    CHECK_MSG(once, "a layer was not timed exactly once per pass");
    CHECK_MSG(own <= elapsed, "own times add up to %g s, more than the %g s of the passes",
              own, elapsed);
    CHECK(times->hook_calls == 6 && count_hook_calls == 6);
    CHECK(y && yp && memcmp(y, yp, N * 3 * sizeof *y) == 0);
    size_t np = rt_model_num_params(timed), nb = rt_model_num_buffers(timed);
    CHECK(memcmp(rt_model_grads(timed), rt_model_grads(plain), np * sizeof(float)) == 0);
    CHECK(memcmp(rt_model_buffers(timed), rt_model_buffers(plain), nb * sizeof(float)) == 0);

    /* Another model's table is left alone. */
    ctx.times = times;
    for (int i = 0; i < times->count; i++)
        times->rows[i] = (rt_layer_time){.layer = times->rows[i].layer};
    CHECK(fwd(plain, &ctx, x, N) != NULL);
    int untouched = 1;
    for (int i = 0; i < times->count; i++)
        untouched &= times->rows[i].calls[0] == 0;
    CHECK(untouched);
    rt_layer_times_free(times);
    rt_model_free(timed);
    rt_model_free(plain);
}

/* The layers' gradients, BatchNorm, the block, dropout and the losses on
 * backend `be`. */
static void test_layers_on(const char *backend)
{
    be = rt_backend_find(backend);
    CHECK_MSG(be != NULL, "no backend %s", backend);
    if (!be)
        return;
    test_linear_conv_grads();
    test_elementwise_pool_grads();
    test_batchnorm_grads();
    test_basicblock_grads();
    test_batchnorm_running_stats();
    test_sync_batchnorm();
    test_basicblock_composition();
    test_dropout_mask();
    test_losses();
    test_vector_losses();
    test_layer_times();
}

/* One training backward of an MLP for 28x28 inputs and 10 classes on a
 * fixed batch of 4 and a fixed output gradient, onto zeroed gradients. */
static void mlp_backward_fixed(rt_model *m)
{
    float x[4 * 784];
    for (int i = 0; i < 4 * 784; i++)
        x[i] = (float)((i * 37) % 101) / 101.0f;
    rt_nn_ctx ctx = {.train = 1};
    CHECK_OK(rt_model_zero_grad(m));
    CHECK_OK(rt_model_forward(m, &ctx, x, 4, NULL));
    float *dout = rt_model_output_grad(m);
    for (int i = 0; i < 4 * 10; i++)
        dout[i] = (float)(i % 7) - 3.0f;
    CHECK_OK(rt_model_backward(m, &ctx, NULL, 4));
}

/* rt_model_create_in: the parameter and gradient slabs are the caller's
 * memory, initialised there with the values rt_model_create gives, used by
 * forward and backward (the gradients land there), and left to the caller by
 * rt_model_free (freed here: a model that freed them too would double-free). */
static void test_model_in_callers_memory(void)
{
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_MLP);
    spec.num_classes = 10;
    rt_shape in = {1, 28, 28};
    const rt_backend *be = rt_backend_find("cpu");
    rt_model *own = NULL, *placed = NULL;
    CHECK_OK(rt_model_create(&own, be, &spec, in, 4, 7));
    if (!own)
        return;
    size_t n = rt_model_num_params(own);
    float *params = calloc(n, sizeof(float)), *grads = calloc(n, sizeof(float));
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_model_create_in(&placed, be, &spec, in, 4, 7, NULL, grads));
    CHECK(placed == NULL);
    CHECK_OK(rt_model_create_in(&placed, be, &spec, in, 4, 7, params, grads));
    if (placed && params && grads) {
        CHECK(rt_model_params(placed) == params && rt_model_grads(placed) == grads);
        CHECK(memcmp(params, rt_model_params(own), n * sizeof(float)) == 0);
        mlp_backward_fixed(own);
        mlp_backward_fixed(placed);
        CHECK(memcmp(grads, rt_model_grads(own), n * sizeof(float)) == 0);
        int nonzero = 0;
        for (size_t i = 0; i < n; i++)
            nonzero += grads[i] != 0.0f;
        CHECK(nonzero > 0);
    }
    rt_model_free(placed);
    rt_model_free(own);
    free(params);
    free(grads);
}

/* rt_model_defer_linear_grads: what one saved call received. */
typedef struct saved_grads {
    int calls, layers[8], n[8];
    float *dy[8], *x[8];   /* copies */
    size_t dy_floats[8], x_floats[8];
    const rt_model *model_for_layout;
} saved_grads;

static void save_copy(void *arg, int layer, const float *dy, const float *x, int n)
{
    saved_grads *s = arg;
    if (s->calls >= 8)
        return;
    int k = s->calls++;
    rt_linear_layout at;
    s->layers[k] = layer;
    s->n[k] = n;
    s->dy[k] = s->x[k] = NULL;
    s->dy_floats[k] = s->x_floats[k] = 0;
    if (!rt_model_linear_layout(s->model_for_layout, layer, &at))
        return;
    s->dy_floats[k] = (size_t)n * at.out;
    s->x_floats[k] = (size_t)n * at.in;
    s->dy[k] = malloc(s->dy_floats[k] * sizeof(float));
    s->x[k] = malloc(s->x_floats[k] * sizeof(float));
    if (s->dy[k] && s->x[k]) {
        memcpy(s->dy[k], dy, s->dy_floats[k] * sizeof(float));
        memcpy(s->x[k], x, s->x_floats[k] * sizeof(float));
    }
}

/* Deferred linear gradients (the node update): every linear layer of an
 * MLP hands over its dy and x, from the last layer down, and adds nothing
 * to the gradient slab; the weight and bias gradients formed from them
 * (backend linear_backward, dx NULL) equal a normal backward's bit for
 * bit; the layers above still get the same input gradients (the first
 * layer's dy is the second's dx), so the whole chain is unchanged. The
 * layout works on a planned model and names only linear layers. */
static void test_deferred_linear_grads(void)
{
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_MLP);
    spec.num_classes = 10;
    rt_shape in = {1, 28, 28};
    const rt_backend *be = rt_backend_find("naive");
    rt_model *normal = NULL, *deferred = NULL, *planned = NULL;
    CHECK_OK(rt_model_create(&normal, be, &spec, in, 4, 7));
    CHECK_OK(rt_model_create(&deferred, be, &spec, in, 4, 7));
    CHECK_OK(rt_model_plan(&planned, be, &spec, in, 4));
    if (!normal || !deferred || !planned)
        goto out;
    int linear = 0;
    size_t covered = 0;
    for (int i = 0; i < rt_model_num_layers(planned); i++) {
        rt_linear_layout a, b;
        int is = rt_model_linear_layout(planned, i, &a);
        CHECK(is == rt_model_linear_layout(normal, i, &b));
        CHECK(is == !strcmp(rt_model_layer(planned, i)->ops->type, "linear"));
        if (!is)
            continue;
        linear++;
        CHECK(a.in == b.in && a.out == b.out && a.weight == b.weight && a.bias == b.bias);
        CHECK(a.has_bias && a.bias == a.weight + (size_t)a.in * a.out);
        covered += (size_t)a.in * a.out + (size_t)a.out;
    }
    CHECK(linear == 3 && covered == rt_model_num_params(planned));
    CHECK(!rt_model_linear_layout(planned, -1, &(rt_linear_layout){0}));

    saved_grads saved = {.model_for_layout = deferred};
    CHECK_OK(rt_model_defer_linear_grads(deferred, save_copy, &saved));
    mlp_backward_fixed(normal);
    mlp_backward_fixed(deferred);
    size_t n = rt_model_num_params(deferred);
    float *formed = calloc(n, sizeof(float));
    const float *untouched = rt_model_grads(deferred);
    int zero = 1;
    for (size_t i = 0; i < n; i++)
        zero &= untouched[i] == 0.0f;
    CHECK_MSG(zero, "a deferred backward added to the gradient slab");
    CHECK(saved.calls == 3);
    for (int k = 0; k < saved.calls && k < 3 && formed; k++) {
        rt_linear_layout at;
        CHECK(saved.n[k] == 4 && saved.dy[k] && saved.x[k]);
        if (!rt_model_linear_layout(deferred, saved.layers[k], &at) || !saved.dy[k] || !saved.x[k])
            continue;
        CHECK(k == 0 || saved.layers[k] < saved.layers[k - 1]);   /* last layer first */
        CHECK_OK(be->linear_backward(NULL, formed + at.weight, formed + at.bias, saved.dy[k],
                                     saved.x[k], NULL, saved.n[k], at.in, at.out));
    }
    CHECK_MSG(formed && !memcmp(formed, rt_model_grads(normal), n * sizeof(float)),
              "weight gradients formed from the saved dy and x differ from a normal backward's");
    free(formed);
    for (int k = 0; k < saved.calls && k < 8; k++) {
        free(saved.dy[k]);
        free(saved.x[k]);
    }
    /* Off again: the backward adds its gradients as before. */
    CHECK_OK(rt_model_defer_linear_grads(deferred, NULL, NULL));
    mlp_backward_fixed(deferred);
    CHECK(!memcmp(rt_model_grads(deferred), rt_model_grads(normal), n * sizeof(float)));
out:
    rt_model_free(planned);
    rt_model_free(deferred);
    rt_model_free(normal);
}

/* rt_model_set_linear_forward: what the caller's forward received. */
typedef struct split_calls {
    const rt_backend *be;
    rt_model *model;
    int calls, layers[8], n[8], weights_ok;
    int fail_layer;   /* -1: none */
} split_calls;

/* Computes y in two blocks of rows, as ranks that split a layer do. */
static rt_status forward_in_halves(void *arg, int layer, float *y, const float *x,
                                   const float *w, const float *b, int n, int in, int out)
{
    split_calls *c = arg;
    if (c->calls < 8) {
        c->layers[c->calls] = layer;
        c->n[c->calls] = n;
    }
    c->calls++;
    rt_linear_layout at;
    c->weights_ok &= rt_model_linear_layout(c->model, layer, &at) && at.in == in &&
                     at.out == out && w == rt_model_params(c->model) + at.weight &&
                     b == rt_model_params(c->model) + at.bias;
    if (layer == c->fail_layer)
        return RT_ERROR(RT_ERR_INTERNAL, "forward of layer %d refused (test)", layer);
    /* Rows [0, half) and [half, out), each into a block of its own, then
     * interleaved into y: nothing of the layer's own product is used. */
    int cut[3] = {0, out / 2, out};
    rt_status st = RT_OK;
    for (int p = 0; p < 2 && st == RT_OK; p++) {
        int rows = cut[p + 1] - cut[p];
        float *block = malloc((size_t)n * (size_t)rows * sizeof(float));
        if (!block)
            return RT_ERROR(RT_ERR_NOMEM, "test");
        st = c->be->linear_forward(block, x, w + (size_t)cut[p] * in, b + cut[p], n, in, rows);
        for (int i = 0; st == RT_OK && i < n; i++)
            memcpy(y + (size_t)i * out + cut[p], block + (size_t)i * rows,
                   (size_t)rows * sizeof(float));
        free(block);
    }
    return st;
}

/* The caller's linear forward (the node update's split forward): every
 * linear layer of an MLP calls it, in forward order, with its own weight
 * and bias in the slab, and what it computes is the layer's output (here
 * the same bits, the naive backend's rows being independent of the
 * block); its failure is the forward's; NULL gives the forward back to
 * the backend. */
static void test_caller_linear_forward(void)
{
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_MLP);
    spec.num_classes = 10;
    rt_shape in = {1, 28, 28};
    const rt_backend *be = rt_backend_find("naive");
    rt_model *normal = NULL, *split = NULL;
    CHECK_OK(rt_model_create(&normal, be, &spec, in, 4, 7));
    CHECK_OK(rt_model_create(&split, be, &spec, in, 4, 7));
    if (!normal || !split)
        goto out;
    split_calls c = {.be = be, .model = split, .weights_ok = 1, .fail_layer = -1};
    CHECK_OK(rt_model_set_linear_forward(split, forward_in_halves, &c));
    mlp_backward_fixed(normal);
    mlp_backward_fixed(split);
    CHECK(c.calls == 3 && c.weights_ok);
    for (int k = 0; k < 3; k++)
        CHECK(c.n[k] == 4 && (k == 0 || c.layers[k] > c.layers[k - 1]));
    size_t n = rt_model_num_params(split);
    CHECK_MSG(!memcmp(rt_model_grads(split), rt_model_grads(normal), n * sizeof(float)),
              "the gradients after a split forward differ");
    float x[4 * 784];
    for (int i = 0; i < 4 * 784; i++)
        x[i] = (float)((i * 53) % 97) / 97.0f;
    rt_nn_ctx ctx = {.train = 1};
    const float *y_normal = NULL, *y_split = NULL;
    CHECK_OK(rt_model_forward(normal, &ctx, x, 4, &y_normal));
    CHECK_OK(rt_model_forward(split, &ctx, x, 4, &y_split));
    CHECK_MSG(y_normal && y_split && !memcmp(y_split, y_normal, 4 * 10 * sizeof(float)),
              "the outputs of a forward split in halves differ from the backend's");
    /* A failure in the caller's forward is the model's. */
    c.fail_layer = c.layers[1];
    CHECK(rt_model_forward(split, &ctx, x, 4, NULL) == RT_ERR_INTERNAL);
    CHECK(strstr(rt_error_message(), "refused (test)") != NULL);
    rt_error_clear();
    /* Off: the backend's own forward, no calls. */
    CHECK_OK(rt_model_set_linear_forward(split, NULL, NULL));
    c.calls = 0;
    CHECK_OK(rt_model_forward(split, &ctx, x, 4, NULL));
    CHECK(c.calls == 0);
out:
    rt_model_free(split);
    rt_model_free(normal);
}

int main(void)
{
    test_deferred_linear_grads();
    test_caller_linear_forward();
    test_model_in_callers_memory();
    test_layers_on("cpu");
    test_resnet18();
    test_mlp();
    test_model_plan();
    test_config_errors();
    test_layers_on("naive");
    return CHECK_DONE();
}
