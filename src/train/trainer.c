/* The built-in training loop: data -> model -> DDP -> optimizer, one report
 * per epoch. Every rank runs the same sequence of collectives:
 *   setup (each stage's outcome agreed) -> resume (trainer_ckpt.c) ->
 *   per micro-batch: fetch + forward + loss, then ONE agreement that
 *   carries any rank's failure (loader error, non-finite loss) and any
 *   rank's stop signal, then backward with bucketed gradient all-reduce ->
 *   per epoch: reduce the epoch's sums, evaluate, report, checkpoint.
 * The agreement and the all-reduce wait at most failure.step_timeout_s;
 * past it the job is aborted naming the ranks that do not respond. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "trainer.h"
#include "rtrain/gbdt.h"

rt_status trainer_pick_loss(trainer *t)
{
    t->loss = rt_loss_find(t->cfg->train.loss);
    if (!t->loss)
        return RT_ERROR(RT_ERR_CONFIG, "train.loss '%s' is not a known loss",
                        t->cfg->train.loss);
    return RT_OK;
}

/* scaling.backend agrees with scaling.use_gpu: the cuda backend needs the
 * GPU that use_gpu opens, and use_gpu computes on it. Checked before any
 * GPU is looked at. */
static rt_status check_backend_choice(const rt_config *c)
{
    const char *name = c->scaling.backend;
    int automatic = !name[0] || !strcmp(name, "auto");
    if (c->scaling.use_gpu && !automatic && strcmp(name, "cuda") != 0)
        return RT_ERROR(RT_ERR_CONFIG, "scaling.use_gpu = true but scaling.backend = \"%s\" "
                        "computes on the CPU: set scaling.backend = \"auto\" (or \"cuda\")",
                        name);
    if (!c->scaling.use_gpu && !strcmp(name, "cuda"))
        return RT_ERROR(RT_ERR_CONFIG, "scaling.backend = \"cuda\" needs scaling.use_gpu = "
                        "true (which gives each rank its GPU)");
    return RT_OK;
}

const char *trainer_backend_name(const rt_config *c)
{
    const char *name = c->scaling.backend;
    if (c->scaling.use_gpu)
        return "cuda";
    return !name[0] || !strcmp(name, "auto") ? rt_backend_default()->name : name;
}

static rt_status not_in_build(const char *name)
{
    char list[128];
    rt_backend_list(list, sizeof list);
    return RT_ERROR(RT_ERR_CONFIG, "scaling.backend = \"%s\" is not in this build (it has %s)",
                    name, list);
}

rt_status trainer_backend_in_build(const rt_config *c, const char **name)
{
    RT_CHECK(check_backend_choice(c));
    *name = trainer_backend_name(c);
    for (int i = 0; i < rt_backend_count(); i++)
        if (!strcmp(rt_backend_name_at(i), *name))
            return RT_OK;
    return not_in_build(*name);
}

/* scaling.backend: "auto" is the default backend (cpu), or cuda with
 * scaling.use_gpu. */
static rt_status pick_backend(const trainer *t, const rt_backend **be)
{
    const char *name;
    RT_CHECK(trainer_backend_in_build(t->cfg, &name));
    *be = rt_backend_find(name);
    if (!*be)   /* the CUDA library did not load */
        return not_in_build(name);
    *be = trainer_fault_backend(t, *be);
    return RT_OK;
}

/* Global batch: data.global_batch_size, or data.batch_size per worker. */
rt_status trainer_resolve_batch(trainer *t)
{
    const rt_config *c = t->cfg;
    int world = t->ctx->world_size;
    if (c->scaling.num_workers > 0 && c->scaling.num_workers != world)
        return RT_ERROR(RT_ERR_CONFIG, "scaling.num_workers = %d but MPI started %d ranks: "
                        "launch with mpirun -np %d or change scaling.num_workers",
                        c->scaling.num_workers, world, c->scaling.num_workers);
    RT_CHECK(check_backend_choice(c));
    if (c->data.global_batch_size > 0) {
        if (c->data.global_batch_size % world != 0)
            return RT_ERROR(RT_ERR_CONFIG, "data.global_batch_size = %d does not divide by "
                            "the %d ranks: choose a multiple of %d or set data.batch_size "
                            "(per worker) instead", c->data.global_batch_size, world, world);
        t->global_batch = c->data.global_batch_size;
    } else {
        t->global_batch = (int64_t)c->data.batch_size * world;
    }
    return RT_OK;
}

rt_status trainer_data_sources(const rt_config *c, rt_target_kind target,
                               const char **features, const char **categorical,
                               const rt_node_memory *node_memory, rt_data_source *train,
                               rt_data_source *test)
{
    if (!strcmp(c->data.format, "idx")) {
        *train = (rt_data_source){.x = c->data.train_images, .y = c->data.train_labels};
        *test = (rt_data_source){.x = c->data.test_images, .y = c->data.test_labels};
        return RT_OK;
    }
    for (int i = 0; i < c->data.num_features; i++)
        features[i] = c->data.features[i];
    for (int i = 0; i < c->data.num_categorical; i++)
        categorical[i] = c->data.categorical[i];
    *train = (rt_data_source){
        .file = c->data.train_file, .x = c->data.train_x, .y = c->data.train_y,
        .target = target, .target_column = c->data.target,
        .features = features, .num_features = c->data.num_features,
        .categorical = categorical, .num_categorical = c->data.num_categorical,
        .fill_missing = (rt_fill_policy)rt_config_fill_policy(c),
        .cache = (rt_cache_policy)rt_config_cache_policy(c),
        .node_memory = node_memory,
    };
    if (!train->file[0])
        return RT_ERROR(RT_ERR_CONFIG, "data.format = \"%s\" needs data.train.file (the "
                        "training %s file)", c->data.format, c->data.format);
    *test = *train;
    if (c->data.test_file[0]) {
        test->file = c->data.test_file;
        test->x = c->data.test_x[0] ? c->data.test_x : c->data.train_x;
        test->y = c->data.test_y[0] ? c->data.test_y : c->data.train_y;
        return RT_OK;
    }
    if (c->data.test_fraction <= 0)
        return RT_ERROR(RT_ERR_CONFIG, "data.format = \"%s\" needs data.test.file, or "
                        "data.test_fraction to evaluate on the last rows of %s",
                        c->data.format, c->data.train_file);
    train->first = 0.0;
    train->last = 1.0 - c->data.test_fraction;
    test->first = train->last;
    test->last = 1.0;
    return RT_OK;
}

