/* rt_trainer_check (rtrain --check): the set-up of rt_trainer_run for a
 * given world size, without MPI, a session or training, so that a job is
 * checked on a login node before it is queued. It runs trainer.c's own
 * stages (loss, batch, both datasets, loaders, epochs, model), so a check
 * finds what a run would find at set-up, with the same message; then it
 * prints the resolved configuration, the data, how the global batch splits
 * over the ranks, the model's layers and the memory each rank needs.
 *
 * What differs from a run, and why:
 *   - HDF5 inputs are not read (data.cache = "none" while checking): the
 *     file, its datasets, shapes, types, filters and targets are, but a
 *     NaN among the inputs is found by the run that reads them; a check
 *     must stay quick and small on data larger than a login node's memory.
 *     idx and CSV files are read as the run reads them (their format has
 *     no other way to learn the shape and the classes).
 *   - data.standardize is not fitted (that reads every sample).
 *   - the model is planned (rt_model_plan): its sizes, not its memory;
 *     with scaling.use_gpu it is sized with the CPU backend's scratch
 *     (a login node has no GPU). The CUDA library must load (a build
 *     without it fails as the run would), but GPUs are not looked for.
 *   - the loaders are rank 0's (the rank with the largest share of a
 *     batch), made without a prefetch thread.
 *   - nothing is written: no run directory, no resume decision. */
#include <stdio.h>
#include <string.h>
#include "trainer.h"

static const char *dtype_name(rt_input_dtype d)
{
    static const char *const names[] = {"uint8", "int16", "int32", "float32", "float64"};
    return (unsigned)d < sizeof names / sizeof names[0] ? names[d] : "?";
}

/* Bytes a format holds per sample: uint8 inputs stay uint8, everything
 * else becomes float32; targets are 4 bytes a value. */
static size_t held_bytes_per_sample(const rt_sample_desc *d)
{
    return rt_sample_input_size(d) * (d->dtype == RT_INPUT_U8 ? 1 : sizeof(float)) +
           rt_sample_target_bytes(d);
}

static void print_split(FILE *f, const char *what, const rt_dataset *ds)
{
    const rt_sample_desc *d = rt_dataset_desc(ds);
    char shape[128];
    size_t len = (size_t)snprintf(shape, sizeof shape, "[");
    for (int i = 0; i < d->ndim && len < sizeof shape; i++)
        len += (size_t)snprintf(shape + len, sizeof shape - len, "%s%lld", i ? ", " : "",
                                (long long)d->shape[i]);
    if (len < sizeof shape)
        snprintf(shape + len, sizeof shape - len, "]");
    fprintf(f, "  %-10s %lld samples of %s %s", what, (long long)rt_dataset_count(ds), shape,
            dtype_name(d->dtype));
    if (d->target == RT_TARGET_CLASS)
        fprintf(f, ", %d classes\n", rt_dataset_num_classes(ds));
    else
        fprintf(f, ", %d %s target value(s)\n", d->target_size, rt_target_kind_name(d->target));
}

/* "86 (ranks 0-1), 85 (ranks 2-3)": the per-rank shares of a global batch
 * of g samples, in runs of equal shares. */
static void print_shares(FILE *f, int64_t g, int world)
{
    int first = 0;
    int64_t b, e, size0 = -1;
    for (int r = 0; r <= world; r++) {
        int64_t size = -1;
        if (r < world) {
            rt_batch_split(g, r, world, &b, &e);
            size = e - b;
        }
        if (r > 0 && size != size0) {
            fprintf(f, "%s%lld (rank%s %d", first ? ", " : "", (long long)size0,
                    r - 1 > first ? "s" : "", first);
            if (r - 1 > first)
                fprintf(f, "-%d", r - 1);
            fprintf(f, ")");
            first = r;
        }
        size0 = size;
    }
    fprintf(f, "\n");
}

