/* 2-D convolution through cuDNN, behind the backend's per-layer plan.
 *
 * A plan holds the layer's descriptors and, per batch size, the three
 * algorithms (forward, backward data, backward filter) that cudnnFind*
 * measured fastest among those allowed: with gpu.deterministic only
 * algorithms cuDNN marks deterministic, and with gpu.tf32 off only true
 * fp32 arithmetic (CUDNN_FMA_MATH; CUDNN_DEFAULT_MATH lets cuDNN use TF32,
 * as PyTorch's allow_tf32 does). The plan is made for the model's largest
 * batch, which sets the scratch the model provides; a smaller batch (the
 * last one of an epoch, evaluation) is measured once more on first use and
 * limited to that scratch, so it never needs more memory. cuDNN's legacy
 * calls are used: deprecated in cuDNN 9 but exported and documented as
 * usable; the graph API could replace them behind this same plan. */
#include <stdlib.h>
#include "backend/cuda/device.h"

/* Algorithms for one batch size. */
typedef struct conv_algos {
    int n;                                  /* 0: not measured yet */
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t fwd_bytes, bwd_data_bytes, bwd_filter_bytes;
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

static int allowed(int status, int determinism, size_t memory, size_t limit)
{
    if (status != CUDNN_STATUS_SUCCESS || memory > limit)
        return 0;
    return !rt_cuda_opts()->deterministic || determinism == CUDNN_DETERMINISTIC;
}

enum { FIND_MAX = 16 };

static rt_status find_forward(const rt_conv_plan *p, conv_algos *a, size_t limit)
{
    cudnnConvolutionFwdAlgoPerf_t r[FIND_MAX];
    int got = 0;
    RT_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(rt_cuda_cudnn(), p->x, p->w, p->conv,
                                                        p->y, FIND_MAX, &got, r),
                   "measuring convolution forward algorithms");
    for (int i = 0; i < got; i++)   /* sorted fastest first */
        if (allowed(r[i].status, r[i].determinism, r[i].memory, limit)) {
            a->fwd = r[i].algo;
            a->fwd_bytes = r[i].memory;
            return RT_OK;
        }
    return RT_ERROR(RT_ERR_UNSUPPORTED, "cuDNN has no %sconvolution forward algorithm for "
                    "%dx%dx%d -> %d (kernel %dx%d) within %zu bytes of scratch",
                    rt_cuda_opts()->deterministic ? "deterministic " : "", p->g.c, p->g.h,
                    p->g.w, p->g.k, p->g.kh, p->g.kw, limit);
}

static rt_status find_backward_data(const rt_conv_plan *p, conv_algos *a, size_t limit)
{
    cudnnConvolutionBwdDataAlgoPerf_t r[FIND_MAX];
    int got = 0;
    RT_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(rt_cuda_cudnn(), p->w, p->y,
                                                             p->conv, p->x, FIND_MAX, &got, r),
                   "measuring convolution backward-data algorithms");
    for (int i = 0; i < got; i++)
        if (allowed(r[i].status, r[i].determinism, r[i].memory, limit)) {
            a->bwd_data = r[i].algo;
            a->bwd_data_bytes = r[i].memory;
            return RT_OK;
        }
    return RT_ERROR(RT_ERR_UNSUPPORTED, "cuDNN has no %sconvolution backward-data algorithm "
                    "for %d -> %d channels within %zu bytes of scratch",
                    rt_cuda_opts()->deterministic ? "deterministic " : "", p->g.c, p->g.k,
                    limit);
}

static rt_status find_backward_filter(const rt_conv_plan *p, conv_algos *a, size_t limit)
{
    cudnnConvolutionBwdFilterAlgoPerf_t r[FIND_MAX];
    int got = 0;
    RT_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(rt_cuda_cudnn(), p->x, p->y,
                                                               p->conv, p->w, FIND_MAX, &got,
                                                               r),
                   "measuring convolution backward-filter algorithms");
    for (int i = 0; i < got; i++)
        if (allowed(r[i].status, r[i].determinism, r[i].memory, limit)) {
            a->bwd_filter = r[i].algo;
            a->bwd_filter_bytes = r[i].memory;
            return RT_OK;
        }
    return RT_ERROR(RT_ERR_UNSUPPORTED, "cuDNN has no %sconvolution backward-filter algorithm "
                    "for %d -> %d channels within %zu bytes of scratch",
                    rt_cuda_opts()->deterministic ? "deterministic " : "", p->g.c, p->g.k,
                    limit);
}

/* Measures the three algorithms for batch n, each within `limit` bytes. */
static rt_status find_algos(const rt_conv_plan *p, conv_algos *a, int n, size_t limit)
{
    RT_CHECK(set_batch(p, n));
    RT_CHECK(find_forward(p, a, limit));
    RT_CHECK(find_backward_data(p, a, limit));
    RT_CHECK(find_backward_filter(p, a, limit));
    a->n = n;
    return RT_OK;
}

/* The algorithms for batch n (measured on first use) with the descriptors
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
    /* More batch sizes than slots: measure into the last one again. */
    RT_CHECK(find_algos(p, &p->algos[ALGO_SLOTS - 1], n, p->scratch_bytes));
    *out = &p->algos[ALGO_SLOTS - 1];
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
    size_t m = a->fwd_bytes;
    if (a->bwd_data_bytes > m)
        m = a->bwd_data_bytes;
    return a->bwd_filter_bytes > m ? a->bwd_filter_bytes : m;
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
    RT_CUDNN_CHECK(cudnnConvolutionForward(h, &one, p->x, x, p->w, w, p->conv, a->fwd, scratch,
                                           a->fwd_bytes, &zero, p->y, y),
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
    RT_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p->x, x, p->y, dy, p->conv,
                                                  a->bwd_filter, scratch, a->bwd_filter_bytes,
                                                  &one, p->w, dw),
                   "convolution weight gradient");
    if (dx)
        RT_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p->w, w, p->y, dy, p->conv,
                                                    a->bwd_data, scratch, a->bwd_data_bytes,
                                                    &zero, p->x, dx),
                       "convolution input gradient");
    return RT_OK;
}
