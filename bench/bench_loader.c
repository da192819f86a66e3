/* Data-loading benchmark (run under mpirun, 1 or more ranks).
 *
 *   bench_loader [options] idx IMAGES LABELS
 *   bench_loader [options] hdf5 FILE        (inputs --x, default /x; targets --y, /y)
 *   bench_loader [options] csv FILE         (target column --target, default "label")
 *
 * Options: --cache rank|node|none (hdf5; default rank), --shuffle-block N
 * (0: full shuffle, the default), --batch G (global batch, default 256,
 * split over the ranks), --prefetch P (default 2; the loader uses 0 for a
 * dataset without RT_DATASET_THREAD_SAFE: HDF5 streamed), --epochs E
 * (default 1, at most 32), --open-only (no loader: memory only), --name
 * NAME (the variant's name in the output).
 *
 * Each rank, as the trainer does with its training split:
 *   open  - reads Rss and Pss of this process from /proc/self/smaps_rollup,
 *           then times rt_dataset_open (read/parse the file; for the node
 *           cache, collective over the ranks), then reads Rss and Pss again;
 *   epoch - creates a loader (shuffle on, seed 1) and runs E epochs,
 *           timing only the rt_loader_next calls; samples/s per rank = this
 *           rank's samples / those seconds. Nothing runs between the calls,
 *           so with prefetch this is the loader thread's production rate.
 * Pixels are divided by 255 for 8-bit inputs (the MLP example's
 * transform); other inputs are delivered as stored.
 *
 * Prints one JSON line on rank 0. open_s is the slowest rank's; lists of
 * one value per epoch: next_s (the slowest rank's seconds in
 * rt_loader_next), samples_per_s_rank (the slowest rank's) and
 * samples_per_s_rank_mean (the mean over ranks). Memory in MiB: Pss and
 * Rss after the open summed over ranks (pss_mib_sum: what the ranks hold
 * together, each shared page counted once), the largest rank's Rss
 * (rss_mib_max), the differences before -> after the open summed over
 * ranks (open_pss_mib_sum, open_rss_mib_sum: the dataset's share), and Pss
 * (summed) and Rss (largest rank) after the last epoch (end_*: with the
 * loader's buffers and whatever the format kept while reading, such as
 * HDF5's chunk cache when streaming). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mpi.h>
#include "rtrain/comm_mpi.h"
#include "rtrain/data.h"

/* The job's communicator (all ranks), made after MPI_Init. */
static rt_comm *world_comm;

static void die(const char *what)
{
    fprintf(stderr, "bench_loader: %s: %s\n", what, rt_error_message());
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

typedef struct bench_opts {
    const char *format, *name;
    const char *a, *b;             /* idx: images, labels; hdf5, csv: file */
    const char *x, *y, *target;
    rt_cache_policy cache;
    int64_t shuffle_block, batch;
    int prefetch, epochs, open_only;
} bench_opts;

/* ---- memory --------------------------------------------------------------------- */
typedef struct mem_use { double rss, pss; } mem_use;   /* MiB */

/* Rss and Pss of this process (Pss: each shared page divided by the
 * number of processes mapping it). */
static mem_use mem_now(void)
{
    mem_use m = {-1, -1};
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long long kb;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "Rss: %lld kB", &kb) == 1)
            m.rss = kb / 1024.0;
        else if (sscanf(line, "Pss: %lld kB", &kb) == 1)
            m.pss = kb / 1024.0;
    }
    if (f)
        fclose(f);
    return m;
}

/* ---- node cache (data.cache = "node"): rt_comm_node_memory over the job ---- */
static rt_node_memory node_memory;

