/* Reference tests of the nn module against PyTorch: models built by
 * rt_model_create are loaded with the exact state_dict tensors of a
 * PyTorch twin (tests/gen_fixtures.py, fixtures in tests/fixtures/), then
 * their outputs, losses, parameter and input gradients and BatchNorm
 * running statistics are compared with PyTorch's. Loading by name is also
 * the state_dict compatibility check: every fixture tensor must exist in
 * the rtrain model with the same shape and kind, and vice versa.
 *
 * The references are computed by PyTorch in float64 and rounded to float32,
 * so the differences measured here are rtrain's float32 rounding only.
 * Tolerances (|got - want| <= atol + rtol * |want|, per element):
 *   - outputs, losses, running statistics: rtol 5e-5, atol 5e-6 times the
 *     largest |want| of the tensor. float32 sums over up to 4608 terms
 *     (resnet18's 3x3x512 convolutions), accumulated in another order by
 *     sgemm/im2col, through up to 18 layers: observed at most ~0.06 of
 *     this tolerance with OpenBLAS on x86-64; the margin is for other
 *     BLAS kernels and thread counts;
 *   - gradients: rtol 1e-4, atol 1e-5 times the largest |want| over ALL
 *     gradients of the case (observed at most ~0.03 of it): rounding noise
 *     is relative to the size of the summed terms (the gradients flowing
 *     through the model), not to the result, which can cancel to ~0 (a
 *     conv bias before BatchNorm has an exact gradient of 0).
 * The largest observed differences are printed per case. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "fixture.h"
#include "rtrain/nn.h"

#define OUT_RTOL 5e-5
#define OUT_ATOL 5e-6   /* times max |want| of the tensor */
#define GRAD_RTOL 1e-4
#define GRAD_ATOL 1e-5  /* times max |want| of all the case's gradients */

/* Largest differences seen in one category of a case, for the report. */
typedef struct diff_stats {
    double max_abs;     /* max |got - want| */
    double max_ratio;   /* max |got - want| / tolerance (<= 1 passes) */
} diff_stats;

static void fixture_path(char *out, size_t size, const char *file)
{
    const char *top = getenv("top_srcdir");
    snprintf(out, size, "%s/tests/fixtures/%s", top ? top : ".", file);
}

static int load_fixture(fixture *f, const char *file)
{
    char path[4096];
    fixture_path(path, sizeof path, file);
    rt_status s = fixture_load(f, path);
    CHECK_OK(s);
    return s == RT_OK;
}

static const fixture_tensor *need(const fixture *f, const char *name)
{
    const fixture_tensor *t = fixture_find(f, name);
    CHECK_MSG(t != NULL, "fixture record '%s' missing; regenerate the fixtures", name);
    return t;
}

static double max_abs(const float *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* Largest |value| over all records whose name starts with prefix. */
static double max_abs_prefix(const fixture *f, const char *prefix)
{
    double m = 0;
    for (int i = 0; i < f->count; i++)
        if (strncmp(f->tensors[i].name, prefix, strlen(prefix)) == 0)
            m = fmax(m, max_abs(f->tensors[i].data, f->tensors[i].count));
    return m;
}

/* One check per tensor (not per element), reporting the worst element.
 * atol < 0: OUT_ATOL times the tensor's own largest |want|. */
static void compare(const char *what, const float *got, const float *want, size_t n,
                    double atol, double rtol, diff_stats *st)
{
    if (atol < 0)
        atol = OUT_ATOL * max_abs(want, n);
    double worst = 0, worst_abs = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        double tol = atol + rtol * fabs(want[i]);
        double r = d / (tol > 0 ? tol : 1e-30);
        if (!(r <= worst)) {   /* also catches NaN */
            worst = r;
            worst_i = i;
        }
        worst_abs = fmax(worst_abs, d);
    }
    if (isnan(worst))
        worst_abs = NAN;
    CHECK_MSG(worst <= 1.0, "%s[%zu] = %.9g, expected %.9g (max|d| %.3g, %.3g x tolerance)",
              what, worst_i, (double)got[worst_i], (double)want[worst_i], worst_abs, worst);
    st->max_abs = fmax(st->max_abs, worst_abs);
    st->max_ratio = fmax(st->max_ratio, worst);
}

