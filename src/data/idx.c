/* idx datasets (MNIST, FashionMNIST): two files, images (magic 0x00000803,
 * dims count x rows x cols) and labels (magic 0x00000801, dim count), each
 * raw or gzip-compressed. The kind is detected from the first bytes and both
 * are read through zlib, which passes raw files through unchanged.
 *
 * The files are untrusted input: the header is bounded before anything is
 * allocated, the pixel buffer grows only as bytes actually arrive (a header
 * that lies about its count cannot make us allocate gigabytes), and the file
 * must hold exactly the bytes its header promises. Every message names the
 * file. Pixels stay uint8 in memory (47 MB for FashionMNIST rather than
 * 188 MB as floats) and are converted to floats on fetch; the dataset's
 * transform chain (ToTensor's /255, Normalize) does the rest.
 *
 * Decoded files are kept for the life of the process and shared, read-only,
 * by every dataset opened on them: rtrain-tune runs one trial after another
 * in one process, and decoding FashionMNIST (0.15 s) cost more than the
 * rest of a trial's set-up. A file is known by its device, inode, size and
 * modification time, so a file replaced between two opens is read again. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "data/formats.h"

#define IDX_MAGIC_IMAGES 0x00000803u  /* unsigned bytes, 3 dimensions */
#define IDX_MAGIC_LABELS 0x00000801u  /* unsigned bytes, 1 dimension */
#define IDX_MAX_COUNT 0x7fffffffu     /* samples per file */
#define IDX_MAX_SIDE 4096u            /* rows and cols */
#define IDX_FIRST_CHUNK ((size_t)16 << 20)

/* One idx file being read. */
typedef struct idx_file {
    const char *path;
    const char *role;   /* "images" or "labels", for messages */
    gzFile gz;
    char promise[128];  /* what the header promises, once read */
    size_t got;         /* decompressed bytes read so far, header included */
} idx_file;

typedef struct idx_data {
    uint8_t *pixels;    /* [count][rows * cols] */
    uint8_t *labels;    /* [count] */
    size_t sample_size; /* rows * cols */
} idx_data;

/* ---- decoded files, shared --------------------------------------------------------- */
enum { IDX_CACHE_FILES = 8 };   /* a train and a test split of a few datasets */

typedef struct idx_cached {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    uint32_t magic, dims[3];
    uint8_t *payload;   /* NULL: a free slot */
    int refs;           /* datasets using it */
    unsigned long long last_use;
} idx_cached;

