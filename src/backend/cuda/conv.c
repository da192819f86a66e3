/* 2-D convolution through cuDNN, behind the backend's per-layer plan.
 *
 * A plan holds the layer's descriptors and, per batch size, the three
 * algorithms (forward, backward data, backward filter) with the math type
 * each runs in. With gpu.deterministic (the default) they are the first of
 * cuDNN's heuristic list that cuDNN marks deterministic: a fixed order, so
 * every run and every rank picks the same ones (measuring would let close
 * timings decide, and results differ between algorithms); without it, the
 * fastest of cudnnFind*'s candidates, timed again in the very calls this
 * file makes (below, "Measuring"), as PyTorch's cudnn.benchmark. With gpu.tf32
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

/* The tensors of one call of a direction: forward reads x, w and writes y;
 * backward-data reads dy, w and writes dx; backward-filter reads x, dy and
 * adds into dw. */
typedef struct conv_tensors {
    const float *x, *w, *dy;
    float *y, *dx, *dw;
    void *scratch;
} conv_tensors;

/* Direction `dir` with algorithm `c`, as the layer runs it: the forward
 * output and dx are overwritten (beta 0), the weight gradient is added to
 * (beta 1). The descriptor must already be in c's math type. */
static cudnnStatus_t call_direction(const rt_conv_plan *p, int dir, const conv_choice *c,
                                    const conv_tensors *t)
{
    const float one = 1.0f, zero = 0.0f;
    cudnnHandle_t h = rt_cuda_cudnn();
    if (dir == FORWARD)
        return cudnnConvolutionForward(h, &one, p->x, t->x, p->w, t->w, p->conv,
                                       (cudnnConvolutionFwdAlgo_t)c->algo, t->scratch, c->bytes,
                                       &zero, p->y, t->y);
    if (dir == BACKWARD_DATA)
        return cudnnConvolutionBackwardData(h, &one, p->w, t->w, p->y, t->dy, p->conv,
                                            (cudnnConvolutionBwdDataAlgo_t)c->algo, t->scratch,
                                            c->bytes, &zero, p->x, t->dx);
    return cudnnConvolutionBackwardFilter(h, &one, p->x, t->x, p->y, t->dy, p->conv,
                                          (cudnnConvolutionBwdFilterAlgo_t)c->algo, t->scratch,
                                          c->bytes, &one, p->w, t->dw);
}

/* ---- measuring (gpu.deterministic = false) -------------------------------------------
 * cudnnFind* times each algorithm on buffers of its own with alpha 1 and
 * beta 0. The weight gradient here is added to (beta 1), and with beta 1
 * cuDNN 9.19 ran much slower kernels for some of Find's first choices on an
 * H200 (conv1's weight gradient: 1.2 ms under ncu for a job of 157 MFLOP).
 * So Find's candidates are timed again, each in the call the layer makes
 * (call_direction) on buffers of the layer's sizes, and the fastest is
 * kept. Each runs once to warm up, then TIMED_CALLS times between two
 * events. Buffers hold non-zero constants: the arithmetic of these
 * kernels does not depend on the values, and zeros could take shortcuts.
 * Anything that fails here (memory for a large workspace, a candidate
 * cuDNN refuses) only drops that candidate; with none timed, cuDNN's order
 * decides as before. */
enum { TIMED_CALLS = 3 };

/* The buffers and events one layer's candidates are timed with. */
typedef struct timing_set {
    float *x, *w, *dy, *y, *dx, *dw;
    void *scratch;
    size_t scratch_bytes;   /* what scratch holds */
    cudaEvent_t start, stop;
    int events;             /* start and stop were created */
} timing_set;

static void timing_set_free(timing_set *ts)
{
    float *buffers[] = {ts->x, ts->w, ts->dy, ts->y, ts->dx, ts->dw};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        rt_cuda_free(buffers[i]);
    rt_cuda_free(ts->scratch);
    if (ts->events) {
        cudaEventDestroy(ts->start);
        cudaEventDestroy(ts->stop);
    }
    *ts = (timing_set){0};
}

/* A device buffer of `count` floats, each `value`. */
static rt_status timing_buffer(float **out, size_t count, float value)
{
    RT_CHECK(rt_cuda_alloc((void **)out, count * sizeof **out, "timing convolution algorithms"));
    return rt_cuda_fill(*out, value, count);
}

