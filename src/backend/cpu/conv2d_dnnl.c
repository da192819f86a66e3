/* 2-D convolution on the CPU through oneDNN (./configure --with-dnnl).
 *
 * A plan holds, per batch size it has met, the three oneDNN primitives of
 * its layer: forward (with bias), backward data and backward weights. They are made on first use of a batch size and kept, up to
 * DNNL_CACHE_BATCHES sizes per plan (training, the short last batch of an
 * epoch, evaluation); a further size replaces the one used least recently.
 *
 * Layouts. rtrain's tensors are plain NCHW (data) and OIHW (weights); the
 * primitives are created with format_tag any, so that oneDNN picks its
 * blocked layouts, and every argument whose chosen layout differs from the
 * plain one goes through a reorder into (or out of) a buffer of the entry.
 * Where the layouts agree the user pointer is given to the primitive as is.
 *
 * Backend contract (rtrain/backend.h): dw and db are added to, dx is
 * overwritten and skipped when NULL. oneDNN's backward weights overwrites
 * its output, so dw is computed into the caller's scratch (the plan asks
 * for k*c*kh*kw floats) and added. db is summed in double by the im2col
 * path's loop (rt_cpu_conv_bias_grad), not by oneDNN: a convolution before
 * BatchNorm has a bias gradient of terms that cancel, and oneDNN's float
 * sums left it with errors of 3e-6 against its inputs' scale (double:
 * 4e-8). A layer without bias passes
 * b == NULL; forward then adds the plan's zero vector (x + 0 is x) so that
 * one primitive serves both.
 *
 * Threads and determinism. oneDNN runs on OpenMP; before every creation
 * and execution the calling thread's OpenMP team size is set to the
 * backend's thread count (rt_cpu_threads), and the thread count is part of
 * an entry's key, since oneDNN chooses its implementation and its work
 * split by the threads available when a primitive is created. For a fixed
 * thread count oneDNN's CPU primitives give the same bits from run to run
 * (their splits depend on sizes and thread count only), which
 * tests/unit/test_kernels checks on every case.
 *
 * One engine and one stream serve the whole process; they are made once
 * and live until exit. Every oneDNN status is checked and becomes an
 * rt_status naming the call. */
#include <pthread.h>
#include <string.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include "backend/host.h"
#include "backend/cpu/conv2d_dnnl.h"
#include "backend/cpu/parallel.h"

#define DNNL_CACHE_BATCHES 4

/* One tensor argument of a primitive: the caller's plain memory (its
 * pointer set per call) and, when the primitive wants another layout, a
 * buffer in that layout with the reorder between the two. */
typedef struct dnnl_arg {
    dnnl_memory_t user;
    dnnl_memory_t prim;          /* == user when the layouts agree */
    dnnl_primitive_t reorder;    /* user -> prim (inputs), prim -> user (outputs) */
} dnnl_arg;

/* The primitives of one batch size. */
typedef struct dnnl_entry {
    int n, threads;              /* key; n == 0: empty slot */
    unsigned long last_use;
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    dnnl_arg f_src, f_w, f_b, f_dst;
    dnnl_arg d_ddst, d_w, d_dsrc;
    dnnl_arg w_src, w_ddst, w_dw;
} dnnl_entry;

struct rt_cpu_dnnl_conv {
    dnnl_entry cache[DNNL_CACHE_BATCHES];
    unsigned long uses;
    float *zeros;                /* [k]: the bias of a layer without one */
};

/* ---- errors, engine, stream ---------------------------------------------------------- */

const char *rt_cpu_dnnl_status_text(int st)
{
    static const char *const text[] = {
        [dnnl_success] = "success",
        [dnnl_out_of_memory] = "out of memory",
        [dnnl_invalid_arguments] = "invalid arguments",
        [dnnl_unimplemented] = "no implementation for these arguments",
        [dnnl_iterator_ends] = "iterator ends",
        [dnnl_runtime_error] = "runtime error",
        [dnnl_not_required] = "not required",
    };
    if ((unsigned)st < sizeof text / sizeof text[0] && text[st])
        return text[st];
    return "unknown status";
}

