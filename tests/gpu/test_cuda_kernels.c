/* The "cuda" backend against the "cpu" one, entry by entry of the table
 * (rtrain/backend.h), on random inputs at the shapes of ResNet18 on 28x28
 * FashionMNIST at batch 128 (and an MLP's 784->512 at batch 32). Both
 * backends get the same bytes through their own upload; results come
 * back through their own download and are compared here.
 *
 * Exact (the same bits; a NaN matches any NaN, below) where the CUDA
 * kernels promise the CPU's bits: fill,
 * ReLU, dropout (the Philox masks and outputs), add, max-pooling (outputs,
 * argmax and the gradient), and several steps of the SGD, momentum SGD,
 * Adam and AdamW updates (same float operations in the same order, built
 * with --fmad=false). Everything else within a relative tolerance stated
 * beside it: cuBLAS and cuDNN sum in orders of their own, and the
 * reductions sum in double in a fixed tree rather than the CPU's serial
 * loop. Tolerances are relative to the largest value of the CPU's tensor
 * (or to the value itself for a scalar). NaN payloads are not compared:
 * the GPU's arithmetic returns its one canonical NaN (0x7fffffff) where
 * x86 passes the input NaN's bits on (seen on an H200: x * mask and
 * y += x with a NaN input), and both are NaN to every later operation.
 * A NaN on one side only is a difference. Each stage of BatchNorm is given
 * the CPU's output of the stage before, so that each comparison sees only
 * that entry's own difference.
 *
 * Every check prints what it compared and the largest difference; the
 * program exits 1 if any fails, 77 (SKIP) without a GPU or without the
 * CUDA backend in this build. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "rtrain/core.h"
#include "rtrain/backend.h"

enum { BATCH = 128 };

/* cuBLAS (fp32: the GPU is opened without TF32) and OpenBLAS add the same
 * products in different orders. A float sum of K terms of random sign
 * errs by about eps * sqrt(K) (eps = 6e-8; K <= 784 here: ~2e-6 of the
 * largest value); 1e-4 is the bound tests/unit/test_kernels.c uses, while
 * a wrong index or a missing term is off by 1e-1 or more. */
#define LINEAR_TOL 1e-4
/* cuDNN may pick a Winograd or FFT algorithm (deterministic ones only),
 * whose transforms add rounding of their own, ~1e-5 to 1e-4 of the
 * largest value in fp32; 1e-3 leaves a margin and still catches any
 * indexing mistake (errors of order 1). */
#define CONV_TOL 1e-3
/* BatchNorm sums and backward sums: double sums of up to 10^5 floats in
 * another order agree to ~1e-14, then are rounded to float once: at most
 * one float ulp apart (1.2e-7 relative); two ulps of margin. */
#define BN_SUM_TOL 2.4e-7
/* BatchNorm statistics, normalisation and dx, average pooling: the CPU's
 * own operations on the same inputs (expected identical bits, printed);
 * one ulp of the tensor's largest value allowed. */
#define SAME_OPS_TOL 1.2e-7
/* Loss sums (double) of up to 25088 terms in another order: ~1e-16 per
 * term of relative rounding, plus a last-bit difference of CUDA's double
 * exp/log against glibc's (both within 1 ulp). */
#define SUM_TOL 1e-12
/* Loss gradients: the CPU's double expression rounded to float; only a
 * last-bit difference of exp can move a float by one ulp. */
#define GRAD_TOL 1e-6

enum { CPU, GPU, SIDES };
static const rt_backend *be[SIDES];
static rt_rng test_rng;

/* ---- one tensor in both backends' memory ---------------------------------------- */

typedef struct twin {
    void *p[SIDES];
    size_t bytes;
} twin;

#define F(t, s) ((float *)(t).p[s])
#define I32(t, s) ((int32_t *)(t).p[s])

static void *halloc(size_t bytes)
{
    void *p = NULL;
    if (rt_alloc(&p, bytes ? bytes : 1, 1, "test buffer") != RT_OK) {
        fprintf(stderr, "test_cuda_kernels: %s\n", rt_error_message());
        exit(2);
    }
    return p;
}

static twin twin_new(size_t bytes)
{
    twin t = {.bytes = bytes};
    for (int s = 0; s < SIDES; s++)
        if (be[s]->alloc(&t.p[s], bytes, "test tensor") != RT_OK) {
            fprintf(stderr, "test_cuda_kernels: %s: %s\n", be[s]->name, rt_error_message());
            exit(2);
        }
    return t;
}

static void twin_upload(twin *t, const void *host)
{
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->upload(t->p[s], host, t->bytes));
}

static twin twin_from(const void *host, size_t bytes)
{
    twin t = twin_new(bytes);
    twin_upload(&t, host);
    return t;
}

/* Side `from`'s content copied into the other side (the CPU's result of a
 * stage as the input of the next). */
static void twin_share(twin *t, int from)
{
    void *h = halloc(t->bytes);
    CHECK_OK(be[from]->synchronize());
    CHECK_OK(be[from]->download(h, t->p[from], t->bytes));
    CHECK_OK(be[1 - from]->upload(t->p[1 - from], h, t->bytes));
    rt_free(h);
}

static void twin_free(twin *t)
{
    for (int s = 0; s < SIDES; s++)
        be[s]->free(t->p[s]);
    *t = (twin){0};
}

/* Host copy of side s after the work queued on it. */
static void *fetch(const twin *t, int s)
{
    void *h = halloc(t->bytes);
    CHECK_OK(be[s]->synchronize());
    CHECK_OK(be[s]->download(h, t->p[s], t->bytes));
    return h;
}

static float *host_uniform(size_t n, float lo, float hi)
{
    float *a = halloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * rt_rng_uniform(&test_rng);
    return a;
}

static twin twin_uniform(size_t n, float lo, float hi)
{
    float *h = host_uniform(n, lo, hi);
    twin t = twin_from(h, n * sizeof *h);
    rt_free(h);
    return t;
}

