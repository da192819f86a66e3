/* User-defined models (rt_layer_create_custom, rt_model_create_from_layers):
 * a layer type defined here ("scale": y = w * x elementwise, w one
 * parameter per feature) is built into a model next to a built-in ReLU; its
 * parameters get state_dict names and slab space, forward/backward go
 * through the caller's functions, and caller mistakes (duplicate names, a
 * missing function, ops of another version, a host-only layer on a backend
 * without host memory) are errors, not crashes. Exact float comparisons: the
 * values are products of small integers, representable exactly.
 * Checkpoints of a model whose tensors are not host memory (a stand-in for
 * the GPU backend) are staged through host copies: saved there and loaded
 * on the CPU backend, and the reverse, with every bit kept. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "rtrain/run.h"
#include "rtrain/train.h"

enum { F = 3 };

typedef struct scale { float *w, *dw; int built; } scale;

static rt_status scale_build(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    scale *s = l->impl;
    int shape[1] = {(int)rt_shape_size(in)};
    RT_CHECK(rt_builder_param(b, l, "weight", 1, shape, RT_INIT_ONES, 0, &s->w, &s->dw));
    s->built++;
    *out = in;
    return RT_OK;
}

/* A host layer: it loops over the memory itself (no RT_LAYER_ANY_BACKEND). */
static rt_status scale_forward(rt_layer *l, const rt_nn_ctx *c, float *y, const float *x,
                               int n)
{
    const scale *s = l->impl;
    for (int i = 0; i < n * F; i++)
        y[i] = s->w[i % F] * x[i];
    return RT_OK;
}

static rt_status scale_backward(rt_layer *l, const rt_nn_ctx *c, float *dx, const float *dy,
                                const float *x, const float *y, int n)
{
    scale *s = l->impl;
    for (int i = 0; i < n * F; i++) {
        s->dw[i % F] += dy[i] * x[i];
        if (dx)
            dx[i] = dy[i] * s->w[i % F];
    }
    return RT_OK;
}

static const rt_layer_ops scale_ops = {
    .version = RT_LAYER_OPS_VERSION, .type = "scale", .build = scale_build,
    .forward = scale_forward, .backward = scale_backward,
};

static rt_layer *make_scale(const char *name)
{
    rt_layer *l = NULL;
    scale *s = calloc(1, sizeof *s);
    if (s && rt_layer_create_custom(&l, &scale_ops, name, s) != RT_OK)
        free(s);
    return l;
}

static void test_model(void)
{
    rt_layer *layers[3] = {make_scale("first"), NULL, make_scale("second")};
    rt_layer_spec relu;
    rt_layer_spec_default(&relu, RT_LAYER_RELU);
    CHECK_OK(rt_layer_create(&layers[1], &relu, "act"));
    CHECK(layers[0] && layers[2]);
    rt_model *m = NULL;
    CHECK_OK(rt_model_create_from_layers(&m, NULL, layers, 3, (rt_shape){F, 1, 1}, 2, 1));
    CHECK(rt_model_num_params(m) == 2 * F);
    CHECK(rt_model_num_tensors(m) == 2);
    CHECK(rt_model_find_tensor(m, "first.weight") != NULL);
    CHECK(rt_model_find_tensor(m, "second.weight") != NULL);
    CHECK(((scale *)rt_model_layer(m, 0)->impl)->built == 1);
    /* Parameters initialised by the model (RT_INIT_ONES); set second's to 2. */
    float *p = rt_model_params(m);
    const rt_tensor_info *t2 = rt_model_find_tensor(m, "second.weight");
    for (int i = 0; i < F; i++) {
        CHECK(p[i] == 1.0f);
        p[t2->offset + i] = 2.0f;
    }
    float x[2 * F] = {1, -2, 3, 4, 5, -6};
    const float *y = NULL;
    CHECK_OK(rt_model_forward(m, NULL, x, 2, &y));
    CHECK(y != NULL);
    if (!y)
        return;
    for (int i = 0; i < 2 * F; i++)
        CHECK(y[i] == (x[i] > 0 ? 2.0f * x[i] : 0.0f));
    float dy[2 * F] = {1, 1, 1, 1, 1, 1};
    CHECK_OK(rt_model_zero_grad(m));
    CHECK_OK(rt_model_backward(m, NULL, dy, 2));
    const float *g = rt_model_grads(m);
    /* d/dw_first[f] = sum_n 2 * x[n][f] over positive x; d/dw_second = relu(x). */
    for (int f = 0; f < F; f++) {
        float first = 0, second = 0;
        for (int n = 0; n < 2; n++) {
            float v = x[n * F + f];
            first += v > 0 ? 2.0f * v : 0.0f;
            second += v > 0 ? v : 0.0f;
        }
        CHECK(g[f] == first);
        CHECK(g[t2->offset + f] == second);
    }
    rt_model_free(m);
}