/* The splits of the config for the loss's targets (data.cache = "node":
 * shared memory on t->comm). */
static rt_status data_sources(trainer *t, rt_data_source *train, rt_data_source *test)
{
    if (t->comm)
        t->node_memory = rt_comm_node_memory(t->comm);   /* data.cache = "node" */
    RT_CHECK(trainer_data_sources(t->cfg, rt_loss_target(t->loss), t->features,
                                  t->categorical, t->comm ? &t->node_memory : NULL, train,
                                  test));
    if (t->check_only)   /* rtrain --check: shapes and targets, the inputs stay in the file */
        train->cache = test->cache = RT_CACHE_NONE;
    return RT_OK;
}

/* The evaluation split must hold samples and targets of the training
 * split's shape (a model is built for one shape). */
static rt_status check_splits_match(const trainer *t)
{
    const rt_sample_desc *a = rt_dataset_desc(t->train_set), *b = rt_dataset_desc(t->test_set);
    int same = a->ndim == b->ndim && a->target == b->target &&
               a->target_size == b->target_size;
    for (int i = 0; same && i < a->ndim; i++)
        same = a->shape[i] == b->shape[i];
    if (!same)
        return RT_ERROR(RT_ERR_CONFIG, "the evaluation data does not match the training data: "
                        "samples of %lld values and %d %s target value(s) per sample for "
                        "training, %lld and %d %s for evaluation; check data.test",
                        (long long)rt_sample_input_size(a), a->target_size,
                        rt_target_kind_name(a->target), (long long)rt_sample_input_size(b),
                        b->target_size, rt_target_kind_name(b->target));
    return RT_OK;
}

/* The training and test splits in data.format (the test split takes the
 * encoding the training split learned), and a loss that takes the targets
 * they have. */
rt_status trainer_open_datasets(trainer *t)
{
    const rt_config *c = t->cfg;
    rt_data_source train, test;
    RT_CHECK(data_sources(t, &train, &test));
    RT_CHECK(rt_dataset_open_splits(&t->train_set, &t->test_set, c->data.format, &train, &test,
                                    &c->data.transform));
    RT_CHECK(check_splits_match(t));
    /* Per-value standardisation is tied to pixel positions that a random
     * crop moves. */
    if (c->data.standardize && c->data.augment.crop_padding > 0)
        return RT_ERROR(RT_ERR_CONFIG, "data.standardize (per value) and "
                        "data.augment.crop_padding do not go together: normalise images per "
                        "channel with data.normalize = { mean = [...]; std = [...]; } instead");
    rt_target_kind have = rt_dataset_desc(t->train_set)->target;
    if (rt_loss_target(t->loss) != have)
        return RT_ERROR(RT_ERR_CONFIG, "train.loss = \"%s\" takes %s targets but the dataset "
                        "has %s targets: choose a loss for them", rt_loss_name(t->loss),
                        rt_target_kind_name(rt_loss_target(t->loss)), rt_target_kind_name(have));
    return RT_OK;
}

/* data.prefetch = -1: a loader thread only where the node has a core that
 * the compute threads leave free; on a node whose cores are all busy the
 * hand-off between threads costs more than loading the batch in place
 * (bench/RESULTS.md, "Data loading"). */
static int prefetch_of(const trainer *t)
{
    if (t->cfg->data.prefetch >= 0)
        return t->cfg->data.prefetch;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int ranks = rt_comm_job_ranks_on_node(t->comm);
    if (ranks < 1)
        ranks = t->ctx->local_size > 0 ? t->ctx->local_size : 1;
    return (long)ranks * t->threads < cores ? 2 : 0;
}

void trainer_loader_opts(const trainer *t, rt_loader_opts *train, rt_loader_opts *test)
{
    const rt_config *c = t->cfg;
    *train = (rt_loader_opts){
        .global_batch = t->global_batch, .shuffle = c->data.shuffle,
        .shuffle_block = c->data.shuffle_block >= 0 ? c->data.shuffle_block
                                                     : rt_dataset_block_rows(t->train_set),
        .seed = (uint64_t)c->train.seed, .drop_last = c->data.drop_last,
        .prefetch = t->check_only ? 0 : prefetch_of(t), .augment = c->data.augment,
    };
    *test = *train;
    test->augment = (rt_augment){0};   /* evaluation sees the images as they are */
    int eval_batch = c->data.eval_batch_size > 0 ? c->data.eval_batch_size
                                                 : (int)(t->global_batch / t->ctx->world_size);
    test->global_batch = (int64_t)eval_batch * t->ctx->world_size;
    test->shuffle = 0;
    test->drop_last = 0;
}