/* n copies of v: NaN marks outputs that must be overwritten. */
static twin twin_filled(size_t n, float v)
{
    float *h = halloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++)
        h[i] = v;
    twin t = twin_from(h, n * sizeof *h);
    rt_free(h);
    return t;
}

static twin twin_labels(int n, int classes)
{
    int32_t *h = halloc((size_t)n * sizeof *h);
    for (int i = 0; i < n; i++)
        h[i] = (int32_t)rt_rng_below(&test_rng, (uint32_t)classes);
    twin t = twin_from(h, (size_t)n * sizeof *h);
    rt_free(h);
    return t;
}

/* ---- comparisons -------------------------------------------------------------------- */

typedef struct fdiff {
    double worst;     /* largest |cuda - cpu| */
    double scale;     /* largest |cpu| */
    size_t differ;    /* elements whose bits differ (two NaNs match) */
    size_t nan_only;  /* NaN on one side only */
} fdiff;

static fdiff float_diff(const float *got, const float *ref, size_t n)
{
    fdiff d = {0};
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(ref[i])) {
            d.nan_only += isnan(got[i]) != isnan(ref[i]);
            d.differ += isnan(got[i]) != isnan(ref[i]);
            continue;
        }
        d.differ += memcmp(&got[i], &ref[i], sizeof got[i]) != 0;
        d.worst = fmax(d.worst, fabs((double)got[i] - ref[i]));
        d.scale = fmax(d.scale, fabs((double)ref[i]));
    }
    return d;
}

/* The CUDA side of t must hold the CPU side's bits (floats). */
static void check_bits(const char *what, const twin *t)
{
    float *ref = fetch(t, CPU), *got = fetch(t, GPU);
    size_t n = t->bytes / sizeof(float);
    fdiff d = float_diff(got, ref, n);
    printf("%-52s exact: %zu of %zu floats differ, largest difference %.3g\n", what, d.differ,
           n, d.worst);
    CHECK_MSG(d.differ == 0, "%s: %zu of %zu floats differ from the cpu backend (largest "
              "difference %.3g, %zu NaN on one side only)", what, d.differ, n, d.worst,
              d.nan_only);
    rt_free(ref);
    rt_free(got);
}

static void check_bits_i32(const char *what, const twin *t)
{
    int32_t *ref = fetch(t, CPU), *got = fetch(t, GPU);
    size_t n = t->bytes / sizeof(int32_t), differ = 0;
    for (size_t i = 0; i < n; i++)
        differ += got[i] != ref[i];
    printf("%-52s exact: %zu of %zu indices differ\n", what, differ, n);
    CHECK_MSG(differ == 0, "%s: %zu of %zu indices differ from the cpu backend", what, differ,
              n);
    rt_free(ref);
    rt_free(got);
}

/* max |cuda - cpu| <= tol * max |cpu|, NaN in the same places. */
static void check_close(const char *what, const twin *t, double tol)
{
    float *ref = fetch(t, CPU), *got = fetch(t, GPU);
    size_t n = t->bytes / sizeof(float);
    fdiff d = float_diff(got, ref, n);
    double scale = d.scale > 0 ? d.scale : 1.0;
    printf("%-52s largest difference %.3g (relative %.3g, tolerance %.1e)%s\n", what, d.worst,
           d.worst / scale, tol, d.differ ? "" : ", identical bits");
    CHECK_MSG(d.nan_only == 0 && d.worst <= tol * scale, "%s: largest difference %.3g is "
              "%.3g of the largest value %.3g (tolerance %.1e), %zu NaN on one side only",
              what, d.worst, d.worst / scale, d.scale, tol, d.nan_only);
    rt_free(ref);
    rt_free(got);
}

/* |cuda - cpu| <= tol * |cpu| for a scalar sum; NaN on both sides agrees. */
static void check_sum(const char *what, double got, double ref, double tol)
{
    int nan_ok = isnan(got) && isnan(ref);
    double diff = nan_ok ? 0.0 : fabs(got - ref);
    printf("%-52s %.17g vs cpu %.17g: difference %.3g (tolerance %.1e relative)\n", what, got,
           ref, diff, tol);
    CHECK_MSG(nan_ok || diff <= tol * fabs(ref), "%s: cuda %.17g, cpu %.17g", what, got, ref);
}

/* A label "<prefix> <what>" for the checks of one case. */
static const char *named(const char *prefix, const char *what)
{
    static char buf[160];
    snprintf(buf, sizeof buf, "%s %s", prefix, what);
    return buf;
}

/* ---- the table itself and memory -------------------------------------------------------- */

/* Every entry filled: a missing one would crash a layer, not this test. */
#define CHECK_ENTRY(e) CHECK_MSG(be[GPU]->e != NULL, "cuda table: no " #e)

static void test_table(void)
{
    CHECK(be[GPU]->abi_version == RT_BACKEND_ABI_VERSION);
    CHECK(!strcmp(be[GPU]->name, "cuda") && !(be[GPU]->flags & RT_BACKEND_HOST_MEMORY));
    CHECK_ENTRY(alloc); CHECK_ENTRY(free); CHECK_ENTRY(upload); CHECK_ENTRY(download);
    CHECK_ENTRY(copy); CHECK_ENTRY(fill); CHECK_ENTRY(synchronize);
    CHECK_ENTRY(linear_forward); CHECK_ENTRY(linear_backward);
    CHECK_ENTRY(conv2d_plan); CHECK_ENTRY(conv2d_plan_free);
    CHECK_ENTRY(conv2d_forward); CHECK_ENTRY(conv2d_backward);
    CHECK_ENTRY(relu_forward); CHECK_ENTRY(relu_backward); CHECK_ENTRY(dropout_forward);
    CHECK_ENTRY(dropout_backward); CHECK_ENTRY(add);
    CHECK_ENTRY(maxpool2d_forward); CHECK_ENTRY(maxpool2d_backward);
    CHECK_ENTRY(global_avgpool_forward); CHECK_ENTRY(global_avgpool_backward);
    CHECK_ENTRY(bn_sums); CHECK_ENTRY(bn_train_stats); CHECK_ENTRY(bn_eval_stats);
    CHECK_ENTRY(bn_normalize); CHECK_ENTRY(bn_backward_sums); CHECK_ENTRY(bn_backward_dx);
    CHECK_ENTRY(cross_entropy); CHECK_ENTRY(nll_loss); CHECK_ENTRY(count_correct);
    CHECK_ENTRY(mse_loss); CHECK_ENTRY(l1_loss); CHECK_ENTRY(smooth_l1_loss);
    CHECK_ENTRY(bce_logits_loss); CHECK_ENTRY(target_sums);
    CHECK_ENTRY(sgd_update); CHECK_ENTRY(sgd_momentum_update); CHECK_ENTRY(adam_update);
}