static int same_shape(const rt_tensor_info *ti, int ndim, const int *dims)
{
    if (ti->ndim != ndim)
        return 0;
    for (int d = 0; d < ndim; d++)
        if (ti->shape[d] != dims[d])
            return 0;
    return 1;
}

static void shape_str(char *out, size_t size, int ndim, const int *dims)
{
    int len = snprintf(out, size, "[");
    for (int d = 0; d < ndim; d++)
        len += snprintf(out + len, size - len, d ? ",%d" : "%d", dims[d]);
    snprintf(out + len, size - len, "]");
}

/* The rtrain tensor called name with the given shape, or NULL (checked). */
static const rt_tensor_info *find_tensor(rt_model *m, const char *name, int ndim,
                                         const int *dims)
{
    const rt_tensor_info *ti = rt_model_find_tensor(m, name);
    CHECK_MSG(ti != NULL, "state_dict name '%s' has no tensor in the rtrain model", name);
    if (!ti)
        return NULL;
    char a[64], b[64];
    shape_str(a, sizeof a, ti->ndim, ti->shape);
    shape_str(b, sizeof b, ndim, dims);
    int ok = same_shape(ti, ndim, dims);
    CHECK_MSG(ok, "tensor '%s' has shape %s in rtrain, %s in PyTorch", name, a, b);
    return ok ? ti : NULL;
}

static float *tensor_data(rt_model *m, const rt_tensor_info *ti)
{
    return (ti->kind == RT_TENSOR_PARAM ? rt_model_params(m) : rt_model_buffers(m)) +
           ti->offset;
}

/* Copies every "state/<name>" record into the model; checks that the
 * names cover all of the model's tensors (the sets are equal). */
static void load_state(rt_model *m, const fixture *f)
{
    int loaded = 0;
    for (int i = 0; i < f->count; i++) {
        const fixture_tensor *t = &f->tensors[i];
        if (strncmp(t->name, "state/", 6) != 0)
            continue;
        const rt_tensor_info *ti = find_tensor(m, t->name + 6, t->ndim, t->dims);
        if (!ti)
            continue;
        memcpy(tensor_data(m, ti), t->data, t->count * sizeof(float));
        loaded++;
    }
    CHECK_MSG(loaded == rt_model_num_tensors(m), "loaded %d tensors, rtrain model has %d",
              loaded, rt_model_num_tensors(m));
    char key[FIXTURE_NAME_MAX];
    for (int i = 0; i < rt_model_num_tensors(m); i++) {
        snprintf(key, sizeof key, "state/%s", rt_model_tensor(m, i)->name);
        CHECK_MSG(fixture_find(f, key) != NULL, "rtrain tensor '%s' is not in PyTorch's "
                  "state_dict", rt_model_tensor(m, i)->name);
    }
}

/* Compares every record "<prefix><name>" with the model's tensor or
 * gradient of that name; returns how many were compared. */
static int compare_named(rt_model *m, const fixture *f, const char *prefix, int grads,
                         double atol, double rtol, diff_stats *st)
{
    size_t plen = strlen(prefix);
    int compared = 0;
    for (int i = 0; i < f->count; i++) {
        const fixture_tensor *t = &f->tensors[i];
        if (strncmp(t->name, prefix, plen) != 0)
            continue;
        const rt_tensor_info *ti = find_tensor(m, t->name + plen, t->ndim, t->dims);
        if (!ti)
            continue;
        const float *got = grads ? rt_model_grads(m) + ti->offset : tensor_data(m, ti);
        compare(t->name, got, t->data, t->count, atol, rtol, st);
        compared++;
    }
    return compared;
}

static int count_kind(const rt_model *m, rt_tensor_kind kind)
{
    int n = 0;
    for (int i = 0; i < rt_model_num_tensors(m); i++)
        n += rt_model_tensor(m, i)->kind == kind;
    return n;
}

static void print_stats(const char *name, const char *what, const diff_stats *st)
{
    printf("%-11s %-14s max|d| %.3g  (%.3f of tolerance)\n", name, what, st->max_abs,
           st->max_ratio);
}

/* Forward (train mode) + mean cross entropy + backward on a fixture with
 * input, labels, state/, output, loss, grad/ and optionally after/. */
