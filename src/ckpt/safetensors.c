/* safetensors files in and out (rtrain/ckpt.h: rt_safetensors_*).
 *
 * Layout (the format of Hugging Face's safetensors library):
 *   uint64 N, little-endian: the size of the header;
 *   N bytes: the header, a UTF-8 JSON object, padded at its end with
 *     spaces; rtrain pads it so that the data starts at a multiple of 8
 *     bytes, as the reference writer does;
 *   the data: the tensors' bytes, row-major, little-endian.
 * The header maps each tensor's name to {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]} (byte offsets into the data) and may hold
 * "__metadata__": an object of string values only.
 *
 * A file is untrusted input: the header's size is checked against the
 * file's (and the reference's 100 MB cap) before it is read, every
 * tensor's offsets against the data's size, its byte count against its
 * shape's product (computed without overflow) times its dtype's size, and
 * duplicate names are refused; nothing is allocated from a size the file
 * states before that size was bounded by the file's own. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

#define MAX_HEADER 100000000u   /* the reference implementation's cap */

/* ---- dtypes: size and conversion to float32 -------------------------------------------- */

static float from_f16(uint16_t h)
{
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float v = exp == 0 ? ldexpf((float)mant, -24)
              : exp == 31 ? (mant ? NAN : INFINITY)
                          : ldexpf((float)(mant | 0x400), exp - 25);
    return (h & 0x8000) ? -v : v;
}

/* Each converter reads one little-endian element at p. */
static uint64_t le_bits(const unsigned char *p, int bytes)
{
    uint64_t u = 0;
    for (int i = 0; i < bytes; i++)
        u |= (uint64_t)p[i] << (8 * i);
    return u;
}

static float bits_f32(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static float cv_f32(const unsigned char *p) { return bits_f32((uint32_t)le_bits(p, 4)); }
static float cv_f64(const unsigned char *p)
{
    uint64_t u = le_bits(p, 8);
    double d;
    memcpy(&d, &u, 8);
    return (float)d;
}
static float cv_f16(const unsigned char *p) { return from_f16((uint16_t)le_bits(p, 2)); }
static float cv_bf16(const unsigned char *p) { return bits_f32((uint32_t)le_bits(p, 2) << 16); }
static float cv_i64(const unsigned char *p) { return (float)(int64_t)le_bits(p, 8); }
static float cv_i32(const unsigned char *p) { return (float)(int32_t)(uint32_t)le_bits(p, 4); }
static float cv_i16(const unsigned char *p) { return (float)(int16_t)(uint16_t)le_bits(p, 2); }
static float cv_i8(const unsigned char *p) { return (float)(int8_t)p[0]; }
static float cv_u8(const unsigned char *p) { return (float)p[0]; }

/* The dtypes rtrain reads: bytes per element and the conversion. */
typedef struct dtype_kind {
    const char *name;
    int size;
    float (*convert)(const unsigned char *p);
} dtype_kind;
static const dtype_kind dtypes[] = {
    {"F32", 4, cv_f32}, {"F64", 8, cv_f64}, {"F16", 2, cv_f16}, {"BF16", 2, cv_bf16},
    {"I64", 8, cv_i64}, {"I32", 4, cv_i32}, {"I16", 2, cv_i16}, {"I8", 1, cv_i8},
    {"U8", 1, cv_u8}, {"BOOL", 1, cv_u8},
};

static const dtype_kind *dtype_find(const char *name)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dtypes[i].name, name))
            return &dtypes[i];
    return NULL;
}

/* ---- reading --------------------------------------------------------------------------------- */

struct rt_safetensors {
    char path[RT_CKPT_PATH_MAX];
    int fd;
    uint64_t data_start, data_size;
    json_t *header;                /* owns the names and metadata strings */
    int count;
    rt_safetensors_tensor *tensors;
    uint64_t *begin;               /* byte offset of each tensor in the data */
};

static rt_status bad(const rt_safetensors *f, const char *name, const char *what)
{
    if (name)
        return RT_ERROR(RT_ERR_FORMAT, "%s is not a valid safetensors file: tensor \"%s\" %s",
                        f->path, name, what);
    return RT_ERROR(RT_ERR_FORMAT, "%s is not a valid safetensors file: %s", f->path, what);
}

