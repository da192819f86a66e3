/* Gradient all-reduce benchmark (run under mpirun, usually 2 ranks).
 *
 * For the MLP and ResNet18 gradient slabs it measures, in one run:
 *   compute  - forward + backward of one batch, no communication;
 *   ddp      - the same with rtrain's bucketed MPI_Iallreduce overlapped
 *              with backward (rt_ddp), i.e. a training step without the
 *              optimizer;
 *   raw      - one blocking MPI_Allreduce of the whole gradient slab;
 *   buckets  - rt_ddp_finish on its own (all buckets, no overlap).
 * Communication overhead of a step = ddp - compute; the target is that it
 * stays within 10% above raw. The overhead is the median over the
 * repetitions of each repetition's own difference (its ddp step minus its
 * compute step, run back to back, in alternating order), not the
 * difference of the two medians: the machine's speed drifts between
 * repetitions by more than the overhead, and a difference of medians
 * taken from different repetitions carries that drift. Prints one JSON
 * object per model (medians over the repetitions, seconds). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mpi.h>
#include <cblas.h>
#include "bench_util.h"
#include "rtrain/comm_mpi.h"
#include "rtrain/nn.h"

#define MLP_REPS_FACTOR 20

/* The job's communicator (all ranks), made after MPI_Init. */
static rt_comm *world_comm;

typedef struct timing { double compute, ddp, raw, buckets, overhead; } timing;

static void step(rt_model *m, rt_ddp *ddp, const float *x, const float *dy, int n, int sync)
{
    rt_nn_ctx ctx = {.train = 1};
    if (ddp)
        rt_ddp_begin_backward(ddp, sync);
    if (rt_model_zero_grad(m) != RT_OK || rt_model_forward(m, &ctx, x, n, NULL) != RT_OK ||
        rt_model_backward(m, &ctx, dy, n) != RT_OK || (ddp && rt_ddp_finish(ddp) != RT_OK)) {
        fprintf(stderr, "bench_allreduce: %s\n", rt_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

/* Median of reps timings of fn-like phases; barriers keep ranks in step. */
static timing measure(rt_model *m, rt_ddp *ddp, int n, int reps)
{
    rt_shape in = rt_model_input_shape(m), out = rt_model_output_shape(m);
    float *x = calloc((size_t)n * rt_shape_size(in), sizeof(float));
    float *dy = calloc((size_t)n * rt_shape_size(out), sizeof(float));
    for (size_t i = 0; i < (size_t)n * rt_shape_size(in); i++)
        x[i] = (float)(i % 97) / 97.0f;
    for (size_t i = 0; i < (size_t)n * rt_shape_size(out); i++)
        dy[i] = (float)(i % 13) / 1300.0f;
    double *t[5];
    for (int k = 0; k < 5; k++)
        t[k] = calloc((size_t)reps, sizeof(double));
    size_t count = rt_model_num_params(m);
    for (int r = -2; r < reps; r++) {   /* two warm-up rounds */
        double t0, compute = 0.0, with_ddp = 0.0;
        for (int k = 0; k < 2; k++) {   /* even rounds compute first, odd ones ddp first */
            int sync = (k + (r & 1)) & 1;   /* sync 0: no communication */
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = MPI_Wtime();
            step(m, ddp, x, dy, n, sync);
            if (sync)
                with_ddp = MPI_Wtime() - t0;
            else
                compute = MPI_Wtime() - t0;
        }
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, rt_model_grads(m), (int)count, MPI_FLOAT, MPI_SUM,
                      MPI_COMM_WORLD);
        double raw = MPI_Wtime() - t0;
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = MPI_Wtime();
        rt_ddp_begin_backward(ddp, 1);
        rt_ddp_finish(ddp);
        double buckets = MPI_Wtime() - t0;
        if (r >= 0) {
            t[0][r] = compute; t[1][r] = with_ddp; t[2][r] = raw; t[3][r] = buckets;
            t[4][r] = with_ddp - compute;
        }
    }
    timing result = {bench_median(t[0], reps), bench_median(t[1], reps),
                     bench_median(t[2], reps), bench_median(t[3], reps),
                     bench_median(t[4], reps)};
    for (int k = 0; k < 5; k++)
        free(t[k]);
    free(x);
    free(dy);
    return result;
}

static void run_model(const char *name, const rt_model_spec *spec, rt_shape in, int n,
                      size_t bucket_bytes, int reps)
{
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    rt_model *m = NULL;
    rt_ddp *ddp = NULL;
    if (rt_model_create(&m, NULL, spec, in, n, 1) != RT_OK ||
        rt_ddp_create(&ddp, world_comm, m, bucket_bytes) != RT_OK) {
        fprintf(stderr, "bench_allreduce: %s\n", rt_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    timing t = measure(m, ddp, n, reps);
    double overhead = t.overhead;
    if (rank == 0)
        printf("{\"model\": \"%s\", \"ranks\": %d, \"batch_per_rank\": %d, \"grad_bytes\": %zu, "
               "\"buckets\": %d, \"compute_s\": %.6f, \"ddp_step_s\": %.6f, "
               "\"comm_overhead_s\": %.6f, \"raw_allreduce_s\": %.6f, "
               "\"buckets_no_overlap_s\": %.6f, \"overhead_vs_raw\": %.3f}\n",
               name, world, n, rt_model_num_params(m) * sizeof(float), rt_ddp_num_buckets(ddp),
               t.compute, t.ddp, overhead, t.raw, t.buckets,
               t.raw > 0 ? overhead / t.raw : 0.0);
    rt_ddp_free(ddp);
    rt_model_free(m);
}

int main(int argc, char **argv)
{
    int owned = 0;   /* as rt_session_init starts MPI for rtrain */
    if (rt_comm_mpi_init(&argc, &argv, &owned) != RT_OK) {
        fprintf(stderr, "%s\n", rt_error_message());
        return 1;
    }
    if (rt_comm_from_mpi(MPI_COMM_WORLD, &world_comm) != RT_OK) {
        fprintf(stderr, "%s\n", rt_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    int quick = argc > 2 && !strcmp(argv[2], "--quick");
    openblas_set_num_threads(1);
    size_t bucket = (size_t)4 << 20;   /* rt_prepare_model's and comm.bucket_mb's default */

    rt_model_spec mlp;
    rt_model_spec_default(&mlp, RT_ARCH_MLP);
    mlp.num_classes = 10;
    mlp.num_hidden = 2;
    mlp.hidden[0] = mlp.hidden[1] = 512;
    /* The MLP's step lasts about a millisecond, where timer and scheduling
     * noise is a large share of its overhead: 20 times the repetitions
     * (0.2 s more). */
    run_model("mlp", &mlp, (rt_shape){1, 28, 28}, 32, bucket, MLP_REPS_FACTOR * reps);

    rt_model_spec resnet;
    rt_model_spec_default(&resnet, RT_ARCH_RESNET18);
    resnet.num_classes = 10;
    resnet.conv1_kernel = 7;
    resnet.conv1_stride = 2;
    resnet.conv1_padding = 3;
    run_model("resnet18", &resnet, (rt_shape){1, 28, 28}, quick ? 4 : 128, bucket, reps);
    rt_comm_free(world_comm);
    MPI_Finalize();
    return 0;
}