static void classifier_step(const char *name, rt_model *m, const fixture *f)
{
    const fixture_tensor *x = need(f, "input"), *lab = need(f, "labels");
    const fixture_tensor *want_out = need(f, "output"), *want_loss = need(f, "loss");
    if (!x || !lab || !want_out || !want_loss)
        return;
    int n = x->dims[0], classes = (int)rt_shape_size(rt_model_output_shape(m));
    CHECK(want_out->count == (size_t)n * classes);
    if (want_out->count != (size_t)n * classes)
        return;
    int32_t labels[64];
    if (n > 64 || classes > 16) {
        CHECK_MSG(0, "case %s is larger than the test's buffers", name);
        return;
    }
    for (int i = 0; i < n; i++)
        labels[i] = (int32_t)lab->data[i];
    load_state(m, f);
    diff_stats out = {0}, loss = {0}, grad = {0}, buf = {0};
    rt_nn_ctx ctx = {.train = 1};
    const float *logits = NULL;
    CHECK_OK(rt_model_forward(m, &ctx, x->data, n, &logits));
    if (!logits)
        return;
    compare("output", logits, want_out->data, want_out->count, -1, OUT_RTOL, &out);
    double sum = 0.0;
    CHECK_OK(rt_model_loss_grad(m, rt_loss_find("cross_entropy"), labels, n, 1.0f / n, &sum,
                                NULL));
    float l = (float)(sum / n);
    compare("loss", &l, want_loss->data, 1, -1, OUT_RTOL, &loss);
    CHECK_OK(rt_model_zero_grad(m));
    CHECK_OK(rt_model_backward(m, &ctx, NULL, n));
    double gatol = GRAD_ATOL * max_abs_prefix(f, "grad/");
    int ng = compare_named(m, f, "grad/", 1, gatol, GRAD_RTOL, &grad);
    CHECK_MSG(ng == count_kind(m, RT_TENSOR_PARAM), "%s: %d gradients compared, model has "
              "%d parameters", name, ng, count_kind(m, RT_TENSOR_PARAM));
    int nb = compare_named(m, f, "after/", 0, -1, OUT_RTOL, &buf);
    CHECK_MSG(nb == count_kind(m, RT_TENSOR_BUFFER), "%s: %d buffers compared, model has %d",
              name, nb, count_kind(m, RT_TENSOR_BUFFER));
    print_stats(name, "output", &out);
    print_stats(name, "loss", &loss);
    print_stats(name, "param grads", &grad);
    if (nb)
        print_stats(name, "running stats", &buf);
}

/* Builds spec for inputs `in`, loads file and runs classifier_step. */
static void run_classifier_case(const char *name, const char *file, const rt_model_spec *spec,
                                rt_shape in, int max_batch)
{
    fixture f;
    if (!load_fixture(&f, file))
        return;
    rt_model *m = NULL;
    CHECK_OK(rt_model_create(&m, NULL, spec, in, max_batch, 1));
    if (m)
        classifier_step(name, m, &f);
    rt_model_free(m);
    fixture_free(&f);
}

/* (a) the mlp architecture: Flatten, Linear(784,32), ReLU, Linear(32,10). */
static void test_mlp(void)
{
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_MLP);
    spec.num_classes = 10;
    spec.hidden[0] = 32;
    spec.num_hidden = 1;
    spec.output_relu = 0;
    run_classifier_case("mlp", "ref_mlp.bin", &spec, (rt_shape){1, 28, 28}, 4);
}

/* (b) conv, BN (train mode), ReLU, max pool, 1x1 conv, flatten, linear on
 * odd spatial sizes (11x9). */
static void test_conv(void)
{
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_SEQUENTIAL);
    spec.num_classes = 5;
    rt_layer_spec *L = spec.layers;
    rt_layer_spec_default(&L[0], RT_LAYER_CONV2D);
    L[0].out = 8, L[0].kernel = 3, L[0].stride = 2, L[0].padding = 1, L[0].bias = 1;
    rt_layer_spec_default(&L[1], RT_LAYER_BATCHNORM2D);
    rt_layer_spec_default(&L[2], RT_LAYER_RELU);
    rt_layer_spec_default(&L[3], RT_LAYER_MAXPOOL2D);
    L[3].kernel = 3, L[3].stride = 2, L[3].padding = 1;
    rt_layer_spec_default(&L[4], RT_LAYER_CONV2D);
    L[4].out = 4, L[4].kernel = 1, L[4].stride = 1, L[4].padding = 0, L[4].bias = 1;
    rt_layer_spec_default(&L[5], RT_LAYER_FLATTEN);
    rt_layer_spec_default(&L[6], RT_LAYER_LINEAR);
    L[6].out = 5;
    spec.num_layers = 7;
    run_classifier_case("conv", "ref_conv.bin", &spec, (rt_shape){3, 11, 9}, 3);
}

