/* Checkpoint library checks, driven by the tests/mpi/ckpt_*.test scripts
 * under mpirun (any number of ranks):
 *   test_ckpt series DIR FIRST LAST [KEEP]
 *       saves iterations FIRST..LAST into run DIR (state values are a pure
 *       function of the iteration) and writes raw dumps of the last one
 *       (DIR/raw_*.bin, DIR/expected.txt) for the h5py test;
 *   test_ckpt load CKPT ITER   loads CKPT into a model built differently and
 *       checks every parameter, buffer and optimizer value bit for bit
 *       against iteration ITER's state, plus progress; also a model of
 *       another shape must be refused with a clear message;
 *   test_ckpt crashcheck DIR NEWEST HAS_STALE   after a killed save: the
 *       newest valid checkpoint is NEWEST, nothing uncommitted is listed,
 *       stale temporaries exist iff HAS_STALE and are removed by cleanup,
 *       the found checkpoint loads, and the next save works;
 *   test_ckpt suite DIR   write failures, corruption fallback, retention
 *       through real saves, immutability.
 * Exact comparisons: a checkpoint stores float32 bits, so restore is exact.
 * The verdict is agreed across ranks so every rank exits with it. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <hdf5.h>
#include <mpi.h>
#include "config.h"
#include "check.h"
#include "rtrain/ckpt.h"
#include "rtrain/comm_mpi.h"

/* The job's communicator (all ranks), made after MPI_Init. */
static rt_comm *world_comm;

static int rank, world;

/* conv(2->4,3x3) + BatchNorm (buffers incl. a scalar) + ReLU + Flatten +
 * Linear(100->hidden) + ReLU + Linear(hidden->5): tensors with 0 to 4
 * dimensions and fewer rows than 3 ranks. */
static rt_status build(rt_model **m, rt_optimizer **o, int hidden, uint64_t init_seed)
{
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_SEQUENTIAL);
    rt_layer_type types[] = {RT_LAYER_CONV2D, RT_LAYER_BATCHNORM2D, RT_LAYER_RELU,
                             RT_LAYER_FLATTEN, RT_LAYER_LINEAR, RT_LAYER_RELU, RT_LAYER_LINEAR};
    spec.num_layers = 7;
    for (int i = 0; i < 7; i++)
        rt_layer_spec_default(&spec.layers[i], types[i]);
    spec.layers[0].out = 4;
    spec.layers[0].kernel = 3;
    spec.layers[0].padding = 1;
    spec.layers[4].out = hidden;
    spec.layers[6].out = 5;
    spec.num_classes = 5;
    RT_CHECK(rt_model_create(m, NULL, &spec, (rt_shape){2, 5, 5}, 4, init_seed));
    rt_optim_opts oo;
    rt_optim_opts_default(&oo, RT_OPTIM_ADAM);
    RT_CHECK(rt_optim_create(o, rt_model_backend(*m), &oo, rt_model_num_params(*m)));
    return RT_OK;
}

static void fill(float *x, size_t n, uint64_t iter, uint64_t which)
{
    rt_rng r;
    rt_rng_init(&r, rt_rng_key(1234, iter, which, 0));
    for (size_t i = 0; i < n; i++)
        x[i] = rt_rng_normal(&r);
}

/* The training state of iteration iter (same on every rank). */
static void make_state(rt_train_state *s, rt_model *m, rt_optimizer *o, int64_t iter)
{
    fill(rt_model_params(m), rt_model_num_params(m), (uint64_t)iter, 1);
    fill(rt_model_buffers(m), rt_model_num_buffers(m), (uint64_t)iter, 2);
    for (int k = 0; k < rt_optim_state_slots(o); k++)
        fill(rt_optim_state(o, k), rt_model_num_params(m), (uint64_t)iter, 3 + (uint64_t)k);
    rt_optim_set_step_count(o, 10 * iter + 3);
    memset(s, 0, sizeof *s);
    s->model = m;
    s->optim = o;
    s->optimizer_type = "adam";
    s->epoch = iter / 3;
    s->next_batch = iter % 3 * 7;
    s->step = 10 * iter + 3;
    s->training_iteration = iter;
    s->seed = 0xfeedfacecafef00dULL + (uint64_t)iter;
    snprintf(s->config_digest, sizeof s->config_digest, "digest-%lld", (long long)iter);
}