/* This rank's loaders of the training set (shuffled, data.* options) and
 * of the test set (in order, every sample once). Collective. */
static rt_status prepare_loaders(trainer *t)
{
    rt_loader_opts train, test;
    trainer_loader_opts(t, &train, &test);
    rt_debug("data: prefetch %d, shuffle_block %lld", train.prefetch,
             (long long)train.shuffle_block);
    RT_CHECK(rt_prepare_data_loader(t->session, t->train_set, &train, &t->train_loader));
    return rt_prepare_data_loader(t->session, t->test_set, &test, &t->test_loader);
}

/* Optimizer steps per epoch, and the batch splits that cannot work. */
rt_status trainer_plan_epochs(trainer *t)
{
    const rt_config *c = t->cfg;
    /* Synchronised BatchNorm reduces inside every forward: each rank must
     * hold at least one sample of every global batch. */
    int64_t last = rt_dataset_count(t->train_set) % t->global_batch;
    if (c->model.bn_sync && !c->data.drop_last && last > 0 && last < t->ctx->world_size)
        return RT_ERROR(RT_ERR_CONFIG, "with model.sync_batchnorm the last global batch of %lld "
                        "samples leaves some of the %d ranks without data: set "
                        "data.drop_last = true or change the batch size", (long long)last,
                        t->ctx->world_size);
    int64_t batches = rt_loader_batches_per_epoch(t->train_loader);
    int accumulate = c->train.accumulate_steps;
    if (c->train.steps_per_epoch > 0 && c->train.steps_per_epoch * accumulate < batches)
        batches = c->train.steps_per_epoch * accumulate;
    t->steps_per_epoch = batches / accumulate;
    if (t->steps_per_epoch < 1)
        return RT_ERROR(RT_ERR_CONFIG, "an epoch of %lld samples gives no optimizer step with "
                        "global batch %lld and train.accumulate_steps %d: lower them",
                        (long long)rt_dataset_count(t->train_set), (long long)t->global_batch,
                        accumulate);
    return RT_OK;
}

rt_status trainer_create_model(trainer *t, const rt_backend *be, int plan_only)
{
    const rt_config *c = t->cfg;
    int max_batch = rt_loader_max_local_batch(t->train_loader);
    int eval_max = rt_loader_max_local_batch(t->test_loader);
    if (eval_max > max_batch)
        max_batch = eval_max;
    rt_shape in;
    const rt_sample_desc *d = rt_dataset_desc(t->train_set);
    RT_CHECK(rt_sample_model_shape(d, &in));
    /* Classes: the labels of both splits must be outputs of the model. */
    int test_classes = rt_dataset_num_classes(t->test_set);
    int wanted = d->target != RT_TARGET_CLASS ? d->target_size
                 : d->num_classes > test_classes ? d->num_classes : test_classes;
    t->model_spec = c->model;
    if (t->model_spec.num_classes == 0)   /* from the data */
        t->model_spec.num_classes = wanted;
    if (plan_only)
        RT_CHECK(rt_model_plan(&t->model, be, &t->model_spec, in, max_batch));
    else if (t->node)
        RT_CHECK(rt_model_create_in(&t->model, be, &t->model_spec, in, max_batch,
                                    (uint64_t)c->train.seed, trainer_node_params(t->node),
                                    trainer_node_grads(t->node)));
    else
        RT_CHECK(rt_model_create(&t->model, be, &t->model_spec, in, max_batch,
                                 (uint64_t)c->train.seed));
    int outputs = (int)rt_shape_size(rt_model_output_shape(t->model));
    if (d->target == RT_TARGET_CLASS && outputs < wanted)
        return RT_ERROR(RT_ERR_CONFIG, "the model outputs %d values but the dataset has %d "
                        "classes: set model.num_classes = %d (or 0: from the data)", outputs,
                        wanted, wanted);
    if (d->target == RT_TARGET_VECTOR && outputs != wanted)
        return RT_ERROR(RT_ERR_CONFIG, "the model outputs %d values but each target has %d: "
                        "set model.num_classes = %d (or 0: from the data), or end "
                        "model.layers with %d outputs", outputs, wanted, wanted, wanted);
    return RT_OK;
}

/* The model on the configured backend, its optimizer, and the buffer
 * snapshot a stop signal restores. */
static rt_status build_model(trainer *t)
{
    const rt_config *c = t->cfg;
    const rt_backend *be = NULL;
    RT_CHECK(pick_backend(t, &be));
    RT_CHECK(trainer_create_model(t, be, 0));
    if (t->node)
        RT_CHECK(trainer_node_attach(t->node, t->model));
    void *snapshot = NULL;
    RT_CHECK(be->alloc(&snapshot, (rt_model_num_buffers(t->model) + 1) * sizeof(float),
                       "buffer snapshot"));
    t->buffers_before = snapshot;
    return rt_optim_create_in(&t->optim, be, &c->optimizer, rt_model_num_params(t->model),
                              t->node ? trainer_node_state(t->node) : NULL);
}

/* RTRAIN_DDP: how the ranks combine their gradients. "allreduce": an MPI
 * all-reduce, then each rank's own optimizer step (rtrain/comm.h's DDP);
 * "node": the node update (node_update.c), possible when every rank shares
 * memory with every other and the model is in host memory. Unset: "node"
 * where possible for 2 ranks, where its sums are the all-reduce's bit for
 * bit, so a run gives the same bits on one node as on two; beyond 2 ranks
 * the node update sums in rank order and MPI in its own, so the bits would
 * depend on the placement: "allreduce" unless asked. *be: the backend,
 * when it was looked up. Not collective. */
