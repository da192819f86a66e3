/* Checkpoint write/read benchmark (run under mpirun, 1 or 2 ranks).
 *
 *   bench_ckpt DIR STATE REPS
 *
 * STATE is "resnet18" (the FashionMNIST ResNet18 of the examples with its
 * Adam state: 11.2M parameters x 3 slabs, ~134 MB) or a size in MiB (a
 * sequential stack of Linear layers whose parameters plus Adam state come
 * to about that size). Each repetition times, as training sees them:
 *   write - rt_ckpt_save into a fresh run directory under DIR (collective:
 *           HDF5 write, fsync, commit rename, index);
 *   read  - rt_ckpt_load of everything back into the same state (checksums
 *           verified). The file was just written, so reads may come from the
 *           page cache; bench/run says so and treats dd the same way.
 *   async - rt_ckpt_save_async (checkpoint.async): the pause (until the
 *           call returns: rank 0 has copied what forward changes), the
 *           copy (until rt_ckpt_async_before_update returns, as an update
 *           right after the save would wait: training overlaps it with
 *           the next forward and backward) and the whole save (until
 *           rt_ckpt_async_wait returns: written and committed);
 *           pause_ratio = pause / write, copy_ratio = copy / write.
 * Times are the slowest rank's, medians over REPS; the run directory is
 * removed between repetitions (not timed). Prints one JSON line on rank 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mpi.h>
#include "bench_util.h"
#include "rtrain/ckpt.h"
#include "rtrain/comm_mpi.h"
#include "rtrain/nn.h"
#include "rtrain/optim.h"

/* The job's communicator (all ranks), made after MPI_Init. */
static rt_comm *world_comm;

