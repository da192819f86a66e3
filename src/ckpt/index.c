/* The small JSON files of a run's checkpoints: each checkpoint's
 * manifest.json, the run's checkpoint_index.json (read by rtrain-results),
 * and the retention rule that decides which checkpoints the index keeps.
 *
 * JSON has no NaN or Inf: such metric values are written as null and read
 * back as NaN.
 *
 * The manifest carries the size and XXH3-64 of the whole checkpoint.h5
 * ("file_bytes", "file_xxh3_64", 16 hex digits), checked before HDF5
 * parses the file (ckpt_check_file): HDF5 checksums its object headers and
 * the tensors carry checksums of their own, but its global heap (where
 * variable-length data lives) and other structures have none, and a
 * damaged byte there can crash HDF5 or make it loop. Manifests without
 * these keys (older checkpoints) are read without the check. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <xxhash.h>
#include "config.h"
#include "internal.h"

enum { MANIFEST_MAX_BYTES = 1 << 20 };

static json_t *metric_value(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* json_object_set_new that reports failure (out of memory) instead of
 * dropping the value. */
static int set(json_t *obj, const char *key, json_t *v)
{
    return v ? json_object_set_new(obj, key, v) : -1;
}

static rt_status dump_json(json_t *root, const char *what, char **text)
{
    *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(root);
    if (!*text)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory writing %s", what);
    return RT_OK;
}

rt_status ckpt_check_progress(const char *path, const char *key, int64_t v)
{
    /* Reports and epochs count in int elsewhere (a resume cuts result.json
     * at the report count); steps are bounded where a double still counts
     * them exactly. */
    int64_t max = !strcmp(key, "step") ? CKPT_MAX_STEP : CKPT_MAX_COUNT;
    if (v < 0 || v > max)
        return RT_ERROR(RT_ERR_FORMAT, "%s: %s = %lld is out of range (0 to %lld): the "
                        "checkpoint is damaged", path, key, (long long)v, (long long)max);
    return RT_OK;
}

/* The writer's own file, just closed in its temporary directory: hashed
 * through a read-only mapping, which saves read()'s copy of every byte
 * (1 GiB from the page cache: 0.065 s mapped, 0.090 s by read()). Not for
 * readers: a file truncated under a mapping kills the process with
 * SIGBUS, where read() reports it. */
static rt_status digest_mapped(int fd, const char *path, int64_t *bytes, uint64_t *sum)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return RT_ERROR(RT_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    size_t len = (size_t)sb.st_size;
    void *p = len ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0) : NULL;
    if (p == MAP_FAILED)
        return RT_ERROR(RT_ERR_IO, "cannot map %s to checksum it: %s", path, strerror(errno));
    if (p)
        madvise(p, len, MADV_SEQUENTIAL);
    *sum = XXH3_64bits(p, len);
    *bytes = (int64_t)len;
    if (p)
        munmap(p, len);
    return RT_OK;
}

