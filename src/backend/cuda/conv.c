/* 2-D convolution through cuDNN, behind the backend's per-layer plan.
 *
 * A plan holds the layer's descriptors and, per batch size, the three
 * algorithms (forward, backward data, backward filter) with the math type
 * each runs in. With gpu.deterministic (the default) they are the first of
 * cuDNN's heuristic list that cuDNN marks deterministic: a fixed order, so
 * every run and every rank picks the same ones (measuring would let close
 * timings decide, and results differ between algorithms); without it, the
 * fastest cudnnFind* measures, as PyTorch's cudnn.benchmark. With gpu.tf32
 * off only true fp32 arithmetic runs (CUDNN_FMA_MATH; CUDNN_DEFAULT_MATH
 * lets cuDNN use TF32, as PyTorch's allow_tf32 does). The plan is made for the model's largest
 * batch, which sets the scratch the model provides; a smaller batch (the
 * last one of an epoch, evaluation) is measured once more on first use and
 * limited to that scratch, so it never needs more memory. cuDNN's legacy
 * calls are used: deprecated in cuDNN 9 but exported and documented as
 * usable; the graph API could replace them behind this same plan. */
#include <stdlib.h>
#include "backend/cuda/device.h"

/* One direction's algorithm: cuDNN's algorithm number, the math type it
 * runs with, and its workspace. */
typedef struct conv_choice {
    int algo;
    cudnnMathType_t math;
    size_t bytes;
} conv_choice;

enum { FORWARD, BACKWARD_DATA, BACKWARD_FILTER, DIRECTIONS };
static const char *const direction_names[DIRECTIONS] = {"forward", "backward-data",
                                                        "backward-filter"};

/* The three directions' algorithms for one batch size. */
typedef struct conv_algos {
    int n;                                  /* 0: not measured yet */
    conv_choice dir[DIRECTIONS];
} conv_algos;

enum { ALGO_SLOTS = 4 };   /* the full batch, the last batch, evaluation's */

struct rt_conv_plan {
    rt_conv_geom g;
    int max_batch;
    size_t scratch_bytes;                   /* what the model provides */
    cudnnTensorDescriptor_t x, y, bias;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    conv_algos algos[ALGO_SLOTS];
};

static rt_status set_batch(const rt_conv_plan *p, int n)
{
    const rt_conv_geom *g = &p->g;
    RT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, g->c,
                                              g->h, g->w), "describing a convolution's input");
    RT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, g->k,
                                              g->oh, g->ow), "describing a convolution's output");
    return RT_OK;
}

/* What cuDNN offers for one direction, in its order. */
typedef struct candidate {
    int algo;
    cudnnStatus_t status;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
} candidate;

enum { FIND_MAX = 16 };

#define COPY_CANDIDATES(r, got, c)                                                  \
    for (int i_ = 0; i_ < (got); i_++)                                               \
        (c)[i_] = (candidate){(int)(r)[i_].algo, (r)[i_].status, (r)[i_].determinism,  \
                              (r)[i_].mathType}

/* The candidates for `dir`: with gpu.deterministic, cuDNN's heuristics in
 * their fixed order, so that every run (and every rank) picks the same
 * algorithm, as PyTorch does without cudnn.benchmark; otherwise measured
 * by cudnnFind*, fastest first, as with cudnn.benchmark. */
static rt_status list_candidates(const rt_conv_plan *p, int dir, candidate *c, int *count)
{
    cudnnHandle_t h = rt_cuda_cudnn();
    int heuristic = rt_cuda_opts()->deterministic, got = 0;
    cudnnStatus_t s;
    if (dir == FORWARD) {
        cudnnConvolutionFwdAlgoPerf_t r[FIND_MAX];
        s = heuristic ? cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y,
                                                               FIND_MAX, &got, r)
                      : cudnnFindConvolutionForwardAlgorithm(h, p->x, p->w, p->conv, p->y,
                                                             FIND_MAX, &got, r);
        COPY_CANDIDATES(r, got, c);
    } else if (dir == BACKWARD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t r[FIND_MAX];
        s = heuristic ? cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x,
                                                                    FIND_MAX, &got, r)
                      : cudnnFindConvolutionBackwardDataAlgorithm(h, p->w, p->y, p->conv, p->x,
                                                                  FIND_MAX, &got, r);
        COPY_CANDIDATES(r, got, c);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t r[FIND_MAX];
        s = heuristic ? cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv,
                                                                      p->w, FIND_MAX, &got, r)
                      : cudnnFindConvolutionBackwardFilterAlgorithm(h, p->x, p->y, p->conv,
                                                                    p->w, FIND_MAX, &got, r);
        COPY_CANDIDATES(r, got, c);
    }
    RT_CUDNN_CHECK(s, "listing convolution algorithms");
    *count = got;
    return RT_OK;
}

/* cuDNN's workspace for algorithm `algo` of `dir` with the descriptor's
 * current math type. */