static rt_status dnnl_fail(dnnl_status_t st, const char *call, const char *file, int line)
{
    rt_status code = st == dnnl_out_of_memory ? RT_ERR_NOMEM
                   : st == dnnl_unimplemented ? RT_ERR_UNSUPPORTED : RT_ERR_INTERNAL;
    return rt_error_set(code, file, line, "oneDNN convolution: %s: %s (status %d)", call,
                        rt_cpu_dnnl_status_text(st), (int)st);
}

#define DNNL_TRY(call)                                                     \
    do {                                                                   \
        dnnl_status_t st_ = (call);                                        \
        if (st_ != dnnl_success)                                           \
            return dnnl_fail(st_, #call, __FILE__, __LINE__);              \
    } while (0)

static dnnl_engine_t dnnl_eng;
static dnnl_stream_t dnnl_strm;
static dnnl_status_t dnnl_init_status;
static pthread_once_t dnnl_once = PTHREAD_ONCE_INIT;

static void dnnl_init(void)
{
    dnnl_init_status = dnnl_engine_create(&dnnl_eng, dnnl_cpu, 0);
    if (dnnl_init_status == dnnl_success)
        dnnl_init_status = dnnl_stream_create(&dnnl_strm, dnnl_eng, dnnl_stream_default_flags);
}

static rt_status dnnl_ready(void)
{
    pthread_once(&dnnl_once, dnnl_init);
    DNNL_TRY(dnnl_init_status);
    return RT_OK;
}

/* Runs primitive p with the kernel threads' signals blocked (parallel.h):
 * OpenMP's threads, started by a primitive, inherit the blocked mask and
 * keep it. A signal that arrives meanwhile waits until the mask is back. */
static rt_status dnnl_run(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args)
{
    sigset_t kernel_signals, old;
    rt_cpu_kernel_signals(&kernel_signals);
    pthread_sigmask(SIG_BLOCK, &kernel_signals, &old);
    dnnl_status_t st = dnnl_primitive_execute(p, dnnl_strm, nargs, args);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (st != dnnl_success)
        return dnnl_fail(st, "dnnl_primitive_execute", __FILE__, __LINE__);
    return RT_OK;
}

/* ---- arguments -------------------------------------------------------------------------- */

/* Binds argument a of pd (query `what`, index `idx`) to plain memory of
 * descriptor user_md; `out`: the primitive writes it. */
static rt_status arg_init(dnnl_arg *a, const dnnl_memory_desc_t *user_md,
                          const_dnnl_primitive_desc_t pd, dnnl_query_t what, int idx, int out)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, what, idx);
    DNNL_TRY(dnnl_memory_create(&a->user, user_md, dnnl_eng, DNNL_MEMORY_NONE));
    if (!md || dnnl_memory_desc_equal(md, user_md)) {
        a->prim = a->user;
        return RT_OK;
    }
    DNNL_TRY(dnnl_memory_create(&a->prim, md, dnnl_eng, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd;
    if (out)
        DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, md, dnnl_eng, user_md, dnnl_eng, NULL));
    else
        DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, user_md, dnnl_eng, md, dnnl_eng, NULL));
    dnnl_status_t st = dnnl_primitive_create(&a->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    DNNL_TRY(st);
    return RT_OK;
}

static void arg_free(dnnl_arg *a)
{
    if (a->reorder)
        dnnl_primitive_destroy(a->reorder);
    if (a->prim && a->prim != a->user)
        dnnl_memory_destroy(a->prim);
    if (a->user)
        dnnl_memory_destroy(a->user);
    memset(a, 0, sizeof *a);
}

static rt_status run_reorder(dnnl_primitive_t r, dnnl_memory_t src, dnnl_memory_t dst)
{
    dnnl_exec_arg_t args[] = { { DNNL_ARG_SRC, src }, { DNNL_ARG_DST, dst } };
    RT_CHECK(dnnl_run(r, 2, args));
    return RT_OK;
}

/* Input: points the user memory at ptr and brings it into the primitive's layout. */
static rt_status arg_in(dnnl_arg *a, const float *ptr)
{
    DNNL_TRY(dnnl_memory_set_data_handle(a->user, (void *)ptr));
    if (a->reorder)
        RT_CHECK(run_reorder(a->reorder, a->user, a->prim));
    return RT_OK;
}