rt_status ckpt_file_digest(const char *path, int own, int64_t *bytes, uint64_t *sum)
{
    int fd;
    RT_CHECK(rt_fs_open_regular(&fd, path, "checkpoint file"));
    if (own) {
        rt_status st = digest_mapped(fd, path, bytes, sum);
        close(fd);
        return st;
    }
    XXH3_state_t *x = XXH3_createState();
    char *buf = NULL;
    rt_status st = x && XXH3_64bits_reset(x) == XXH_OK
                       ? rt_alloc(&buf, 1 << 20, 1, "checkpoint checksum buffer")
                       : RT_ERROR(RT_ERR_NOMEM, "out of memory checksumming %s", path);
    int64_t total = 0;
    while (st == RT_OK) {
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            st = RT_ERROR(RT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        if (n <= 0)
            break;
        XXH3_64bits_update(x, buf, (size_t)n);
        total += n;
    }
    close(fd);
    rt_free(buf);
    if (st == RT_OK) {
        *bytes = total;
        *sum = XXH3_64bits_digest(x);
    }
    XXH3_freeState(x);
    return st;
}

rt_status ckpt_manifest_write(const char *dir, const rt_train_state *s, int world_size,
                              const rt_ckpt_metric *metrics, int num_metrics,
                              int64_t file_bytes, uint64_t file_sum)
{
    char sum_hex[24];
    snprintf(sum_hex, sizeof sum_hex, "%016" PRIx64, file_sum);
    json_t *root = json_object(), *m = json_object();
    int bad = !root || !m;
    for (int i = 0; !bad && i < num_metrics; i++)
        bad = set(m, metrics[i].name, metric_value(metrics[i].value)) != 0;
    if (!bad)
        bad = set(root, "format", json_string(CKPT_FORMAT_NAME)) ||
              set(root, "format_version", json_integer(RT_CKPT_FORMAT_VERSION)) ||
              set(root, "rtrain_version", json_string(PACKAGE_VERSION)) ||
              set(root, "file", json_string(CKPT_FILE_NAME)) ||
              set(root, "file_bytes", json_integer(file_bytes)) ||
              set(root, "file_xxh3_64", json_string(sum_hex)) ||
              set(root, "training_iteration", json_integer(s->training_iteration)) ||
              set(root, "step", json_integer(s->step)) ||
              set(root, "epoch", json_integer(s->epoch)) ||
              set(root, "next_batch", json_integer(s->next_batch)) ||
              set(root, "world_size", json_integer(world_size)) ||
              set(root, "config_digest", json_string(s->config_digest)) ||
              set(root, "metrics", m);
    else
        json_decref(m);
    if (bad) {
        json_decref(root);
        return RT_ERROR(RT_ERR_INVALID_ARG, "cannot write the checkpoint manifest (metric "
                        "names and the config digest must be UTF-8)");
    }
    char *text = NULL, path[RT_CKPT_PATH_MAX];
    RT_CHECK(dump_json(root, "the checkpoint manifest", &text));
    rt_status st = rt_fs_path(path, sizeof path, "%s/%s", dir, CKPT_MANIFEST_NAME);
    if (st == RT_OK)
        st = rt_fs_write_file(path, text, 0640);
    free(text);
    RT_CHECK(st);
    return RT_OK;
}

static rt_status get_int(json_t *root, const char *key, const char *path, int64_t *v)
{
    json_t *j = json_object_get(root, key);
    if (!json_is_integer(j))
        return RT_ERROR(RT_ERR_FORMAT, "%s: \"%s\" is missing or not an integer", path, key);
    *v = (int64_t)json_integer_value(j);
    return ckpt_check_progress(path, key, *v);
}

/* "file_bytes" and "file_xxh3_64", both or neither. */
static rt_status parse_file_sum(json_t *root, const char *path, ckpt_entry *e)
{
    json_t *bytes = json_object_get(root, "file_bytes"), *sum = json_object_get(root, "file_xxh3_64");
    if (!bytes && !sum)
        return RT_OK;
    const char *hex = json_is_string(sum) ? json_string_value(sum) : "";
    char *end = NULL;
    e->file_sum = strtoull(hex, &end, 16);
    if (!json_is_integer(bytes) || json_integer_value(bytes) < 0 || strlen(hex) != 16 ||
        !end || *end)
        return RT_ERROR(RT_ERR_FORMAT, "%s: \"file_bytes\" or \"file_xxh3_64\" is malformed: "
                        "the manifest is damaged", path);
    e->file_bytes = (int64_t)json_integer_value(bytes);
    e->has_file_sum = 1;
    return RT_OK;
}

static rt_status parse_manifest(json_t *root, const char *path, ckpt_entry *e)
{
    json_t *format = json_object_get(root, "format");
    if (!json_is_string(format) || strcmp(json_string_value(format), CKPT_FORMAT_NAME) != 0)
        return RT_ERROR(RT_ERR_FORMAT, "%s is not an rtrain checkpoint manifest (no \"format\": "
                        "\"%s\")", path, CKPT_FORMAT_NAME);
    RT_CHECK(parse_file_sum(root, path, e));
    RT_CHECK(get_int(root, "training_iteration", path, &e->training_iteration));
    RT_CHECK(get_int(root, "step", path, &e->step));
    RT_CHECK(get_int(root, "epoch", path, &e->epoch));
    json_t *m = json_object_get(root, "metrics");
    if (!json_is_object(m) || json_object_size(m) > RT_CKPT_MAX_METRICS)
        return RT_ERROR(RT_ERR_FORMAT, "%s: \"metrics\" is missing, not an object or has more "
                        "than %d entries", path, RT_CKPT_MAX_METRICS);
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
        if (strlen(key) >= RT_CKPT_METRIC_NAME_MAX || !(json_is_number(v) || json_is_null(v)))
            return RT_ERROR(RT_ERR_FORMAT, "%s: metric \"%.64s\" has a name too long or a value "
                            "that is not a number", path, key);
        snprintf(e->metric_names[e->num_metrics], RT_CKPT_METRIC_NAME_MAX, "%s", key);
        e->metric_values[e->num_metrics++] = json_is_null(v) ? NAN : json_number_value(v);
    }
    return RT_OK;
}

/* The manifest at path, whatever its directory is called. */
static rt_status manifest_parse_file(const char *path, ckpt_entry *e)
{
    memset(e, 0, sizeof *e);
    char *text = NULL;
    RT_CHECK(rt_fs_read_small(path, MANIFEST_MAX_BYTES, "checkpoint manifest", &text));
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    rt_free(text);
    if (!json_is_object(root)) {
        json_decref(root);
        return RT_ERROR(RT_ERR_FORMAT, "%s is not valid JSON (line %d: %s): the checkpoint is "
                        "damaged", path, err.line, root ? "not an object" : err.text);
    }
    rt_status st = parse_manifest(root, path, e);
    json_decref(root);
    RT_CHECK(st);
    return RT_OK;
}

