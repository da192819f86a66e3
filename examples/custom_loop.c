/* custom_loop: a training loop written by a user of rtrain, with a model
 * and a dataset of its own (the rtrain API's counterpart of a Ray Train
 * training function).
 *
 *   mpirun -np 2 custom_loop examples/custom_loop.cfg [key=value ...]
 *   mpicc custom_loop.c $(pkg-config --cflags --libs rtrain) -o custom_loop
 *
 * The model is made of a layer type defined here, "dense" (y = act(W x + b),
 * act = tanh or identity), with its own forward and backward; it registers
 * its weight and bias with rt_builder_param, so DDP all-reduces their
 * gradients and checkpoints store them as "hidden.weight", "head.bias"...
 * The dataset is a fetch callback producing four Gaussian blobs in 8
 * dimensions. Each epoch is reported (loss, accuracy) with a checkpoint;
 * running the same command again continues from the newest checkpoint
 * (run.resume = "auto", the default) until train.epochs is reached. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rtrain/rtrain.h>

enum { FEATURES = 8, HIDDEN = 32, CLASSES = 4, SAMPLES = 2048 };

/* ---- a user-defined layer type -------------------------------------------------- */
typedef struct dense {
    int in, out, tanh_act;
    float *w, *b, *dw, *db;   /* set by the model once its slabs exist */
} dense;

static rt_status dense_build(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out)
{
    dense *d = l->impl;
    if ((int)rt_shape_size(in) != d->in)
        return RT_ERROR(RT_ERR_CONFIG, "layer %s expects %d inputs, gets %zu", l->name, d->in,
                        rt_shape_size(in));
    int wshape[2] = {d->out, d->in}, bshape[1] = {d->out};
    /* nn.Linear's initialisation: U(-1/sqrt(in), 1/sqrt(in)) for both. */
    RT_CHECK(rt_builder_param(b, l, "weight", 2, wshape, RT_INIT_UNIFORM_FAN_IN, d->in,
                              &d->w, &d->dw));
    RT_CHECK(rt_builder_param(b, l, "bias", 1, bshape, RT_INIT_UNIFORM_FAN_IN, d->in,
                              &d->b, &d->db));
    *out = (rt_shape){d->out, 1, 1};
    return RT_OK;
}

/* The layer loops over the tensors itself, so it runs where the model's
 * memory is host memory (the CPU backends); a layer for every backend
 * would compute through l->backend and say RT_LAYER_ANY_BACKEND. */
static rt_status dense_forward(rt_layer *l, const rt_nn_ctx *ctx, float *y, const float *x,
                               int n)
{
    const dense *d = l->impl;
    for (int s = 0; s < n; s++)
        for (int o = 0; o < d->out; o++) {
            float acc = d->b[o];
            for (int i = 0; i < d->in; i++)
                acc += d->w[o * d->in + i] * x[s * d->in + i];
            y[s * d->out + o] = d->tanh_act ? tanhf(acc) : acc;
        }
    return RT_OK;
}

/* Gradients are added (+=) to dw/db; dx is written unless NULL. */
static rt_status dense_backward(rt_layer *l, const rt_nn_ctx *ctx, float *dx, const float *dy,
                                const float *x, const float *y, int n)
{
    dense *d = l->impl;
    for (int s = 0; s < n; s++) {
        if (dx)
            memset(dx + s * d->in, 0, (size_t)d->in * sizeof *dx);
        for (int o = 0; o < d->out; o++) {
            float yo = y[s * d->out + o];
            float g = dy[s * d->out + o] * (d->tanh_act ? 1.0f - yo * yo : 1.0f);
            d->db[o] += g;
            for (int i = 0; i < d->in; i++) {
                d->dw[o * d->in + i] += g * x[s * d->in + i];
                if (dx)
                    dx[s * d->in + i] += g * d->w[o * d->in + i];
            }
        }
    }
    return RT_OK;
}

static const rt_layer_ops dense_ops = {
    .version = RT_LAYER_OPS_VERSION, .type = "dense", .build = dense_build, .forward = dense_forward,
    .backward = dense_backward, .destroy = NULL,   /* impl is freed with free() */
};

static rt_status dense_create(rt_layer **out, const char *name, int in, int outf, int tanh_act)
{
    dense *d = calloc(1, sizeof *d);
    if (!d)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory for layer %s", name);
    *d = (dense){.in = in, .out = outf, .tanh_act = tanh_act};
    rt_status st = rt_layer_create_custom(out, &dense_ops, name, d);
    if (st != RT_OK)
        free(d);
    return st;
}