/* The layer's tensors for batch n, and the two events. */
static rt_status timing_set_open(timing_set *ts, const rt_conv_plan *p, int n)
{
    const rt_conv_geom *g = &p->g;
    const size_t nx = (size_t)n * g->c * g->h * g->w, ny = (size_t)n * g->k * g->oh * g->ow;
    const size_t nw = (size_t)g->k * g->c * g->kh * g->kw;
    *ts = (timing_set){0};
    rt_status st = timing_buffer(&ts->x, nx, 0.5f);
    if (st == RT_OK)
        st = timing_buffer(&ts->w, nw, 0.25f);
    if (st == RT_OK)
        st = timing_buffer(&ts->dy, ny, 0.125f);
    if (st == RT_OK)
        st = timing_buffer(&ts->y, ny, 1.0f);
    if (st == RT_OK)
        st = timing_buffer(&ts->dx, nx, 1.0f);
    if (st == RT_OK)
        st = timing_buffer(&ts->dw, nw, 1.0f);
    if (st == RT_OK && cudaEventCreate(&ts->start) == cudaSuccess) {
        if (cudaEventCreate(&ts->stop) == cudaSuccess)
            ts->events = 1;
        else
            cudaEventDestroy(ts->start);
    }
    if (st == RT_OK && !ts->events)
        st = rt_cuda_status(cudaGetLastError(), "creating timing events", __FILE__, __LINE__);
    if (st != RT_OK)
        timing_set_free(ts);
    return st;
}

/* Milliseconds for TIMED_CALLS calls of `c`, or a negative value when the
 * candidate cannot run here (no memory for its workspace, cuDNN refuses).
 * Event errors are real failures. */
static rt_status time_candidate(const rt_conv_plan *p, int dir, const conv_choice *c,
                                timing_set *ts, float *ms)
{
    *ms = -1.0f;
    if (c->bytes > ts->scratch_bytes) {
        rt_cuda_free(ts->scratch);
        ts->scratch = NULL;
        ts->scratch_bytes = 0;
        rt_status st = rt_cuda_alloc(&ts->scratch, c->bytes, "timing convolution algorithms");
        if (st == RT_ERR_NOMEM) {   /* too large to try here: not a candidate */
            rt_error_clear();
            return RT_OK;
        }
        RT_CHECK(st);
        ts->scratch_bytes = c->bytes;
    }
    const conv_tensors t = {.x = ts->x, .w = ts->w, .dy = ts->dy, .y = ts->y, .dx = ts->dx,
                            .dw = ts->dw, .scratch = ts->scratch};
    RT_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, c->math), "setting a math type");
    cudnnStatus_t calls = call_direction(p, dir, c, &t);   /* the warm-up */
    RT_CUDA_CHECK(cudaEventRecord(ts->start, rt_cuda_stream()), "timing a convolution");
    for (int i = 0; i < TIMED_CALLS && calls == CUDNN_STATUS_SUCCESS; i++)
        calls = call_direction(p, dir, c, &t);
    RT_CUDA_CHECK(cudaEventRecord(ts->stop, rt_cuda_stream()), "timing a convolution");
    RT_CUDA_CHECK(cudaEventSynchronize(ts->stop), "timing a convolution");
    if (calls != CUDNN_STATUS_SUCCESS) {
        cudaGetLastError();   /* a refused candidate leaves nothing for the next launch check */
        return RT_OK;
    }
    RT_CUDA_CHECK(cudaEventElapsedTime(ms, ts->start, ts->stop), "timing a convolution");
    return RT_OK;
}

/* Of the candidates of `dir` that succeed, are deterministic when asked,
 * run in the requested math mode and fit `limit` bytes of workspace (as
 * cuDNN sizes it for the math type they will run with): the first, or with
 * `timing` the fastest timed (the first when none could be timed). */
static rt_status choose(const rt_conv_plan *p, int dir, size_t limit, timing_set *timing,
                        conv_choice *out)
{
    candidate c[FIND_MAX];
    int count = 0;
    RT_CHECK(list_candidates(p, dir, c, &count));
    int deterministic = rt_cuda_opts()->deterministic, found = 0;
    float best_ms = -1.0f;
    for (int i = 0; i < count; i++) {
        cudnnMathType_t math;
        size_t bytes = 0;
        if (c[i].status != CUDNN_STATUS_SUCCESS || !run_math(c[i].math, &math) ||
            (deterministic && c[i].determinism != CUDNN_DETERMINISTIC))
            continue;
        RT_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, math), "setting a math type");
        if (workspace_of(p, dir, c[i].algo, &bytes) != CUDNN_STATUS_SUCCESS || bytes > limit)
            continue;
        const conv_choice here = {c[i].algo, math, bytes};
        if (!timing) {   /* cuDNN's order decides: the first usable one */
            *out = here;
            return RT_OK;
        }
        float ms;
        RT_CHECK(time_candidate(p, dir, &here, timing, &ms));
        if (!found || (ms >= 0.0f && (best_ms < 0.0f || ms < best_ms))) {
            *out = here;
            best_ms = ms;
        }
        found = 1;
    }
    if (found)
        return RT_OK;
    return RT_ERROR(RT_ERR_UNSUPPORTED, "cuDNN has no %sconvolution %s algorithm for "
                    "%dx%dx%d -> %d (kernel %dx%d)%s within %zu bytes of scratch: set "
                    "gpu.deterministic = false or gpu.tf32 = true to allow more",
                    deterministic ? "deterministic " : "", direction_names[dir], p->g.c,
                    p->g.h, p->g.w, p->g.k, p->g.kh, p->g.kw,
                    rt_cuda_opts()->tf32 ? "" : " in fp32", limit);
}