static void test_memory(void)
{
    const size_t n = 1000003;   /* odd: no vector width divides it */
    twin a = twin_new(n * sizeof(float));
    float *zero = halloc(n * sizeof(float)), *got = fetch(&a, GPU);
    CHECK_MSG(!memcmp(got, zero, n * sizeof(float)), "cuda alloc is not zero-filled");
    rt_free(got);
    printf("%-52s zero-filled\n", "alloc");

    float *h = host_uniform(n, -1, 1);
    twin_upload(&a, h);
    got = fetch(&a, GPU);
    CHECK_MSG(!memcmp(got, h, n * sizeof(float)), "cuda upload/download changed the data");
    rt_free(got);
    twin b = twin_new(n * sizeof(float));
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->copy(b.p[s], a.p[s], n * sizeof(float)));
    got = fetch(&b, GPU);
    CHECK_MSG(!memcmp(got, h, n * sizeof(float)), "cuda copy changed the data");
    rt_free(got);
    printf("%-52s round trip exact\n", "upload, download, copy");

    /* -0.0f: the CPU fills every zero with memset (+0), and so must cuda */
    const float values[] = {0.25f, 0.0f, -0.0f, NAN};
    const char *names[] = {"fill 0.25", "fill 0", "fill -0", "fill NaN"};
    for (int v = 0; v < 4; v++) {
        for (int s = 0; s < SIDES; s++)
            CHECK_OK(be[s]->fill(F(b, s), values[v], n));
        check_bits(names[v], &b);
    }
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->synchronize());
    rt_free(h);
    rt_free(zero);
    twin_free(&a);
    twin_free(&b);
}

/* ---- linear ------------------------------------------------------------------------------- */

static void test_linear(const char *name, int n, int in, int out)
{
    const size_t nx = (size_t)n * in, ny = (size_t)n * out, nw = (size_t)out * in;
    twin x = twin_uniform(nx, -1, 1), w = twin_uniform(nw, -1, 1), b = twin_uniform(out, -1, 1);
    twin y = twin_filled(ny, NAN), dy = twin_uniform(ny, -1, 1);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->linear_forward(F(y, s), F(x, s), F(w, s), F(b, s), n, in, out));
    check_close(named(name, "forward"), &y, LINEAR_TOL);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->linear_forward(F(y, s), F(x, s), F(w, s), NULL, n, in, out));
    check_close(named(name, "forward without bias"), &y, LINEAR_TOL);

    /* dw and db are added to (random start), dx overwritten (NaN start) */
    twin dx = twin_filled(nx, NAN), dw = twin_uniform(nw, -1, 1), db = twin_uniform(out, -1, 1);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->linear_backward(F(dx, s), F(dw, s), F(db, s), F(dy, s), F(x, s),
                                        F(w, s), n, in, out));
    check_close(named(name, "backward dx"), &dx, LINEAR_TOL);
    check_close(named(name, "backward dw (added)"), &dw, LINEAR_TOL);
    check_close(named(name, "backward db (added)"), &db, LINEAR_TOL);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->linear_backward(NULL, F(dw, s), NULL, F(dy, s), F(x, s), F(w, s), n,
                                        in, out));
    check_close(named(name, "backward dw, no dx, no db"), &dw, LINEAR_TOL);
    twin *all[] = {&x, &w, &b, &y, &dy, &dx, &dw, &db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        twin_free(all[i]);
}

/* ---- convolution ----------------------------------------------------------------------------- */

typedef struct conv_case {
    const char *name;
    int c, h, w, k, kernel, stride, pad, bias;
} conv_case;

/* A plan and its scratch on each side. */
typedef struct conv_plans {
    rt_conv_plan *plan[SIDES];
    float *scratch[SIDES];
} conv_plans;

static int conv_plans_make(conv_plans *cp, const rt_conv_geom *g, int n)
{
    *cp = (conv_plans){0};
    for (int s = 0; s < SIDES; s++) {
        size_t floats = 0;
        CHECK_OK(be[s]->conv2d_plan(&cp->plan[s], g, n, &floats));
        CHECK_OK(be[s]->alloc((void **)&cp->scratch[s], (floats ? floats : 1) * sizeof(float),
                              "convolution scratch"));
    }
    return cp->plan[CPU] && cp->plan[GPU] && cp->scratch[CPU] && cp->scratch[GPU];
}

static void conv_plans_free(conv_plans *cp)
{
    for (int s = 0; s < SIDES; s++) {
        if (cp->plan[s])
            be[s]->conv2d_plan_free(cp->plan[s]);
        be[s]->free(cp->scratch[s]);
    }
}

static void conv_backward(const conv_plans *cp, const conv_case *tc, twin *dx, twin *dw,
                          twin *db, const twin *dy, const twin *x, const twin *w)
{
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->conv2d_backward(cp->plan[s], dx ? F(*dx, s) : NULL, F(*dw, s),
                                        tc->bias ? F(*db, s) : NULL, F(*dy, s), F(*x, s),
                                        F(*w, s), cp->scratch[s], BATCH));
}