static rt_status read_at(const rt_safetensors *f, void *buf, uint64_t size, uint64_t offset)
{
    char *p = buf;
    while (size > 0) {
        ssize_t n = pread(f->fd, p, size, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? RT_ERROR(RT_ERR_FORMAT, "%s ends early: the file is truncated",
                                     f->path)
                          : RT_ERROR(RT_ERR_IO, "cannot read %s: %s", f->path, strerror(errno));
        p += n;
        size -= (uint64_t)n;
        offset += (uint64_t)n;
    }
    return RT_OK;
}

static rt_status parse_metadata(const rt_safetensors *f, json_t *meta)
{
    if (!json_is_object(meta))
        return bad(f, NULL, "__metadata__ is not an object");
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v)
        if (!json_is_string(v))
            return bad(f, NULL, "__metadata__ holds a value that is not a string");
    return RT_OK;
}

/* One tensor's entry: dtype, shape, offsets, all bounded. */
static rt_status parse_entry(rt_safetensors *f, const char *name, json_t *e, int i)
{
    rt_safetensors_tensor *t = &f->tensors[i];
    t->name = name;
    json_t *dtype = json_object_get(e, "dtype"), *shape = json_object_get(e, "shape");
    json_t *offsets = json_object_get(e, "data_offsets");
    if (!json_is_object(e) || !json_is_string(dtype) || !json_is_array(shape) ||
        !json_is_array(offsets) || json_array_size(offsets) != 2)
        return bad(f, name, "needs \"dtype\" (a string), \"shape\" (a list) and "
                   "\"data_offsets\" ([begin, end])");
    t->dtype = json_string_value(dtype);
    const dtype_kind *kind = dtype_find(t->dtype);
    if (!kind)
        return RT_ERROR(RT_ERR_FORMAT, "%s: tensor \"%s\" has dtype %s, which rtrain does not "
                        "read (F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL)", f->path, name,
                        t->dtype);
    if (json_array_size(shape) > RT_CKPT_MAX_NDIM)
        return bad(f, name, "has more dimensions than rtrain reads (8)");
    t->ndim = (int)json_array_size(shape);
    uint64_t count = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *dim = json_array_get(shape, (size_t)d);
        if (!json_is_integer(dim) || json_integer_value(dim) < 0)
            return bad(f, name, "has a shape entry that is not a non-negative integer");
        uint64_t n = (uint64_t)json_integer_value(dim);
        if (n != 0 && count > f->data_size / n)
            return bad(f, name, "has a shape larger than the file's data");
        count *= n;
        t->shape[d] = (int64_t)n;
    }
    t->count = count;
    json_t *b = json_array_get(offsets, 0), *end = json_array_get(offsets, 1);
    if (!json_is_integer(b) || !json_is_integer(end) || json_integer_value(b) < 0 ||
        json_integer_value(end) < json_integer_value(b) ||
        (uint64_t)json_integer_value(end) > f->data_size)
        return bad(f, name, "has data_offsets outside the file's data");
    if ((uint64_t)(json_integer_value(end) - json_integer_value(b)) !=
        count * (uint64_t)kind->size)
        return bad(f, name, "has data_offsets whose size does not match its shape and dtype");
    f->begin[i] = (uint64_t)json_integer_value(b);
    return RT_OK;
}

static rt_status parse_header(rt_safetensors *f, const char *text, size_t len)
{
    json_error_t err;
    f->header = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!f->header)
        return RT_ERROR(RT_ERR_FORMAT, "%s is not a valid safetensors file: its header is not "
                        "JSON (%s, at byte %d)", f->path, err.text, err.position + 8);
    if (!json_is_object(f->header))
        return bad(f, NULL, "its header is not a JSON object");
    size_t n = json_object_size(f->header);
    RT_CHECK(rt_alloc(&f->tensors, n ? n : 1, sizeof *f->tensors, "safetensors entries"));
    RT_CHECK(rt_alloc(&f->begin, n ? n : 1, sizeof *f->begin, "safetensors offsets"));
    const char *key;
    json_t *v;
    json_object_foreach(f->header, key, v) {
        if (!strcmp(key, "__metadata__"))
            RT_CHECK(parse_metadata(f, v));
        else
            RT_CHECK(parse_entry(f, key, v, f->count++));
    }
    return RT_OK;
}