rt_status ckpt_manifest_read(const char *ckpt_dir, ckpt_entry *e)
{
    char path[RT_CKPT_PATH_MAX];
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/%s", ckpt_dir, CKPT_MANIFEST_NAME));
    RT_CHECK(manifest_parse_file(path, e));
    const char *base = strrchr(ckpt_dir, '/');
    int64_t idx;
    if (!ckpt_parse_dir_name(base ? base + 1 : ckpt_dir, CKPT_DIR_PREFIX, &idx))
        return RT_ERROR(RT_ERR_FORMAT, "%s: the directory is not named checkpoint_NNNNNN",
                        ckpt_dir);
    e->index = idx;
    return RT_OK;
}

rt_status ckpt_check_file(const char *file)
{
    /* A FIFO (or device) under the file's name would block HDF5's open for
     * ever: only a regular file is handed to HDF5. A missing one is left
     * to HDF5's own message. */
    int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        int regular = rt_fs_regular_blocking(fd);
        close(fd);
        if (!regular)
            return RT_ERROR(RT_ERR_FORMAT, "%s is not a regular file (a FIFO, device or "
                            "directory?): it cannot be a checkpoint; remove it", file);
    }
    char manifest[RT_CKPT_PATH_MAX];
    const char *slash = strrchr(file, '/');
    int dir_len = slash ? (int)(slash - file) : 1;
    RT_CHECK(rt_fs_path(manifest, sizeof manifest, "%.*s/%s", dir_len, slash ? file : ".",
                        CKPT_MANIFEST_NAME));
    if (access(manifest, F_OK) != 0 && errno == ENOENT)
        return RT_OK;   /* a file written without a manifest (not committed by rtrain) */
    ckpt_entry e;
    RT_CHECK(manifest_parse_file(manifest, &e));
    if (!e.has_file_sum)
        return RT_OK;   /* a checkpoint from before the manifest carried it */
    int64_t bytes = 0;
    uint64_t sum = 0;
    RT_CHECK(ckpt_file_digest(file, 0, &bytes, &sum));
    if (bytes != e.file_bytes)
        return RT_ERROR(RT_ERR_FORMAT, "%s is damaged: it has %lld bytes where %s recorded "
                        "%lld (truncated or overwritten); it is not read, and a resume falls "
                        "back to the checkpoint before it", file, (long long)bytes, manifest,
                        (long long)e.file_bytes);
    if (sum != e.file_sum)
        return RT_ERROR(RT_ERR_FORMAT, "%s is damaged: its checksum (XXH3-64 %016" PRIx64 ") "
                        "differs from the %016" PRIx64 " that %s recorded; it is not read, "
                        "and a resume falls back to the checkpoint before it", file, sum,
                        e.file_sum, manifest);
    return RT_OK;
}

static json_t *entry_json(const ckpt_entry *e)
{
    char dir[64];
    snprintf(dir, sizeof dir, CKPT_DIR_PREFIX "%06lld", (long long)e->index);
    json_t *o = json_object(), *m = json_object();
    int bad = !o || !m;
    for (int i = 0; !bad && i < e->num_metrics; i++)
        bad = set(m, e->metric_names[i], metric_value(e->metric_values[i])) != 0;
    if (!bad)
        bad = set(o, "dir", json_string(dir)) ||
              set(o, "training_iteration", json_integer(e->training_iteration)) ||
              set(o, "step", json_integer(e->step)) ||
              set(o, "epoch", json_integer(e->epoch)) || set(o, "metrics", m);
    else
        json_decref(m);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

rt_status ckpt_index_write(const char *run_dir, const ckpt_entry *entries, const int *keep,
                           int n, const rt_ckpt_policy *policy)
{
    json_t *root = json_object(), *list = json_array();
    int bad = !root || !list;
    for (int i = 0; !bad && i < n; i++)
        if (keep[i])
            bad = json_array_append_new(list, entry_json(&entries[i])) != 0;
    const char *attr = policy && policy->score_attribute && policy->score_attribute[0]
                           ? policy->score_attribute : NULL;
    int min = policy && policy->score_order == RT_CKPT_SCORE_MIN;
    if (!bad)
        bad = set(root, "checkpoints", list) ||
              set(root, "score_attribute", attr ? json_string(attr) : json_null()) ||
              set(root, "score_order", json_string(min ? "min" : "max"));
    else
        json_decref(list);
    if (bad) {
        json_decref(root);
        return RT_ERROR(RT_ERR_NOMEM, "cannot build %s/%s (out of memory or a name that is "
                        "not UTF-8)", run_dir, CKPT_INDEX_NAME);
    }
    char *text = NULL, path[RT_CKPT_PATH_MAX];
    RT_CHECK(dump_json(root, CKPT_INDEX_NAME, &text));
    /* rt_fs_replace's temporary is CKPT_INDEX_TMP_NAME, which
     * rt_ckpt_cleanup_stale removes after a crash. */
    rt_status st = rt_fs_path(path, sizeof path, "%s/%s", run_dir, CKPT_INDEX_NAME);
    if (st == RT_OK)
        st = rt_fs_write_atomic(path, text, 0640);
    free(text);
    RT_CHECK(st);
    return RT_OK;
}