static rt_status build_model(rt_model **out, int max_batch, uint64_t seed)
{
    rt_layer *layers[2] = {NULL, NULL};
    rt_status st = dense_create(&layers[0], "hidden", FEATURES, HIDDEN, 1);
    if (st == RT_OK)
        st = dense_create(&layers[1], "head", HIDDEN, CLASSES, 0);
    if (st != RT_OK) {
        rt_layer_free(layers[0]);
        return st;
    }
    return rt_model_create_from_layers(out, NULL, layers, 2, (rt_shape){FEATURES, 1, 1},
                                       max_batch, seed);
}

/* ---- a user dataset: a count and a fetch callback ------------------------------- */
/* Sample i: class i % 4, features = the class's centre + N(0, 1.2^2) noise,
 * drawn from a stream keyed by i alone (thread-safe, rank-independent). */
static rt_status blobs_fetch(void *impl, int64_t index, float *x, void *target)
{
    int cls = (int)(index % CLASSES);
    rt_rng rng;
    rt_rng_init(&rng, rt_rng_key(12345, (uint64_t)index, 0, 0));
    for (int f = 0; f < FEATURES; f++) {
        float centre = (f % CLASSES == cls) ? 1.5f : (f / CLASSES == cls % 2 ? 0.5f : -0.5f);
        x[f] = centre + 1.2f * rt_rng_normal(&rng);
    }
    *(int32_t *)target = cls;   /* a class index: the description says so */
    return RT_OK;
}

/* A pure function of the index: safe on the loader's prefetching thread. */
static const rt_dataset_ops blobs_ops = {
    .version = RT_DATASET_OPS_VERSION, .flags = RT_DATASET_THREAD_SAFE,
    .fetch = blobs_fetch, .destroy = NULL,
};
static const rt_sample_desc blobs_desc = {
    .ndim = 1, .shape = {FEATURES}, .dtype = RT_INPUT_F32,
    .target = RT_TARGET_CLASS, .num_classes = CLASSES,
};

/* ---- the training loop ------------------------------------------------------------ */
typedef struct loop {
    rt_session *s;
    rt_config cfg;
    rt_run *run;
    rt_dataset *ds;
    rt_loader *loader;
    rt_model *model;
    rt_ddp *ddp;
    rt_optimizer *opt;
    const rt_loss *loss;
    rt_train_state state;
} loop;

static rt_status restore(loop *L)
{
    char dir[RT_CKPT_PATH_MAX];
    int found;
    RT_CHECK(rt_get_checkpoint(L->s, L->run, &L->cfg, dir, sizeof dir, &found));
    if (found == RT_RESUME_CONTINUE) {
        RT_CHECK(rt_ckpt_load(rt_session_comm(L->s), dir, &L->state, RT_CKPT_LOAD_ALL, NULL));
        if (rt_session_context(L->s)->world_rank == 0)
            printf("custom_loop: resuming from %s at epoch %lld\n", dir,
                   (long long)L->state.epoch + 1);
        return rt_run_resume_at(L->run, (int)L->state.training_iteration);
    }
    /* Starting over: rt_get_checkpoint applied run.resume / run.overwrite to
     * the directory and started the reports over. */
    if (found == RT_RESUME_INIT)
        RT_CHECK(rt_ckpt_load(rt_session_comm(L->s), dir, &L->state, RT_CKPT_LOAD_MODEL, NULL));
    return RT_OK;
}

static rt_status setup(loop *L)
{
    const rt_context *ctx = rt_session_context(L->s);
    RT_CHECK(rt_run_open(&L->run, L->s, &L->cfg));
    /* failure.step_timeout_s < 0 is automatic: this loop does not measure its
     * steps (the built-in one does), so it takes the automatic floor. */
    double timeout = L->cfg.failure.step_timeout_s;
    rt_session_set_step_timeout(L->s, timeout < 0 ? L->cfg.failure.step_timeout_min_s : timeout);
    RT_CHECK(rt_session_agree(L->s, rt_dataset_create(&L->ds, &blobs_ops, NULL, SAMPLES,
                                                      &blobs_desc)));
    int64_t global_batch = L->cfg.data.global_batch_size > 0
                               ? L->cfg.data.global_batch_size
                               : (int64_t)L->cfg.data.batch_size * ctx->world_size;
    uint64_t seed = (uint64_t)L->cfg.train.seed;
    rt_loader_opts lo = {.global_batch = global_batch, .shuffle = L->cfg.data.shuffle,
                         .seed = seed, .prefetch = 1};
    RT_CHECK(rt_prepare_data_loader(L->s, L->ds, &lo, &L->loader));
    int max_batch = rt_loader_max_local_batch(L->loader);
    /* A different seed per rank on purpose: rt_prepare_model makes every
     * rank start from rank 0's weights. */
    rt_status st = build_model(&L->model, max_batch, seed + (uint64_t)ctx->world_rank);
    if (st == RT_OK)
        st = rt_optim_create(&L->opt, rt_model_backend(L->model), &L->cfg.optimizer,
                             rt_model_num_params(L->model));
    L->loss = rt_loss_find("cross_entropy");
    RT_CHECK(rt_session_agree(L->s, st));
    RT_CHECK(rt_prepare_model(L->s, L->model, (size_t)L->cfg.comm.bucket_bytes, &L->ddp));
    L->state = (rt_train_state){.model = L->model, .optim = L->opt,
                                .optimizer_type = rt_optim_type_name(L->cfg.optimizer.type),
                                .seed = seed};
    return restore(L);
}