static cudnnStatus_t workspace_of(const rt_conv_plan *p, int dir, int algo, size_t *bytes)
{
    cudnnHandle_t h = rt_cuda_cudnn();
    if (dir == FORWARD)
        return cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y,
                                                       (cudnnConvolutionFwdAlgo_t)algo, bytes);
    if (dir == BACKWARD_DATA)
        return cudnnGetConvolutionBackwardDataWorkspaceSize(
            h, p->w, p->y, p->conv, p->x, (cudnnConvolutionBwdDataAlgo_t)algo, bytes);
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(
        h, p->x, p->y, p->conv, p->w, (cudnnConvolutionBwdFilterAlgo_t)algo, bytes);
}

/* The math type a candidate runs with: its own with gpu.tf32; otherwise
 * true fp32 (CUDNN_FMA_MATH), and never a tensor-op candidate. Returns 0
 * when the candidate cannot run in the requested mode. */
static int run_math(cudnnMathType_t offered, cudnnMathType_t *math)
{
    if (rt_cuda_opts()->tf32) {
        *math = offered;
        return 1;
    }
    *math = CUDNN_FMA_MATH;
    return offered == CUDNN_FMA_MATH || offered == CUDNN_DEFAULT_MATH;
}

/* The first candidate of `dir` that succeeds, is deterministic when asked,
 * runs in the requested math mode and fits `limit` bytes of workspace (as
 * cuDNN sizes it for the math type it will run with). */
static rt_status choose(const rt_conv_plan *p, int dir, size_t limit, conv_choice *out)
{
    candidate c[FIND_MAX];
    int count = 0;
    RT_CHECK(list_candidates(p, dir, c, &count));
    int deterministic = rt_cuda_opts()->deterministic;
    for (int i = 0; i < count; i++) {
        cudnnMathType_t math;
        size_t bytes = 0;
        if (c[i].status != CUDNN_STATUS_SUCCESS || !run_math(c[i].math, &math) ||
            (deterministic && c[i].determinism != CUDNN_DETERMINISTIC))
            continue;
        RT_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, math), "setting a math type");
        if (workspace_of(p, dir, c[i].algo, &bytes) != CUDNN_STATUS_SUCCESS || bytes > limit)
            continue;
        *out = (conv_choice){c[i].algo, math, bytes};
        return RT_OK;
    }
    return RT_ERROR(RT_ERR_UNSUPPORTED, "cuDNN has no %sconvolution %s algorithm for "
                    "%dx%dx%d -> %d (kernel %dx%d)%s within %zu bytes of scratch: set "
                    "gpu.deterministic = false or gpu.tf32 = true to allow more",
                    deterministic ? "deterministic " : "", direction_names[dir], p->g.c,
                    p->g.h, p->g.w, p->g.k, p->g.kh, p->g.kw,
                    rt_cuda_opts()->tf32 ? "" : " in fp32", limit);
}

/* The three algorithms for batch n, each within `limit` bytes, into *a only
 * when all three were found. */
static rt_status find_algos(const rt_conv_plan *p, conv_algos *a, int n, size_t limit)
{
    conv_algos found = {.n = n};
    RT_CHECK(set_batch(p, n));
    for (int dir = 0; dir < DIRECTIONS; dir++)
        RT_CHECK(choose(p, dir, limit, &found.dir[dir]));
    *a = found;
    return RT_OK;
}

/* The algorithms for batch n (found on first use) with the descriptors
 * set for n. The plan is const to the layers; its descriptors and cache
 * are the backend's own state. */
static rt_status algos_for(const rt_conv_plan *cp, int n, const conv_algos **out)
{
    rt_conv_plan *p = (rt_conv_plan *)cp;
    for (int i = 0; i < ALGO_SLOTS; i++) {
        if (p->algos[i].n == n) {
            RT_CHECK(set_batch(p, n));
            *out = &p->algos[i];
            return RT_OK;
        }
        if (p->algos[i].n == 0) {
            RT_CHECK(find_algos(p, &p->algos[i], n, p->scratch_bytes));
            *out = &p->algos[i];
            return RT_OK;
        }
    }
    /* More batch sizes than slots: find into the last one again. */
    RT_CHECK(find_algos(p, &p->algos[ALGO_SLOTS - 1], n, p->scratch_bytes));
    *out = &p->algos[ALGO_SLOTS - 1];
    return RT_OK;
}

/* The descriptor runs direction d's algorithm in its math type. */
static rt_status use_math(const rt_conv_plan *p, const conv_choice *d)
{
    RT_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, d->math), "setting a math type");
    return RT_OK;
}

