/* train_func: Ray Train's PyTorch FashionMNIST quickstart, written with the
 * rtrain API. The Python original's structure is kept: a config
 * {lr, batch_size, epochs}, a train_func(config) that every worker runs,
 * train_epoch / validate_epoch, and one ray.train.report per epoch.
 *
 *   mpirun -np 2 train_func [EPOCHS [STEPS_PER_EPOCH]]
 *   mpicc train_func.c $(pkg-config --cflags --libs rtrain) -o train_func
 *
 * STEPS_PER_EPOCH (0: all) shortens an epoch, for a quick try. The data are
 * read from $FASHION_MNIST_DIR (default /usr/share/datasets/fashion-mnist);
 * the run directory is $RTRAIN_STORAGE/train_func (./rtrain_results
 * without it). Exit code 77 when the dataset is missing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <rtrain/rtrain.h>

/* The quickstart's config = {"lr": 1e-3, "batch_size": 64, "epochs": 4}. */
typedef struct train_config {
    float lr;
    int batch_size;          /* global: divided between the workers */
    int epochs;
    long long max_steps;     /* per epoch; 0: the whole epoch */
    char data_dir[RT_PATH_MAX];
} train_config;

/* class NeuralNetwork: Flatten, Linear(784, 512), ReLU, Linear(512, 512),
 * ReLU, Linear(512, 10), ReLU -- rtrain's built-in "mlp" architecture,
 * with the same state_dict names (linear_relu_stack.0.weight, ...). */
static rt_status neural_network(rt_model **out, int max_batch)
{
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_MLP);   /* 784 -> 512 -> 512 -> 10, ReLUs */
    spec.output_relu = 1;                        /* the example's ReLU on the logits */
    return rt_model_create(out, NULL, &spec, (rt_shape){1, 28, 28}, max_batch, 0);
}

static rt_status fashion_mnist(rt_dataset **out, const char *dir, int train)
{
    char images[RT_PATH_MAX + 64], labels[RT_PATH_MAX + 64];
    const char *split = train ? "train" : "t10k";
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    rt_transform to_tensor = {.normalize = 0};   /* ToTensor(): x / 255 */
    return rt_idx_dataset_open(out, images, labels, &to_tensor);
}

typedef struct worker {
    rt_session *s;
    rt_model *model;
    rt_ddp *ddp;
    rt_optimizer *optimizer;
    const rt_loss *loss_fn;   /* nn.CrossEntropyLoss() */
} worker;

/* pred = model(X); loss = loss_fn(pred, y); loss.backward() */
static rt_status forward_backward(worker *w, const rt_nn_ctx *mode, const rt_batch *b)
{
    double loss = 0.0;
    RT_CHECK(rt_model_forward(w->model, mode, b->x, b->n, NULL));
    RT_CHECK(rt_model_loss_grad(w->model, w->loss_fn, b->y, b->n, 1.0f / (float)b->global_n,
                                &loss, NULL));
    return rt_model_backward(w->model, mode, NULL, b->n);
}

/* A failure of this rank after the step's agreement is `pending`: it is
 * agreed at the next step (leaving at once would leave the other ranks in
 * the next collective). */
static rt_status train_epoch(worker *w, rt_loader *loader, int64_t epoch, long long max_steps)
{
    RT_CHECK(rt_loader_start_epoch(loader, epoch, 0));
    rt_nn_ctx train_mode = {.train = 1};
    rt_status pending = RT_OK;
    for (long long step = 0; max_steps == 0 || step < max_steps; step++) {
        rt_batch b;
        int done = 0, stop = 0;
        rt_status st = pending;
        if (st == RT_OK)
            st = rt_loader_next(loader, &b, &done);
        RT_CHECK(rt_session_agree_step(w->s, st, &stop));   /* any rank's error or signal */
        if (done || stop)
            break;
        pending = rt_model_zero_grad(w->model);                  /* optimizer.zero_grad() */
        rt_ddp_begin_backward(w->ddp, 1);
        if (pending == RT_OK && b.n > 0)
            pending = forward_backward(w, &train_mode, &b);
        rt_status fin = rt_ddp_finish(w->ddp);
        if (pending == RT_OK)
            pending = fin;
        if (pending == RT_OK)                                    /* optimizer.step() */
            pending = rt_optim_step(w->optimizer, rt_model_params(w->model),
                                    rt_model_grads(w->model), 1e-3f);
    }
    return rt_session_agree(w->s, pending);
}

/* Test loss (mean over the test set) and accuracy, summed across workers. */
static rt_status validate_epoch(worker *w, rt_loader *loader, double *loss, double *accuracy)
{
    double sums[3] = {0, 0, 0};   /* loss, correct, samples */
    RT_CHECK(rt_loader_start_epoch(loader, 0, 0));
    for (;;) {
        rt_batch b;
        int done = 0, stop_ignored = 0;
        double batch_loss = 0.0;
        int64_t correct = 0;
        rt_status st = rt_loader_next(loader, &b, &done);
        if (st == RT_OK && !done && b.n > 0)   /* model.eval(): no context */
            st = rt_model_forward(w->model, NULL, b.x, b.n, NULL);
        if (st == RT_OK && !done && b.n > 0)
            st = rt_model_loss(w->model, w->loss_fn, b.y, b.n, &batch_loss, &correct);
        RT_CHECK(rt_session_agree_step(w->s, st, &stop_ignored));
        if (done)
            break;
        sums[0] += batch_loss;
        sums[1] += (double)correct;
        sums[2] += b.n;
    }
    RT_CHECK(rt_comm_allreduce(rt_session_comm(w->s), sums, 3, RT_DTYPE_FLOAT64,
                               RT_REDUCE_SUM));
    *loss = sums[0] / sums[2];
    *accuracy = sums[1] / sums[2];
    return RT_OK;
}