/* Output, before the primitive runs: where the plain result goes. */
static rt_status arg_out_bind(dnnl_arg *a, float *ptr)
{
    DNNL_TRY(dnnl_memory_set_data_handle(a->user, ptr));
    return RT_OK;
}

/* Output, after the primitive ran: back to the plain layout. */
static rt_status arg_out_done(dnnl_arg *a)
{
    if (a->reorder)
        RT_CHECK(run_reorder(a->reorder, a->prim, a->user));
    return RT_OK;
}

/* ---- primitives of one batch size ------------------------------------------------------- */

typedef struct conv_mds {
    dnnl_memory_desc_t src, w, b, dst;        /* plain: nchw, oihw, x, nchw */
    dnnl_memory_desc_t src_any, w_any, dst_any;
    dnnl_dims_t strides, pad_l, pad_r;
} conv_mds;

static rt_status mds_init(conv_mds *m, const rt_conv_geom *g, int n)
{
    dnnl_dims_t src = { n, g->c, g->h, g->w }, w = { g->k, g->c, g->kh, g->kw };
    dnnl_dims_t b = { g->k }, dst = { n, g->k, g->oh, g->ow };
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->src, 4, src, dnnl_f32, dnnl_nchw));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->w, 4, w, dnnl_f32, dnnl_oihw));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->b, 1, b, dnnl_f32, dnnl_x));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->dst, 4, dst, dnnl_f32, dnnl_nchw));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->src_any, 4, src, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->w_any, 4, w, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->dst_any, 4, dst, dnnl_f32, dnnl_format_tag_any));
    /* rtrain's output size rounds down like oneDNN's, so the right padding
     * equals the left one even where the last rows of the input are not
     * reached (stride 2 on an even size without padding) */
    m->strides[0] = m->strides[1] = g->stride;
    m->pad_l[0] = m->pad_l[1] = m->pad_r[0] = m->pad_r[1] = g->pad;
    return RT_OK;
}

/* Makes the primitive of descriptor desc (hint: the forward one). */
static rt_status prim_make(dnnl_primitive_t *prim, dnnl_primitive_desc_t *pd, const void *desc,
                           const_dnnl_primitive_desc_t hint)
{
    DNNL_TRY(dnnl_primitive_desc_create(pd, desc, NULL, dnnl_eng, hint));
    DNNL_TRY(dnnl_primitive_create(prim, *pd));
    return RT_OK;
}

static rt_status entry_fwd(dnnl_entry *e, const conv_mds *m, dnnl_primitive_desc_t *fpd)
{
    dnnl_convolution_desc_t d;
    DNNL_TRY(dnnl_convolution_forward_desc_init(&d, dnnl_forward_training,
                                                dnnl_convolution_direct, &m->src_any,
                                                &m->w_any, &m->b, &m->dst_any, m->strides,
                                                m->pad_l, m->pad_r));
    RT_CHECK(prim_make(&e->fwd, fpd, &d, NULL));
    RT_CHECK(arg_init(&e->f_src, &m->src, *fpd, dnnl_query_src_md, 0, 0));
    RT_CHECK(arg_init(&e->f_w, &m->w, *fpd, dnnl_query_weights_md, 0, 0));
    RT_CHECK(arg_init(&e->f_b, &m->b, *fpd, dnnl_query_weights_md, 1, 0));
    RT_CHECK(arg_init(&e->f_dst, &m->dst, *fpd, dnnl_query_dst_md, 0, 1));
    return RT_OK;
}