static void test_conv_case(const conv_case *tc)
{
    rt_conv_geom g;
    conv_plans cp;
    CHECK(rt_conv_geom_init(&g, tc->c, tc->h, tc->w, tc->k, tc->kernel, tc->kernel, tc->stride,
                            tc->pad));
    if (!conv_plans_make(&cp, &g, BATCH)) {
        conv_plans_free(&cp);
        return;
    }
    const size_t nx = (size_t)BATCH * g.c * g.h * g.w, ny = (size_t)BATCH * g.k * g.oh * g.ow;
    const size_t nw = (size_t)g.k * g.c * g.kh * g.kw;
    twin x = twin_uniform(nx, -1, 1), w = twin_uniform(nw, -1, 1), b = twin_uniform(g.k, -1, 1);
    twin y = twin_filled(ny, NAN), dy = twin_uniform(ny, -1, 1);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->conv2d_forward(cp.plan[s], F(y, s), F(x, s), F(w, s),
                                       tc->bias ? F(b, s) : NULL, cp.scratch[s], BATCH));
    check_close(named(tc->name, "forward"), &y, CONV_TOL);

    /* dw and db are added to (random start), dx overwritten (NaN start) */
    twin dx = twin_filled(nx, NAN), dw = twin_uniform(nw, -1, 1), db = twin_uniform(g.k, -1, 1);
    conv_backward(&cp, tc, &dx, &dw, &db, &dy, &x, &w);
    check_close(named(tc->name, "backward dx"), &dx, CONV_TOL);
    check_close(named(tc->name, "backward dw (added)"), &dw, CONV_TOL);
    if (tc->bias)
        check_close(named(tc->name, "backward db (added)"), &db, CONV_TOL);
    /* the first layer's backward: no dx */
    conv_backward(&cp, tc, NULL, &dw, &db, &dy, &x, &w);
    check_close(named(tc->name, "backward without dx: dw"), &dw, CONV_TOL);
    twin *all[] = {&x, &w, &b, &y, &dy, &dx, &dw, &db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        twin_free(all[i]);
    conv_plans_free(&cp);
}

/* A plan made for batch `full` run at the smaller batch `n` (an epoch's
 * last batch): both directions, against the CPU. ResNet18's layer4 conv at
 * 1x1 is the case where, at full batch 256 and n = 96, cuDNN listed no
 * deterministic backward-filter algorithm within the full batch's scratch
 * (seen on an H200 with cuDNN 9.19; the training run stopped there). */
static void test_conv_smaller_batch(const char *name, int c, int hw, int k, int full, int n)
{
    rt_conv_geom g;
    conv_plans cp;
    CHECK(rt_conv_geom_init(&g, c, hw, hw, k, 3, 3, 1, 1));
    if (!conv_plans_make(&cp, &g, full)) {
        conv_plans_free(&cp);
        return;
    }
    const size_t nx = (size_t)n * g.c * g.h * g.w, ny = (size_t)n * g.k * g.oh * g.ow;
    const size_t nw = (size_t)g.k * g.c * g.kh * g.kw;
    twin x = twin_uniform(nx, -1, 1), w = twin_uniform(nw, -1, 1), y = twin_filled(ny, NAN);
    twin dy = twin_uniform(ny, -1, 1), dx = twin_filled(nx, NAN), dw = twin_uniform(nw, -1, 1);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->conv2d_forward(cp.plan[s], F(y, s), F(x, s), F(w, s), NULL,
                                       cp.scratch[s], n));
    check_close(named(name, "forward"), &y, CONV_TOL);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->conv2d_backward(cp.plan[s], F(dx, s), F(dw, s), NULL, F(dy, s), F(x, s),
                                        F(w, s), cp.scratch[s], n));
    check_close(named(name, "backward dx"), &dx, CONV_TOL);
    check_close(named(name, "backward dw (added)"), &dw, CONV_TOL);
    twin *all[] = {&x, &w, &y, &dy, &dx, &dw};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        twin_free(all[i]);
    conv_plans_free(&cp);
}

static void test_conv(void)
{
    static const conv_case cases[] = {
        {"conv 1->64 3x3 s1 p1 28x28 (bias)", 1, 28, 28, 64, 3, 1, 1, 1},
        {"conv 64->128 3x3 s2 p1 28x28", 64, 28, 28, 128, 3, 2, 1, 0},
        {"conv 128->256 1x1 s2 14x14", 128, 14, 14, 256, 1, 2, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_conv_case(&cases[i]);
    test_conv_smaller_batch("conv 512->512 3x3 1x1, plan 256, batch 96", 512, 1, 512, 256, 96);
    test_conv_smaller_batch("conv 64->64 3x3 7x7, plan 256, batch 96", 64, 7, 64, 256, 96);
}

/* ---- elementwise and dropout ---------------------------------------------------------------- */

/* conv1's output [128][64][28][28], with NaN and -0.0 among the values */
static twin activations(size_t n)
{
    float *h = host_uniform(n, -1, 1);
    for (size_t i = 0; i < n; i += 9973) {
        h[i] = NAN;
        if (i + 1 < n)
            h[i + 1] = -0.0f;
    }
    twin t = twin_from(h, n * sizeof *h);
    rt_free(h);
    return t;
}

static void test_elementwise(void)
{
    const size_t n = (size_t)BATCH * 64 * 28 * 28;
    twin x = activations(n), y = twin_filled(n, NAN), dy = twin_uniform(n, -1, 1);
    twin dx = twin_filled(n, NAN);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->relu_forward(F(y, s), F(x, s), n));
    check_bits("relu forward [128,64,28,28]", &y);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->relu_backward(F(dx, s), F(dy, s), F(y, s), n));
    check_bits("relu backward", &dx);
    for (int s = 0; s < SIDES; s++)   /* in place: dx == dy */
        CHECK_OK(be[s]->relu_backward(F(dy, s), F(dy, s), F(y, s), n));
    check_bits("relu backward in place", &dy);
    for (int s = 0; s < SIDES; s++)   /* the residual connection: y += x */
        CHECK_OK(be[s]->add(F(y, s), F(x, s), n));
    check_bits("add", &y);
    twin *all[] = {&x, &y, &dy, &dx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        twin_free(all[i]);
}

static void test_dropout_case(size_t n, float p, uint64_t key)
{
    char name[96];
    twin x = activations(n), y = twin_filled(n, NAN), mask = twin_filled(n, NAN);
    twin dx = twin_filled(n, NAN), dy = twin_uniform(n, -1, 1);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->dropout_forward(F(y, s), F(mask, s), F(x, s), n, p, key));
    snprintf(name, sizeof name, "dropout p=%g over %zu: mask", p, n);
    check_bits(name, &mask);
    snprintf(name, sizeof name, "dropout p=%g over %zu: output", p, n);
    check_bits(name, &y);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->dropout_backward(F(dx, s), F(dy, s), F(mask, s), n));
    snprintf(name, sizeof name, "dropout p=%g over %zu: backward", p, n);
    check_bits(name, &dx);
    twin *all[] = {&x, &y, &mask, &dx, &dy};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        twin_free(all[i]);
}