static idx_cached idx_cache[IDX_CACHE_FILES];
static unsigned long long idx_cache_clock;
static pthread_mutex_t idx_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int same_file(const idx_cached *c, const struct stat *st, uint32_t magic)
{
    return c->payload && c->magic == magic && c->dev == st->st_dev && c->ino == st->st_ino &&
           c->size == st->st_size && c->mtime.tv_sec == st->st_mtim.tv_sec &&
           c->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* The decoded payload of the file `st` describes, shared (refs + 1), or NULL. */
static uint8_t *cache_take(const struct stat *st, uint32_t magic, uint32_t *dims)
{
    uint8_t *p = NULL;
    pthread_mutex_lock(&idx_cache_lock);
    for (int i = 0; i < IDX_CACHE_FILES && !p; i++)
        if (same_file(&idx_cache[i], st, magic)) {
            idx_cache[i].refs++;
            idx_cache[i].last_use = ++idx_cache_clock;
            memcpy(dims, idx_cache[i].dims, sizeof idx_cache[i].dims);
            p = idx_cache[i].payload;
        }
    pthread_mutex_unlock(&idx_cache_lock);
    return p;
}

/* Keeps a freshly decoded payload (taken: refs 1) in a free slot or in
 * place of the least recently used unused one; returns 0 when every slot
 * is in use (the caller then owns the payload). */
static int cache_put(const struct stat *st, uint32_t magic, const uint32_t *dims,
                     uint8_t *payload)
{
    int slot = -1;
    pthread_mutex_lock(&idx_cache_lock);
    for (int i = 0; i < IDX_CACHE_FILES; i++)
        if (idx_cache[i].refs == 0 &&
            (slot < 0 || !idx_cache[i].payload ||
             (idx_cache[slot].payload && idx_cache[i].last_use < idx_cache[slot].last_use)))
            slot = i;
    if (slot >= 0) {
        free(idx_cache[slot].payload);
        idx_cache[slot] = (idx_cached){.dev = st->st_dev, .ino = st->st_ino,
                                       .size = st->st_size, .mtime = st->st_mtim,
                                       .magic = magic, .payload = payload, .refs = 1,
                                       .last_use = ++idx_cache_clock};
        memcpy(idx_cache[slot].dims, dims, sizeof idx_cache[slot].dims);
    }
    pthread_mutex_unlock(&idx_cache_lock);
    return slot >= 0;
}

/* A dataset is done with payload: shared ones are kept, owned ones freed. */
static void cache_release(uint8_t *payload)
{
    if (!payload)
        return;
    int shared = 0;
    pthread_mutex_lock(&idx_cache_lock);
    for (int i = 0; i < IDX_CACHE_FILES && !shared; i++)
        if (idx_cache[i].payload == payload) {
            idx_cache[i].refs--;
            shared = 1;
        }
    pthread_mutex_unlock(&idx_cache_lock);
    if (!shared)
        free(payload);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static rt_status idx_open_error(const char *role, const char *path, int err)
{
    return RT_ERROR(RT_ERR_IO,
                    "cannot open %s file '%s': %s; install the dataset-fashion-mnist package "
                    "(files under /usr/share/datasets/fashion-mnist) or set data.dir to the "
                    "directory holding the idx files", role, path, strerror(err));
}

/* Opens f->path, tells gzip from raw idx by the first bytes and hands the
 * descriptor to zlib (which reads raw files transparently). */
static rt_status idx_file_open(idx_file *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return idx_open_error(f->role, f->path, errno);
    uint8_t head[2];
    ssize_t n = read(fd, head, sizeof head);
    if (n < 0) {
        int err = errno;
        close(fd);
        return idx_open_error(f->role, f->path, err);
    }
    int is_gzip = n == 2 && head[0] == 0x1f && head[1] == 0x8b;
    int is_idx = n == 2 && head[0] == 0 && head[1] == 0;
    if (!is_gzip && !is_idx) {
        close(fd);
        if (n < 2)
            return RT_ERROR(RT_ERR_FORMAT, "%s file '%s' is empty or too short to be gzip or "
                            "idx (%zd bytes)", f->role, f->path, n);
        return RT_ERROR(RT_ERR_FORMAT, "%s file '%s' is neither gzip nor idx: it starts with "
                        "bytes %02x %02x, expected 1f 8b (gzip) or 00 00 (idx)",
                        f->role, f->path, head[0], head[1]);
    }
    if (lseek(fd, 0, SEEK_SET) != 0 || !(f->gz = gzdopen(fd, "rb"))) {
        int err = errno;
        close(fd);
        return RT_ERROR(RT_ERR_IO, "cannot read %s file '%s': %s", f->role, f->path,
                        strerror(err ? err : ENOMEM));
    }
    gzbuffer(f->gz, 1 << 17);
    return RT_OK;
}

/* zlib reports a stream cut short as Z_BUF_ERROR ("unexpected end of
 * file") and corrupt data as Z_DATA_ERROR; both are the file's fault. */
static rt_status idx_check_stream(idx_file *f)
{
    int zerr = Z_OK;
    const char *msg = gzerror(f->gz, &zerr);
    if (zerr == Z_OK)
        return RT_OK;
    if (zerr == Z_ERRNO)
        return RT_ERROR(RT_ERR_IO, "reading %s file '%s' failed: %s", f->role, f->path,
                        strerror(errno));
    const char *colon = strstr(msg, ": ");   /* drop zlib's "<fd:N>: " prefix */
    msg = colon ? colon + 2 : msg;
    if (zerr == Z_BUF_ERROR)
        return RT_ERROR(RT_ERR_FORMAT, "%s file '%s' is truncated: %s%s%sthe gzip stream ends "
                        "early (after %zu bytes of content); download the file again", f->role,
                        f->path, f->promise[0] ? "header promises " : "", f->promise,
                        f->promise[0] ? ", " : "", f->got);
    return RT_ERROR(RT_ERR_FORMAT, "%s file '%s' is corrupt: zlib reports '%s' after %zu "
                    "bytes of content; download the file again", f->role, f->path, msg, f->got);
}

/* Reads up to n bytes; *got is how many arrived before end of file. */
static rt_status idx_read(idx_file *f, uint8_t *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t want = n - *got;
        unsigned chunk = want > (1u << 30) ? (1u << 30) : (unsigned)want;
        int r = gzread(f->gz, buf + *got, chunk);
        if (r <= 0)
            break;
        *got += (size_t)r;
        f->got += (size_t)r;
    }
    RT_CHECK(idx_check_stream(f));
    return RT_OK;
}

/* Reads the `bytes` payload the header promised (f->promise describes it
 * for messages) into a buffer that grows as data arrives, then insists the
 * file ends there. */
static rt_status idx_read_payload(idx_file *f, uint64_t bytes, uint8_t **out)
{
    *out = NULL;
    if (bytes > SIZE_MAX)
        return RT_ERROR(RT_ERR_FORMAT, "%s file '%s': header promises %s, more than this "
                        "machine can address", f->role, f->path, f->promise);
    uint8_t *buf = NULL;
    size_t cap = 0, got = 0;
    rt_status s = RT_OK;
    while (got < bytes) {
        if (got == cap) {
            size_t ncap = cap ? (cap > bytes / 2 ? (size_t)bytes : 2 * cap)
                              : (bytes < IDX_FIRST_CHUNK ? (size_t)bytes : IDX_FIRST_CHUNK);
            uint8_t *nb = realloc(buf, ncap);   /* not rt_alloc: this buffer grows */
            if (!nb) {
                s = RT_ERROR(RT_ERR_NOMEM, "out of memory reading %s file '%s' (%.1f MiB)",
                             f->role, f->path, (double)ncap / (1 << 20));
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        size_t n;
        RT_CHECK_GOTO(s, idx_read(f, buf + got, cap - got, &n), fail);
        got += n;
        if (n == 0)
            break;
    }
    if (got < bytes) {
        s = RT_ERROR(RT_ERR_FORMAT, "%s file '%s' is truncated: header promises %s, file "
                     "holds only %zu; download the file again", f->role, f->path, f->promise, got);
        goto fail;
    }
    /* Anything after the payload means the header and the data disagree. */
    uint8_t extra[4096];
    size_t n, trailing = 0;
    do {
        RT_CHECK_GOTO(s, idx_read(f, extra, sizeof extra, &n), fail);
        trailing += n;
    } while (n == sizeof extra);
    if (trailing) {
        s = RT_ERROR(RT_ERR_FORMAT, "%s file '%s' has %zu trailing bytes after the %s its "
                     "header promises; the file is corrupt or its header is wrong",
                     f->role, f->path, trailing, f->promise);
        goto fail;
    }
    *out = buf;
    return RT_OK;
fail:
    free(buf);
    return s;
}

/* Reads and checks the header: magic, then ndims big-endian dimensions. */
static rt_status idx_read_header(idx_file *f, uint32_t magic, int ndims, uint32_t *dims)
{
    uint8_t head[16];
    size_t want = 4 + 4 * (size_t)ndims, got;
    RT_CHECK(idx_read(f, head, want, &got));
    if (got < want)
        return RT_ERROR(RT_ERR_FORMAT, "%s file '%s' is truncated: only %zu of the %zu header "
                        "bytes", f->role, f->path, got, want);
    uint32_t m = be32(head);
    if (m != magic) {
        int swapped = m == (magic == IDX_MAGIC_IMAGES ? IDX_MAGIC_LABELS : IDX_MAGIC_IMAGES);
        return RT_ERROR(RT_ERR_FORMAT, "%s file '%s' has magic 0x%08x, expected 0x%08x "
                        "(idx %s of unsigned bytes)%s", f->role, f->path, m, magic, f->role,
                        swapped ? "; are the images and labels paths swapped?" : "");
    }
    for (int i = 0; i < ndims; i++)
        dims[i] = be32(head + 4 + 4 * i);
    if (dims[0] == 0 || dims[0] > IDX_MAX_COUNT)
        return RT_ERROR(RT_ERR_FORMAT, "%s file '%s' declares %u samples; expected 1 to %u",
                        f->role, f->path, dims[0], IDX_MAX_COUNT);
    for (int i = 1; i < ndims; i++)
        if (dims[i] == 0 || dims[i] > IDX_MAX_SIDE)
            return RT_ERROR(RT_ERR_FORMAT, "%s file '%s' declares images of %ux%u; rows and "
                            "cols must be 1 to %u", f->role, f->path, dims[1], dims[2],
                            IDX_MAX_SIDE);
    return RT_OK;
}

/* Opens one idx file, reads the header into dims and the payload into *out. */
static rt_status idx_load(const char *path, const char *role, uint32_t magic, int ndims,
                          uint32_t *dims, uint8_t **out)
{
    idx_file f = {.path = path, .role = role};
    RT_CHECK(idx_file_open(&f));
    rt_status s;
    RT_CHECK_GOTO(s, idx_read_header(&f, magic, ndims, dims), done);
    uint64_t bytes = dims[0];
    if (ndims == 3) {
        bytes *= (uint64_t)dims[1] * dims[2];
        snprintf(f.promise, sizeof f.promise, "%u images of %ux%u (%llu bytes)", dims[0], dims[1],
                 dims[2], (unsigned long long)bytes);
    } else {
        snprintf(f.promise, sizeof f.promise, "%u labels (%llu bytes)", dims[0],
                 (unsigned long long)bytes);
    }
    RT_CHECK_GOTO(s, idx_read_payload(&f, bytes, out), done);
done:
    gzclose(f.gz);
    return s;
}

/* idx_load through the shared decoded files. */
static rt_status idx_load_shared(const char *path, const char *role, uint32_t magic, int ndims,
                                 uint32_t *dims, uint8_t **out)
{
    struct stat st;
    uint32_t all[3] = {0, 0, 0};
    int known = stat(path, &st) == 0;   /* else idx_load names the problem */
    if (known && (*out = cache_take(&st, magic, all)) != NULL) {
        memcpy(dims, all, (size_t)ndims * sizeof *dims);
        return RT_OK;
    }
    RT_CHECK(idx_load(path, role, magic, ndims, all, out));
    memcpy(dims, all, (size_t)ndims * sizeof *dims);
    if (known)
        cache_put(&st, magic, all, *out);
    return RT_OK;
}

RT_CPU_CLONES
static rt_status idx_fetch(void *impl, int64_t index, float *x, void *target)
{
    const idx_data *d = impl;
    const uint8_t *p = d->pixels + (size_t)index * d->sample_size;
    for (size_t i = 0; i < d->sample_size; i++)
        x[i] = (float)p[i];
    *(int32_t *)target = d->labels ? d->labels[index] : 0;   /* no_target: class 0 */
    return RT_OK;
}

static const void *idx_row(void *impl, int64_t index, size_t *bytes)
{
    const idx_data *d = impl;
    *bytes = d->sample_size;
    return d->pixels + (size_t)index * d->sample_size;
}

static void idx_destroy(void *impl)
{
    idx_data *d = impl;
    if (!d)
        return;
    cache_release(d->pixels);
    cache_release(d->labels);
    rt_free(d);
}

/* Read-only after open: fetch is safe on the loader's thread. */
static const rt_dataset_ops idx_ops = {
    .version = RT_DATASET_OPS_VERSION, .flags = RT_DATASET_THREAD_SAFE,
    .fetch = idx_fetch, .destroy = idx_destroy,
};

rt_status rt_idx_open(rt_dataset **out, const rt_data_source *src)
{
    *out = NULL;
    const char *images_path = src ? src->x : NULL, *labels_path = src ? src->y : NULL;
    if (!images_path || (!labels_path && !src->no_target))
        return RT_ERROR(RT_ERR_CONFIG, "the idx format needs an images file and a labels file "
                        "(data.train_images, data.train_labels, data.test_images, "
                        "data.test_labels)");
    idx_data *d;
    RT_CHECK(rt_alloc(&d, 1, sizeof *d, "idx dataset"));
    rt_status s;
    uint32_t idims[3], ldims[1];
    RT_CHECK_GOTO(s, idx_load_shared(images_path, "images", IDX_MAGIC_IMAGES, 3, idims,
                                     &d->pixels), fail);
    ldims[0] = idims[0];
    if (!src->no_target)
        RT_CHECK_GOTO(s, idx_load_shared(labels_path, "labels", IDX_MAGIC_LABELS, 1, ldims,
                                         &d->labels), fail);
    if (idims[0] != ldims[0]) {
        s = RT_ERROR(RT_ERR_FORMAT, "images file '%s' holds %u images but labels file '%s' "
                     "holds %u labels; they must come from the same split", images_path,
                     idims[0], labels_path, ldims[0]);
        goto fail;
    }
    /* Labels are bytes, so at most 256 classes; count those present. */
    int max_label = 0;
    for (uint32_t i = 0; d->labels && i < ldims[0]; i++)
        max_label = d->labels[i] > max_label ? d->labels[i] : max_label;
    d->sample_size = (size_t)idims[1] * idims[2];
    rt_sample_desc desc = {.ndim = 3, .shape = {1, idims[1], idims[2]}, .dtype = RT_INPUT_U8,
                           .target = RT_TARGET_CLASS, .num_classes = max_label + 1};
    RT_CHECK_GOTO(s, rt_dataset_create(out, &idx_ops, d, idims[0], &desc), fail);
    rt_dataset_set_row_fn(*out, idx_row);
    return RT_OK;
fail:
    idx_destroy(d);
    return s;
}