static rt_status entry_bwd(dnnl_entry *e, const conv_mds *m, const_dnnl_primitive_desc_t fpd)
{
    dnnl_convolution_desc_t d;
    dnnl_primitive_desc_t pd = NULL;
    DNNL_TRY(dnnl_convolution_backward_data_desc_init(&d, dnnl_convolution_direct,
                                                      &m->src_any, &m->w_any, &m->dst_any,
                                                      m->strides, m->pad_l, m->pad_r));
    rt_status s = prim_make(&e->bwd_data, &pd, &d, fpd);
    if (s == RT_OK)
        s = arg_init(&e->d_ddst, &m->dst, pd, dnnl_query_diff_dst_md, 0, 0);
    if (s == RT_OK)
        s = arg_init(&e->d_w, &m->w, pd, dnnl_query_weights_md, 0, 0);
    if (s == RT_OK)
        s = arg_init(&e->d_dsrc, &m->src, pd, dnnl_query_diff_src_md, 0, 1);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    RT_CHECK(s);
    pd = NULL;
    DNNL_TRY(dnnl_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct,
                                                         &m->src_any, &m->w_any, NULL,
                                                         &m->dst_any, m->strides, m->pad_l,
                                                         m->pad_r));
    s = prim_make(&e->bwd_weights, &pd, &d, fpd);
    if (s == RT_OK)
        s = arg_init(&e->w_src, &m->src, pd, dnnl_query_src_md, 0, 0);
    if (s == RT_OK)
        s = arg_init(&e->w_ddst, &m->dst, pd, dnnl_query_diff_dst_md, 0, 0);
    if (s == RT_OK)
        s = arg_init(&e->w_dw, &m->w, pd, dnnl_query_diff_weights_md, 0, 1);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    RT_CHECK(s);
    return RT_OK;
}

static void entry_free(dnnl_entry *e)
{
    dnnl_primitive_t prims[] = { e->fwd, e->bwd_data, e->bwd_weights };
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
        if (prims[i])
            dnnl_primitive_destroy(prims[i]);
    dnnl_arg *args[] = { &e->f_src, &e->f_w, &e->f_b, &e->f_dst, &e->d_ddst, &e->d_w,
                         &e->d_dsrc, &e->w_src, &e->w_ddst, &e->w_dw };
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
        arg_free(args[i]);
    memset(e, 0, sizeof *e);
}

static rt_status entry_make(dnnl_entry *e, const rt_conv_geom *g, int n, int threads)
{
    conv_mds m;
    dnnl_primitive_desc_t fpd = NULL;
    RT_CHECK(mds_init(&m, g, n));
    rt_status s = entry_fwd(e, &m, &fpd);
    if (s == RT_OK)
        s = entry_bwd(e, &m, fpd);
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    if (s != RT_OK) {
        entry_free(e);
        return s;
    }
    e->n = n;
    e->threads = threads;
    return RT_OK;
}

/* The entry for batch n at the current thread count, made if new (in the
 * slot used least recently). Sets OpenMP's team size for what follows. */
static rt_status entry_get(dnnl_entry **out, rt_cpu_dnnl_conv *d, const rt_conv_geom *g, int n)
{
    int threads = rt_cpu_threads();
    omp_set_num_threads(threads);
    dnnl_entry *e = &d->cache[0];
    for (int i = 0; i < DNNL_CACHE_BATCHES; i++) {
        dnnl_entry *c = &d->cache[i];
        if (c->n == n && c->threads == threads) {
            e = c;
            goto found;
        }
        if (c->last_use < e->last_use)
            e = c;
    }
    entry_free(e);
    RT_CHECK(entry_make(e, g, n, threads));
found:
    e->last_use = ++d->uses;
    *out = e;
    return RT_OK;
}

/* ---- the backend entries ------------------------------------------------------------------ */

rt_status rt_cpu_dnnl_conv_new(rt_cpu_dnnl_conv **out, const rt_conv_geom *g)
{
    *out = NULL;
    RT_CHECK(dnnl_ready());
    rt_cpu_dnnl_conv *d;
    RT_CHECK(rt_alloc(&d, 1, sizeof *d, "oneDNN convolution plan"));
    rt_status s = rt_alloc(&d->zeros, (size_t)g->k, sizeof(float), "oneDNN zero bias");
    if (s != RT_OK) {
        rt_free(d);
        RT_CHECK(s);
    }
    *out = d;
    return RT_OK;
}

void rt_cpu_dnnl_conv_free(rt_cpu_dnnl_conv *d)
{
    if (!d)
        return;
    for (int i = 0; i < DNNL_CACHE_BATCHES; i++)
        entry_free(&d->cache[i]);
    rt_free(d->zeros);
    rt_free(d);
}