static void test_dropout(void)
{
    /* the MLP's hidden layer [32][512]; a count that is no multiple of the
     * 4 words of a Philox block; a large one; the edges p = 0 and p = 1 */
    test_dropout_case(32 * 512, 0.5f, rt_rng_key(7, 1, 0, 0));
    test_dropout_case(1000003, 0.3f, rt_rng_key(7, 2, 0, 0));
    test_dropout_case((size_t)BATCH * 64 * 28 * 28, 0.2f, rt_rng_key(7, 3, 5, 1));
    test_dropout_case(1001, 0.0f, rt_rng_key(7, 4, 0, 0));
    test_dropout_case(1001, 1.0f, rt_rng_key(7, 5, 0, 0));
}

/* ---- pooling ------------------------------------------------------------------------------------ */

enum { POOL_RANDOM, POOL_TIES, POOL_NAN };

/* ties: values from {-3,-2,-1}, all below the zero that a padding taken
 * as a value would give; nan: one value in 997 is NaN */
static twin pool_input(size_t n, int kind)
{
    float *h = host_uniform(n, -1, 1);
    for (size_t i = 0; i < n; i++) {
        if (kind == POOL_TIES)
            h[i] = -1.0f - (float)rt_rng_below(&test_rng, 3);
        if (kind == POOL_NAN && rt_rng_below(&test_rng, 997) == 0)
            h[i] = NAN;
    }
    twin t = twin_from(h, n * sizeof *h);
    rt_free(h);
    return t;
}

static void test_maxpool_case(int kind, const char *name)
{
    rt_pool_geom g;
    CHECK(rt_pool_geom_init(&g, 64, 28, 28, 3, 2, 1));
    const size_t nx = (size_t)BATCH * g.c * g.h * g.w, ny = (size_t)BATCH * g.c * g.oh * g.ow;
    twin x = pool_input(nx, kind), y = twin_filled(ny, NAN), dy = twin_uniform(ny, -1, 1);
    twin arg = twin_new(ny * sizeof(int32_t)), dx = twin_filled(nx, NAN);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->maxpool2d_forward(F(y, s), I32(arg, s), F(x, s), &g, BATCH));
    check_bits(named(name, "forward"), &y);
    check_bits_i32(named(name, "argmax"), &arg);
    /* overlapping 3x3 windows at stride 2: one input can collect several
     * gradients, whose float sum depends on the order */
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->maxpool2d_backward(F(dx, s), F(dy, s), I32(arg, s), &g, BATCH));
    check_bits(named(name, "backward"), &dx);
    twin *all[] = {&x, &y, &dy, &arg, &dx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        twin_free(all[i]);
}

static void test_avgpool_case(int c, int hw)
{
    char name[96];
    const size_t nx = (size_t)BATCH * c * hw, ny = (size_t)BATCH * c;
    twin x = twin_uniform(nx, -1, 1), y = twin_filled(ny, NAN), dy = twin_uniform(ny, -1, 1);
    twin dx = twin_filled(nx, NAN);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->global_avgpool_forward(F(y, s), F(x, s), BATCH, c, hw));
    snprintf(name, sizeof name, "global avgpool [%d,%d,%d] forward", BATCH, c, hw);
    check_close(name, &y, SAME_OPS_TOL);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->global_avgpool_backward(F(dx, s), F(dy, s), BATCH, c, hw));
    snprintf(name, sizeof name, "global avgpool [%d,%d,%d] backward", BATCH, c, hw);
    check_close(name, &dx, SAME_OPS_TOL);
    twin *all[] = {&x, &y, &dy, &dx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        twin_free(all[i]);
}

static void test_pool(void)
{
    test_maxpool_case(POOL_RANDOM, "maxpool 3 s2 p1 [128,64,28,28]");
    test_maxpool_case(POOL_TIES, "maxpool with ties");
    test_maxpool_case(POOL_NAN, "maxpool with NaN");
    test_avgpool_case(512, 16);   /* ResNet18's layer4 output on 28x28: 4x4 */
    test_avgpool_case(512, 1);
}

/* ---- batch normalisation ---------------------------------------------------------------------- */

typedef struct bn_case {
    int c, hw;
    twin x, dy, stats, mean, rstd, gamma, beta, y, dstats, dx;
} bn_case;

static void bn_sums_stage(bn_case *b)
{
    const int c = b->c;
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->bn_sums(F(b->stats, s), F(b->x, s), BATCH, c, b->hw));
    check_close("bn_sums (sum, sumsq, count)", &b->stats, BN_SUM_TOL);
    /* a fixed reduction: the same bits again */
    float *first = fetch(&b->stats, GPU);
    CHECK_OK(be[GPU]->bn_sums(F(b->stats, GPU), F(b->x, GPU), BATCH, c, b->hw));
    float *again = fetch(&b->stats, GPU);
    CHECK_MSG(!memcmp(first, again, b->stats.bytes), "bn_sums: a second run differs");
    float count = again[2 * c];
    CHECK_MSG(count == (float)BATCH * (float)b->hw, "bn_sums: count %g", count);
    rt_free(first);
    rt_free(again);
    twin_share(&b->stats, CPU);
}