static rt_status describe(rt_conv_plan *p)
{
    const rt_conv_geom *g = &p->g;
    RT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x), "creating a tensor descriptor");
    RT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y), "creating a tensor descriptor");
    RT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->bias), "creating a tensor descriptor");
    RT_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w), "creating a filter descriptor");
    RT_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv), "creating a convolution "
                   "descriptor");
    RT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                              g->k, 1, 1), "describing a convolution's bias");
    RT_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g->k,
                                              g->c, g->kh, g->kw),
                   "describing a convolution's weights");
    /* Cross-correlation, as PyTorch's Conv2d. */
    RT_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, g->pad, g->pad, g->stride,
                                                   g->stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                                   CUDNN_DATA_FLOAT),
                   "describing a convolution");
    RT_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, rt_cuda_opts()->tf32
                                                            ? CUDNN_DEFAULT_MATH
                                                            : CUDNN_FMA_MATH),
                   "setting a convolution's math type");
    return RT_OK;
}

static size_t largest(const conv_algos *a)
{
    size_t m = 0;
    for (int dir = 0; dir < DIRECTIONS; dir++)
        if (a->dir[dir].bytes > m)
            m = a->dir[dir].bytes;
    return m;
}

/* Scratch the full batch may take for its algorithms (cuDNN's own limit). */
#define PLAN_SCRATCH_LIMIT ((size_t)1 << 30)

rt_status rt_cuda_conv2d_plan(rt_conv_plan **out, const rt_conv_geom *g, int max_batch,
                              size_t *scratch_floats)
{
    *out = NULL;
    rt_conv_plan *p = calloc(1, sizeof *p);
    if (!p)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory for a convolution plan");
    p->g = *g;
    p->max_batch = max_batch;
    rt_status st = describe(p);
    if (st == RT_OK)
        st = find_algos(p, &p->algos[0], max_batch, PLAN_SCRATCH_LIMIT);
    if (st != RT_OK) {
        rt_cuda_conv2d_plan_free(p);
        return st;
    }
    p->scratch_bytes = largest(&p->algos[0]);
    *scratch_floats = (p->scratch_bytes + sizeof(float) - 1) / sizeof(float);
    *out = p;
    return RT_OK;
}

void rt_cuda_conv2d_plan_free(rt_conv_plan *p)
{
    if (!p)
        return;
    if (p->x)
        cudnnDestroyTensorDescriptor(p->x);
    if (p->y)
        cudnnDestroyTensorDescriptor(p->y);
    if (p->bias)
        cudnnDestroyTensorDescriptor(p->bias);
    if (p->w)
        cudnnDestroyFilterDescriptor(p->w);
    if (p->conv)
        cudnnDestroyConvolutionDescriptor(p->conv);
    free(p);
}

rt_status rt_cuda_conv2d_forward(const rt_conv_plan *p, float *y, const float *x,
                                 const float *w, const float *b, float *scratch, int n)
{
    if (n <= 0)
        return RT_OK;
    const conv_algos *a;
    RT_CHECK(algos_for(p, n, &a));
    const float one = 1.0f, zero = 0.0f;
    cudnnHandle_t h = rt_cuda_cudnn();
    const conv_choice *f = &a->dir[FORWARD];
    RT_CHECK(use_math(p, f));
    RT_CUDNN_CHECK(cudnnConvolutionForward(h, &one, p->x, x, p->w, w, p->conv,
                                           (cudnnConvolutionFwdAlgo_t)f->algo, scratch,
                                           f->bytes, &zero, p->y, y),
                   "convolution forward");
    if (b)
        RT_CUDNN_CHECK(cudnnAddTensor(h, &one, p->bias, b, &one, p->y, y), "convolution bias");
    return RT_OK;
}

rt_status rt_cuda_conv2d_backward(const rt_conv_plan *p, float *dx, float *dw, float *db,
                                  const float *dy, const float *x, const float *w,
                                  float *scratch, int n)
{
    if (n <= 0)
        return RT_OK;
    const conv_algos *a;
    RT_CHECK(algos_for(p, n, &a));
    const float one = 1.0f, zero = 0.0f;
    cudnnHandle_t h = rt_cuda_cudnn();
    /* Parameter gradients are added to (beta 1); dx is overwritten. */
    if (db)
        RT_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, p->y, dy, &one, p->bias, db),
                       "convolution bias gradient");
    const conv_choice *bf = &a->dir[BACKWARD_FILTER], *bd = &a->dir[BACKWARD_DATA];
    RT_CHECK(use_math(p, bf));
    RT_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p->x, x, p->y, dy, p->conv,
                                                  (cudnnConvolutionBwdFilterAlgo_t)bf->algo,
                                                  scratch, bf->bytes, &one, p->w, dw),
                   "convolution weight gradient");
    if (dx) {
        RT_CHECK(use_math(p, bd));
        RT_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p->w, w, p->y, dy, p->conv,
                                                    (cudnnConvolutionBwdDataAlgo_t)bd->algo,
                                                    scratch, bd->bytes, &zero, p->x, dx),
                       "convolution input gradient");
    }
    return RT_OK;
}