static rt_status open_file(rt_safetensors *f, const char *path)
{
    RT_CHECK(rt_fs_path(f->path, sizeof f->path, "%s", path));
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        return RT_ERROR(errno == ENOENT ? RT_ERR_CONFIG : RT_ERR_IO, "cannot open %s: %s",
                        path, strerror(errno));
    struct stat sb;
    if (fstat(f->fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        return RT_ERROR(RT_ERR_FORMAT, "%s is not a regular file", path);
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char le[8];
    if (size < 8)
        return bad(f, NULL, "it is shorter than the 8 bytes of the header size");
    RT_CHECK(read_at(f, le, 8, 0));
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)le[i] << (8 * i);
    if (n < 2 || n > MAX_HEADER || n > size - 8)
        return RT_ERROR(RT_ERR_FORMAT, "%s is not a valid safetensors file: it gives a header "
                        "of %llu bytes, the file has %llu after the size (and the format "
                        "allows 2 to %u)", path, (unsigned long long)n,
                        (unsigned long long)(size - 8), MAX_HEADER);
    f->data_start = 8 + n;
    f->data_size = size - 8 - n;
    char *text = NULL;
    RT_CHECK(rt_alloc(&text, (size_t)n, 1, "safetensors header"));
    rt_status st = read_at(f, text, n, 8);
    if (st == RT_OK)
        st = parse_header(f, text, (size_t)n);
    rt_free(text);
    return st;
}

rt_status rt_safetensors_open(rt_safetensors **out, const char *path)
{
    *out = NULL;
    rt_safetensors *f = NULL;
    RT_CHECK(rt_alloc(&f, 1, sizeof *f, "safetensors file"));
    f->fd = -1;
    rt_status st = open_file(f, path);
    if (st != RT_OK) {
        rt_safetensors_close(f);
        return st;
    }
    *out = f;
    return RT_OK;
}

void rt_safetensors_close(rt_safetensors *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    json_decref(f->header);
    rt_free(f->tensors);
    rt_free(f->begin);
    rt_free(f);
}

int rt_safetensors_count(const rt_safetensors *f) { return f->count; }

const rt_safetensors_tensor *rt_safetensors_get(const rt_safetensors *f, int i)
{
    return i >= 0 && i < f->count ? &f->tensors[i] : NULL;
}

int rt_safetensors_find(const rt_safetensors *f, const char *name)
{
    for (int i = 0; i < f->count; i++)
        if (!strcmp(f->tensors[i].name, name))
            return i;
    return -1;
}

const char *rt_safetensors_metadata(const rt_safetensors *f, const char *key)
{
    return json_string_value(json_object_get(json_object_get(f->header, "__metadata__"), key));
}

rt_status rt_safetensors_read(rt_safetensors *f, int i, float *out)
{
    const rt_safetensors_tensor *t = rt_safetensors_get(f, i);
    if (!t)
        return RT_ERROR(RT_ERR_INVALID_ARG, "%s has no tensor %d", f->path, i);
    const dtype_kind *kind = dtype_find(t->dtype);   /* known: checked at open */
    size_t size = (size_t)kind->size;
    uint64_t at = f->data_start + f->begin[i];
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (!strcmp(t->dtype, "F32"))   /* the host's own layout */
        return read_at(f, out, t->count * 4, at);
#endif
    unsigned char chunk[4096];
    uint64_t per = 4096 / size;
    for (uint64_t k = 0; k < t->count; k += per) {
        uint64_t m = t->count - k < per ? t->count - k : per;
        RT_CHECK(read_at(f, chunk, m * size, at + k * size));
        for (uint64_t j = 0; j < m; j++)
            out[k + j] = kind->convert(chunk + j * size);
    }
    return RT_OK;
}

/* ---- writing --------------------------------------------------------------------------------- */

/* The header for tensors t[0..n) stored back to back as F32 in that order,
 * with metadata, padded with spaces to a multiple of 8 bytes. */
static rt_status make_header(char **out, size_t *len, const rt_safetensors_entry *t, int n,
                             const char *const *meta_keys, const char *const *meta_values,
                             int nmeta)
{
    json_t *root = json_object(), *meta = json_object();
    int failed = !root || !meta;
    for (int i = 0; !failed && i < nmeta; i++)
        failed = json_object_set_new(meta, meta_keys[i], json_string(meta_values[i])) != 0;
    if (!failed && nmeta > 0)
        failed = json_object_set(root, "__metadata__", meta) != 0;
    uint64_t offset = 0;
    for (int i = 0; !failed && i < n; i++) {
        json_t *shape = json_array(), *e = json_object();
        uint64_t count = 1;
        for (int d = 0; d < t[i].ndim; d++) {
            json_array_append_new(shape, json_integer(t[i].shape[d]));
            count *= (uint64_t)t[i].shape[d];
        }
        json_object_set_new(e, "dtype", json_string("F32"));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets",
                            json_pack("[I, I]", (json_int_t)offset,
                                      (json_int_t)(offset + 4 * count)));
        offset += 4 * count;
        failed = json_object_set_new(root, t[i].name, e) != 0;
    }
    char *text = failed ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    json_decref(meta);
    if (!text)
        return RT_ERROR(RT_ERR_INVALID_ARG, "cannot make a safetensors header (a name or "
                        "metadata text that is not UTF-8, a name given twice, or no memory)");
    size_t n0 = strlen(text), padded = (n0 + 7) / 8 * 8;
    char *p = realloc(text, padded + 1);
    if (!p) {
        free(text);
        return RT_ERROR(RT_ERR_NOMEM, "out of memory for a safetensors header");
    }
    memset(p + n0, ' ', padded - n0);
    p[padded] = '\0';
    *out = p;
    *len = padded;
    return RT_OK;
}

