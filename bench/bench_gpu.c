/* rtrain's side of the one-GPU speed comparison with PyTorch
 * (bench/gpu_torch.py is the other side; tools/gpu/device-check runs both).
 *
 * One training step is what the built-in loop does (src/train/trainer.c):
 * rt_model_forward, rt_model_loss_grad (cross-entropy, mean over the batch),
 * rt_model_backward, rt_optim_step (Adam, lr 1e-3), rt_model_zero_grad. The
 * model is built on the "cuda" backend through the public API, as the
 * examples' configs describe it: "resnet18" (torchvision's ResNet-18 with a
 * 1-channel 7x7/2 conv1, 10 classes) or "mlp" (Ray Train's FashionMNIST MLP,
 * 784-512-512-10 with a ReLU after every Linear). One batch of random
 * images and labels is made once; rt_model_forward and rt_model_loss_grad
 * take host memory and upload it each step (the public API has no
 * device-resident input), which PyTorch's side does not do: at batch 256
 * that is 0.8 MB per step.
 *
 * Timing: 20 warm-up steps, then 5 windows of 100 steps, each timed with the
 * wall clock between two be->synchronize() calls; the median window gives
 * img_per_s. peak_mb is rt_gpu_peak_bytes() (the device allocations of the
 * table: slabs, activations, optimizer state, scratch) in MiB.
 *
 *   bench_gpu --model resnet18|mlp --batch B --tf32 0|1
 *   prints: rtrain <model> batch=<B> tf32=<0|1> img_per_s=<median> peak_mb=<MiB>
 *
 * Exit codes: 0 ok, 1 failure, 2 usage, 77 no GPU (or no CUDA backend).
 * --backend NAME (default cuda) runs on another backend (cpu, naive) to
 * check this program without a GPU; --warmup, --windows and --steps shrink
 * the run for that. Not collective: MPI is never initialised. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rtrain/core.h"
#include "rtrain/backend.h"
#include "rtrain/nn.h"
#include "rtrain/optim.h"
#include "bench_util.h"

enum { EXIT_USAGE = 2, EXIT_SKIP = 77, MAX_WINDOWS = 64 };

typedef struct bench_opts {
    const char *model;     /* "resnet18" or "mlp" */
    const char *backend;   /* "cuda" unless checking the program elsewhere */
    int batch, tf32, deterministic;
    int warmup, windows, steps;
} bench_opts;

/* What one step needs, built once. */
typedef struct bench_state {
    const rt_backend *be;
    rt_model *model;
    rt_optimizer *optim;
    const rt_loss *loss;
    float *x;          /* host [batch][1][28][28] */
    int32_t *labels;   /* host [batch] */
    float lr;
    double last_loss;  /* mean loss of the last step */
} bench_state;

static int usage(void)
{
    fprintf(stderr,
            "usage: bench_gpu --model resnet18|mlp --batch B --tf32 0|1\n"
            "                 [--deterministic 0|1] [--backend cuda|cpu|naive]\n"
            "                 [--warmup 20] [--windows 5] [--steps 100]\n");
    return EXIT_USAGE;
}

/* A non-negative integer option value, or -1. */
static int int_arg(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return (end == s || *end || v < 0 || v > (1L << 30)) ? -1 : (int)v;
}

static int parse_args(bench_opts *o, int argc, char **argv)
{
    *o = (bench_opts){.model = NULL, .backend = "cuda", .batch = 0, .tf32 = -1,
                      .deterministic = 0, .warmup = 20, .windows = 5, .steps = 100};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return -1;
        i++;
        if (!strcmp(k, "--model"))
            o->model = v;
        else if (!strcmp(k, "--backend"))
            o->backend = v;
        else if (!strcmp(k, "--batch"))
            o->batch = int_arg(v);
        else if (!strcmp(k, "--tf32"))
            o->tf32 = int_arg(v);
        else if (!strcmp(k, "--deterministic"))
            o->deterministic = int_arg(v);
        else if (!strcmp(k, "--warmup"))
            o->warmup = int_arg(v);
        else if (!strcmp(k, "--windows"))
            o->windows = int_arg(v);
        else if (!strcmp(k, "--steps"))
            o->steps = int_arg(v);
        else
            return -1;
    }
    if (!o->model || (strcmp(o->model, "resnet18") && strcmp(o->model, "mlp")))
        return -1;
    if (o->batch < 1 || o->tf32 < 0 || o->tf32 > 1 || o->deterministic < 0 ||
        o->deterministic > 1 || o->warmup < 0 || o->windows < 1 || o->windows > MAX_WINDOWS ||
        o->steps < 1)
        return -1;
    return 0;
}

/* The examples' models: fashion_mnist_resnet18.cfg and fashion_mnist_mlp.cfg. */
static void model_spec(rt_model_spec *s, const char *model)
{
    if (!strcmp(model, "resnet18")) {
        rt_model_spec_default(s, RT_ARCH_RESNET18);
        s->conv1_kernel = 7;
        s->conv1_stride = 2;
        s->conv1_padding = 3;
    } else {
        rt_model_spec_default(s, RT_ARCH_MLP);
        s->num_hidden = 2;
        s->hidden[0] = s->hidden[1] = 512;
        s->output_relu = 1;
    }
    s->num_classes = 10;
}