static void bn_stats_stage(bn_case *b)
{
    const int c = b->c;
    float *h = host_uniform(2 * (size_t)c, 0.5f, 2.0f);
    twin run_mean = twin_from(h, c * sizeof(float)), run_var = twin_from(h + c, c * sizeof(float));
    twin batches = twin_filled(1, 3.0f);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->bn_train_stats(F(b->mean, s), F(b->rstd, s), F(run_mean, s),
                                       F(run_var, s), F(batches, s), F(b->stats, s), c, 1e-5f,
                                       0.1f));
    check_close("bn_train_stats mean", &b->mean, SAME_OPS_TOL);
    check_close("bn_train_stats rstd", &b->rstd, SAME_OPS_TOL);
    check_close("bn_train_stats running mean", &run_mean, SAME_OPS_TOL);
    check_close("bn_train_stats running var", &run_var, SAME_OPS_TOL);
    check_bits("bn_train_stats num_batches", &batches);
    twin em = twin_filled(c, NAN), er = twin_filled(c, NAN);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->bn_eval_stats(F(em, s), F(er, s), F(run_mean, s), F(run_var, s), c,
                                      1e-5f));
    check_close("bn_eval_stats mean", &em, SAME_OPS_TOL);
    check_close("bn_eval_stats rstd", &er, SAME_OPS_TOL);
    twin_share(&b->mean, CPU);
    twin_share(&b->rstd, CPU);
    twin *all[] = {&run_mean, &run_var, &batches, &em, &er};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        twin_free(all[i]);
    rt_free(h);
}

static void bn_normalize_stage(bn_case *b)
{
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->bn_normalize(F(b->y, s), F(b->x, s), F(b->mean, s), F(b->rstd, s),
                                     F(b->gamma, s), F(b->beta, s), BATCH, b->c, b->hw));
    check_close("bn_normalize", &b->y, SAME_OPS_TOL);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->bn_normalize(F(b->y, s), F(b->x, s), F(b->mean, s), F(b->rstd, s),
                                     NULL, NULL, BATCH, b->c, b->hw));
    check_close("bn_normalize without gamma, beta", &b->y, SAME_OPS_TOL);
}

static void bn_backward_stage(bn_case *b)
{
    const int c = b->c;
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->bn_backward_sums(F(b->dstats, s), F(b->dy, s), F(b->x, s),
                                         F(b->mean, s), F(b->rstd, s), BATCH, c, b->hw));
    check_close("bn_backward_sums (sum dy, sum dy*xhat)", &b->dstats, BN_SUM_TOL);
    twin_share(&b->dstats, CPU);
    /* count: stats[2c], in each backend's memory (all-reduced there) */
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->bn_backward_dx(F(b->dx, s), F(b->dy, s), F(b->x, s), F(b->mean, s),
                                       F(b->rstd, s), F(b->gamma, s), F(b->dstats, s),
                                       F(b->stats, s) + 2 * c, BATCH, c, b->hw));
    check_close("bn_backward_dx", &b->dx, SAME_OPS_TOL);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->bn_backward_dx(NULL, F(b->dy, s), F(b->x, s), F(b->mean, s),
                                       F(b->rstd, s), NULL, F(b->dstats, s),
                                       F(b->stats, s) + 2 * c, BATCH, c, b->hw));
}

