/* rtrain-ckpt: inspect, verify, export and compare rtrain checkpoints.
 *
 *   rtrain-ckpt ls RUN_DIR        committed checkpoints: iteration, step, epoch,
 *                                 size, valid/invalid, metrics
 *   rtrain-ckpt verify CKPT       structure and every checksum; exit 0 if valid
 *   rtrain-ckpt show CKPT         attributes, datasets, shapes, checksums
 *   rtrain-ckpt export CKPT OUT   model weights (and the data preprocessing they
 *                                 expect, as the root attribute "preprocessing"), one HDF5 file, plain
 *                                 state_dict names at the root (h5py, PyTorch)
 *   rtrain-ckpt diff A B          per-dataset max abs difference; exit 1 if any
 *
 * CKPT is a checkpoint directory (or its checkpoint.h5). Runs as a single
 * process without mpirun: MPI is never initialised, files are read with
 * HDF5's POSIX driver through the library's NULL mode.
 * Exit codes: 0 ok / valid / identical, 1 invalid or different, 2 usage or
 * input error. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rtrain/ckpt.h"
#include "core/fs.h"

enum { EXIT_OK = 0, EXIT_DIFFERENT = 1, EXIT_ERROR = 2 };

static int fail(const char *what)
{
    fprintf(stderr, "rtrain-ckpt: %s%s%s\n", what ? what : "", what ? ": " : "",
            rt_error_message());
    rt_error_clear();
    return EXIT_ERROR;
}

/* A checkpoint argument: the directory, or its checkpoint.h5. */
static void ckpt_dir_of(const char *arg, char *dir, size_t size)
{
    struct stat sb;
    snprintf(dir, size, "%s", arg);
    if (stat(arg, &sb) == 0 && S_ISREG(sb.st_mode)) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, size, ".");
    }
}

static int64_t dir_bytes(const char *dir)
{
    static const char *const files[] = {"checkpoint.h5", "manifest.json"};
    int64_t total = 0;
    for (size_t i = 0; i < 2; i++) {
        char path[RT_CKPT_PATH_MAX + 32];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (stat(path, &sb) == 0)
            total += sb.st_size;
    }
    return total;
}

static void print_metrics(const rt_ckpt_info *info)
{
    for (int i = 0; i < info->num_metrics; i++)
        printf("%s%s=%.6g", i ? " " : "", info->metric_names[i], info->metric_values[i]);
}

static int cmd_ls(const char *run_dir)
{
    int64_t *idx = NULL;
    int n = 0;
    if (rt_ckpt_list(run_dir, &idx, &n) != RT_OK)
        return fail(NULL);
    if (n == 0)
        printf("no committed checkpoints in %s\n", run_dir);
    else
        printf("%-20s %9s %9s %6s %10s  %-7s  %s\n", "checkpoint", "iteration", "step", "epoch",
               "MiB", "status", "metrics");
    int invalid = 0;
    for (int i = 0; i < n; i++) {
        char dir[RT_CKPT_PATH_MAX], name[32];
        snprintf(name, sizeof name, "checkpoint_%06lld", (long long)idx[i]);
        snprintf(dir, sizeof dir, "%s/%s", run_dir, name);
        rt_ckpt_info info;
        int have_info = rt_ckpt_read_info(dir, &info) == RT_OK;
        rt_error_clear();
        int valid = rt_ckpt_verify(NULL, dir) == RT_OK;
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", rt_error_message());
        rt_error_clear();
        invalid += !valid;
        printf("%-20s ", name);
        if (have_info)
            printf("%9lld %9lld %6lld ", (long long)info.training_iteration,
                   (long long)info.step, (long long)info.epoch);
        else
            printf("%9s %9s %6s ", "?", "?", "?");
        printf("%10.2f  %-7s  ", (double)dir_bytes(dir) / (1 << 20), valid ? "valid" : "INVALID");
        if (have_info)
            print_metrics(&info);
        putchar('\n');
        if (!valid)
            printf("    %s\n", reason);
    }
    rt_free(idx);
    return invalid ? EXIT_DIFFERENT : EXIT_OK;
}

static int cmd_verify(const char *arg)
{
    char dir[RT_CKPT_PATH_MAX];
    ckpt_dir_of(arg, dir, sizeof dir);
    if (rt_ckpt_verify(NULL, dir) != RT_OK) {
        fprintf(stderr, "rtrain-ckpt: %s is NOT valid: %s\n", dir, rt_error_message());
        return EXIT_DIFFERENT;
    }
    printf("%s: valid (manifest, structure and all checksums)\n", dir);
    return EXIT_OK;
}

/* ---- show ---------------------------------------------------------------------- */

typedef struct show_ctx { rt_ckpt_file *f; int64_t count; } show_ctx;