/* (c) torchvision BasicBlock(16, 32, stride 2, 1x1 downsample), train
 * mode, loss = sum(out * dout): output, parameter and input gradients. */
static void test_basicblock(void)
{
    fixture f;
    if (!load_fixture(&f, "ref_basicblock.bin"))
        return;
    const fixture_tensor *x = need(&f, "input"), *want_out = need(&f, "output");
    const fixture_tensor *dout = need(&f, "dout"), *want_dx = need(&f, "grad_input");
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_SEQUENTIAL);
    rt_layer_spec_default(&spec.layers[0], RT_LAYER_BASICBLOCK);
    spec.layers[0].out = 32;
    spec.layers[0].stride = 2;
    spec.num_layers = 1;
    rt_model *m = NULL;
    CHECK_OK(rt_model_create(&m, NULL, &spec, (rt_shape){16, 7, 7}, 2, 1));
    float *dx = NULL;
    if (!m || !x || !want_out || !dout || !want_dx ||
        rt_alloc(&dx, want_dx->count, sizeof(float), "input gradient") != RT_OK)
        goto done;
    CHECK(want_out->count == 2 * rt_shape_size(rt_model_output_shape(m)));
    CHECK(want_dx->count == x->count && x->count == 2 * rt_shape_size((rt_shape){16, 7, 7}));
    if (want_out->count != 2 * rt_shape_size(rt_model_output_shape(m)) ||
        want_dx->count != x->count || x->count != 2 * 16 * 7 * 7)
        goto done;
    diff_stats out = {0}, grad = {0}, buf = {0}, din = {0};
    rt_nn_ctx ctx = {.train = 1};

    /* The model's own forward and backward: output, parameter gradients,
     * running statistics. */
    load_state(m, &f);
    const float *y = NULL;
    CHECK_OK(rt_model_forward(m, &ctx, x->data, 2, &y));
    if (!y)
        goto done;
    compare("output", y, want_out->data, want_out->count, -1, OUT_RTOL, &out);
    CHECK_OK(rt_model_zero_grad(m));
    CHECK_OK(rt_model_backward(m, &ctx, dout->data, 2));
    double gatol = GRAD_ATOL * fmax(max_abs_prefix(&f, "grad/"),
                                    max_abs_prefix(&f, "grad_input"));
    int ng = compare_named(m, &f, "grad/", 1, gatol, GRAD_RTOL, &grad);
    CHECK(ng == count_kind(m, RT_TENSOR_PARAM));
    int nb = compare_named(m, &f, "after/", 0, -1, OUT_RTOL, &buf);
    CHECK(nb == count_kind(m, RT_TENSOR_BUFFER));

    /* The model skips the input gradient of its first layer, so call the
     * block's backward directly (layer contract: din is written when
     * non-NULL), after a fresh forward from the same state. */
    load_state(m, &f);
    CHECK_OK(rt_model_forward(m, &ctx, x->data, 2, &y));
    CHECK_OK(rt_model_zero_grad(m));
    rt_layer *block = rt_model_layer(m, 0);
    CHECK_OK(block->ops->backward(block, &ctx, dx, dout->data, x->data, y, 2));
    compare("grad_input", dx, want_dx->data, want_dx->count, gatol, GRAD_RTOL, &din);
    compare_named(m, &f, "grad/", 1, gatol, GRAD_RTOL, &grad);

    print_stats("basicblock", "output", &out);
    print_stats("basicblock", "param grads", &grad);
    print_stats("basicblock", "input grad", &din);
    print_stats("basicblock", "running stats", &buf);
done:
    rt_free(dx);
    rt_model_free(m);
    fixture_free(&f);
}

/* Value i of a resnet18 fixture tensor, as fill_hashed in gen_fixtures.py:
 * lowbias32 of (i * 0x9E3779B1 + seed * 0x85EBCA77), then float32 ops. */