static void test_batchnorm_case(int c, int hw)
{
    const size_t n = (size_t)BATCH * c * hw;
    printf("batch norm over [%d,%d,%d]:\n", BATCH, c, hw);
    /* channel means of 3 and spreads of 2: sumsq/m - mean^2 cancels */
    bn_case b = {.c = c, .hw = hw, .x = twin_uniform(n, 1, 5), .dy = twin_uniform(n, -1, 1),
                 .stats = twin_filled(2 * (size_t)c + 1, NAN), .mean = twin_filled(c, NAN),
                 .rstd = twin_filled(c, NAN), .gamma = twin_uniform(c, 0.5f, 1.5f),
                 .beta = twin_uniform(c, -1, 1), .y = twin_filled(n, NAN),
                 .dstats = twin_filled(2 * (size_t)c, NAN), .dx = twin_filled(n, NAN)};
    bn_sums_stage(&b);
    bn_stats_stage(&b);
    bn_normalize_stage(&b);
    bn_backward_stage(&b);
    twin *all[] = {&b.x, &b.dy, &b.stats, &b.mean, &b.rstd, &b.gamma, &b.beta, &b.y,
                   &b.dstats, &b.dx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        twin_free(all[i]);
}

static void test_batchnorm(void)
{
    test_batchnorm_case(64, 28 * 28);   /* after conv1 */
    test_batchnorm_case(512, 4 * 4);    /* layer4 */
}

/* ---- losses and accuracy ------------------------------------------------------------------------ */

/* labels[1] = -1 and labels[n-1] = classes: NaN sum and zero gradient rows */
static void spoil_labels(twin *labels, int n, int classes)
{
    int32_t *h = fetch(labels, CPU);
    h[1] = -1;
    h[n - 1] = classes;
    twin_upload(labels, h);
    rt_free(h);
}

typedef rt_status (*class_loss)(double *sum, float *dz, const float *z, const int32_t *labels,
                                int n, int classes, float scale);

static void test_class_loss(const char *name, class_loss cpu, class_loss gpu, float lo,
                            float hi, int bad)
{
    const int n = BATCH, classes = 10;
    const class_loss f[SIDES] = {cpu, gpu};
    twin z = twin_uniform((size_t)n * classes, lo, hi), labels = twin_labels(n, classes);
    twin dz = twin_filled((size_t)n * classes, NAN);
    double sum[SIDES], again;
    if (bad)
        spoil_labels(&labels, n, classes);
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(f[s](&sum[s], F(dz, s), F(z, s), I32(labels, s), n, classes, 1.0f / n));
    check_sum(named(name, "sum"), sum[GPU], sum[CPU], SUM_TOL);
    CHECK_MSG(!bad || (isnan(sum[CPU]) && isnan(sum[GPU])), "%s: a bad label must give NaN",
              name);
    check_close(named(name, "gradient"), &dz, GRAD_TOL);
    /* no gradient; a fixed reduction gives the same bits again */
    CHECK_OK(gpu(&again, NULL, F(z, GPU), I32(labels, GPU), n, classes, 1.0f / n));
    CHECK_MSG(!memcmp(&again, &sum[GPU], sizeof again), "%s: a second run gives %.17g, not "
              "%.17g", name, again, sum[GPU]);
    twin_free(&z);
    twin_free(&labels);
    twin_free(&dz);
}

/* logits from {0, 1, 2}: many ties, where the first maximum must win */
static void test_count_correct(int n, int ties)
{
    const int classes = 10;
    float *h = host_uniform((size_t)n * classes, -5, 5);
    for (size_t i = 0; ties && i < (size_t)n * classes; i++)
        h[i] = (float)rt_rng_below(&test_rng, 3);
    twin z = twin_from(h, (size_t)n * classes * sizeof *h), labels = twin_labels(n, classes);
    spoil_labels(&labels, n, classes);
    int64_t correct[SIDES] = {-1, -1};
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(be[s]->count_correct(&correct[s], F(z, s), I32(labels, s), n, classes));
    char name[96];
    snprintf(name, sizeof name, "count_correct [%d,%d]%s", n, classes, ties ? " with ties" : "");
    printf("%-52s %lld vs cpu %lld (exact)\n", name, (long long)correct[GPU],
           (long long)correct[CPU]);
    CHECK_MSG(correct[GPU] == correct[CPU], "count_correct over %d: cuda %lld, cpu %lld", n,
              (long long)correct[GPU], (long long)correct[CPU]);
    rt_free(h);
    twin_free(&z);
    twin_free(&labels);
}

typedef rt_status (*float_loss)(double *sum, float *dout, const float *out,
                                const float *targets, int n, int k, float scale);

static float_loss mse_of(const rt_backend *b) { return b->mse_loss; }
static float_loss l1_of(const rt_backend *b) { return b->l1_loss; }
static float_loss smooth_l1_of(const rt_backend *b) { return b->smooth_l1_loss; }
static float_loss bce_of(const rt_backend *b) { return b->bce_logits_loss; }

static const struct {
    const char *name;
    float_loss (*entry)(const rt_backend *b);
    float target_lo, target_hi;   /* bce: probabilities */
} float_losses[] = {
    {"mse_loss", mse_of, -3, 3},
    {"l1_loss", l1_of, -3, 3},
    {"smooth_l1_loss", smooth_l1_of, -3, 3},   /* both sides of |d| = 1 */
    {"bce_logits_loss", bce_of, 0, 1},
};

static void test_float_loss(int which, int n, int k)
{
    char name[96];
    const size_t count = (size_t)n * k;
    twin out = twin_uniform(count, -3, 3);
    twin y = twin_uniform(count, float_losses[which].target_lo, float_losses[which].target_hi);
    twin d = twin_filled(count, NAN);
    double sum[SIDES], again;
    for (int s = 0; s < SIDES; s++)
        CHECK_OK(float_losses[which].entry(be[s])(&sum[s], F(d, s), F(out, s), F(y, s), n, k,
                                                  1.0f / n));
    snprintf(name, sizeof name, "%s [%d,%d] sum", float_losses[which].name, n, k);
    check_sum(name, sum[GPU], sum[CPU], SUM_TOL);
    snprintf(name, sizeof name, "%s [%d,%d] gradient", float_losses[which].name, n, k);
    check_close(name, &d, GRAD_TOL);
    CHECK_OK(float_losses[which].entry(be[GPU])(&again, NULL, F(out, GPU), F(y, GPU), n, k,
                                                1.0f / n));
    CHECK_MSG(!memcmp(&again, &sum[GPU], sizeof again), "%s: a second run differs", name);
    twin_free(&out);
    twin_free(&y);
    twin_free(&d);
}

/* sums[k][5] are added to: both start from 1.5 */
static void test_target_sums(int n, int k)
{
    const size_t count = (size_t)n * k;
    twin out = twin_uniform(count, -3, 3), y = twin_uniform(count, 0, 1);
    double *sums[SIDES];
    double worst = 0.0, scale = 0.0;
    for (int s = 0; s < SIDES; s++) {
        sums[s] = halloc(5 * (size_t)k * sizeof(double));
        for (size_t j = 0; j < 5 * (size_t)k; j++)
            sums[s][j] = 1.5;
        CHECK_OK(be[s]->target_sums(sums[s], F(out, s), F(y, s), n, k));
    }
    for (size_t j = 0; j < 5 * (size_t)k; j++) {
        worst = fmax(worst, fabs(sums[GPU][j] - sums[CPU][j]));
        scale = fmax(scale, fabs(sums[CPU][j]));
    }
    char name[96];
    snprintf(name, sizeof name, "target_sums [%d,%d] (added to)", n, k);
    printf("%-52s largest difference %.3g (relative %.3g, tolerance %.1e)\n", name, worst,
           worst / scale, SUM_TOL);
    CHECK_MSG(worst <= SUM_TOL * scale, "target_sums [%d,%d]: largest difference %.3g", n, k,
              worst);
    rt_free(sums[CPU]);
    rt_free(sums[GPU]);
    twin_free(&out);
    twin_free(&y);
}

static void test_losses(void)
{
    for (int bad = 0; bad <= 1; bad++) {
        test_class_loss(bad ? "cross_entropy, bad labels" : "cross_entropy [128,10]",
                        be[CPU]->cross_entropy, be[GPU]->cross_entropy, -5, 5, bad);
        test_class_loss(bad ? "nll_loss, bad labels" : "nll_loss [128,10]", be[CPU]->nll_loss,
                        be[GPU]->nll_loss, -5, 0, bad);
    }
    test_count_correct(BATCH, 0);
    test_count_correct(BATCH, 1);
    test_count_correct(10000, 1);   /* an evaluation pass: several blocks */
    for (int i = 0; i < (int)(sizeof float_losses / sizeof float_losses[0]); i++) {
        test_float_loss(i, BATCH, 10);
        test_float_loss(i, 32, 784);   /* an autoencoder's output: several blocks */
    }
    test_target_sums(BATCH, 10);
    test_target_sums(32, 784);
}

/* ---- optimizer updates --------------------------------------------------------------------------- */

/* About ResNet18's 11.2M parameters; odd, so no vector width divides it. */
#define OPT_N ((size_t)11200003)
enum { OPT_STEPS = 5 };

typedef struct opt_run {
    twin p, g, s1, s2;   /* parameters, gradient, up to two state slabs */
} opt_run;

static opt_run opt_start(void)
{
    opt_run r = {twin_uniform(OPT_N, -1, 1), twin_new(OPT_N * sizeof(float)),
                 twin_new(OPT_N * sizeof(float)), twin_new(OPT_N * sizeof(float))};
    return r;
}

/* A fresh gradient for the next step, the same on both sides. */
static void opt_gradient(opt_run *r)
{
    float *h = host_uniform(OPT_N, -1, 1);
    twin_upload(&r->g, h);
    rt_free(h);
}

static void opt_end(const char *name, opt_run *r, const char *s1, const char *s2)
{
    check_bits(named(name, "parameters"), &r->p);
    if (s1)
        check_bits(named(name, s1), &r->s1);
    if (s2)
        check_bits(named(name, s2), &r->s2);
    twin_free(&r->p);
    twin_free(&r->g);
    twin_free(&r->s1);
    twin_free(&r->s2);
}

static void test_sgd(void)
{
    opt_run r = opt_start();
    const rt_sgd_coef c = {.neg_lr = -0.05f, .weight_decay = 5e-4f, .use_weight_decay = 1};
    for (int step = 0; step < OPT_STEPS; step++) {
        opt_gradient(&r);
        for (int s = 0; s < SIDES; s++)
            CHECK_OK(be[s]->sgd_update(F(r.p, s), F(r.g, s), OPT_N, &c));
    }
    opt_end("sgd, 5 steps:", &r, NULL, NULL);
}

static void test_sgd_momentum(const char *name, float damp, int nesterov)
{
    opt_run r = opt_start();
    rt_sgd_coef c = {.neg_lr = -0.05f, .weight_decay = 5e-4f, .momentum = 0.9f,
                     .one_minus_damp = (float)(1.0 - damp), .use_weight_decay = 1,
                     .nesterov = nesterov};
    for (int step = 0; step < OPT_STEPS; step++) {
        c.first = step == 0;
        opt_gradient(&r);
        for (int s = 0; s < SIDES; s++)
            CHECK_OK(be[s]->sgd_momentum_update(F(r.p, s), F(r.s1, s), F(r.g, s), OPT_N, &c));
    }
    opt_end(name, &r, "momentum buffer", NULL);
}

/* The per-step coefficients as the optimizer computes them (double, then
 * rounded to float), lr 1e-3, betas (0.9, 0.999), eps 1e-8. */
static rt_adam_coef adam_coef(int step, int adamw)
{
    const double lr = 1e-3, b1 = 0.9, b2 = 0.999, wd = 1e-2;
    return (rt_adam_coef){
        .l2 = adamw ? 0.0f : (float)wd, .decay = adamw ? (float)(1 - lr * wd) : 1.0f,
        .beta1 = (float)b1, .one_minus_beta1 = (float)(1 - b1),
        .beta2 = (float)b2, .one_minus_beta2 = (float)(1 - b2),
        .bc2_sqrt = (float)sqrt(1 - pow(b2, step)), .eps = 1e-8f,
        .neg_step_size = (float)(-lr / (1 - pow(b1, step))), .use_l2 = !adamw};
}

static void test_adam(int adamw)
{
    opt_run r = opt_start();
    for (int step = 1; step <= OPT_STEPS; step++) {
        const rt_adam_coef c = adam_coef(step, adamw);
        opt_gradient(&r);
        for (int s = 0; s < SIDES; s++)
            CHECK_OK(be[s]->adam_update(F(r.p, s), F(r.s1, s), F(r.s2, s), F(r.g, s), OPT_N,
                                        &c));
    }
    opt_end(adamw ? "adamw, 5 steps:" : "adam (L2), 5 steps:", &r, "exp_avg", "exp_avg_sq");
}

static void test_optimizers(void)
{
    test_sgd();
    test_sgd_momentum("sgd momentum, 5 steps:", 0.0f, 0);
    test_sgd_momentum("sgd momentum dampening 0.1, 5 steps:", 0.1f, 0);
    test_sgd_momentum("sgd nesterov, 5 steps:", 0.0f, 1);
    test_adam(0);
    test_adam(1);
}

int main(void)
{
    be[CPU] = rt_backend_find("cpu");
    be[GPU] = rt_backend_find("cuda");
    if (!be[GPU]) {
        printf("SKIP: this build has no cuda backend (./configure --with-cuda)\n");
        return 77;
    }
    if (rt_gpu_count() == 0) {
        printf("SKIP: no GPU is visible to this process (rt_gpu_count() == 0)\n");
        return 77;
    }
    CHECK(be[CPU] != NULL);
    CHECK_OK(rt_gpu_open(0, &(rt_gpu_opts){.deterministic = 1}));
    if (check_failures)
        return CHECK_DONE();
    char desc[512];
    rt_gpu_describe(desc, sizeof desc);
    printf("%s\n", desc);
    rt_rng_init(&test_rng, rt_rng_key(2024, 11, 0, 0));
    test_table();
    test_memory();
    test_linear("linear 512->10 [128]", BATCH, 512, 10);
    test_linear("linear 784->512 [32]", 32, 784, 512);
    test_conv();
    test_elementwise();
    test_dropout();
    test_pool();
    test_batchnorm();
    test_losses();
    test_optimizers();
    rt_gpu_close();
    /* Without gpu.deterministic the convolution algorithms are timed in the
     * layer's own calls (conv.c, "Measuring"): the fastest must still be a
     * correct one. */
    CHECK_OK(rt_gpu_open(0, &(rt_gpu_opts){.deterministic = 0}));
    if (check_failures)
        return CHECK_DONE();
    printf("gpu.deterministic = false: algorithms timed in the layer's calls\n");
    test_conv();
    rt_gpu_close();
    return CHECK_DONE();
}