static rt_status show_tensor(void *arg, const char *name, int ndim, const int64_t *shape)
{
    show_ctx *c = arg;
    uint64_t sum = 0;
    RT_CHECK(rt_ckpt_attr_get_uint(c->f, name, "xxh3_64", &sum));
    char dims[160] = "[";
    for (int d = 0; d < ndim; d++) {
        size_t len = strlen(dims);
        snprintf(dims + len, sizeof dims - len, "%s%lld", d ? "," : "", (long long)shape[d]);
    }
    strncat(dims, "]", sizeof dims - strlen(dims) - 1);
    printf("  %-56s float32 %-20s xxh3_64 %016llx\n", name, dims, (unsigned long long)sum);
    c->count++;
    return RT_OK;
}

static int cmd_show(const char *arg)
{
    char dir[RT_CKPT_PATH_MAX], path[RT_CKPT_PATH_MAX + 16];
    ckpt_dir_of(arg, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
    rt_ckpt_info info;
    if (rt_ckpt_read_info(dir, &info) != RT_OK)
        return fail(NULL);
    printf("%s\n", path);
    printf("  format_version      %lld (written by rtrain %s)\n", (long long)info.format_version,
           info.rtrain_version);
    printf("  world_size          %lld\n", (long long)info.world_size);
    printf("  training_iteration  %lld\n  step                %lld\n",
           (long long)info.training_iteration, (long long)info.step);
    printf("  epoch               %lld\n  next_batch          %lld\n", (long long)info.epoch,
           (long long)info.next_batch);
    printf("  seed                %llu\n  config_digest       %s\n",
           (unsigned long long)info.seed, info.config_digest);
    if (info.has_optimizer)
        printf("  optimizer           %s, step %lld\n",
               info.optimizer_type[0] ? info.optimizer_type : "(type not recorded)",
               (long long)info.optimizer_step);
    printf("  metrics             ");
    print_metrics(&info);
    printf("\ndatasets:\n");
    rt_ckpt_file *f = NULL;
    if (rt_ckpt_file_open(&f, NULL, path) != RT_OK)
        return fail(NULL);
    show_ctx c = {f, 0};
    rt_status st = rt_ckpt_foreach_tensor(f, "/", show_tensor, &c);
    rt_ckpt_file_close(f);
    if (st != RT_OK)
        return fail(NULL);
    printf("%lld datasets\n", (long long)c.count);
    return EXIT_OK;
}

/* ---- reading whole tensors (bounded by the file's size) --------------------------- */

static rt_status read_whole(rt_ckpt_file *f, const char *name, int ndim, const int64_t *shape,
                            float **out, size_t *count)
{
    struct stat sb;
    uint64_t n = 1, limit = 0;
    if (stat(rt_ckpt_file_path(f), &sb) == 0 && sb.st_size > 0)
        limit = (uint64_t)sb.st_size / 4;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] != 0 && n > limit / (uint64_t)shape[d])
            return RT_ERROR(RT_ERR_FORMAT, "%s: dataset %s claims more data than the file "
                            "holds: the file is corrupt", rt_ckpt_file_path(f), name);
        n *= (uint64_t)shape[d];
    }
    RT_CHECK(rt_alloc(out, (size_t)n, sizeof(float), name));
    *count = (size_t)n;
    rt_status st = rt_ckpt_read_tensor(f, name, ndim, shape, *out);
    if (st != RT_OK) {
        rt_free(*out);
        *out = NULL;
    }
    return st;
}

/* ---- export ------------------------------------------------------------------------ */

typedef struct export_ctx { rt_ckpt_file *in, *out; int count; } export_ctx;

static rt_status export_tensor(void *arg, const char *name, int ndim, const int64_t *shape)
{
    export_ctx *c = arg;
    float *data = NULL;
    size_t n = 0;
    RT_CHECK(read_whole(c->in, name, ndim, shape, &data, &n));
    char plain[RT_CKPT_PATH_MAX];
    snprintf(plain, sizeof plain, "/%s", name + strlen("/model/"));
    rt_status st = rt_ckpt_write_tensor(c->out, plain, ndim, shape, data);
    rt_free(data);
    RT_CHECK(st);
    c->count++;
    return RT_OK;
}

static int cmd_export(const char *arg, const char *out_path)
{
    char dir[RT_CKPT_PATH_MAX], path[RT_CKPT_PATH_MAX + 16];
    ckpt_dir_of(arg, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
    rt_ckpt_file *in = NULL, *out = NULL;
    if (rt_ckpt_file_open(&in, NULL, path) != RT_OK)
        return fail(NULL);
    /* The output gets the mode of the files rtrain writes (0640, whatever
     * the umask) and is never written through a symbolic link. */
    int fd = -1;
    if (rt_fs_open_write(&fd, out_path, 0, 0640, NULL) != RT_OK) {
        rt_ckpt_file_close(in);
        return fail(NULL);
    }
    close(fd);
    if (rt_ckpt_file_create(&out, NULL, out_path) != RT_OK) {
        rt_ckpt_file_close(in);
        return fail(NULL);
    }
    export_ctx c = {in, out, 0};
    rt_status st = rt_ckpt_foreach_tensor(in, "/model", export_tensor, &c);
    /* What the model expects of its inputs (encoding, standardisation)
     * travels with its weights. */
    char *preprocessing = NULL;
    if (st == RT_OK)
        st = rt_ckpt_attr_get_text(in, "/data", "preprocessing", &preprocessing);
    if (st == RT_OK && preprocessing)
        st = rt_ckpt_attr_set_string(out, "/", "preprocessing", preprocessing);
    free(preprocessing);
    rt_ckpt_file_close(in);
    if (st == RT_OK)
        st = rt_ckpt_file_close(out);
    else
        rt_ckpt_file_close(out);
    if (st != RT_OK) {
        remove(out_path);
        return fail("export failed");
    }
    printf("exported %d model tensors from %s to %s\n", c.count, path, out_path);
    return EXIT_OK;
}

/* ---- diff ----------------------------------------------------------------------------- */

typedef struct diff_ctx { rt_ckpt_file *a, *b; int differ, pass; } diff_ctx;

static double max_abs_diff(const float *x, const float *y, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]) || isnan(y[i])) {
            if (!(isnan(x[i]) && isnan(y[i])))
                return INFINITY;
            continue;
        }
        double d = fabs((double)x[i] - (double)y[i]);
        if (d > m || isinf(d))
            m = d;
    }
    return m;
}