size_t rt_cpu_dnnl_conv_scratch_floats(const rt_conv_geom *g)
{
    return (size_t)g->k * g->c * g->kh * g->kw;
}

rt_status rt_cpu_dnnl_conv_forward(rt_cpu_dnnl_conv *d, const rt_conv_geom *g, float *y,
                                   const float *x, const float *w, const float *b, int n)
{
    dnnl_entry *e;
    RT_CHECK(entry_get(&e, d, g, n));
    RT_CHECK(arg_in(&e->f_src, x));
    RT_CHECK(arg_in(&e->f_w, w));
    RT_CHECK(arg_in(&e->f_b, b ? b : d->zeros));
    RT_CHECK(arg_out_bind(&e->f_dst, y));
    dnnl_exec_arg_t args[] = { { DNNL_ARG_SRC, e->f_src.prim },
                               { DNNL_ARG_WEIGHTS, e->f_w.prim },
                               { DNNL_ARG_BIAS, e->f_b.prim },
                               { DNNL_ARG_DST, e->f_dst.prim } };
    RT_CHECK(dnnl_run(e->fwd, 4, args));
    RT_CHECK(arg_out_done(&e->f_dst));
    DNNL_TRY(dnnl_stream_wait(dnnl_strm));
    return RT_OK;
}

static rt_status bwd_data(dnnl_entry *e, float *dx, const float *dy, const float *w)
{
    RT_CHECK(arg_in(&e->d_ddst, dy));
    RT_CHECK(arg_in(&e->d_w, w));
    RT_CHECK(arg_out_bind(&e->d_dsrc, dx));
    dnnl_exec_arg_t args[] = { { DNNL_ARG_DIFF_DST, e->d_ddst.prim },
                               { DNNL_ARG_WEIGHTS, e->d_w.prim },
                               { DNNL_ARG_DIFF_SRC, e->d_dsrc.prim } };
    RT_CHECK(dnnl_run(e->bwd_data, 3, args));
    RT_CHECK(arg_out_done(&e->d_dsrc));
    return RT_OK;
}

/* gw[k*c*kh*kw] <- this batch's weight gradient */
static rt_status bwd_weights(dnnl_entry *e, float *gw, const float *dy, const float *x)
{
    RT_CHECK(arg_in(&e->w_src, x));
    RT_CHECK(arg_in(&e->w_ddst, dy));
    RT_CHECK(arg_out_bind(&e->w_dw, gw));
    dnnl_exec_arg_t args[] = { { DNNL_ARG_SRC, e->w_src.prim },
                               { DNNL_ARG_DIFF_DST, e->w_ddst.prim },
                               { DNNL_ARG_DIFF_WEIGHTS, e->w_dw.prim } };
    RT_CHECK(dnnl_run(e->bwd_weights, 3, args));
    RT_CHECK(arg_out_done(&e->w_dw));
    return RT_OK;
}

rt_status rt_cpu_dnnl_conv_backward_data(rt_cpu_dnnl_conv *d, const rt_conv_geom *g, float *dx,
                                         const float *dy, const float *w, int n)
{
    dnnl_entry *e;
    RT_CHECK(entry_get(&e, d, g, n));
    RT_CHECK(bwd_data(e, dx, dy, w));
    DNNL_TRY(dnnl_stream_wait(dnnl_strm));
    return RT_OK;
}

rt_status rt_cpu_dnnl_conv_backward_weights(rt_cpu_dnnl_conv *d, const rt_conv_geom *g,
                                            float *dw, const float *dy, const float *x,
                                            float *scratch, int n)
{
    const size_t nw = (size_t)g->k * g->c * g->kh * g->kw;
    float *gw = scratch;   /* [nw]: rt_cpu_dnnl_conv_scratch_floats */
    dnnl_entry *e;
    RT_CHECK(entry_get(&e, d, g, n));
    RT_CHECK(bwd_weights(e, gw, dy, x));
    DNNL_TRY(dnnl_stream_wait(dnnl_strm));
    for (size_t i = 0; i < nw; i++)
        dw[i] += gw[i];
    return RT_OK;
}
