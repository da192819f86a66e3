/* rtrain-ckpt: inspect, verify, export and compare rtrain checkpoints.
 *
 *   rtrain-ckpt ls RUN_DIR        committed checkpoints: iteration, step, epoch,
 *                                 size, valid/invalid, metrics
 *   rtrain-ckpt verify CKPT       structure and every checksum; exit 0 if valid
 *   rtrain-ckpt show CKPT         attributes, datasets, shapes, checksums
 *   rtrain-ckpt export [--format h5|safetensors] CKPT OUT
 *                                 model weights (and the data preprocessing they
 *                                 expect) under plain state_dict names: one HDF5
 *                                 file (h5py; the attribute "preprocessing"), or a
 *                                 safetensors file (float32, run info and the
 *                                 preprocessing in __metadata__), by --format or
 *                                 OUT's extension .safetensors; for
 *                                 gradient-boosted trees (model.arch = "gbdt") the
 *                                 library's own model file (xgboost: JSON; lightgbm: text)
 *   rtrain-ckpt diff A B          per-dataset max abs difference; exit 1 if any
 *
 * CKPT is a checkpoint directory (or its checkpoint.h5). Runs as a single
 * process without mpirun: MPI is never initialised, files are read with
 * HDF5's POSIX driver through the library's NULL mode.
 * Exit codes: 0 ok / valid / identical, 1 invalid or different, 2 usage or
 * input error. */
#include <float.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rtrain/ckpt.h"
#include "rtrain/gbdt.h"
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

/* ---- gradient-boosted models (bytes of the library's own file) ------------------- */

/* The model bytes of a gbdt checkpoint (rt_free them), or *data NULL when
 * the checkpoint holds tensors. */
static rt_status read_gbdt(rt_ckpt_file *f, char **data, size_t *len)
{
    int exists = 0;
    *data = NULL;
    *len = 0;
    RT_CHECK(rt_ckpt_exists(f, RT_GBDT_CKPT_MODEL, &exists));
    return exists ? rt_ckpt_read_bytes(f, RT_GBDT_CKPT_MODEL, data, len) : RT_OK;
}

/* "xgboost 1.7.4, xgboost-json, 50 rounds" */
static rt_status gbdt_summary(rt_ckpt_file *f, char *buf, size_t size)
{
    char library[32], version[32], format[32];
    int64_t rounds = 0;
    RT_CHECK(rt_ckpt_attr_get_string(f, "/model", "library", library, sizeof library));
    RT_CHECK(rt_ckpt_attr_get_string(f, "/model", "library_version", version, sizeof version));
    RT_CHECK(rt_ckpt_attr_get_string(f, "/model", "format", format, sizeof format));
    RT_CHECK(rt_ckpt_attr_get_int(f, "/model", "rounds", &rounds));
    snprintf(buf, size, "%s %s, %s, %lld rounds", library, version, format, (long long)rounds);
    return RT_OK;
}

static rt_status show_gbdt(rt_ckpt_file *f, int64_t *count)
{
    char *data = NULL, what[160];
    size_t len = 0;
    RT_CHECK(read_gbdt(f, &data, &len));
    rt_status st = data ? gbdt_summary(f, what, sizeof what) : RT_OK;
    uint64_t sum = 0;
    if (st == RT_OK && data)
        st = rt_ckpt_attr_get_uint(f, RT_GBDT_CKPT_MODEL, "xxh3_64", &sum);
    if (st == RT_OK && data) {
        printf("  %-56s bytes   [%zu] %s, xxh3_64 %016llx\n", RT_GBDT_CKPT_MODEL, len, what,
               (unsigned long long)sum);
        (*count)++;
    }
    rt_free(data);
    return st;
}

static rt_status write_bytes(void *arg, int fd, const char *tmp_path)
{
    const char *const *b = arg;
    return rt_fs_write_all(fd, b[0], (size_t)(b[1] - b[0]), tmp_path);
}

/* The model file of a gbdt checkpoint, written atomically; *done = 0 when
 * the checkpoint holds tensors. */