static int same_bits(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static void metrics_for(int64_t iter, rt_ckpt_metric *m, int *n)
{
    m[0] = (rt_ckpt_metric){"loss", 1.0 / (double)iter};
    m[1] = (rt_ckpt_metric){"val_accuracy", iter % 4 == 2 ? NAN : 0.1 * (double)(iter % 5)};
    *n = 2;
}

static rt_status save_iter(const char *dir, int64_t iter, const rt_ckpt_policy *pol)
{
    rt_model *m = NULL;
    rt_optimizer *o = NULL;
    rt_train_state s;
    rt_ckpt_metric met[2];
    int nm;
    rt_status st = build(&m, &o, 16, 1);
    if (st == RT_OK) {
        make_state(&s, m, o, iter);
        metrics_for(iter, met, &nm);
        char out[RT_CKPT_PATH_MAX];
        st = rt_ckpt_save(world_comm, dir, &s, met, nm, pol, out, sizeof out);
        if (st == RT_OK && !strstr(out, "checkpoint_"))
            st = RT_ERROR(RT_ERR_INTERNAL, "committed_dir is \"%s\"", out);
    }
    rt_optim_free(o);
    rt_model_free(m);
    return st;
}

static void write_raw(const char *dir, const char *name, const float *x, size_t n)
{
    char path[RT_CKPT_PATH_MAX];
    snprintf(path, sizeof path, "%s/raw_%s.bin", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f && fwrite(x, sizeof(float), n, f) == n && fclose(f) == 0, "writing %s", path);
}

/* Raw dumps of iteration iter's state, written without HDF5, for h5py. */
static void dump_expected(const char *dir, int64_t iter)
{
    rt_model *m = NULL;
    rt_optimizer *o = NULL;
    rt_train_state s;
    CHECK_OK(build(&m, &o, 16, 1));
    if (!m || !o)
        return;
    make_state(&s, m, o, iter);
    write_raw(dir, "params", rt_model_params(m), rt_model_num_params(m));
    write_raw(dir, "buffers", rt_model_buffers(m), rt_model_num_buffers(m));
    for (int k = 0; k < rt_optim_state_slots(o); k++)
        write_raw(dir, rt_optim_state_name(o, k), rt_optim_state(o, k), rt_model_num_params(m));
    char path[RT_CKPT_PATH_MAX];
    snprintf(path, sizeof path, "%s/expected.txt", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "attrs %lld %lld %lld %lld %llu %s\n", (long long)s.training_iteration,
                (long long)s.step, (long long)s.epoch, (long long)s.next_batch,
                (unsigned long long)s.seed, s.config_digest);
        for (int k = 0; k < rt_optim_state_slots(o); k++)
            fprintf(f, "slot %s\n", rt_optim_state_name(o, k));
        for (int i = 0; i < rt_model_num_tensors(m); i++) {
            const rt_tensor_info *t = rt_model_tensor(m, i);
            fprintf(f, "tensor %s %s %zu %zu %d", t->name,
                    t->kind == RT_TENSOR_PARAM ? "params" : "buffers", t->offset, t->count,
                    t->ndim);
            for (int d = 0; d < t->ndim; d++)
                fprintf(f, " %d", t->shape[d]);
            fputc('\n', f);
        }
        CHECK(fclose(f) == 0);
    }
    rt_optim_free(o);
    rt_model_free(m);
}

static int mode_series(const char *dir, int first, int last, int keep)
{
    rt_ckpt_policy pol = {.num_to_keep = keep, .score_attribute = "val_accuracy"};
    for (int it = first; it <= last; it++)
        CHECK_OK(save_iter(dir, it, &pol));
    if (rank == 0)
        dump_expected(dir, last);
    return 0;
}

