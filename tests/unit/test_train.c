/* User-defined models (rt_layer_create_custom, rt_model_create_from_layers):
 * a layer type defined here ("scale": y = w * x elementwise, w one
 * parameter per feature) is built into a model next to a built-in ReLU; its
 * parameters get state_dict names and slab space, forward/backward go
 * through the caller's functions, and caller mistakes (duplicate names, a
 * missing function, ops of another version, a host-only layer on a backend
 * without host memory) are errors, not crashes. Exact float comparisons: the
 * values are products of small integers, representable exactly. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
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
    /* ... but nothing reads its tensors as host memory: a checkpoint of it
     * is refused with a message, not written from device pointers. */
    rt_train_state state = {.model = dm, .training_iteration = 1};
    CHECK(rt_ckpt_save(NULL, "/tmp", &state, NULL, 0, NULL, NULL, 0) == RT_ERR_UNSUPPORTED);
    CHECK(strstr(rt_error_message(), "device memory") != NULL);
    rt_error_clear();
    CHECK(rt_ckpt_load(NULL, "/nonexistent", &state, RT_CKPT_LOAD_MODEL, NULL) ==
          RT_ERR_UNSUPPORTED);
    rt_error_clear();
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

int main(void)
{
    test_model();
    test_errors();
    return CHECK_DONE();
}