static void print_batches(FILE *f, const trainer *t, const rt_loader_opts *test)
{
    const rt_config *c = t->cfg;
    int world = t->ctx->world_size;
    fprintf(f, "\nBatches on %d rank(s):\n", world);
    fprintf(f, "  global batch %lld, per rank: ", (long long)t->global_batch);
    print_shares(f, t->global_batch, world);
    fprintf(f, "  evaluation batch %lld, per rank: ", (long long)test->global_batch);
    print_shares(f, test->global_batch, world);
    fprintf(f, "  %lld optimizer step(s) per epoch (train.accumulate_steps %d), %d epoch(s): "
            "%lld steps\n", (long long)t->steps_per_epoch, c->train.accumulate_steps,
            c->train.epochs, (long long)t->steps_per_epoch * c->train.epochs);
}

/* "512 B", "12.5 KiB", "2.6 MiB", "44.7 GiB" */
static void format_bytes(char *out, size_t size, double bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        u++;
    }
    snprintf(out, size, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static void mem_line(FILE *f, const char *what, double bytes, const char *note)
{
    char amount[32];
    format_bytes(amount, sizeof amount, bytes);
    fprintf(f, "  %-16s %10s%s%s\n", what, amount, note[0] ? "  " : "", note);
}

/* Memory of one rank: the model's slabs and activation buffers (from the
 * sizes its allocations use), the optimizer's state slab (its slots x the
 * parameters), and the data each rank holds. */
static void print_memory(FILE *f, trainer *t, const char *where)
{
    const rt_config *c = t->cfg;
    rt_model_memory mm;
    rt_model_memory_use(t->model, &mm);
    /* The optimizer's state: slots of one value per parameter. */
    int slots = rt_optim_state_slots(t->optim);
    double optim = (double)slots * (double)mm.params;
    char note[160];
    int max_batch = rt_model_max_batch(t->model);
    fprintf(f, "\nMemory per rank (%s):\n", where);
    snprintf(note, sizeof note, "%zu values", rt_model_num_params(t->model));
    mem_line(f, "parameters", (double)mm.params, note);
    mem_line(f, "gradients", (double)mm.grads, "");
    snprintf(note, sizeof note, "%s: %d value(s) per parameter",
             rt_optim_type_name(c->optimizer.type), slots);
    mem_line(f, "optimizer state", optim, note);
    if (mm.buffers)
        mem_line(f, "buffers", (double)mm.buffers, "BatchNorm running statistics");
    char saved[32], scratch[32];
    format_bytes(saved, sizeof saved, (double)mm.saved);
    format_bytes(scratch, sizeof scratch, (double)mm.scratch);
    snprintf(note, sizeof note, "at %d samples: layer outputs and their gradients, saved "
             "state %s, scratch %s", max_batch, saved, scratch);
    double act = (double)(mm.activations + mm.saved + mm.scratch);
    mem_line(f, "activations", act, note);
    /* The data: both splits as their format holds them (data.cache for
     * HDF5: "none" holds the targets and STREAM blocks only; "node" once
     * per node), and the loader's batch slots. */
    const rt_sample_desc *d = rt_dataset_desc(t->train_set);
    double rows = (double)(rt_dataset_count(t->train_set) + rt_dataset_count(t->test_set));
    double data = rows * (double)held_bytes_per_sample(d);
    int cache = rt_config_cache_policy(c);
    const char *held = "this rank holds both splits";
    if (!strcmp(c->data.format, "hdf5") && cache == RT_CACHE_NONE) {
        data = rows * (double)rt_sample_target_bytes(d);
        held = "data.cache \"none\": targets held, inputs read a block at a time";
    } else if (!strcmp(c->data.format, "hdf5") && cache == RT_CACHE_NODE) {
        held = "data.cache \"node\": once per node, shared by its ranks";
    }
    mem_line(f, "data", data, held);
    int slots_ahead = c->data.prefetch >= 0 ? c->data.prefetch : 2;
    double loader = (double)(slots_ahead + 1) * max_batch *
                    ((double)rt_sample_input_size(d) * sizeof(float) +
                     (double)rt_sample_target_bytes(d));
    snprintf(note, sizeof note, "%d batch slot(s)", slots_ahead + 1);
    mem_line(f, "loader", loader, note);
    double total = (double)(mm.params + mm.grads + mm.buffers) + optim + act + loader +
                   (cache == RT_CACHE_NODE && !strcmp(c->data.format, "hdf5") ? 0 : data);
    mem_line(f, "total", total, cache == RT_CACHE_NODE && !strcmp(c->data.format, "hdf5")
                                    ? "without the node's shared data" : "");
}

/* The stages of trainer.c's setup that need no communicator, in its order. */
static rt_status check_setup(trainer *t, rt_loader_opts *test_opts, const char **where)
{
    RT_CHECK(trainer_pick_loss(t));
    RT_CHECK(trainer_resolve_batch(t));
    /* A build without CUDA, or its library missing, is this installation's;
     * which GPUs a node has is the compute node's (not looked at here). */
    if (t->cfg->scaling.use_gpu)
        RT_CHECK(rt_gpu_available());
    RT_CHECK(trainer_open_datasets(t));
    rt_loader_opts train_opts;
    trainer_loader_opts(t, &train_opts, test_opts);
    train_opts.world_size = test_opts->world_size = t->ctx->world_size;   /* rank 0 */
    RT_CHECK(rt_loader_create(&t->train_loader, t->train_set, &train_opts));
    RT_CHECK(rt_loader_create(&t->test_loader, t->test_set, test_opts));
    RT_CHECK(trainer_plan_epochs(t));
    /* The backend by name (a GPU is not opened here): one this build lacks
     * is the run's error; cuda is sized with the CPU backend's tables. */
    const char *name;
    RT_CHECK(trainer_backend_in_build(t->cfg, &name));
    int gpu = !strcmp(name, "cuda");
    const rt_backend *be = gpu ? rt_backend_default() : rt_backend_find(name);
    if (gpu)
        *where = "the model in GPU memory, sized with the cpu backend's scratch; the data "
                 "in host memory";
    RT_CHECK(trainer_create_model(t, be, 1));
    /* The optimizer, which checks its options as a run's does; without
     * parameters: print_memory takes its slots. */
    return rt_optim_create(&t->optim, be, &t->cfg->optimizer, 0);
}

rt_status rt_trainer_check(const rt_config *cfg, int world_size, FILE *out)
{
    if (world_size < 1)
        return RT_ERROR(RT_ERR_CONFIG, "--world-size %d: give a number of ranks >= 1",
                        world_size);
    rt_context ctx = {.world_rank = 0, .world_size = world_size, .local_size = 1,
                      .num_nodes = 1};
    trainer t = {.cfg = cfg, .ctx = &ctx, .last_ckpt_step = -1, .check_only = 1};
    rt_loader_opts test_opts;
    const char *where = "host memory";
    char dir[RT_PATH_MAX];
    int exists = 0;
    rt_status st = check_setup(&t, &test_opts, &where);
    if (st == RT_OK)   /* the run directory is opened after the model */
        st = rt_run_check_dir(cfg, dir, sizeof dir, &exists);
    if (st == RT_OK) {
        fprintf(out, "Configuration (resolved):\n");
        st = rt_config_write_json(cfg, out);
    }
    if (st == RT_OK) {
        fprintf(out, "\nData (data.format \"%s\"):\n", cfg->data.format);
        print_split(out, "training", t.train_set);
        print_split(out, "evaluation", t.test_set);
        print_batches(out, &t, &test_opts);
        fprintf(out, "\nModel (built for %d samples per rank):\n",
                rt_model_max_batch(t.model));
        rt_model_write_summary(t.model, out);
        print_memory(out, &t, where);
    }
    if (st == RT_OK)
        fprintf(out, "\nRun directory: %s (%s)\n", dir,
                exists ? "exists already: run.resume and run.overwrite say what a run does"
                       : "new");
    if (st == RT_OK && !strcmp(cfg->data.format, "hdf5"))
        fprintf(out, "\nNot checked: the values of the HDF5 inputs (NaN, Inf), which the run "
                "checks as it reads them.\n");
    if (st == RT_OK)
        fprintf(out, "\nrtrain --check: OK for %d rank(s)\n", world_size);
    fflush(out);
    trainer_free(&t);
    return st;
}