static rt_status node_update_wanted(const trainer *t, int *wanted, const rt_backend **be)
{
    *wanted = 0;
    *be = NULL;
    const char *env = getenv("RTRAIN_DDP");
    if (env && *env && strcmp(env, "node") != 0 && strcmp(env, "allreduce") != 0)
        return RT_ERROR(RT_ERR_CONFIG, "RTRAIN_DDP=%s: expected node or allreduce (or unset "
                        "it: node for 2 ranks on one node)", env);
    int asked = env && !strcmp(env, "node");
    if ((env && !strcmp(env, "allreduce")) || (!asked && t->ctx->world_size != 2) ||
        t->cfg->scaling.use_gpu || rt_optim_slots_for(&t->cfg->optimizer) < 0)
        return RT_OK;
    RT_CHECK(pick_backend(t, be));
    *wanted = ((*be)->flags & RT_BACKEND_HOST_MEMORY) != 0;
    return RT_OK;
}

/* RTRAIN_NODE_FORWARD: may the ranks of the node update split the forward
 * of the wide linear layers (node_update.c)? "split" or "own" as asked;
 * unset, only when the threads of every rank of the job on this node (a
 * tuning run's trials share it) have a core of their own: the split's
 * barriers spin. Not collective (agreed by the caller). */
static rt_status split_wanted(const trainer *t, int *split)
{
    const char *env = getenv("RTRAIN_NODE_FORWARD");
    if (env && *env && strcmp(env, "split") != 0 && strcmp(env, "own") != 0)
        return RT_ERROR(RT_ERR_CONFIG, "RTRAIN_NODE_FORWARD=%s: expected split or own (or "
                        "unset it: split when every rank's threads have cores of their own)",
                        env);
    if (env && *env) {
        *split = !strcmp(env, "split");
        return RT_OK;
    }
    int ranks = rt_comm_job_ranks_on_node(t->comm);
    if (ranks < t->ctx->world_size)
        ranks = t->ctx->world_size;
    *split = (long)ranks * t->threads <= sysconf(_SC_NPROCESSORS_ONLN);
    return RT_OK;
}

/* Collective over t->comm: 1 when every rank of it shares memory with this
 * one, as MPI sees it (MPI_COMM_TYPE_SHARED; host names can mislead, and a
 * trial's communicator may hold a part of each of several nodes). */
static rt_status on_one_node(trainer *t, int *one)
{
    rt_comm *node = NULL;
    rt_status st = rt_comm_split_node(t->comm, &node);
    *one = node && rt_comm_size(node) == rt_comm_size(t->comm);
    rt_comm_free(node);
    return st;
}

/* Collective: t->node when every rank wants the node update and all of
 * them share one node, sized from the planned model. Its outcome is agreed
 * here. */
static rt_status open_node_update(trainer *t)
{
    if (t->ctx->world_size < 2)   /* the same on every rank */
        return RT_OK;
    int wanted = 0, one = 0, split = 0;
    const rt_backend *be = NULL;
    rt_status local = node_update_wanted(t, &wanted, &be);
    rt_status node = on_one_node(t, &one);
    if (local == RT_OK)
        local = node;
    if (local == RT_OK)
        local = split_wanted(t, &split);
    if (local == RT_OK && wanted && one)
        local = trainer_create_model(t, be, 1);
    rt_model *planned = t->model;
    t->model = NULL;
    /* Everyone must want it, or nobody opens the window (a collective). */
    int all[2] = {wanted && one && local == RT_OK, split};
    rt_status st = rt_session_agree(t->session, local);
    if (st == RT_OK)
        st = rt_comm_allreduce(t->comm, all, 2, RT_DTYPE_INT32, RT_REDUCE_MIN);
    if (st != RT_OK || !all[0]) {
        rt_model_free(planned);
        return st;
    }
    /* Agreed inside: every rank falls back to the all-reduce together. The
     * weight gradients can be deferred with one backward per step. */
    st = trainer_node_open(&t->node, t->comm, RT_OK, planned,
                           rt_optim_slots_for(&t->cfg->optimizer),
                           t->cfg->train.accumulate_steps == 1, all[1]);
    rt_model_free(planned);
    if (st != RT_OK) {
        if (t->ctx->world_rank == 0)
            rt_warn("no node update, the gradients go through an MPI "
                    "all-reduce: %s", rt_error_message());
        rt_error_clear();
        return RT_OK;
    }
    if (t->ctx->world_rank == 0)
        rt_info("gradients: the node update (%d ranks on one node share one copy of the "
                "model in node-shared memory%s%s; RTRAIN_DDP=allreduce for an MPI all-reduce)",
                t->ctx->world_size, trainer_node_defers(t->node)
                ? ", and the linear layers' activations instead of their gradients" : "",
                trainer_node_splits_forward(t->node)
                ? "; each rank computes its rows of the wide linear layers for every rank's "
                  "samples, RTRAIN_NODE_FORWARD=own to keep each rank's forward to itself"
                : "");
    return RT_OK;
}

/* The preprocessing as JSON (t->preprocessing, which checkpoints take) and
 * in params.json. Collective. */
static rt_status record_preprocessing(trainer *t)
{
    free(t->preprocessing);
    t->preprocessing = NULL;
    RT_CHECK(rt_session_agree(t->session, trainer_preprocessing_json(t, &t->preprocessing)));
    return rt_run_record_preprocessing(t->run, t->cfg, t->preprocessing);
}