/* ---- the benchmark ---------------------------------------------------------------- */
static double max_over_ranks(double v)
{
    double m = v;
    MPI_Allreduce(&v, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return m;
}

static double sum_over_ranks(double v)
{
    double s = v;
    MPI_Allreduce(&v, &s, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return s;
}

static rt_dataset *open_dataset(const bench_opts *o, double *open_s)
{
    rt_data_source src = {.target = RT_TARGET_CLASS, .cache = o->cache,
                          .node_memory = &node_memory};
    if (!strcmp(o->format, "idx")) {
        src.x = o->a;
        src.y = o->b;
    } else {
        src.file = o->a;
        src.x = o->x;
        src.y = o->y;
        src.target_column = o->target;
    }
    node_memory = rt_comm_node_memory(world_comm);
    rt_transform t = {.normalize = 0};
    rt_dataset *ds = NULL;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (rt_dataset_open(&ds, o->format, &src, &t) != RT_OK)
        die("opening the dataset");
    *open_s = max_over_ranks(MPI_Wtime() - t0);
    return ds;
}

/* One epoch: seconds inside rt_loader_next (this rank) and its samples. */
static void run_epoch(rt_loader *l, int64_t epoch, double *next_s, int64_t *samples)
{
    rt_batch b;
    int done = 0;
    *next_s = 0;
    *samples = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    if (rt_loader_start_epoch(l, epoch, 0) != RT_OK)
        die("starting the epoch");
    for (;;) {
        double t0 = MPI_Wtime();
        if (rt_loader_next(l, &b, &done) != RT_OK)
            die("rt_loader_next");
        *next_s += MPI_Wtime() - t0;
        if (done)
            break;
        *samples += b.n;
    }
}

#define BENCH_MAX_EPOCHS 32

typedef struct loader_result {
    /* per epoch: the slowest rank's seconds in rt_loader_next, the slowest
     * rank's samples/s and the mean over ranks of samples/s */
    double next_s[BENCH_MAX_EPOCHS], sps_slowest[BENCH_MAX_EPOCHS], sps_mean[BENCH_MAX_EPOCHS];
    int64_t batches;
    int prefetch;        /* what the loader used */
    mem_use end;         /* this rank's, after the last epoch */
} loader_result;

static void run_loader(const bench_opts *o, rt_dataset *ds, int rank, int world,
                       loader_result *r)
{
    rt_loader_opts lo = {.global_batch = o->batch, .rank = rank, .world_size = world,
                         .shuffle = 1, .shuffle_block = o->shuffle_block, .seed = 1,
                         .prefetch = o->prefetch};
    rt_loader *l = NULL;
    if (rt_loader_create(&l, ds, &lo) != RT_OK)
        die("creating the loader");
    for (int e = 0; e < o->epochs; e++) {
        double s;
        int64_t n;
        run_epoch(l, e, &s, &n);
        double sps = s > 0 ? (double)n / s : 0.0;
        r->next_s[e] = max_over_ranks(s);
        r->sps_slowest[e] = -max_over_ranks(-sps);
        r->sps_mean[e] = sum_over_ranks(sps) / world;
    }
    r->batches = rt_loader_batches_per_epoch(l);
    r->prefetch = (rt_dataset_flags(ds) & RT_DATASET_THREAD_SAFE) ? o->prefetch : 0;
    r->end = mem_now();
    rt_loader_free(l);
}

static void print_list(const char *key, const double *v, int n, const char *fmt)
{
    printf(", \"%s\": [", key);
    for (int i = 0; i < n; i++) {
        printf(i ? ", " : "");
        printf(fmt, v[i]);
    }
    printf("]");
}

static const char *dtype_name(rt_input_dtype d)
{
    static const char *names[] = {"uint8", "int16", "int32", "float32", "float64"};
    return (unsigned)d < sizeof names / sizeof names[0] ? names[d] : "?";
}

static const char *cache_name(rt_cache_policy c)
{
    return c == RT_CACHE_NODE ? "node" : c == RT_CACHE_NONE ? "none" : "rank";
}

static void report(const bench_opts *o, rt_dataset *ds, int world, double open_s,
                   mem_use before, mem_use after, const loader_result *r)
{
    double pss = sum_over_ranks(after.pss), rss = sum_over_ranks(after.rss);
    double dpss = sum_over_ranks(after.pss - before.pss);
    double drss = sum_over_ranks(after.rss - before.rss);
    double rss_max = max_over_ranks(after.rss);
    double end_pss = r ? sum_over_ranks(r->end.pss) : 0;   /* r: the same on every rank */
    double end_rss = r ? max_over_ranks(r->end.rss) : 0;
    if (rt_comm_rank(world_comm) != 0)
        return;
    const rt_sample_desc *d = rt_dataset_desc(ds);
    printf("{\"name\": \"%s\", \"format\": \"%s\", \"cache\": \"%s\", \"ranks\": %d, "
           "\"samples\": %lld, \"sample_values\": %zu, \"input_dtype\": \"%s\", "
           "\"global_batch\": %lld, \"shuffle_block\": %lld, \"open_s\": %.6f, "
           "\"pss_mib_sum\": %.1f, \"rss_mib_sum\": %.1f, \"rss_mib_max\": %.1f, "
           "\"open_pss_mib_sum\": %.1f, \"open_rss_mib_sum\": %.1f",
           o->name, o->format, strcmp(o->format, "hdf5") ? "-" : cache_name(o->cache), world,
           (long long)rt_dataset_count(ds), rt_sample_input_size(d), dtype_name(d->dtype),
           (long long)o->batch, (long long)o->shuffle_block, open_s, pss, rss, rss_max, dpss,
           drss);
    if (r) {
        printf(", \"epochs\": %d, \"batches\": %lld, \"prefetch\": %d, "
               "\"end_pss_mib_sum\": %.1f, \"end_rss_mib_max\": %.1f",
               o->epochs, (long long)r->batches, r->prefetch, end_pss, end_rss);
        print_list("next_s", r->next_s, o->epochs, "%.6f");
        print_list("samples_per_s_rank", r->sps_slowest, o->epochs, "%.1f");
        print_list("samples_per_s_rank_mean", r->sps_mean, o->epochs, "%.1f");
    }
    printf("}\n");
    fflush(stdout);
}

/* ---- command line ---------------------------------------------------------------- */
static void usage(void)
{
    fprintf(stderr,
            "usage: bench_loader [--cache rank|node|none] [--shuffle-block N] [--batch G]\n"
            "                    [--prefetch P] [--epochs E] [--open-only] [--name NAME]\n"
            "                    [--x PATH] [--y PATH] [--target COLUMN]\n"
            "                    idx IMAGES LABELS | hdf5 FILE | csv FILE\n");
}

/* 0: parsed; 2: usage error. */
static int parse_args(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.x = "/x", .y = "/y", .target = "label", .cache = RT_CACHE_RANK,
                      .batch = 256, .prefetch = 2, .epochs = 1};
    int pos = 0;
    const char *args[3] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = a[0] == '-' && a[1] == '-' && strcmp(a, "--open-only");
        if (takes && !v)
            return 2;
        if (!strcmp(a, "--open-only"))
            o->open_only = 1;
        else if (!strcmp(a, "--cache")) {
            o->cache = !strcmp(v, "node") ? RT_CACHE_NODE : !strcmp(v, "none") ? RT_CACHE_NONE
                                                                                 : RT_CACHE_RANK;
            if (strcmp(v, "node") && strcmp(v, "none") && strcmp(v, "rank"))
                return 2;
        } else if (!strcmp(a, "--shuffle-block"))
            o->shuffle_block = atoll(v);
        else if (!strcmp(a, "--batch"))
            o->batch = atoll(v);
        else if (!strcmp(a, "--prefetch"))
            o->prefetch = atoi(v);
        else if (!strcmp(a, "--epochs"))
            o->epochs = atoi(v);
        else if (!strcmp(a, "--name"))
            o->name = v;
        else if (!strcmp(a, "--x"))
            o->x = v;
        else if (!strcmp(a, "--y"))
            o->y = v;
        else if (!strcmp(a, "--target"))
            o->target = v;
        else if (takes)
            return 2;
        else if (pos < 3)
            args[pos++] = a;
        else
            return 2;
        i += takes;
    }
    o->format = args[0];
    o->a = args[1];
    o->b = args[2];
    int want = o->format && !strcmp(o->format, "idx") ? 3 : 2;
    if (!o->format || pos != want || o->epochs < 1 || o->epochs > BENCH_MAX_EPOCHS || o->batch < 1)
        return 2;
    if (!o->name)
        o->name = o->format;
    return 0;
}

int main(int argc, char **argv)
{
    int owned = 0;   /* as rt_session_init starts MPI for rtrain */
    if (rt_comm_mpi_init(&argc, &argv, &owned) != RT_OK) {
        fprintf(stderr, "%s\n", rt_error_message());
        return 1;
    }
    if (rt_comm_from_mpi(MPI_COMM_WORLD, &world_comm) != RT_OK)
        die("making the communicator");
    int rank = rt_comm_rank(world_comm), world = rt_comm_size(world_comm);
    bench_opts o;
    if (parse_args(argc, argv, &o) != 0) {
        if (rank == 0)
            usage();
        rt_comm_free(world_comm);
        MPI_Finalize();
        return 2;
    }
    double open_s = 0;
    mem_use before = mem_now();
    rt_dataset *ds = open_dataset(&o, &open_s);
    mem_use after = mem_now();
    loader_result r = {0};
    if (!o.open_only)
        run_loader(&o, ds, rank, world, &r);
    report(&o, ds, world, open_s, before, after, o.open_only ? NULL : &r);
    rt_dataset_free(ds);   /* collective over the node for the node cache */
    rt_comm_free(world_comm);
    MPI_Finalize();
    return 0;
}