/* For a smaller batch than the plan's: the full batch's algorithm of
 * `dir`, when it runs at this batch within `limit` bytes. cuDNN's list for
 * the smaller batch may hold nothing that fits the scratch sized for the
 * full one (seen on an H200: deterministic backward-filter, 512 -> 512
 * channels 3x3 at 1x1, full batch 256, last batch 96), while the full
 * batch's own algorithm still does. Returns 0 when it does not. */
static int full_batch_choice(const rt_conv_plan *p, int dir, size_t limit, conv_choice *out)
{
    const conv_choice *full = &p->algos[0].dir[dir];
    size_t bytes = 0;
    if (p->algos[0].n == 0 ||
        cudnnSetConvolutionMathType(p->conv, full->math) != CUDNN_STATUS_SUCCESS ||
        workspace_of(p, dir, full->algo, &bytes) != CUDNN_STATUS_SUCCESS || bytes > limit)
        return 0;
    *out = (conv_choice){full->algo, full->math, bytes};
    return 1;
}

/* The three algorithms for batch n, each within `limit` bytes, into *a only
 * when all three were found. */
static rt_status find_algos(const rt_conv_plan *p, conv_algos *a, int n, size_t limit)
{
    conv_algos found = {.n = n};
    RT_CHECK(set_batch(p, n));
    timing_set timing, *measure = NULL;
    if (!rt_cuda_opts()->deterministic) {
        rt_status opened = timing_set_open(&timing, p, n);
        if (opened == RT_OK)
            measure = &timing;
        else if (opened == RT_ERR_NOMEM)
            rt_error_clear();   /* without the memory for it, cuDNN's order decides */
        else
            return opened;
    }
    rt_status st = RT_OK;
    for (int dir = 0; dir < DIRECTIONS && st == RT_OK; dir++) {
        st = choose(p, dir, limit, measure, &found.dir[dir]);
        if (st == RT_ERR_UNSUPPORTED && full_batch_choice(p, dir, limit, &found.dir[dir])) {
            rt_error_clear();
            st = RT_OK;
        }
    }
    if (measure)
        timing_set_free(measure);
    RT_CHECK(st);
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
    const float one = 1.0f;
    const conv_choice *f = &a->dir[FORWARD];
    const conv_tensors t = {.x = x, .w = w, .y = y, .scratch = scratch};
    RT_CHECK(use_math(p, f));
    RT_CUDNN_CHECK(call_direction(p, FORWARD, f, &t), "convolution forward");
    if (b)
        RT_CUDNN_CHECK(cudnnAddTensor(rt_cuda_cudnn(), &one, p->bias, b, &one, p->y, y),
                       "convolution bias");
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
    const float one = 1.0f;
    /* Parameter gradients are added to (beta 1); dx is overwritten. */
    if (db)
        RT_CUDNN_CHECK(cudnnConvolutionBackwardBias(rt_cuda_cudnn(), &one, p->y, dy, &one,
                                                    p->bias, db),
                       "convolution bias gradient");
    const conv_choice *bf = &a->dir[BACKWARD_FILTER], *bd = &a->dir[BACKWARD_DATA];
    const conv_tensors t = {.x = x, .w = w, .dy = dy, .dx = dx, .dw = dw, .scratch = scratch};
    RT_CHECK(use_math(p, bf));
    RT_CUDNN_CHECK(call_direction(p, BACKWARD_FILTER, bf, &t), "convolution weight gradient");
    if (dx) {
        RT_CHECK(use_math(p, bd));
        RT_CUDNN_CHECK(call_direction(p, BACKWARD_DATA, bd, &t), "convolution input gradient");
    }
    return RT_OK;
}