/* Each stage's outcome is agreed before the next starts (the prepare_*
 * helpers agree on their own). */
static rt_status setup(trainer *t)
{
    RT_CHECK(rt_session_agree(t->session, trainer_pick_loss(t)));
    RT_CHECK(rt_session_agree(t->session, trainer_resolve_batch(t)));
    if (t->cfg->scaling.use_gpu) {
        rt_gpu_opts gpu = {.deterministic = t->cfg->gpu.deterministic,
                           .tf32 = t->cfg->gpu.tf32};
        RT_CHECK(rt_session_open_gpu(t->session, &gpu, t->cfg->comm.backend));
    }
    RT_CHECK(rt_session_agree(t->session, trainer_open_datasets(t)));
    RT_CHECK(trainer_fit_standardization(t));
    RT_CHECK(prepare_loaders(t));
    RT_CHECK(rt_session_agree(t->session, trainer_plan_epochs(t)));
    RT_CHECK(open_node_update(t));
    RT_CHECK(rt_session_agree(t->session, build_model(t)));
    RT_CHECK(rt_session_agree(t->session, eval_sums_init(&t->eval, t)));
    RT_CHECK(rt_prepare_model(t->session, t->model, (size_t)t->cfg->comm.bucket_bytes,
                              &t->ddp));
    RT_CHECK(rt_run_open(&t->run, t->session, t->cfg));
    if (t->cfg->checkpoint.async)
        RT_CHECK(rt_session_agree(t->session, rt_ckpt_async_create(&t->async, t->comm)));
    rt_session_catch_stop_signals(t->session);
    /* params.json holds the preprocessing from the start (so a resume that
     * fails leaves it there), and the checkpoint's once a resume took it. */
    RT_CHECK(record_preprocessing(t));
    trainer_fault_stop_at(t, "resume");
    RT_CHECK(trainer_resume(t));
    RT_CHECK(record_preprocessing(t));
    RT_CHECK(trainer_profile_open(t));
    /* From here every collective waits at most the step's deadline; an
     * automatic one is measured first (auto_step_timeout). */
    double timeout = t->cfg->failure.step_timeout_s;
    t->steps_timed = timeout < 0 ? 0 : -1;
    rt_session_set_step_timeout(t->session, timeout < 0 ? t->cfg->failure.setup_timeout_s
                                                        : timeout);
    return RT_OK;
}

void trainer_free(trainer *t)
{
    rt_ckpt_async_free(t->async);
    rt_run_close(t->run);
    rt_ddp_free(t->ddp);
    rt_optim_free(t->optim);
    if (t->buffers_before)
        rt_model_backend(t->model)->free(t->buffers_before);
    rt_model_free(t->model);
    trainer_node_free(t->node);   /* after the model and optimizer that live in it */
    rt_loader_free(t->train_loader);
    rt_loader_free(t->test_loader);
    rt_dataset_free(t->train_set);
    rt_dataset_free(t->test_set);
    trainer_preprocess_free(t);
    eval_sums_free(&t->eval);
    trainer_profile_free(t);
}

/* Training-mode context; BatchNorm statistics are summed across ranks when
 * model.sync_batchnorm is set (open_data refuses a batch split that would
 * leave a rank without samples, which would skip that collective). */
static rt_nn_ctx train_ctx(trainer *t)
{
    rt_nn_ctx nc = {.train = 1, .times = t->prof ? t->prof->layers : NULL};
    if (t->cfg->model.bn_sync && t->ctx->world_size > 1)
        nc.sync_comm = rt_session_tensor_comm(t->session);
    return nc;
}

/* Forward and loss of one micro-batch; a non-finite loss is an error for
 * the caller to agree on. Nothing is accumulated until the step is agreed. */
static rt_status forward_loss(trainer *t, const rt_batch *b, double *loss)
{
    *loss = 0.0;
    if (b->n == 0)
        return RT_OK;
    rt_nn_ctx nc = train_ctx(t);
    nc.rng_key = rt_rng_key((uint64_t)t->cfg->train.seed, (uint64_t)t->epoch,
                            (uint64_t)b->index, (uint64_t)t->ctx->world_rank);
    float scale = 1.0f / ((float)b->global_n * (float)t->cfg->train.accumulate_steps);
    RT_CHECK(rt_model_forward(t->model, &nc, b->x, b->n, NULL));
    double start = trainer_clock(t);
    RT_CHECK(rt_model_loss_grad(t->model, t->loss, b->target, b->n, scale, loss, NULL));
    trainer_time(t, PART_LOSS, start);
    if (!isfinite(*loss))
        return RT_ERROR(RT_ERR_NUMERIC, "training loss is %g at epoch %lld, global batch %lld: "
                        "lower optimizer.lr or check the data", *loss, (long long)t->epoch + 1,
                        (long long)b->index);
    return RT_OK;
}

/* A backward that fails on this rank still finishes DDP (the other ranks'
 * bucket all-reduces must be matched); the failure is then this rank's
 * pending status, agreed at the next agreement. */
static rt_status backward(trainer *t, const rt_batch *b, int sync)
{
    rt_ddp_begin_backward(t->ddp, sync && !t->node);   /* the node update sums them itself */
    rt_status st = RT_OK;
    if (b->n > 0) {
        rt_nn_ctx nc = train_ctx(t);
        st = rt_model_backward(t->model, &nc, NULL, b->n);
    }
    double start = trainer_clock(t);
    rt_status fin = rt_ddp_finish(t->ddp);
    trainer_time(t, PART_GRAD_WAIT, start);
    if (st == RT_OK)
        st = fin;
    if (st != RT_OK && t->pending == RT_OK)
        t->pending = st;
    return fin;
}