typedef struct write_job {
    const rt_safetensors_entry *t;
    int n;
    rt_safetensors_fill fill;
    void *arg;
    const char *header;
    size_t header_len;
} write_job;

static rt_status write_body(void *arg, int fd, const char *tmp)
{
    write_job *j = arg;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)j->header_len >> (8 * i));
    RT_CHECK(rt_fs_write_all(fd, le, 8, tmp));
    RT_CHECK(rt_fs_write_all(fd, j->header, j->header_len, tmp));
    for (int i = 0; i < j->n; i++) {
        uint64_t count = 1;
        for (int d = 0; d < j->t[i].ndim; d++)
            count *= (uint64_t)j->t[i].shape[d];
        float *data = NULL;
        RT_CHECK(rt_alloc(&data, count ? (size_t)count : 1, sizeof *data, j->t[i].name));
        rt_status st = j->fill(j->arg, i, data);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
        for (uint64_t k = 0; st == RT_OK && k < count; k++) {   /* little-endian bytes */
            uint32_t bits;
            memcpy(&bits, &data[k], 4);
            bits = __builtin_bswap32(bits);
            memcpy(&data[k], &bits, 4);
        }
#endif
        if (st == RT_OK)
            st = rt_fs_write_all(fd, data, (size_t)count * 4, tmp);
        rt_free(data);
        RT_CHECK(st);
    }
    return RT_OK;
}

rt_status rt_safetensors_write(const char *path, int mode, const rt_safetensors_entry *t, int n,
                               rt_safetensors_fill fill, void *arg,
                               const char *const *meta_keys, const char *const *meta_values,
                               int nmeta)
{
    for (int i = 0; i < n; i++) {
        if (t[i].ndim < 0 || t[i].ndim > RT_CKPT_MAX_NDIM || !strcmp(t[i].name, "__metadata__"))
            return RT_ERROR(RT_ERR_INVALID_ARG, "safetensors: tensor \"%s\" cannot be stored "
                            "(0 to 8 dimensions; the name __metadata__ is reserved)", t[i].name);
        for (int d = 0; d < t[i].ndim; d++)
            if (t[i].shape[d] < 0)
                return RT_ERROR(RT_ERR_INVALID_ARG, "safetensors: tensor \"%s\" has a "
                                "negative dimension", t[i].name);
    }
    write_job j = {t, n, fill, arg, NULL, 0};
    char *header = NULL;
    RT_CHECK(make_header(&header, &j.header_len, t, n, meta_keys, meta_values, nmeta));
    j.header = header;
    rt_status st = rt_fs_replace(path, mode, write_body, &j);
    free(header);
    return st;
}