static float hashed_value(uint32_t seed, uint32_t i, float base, float scale)
{
    uint32_t x = i * 0x9E3779B1u + seed * 0x85EBCA77u;
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    float u = (float)((int)(x % 2001u) - 1000) / 1000.0f;
    return u * scale + base;
}

/* Parses one line of ref_resnet18.txt, checks the tensor's name, kind and
 * shape against the model and fills it. Returns 1 if the tensor was set. */
static int resnet18_set_tensor(rt_model *m, char *line)
{
    char name[RT_NAME_MAX + 1], kind[16];
    int ndim, dims[RT_MAX_NDIM] = {0}, pos = 0, used;
    if (sscanf(line, "%96s %15s %d%n", name, kind, &ndim, &pos) != 3 || ndim < 0 ||
        ndim > RT_MAX_NDIM) {
        CHECK_MSG(0, "bad line in ref_resnet18.txt: %s", line);
        return 0;
    }
    for (int d = 0; d < ndim; d++, pos += used)
        if (sscanf(line + pos, "%d%n", &dims[d], &used) != 1) {
            CHECK_MSG(0, "bad dims in ref_resnet18.txt: %s", line);
            return 0;
        }
    unsigned seed;
    float base, scale;
    if (sscanf(line + pos, "%u %f %f", &seed, &base, &scale) != 3) {
        CHECK_MSG(0, "bad init in ref_resnet18.txt: %s", line);
        return 0;
    }
    const rt_tensor_info *ti = find_tensor(m, name, ndim, dims);
    if (!ti)
        return 0;
    rt_tensor_kind want_kind = strcmp(kind, "param") == 0 ? RT_TENSOR_PARAM : RT_TENSOR_BUFFER;
    CHECK_MSG(ti->kind == want_kind, "'%s' is a %s in PyTorch, not in rtrain", name, kind);
    float *data = tensor_data(m, ti);
    for (size_t i = 0; i < ti->count; i++)
        data[i] = hashed_value(seed, (uint32_t)i, base, scale);
    return 1;
}

/* (d) resnet18 with a 1-channel 7x7/2 conv1 (the Ray Train getting-started
 * model): state_dict names, kinds and shapes equal torchvision's; eval-mode
 * logits match. */
static void test_resnet18(void)
{
    fixture f;
    if (!load_fixture(&f, "ref_resnet18.bin"))
        return;
    char path[4096], line[512];
    fixture_path(path, sizeof path, "ref_resnet18.txt");
    FILE *fp = fopen(path, "r");
    CHECK_MSG(fp != NULL, "cannot open %s", path);
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_RESNET18);
    spec.num_classes = 10;
    spec.conv1_kernel = 7, spec.conv1_stride = 2, spec.conv1_padding = 3;
    rt_model *m = NULL;
    CHECK_OK(rt_model_create(&m, NULL, &spec, (rt_shape){1, 28, 28}, 2, 1));
    const fixture_tensor *x = need(&f, "input"), *want = need(&f, "output");
    if (!fp || !m || !x || !want)
        goto done;
    int lines = 0, set = 0;
    while (fgets(line, sizeof line, fp)) {
        lines++;
        set += resnet18_set_tensor(m, line);
    }
    /* Every torchvision tensor was found with its shape, and the model has
     * no others: the name sets are equal. */
    CHECK_MSG(set == lines && lines == rt_model_num_tensors(m),
              "%d of %d torchvision tensors matched; rtrain has %d", set, lines,
              rt_model_num_tensors(m));
    CHECK(want->count == 2 * rt_shape_size(rt_model_output_shape(m)));
    if (want->count != 2 * rt_shape_size(rt_model_output_shape(m)))
        goto done;
    diff_stats out = {0};
    rt_nn_ctx ctx = {.train = 0};
    const float *y = NULL;
    CHECK_OK(rt_model_forward(m, &ctx, x->data, 2, &y));
    if (!y)
        goto done;
    compare("output", y, want->data, want->count, -1, OUT_RTOL, &out);
    printf("resnet18    names          %d tensors, all matched: %s\n", lines,
           set == lines && lines == rt_model_num_tensors(m) ? "yes" : "no");
    print_stats("resnet18", "eval output", &out);
done:
    if (fp)
        fclose(fp);
    rt_model_free(m);
    fixture_free(&f);
}

int main(void)
{
    test_mlp();
    test_conv();
    test_basicblock();
    test_resnet18();
    return CHECK_DONE();
}