/* This rank's deferred failure, to be agreed now (and forgotten). */
static rt_status take_pending(trainer *t)
{
    rt_status st = t->pending;
    t->pending = RT_OK;
    return st;
}

/* One micro-batch. *stop is set (and nothing trained) when a stop signal
 * is agreed at the start of an optimizer step. */
static rt_status train_micro_batch(trainer *t, int micro, int *stop)
{
    rt_batch b;
    int done = 0;
    double loss = 0.0;
    /* A stop is agreed after this forward, which has already updated the
     * BatchNorm running statistics for a batch the resumed run trains
     * again: keep them as they were, so that the resume is exact. */
    const rt_backend *be = rt_model_backend(t->model);
    size_t nbuf = rt_model_num_buffers(t->model);
    rt_status st = take_pending(t);
    if (st == RT_OK && micro == 0)
        st = be->copy(t->buffers_before, rt_model_buffers(t->model), nbuf * sizeof(float));
    double wait_start = rt_time_now();
    if (st == RT_OK)
        st = rt_loader_next(t->train_loader, &b, &done);
    double waited = rt_time_now() - wait_start;
    t->es.data_wait += waited;
    trainer_count(t, PART_DATA, waited);
    if (st == RT_OK && done)
        st = RT_ERROR(RT_ERR_INTERNAL, "the loader ended epoch %lld early",
                      (long long)t->epoch + 1);
    /* Collective when the node update splits the forward: every rank
     * brackets it, also one that fails before it or has no samples. */
    trainer_node_forward_begin(t->node);
    if (st == RT_OK)
        st = forward_loss(t, &b, &loss);
    st = trainer_node_forward_end(t->node, st);
    double agree_start = trainer_clock(t);
    RT_CHECK(rt_session_agree_step(t->session, st, stop));
    trainer_time(t, PART_AGREE, agree_start);
    if (*stop && micro == 0)
        return be->copy(rt_model_buffers(t->model), t->buffers_before, nbuf * sizeof(float));
    *stop = 0;   /* mid-accumulation: finish the optimizer step first */
    t->es.loss_sum += loss;
    t->es.samples += b.n;
    t->next_batch = b.index + 1;
    return backward(t, &b, micro == t->cfg->train.accumulate_steps - 1);
}

static float current_lr(const trainer *t)
{
    int64_t total = t->steps_per_epoch * t->cfg->train.epochs;
    return rt_schedule_lr(&t->cfg->schedule, t->cfg->optimizer.lr, t->step,
                          t->steps_per_epoch, total);
}

/* The checkpoint of a stop signal: training pauses for it too. */
static rt_status stop_with_checkpoint(trainer *t)
{
    double start = trainer_clock(t);
    rt_status st = trainer_stop(t);
    trainer_time(t, PART_CHECKPOINT, start);
    return st;
}

/* checkpoint.async: the writer copies the weights before the update; the
 * loop waits for that copy (the asynchronous checkpoint's pause). */
static void wait_checkpoint_copy(trainer *t)
{
    if (!t->async)
        return;
    double start = trainer_clock(t);
    rt_ckpt_async_before_update(t->async);
    trainer_time(t, PART_CKPT_COPY, start);
}

/* TensorBoard's per-step scalars (run.log_every_steps): after every N-th
 * optimizer step, the step's training loss (the mean over its global
 * batch: one all-reduce of two numbers, on every rank) and the learning
 * rate it used, written by rank 0. A failure to write is rank 0's pending
 * status, agreed at the next step. */
static rt_status log_step(trainer *t, const epoch_stats *step_start, float lr)
{
    const rt_config *c = t->cfg;
    if (!c->run.tensorboard || c->run.log_every_steps <= 0 ||
        t->step % c->run.log_every_steps != 0)
        return RT_OK;
    double sums[2] = {t->es.loss_sum - step_start->loss_sum,
                      t->es.samples - step_start->samples};
    RT_CHECK(rt_comm_allreduce(t->comm, sums, 2, RT_DTYPE_FLOAT64, RT_REDUCE_SUM));
    rt_metric m[2] = {{"train_loss", sums[1] > 0 ? sums[0] / sums[1] : NAN}, {"lr", lr}};
    rt_status st = rt_run_log_scalars(t->run, (long long)t->step, m, 2);
    if (st != RT_OK && t->pending == RT_OK)
        t->pending = st;
    return RT_OK;
}

/* Trains the rest of epoch t->epoch from t->next_batch. */
/* failure.step_timeout_s < 0: after this process's first step (a warm-up)
 * and RT_STEP_TIMEOUT_AUTO_STEPS more, the step timeout becomes the
 * automatic one, the largest of the ranks' (one all-reduce, the same step
 * on every rank) so that every rank sets the same value. */