static void die(const char *what)
{
    fprintf(stderr, "bench_ckpt: %s: %s\n", what, rt_error_message());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* A model of about mib MiB of parameters + Adam state (3 floats per
 * parameter): L square Linear layers of width D, L chosen so that no layer
 * exceeds 16M parameters (HDF5 datasets stay well under 2 GiB). */
static void sized_spec(rt_model_spec *s, double mib, rt_shape *in)
{
    double params = mib * 1048576.0 / (3.0 * sizeof(float));
    int layers = (int)ceil(params / 16777216.0);
    if (layers < 1)
        layers = 1;
    if (layers > RT_MAX_LAYERS)
        layers = RT_MAX_LAYERS;
    int d = (int)floor(sqrt(params / layers));
    rt_model_spec_default(s, RT_ARCH_SEQUENTIAL);
    for (int i = 0; i < layers; i++) {
        rt_layer_spec_default(&s->layers[i], RT_LAYER_LINEAR);
        s->layers[i].out = d;
        s->layers[i].bias = 0;
    }
    s->num_layers = layers;
    *in = (rt_shape){d, 1, 1};
}

static void resnet_spec(rt_model_spec *s, rt_shape *in)
{
    rt_model_spec_default(s, RT_ARCH_RESNET18);
    s->num_classes = 10;
    s->conv1_kernel = 7;
    s->conv1_stride = 2;
    s->conv1_padding = 3;
    *in = (rt_shape){1, 28, 28};
}

/* Slowest rank's time of the collective call that ended at now. */
static double slowest(double t0)
{
    double t = MPI_Wtime() - t0, max = 0;
    MPI_Allreduce(&t, &max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return max;
}

/* Model (seed 1) and Adam state as after some steps: not zeros, so that no
 * file system may special-case them. */
static void build_state(const char *what, rt_model **m, rt_optimizer **o)
{
    rt_model_spec spec;
    rt_shape in;
    if (!strcmp(what, "resnet18"))
        resnet_spec(&spec, &in);
    else
        sized_spec(&spec, atof(what), &in);
    rt_optim_opts opts;
    rt_optim_opts_default(&opts, RT_OPTIM_ADAM);
    if (rt_model_create(m, NULL, &spec, in, 1, 1) != RT_OK)
        die("building the model");
    size_t np = rt_model_num_params(*m);
    if (rt_optim_create(o, rt_model_backend(*m), &opts, np) != RT_OK)
        die("building the optimizer");
    for (int k = 0; k < rt_optim_state_slots(*o); k++) {
        float *x = rt_optim_state(*o, k);
        for (size_t i = 0; i < np; i++)
            x[i] = (float)((i * 2654435761u + (size_t)k) % 1000003) * 1e-6f;
    }
    rt_optim_set_step_count(*o, 100);
}

/* One save into a fresh run directory and one load of it, timed. */
static void save_and_load(const char *run_dir, rt_train_state *s, double *tw, double *tr)
{
    char committed[RT_CKPT_PATH_MAX];
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (rt_ckpt_save(world_comm, run_dir, s, NULL, 0, NULL, committed,
                     sizeof committed) != RT_OK)
        die("rt_ckpt_save");
    *tw = slowest(t0);
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = MPI_Wtime();
    if (rt_ckpt_load(world_comm, committed, s, RT_CKPT_LOAD_ALL, NULL) != RT_OK)
        die("rt_ckpt_load");
    *tr = slowest(t0);
    if (rt_ckpt_remove_all(world_comm, run_dir) != RT_OK)
        die("removing the run directory");
}

/* One asynchronous save into a fresh run directory: the training pause and
 * the time until it is committed. */
static void save_async(const char *run_dir, rt_train_state *s, double *pause, double *copy,
                       double *total)
{
    rt_ckpt_async *w = NULL;
    if (rt_ckpt_async_create(&w, world_comm) != RT_OK)
        die("rt_ckpt_async_create");
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (rt_ckpt_save_async(w, run_dir, s, NULL, 0, NULL, NULL, 0) != RT_OK)
        die("rt_ckpt_save_async");
    *pause = slowest(t0);
    rt_ckpt_async_before_update(w);
    *copy = slowest(t0);
    if (rt_ckpt_async_wait(w) != RT_OK)
        die("rt_ckpt_async_wait");
    *total = slowest(t0);
    rt_ckpt_async_free(w);
    if (rt_ckpt_remove_all(world_comm, run_dir) != RT_OK)
        die("removing the run directory");
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (rt_comm_from_mpi(MPI_COMM_WORLD, &world_comm) != RT_OK) {
        fprintf(stderr, "%s\n", rt_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    const char *what = argc > 2 ? argv[2] : "";
    double mib = atof(what);
    if (argc < 3 || (strcmp(what, "resnet18") && !(mib > 0 && mib <= 65536))) {
        if (rank == 0)
            fprintf(stderr, "usage: bench_ckpt DIR resnet18|MIB [REPS]  (0 < MIB <= 65536)\n");
        rt_comm_free(world_comm);
        MPI_Finalize();
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    if (reps < 1 || reps > 1000)
        reps = 3;
    rt_model *m = NULL;
    rt_optimizer *o = NULL;
    build_state(what, &m, &o);
    rt_train_state s = {.model = m, .optim = o, .optimizer_type = "adam", .epoch = 1,
                        .step = 100, .training_iteration = 1, .seed = 1};
    size_t np = rt_model_num_params(m);
    size_t bytes = (np * (size_t)(1 + rt_optim_state_slots(o)) + rt_model_num_buffers(m)) *
                   sizeof(float);
    double *tw = calloc((size_t)reps, sizeof *tw), *tr = calloc((size_t)reps, sizeof *tr);
    double *tp = calloc((size_t)reps, sizeof *tp), *tt = calloc((size_t)reps, sizeof *tt);
    double *tc = calloc((size_t)reps, sizeof *tc);
    if (!tw || !tr || !tp || !tt || !tc) {
        fprintf(stderr, "bench_ckpt: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    char run_dir[RT_CKPT_PATH_MAX];
    for (int r = 0; r < reps; r++) {
        snprintf(run_dir, sizeof run_dir, "%s/rep%03d", argv[1], r);
        save_and_load(run_dir, &s, &tw[r], &tr[r]);
        snprintf(run_dir, sizeof run_dir, "%s/async%03d", argv[1], r);
        save_async(run_dir, &s, &tp[r], &tc[r], &tt[r]);
    }
    double w = bench_median(tw, reps), rd = bench_median(tr, reps);
    double p = bench_median(tp, reps), t = bench_median(tt, reps), c = bench_median(tc, reps);
    if (rank == 0)
        printf("{\"state\": \"%s\", \"ranks\": %d, \"params\": %zu, \"bytes\": %zu, "
               "\"reps\": %d, \"write_s\": %.6f, \"read_s\": %.6f, \"write_gb_s\": %.4f, "
               "\"read_gb_s\": %.4f, \"async_pause_s\": %.6f, \"async_total_s\": %.6f, "
               "\"async_copy_s\": %.6f, \"pause_ratio\": %.4f, \"copy_ratio\": %.4f}\n", what, world,
               np, bytes, reps, w, rd, w > 0 ? bytes / w / 1e9 : 0.0,
               rd > 0 ? bytes / rd / 1e9 : 0.0, p, t, c, w > 0 ? p / w : 0.0,
               w > 0 ? c / w : 0.0);
    free(tw);
    free(tr);
    free(tp);
    free(tt);
    free(tc);
    rt_optim_free(o);
    rt_model_free(m);
    rt_comm_free(world_comm);
    MPI_Finalize();
    return 0;
}