static rt_status state_init(bench_state *st, const bench_opts *o)
{
    rt_model_spec spec;
    model_spec(&spec, o->model);
    st->be = rt_backend_find(o->backend);
    if (!st->be)
        return RT_ERROR(RT_ERR_INVALID_ARG, "no backend \"%s\" in this build", o->backend);
    rt_shape in = {1, 28, 28};
    RT_CHECK(rt_model_create(&st->model, st->be, &spec, in, o->batch, 1));
    rt_optim_opts opts;
    rt_optim_opts_default(&opts, RT_OPTIM_ADAM);
    opts.lr = 1e-3f;
    st->lr = opts.lr;
    RT_CHECK(rt_optim_create(&st->optim, st->be, &opts, rt_model_num_params(st->model)));
    st->loss = rt_loss_find("cross_entropy");
    if (!st->loss)
        return RT_ERROR(RT_ERR_INTERNAL, "no cross_entropy loss");
    size_t count = (size_t)o->batch * rt_shape_size(in);
    RT_CHECK(rt_alloc(&st->x, count, sizeof *st->x, "benchmark images"));
    RT_CHECK(rt_alloc(&st->labels, (size_t)o->batch, sizeof *st->labels, "benchmark labels"));
    rt_rng rng;
    rt_rng_init(&rng, rt_rng_key(1, 0, 0, 0));
    for (size_t i = 0; i < count; i++)
        st->x[i] = rt_rng_normal(&rng);
    for (int i = 0; i < o->batch; i++)
        st->labels[i] = (int32_t)rt_rng_below(&rng, 10);
    return rt_model_zero_grad(st->model);
}

static void state_free(bench_state *st)
{
    rt_optim_free(st->optim);
    rt_model_free(st->model);
    rt_free(st->x);
    rt_free(st->labels);
}

/* One optimizer step, sequenced as the trainer does it. */
static rt_status train_step(bench_state *st, int n)
{
    rt_nn_ctx ctx = {.train = 1, .rng_key = 1};
    double sum = 0.0;
    RT_CHECK(rt_model_forward(st->model, &ctx, st->x, n, NULL));
    RT_CHECK(rt_model_loss_grad(st->model, st->loss, st->labels, n, 1.0f / (float)n, &sum,
                                NULL));
    RT_CHECK(rt_model_backward(st->model, &ctx, NULL, n));
    RT_CHECK(rt_optim_step(st->optim, rt_model_params(st->model), rt_model_grads(st->model),
                           st->lr));
    RT_CHECK(rt_model_zero_grad(st->model));
    st->last_loss = sum / n;
    return RT_OK;
}

/* Warm-up, then the timed windows; fills img_per_s[windows]. */
static rt_status run(bench_state *st, const bench_opts *o, double *img_per_s)
{
    for (int i = 0; i < o->warmup; i++)
        RT_CHECK(train_step(st, o->batch));
    RT_CHECK(st->be->synchronize());
    for (int w = 0; w < o->windows; w++) {
        double t0 = rt_time_now();
        for (int i = 0; i < o->steps; i++)
            RT_CHECK(train_step(st, o->batch));
        RT_CHECK(st->be->synchronize());
        double dt = rt_time_now() - t0;
        img_per_s[w] = (double)o->batch * o->steps / (dt > 0 ? dt : 1e-9);
    }
    if (!isfinite(st->last_loss))
        return RT_ERROR(RT_ERR_NUMERIC, "the loss is %g after %d steps", st->last_loss,
                        o->warmup + o->windows * o->steps);
    return RT_OK;
}

/* Opens GPU 0 when the backend is "cuda"; *skip is set when there is none. */
static rt_status open_gpu(const bench_opts *o, int *skip)
{
    *skip = 0;
    if (strcmp(o->backend, "cuda"))
        return RT_OK;
    if (!rt_gpu_built() || rt_gpu_count() == 0) {
        char what[256];
        rt_gpu_describe(what, sizeof what);
        printf("bench_gpu: SKIP: no GPU visible (%s)\n", what);
        *skip = 1;
        return RT_OK;
    }
    rt_gpu_opts g = {.deterministic = o->deterministic, .tf32 = o->tf32};
    RT_CHECK(rt_gpu_open(0, &g));
    char what[512];
    rt_gpu_describe(what, sizeof what);
    fprintf(stderr, "# %s\n", what);
    return RT_OK;
}

int main(int argc, char **argv)
{
    bench_opts o;
    if (parse_args(&o, argc, argv))
        return usage();
    int skip = 0;
    rt_status s = open_gpu(&o, &skip);
    if (skip)
        return EXIT_SKIP;
    bench_state st = {0};
    double ips[MAX_WINDOWS];
    if (s == RT_OK)
        s = state_init(&st, &o);
    if (s == RT_OK)
        s = run(&st, &o, ips);
    if (s == RT_OK) {
        fprintf(stderr, "# backend %s, %zu parameters, loss %.4f after %d steps, windows:",
                o.backend, rt_model_num_params(st.model), st.last_loss,
                o.warmup + o.windows * o.steps);
        for (int w = 0; w < o.windows; w++)
            fprintf(stderr, " %.0f", ips[w]);
        fprintf(stderr, " img/s\n");
        double median = bench_median(ips, o.windows);
        printf("rtrain %s batch=%d tf32=%d img_per_s=%.1f peak_mb=%.1f\n", o.model, o.batch,
               o.tf32, median, (double)rt_gpu_peak_bytes() / 1048576.0);
    } else {
        fprintf(stderr, "bench_gpu: %s\n", rt_error_message());
    }
    state_free(&st);
    if (!strcmp(o.backend, "cuda"))
        rt_gpu_close();
    return s == RT_OK ? 0 : 1;
}