/* Loads ckpt into a freshly built model (other init) and compares. */
static void check_load(const char *ckpt, int64_t iter)
{
    rt_model *m = NULL, *ref = NULL;
    rt_optimizer *o = NULL, *ref_o = NULL;
    rt_train_state s, want;
    CHECK_OK(build(&m, &o, 16, 77));
    CHECK_OK(build(&ref, &ref_o, 16, 1));
    if (!m || !o || !ref || !ref_o)
        return;
    make_state(&want, ref, ref_o, iter);
    memset(&s, 0, sizeof s);
    s.model = m;
    s.optim = o;
    s.optimizer_type = "adam";
    rt_ckpt_info info;
    CHECK_OK(rt_ckpt_load(world_comm, ckpt, &s, RT_CKPT_LOAD_ALL, &info));
    CHECK(same_bits(rt_model_params(m), rt_model_params(ref), rt_model_num_params(m)));
    CHECK(same_bits(rt_model_buffers(m), rt_model_buffers(ref), rt_model_num_buffers(m)));
    for (int k = 0; k < rt_optim_state_slots(o); k++)
        CHECK_MSG(same_bits(rt_optim_state(o, k), rt_optim_state(ref_o, k),
                            rt_model_num_params(m)), "optimizer slot %s",
                  rt_optim_state_name(o, k));
    CHECK(rt_optim_step_count(o) == rt_optim_step_count(ref_o));
    CHECK(s.epoch == want.epoch && s.next_batch == want.next_batch && s.step == want.step);
    CHECK(s.training_iteration == iter && s.seed == want.seed);
    CHECK(strcmp(info.config_digest, want.config_digest) == 0);
    CHECK(strcmp(info.optimizer_type, "adam") == 0 && info.has_optimizer);
    CHECK(info.num_metrics == 2 && strcmp(info.metric_names[0], "loss") == 0 &&
          info.metric_values[0] == 1.0 / (double)iter);
    rt_optim_free(o);
    rt_model_free(m);
    rt_optim_free(ref_o);
    rt_model_free(ref);
}

static int mode_load(const char *ckpt, int64_t iter)
{
    check_load(ckpt, iter);
    /* A model of another shape is refused on every rank, naming the tensor. */
    rt_model *m = NULL;
    rt_optimizer *o = NULL;
    CHECK_OK(build(&m, &o, 24, 1));
    if (m && o) {
        rt_train_state s = {.model = m, .optim = o};
        rt_status st = rt_ckpt_load(world_comm, ckpt, &s, RT_CKPT_LOAD_MODEL, NULL);
        CHECK(st == RT_ERR_CONFIG);
        CHECK_MSG(strstr(rt_error_message(), "4.weight [16,100], model expects 4.weight [24,100]"),
                  "message: %s", rt_error_message());
        rt_error_clear();
    }
    rt_optim_free(o);
    rt_model_free(m);
    return 0;
}