static rt_status export_gbdt(rt_ckpt_file *in, const char *out_path, int *done)
{
    char *data = NULL, what[160];
    size_t len = 0;
    *done = 0;
    RT_CHECK(read_gbdt(in, &data, &len));
    if (!data)
        return RT_OK;
    rt_status st = gbdt_summary(in, what, sizeof what);
    const char *range[2] = {data, data + len};
    if (st == RT_OK)
        st = rt_fs_replace(out_path, 0644, write_bytes, (void *)range);
    if (st == RT_OK)
        printf("exported the model (%s, %zu bytes) from %s to %s\n", what, len,
               rt_ckpt_file_path(in), out_path);
    rt_free(data);
    *done = st == RT_OK;
    return st;
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
    if (st == RT_OK)
        st = show_gbdt(f, &c.count);
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

static int export_safetensors(const char *dir, const char *path, const char *out_path);

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* format: "h5", "safetensors", or NULL (by OUT's extension). */
static int cmd_export(const char *format, const char *arg, const char *out_path)
{
    char dir[RT_CKPT_PATH_MAX], path[RT_CKPT_PATH_MAX + 16];
    ckpt_dir_of(arg, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
    if (format ? !strcmp(format, "safetensors") : ends_with(out_path, ".safetensors"))
        return export_safetensors(dir, path, out_path);
    rt_ckpt_file *in = NULL, *out = NULL;
    if (rt_ckpt_file_open(&in, NULL, path) != RT_OK)
        return fail(NULL);
    int gbdt = 0;
    rt_status gst = export_gbdt(in, out_path, &gbdt);
    if (gst != RT_OK || gbdt) {
        rt_ckpt_file_close(in);
        return gst == RT_OK ? EXIT_OK : fail("export failed");
    }
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

/* ---- export as safetensors ------------------------------------------------------------ */

typedef struct st_export {
    rt_ckpt_file *in;
    int64_t file_size;
    rt_safetensors_entry *t;
    char (*names)[RT_CKPT_PATH_MAX];
    int n, cap;
} st_export;

/* Lists /model's tensors, each bounded by the file's size (a corrupt
 * shape must not size an allocation). */
static rt_status st_list(void *arg, const char *name, int ndim, const int64_t *shape)
{
    st_export *e = arg;
    uint64_t count = 1, limit = e->file_size > 0 ? (uint64_t)e->file_size / 4 : 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] != 0 && count > limit / (uint64_t)shape[d])
            return RT_ERROR(RT_ERR_FORMAT, "%s: dataset %s claims more data than the file "
                            "holds: the file is corrupt", rt_ckpt_file_path(e->in), name);
        count *= (uint64_t)shape[d];
    }
    if (e->n == e->cap) {
        int cap = e->cap ? 2 * e->cap : 64;
        void *t = realloc(e->t, (size_t)cap * sizeof *e->t);
        if (t)
            e->t = t;
        void *names = t ? realloc(e->names, (size_t)cap * sizeof *e->names) : NULL;
        if (!names)
            return RT_ERROR(RT_ERR_NOMEM, "out of memory listing the model's tensors");
        e->names = names;
        e->cap = cap;
    }
    snprintf(e->names[e->n], sizeof e->names[0], "%s", name);
    e->t[e->n] = (rt_safetensors_entry){.ndim = ndim};
    memcpy(e->t[e->n].shape, shape, (size_t)ndim * sizeof *shape);
    e->n++;
    return RT_OK;
}

static rt_status st_fill(void *arg, int i, float *out)
{
    st_export *e = arg;
    return rt_ckpt_read_tensor(e->in, e->names[i], e->t[i].ndim, e->t[i].shape, out);
}

/* __metadata__: what the checkpoint says about its run, as strings ("format"
 * = "pt" is what PyTorch-side loaders look for). */
#define META_MAX (16 + RT_CKPT_MAX_METRICS)
typedef struct st_meta {
    const char *keys[META_MAX], *values[META_MAX];
    char text[META_MAX][2][RT_CKPT_METRIC_NAME_MAX + 16];
    int n;
} st_meta;

static void meta_add(st_meta *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void meta_add(st_meta *m, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    snprintf(m->text[m->n][0], sizeof m->text[0][0], "%s", key);
    vsnprintf(m->text[m->n][1], sizeof m->text[0][1], fmt, ap);
    va_end(ap);
    m->keys[m->n] = m->text[m->n][0];
    m->values[m->n] = m->text[m->n][1];
    m->n++;
}

static void run_metadata(st_meta *m, const rt_ckpt_info *info)
{
    meta_add(m, "format", "pt");
    meta_add(m, "producer", "rtrain %s", info->rtrain_version);
    meta_add(m, "rtrain.training_iteration", "%lld", (long long)info->training_iteration);
    meta_add(m, "rtrain.step", "%lld", (long long)info->step);
    meta_add(m, "rtrain.epoch", "%lld", (long long)info->epoch);
    meta_add(m, "rtrain.world_size", "%lld", (long long)info->world_size);
    meta_add(m, "rtrain.seed", "%llu", (unsigned long long)info->seed);
    meta_add(m, "rtrain.config_digest", "%s", info->config_digest);
    for (int i = 0; i < info->num_metrics; i++) {
        char key[RT_CKPT_METRIC_NAME_MAX + 16];
        snprintf(key, sizeof key, "rtrain.metric.%s", info->metric_names[i]);
        meta_add(m, key, "%.17g", info->metric_values[i]);
    }
}

/* Mode of a file the user names: what creat(2) would give (0666 less the
 * umask), as the HDF5 export gets from H5Fcreate. */
static int user_file_mode(void)
{
    mode_t mask = umask(0);
    umask(mask);
    return (int)(0666 & ~mask);
}

static int export_safetensors(const char *dir, const char *path, const char *out_path)
{
    rt_ckpt_info info;
    if (rt_ckpt_read_info(dir, &info) != RT_OK)
        return fail(NULL);
    st_export e = {0};
    if (rt_ckpt_file_open(&e.in, NULL, path) != RT_OK)
        return fail(NULL);
    struct stat sb;
    e.file_size = stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
    int gbdt = 0;
    rt_status st = rt_ckpt_exists(e.in, RT_GBDT_CKPT_MODEL, &gbdt);
    if (st == RT_OK && gbdt)
        st = RT_ERROR(RT_ERR_CONFIG, "%s holds gradient-boosted trees, not tensors: export "
                      "it without --format to get the library's own model file", path);
    if (st == RT_OK)
        st = rt_ckpt_foreach_tensor(e.in, "/model", st_list, &e);
    for (int i = 0; i < e.n; i++)
        e.t[i].name = e.names[i] + strlen("/model/");
    st_meta *m = calloc(1, sizeof *m);
    char *preprocessing = NULL;
    if (st == RT_OK && !m)
        st = RT_ERROR(RT_ERR_NOMEM, "out of memory for the metadata");
    if (st == RT_OK)
        st = rt_ckpt_attr_get_text(e.in, "/data", "preprocessing", &preprocessing);
    if (st == RT_OK) {
        run_metadata(m, &info);
        if (preprocessing) {   /* any length: pointed to, not copied */
            m->keys[m->n] = "rtrain.preprocessing";
            m->values[m->n++] = preprocessing;
        }
        st = rt_safetensors_write(out_path, user_file_mode(), e.t, e.n, st_fill, &e, m->keys,
                                  m->values, m->n);
    }
    free(preprocessing);
    free(m);
    rt_ckpt_file_close(e.in);
    free(e.t);
    free(e.names);
    if (st != RT_OK)
        return fail("export failed");
    printf("exported %d model tensors from %s to %s (safetensors)\n", e.n, path, out_path);
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

/* Gradient-boosted models are equal when their bytes are. */
static rt_status diff_gbdt(diff_ctx *c)
{
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    rt_status st = read_gbdt(c->a, &x, &nx);
    if (st == RT_OK)
        st = read_gbdt(c->b, &y, &ny);
    if (st == RT_OK && (x || y)) {
        int same = x && y && nx == ny && memcmp(x, y, nx) == 0;
        printf("  %-56s %s\n", RT_GBDT_CKPT_MODEL,
               !x ? "only in B" : !y ? "only in A" : same ? "identical bytes" : "bytes differ");
        c->differ |= !same;
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
    if (st == RT_OK)
        st = diff_gbdt(&c);
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
            "       rtrain-ckpt export [--format h5|safetensors] CKPT OUT\n"
            "         (gbdt: OUT is the library's own model file)\n"
            "       rtrain-ckpt diff CKPT_A CKPT_B\n"
            "CKPT is a checkpoint directory (RUN_DIR/checkpoint_NNNNNN) or its checkpoint.h5.\n"
            "export writes HDF5 unless --format safetensors is given or OUT ends in "
            ".safetensors.\n");
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
        return cmd_export(NULL, argv[2], argv[3]);
    if (argc == 6 && strcmp(argv[1], "export") == 0 && strcmp(argv[2], "--format") == 0 &&
        (!strcmp(argv[3], "h5") || !strcmp(argv[3], "safetensors")))
        return cmd_export(argv[3], argv[4], argv[5]);
    if (argc == 4 && strcmp(argv[1], "diff") == 0)
        return cmd_diff(argv[2], argv[3]);
    return usage();
}