static void test_errors(void)
{
    rt_layer *l = NULL;
    rt_layer_ops no_backward = scale_ops;
    no_backward.backward = NULL;
    CHECK(rt_layer_create_custom(&l, &no_backward, "x", NULL) == RT_ERR_INVALID_ARG);
    CHECK(l == NULL);
    CHECK(rt_layer_create_custom(&l, &scale_ops, "", NULL) == RT_ERR_INVALID_ARG);
    rt_error_clear();
    /* ops written for another layout of rt_layer_ops */
    rt_layer_ops old = scale_ops;
    old.version = RT_LAYER_OPS_VERSION + 1;
    CHECK(rt_layer_create_custom(&l, &old, "x", NULL) == RT_ERR_INVALID_ARG);
    CHECK(strstr(rt_error_message(), "RT_LAYER_OPS_VERSION") != NULL);
    rt_error_clear();

    /* A host layer on a backend whose memory is not host memory (a stand-in
     * table: the CPU's kernels without the host-memory flag). */
    rt_backend device = *rt_backend_find("cpu");
    device.flags &= ~RT_BACKEND_HOST_MEMORY;
    rt_layer *host_layer[1] = {make_scale("host")};
    rt_model *dm = NULL;
    CHECK(rt_model_create_from_layers(&dm, &device, host_layer, 1, (rt_shape){F, 1, 1}, 2, 1) ==
          RT_ERR_UNSUPPORTED);
    CHECK(dm == NULL && strstr(rt_error_message(), "'host'") != NULL);
    rt_error_clear();
    /* Built-in layers compute through the table: accepted there. */
    rt_layer_spec relu;
    rt_layer_spec_default(&relu, RT_LAYER_RELU);
    rt_layer *builtin[1] = {NULL};
    CHECK_OK(rt_layer_create(&builtin[0], &relu, "act"));
    CHECK_OK(rt_model_create_from_layers(&dm, &device, builtin, 1, (rt_shape){F, 1, 1}, 2, 1));
    rt_model_free(dm);

    rt_layer *dup[2] = {make_scale("same"), make_scale("same")};
    rt_model *m = (rt_model *)&m;   /* must be reset to NULL on failure */
    CHECK(rt_model_create_from_layers(&m, NULL, dup, 2, (rt_shape){F, 1, 1}, 2, 1) ==
          RT_ERR_INVALID_ARG);
    CHECK(m == NULL);
    CHECK(strstr(rt_error_message(), "same") != NULL);
    rt_error_clear();   /* the layers were freed by the failed call (ASan/valgrind) */

    rt_layer *one[1] = {make_scale("one")};
    CHECK(rt_model_create_from_layers(&m, NULL, one, 1, (rt_shape){F, 1, 1}, 0, 1) != RT_OK);
    CHECK(m == NULL);
    rt_error_clear();
}

/* Parameters, buffers and Adam state of the model on backend be, filled
 * with values that depend on `salt` (the stand-in's upload copies). */
static void fill_state(rt_model *m, rt_optimizer *o, float salt)
{
    const rt_backend *be = rt_model_backend(m);
    size_t np = rt_model_num_params(m), nb = rt_model_num_buffers(m);
    size_t ns = np * (size_t)rt_optim_state_slots(o);
    float *v = calloc(np + nb + ns + 1, sizeof *v);
    CHECK(v != NULL);
    if (!v)
        return;
    for (size_t i = 0; i < np + nb + ns; i++)
        v[i] = salt + (float)i * 0.25f;
    CHECK_OK(be->upload(rt_model_params(m), v, np * sizeof(float)));
    CHECK_OK(be->upload(rt_model_buffers(m), v + np, nb * sizeof(float)));
    CHECK_OK(be->upload(rt_optim_state(o, 0), v + np + nb, ns * sizeof(float)));
    free(v);
}

/* All of m's and o's floats, downloaded into one host array. */
static float *read_state(rt_model *m, rt_optimizer *o, size_t *count)
{
    const rt_backend *be = rt_model_backend(m);
    size_t np = rt_model_num_params(m), nb = rt_model_num_buffers(m);
    size_t ns = np * (size_t)rt_optim_state_slots(o);
    float *v = calloc(np + nb + ns + 1, sizeof *v);
    *count = np + nb + ns;
    if (v) {
        CHECK_OK(be->download(v, rt_model_params(m), np * sizeof(float)));
        CHECK_OK(be->download(v + np, rt_model_buffers(m), nb * sizeof(float)));
        CHECK_OK(be->download(v + np + nb, rt_optim_state(o, 0), ns * sizeof(float)));
    }
    return v;
}

typedef struct trained { rt_model *m; rt_optimizer *o; } trained;