/* Names in dir starting with prefix (counted on this rank). */
static int count_prefix(const char *dir, const char *prefix)
{
    char cmd[RT_CKPT_PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c '^%s' || true", dir, prefix);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

static int mode_crashcheck(const char *dir, int newest, int has_stale)
{
    char found_dir[RT_CKPT_PATH_MAX], want[RT_CKPT_PATH_MAX];
    int found = 0;
    if (rank == 0) {
        int stale = count_prefix(dir, ".tmp_");
        CHECK_MSG(has_stale ? stale >= 1 : stale == 0, "stale temporaries: %d", stale);
        /* The index never lists the save that was interrupted. */
        char path[1100], buf[16384], name[32];
        snprintf(path, sizeof path, "%s/checkpoint_index.json", dir);
        snprintf(name, sizeof name, "\"checkpoint_%06d\"", newest);
        FILE *f = fopen(path, "r");
        size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[len] = '\0';
        CHECK(len > 0 && !strstr(buf, name));
    }
    /* Everything listed is committed and valid. */
    int64_t *idx = NULL;
    int n = 0;
    CHECK_OK(rt_ckpt_list(dir, &idx, &n));
    CHECK_MSG(n >= 1 && idx[n - 1] == newest - 1, "newest listed %lld, expected %d",
              n ? (long long)idx[n - 1] : -1LL, newest - 1);
    for (int i = 0; i < n; i++) {
        char d[RT_CKPT_PATH_MAX];
        snprintf(d, sizeof d, "%s/checkpoint_%06lld", dir, (long long)idx[i]);
        CHECK_OK(rt_ckpt_verify(world_comm, d));
    }
    rt_free(idx);
    CHECK_OK(rt_ckpt_find_latest(world_comm, dir, found_dir, sizeof found_dir, &found));
    snprintf(want, sizeof want, "%s/checkpoint_%06d", dir, newest - 1);
    CHECK_MSG(found && strcmp(found_dir, want) == 0, "found %s", found ? found_dir : "none");
    CHECK_OK(rt_ckpt_cleanup_stale(world_comm, dir));
    if (rank == 0)
        CHECK(count_prefix(dir, ".tmp_") == 0 && count_prefix(dir, ".checkpoint_index") == 0);
    if (found)
        check_load(found_dir, newest);
    /* The run goes on: the next save commits and is indexed. */
    CHECK_OK(save_iter(dir, newest + 1, NULL));
    CHECK_OK(rt_ckpt_find_latest(world_comm, dir, found_dir, sizeof found_dir, &found));
    snprintf(want, sizeof want, "%s/checkpoint_%06d", dir, newest);
    CHECK(found && strcmp(found_dir, want) == 0);
    return 0;
}

/* ---- suite ------------------------------------------------------------------------------ */

static void make_writable(const char *path)
{
    CHECK(chmod(path, 0750) == 0 || errno == ENOENT);
}

/* Flips one byte inside the raw data of dataset name (rank 0). */
static void flip_data_byte(const char *file, const char *name)
{
    hid_t fid = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = fid < 0 ? -1 : H5Dopen2(fid, name, H5P_DEFAULT);
    haddr_t off = d < 0 ? HADDR_UNDEF : H5Dget_offset(d);
    if (d >= 0)
        H5Dclose(d);
    if (fid >= 0)
        H5Fclose(fid);
    CHECK(off != HADDR_UNDEF);
    if (off == HADDR_UNDEF)
        return;
    CHECK(chmod(file, 0640) == 0);
    int fd = open(file, O_RDWR);
    unsigned char b = 0;
    CHECK(fd >= 0 && pread(fd, &b, 1, (off_t)off + 13) == 1);
    b ^= 0x40;
    CHECK(fd >= 0 && pwrite(fd, &b, 1, (off_t)off + 13) == 1);
    if (fd >= 0)
        close(fd);
}

/* The manifest of ckpt_dir as a checkpoint written before manifests held
 * the whole file's checksum: its "file_bytes" and "file_xxh3_64" lines
 * removed (the tensors' own checksums are then what catches damage). */
static void strip_file_sum(const char *ckpt_dir)
{
    char path[RT_CKPT_PATH_MAX + 32], text[1 << 16], out[1 << 16];
    snprintf(path, sizeof path, "%s/manifest.json", ckpt_dir);
    CHECK(chmod(ckpt_dir, 0750) == 0 && chmod(path, 0640) == 0);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0, used = 0;
    if (f)
        fclose(f);
    text[len] = '\0';
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (!strstr(line, "\"file_bytes\"") && !strstr(line, "\"file_xxh3_64\""))
            used += (size_t)snprintf(out + used, sizeof out - used, "%s\n", line);
    f = fopen(path, "w");
    CHECK(f && fwrite(out, 1, used, f) == used);
    if (f)
        fclose(f);
}

static void expect_latest(const char *dir, int index)
{
    char found_dir[RT_CKPT_PATH_MAX], want[RT_CKPT_PATH_MAX];
    int found = 0;
    CHECK_OK(rt_ckpt_find_latest(world_comm, dir, found_dir, sizeof found_dir, &found));
    snprintf(want, sizeof want, "%s/checkpoint_%06d", dir, index);
    CHECK_MSG(found && strcmp(found_dir, want) == 0, "found %s, expected %s",
              found ? found_dir : "none", want);
}

static void suite_write_failures(const char *dir)
{
    char bad[RT_CKPT_PATH_MAX], file[RT_CKPT_PATH_MAX];
    /* A run directory under a regular file (chmod is no obstacle to root). */
    snprintf(file, sizeof file, "%s/a_file", dir);
    snprintf(bad, sizeof bad, "%s/a_file/run", dir);
    if (rank == 0) {
        FILE *f = fopen(file, "w");
        CHECK(f && fclose(f) == 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    rt_status st = save_iter(bad, 1, NULL);
    CHECK(st == RT_ERR_IO);
    CHECK_MSG(strstr(rt_error_message(), "cannot create run directory") &&
              strstr(rt_error_message(), bad), "message: %s", rt_error_message());
    rt_error_clear();

    /* An I/O failure on the last rank in the middle of the data write:
     * every rank fails with that rank's message; the earlier checkpoint and
     * the index are untouched; no temporary is left. */
    char run[1024];
    snprintf(run, sizeof run, "%s/failrun", dir);
    CHECK_OK(save_iter(run, 1, NULL));
#ifdef RT_FAULT_INJECTION   /* the injected failure needs the test-only hooks */
    char rankbuf[16];
    snprintf(rankbuf, sizeof rankbuf, "%d", world - 1);
    setenv("RTRAIN_FAULT", "ckpt_fail_write", 1);
    setenv("RTRAIN_FAULT_RANK", rankbuf, 1);
    st = save_iter(run, 2, NULL);
    unsetenv("RTRAIN_FAULT");
    unsetenv("RTRAIN_FAULT_RANK");
    CHECK(st == RT_ERR_IO);
    CHECK_MSG(strstr(rt_error_message(), "injected failure") &&
              strstr(rt_error_message(), "checkpoint.h5"), "message: %s", rt_error_message());
    rt_error_clear();
    if (rank == 0) {
        CHECK(count_prefix(run, ".tmp_") == 0);
        CHECK(count_prefix(run, "checkpoint_000001") == 0);
    }
#endif
    char first[RT_CKPT_PATH_MAX];
    snprintf(first, sizeof first, "%s/checkpoint_000000", run);
    CHECK_OK(rt_ckpt_verify(world_comm, first));
    expect_latest(run, 0);
    /* Checkpoints are numbered in commit order: saving the same iteration
     * again (a preemption checkpoint between two reports) commits the next
     * number and leaves the committed one untouched. */
    CHECK_OK(save_iter(run, 1, NULL));
    expect_latest(run, 1);
    CHECK_OK(rt_ckpt_verify(world_comm, first));
}

static void suite_corruption(const char *dir)
{
    char run[1024], file[RT_CKPT_PATH_MAX];
    snprintf(run, sizeof run, "%s/corrupt", dir);
    for (int it = 1; it <= 3; it++)
        CHECK_OK(save_iter(run, it, NULL));
    /* Flipped byte in the newest: the checksum catches it; fall back. */
    snprintf(file, sizeof file, "%s/checkpoint_000002/checkpoint.h5", run);
    if (rank == 0)
        flip_data_byte(file, "/model/4.weight");
    MPI_Barrier(MPI_COMM_WORLD);
    char ck[RT_CKPT_PATH_MAX];
    snprintf(ck, sizeof ck, "%s/checkpoint_000002", run);
    /* The manifest's whole-file checksum catches it before HDF5 reads. */
    CHECK(rt_ckpt_verify(world_comm, ck) == RT_ERR_FORMAT);
    CHECK_MSG(strstr(rt_error_message(), "is damaged: its checksum") &&
              strstr(rt_error_message(), file), "message: %s", rt_error_message());
    rt_error_clear();
    expect_latest(run, 1);
    /* Loading it anyway fails on every rank, naming the file. */
    rt_model *m = NULL;
    rt_optimizer *o = NULL;
    CHECK_OK(build(&m, &o, 16, 1));
    rt_train_state s = {.model = m, .optim = o};
    CHECK(rt_ckpt_load(world_comm, ck, &s, RT_CKPT_LOAD_ALL, NULL) == RT_ERR_FORMAT);
    CHECK_MSG(strstr(rt_error_message(), "is damaged") && strstr(rt_error_message(), file),
              "message: %s", rt_error_message());
    rt_error_clear();
    /* A manifest without the file's checksum (an older checkpoint): the
     * dataset's own checksum catches it, naming file and dataset. */
    if (rank == 0)
        strip_file_sum(ck);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(rt_ckpt_verify(world_comm, ck) == RT_ERR_FORMAT);
    CHECK_MSG(strstr(rt_error_message(), "checksum mismatch in dataset /model/4.weight") &&
              strstr(rt_error_message(), file), "message: %s", rt_error_message());
    rt_error_clear();
    CHECK(rt_ckpt_load(world_comm, ck, &s, RT_CKPT_LOAD_ALL, NULL) == RT_ERR_FORMAT);
    CHECK_MSG(strstr(rt_error_message(), "checksum mismatch in dataset /model/4.weight"),
              "message: %s", rt_error_message());
    rt_error_clear();
    rt_optim_free(o);
    rt_model_free(m);
    /* Truncated second newest too: fall back to the first. */
    snprintf(file, sizeof file, "%s/checkpoint_000001/checkpoint.h5", run);
    if (rank == 0) {
        struct stat sb;
        CHECK(stat(file, &sb) == 0 && chmod(file, 0640) == 0 &&
              truncate(file, sb.st_size / 2) == 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_latest(run, 0);
    /* None valid: a clear error and nothing deleted. */
    snprintf(file, sizeof file, "%s/checkpoint_000000/checkpoint.h5", run);
    if (rank == 0) {
        CHECK(chmod(file, 0640) == 0 && truncate(file, 100) == 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    char found_dir[RT_CKPT_PATH_MAX];
    int found = 1;
    CHECK(rt_ckpt_find_latest(world_comm, run, found_dir, sizeof found_dir, &found) ==
          RT_ERR_FORMAT);
    CHECK_MSG(!found && strstr(rt_error_message(), "no valid checkpoint") &&
              strstr(rt_error_message(), "nothing was deleted"), "message: %s",
              rt_error_message());
    rt_error_clear();
    int64_t *idx = NULL;
    int n = 0;
    CHECK_OK(rt_ckpt_list(run, &idx, &n));
    CHECK(n == 3);
    rt_free(idx);
}

/* Retention through real saves: K = 2 by max val_accuracy. */
static void suite_retention(const char *dir)
{
    char run[1024];
    snprintf(run, sizeof run, "%s/retain", dir);
    rt_ckpt_policy pol = {.num_to_keep = 2, .score_attribute = "val_accuracy",
                          .score_order = RT_CKPT_SCORE_MAX};
    /* val_accuracy by iteration (metrics_for): 1:0.1 2:NaN 3:0.3 4:0.4 5:0.0 */
    for (int it = 1; it <= 5; it++)
        CHECK_OK(save_iter(run, it, &pol));
    int64_t *idx = NULL;
    int n = 0;
    CHECK_OK(rt_ckpt_list(run, &idx, &n));
    /* kept: 4 (0.4), 3 (0.3) and the newest, 5 */
    CHECK_MSG(n == 3 && idx[0] == 2 && idx[1] == 3 && idx[2] == 4, "kept %d", n);
    rt_free(idx);
    if (rank == 0) {
        char path[RT_CKPT_PATH_MAX], buf[8192];
        snprintf(path, sizeof path, "%s/checkpoint_index.json", run);
        FILE *f = fopen(path, "r");
        size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[len] = '\0';
        CHECK(strstr(buf, "\"checkpoint_000002\"") && strstr(buf, "\"checkpoint_000004\"") &&
              !strstr(buf, "\"checkpoint_000000\"") && !strstr(buf, "\"checkpoint_000001\""));
        CHECK(strstr(buf, "\"score_attribute\": \"val_accuracy\"") &&
              strstr(buf, "\"score_order\": \"max\""));
        CHECK(count_prefix(run, ".tmp_") == 0);
        struct stat sb;
        snprintf(path, sizeof path, "%s/checkpoint_000004/checkpoint.h5", run);
        CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0440);
        snprintf(path, sizeof path, "%s/checkpoint_000004", run);
        CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0550);
    }
}

/* rt_ckpt_import (rank 0, not collective) into run dst of src's checkpoint
 * of iteration `iter`; returns the status, checks the commit on success. */
static rt_status import_on_rank0(const char *dst, const char *src_ckpt, const char *want)
{
    rt_status st = RT_OK;
    if (rank == 0) {
        char committed[RT_CKPT_PATH_MAX] = "";
        st = rt_ckpt_import(dst, src_ckpt, committed, sizeof committed);
        if (st == RT_OK)
            CHECK_MSG(!strcmp(committed, want), "committed %s, want %s", committed, want);
    }
    int32_t code = st;
    MPI_Bcast(&code, 1, MPI_INT32_T, 0, MPI_COMM_WORLD);
    return (rt_status)code;
}

/* 1 when the two files are one inode (a hard link). */
static int same_inode(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino == sb.st_ino &&
           sa.st_dev == sb.st_dev;
}

/* Imports ck into run dst as checkpoint `index` (want), which must then be
 * the run's latest and load as iteration iter; a and b receive the two
 * checkpoint.h5 paths. */
static void imported_as(const char *dst, const char *ck, const char *want, int index,
                        int64_t iter, char *a, char *b)
{
    CHECK_OK(import_on_rank0(dst, ck, want));
    expect_latest(dst, index);
    check_load(want, iter);
    snprintf(a, RT_CKPT_PATH_MAX + 32, "%s/checkpoint.h5", ck);
    snprintf(b, RT_CKPT_PATH_MAX + 32, "%s/checkpoint.h5", want);
}

/* Another run's checkpoint committed as a run's newest (PBT's exploit):
 * a hard link of the read-only file, the run's next number, listed in its
 * index, found as its latest and loaded with the source's exact state; a
 * damaged source is refused and commits nothing; across file systems
 * (tmpfs /dev/shm, when it is one) a copy with the same content. */
static void suite_import(const char *dir)
{
    char src[1024], dst[1024], ck[RT_CKPT_PATH_MAX], want[RT_CKPT_PATH_MAX];
    char a[RT_CKPT_PATH_MAX + 32], b[RT_CKPT_PATH_MAX + 32];
    snprintf(src, sizeof src, "%s/import_src", dir);
    snprintf(dst, sizeof dst, "%s/import_dst", dir);
    for (int it = 1; it <= 2; it++)
        CHECK_OK(save_iter(src, it, NULL));
    CHECK_OK(save_iter(dst, 1, NULL));
    snprintf(ck, sizeof ck, "%s/checkpoint_000001", src);       /* iteration 2 */
    snprintf(want, sizeof want, "%s/checkpoint_000001", dst);
    imported_as(dst, ck, want, 1, 2, a, b);
    if (rank == 0) {
        struct stat sb;
        CHECK(same_inode(a, b));
        CHECK(stat(want, &sb) == 0 && (sb.st_mode & 0777) == 0550);
        snprintf(b, sizeof b, "%s/checkpoint_index.json", dst);
        FILE *f = fopen(b, "r");
        char buf[8192];
        size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[len] = '\0';
        CHECK(strstr(buf, "\"checkpoint_000001\"") != NULL);
    }
    /* A damaged source: refused with the checksum's message, nothing committed. */
    char bad[1024];
    snprintf(bad, sizeof bad, "%s/import_bad", dir);
    CHECK_OK(save_iter(bad, 1, NULL));
    snprintf(ck, sizeof ck, "%s/checkpoint_000000", bad);
    snprintf(a, sizeof a, "%s/checkpoint.h5", ck);
    if (rank == 0)
        flip_data_byte(a, "/model/4.weight");
    MPI_Barrier(MPI_COMM_WORLD);
    rt_status st = import_on_rank0(dst, ck, "");
    CHECK(st == RT_ERR_FORMAT);
    if (rank == 0) {
        CHECK_MSG(strstr(rt_error_message(), "is damaged: its checksum"), "message: %s",
                  rt_error_message());
        CHECK(count_prefix(dst, "checkpoint_000002") == 0 && count_prefix(dst, ".tmp_") == 0);
    }
    rt_error_clear();
    expect_latest(dst, 1);
    /* Across file systems: a copy. */
    struct stat here, shm;
    int other_fs = stat(dir, &here) == 0 && stat("/dev/shm", &shm) == 0 &&
                   here.st_dev != shm.st_dev && access("/dev/shm", W_OK) == 0;
    if (!other_fs)
        return;
    char far[1024];
    snprintf(far, sizeof far, "/dev/shm/rtrain_import_%d_%d", (int)getppid(), world);
    CHECK_OK(save_iter(far, 3, NULL));
    snprintf(ck, sizeof ck, "%s/checkpoint_000000", far);
    snprintf(want, sizeof want, "%s/checkpoint_000002", dst);
    imported_as(dst, ck, want, 2, 3, a, b);
    if (rank == 0) {
        struct stat sb;
        CHECK(!same_inode(a, b) && stat(b, &sb) == 0 && (sb.st_mode & 0777) == 0440);
        char cmd[2200];
        snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' && rm -rf '%s'", far, far);
        CHECK(system(cmd) == 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Asynchronous saves: each holds the state it was given although the
 * caller overwrites everything right after rt_ckpt_async_before_update
 * (the writer copies the weights and optimizer state itself, first); the
 * checkpoints load back exactly; a write that fails in the writer fails
 * the wait on every rank with its message and commits nothing. */
static void suite_async(const char *dir)
{
    char run[1024], committed[RT_CKPT_PATH_MAX], ck[RT_CKPT_PATH_MAX];
    snprintf(run, sizeof run, "%s/async", dir);
    rt_model *m = NULL;
    rt_optimizer *o = NULL;
    rt_ckpt_async *w = NULL;
    CHECK_OK(build(&m, &o, 16, 1));
    CHECK_OK(rt_ckpt_async_create(&w, world_comm));
    if (!m || !o || !w)
        return;
    for (int64_t it = 1; it <= 3; it++) {
        rt_train_state s, later;
        rt_ckpt_metric met[2];
        int nm;
        make_state(&s, m, o, it);
        metrics_for(it, met, &nm);
        CHECK_OK(rt_ckpt_save_async(w, run, &s, met, nm, NULL, committed, sizeof committed));
        rt_ckpt_async_before_update(w);
        make_state(&later, m, o, it + 100);   /* training goes on: every tensor changes */
    }
    CHECK_OK(rt_ckpt_async_wait(w));
    for (int64_t it = 1; it <= 3; it++) {
        snprintf(ck, sizeof ck, "%s/checkpoint_%06lld", run, (long long)it - 1);
        CHECK_OK(rt_ckpt_verify(world_comm, ck));
        check_load(ck, it);
    }
    expect_latest(run, 2);
    /* The writer fails (an injected write error on rank 0, the writer's;
     * in a build with the test-only hooks). */
#ifdef RT_FAULT_INJECTION
    rt_train_state s;
    rt_ckpt_metric met[2];
    int nm;
    make_state(&s, m, o, 4);
    metrics_for(4, met, &nm);
    setenv("RTRAIN_FAULT", "ckpt_fail_write", 1);
    setenv("RTRAIN_FAULT_RANK", "0", 1);
    CHECK_OK(rt_ckpt_save_async(w, run, &s, met, nm, NULL, committed, sizeof committed));
    rt_status st = rt_ckpt_async_wait(w);
    unsetenv("RTRAIN_FAULT");
    unsetenv("RTRAIN_FAULT_RANK");
    CHECK(st == RT_ERR_IO);
    CHECK_MSG(strstr(rt_error_message(), "injected failure"), "rank %d: %s", rank,
              rt_error_message());
    rt_error_clear();
    if (rank == 0)
        CHECK(count_prefix(run, "checkpoint_000003") == 0 && count_prefix(run, ".tmp_") == 0);
#endif
    expect_latest(run, 2);
    CHECK_OK(rt_ckpt_async_wait(w));   /* nothing in flight: returns at once */
    rt_ckpt_async_free(w);
    rt_optim_free(o);
    rt_model_free(m);
}

static int mode_suite(const char *dir)
{
    suite_write_failures(dir);
    suite_corruption(dir);
    suite_retention(dir);
    suite_import(dir);
    suite_async(dir);
    if (rank == 0) {   /* let the test script remove the read-only tree */
        char cmd[RT_CKPT_PATH_MAX + 32];
        snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'", dir);
        CHECK(system(cmd) == 0);
    }
    make_writable(dir);
    return 0;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (rt_comm_from_mpi(MPI_COMM_WORLD, &world_comm) != RT_OK) {
        fprintf(stderr, "%s\n", rt_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    rt_log_set_rank(rank, "test");
    if (argc >= 5 && strcmp(argv[1], "series") == 0)
        mode_series(argv[2], atoi(argv[3]), atoi(argv[4]), argc > 5 ? atoi(argv[5]) : 0);
    else if (argc == 4 && strcmp(argv[1], "load") == 0)
        mode_load(argv[2], atoll(argv[3]));
    else if (argc == 5 && strcmp(argv[1], "crashcheck") == 0)
        mode_crashcheck(argv[2], atoi(argv[3]), atoi(argv[4]));
    else if (argc == 3 && strcmp(argv[1], "suite") == 0)
        mode_suite(argv[2]);
    else
        CHECK_MSG(0, "usage: test_ckpt series|load|crashcheck|suite ...");
    int failed = check_failures ? 1 : 0, any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int rc = CHECK_DONE();
    rt_comm_free(world_comm);
    MPI_Finalize();
    return any ? 1 : rc;
}