static rt_status train_func(rt_session *s, rt_run *run, const train_config *config)
{
    const rt_context *ctx = rt_session_context(s);   /* ray.train.get_context() */
    worker w = {.s = s};
    rt_dataset *train_data = NULL, *test_data = NULL;
    rt_loader *train_loader = NULL, *test_loader = NULL;
    rt_status st = fashion_mnist(&train_data, config->data_dir, 1);
    if (st == RT_OK)
        st = fashion_mnist(&test_data, config->data_dir, 0);
    st = rt_session_agree(s, st);
    /* DataLoader(..., batch_size, shuffle=True) + prepare_data_loader */
    rt_loader_opts train_opts = {.global_batch = config->batch_size, .shuffle = 1, .prefetch = 1};
    rt_loader_opts test_opts = {.global_batch = config->batch_size, .shuffle = 0, .prefetch = 1};
    if (st == RT_OK)
        st = rt_prepare_data_loader(s, train_data, &train_opts, &train_loader);
    if (st == RT_OK)
        st = rt_prepare_data_loader(s, test_data, &test_opts, &test_loader);
    if (st == RT_OK) {
        int max_batch = rt_loader_max_local_batch(train_loader);
        st = neural_network(&w.model, max_batch);
        rt_optim_opts sgd;
        rt_optim_opts_default(&sgd, RT_OPTIM_SGD);
        sgd.lr = config->lr;
        if (st == RT_OK)
            st = rt_optim_create(&w.optimizer, rt_model_backend(w.model), &sgd,
                                 rt_model_num_params(w.model));
        w.loss_fn = rt_loss_find("cross_entropy");
        st = rt_session_agree(s, st);
    }
    if (st == RT_OK)   /* model = ray.train.torch.prepare_model(model) */
        st = rt_prepare_model(s, w.model, 0, &w.ddp);
    if (st == RT_OK)
        st = rt_run_resume_at(run, 0);
    for (int epoch = 0; st == RT_OK && epoch < config->epochs; epoch++) {
        double loss = NAN, accuracy = NAN;
        st = train_epoch(&w, train_loader, epoch, config->max_steps);
        if (st == RT_OK)
            st = validate_epoch(&w, test_loader, &loss, &accuracy);
        rt_metric metrics[] = {{"loss", loss}, {"accuracy", accuracy}, {"epoch", epoch + 1}};
        if (st == RT_OK)   /* ray.train.report(dict(loss=loss)) */
            st = rt_report(run, metrics, 3, NULL);
    }
    if (st == RT_OK && ctx->world_rank == 0)
        printf("train_func: %d epochs on %d workers done\n", config->epochs, ctx->world_size);
    rt_ddp_free(w.ddp);
    rt_optim_free(w.optimizer);
    rt_model_free(w.model);
    rt_loader_free(train_loader);
    rt_loader_free(test_loader);
    rt_dataset_free(train_data);
    rt_dataset_free(test_data);
    return st;
}

int main(int argc, char **argv)
{
    train_config config = {.lr = 1e-3f, .batch_size = 64, .epochs = 4, .max_steps = 0};
    if (argc > 1)
        config.epochs = atoi(argv[1]);
    if (argc > 2)
        config.max_steps = atoll(argv[2]);
    const char *dir = getenv("FASHION_MNIST_DIR");
    snprintf(config.data_dir, sizeof config.data_dir, "%s",
             dir && dir[0] ? dir : "/usr/share/datasets/fashion-mnist");
    char probe[RT_PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", config.data_dir);
    if (access(probe, R_OK) != 0) {
        fprintf(stderr, "train_func: %s not found: set FASHION_MNIST_DIR\n", probe);
        return 77;   /* skipped, as automake's test harness counts it */
    }
    if (config.epochs < 1 || config.max_steps < 0) {
        fprintf(stderr, "usage: train_func [EPOCHS >= 1 [STEPS_PER_EPOCH >= 0]]\n");
        return RT_EXIT_INPUT;
    }

    rt_session *s = NULL;   /* ray.init + TorchTrainer(scaling_config=...): mpirun -np N */
    rt_status st = rt_session_init(&s, &argc, &argv);
    if (st != RT_OK)
        return rt_session_exit_code(s, st);
    static rt_config run_config;   /* RunConfig(name="train_func") */
    rt_config_defaults(&run_config);
    snprintf(run_config.run.name, sizeof run_config.run.name, "train_func");
    run_config.run.overwrite = 1;
    snprintf(run_config.run.resume, sizeof run_config.run.resume, "never");
    rt_run *run = NULL;
    st = rt_run_open(&run, s, &run_config);
    if (st == RT_OK)
        st = train_func(s, run, &config);   /* trainer.fit() */
    if (run) {
        st = rt_run_fail(run, st, -1);
        rt_run_print_summary(run, st);
        rt_run_close(run);
    }
    int code = rt_session_exit_code(s, st);
    rt_session_finalize(s);
    return code;
}