/* Pass 0 walks A (compares, reports what B lacks); pass 1 walks B and
 * reports only what A lacks. */
static rt_status diff_tensor(void *arg, const char *name, int ndim, const int64_t *shape)
{
    diff_ctx *c = arg;
    rt_ckpt_file *other = c->pass == 0 ? c->b : c->a;
    int exists = 0;
    RT_CHECK(rt_ckpt_exists(other, name, &exists));
    if (!exists) {
        printf("  %-56s only in %s\n", name, c->pass == 0 ? "A" : "B");
        c->differ = 1;
        return RT_OK;
    }
    if (c->pass == 1)
        return RT_OK;
    int nd = 0;
    int64_t oshape[RT_CKPT_MAX_NDIM];
    RT_CHECK(rt_ckpt_tensor_shape(c->b, name, &nd, oshape));
    int same = nd == ndim;
    for (int d = 0; same && d < nd; d++)
        same = oshape[d] == shape[d];
    if (!same) {
        printf("  %-56s shapes differ\n", name);
        c->differ = 1;
        return RT_OK;
    }
    float *x = NULL, *y = NULL;
    size_t n = 0;
    RT_CHECK(read_whole(c->a, name, ndim, shape, &x, &n));
    rt_status st = read_whole(c->b, name, ndim, shape, &y, &n);
    if (st == RT_OK) {
        double m = max_abs_diff(x, y, n);
        printf("  %-56s max abs diff %.9g\n", name, m);
        c->differ |= m != 0;
    }
    rt_free(x);
    rt_free(y);
    return st;
}

static int cmd_diff(const char *arg_a, const char *arg_b)
{
    char da[RT_CKPT_PATH_MAX], db[RT_CKPT_PATH_MAX];
    char pa[RT_CKPT_PATH_MAX + 16], pb[RT_CKPT_PATH_MAX + 16];
    ckpt_dir_of(arg_a, da, sizeof da);
    ckpt_dir_of(arg_b, db, sizeof db);
    snprintf(pa, sizeof pa, "%s/checkpoint.h5", da);
    snprintf(pb, sizeof pb, "%s/checkpoint.h5", db);
    diff_ctx c = {0};
    if (rt_ckpt_file_open(&c.a, NULL, pa) != RT_OK)
        return fail(NULL);
    if (rt_ckpt_file_open(&c.b, NULL, pb) != RT_OK) {
        rt_ckpt_file_close(c.a);
        return fail(NULL);
    }
    printf("A = %s\nB = %s\n", pa, pb);
    rt_status st = rt_ckpt_foreach_tensor(c.a, "/", diff_tensor, &c);
    if (st == RT_OK) {
        c.pass = 1;
        st = rt_ckpt_foreach_tensor(c.b, "/", diff_tensor, &c);
    }
    rt_ckpt_file_close(c.a);
    rt_ckpt_file_close(c.b);
    if (st != RT_OK)
        return fail(NULL);
    printf(c.differ ? "checkpoints differ\n" : "checkpoints are identical\n");
    return c.differ ? EXIT_DIFFERENT : EXIT_OK;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: rtrain-ckpt ls RUN_DIR\n"
            "       rtrain-ckpt verify CKPT\n"
            "       rtrain-ckpt show CKPT\n"
            "       rtrain-ckpt export CKPT OUT.h5\n"
            "       rtrain-ckpt diff CKPT_A CKPT_B\n"
            "CKPT is a checkpoint directory (RUN_DIR/checkpoint_NNNNNN) or its checkpoint.h5.\n");
    return EXIT_ERROR;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "ls") == 0)
        return cmd_ls(argv[2]);
    if (argc == 3 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argv[2]);
    if (argc == 3 && strcmp(argv[1], "show") == 0)
        return cmd_show(argv[2]);
    if (argc == 4 && strcmp(argv[1], "export") == 0)
        return cmd_export(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "diff") == 0)
        return cmd_diff(argv[2], argv[3]);
    return usage();
}