static rt_status auto_step_timeout(trainer *t, double seconds)
{
    if (t->steps_timed < 0 || t->steps_timed++ == 0)
        return RT_OK;
    t->step_s[t->steps_timed - 2] = seconds;
    if (t->steps_timed - 1 < RT_STEP_TIMEOUT_AUTO_STEPS)
        return RT_OK;
    t->steps_timed = -1;
    double timeout = rt_session_step_timeout_auto(t->step_s, RT_STEP_TIMEOUT_AUTO_STEPS,
                                                  t->cfg->failure.step_timeout_min_s);
    RT_CHECK(rt_comm_allreduce(t->comm, &timeout, 1, RT_DTYPE_FLOAT64, RT_REDUCE_MAX));
    rt_session_set_step_timeout(t->session, timeout);
    if (t->ctx->world_rank == 0)
        rt_info("step timeout: %.1f s (automatic: failure.step_timeout_min_s or %g x the "
                "median step time)", timeout, RT_STEP_TIMEOUT_AUTO_FACTOR);
    return RT_OK;
}

static rt_status train_epoch(trainer *t)
{
    int accumulate = t->cfg->train.accumulate_steps;
    RT_CHECK(rt_loader_start_epoch(t->train_loader, t->epoch, t->next_batch));
    t->pending = rt_model_zero_grad(t->model);
    rt_run_progress_epoch(t->run, t->epoch + 1, t->cfg->train.epochs, t->steps_per_epoch);
    trainer_fault_stop_at(t, "train");
    for (int64_t s = t->next_batch / accumulate; s < t->steps_per_epoch; s++) {
        double t0 = rt_time_now();
        epoch_stats step_start = t->es;
        rt_comm_set_step(t->comm, (long long)t->step + 1);   /* named by the watchdog */
        for (int micro = 0; micro < accumulate; micro++) {
            int stop = 0;
            RT_CHECK(train_micro_batch(t, micro, &stop));
            if (stop) {
                t->es.train_time += rt_time_now() - t0;
                return stop_with_checkpoint(t);
            }
        }
        /* A rank whose backward failed skips its update: the run is ending.
         * A checkpoint being written in the background copies the weights
         * first (checkpoint.async). */
        wait_checkpoint_copy(t);
        double start = trainer_clock(t);
        float lr = current_lr(t);
        if (t->node)   /* collective, also for a rank whose backward failed */
            t->pending = trainer_node_step(t->node, t->optim, lr, t->pending);
        else if (t->pending == RT_OK)
            t->pending = rt_optim_step(t->optim, rt_model_params(t->model),
                                       rt_model_grads(t->model), lr);
        trainer_time(t, PART_OPTIMIZER, start);
        start = trainer_clock(t);
        if (t->pending == RT_OK && !trainer_node_defers(t->node))   /* it forms them anew */
            t->pending = rt_model_zero_grad(t->model);
        trainer_time(t, PART_ZERO_GRAD, start);
        t->step++;
        t->es.train_time += rt_time_now() - t0;
        RT_CHECK(auto_step_timeout(t, rt_time_now() - t0));
        RT_CHECK(log_step(t, &step_start, lr));
        trainer_fault_after_step(t);
        /* Rank 0's running loss: display only, no collective per step. */
        rt_run_progress_step(t->run, s + 1,
                             t->es.samples > 0 ? t->es.loss_sum / t->es.samples : NAN);
    }
    return RT_OK;
}

/* The evaluation sums (metrics.c, when e is not NULL) over the whole test
 * set, all-reduced: each test sample is counted exactly once across ranks.
 * rtrain-predict runs the same loop with a hook that takes each batch's
 * outputs (trainer.h). */
rt_status trainer_evaluate(trainer *t, eval_sums *e, const trainer_eval_hook *hook)
{
    if (e)
        eval_sums_clear(e);
    RT_CHECK(rt_loader_start_epoch(t->test_loader, 0, 0));
    rt_nn_ctx nc = {.train = 0};
    for (;;) {
        rt_batch b;
        int done = 0;
        int stop_ignored;   /* a stop signal is acted on at the next training step */
        const float *out = NULL;
        rt_status st = rt_loader_next(t->test_loader, &b, &done);
        if (st == RT_OK && !done && b.n > 0)
            st = rt_model_forward(t->model, &nc, b.x, b.n, &out);
        if (st == RT_OK && !done && b.n > 0 && e)
            st = eval_sums_add(e, t, &b);
        if (st == RT_OK && !done && b.n > 0 && hook)
            st = hook->batch(hook->arg, &b, out);
        /* Agreed after the forward: a failure on one rank ends every rank. */
        RT_CHECK(rt_session_agree_step(t->session, st, &stop_ignored));
        if (done)
            break;
        if (hook)
            RT_CHECK(hook->agreed(hook->arg, &b));
    }
    if (!e)
        return RT_OK;
    return rt_comm_allreduce(t->comm, e->v, e->count, RT_DTYPE_FLOAT64, RT_REDUCE_SUM);
}

rt_status trainer_sync_buffers(trainer *t)
{
    size_t n = rt_model_num_buffers(t->model);
    if (n == 0 || t->ctx->world_size == 1)
        return RT_OK;
    return rt_comm_broadcast_tensor(rt_session_tensor_comm(t->session),
                                    rt_model_backend(t->model), rt_model_buffers(t->model), n, 0);
}

static int checkpoint_due(const trainer *t)
{
    const rt_config *c = t->cfg;
    int last = t->epoch + 1 == c->train.epochs;
    return (c->checkpoint.frequency > 0 && (t->epoch + 1) % c->checkpoint.frequency == 0) ||
           (c->checkpoint.at_end && last);
}

/* The epoch's report, with the checkpoint it names when one is due
 * (trainer_report_checkpoint), which continues at the next epoch. */