/* One epoch; returns the global sums of loss, correct answers and samples.
 * A failure on this rank after the step's agreement (backward, the update)
 * is kept in `pending` and agreed at the next step's agreement: leaving at
 * once would leave the other ranks waiting in the next collective. */
static rt_status train_epoch(loop *L, double sums[3])
{
    RT_CHECK(rt_loader_start_epoch(L->loader, L->state.epoch, 0));
    rt_status pending = RT_OK;
    for (;;) {
        rt_batch b;
        int done = 0, stop = 0;
        double loss = 0.0;
        int64_t correct = 0;
        rt_nn_ctx train_mode = {.train = 1};
        rt_status st = pending;
        if (st == RT_OK)
            st = rt_loader_next(L->loader, &b, &done);
        if (st == RT_OK && !done && b.n > 0)
            st = rt_model_forward(L->model, &train_mode, b.x, b.n, NULL);
        if (st == RT_OK && !done && b.n > 0)   /* the loss and its gradient, 1/global batch */
            st = rt_model_loss_grad(L->model, L->loss, b.y, b.n, 1.0f / (float)b.global_n,
                                    &loss, &correct);
        if (st == RT_OK && !isfinite(loss))
            st = RT_ERROR(RT_ERR_NUMERIC, "loss is %g: lower optimizer.lr", loss);
        /* One small agreement per step: any rank's error, or a stop signal. */
        RT_CHECK(rt_session_agree_step(L->s, st, &stop));
        if (done)
            break;
        if (stop)
            return RT_ERROR(RT_STOPPED, "stopped by a signal; run again to resume from the "
                            "last checkpoint");
        sums[0] += loss;
        sums[1] += (double)correct;
        sums[2] += b.n;
        pending = rt_model_zero_grad(L->model);
        rt_ddp_begin_backward(L->ddp, 1);
        if (pending == RT_OK && b.n > 0)
            pending = rt_model_backward(L->model, &train_mode, NULL, b.n);
        rt_status fin = rt_ddp_finish(L->ddp);   /* gradients summed = global mean */
        if (pending == RT_OK)
            pending = fin;
        if (pending == RT_OK)
            pending = rt_optim_step(L->opt, rt_model_params(L->model), rt_model_grads(L->model),
                                    L->cfg.optimizer.lr);
        L->state.step++;
    }
    return rt_run_reduce(L->run, sums, 3, RT_REDUCE_SUM);
}

static rt_status train(loop *L)
{
    rt_ckpt_policy keep = {.num_to_keep = L->cfg.checkpoint.num_to_keep};
    while (L->state.epoch < L->cfg.train.epochs) {
        double sums[3] = {0, 0, 0};
        RT_CHECK(train_epoch(L, sums));
        rt_metric m[] = {
            {"epoch", (double)L->state.epoch + 1}, {"step", (double)L->state.step},
            {"loss", sums[0] / sums[2]}, {"accuracy", sums[1] / sums[2]},
        };
        L->state.epoch++;          /* the checkpoint continues at the next epoch */
        L->state.next_batch = 0;
        RT_CHECK(rt_report_checkpoint(L->s, L->run, m, 4, &L->state, &keep, NULL, 0));
    }
    return RT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mpirun -np N custom_loop CONFIG [key=value ...]\n");
        return RT_EXIT_INPUT;
    }
    static loop L;
    rt_status st = rt_session_init(&L.s, &argc, &argv);
    if (st != RT_OK)
        return rt_session_exit_code(L.s, st);
    st = rt_session_agree(L.s, rt_config_load(&L.cfg, argv[1], argc - 2, argv + 2));
    if (st == RT_OK)
        st = setup(&L);
    if (st == RT_OK)
        st = train(&L);
    if (L.run) {
        st = rt_run_fail(L.run, st, L.state.step);
        rt_run_print_summary(L.run, st);
    }
    rt_run_close(L.run);
    rt_ddp_free(L.ddp);
    rt_optim_free(L.opt);
    rt_model_free(L.model);
    rt_loader_free(L.loader);
    rt_dataset_free(L.ds);
    int code = rt_session_exit_code(L.s, st);
    rt_session_finalize(L.s);
    return code;
}