static trained make_trained(const rt_backend *be)
{
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_SEQUENTIAL);
    const rt_layer_type types[] = {RT_LAYER_LINEAR, RT_LAYER_BATCHNORM2D, RT_LAYER_RELU,
                                   RT_LAYER_LINEAR};
    const int outs[] = {5, 0, 0, 2};
    spec.num_layers = 4;
    for (int i = 0; i < 4; i++) {
        rt_layer_spec_default(&spec.layers[i], types[i]);
        spec.layers[i].out = outs[i];
    }
    trained t = {NULL, NULL};
    CHECK_OK(rt_model_create(&t.m, be, &spec, (rt_shape){F, 1, 1}, 2, 1));
    rt_optim_opts oo;
    rt_optim_opts_default(&oo, RT_OPTIM_ADAM);
    if (t.m)
        CHECK_OK(rt_optim_create(&t.o, be, &oo, rt_model_num_params(t.m)));
    return t;
}

static int save(trained *t, const char *dir, int iteration)
{
    rt_train_state st = {.model = t->m, .optim = t->o, .optimizer_type = "adam",
                         .training_iteration = iteration, .step = iteration};
    char committed[512];
    rt_status s = rt_ckpt_save(NULL, dir, &st, NULL, 0, NULL, committed, sizeof committed);
    CHECK_OK(s);
    return s == RT_OK;
}

static void load(trained *t, const char *ckpt)
{
    rt_train_state st = {.model = t->m, .optim = t->o, .optimizer_type = "adam"};
    CHECK_OK(rt_ckpt_load(NULL, ckpt, &st, RT_CKPT_LOAD_ALL, NULL));
}

static int same_state(trained *a, trained *b)
{
    size_t na = 0, nb = 0;
    float *va = read_state(a->m, a->o, &na), *vb = read_state(b->m, b->o, &nb);
    int same = va && vb && na == nb && na > 0 && !memcmp(va, vb, na * sizeof(float));
    free(va);
    free(vb);
    return same;
}

static void test_device_checkpoints(void)
{
    rt_backend device = *rt_backend_find("cpu");
    device.flags &= ~RT_BACKEND_HOST_MEMORY;
    char dir[] = "/tmp/rtrain-test-devckpt.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    trained dev = make_trained(&device), host = make_trained(rt_backend_find("cpu"));
    trained dev2 = make_trained(&device);
    if (!dev.o || !host.o || !dev2.o)
        return;
    char ckpt0[600], ckpt1[600];
    snprintf(ckpt0, sizeof ckpt0, "%s/checkpoint_000000", dir);
    snprintf(ckpt1, sizeof ckpt1, "%s/checkpoint_000001", dir);
    /* "GPU" -> CPU */
    fill_state(dev.m, dev.o, 1.5f);
    fill_state(host.m, host.o, -7.0f);
    CHECK(!same_state(&dev, &host));
    if (save(&dev, dir, 1))
        load(&host, ckpt0);
    CHECK_MSG(same_state(&dev, &host), "device checkpoint loaded on the CPU differs");
    /* CPU -> "GPU" */
    fill_state(host.m, host.o, 3.0f);
    fill_state(dev2.m, dev2.o, 0.0f);
    if (save(&host, dir, 2))
        load(&dev2, ckpt1);
    CHECK_MSG(same_state(&host, &dev2), "CPU checkpoint loaded on the device differs");
    /* A failed load leaves the device's tensors as they were. */
    size_t n0 = 0, n1 = 0;
    float *before = read_state(dev2.m, dev2.o, &n0);
    rt_train_state st = {.model = dev2.m, .optim = dev2.o, .optimizer_type = "sgd"};
    CHECK(rt_ckpt_load(NULL, ckpt0, &st, RT_CKPT_LOAD_ALL, NULL) == RT_ERR_CONFIG);
    rt_error_clear();
    float *after = read_state(dev2.m, dev2.o, &n1);
    CHECK(before && after && n0 == n1 && !memcmp(before, after, n0 * sizeof(float)));
    free(before);
    free(after);
    trained all[3] = {dev, host, dev2};
    for (int i = 0; i < 3; i++) {
        rt_optim_free(all[i].o);
        rt_model_free(all[i].m);
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* The automatic step timeout: 20 x the median step time, at least the
 * floor (exact: the products of small binary fractions are exact). */
static void test_step_timeout_auto(void)
{
    double odd[5] = {0.5, 100.0, 0.25, 0.75, 0.5};   /* median 0.5; one outlier */
    CHECK(rt_session_step_timeout_auto(odd, 5, 1.0) == 10.0);
    double even[4] = {2.0, 1.0, 4.0, 3.0};             /* median 2.5 */
    CHECK(rt_session_step_timeout_auto(even, 4, 1.0) == 50.0);
    double fast[3] = {0.01, 0.02, 0.03};               /* 20 x 0.02 < the floor */
    CHECK(rt_session_step_timeout_auto(fast, 3, 300.0) == 300.0);
    double slow[1] = {30.0};
    CHECK(rt_session_step_timeout_auto(slow, 1, 300.0) == 600.0);
}

int main(void)
{
    test_step_timeout_auto();
    test_model();
    test_errors();
    test_device_checkpoints();
    return CHECK_DONE();
}