static rt_status report_epoch(trainer *t, const rt_metric *m, int count)
{
    int save = checkpoint_due(t);
    double start = trainer_clock(t);
    if (!save)
        RT_CHECK(rt_report(t->run, m, count, NULL));
    t->epoch++;
    t->next_batch = 0;
    t->es = (epoch_stats){0};
    if (save)
        RT_CHECK(trainer_report_checkpoint(t, m, count));
    trainer_time(t, save ? PART_CHECKPOINT : PART_REPORT, start);
    return RT_OK;
}

/* One report per epoch (time_this_iter_s, time_total_s, world_size,
 * training_iteration and timestamp are filled in by rt_report), with its
 * checkpoint when one is due (report_epoch). */
static rt_status finish_epoch(trainer *t)
{
    double start = trainer_clock(t);
    RT_CHECK(rt_session_agree(t->session, take_pending(t)));
    /* The data wait is the mean over ranks (a rank waiting holds up all). */
    double sums[3] = {t->es.loss_sum, t->es.samples, t->es.data_wait};
    RT_CHECK(rt_comm_allreduce(t->comm, sums, 3, RT_DTYPE_FLOAT64, RT_REDUCE_SUM));
    RT_CHECK(trainer_sync_buffers(t));   /* before evaluation and the checkpoint */
    trainer_time(t, PART_EPOCH_SYNC, start);
    int eval_every = t->cfg->train.eval_every;
    int last = t->epoch + 1 == t->cfg->train.epochs;
    int evaluated = eval_every > 0 && ((t->epoch + 1) % eval_every == 0 || last);
    if (evaluated) {
        start = trainer_clock(t);
        RT_CHECK(trainer_evaluate(t, &t->eval, NULL));
        trainer_time(t, PART_EVAL, start);
    }
    rt_metric m[TRAINER_MAX_METRICS];
    int count = 0;
    m[count++] = (rt_metric){"epoch", (double)t->epoch + 1};
    m[count++] = (rt_metric){"step", (double)t->step};
    m[count++] = (rt_metric){"train_loss", sums[0] / sums[1]};
    eval_metrics(t, evaluated ? &t->eval : NULL, m, &count);
    m[count++] = (rt_metric){"lr", current_lr(t)};
    m[count++] = (rt_metric){"samples_per_s", sums[1] / t->es.train_time};
    m[count++] = (rt_metric){"train_time_s", t->es.train_time};
    m[count++] = (rt_metric){"data_wait_s", sums[2] / t->ctx->world_size};
    RT_CHECK(report_epoch(t, m, count));
    t->stop_early = rt_run_should_stop(t->run);   /* the report hook's answer, agreed */
    return RT_OK;
}

rt_status rt_trainer_run(rt_session *s, const rt_config *cfg)
{
    return rt_trainer_run_with(s, cfg, NULL, NULL);
}

rt_status rt_trainer_run_with(rt_session *s, const rt_config *cfg, rt_report_hook hook,
                              void *arg)
{
    trainer t = {.session = s, .cfg = cfg, .ctx = rt_session_context(s),
                 .comm = rt_session_comm(s), .last_ckpt_step = -1};
    if (hook)   /* else the session's own hook, if any (a trial of rt_tune_run) */
        rt_session_set_report_hook(s, hook, arg);
    if (cfg->model.arch == RT_ARCH_GBDT)   /* trees: the gbdt module's own loop */
        return rt_gbdt_run(s, cfg);
    rt_comm_set_step(t.comm, -1);
    int threads = rt_session_set_threads(s, cfg->scaling.threads_per_worker);
    t.threads = threads;
    /* The watchdog covers the start-up too: its collectives (each rank's
     * data, the model, the run directory, the resume's checkpoint reads)
     * wait at most failure.setup_timeout_s for a rank that froze. */
    rt_session_set_step_timeout(s, cfg->failure.setup_timeout_s);
    trainer_fault_stop_at(&t, "setup");
    rt_status st = setup(&t);
    if (st == RT_OK) {
        const rt_backend *be = rt_model_backend(t.model);
        rt_comm *tensors = rt_session_tensor_comm(s);
        rt_info("rtrain: %d rank(s) x %d thread(s), backend %s%s, %zu parameters, global "
                "batch %lld, %lld steps/epoch, run dir %s", t.ctx->world_size, threads,
                be->name, t.ctx->world_size > 1 && rt_comm_stages_tensors(tensors, be)
                              ? " (tensors reduced through host copies)" : "",
                rt_model_num_params(t.model), (long long)t.global_batch,
                (long long)t.steps_per_epoch, rt_run_dir(t.run));
        if (cfg->run.verbose >= 2)
            rt_model_print_summary(t.model);
    }
    int64_t failed_step = -1;   /* the optimizer step in progress when it failed */
    while (st == RT_OK && t.epoch < cfg->train.epochs && !t.stop_early) {
        st = train_epoch(&t);
        failed_step = t.step + 1;
        if (st == RT_OK) {
            st = finish_epoch(&t);
            failed_step = t.step;
        }
    }
    /* st is agreed: every rank gets here; rank 0 records and summarises,
     * once the last checkpoint is committed. */
    if (t.async) {
        double start = trainer_clock(&t);
        rt_status written = rt_ckpt_async_wait(t.async);
        trainer_time(&t, PART_CKPT_LAST, start);
        st = st == RT_OK ? written : st;
    }
    if (t.prof && (st == RT_OK || st == RT_STOPPED)) {
        rt_status pst = trainer_profile_report(&t);
        st = st == RT_OK ? pst : st;
    }
    if (t.run) {
        st = rt_run_fail(t.run, st, failed_step);
        rt_run_print_summary(t.run, st);
    }
    trainer_free(&t);
    return st;
}
