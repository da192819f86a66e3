/* rtrain-data: converts training data to the HDF5 files rtrain reads, and
 * inspects and checks such files.
 *
 *   rtrain-data convert INPUT OUTPUT.h5 [options]   idx, csv or npy -> HDF5
 *   rtrain-data info FILE.h5                        every dataset: shape, type,
 *                                                   chunks, filters, statistics
 *   rtrain-data verify FILE.h5 [--x P] [--y P] [--num-classes K]
 *
 * convert writes the inputs to /x and the targets to /y (other paths with
 * --x/--y), chunked along the sample dimension and compressed (shuffle +
 * gzip 4) by default. The file is written under a temporary name next to
 * OUTPUT and renamed over it only when complete (rt_fs_replace), so a failed
 * or interrupted conversion never leaves a half-written OUTPUT. idx and csv
 * are read through the library's dataset formats, the readers training
 * uses, so the file holds what training would have read; .npy files are
 * read here and keep their element type. info and verify read datasets in
 * blocks of rows, so files larger than memory are fine.
 *
 * One process, no mpirun: MPI is never initialised and HDF5 files are
 * opened with the default (POSIX) driver. HDF5's own error printing is off;
 * each failure becomes one message naming the file and the dataset.
 * Exit codes: 0 ok, 1 verify found problems, 2 usage or input error. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <hdf5.h>
#include "rtrain/data.h"
/* h5_fail (a message with HDF5's innermost reason), h5_quiet,
 * ckpt_format_shape and rt_fs_replace: shared with the checkpoint layer. */
#include "ckpt/h5internal.h"

enum { EXIT_OK = 0, EXIT_PROBLEMS = 1, EXIT_ERROR = 2 };

#define CHUNK_BYTES ((size_t)1 << 20)   /* default chunk: about 1 MiB of whole samples */
#define COPY_BYTES ((size_t)4 << 20)    /* convert: samples per write, in bytes */
#define SCAN_VALUES ((size_t)1 << 20)   /* info, verify: values per read (8 MiB of doubles) */
#define SCAN_MAX_ROWS 65536
#define MAX_SHOWN_FEATURES 20
#define MAX_CLASSES 50
#define MAX_SHOWN_PROBLEMS 5
#define NPY_MAX_HEADER (1 << 20)
#define ENCODING_ATTR "rtrain_encoding"

#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t link_info;   /* what H5Lvisit passes since 1.12 */
#else
typedef H5L_info_t link_info;
#endif

static int fail(void)
{
    fprintf(stderr, "rtrain-data: %s\n", rt_error_message());
    rt_error_clear();
    return EXIT_ERROR;
}

/* "[10000,1,28,28]" */
static void format_dims(char *buf, size_t size, int ndim, const hsize_t *dims)
{
    int64_t shape[H5S_MAX_RANK];
    for (int i = 0; i < ndim; i++)
        shape[i] = (int64_t)dims[i];
    ckpt_format_shape(buf, size, ndim, shape);
}

/* "uint8", "int32", "float32", ... */
static void type_name(hid_t type, char *buf, size_t size)
{
    H5T_class_t cls = H5Tget_class(type);
    size_t bits = 8 * H5Tget_size(type);
    if (cls == H5T_INTEGER)
        snprintf(buf, size, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
    else if (cls == H5T_FLOAT)
        snprintf(buf, size, "float%zu", bits);
    else if (cls == H5T_STRING)
        snprintf(buf, size, "string");
    else
        snprintf(buf, size, "non-numeric (HDF5 type class %d)", (int)cls);
}

/* ---- options ------------------------------------------------------------------- */

typedef struct cmd_opts {
    const char *args[2];      /* positional: INPUT OUTPUT.h5, or FILE.h5 */
    int nargs;
    const char *format, *labels, *x, *y, *target, *features, *categorical;
    int64_t chunk_rows;       /* 0: about CHUNK_BYTES per chunk */
    int64_t level;            /* gzip level; 0: not compressed (nor chunked) */
    int64_t num_classes;      /* verify; 0: not given */
    int force, classify;
} cmd_opts;

typedef enum opt_kind { OPT_TEXT, OPT_FLAG, OPT_INT } opt_kind;

/* One --option of a command: where its value goes, and a number's range. */
typedef struct opt_spec {
    const char *name;
    opt_kind kind;
    size_t offset;
    int64_t min, max;
} opt_spec;

#define SPEC_TEXT(n, f) {n, OPT_TEXT, offsetof(cmd_opts, f), 0, 0}
#define SPEC_FLAG(n, f) {n, OPT_FLAG, offsetof(cmd_opts, f), 0, 0}
#define SPEC_INT(n, f, lo, hi) {n, OPT_INT, offsetof(cmd_opts, f), lo, hi}

static const opt_spec convert_specs[] = {
    SPEC_TEXT("--format", format), SPEC_TEXT("--labels", labels), SPEC_TEXT("--x", x),
    SPEC_TEXT("--y", y), SPEC_INT("--chunk-rows", chunk_rows, 1, INT32_MAX),
    SPEC_INT("--compress", level, 0, 9), SPEC_TEXT("--target", target),
    SPEC_TEXT("--features", features), SPEC_TEXT("--categorical", categorical),
    SPEC_FLAG("--classify", classify), SPEC_FLAG("--force", force), {0},
};
static const opt_spec info_specs[] = {{0}};
static const opt_spec verify_specs[] = {
    SPEC_TEXT("--x", x), SPEC_TEXT("--y", y),
    SPEC_INT("--num-classes", num_classes, 1, INT32_MAX), {0},
};

static rt_status parse_int(const opt_spec *s, const char *text, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < s->min || v > s->max)
        return RT_ERROR(RT_ERR_CONFIG, "%s %s: expected a whole number from %lld to %lld",
                        s->name, text, (long long)s->min, (long long)s->max);
    *out = v;
    return RT_OK;
}

/* One option, "--name VALUE" or "--name=VALUE"; *used: arguments it took. */
static rt_status parse_opt(const char *cmd, const opt_spec *specs, char **argv, int left,
                           cmd_opts *o, int *used)
{
    const char *arg = argv[0], *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const opt_spec *s = specs;
    while (s->name && !(strlen(s->name) == len && strncmp(s->name, arg, len) == 0))
        s++;
    if (!s->name)
        return RT_ERROR(RT_ERR_CONFIG, "%s has no option %.*s (see rtrain-data --help)", cmd,
                        (int)len, arg);
    char *field = (char *)o + s->offset;
    *used = 1;
    if (s->kind == OPT_FLAG) {
        if (eq)
            return RT_ERROR(RT_ERR_CONFIG, "%s takes no value", s->name);
        *(int *)field = 1;
        return RT_OK;
    }
    const char *value = eq ? eq + 1 : NULL;
    if (!value) {
        if (left < 2)
            return RT_ERROR(RT_ERR_CONFIG, "%s needs a value", s->name);
        value = argv[1];
        *used = 2;
    }
    if (s->kind == OPT_TEXT) {
        *(const char **)field = value;
        return RT_OK;
    }
    return parse_int(s, value, (int64_t *)field);
}

/* The options and exactly `want` positional arguments of a command
 * (argv[0] is its name); "--" ends the options. */
static rt_status parse_args(int argc, char **argv, const opt_spec *specs, int want,
                            cmd_opts *o)
{
    int options = 1;
    for (int i = 1; i < argc;) {
        if (options && strcmp(argv[i], "--") == 0) {
            options = 0;
            i++;
        } else if (options && strncmp(argv[i], "--", 2) == 0) {
            int used = 0;
            RT_CHECK(parse_opt(argv[0], specs, argv + i, argc - i, o, &used));
            i += used;
        } else if (o->nargs == want) {
            return RT_ERROR(RT_ERR_CONFIG, "%s: unexpected argument '%s' (see rtrain-data "
                            "--help)", argv[0], argv[i]);
        } else {
            o->args[o->nargs++] = argv[i++];
        }
    }
    if (o->nargs < want)
        return RT_ERROR(RT_ERR_CONFIG, "%s needs %s (see rtrain-data --help)", argv[0],
                        want == 2 ? "INPUT and OUTPUT.h5" : "FILE.h5");
    return RT_OK;
}

/* A comma-separated list of column names (--features a,b,c). */
typedef struct name_list { char *text; const char **names; int count; } name_list;

static rt_status name_list_parse(name_list *l, const char *opt, const char *text)
{
    if (!text)
        return RT_OK;
    size_t len = strlen(text), count = 1;
    for (const char *p = text; *p; p++)
        count += *p == ',';
    RT_CHECK(rt_alloc(&l->text, len + 1, 1, opt));
    RT_CHECK(rt_alloc(&l->names, count, sizeof *l->names, opt));
    memcpy(l->text, text, len + 1);
    for (char *p = l->text, *next; p; p = next) {
        next = strchr(p, ',');
        if (next)
            *next++ = '\0';
        if (!*p)
            return RT_ERROR(RT_ERR_CONFIG, "%s %s: an empty column name", opt, text);
        l->names[l->count++] = p;
    }
    return RT_OK;
}

static void name_list_free(name_list *l)
{
    rt_free(l->text);
    rt_free(l->names);
}

/* ---- rows of a dataset ---------------------------------------------------------- */

/* The shape of dset in dims; its rank, or -1. */
static int dataset_dims(hid_t dset, hsize_t *dims)
{
    hid_t space = H5Dget_space(dset);
    int ndim = space < 0 ? -1 : H5Sget_simple_extent_dims(space, dims, NULL);
    if (space >= 0)
        H5Sclose(space);
    return ndim;
}

/* Rows [row0, row0 + rows) of dset in *fspace and a memory space of their
 * shape (a scalar dataset: the whole of it). */
static herr_t select_rows(hid_t dset, hsize_t row0, hsize_t rows, hid_t *fspace, hid_t *mspace)
{
    hsize_t start[H5S_MAX_RANK] = {0}, count[H5S_MAX_RANK];
    *mspace = -1;
    *fspace = H5Dget_space(dset);
    int ndim = *fspace < 0 ? -1 : H5Sget_simple_extent_dims(*fspace, count, NULL);
    if (ndim <= 0) {
        *mspace = ndim == 0 ? H5Screate(H5S_SCALAR) : -1;
        return *mspace < 0 ? -1 : 0;
    }
    start[0] = row0;
    count[0] = rows;
    *mspace = H5Screate_simple(ndim, count, NULL);
    if (*mspace < 0)
        return -1;
    return H5Sselect_hyperslab(*fspace, H5S_SELECT_SET, start, NULL, count, NULL);
}

/* Reads (write = 0) or writes rows [row0, row0 + rows) of dset as mtype;
 * HDF5 converts between mtype and the stored type. */
static herr_t rows_io(hid_t dset, hid_t mtype, hsize_t row0, hsize_t rows, void *buf, int write)
{
    hid_t fspace, mspace;
    herr_t rc = select_rows(dset, row0, rows, &fspace, &mspace);
    if (rc >= 0)
        rc = write ? H5Dwrite(dset, mtype, mspace, fspace, H5P_DEFAULT, buf)
                   : H5Dread(dset, mtype, mspace, fspace, H5P_DEFAULT, buf);
    if (mspace >= 0)
        H5Sclose(mspace);
    if (fspace >= 0)
        H5Sclose(fspace);
    return rc;
}

/* ---- the output file ------------------------------------------------------------- */

/* The HDF5 file convert writes (at its temporary path) and its layout. */
typedef struct h5_out {
    const char *path;        /* OUTPUT, named in messages */
    hid_t fid, lcpl;         /* lcpl creates the groups of a path such as /train/x */
    int64_t chunk_rows;      /* 0: about CHUNK_BYTES */
    int level;               /* gzip level; 0 without chunk_rows: contiguous */
    char summary[1024];      /* what was written, for the closing line */
} h5_out;

/* Chunks hold whole samples: about CHUNK_BYTES of them unless the user
 * chose, no more than the dataset has (HDF5 refuses larger chunks for a
 * fixed-size dataset) and under HDF5's limit of 4 GiB per chunk. */
static rt_status chunk_rows(const h5_out *out, const char *name, hsize_t n, size_t row_bytes,
                            hsize_t *rows)
{
    hsize_t r = out->chunk_rows > 0 ? (hsize_t)out->chunk_rows : CHUNK_BYTES / row_bytes;
    r = r < 1 ? 1 : r > n ? n : r;
    if ((double)r * (double)row_bytes >= 4294967296.0)
        return RT_ERROR(RT_ERR_CONFIG, "%s: a chunk of %s of %llu samples of %zu bytes is over "
                        "HDF5's 4 GiB per chunk; lower --chunk-rows, or pass --compress 0 to "
                        "store it unchunked", out->path, name, (unsigned long long)r, row_bytes);
    *rows = r;
    return RT_OK;
}

static rt_status set_layout(const h5_out *out, const char *name, hid_t type, int ndim,
                            const hsize_t *dims, hid_t dcpl)
{
    if (out->level == 0 && out->chunk_rows == 0)
        return RT_OK;   /* neither compressed nor asked for chunks: contiguous */
    size_t row_bytes = H5Tget_size(type);
    hsize_t chunk[H5S_MAX_RANK];
    for (int i = 1; i < ndim; i++) {
        chunk[i] = dims[i];
        row_bytes *= (size_t)dims[i];
    }
    RT_CHECK(chunk_rows(out, name, dims[0], row_bytes, &chunk[0]));
    if (H5Pset_chunk(dcpl, ndim, chunk) < 0)
        return h5_fail(out->path, RT_ERR_IO, "cannot set the chunks of %s", name);
    /* Shuffle before gzip: grouping the bytes of the values by significance
     * gives gzip far longer repeats in numeric data. */
    if (out->level > 0 &&
        (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, (unsigned)out->level) < 0))
        return h5_fail(out->path, RT_ERR_IO, "cannot set the shuffle and gzip filters of %s",
                       name);
    return RT_OK;
}

static void summary_add(h5_out *out, const char *name, hid_t type, int ndim, const hsize_t *dims)
{
    char tname[64], shape[256];
    type_name(type, tname, sizeof tname);
    format_dims(shape, sizeof shape, ndim, dims);
    size_t used = strlen(out->summary);
    snprintf(out->summary + used, sizeof out->summary - used, "%s%s %s %s", used ? ", " : "",
             name, tname, shape);
}

/* Creates dataset `name` of `type` and shape dims (dims[0]: samples). */
static rt_status out_create(h5_out *out, const char *name, hid_t type, int ndim,
                            const hsize_t *dims, hid_t *dset)
{
    *dset = -1;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), space = H5Screate_simple(ndim, dims, NULL);
    rt_status st = dcpl < 0 || space < 0
                       ? h5_fail(out->path, RT_ERR_IO, "cannot describe dataset %s", name)
                       : set_layout(out, name, type, ndim, dims, dcpl);
    if (st == RT_OK) {
        *dset = H5Dcreate2(out->fid, name, type, space, out->lcpl, dcpl, H5P_DEFAULT);
        if (*dset < 0)
            st = h5_fail(out->path, RT_ERR_IO, "cannot create dataset %s", name);
    }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    if (st == RT_OK)
        summary_add(out, name, type, ndim, dims);
    return st;
}

static rt_status out_write(const h5_out *out, hid_t dset, const char *name, hid_t mtype,
                           hsize_t row0, hsize_t rows, const void *buf)
{
    if (rows_io(dset, mtype, row0, rows, (void *)buf, 1) < 0)
        return h5_fail(out->path, RT_ERR_IO, "cannot write samples %llu to %llu of %s",
                       (unsigned long long)row0, (unsigned long long)(row0 + rows - 1), name);
    return RT_OK;
}

/* The encoding a csv dataset learned (feature order, categories, class
 * names), kept with the data so that a reader knows what the columns of x
 * and the labels of y mean. A UTF-8 string, as h5py writes str. */
static rt_status out_encoding(h5_out *out, const char *json)
{
    if (!json)
        return RT_OK;
    hid_t t = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR), a = -1;
    herr_t rc = t < 0 || space < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 ||
                H5Tset_cset(t, H5T_CSET_UTF8) < 0 ? -1 : 0;
    if (rc >= 0)
        a = H5Acreate2(out->fid, ENCODING_ATTR, t, space, H5P_DEFAULT, H5P_DEFAULT);
    rc = a < 0 ? -1 : H5Awrite(a, t, &json);
    if (a >= 0)
        H5Aclose(a);
    if (space >= 0)
        H5Sclose(space);
    if (t >= 0)
        H5Tclose(t);
    return rc < 0 ? h5_fail(out->path, RT_ERR_IO, "cannot write attribute %s", ENCODING_ATTR)
                  : RT_OK;
}

/* ---- inputs -------------------------------------------------------------------- */

/* The element types read from .npy files: little-endian, as numpy writes
 * them here (h5internal.h refuses big-endian hosts), each kept as the
 * native HDF5 type of its size. */
typedef enum npy_kind { NPY_U8, NPY_I16, NPY_I32, NPY_I64, NPY_F32, NPY_F64 } npy_kind;

static const struct { const char *descr; npy_kind kind; size_t size; } npy_types[] = {
    {"|u1", NPY_U8, 1}, {"<u1", NPY_U8, 1}, {"<i2", NPY_I16, 2}, {"<i4", NPY_I32, 4},
    {"<i8", NPY_I64, 8}, {"<f4", NPY_F32, 4}, {"<f8", NPY_F64, 8},
};
#define NPY_NTYPES (sizeof npy_types / sizeof npy_types[0])

static hid_t npy_h5_type(npy_kind k)
{
    switch (k) {
    case NPY_U8: return H5T_NATIVE_UINT8;
    case NPY_I16: return H5T_NATIVE_INT16;
    case NPY_I32: return H5T_NATIVE_INT32;
    case NPY_I64: return H5T_NATIVE_INT64;
    case NPY_F32: return H5T_NATIVE_FLOAT;
    default: return H5T_NATIVE_DOUBLE;
    }
}

/* One .npy array: header read, file positioned at its data. */
typedef struct npy_file {
    const char *path;
    FILE *fp;
    npy_kind kind;
    char descr[16];
    int fortran;
    int ndim;
    hsize_t shape[H5S_MAX_RANK];
    uint64_t bytes;          /* of data, after the header */
} npy_file;

/* The input of one conversion, opened before anything is written. */
typedef struct convert_input {
    rt_dataset *ds;                   /* idx, csv */
    name_list features, categorical;  /* csv: kept as long as the dataset */
    npy_file x, y;                    /* npy */
} convert_input;

static void input_close(convert_input *in)
{
    rt_dataset_free(in->ds);
    name_list_free(&in->features);
    name_list_free(&in->categorical);
    if (in->x.fp)
        fclose(in->x.fp);
    if (in->y.fp)
        fclose(in->y.fp);
}

/* ---- idx and csv: through the library's dataset formats -------------------------- */

/* The formats' transform chain (ToTensor's /255 for 8-bit images) is for
 * training; the file keeps the values as they are stored. */
static rt_status raw_values(rt_dataset *ds)
{
    return rt_dataset_set_transforms(ds, &(rt_transform_chain){0});
}

static rt_status open_idx(const cmd_opts *o, convert_input *in)
{
    if (!o->labels)
        return RT_ERROR(RT_ERR_CONFIG, "idx input needs --labels LABELS, the labels idx file "
                        "of the same split as %s", o->args[0]);
    rt_data_source src = {.x = o->args[0], .y = o->labels};
    RT_CHECK(rt_dataset_open(&in->ds, "idx", &src, NULL));
    return raw_values(in->ds);
}

static rt_status open_csv(const cmd_opts *o, convert_input *in)
{
    RT_CHECK(name_list_parse(&in->features, "--features", o->features));
    RT_CHECK(name_list_parse(&in->categorical, "--categorical", o->categorical));
    rt_data_source src = {
        .file = o->args[0], .target_column = o->target,
        .features = in->features.names, .num_features = in->features.count,
        .categorical = in->categorical.names, .num_categorical = in->categorical.count,
        .target = o->classify ? RT_TARGET_CLASS : RT_TARGET_VECTOR,
    };
    RT_CHECK(rt_dataset_open(&in->ds, "csv", &src, NULL));
    return raw_values(in->ds);
}

/* 8- and 16-bit integer inputs stay integers (the float32 that fetch
 * writes holds them exactly); the rest is float32, what training uses. */
static hid_t input_type(rt_input_dtype t)
{
    return t == RT_INPUT_U8 ? H5T_NATIVE_UINT8 : t == RT_INPUT_I16 ? H5T_NATIVE_INT16
                                                                    : H5T_NATIVE_FLOAT;
}

/* Class indices and tokens are int32, vectors float32, as fetch writes them. */
static hid_t target_type(rt_target_kind k)
{
    return k == RT_TARGET_VECTOR ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT32;
}

static rt_status fetch_rows(rt_dataset *ds, hsize_t row0, hsize_t rows, float *x, char *y)
{
    const rt_sample_desc *d = rt_dataset_desc(ds);
    size_t in = rt_sample_input_size(d), tb = rt_sample_target_bytes(d);
    for (hsize_t i = 0; i < rows; i++)
        RT_CHECK(rt_dataset_fetch(ds, (int64_t)(row0 + i), x + i * in, y + i * tb));
    return RT_OK;
}

static rt_status write_dataset(const cmd_opts *o, convert_input *in, h5_out *out)
{
    const rt_sample_desc *d = rt_dataset_desc(in->ds);
    hsize_t n = (hsize_t)rt_dataset_count(in->ds), xdims[RT_SAMPLE_MAX_NDIM + 1] = {n};
    hsize_t ydims[2] = {n, (hsize_t)d->target_size};
    for (int i = 0; i < d->ndim; i++)
        xdims[i + 1] = (hsize_t)d->shape[i];
    int yndim = d->target == RT_TARGET_CLASS || d->target_size == 1 ? 1 : 2;
    size_t in_size = rt_sample_input_size(d), block = COPY_BYTES / (in_size * sizeof(float));
    block = block < 1 ? 1 : block > n ? n : block;
    hid_t x = -1, y = -1, ytype = target_type(d->target);
    float *xbuf = NULL;
    char *ybuf = NULL;
    rt_status st;
    RT_CHECK_GOTO(st, out_create(out, o->x, input_type(d->dtype), d->ndim + 1, xdims, &x), done);
    RT_CHECK_GOTO(st, out_create(out, o->y, ytype, yndim, ydims, &y), done);
    RT_CHECK_GOTO(st, rt_alloc(&xbuf, block * in_size, sizeof *xbuf, "input rows"), done);
    RT_CHECK_GOTO(st, rt_alloc(&ybuf, block, rt_sample_target_bytes(d), "target rows"), done);
    for (hsize_t r = 0; r < n; r += block) {
        hsize_t rows = n - r < block ? n - r : block;
        RT_CHECK_GOTO(st, fetch_rows(in->ds, r, rows, xbuf, ybuf), done);
        RT_CHECK_GOTO(st, out_write(out, x, o->x, H5T_NATIVE_FLOAT, r, rows, xbuf), done);
        RT_CHECK_GOTO(st, out_write(out, y, o->y, ytype, r, rows, ybuf), done);
    }
    st = out_encoding(out, rt_dataset_encoding(in->ds));
done:
    rt_free(xbuf);
    rt_free(ybuf);
    if (x >= 0)
        H5Dclose(x);
    if (y >= 0)
        H5Dclose(y);
    return st;
}

/* ---- npy --------------------------------------------------------------------------- */

static rt_status npy_bad(const npy_file *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static rt_status npy_bad(const npy_file *f, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return RT_ERROR(RT_ERR_FORMAT, "%s: not a .npy file rtrain-data can read: %s", f->path, what);
}

/* The header is a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }
 * read with a cursor over its (NUL-terminated) text. */
typedef struct npy_cursor { const char *p; } npy_cursor;

static int npy_take(npy_cursor *c, char ch)
{
    while (isspace((unsigned char)*c->p))
        c->p++;
    if (*c->p != ch)
        return 0;
    c->p++;
    return 1;
}

/* A quoted string without escapes (numpy writes none). */
static int npy_string(npy_cursor *c, char *buf, size_t size)
{
    if (!npy_take(c, '\'') && !npy_take(c, '"'))
        return 0;
    char quote = c->p[-1];
    const char *end = strchr(c->p, quote);
    if (!end || (size_t)(end - c->p) >= size)
        return 0;
    memcpy(buf, c->p, (size_t)(end - c->p));
    buf[end - c->p] = '\0';
    c->p = end + 1;
    return 1;
}

static int npy_word(npy_cursor *c, const char *word)
{
    while (isspace((unsigned char)*c->p))
        c->p++;
    size_t n = strlen(word);
    if (strncmp(c->p, word, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

/* (d0, d1, ...) with an optional trailing comma; () is a scalar. */
static rt_status npy_shape(npy_file *f, npy_cursor *c)
{
    if (!npy_take(c, '('))
        return npy_bad(f, "'shape' is not a tuple");
    f->ndim = 0;
    for (;;) {
        if (npy_take(c, ')'))
            return RT_OK;
        char *end = NULL;
        errno = 0;
        unsigned long long v = isdigit((unsigned char)*c->p) ? strtoull(c->p, &end, 10) : 0;
        if (!end || errno || v > INT64_MAX)
            return npy_bad(f, "'shape' holds something other than dimension sizes");
        if (f->ndim == H5S_MAX_RANK)
            return npy_bad(f, "'shape' has more than %d dimensions", H5S_MAX_RANK);
        f->shape[f->ndim++] = v;
        c->p = end;
        if (npy_take(c, ')'))
            return RT_OK;
        if (!npy_take(c, ','))
            return npy_bad(f, "'shape' is not a tuple of dimension sizes");
    }
}

/* The value of one of the three keys; `seen` gathers bits 1, 2, 4. */
static rt_status npy_value(npy_file *f, npy_cursor *c, const char *key, int *seen)
{
    if (strcmp(key, "descr") == 0) {
        if (!npy_string(c, f->descr, sizeof f->descr))
            return npy_bad(f, "'descr' is not a plain type such as '<f4' (arrays of records "
                           "are not supported)");
        *seen |= 1;
    } else if (strcmp(key, "fortran_order") == 0) {
        f->fortran = npy_word(c, "True");
        if (!f->fortran && !npy_word(c, "False"))
            return npy_bad(f, "'fortran_order' is neither True nor False");
        *seen |= 2;
    } else if (strcmp(key, "shape") == 0) {
        RT_CHECK(npy_shape(f, c));
        *seen |= 4;
    } else {
        return npy_bad(f, "unexpected key '%s' in the header", key);
    }
    return RT_OK;
}

static rt_status npy_parse(npy_file *f, const char *text)
{
    npy_cursor c = {text};
    int seen = 0;
    if (!npy_take(&c, '{'))
        return npy_bad(f, "the header is not a Python dict");
    /* Entries separated by commas, a trailing comma allowed. */
    int more = 1;
    while (!npy_take(&c, '}')) {
        char key[32];
        if (!more || !npy_string(&c, key, sizeof key) || !npy_take(&c, ':'))
            return npy_bad(f, "the header is not a dict of 'key': value");
        RT_CHECK(npy_value(f, &c, key, &seen));
        more = npy_take(&c, ',');
    }
    if (seen != 7)
        return npy_bad(f, "the header lacks 'descr', 'fortran_order' or 'shape'");
    return RT_OK;
}

/* Magic "\x93NUMPY", version 1.0 (2-byte header length) or 2.0 and 3.0
 * (4 bytes, little-endian), the header, then the data. */
static rt_status npy_read_header(npy_file *f, char **text)
{
    unsigned char pre[12];
    if (fread(pre, 1, 10, f->fp) != 10 || memcmp(pre, "\x93" "NUMPY", 6) != 0)
        return npy_bad(f, "it does not start with the .npy magic \\x93NUMPY");
    if (pre[6] < 1 || pre[6] > 3 || pre[7] != 0)
        return npy_bad(f, "format version %d.%d (1.0, 2.0 and 3.0 are read)", pre[6], pre[7]);
    size_t len = pre[8] | (size_t)pre[9] << 8;
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, f->fp) != 2)
            return npy_bad(f, "the header is cut short");
        len |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (len > NPY_MAX_HEADER)
        return npy_bad(f, "a header of %zu bytes (at most %d)", len, NPY_MAX_HEADER);
    RT_CHECK(rt_alloc(text, len + 1, 1, "npy header"));
    if (fread(*text, 1, len, f->fp) != len)
        return npy_bad(f, "the header is cut short (%zu bytes promised)", len);
    return RT_OK;
}

/* What the header describes against the types read and the file's size:
 * the data must be exactly shape * itemsize bytes. */
static rt_status npy_check(npy_file *f)
{
    size_t t = 0;
    while (t < NPY_NTYPES && strcmp(npy_types[t].descr, f->descr) != 0)
        t++;
    if (t == NPY_NTYPES)
        return RT_ERROR(RT_ERR_UNSUPPORTED, "%s: element type '%s' is not converted (|u1, <i2, "
                        "<i4, <i8, <f4 and <f8 are); save a.astype('float32') instead",
                        f->path, f->descr);
    if (f->fortran)
        return RT_ERROR(RT_ERR_UNSUPPORTED, "%s: the array is in Fortran (column-major) order; "
                        "save it in C order: numpy.save(path, numpy.ascontiguousarray(a))",
                        f->path);
    f->kind = npy_types[t].kind;
    char shape[256];
    format_dims(shape, sizeof shape, f->ndim, f->shape);
    uint64_t bytes = npy_types[t].size;
    for (int i = 0; i < f->ndim; i++)
        if (f->shape[i] == 0 || __builtin_mul_overflow(bytes, f->shape[i], &bytes))
            return npy_bad(f, "shape %s holds no values or too many", shape);
    if (f->ndim == 0)
        return RT_ERROR(RT_ERR_FORMAT, "%s holds one value (shape ()); samples need an array "
                        "whose first dimension counts them", f->path);
    struct stat sb;
    long pos = ftell(f->fp);
    if (fstat(fileno(f->fp), &sb) != 0 || pos < 0)
        return RT_ERROR(RT_ERR_IO, "cannot read %s: %s", f->path, strerror(errno));
    uint64_t have = (uint64_t)sb.st_size - (uint64_t)pos;
    if (have != bytes)
        return RT_ERROR(RT_ERR_FORMAT, "%s is %s: shape %s of '%s' is %llu bytes of data, the "
                        "file holds %llu after its header", f->path, have < bytes ?
                        "truncated" : "corrupt", shape, f->descr, (unsigned long long)bytes,
                        (unsigned long long)have);
    f->bytes = bytes;
    return RT_OK;
}

static rt_status npy_open(npy_file *f, const char *path)
{
    f->path = path;
    f->fp = fopen(path, "rb");
    if (!f->fp)
        return RT_ERROR(RT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    char *text = NULL;
    rt_status st = npy_read_header(f, &text);
    if (st == RT_OK)
        st = npy_parse(f, text);
    rt_free(text);
    RT_CHECK(st);
    return npy_check(f);
}

static rt_status open_npy(const cmd_opts *o, convert_input *in)
{
    if (!o->labels)
        return RT_ERROR(RT_ERR_CONFIG, "npy input needs --labels Y.npy, the targets of the "
                        "samples in %s", o->args[0]);
    RT_CHECK(npy_open(&in->x, o->args[0]));
    RT_CHECK(npy_open(&in->y, o->labels));
    if (in->x.shape[0] != in->y.shape[0])
        return RT_ERROR(RT_ERR_FORMAT, "%s holds %llu samples but %s holds %llu targets; they "
                        "must have the same first dimension", o->args[0],
                        (unsigned long long)in->x.shape[0], o->labels,
                        (unsigned long long)in->y.shape[0]);
    return RT_OK;
}

/* Copies f's rows into dataset `name`, keeping the element type. */
static rt_status npy_copy(h5_out *out, npy_file *f, const char *name)
{
    hid_t type = npy_h5_type(f->kind), dset;
    RT_CHECK(out_create(out, name, type, f->ndim, f->shape, &dset));
    hsize_t n = f->shape[0];
    size_t row_bytes = (size_t)(f->bytes / n), block = COPY_BYTES / row_bytes;
    block = block < 1 ? 1 : block > n ? n : block;
    unsigned char *buf = NULL;
    rt_status st = rt_alloc(&buf, block, row_bytes, "npy rows");
    for (hsize_t r = 0; st == RT_OK && r < n; r += block) {
        hsize_t rows = n - r < block ? n - r : block;
        if (fread(buf, row_bytes, rows, f->fp) != rows)
            st = RT_ERROR(RT_ERR_IO, "cannot read %s at sample %llu: %s", f->path,
                          (unsigned long long)r, ferror(f->fp) ? strerror(errno)
                                                               : "the file became shorter");
        else
            st = out_write(out, dset, name, type, r, rows, buf);
    }
    rt_free(buf);
    H5Dclose(dset);
    return st;
}

static rt_status write_npy(const cmd_opts *o, convert_input *in, h5_out *out)
{
    RT_CHECK(npy_copy(out, &in->x, o->x));
    return npy_copy(out, &in->y, o->y);
}

/* ---- convert ------------------------------------------------------------------------ */

/* There is no C Parquet library on Debian 12: the way in is pandas. */
static rt_status parquet_hint(const cmd_opts *o, convert_input *in)
{
    (void)in;
    const char *input = o->args[0];
    size_t len = strlen(input), stem = len;
    if (len > 8 && strcmp(input + len - 8, ".parquet") == 0)
        stem = len - 8;
    return RT_ERROR(RT_ERR_UNSUPPORTED, "%s: rtrain has no Parquet reader (there is no C "
                    "Parquet library on Debian 12); convert it to CSV with pandas (and pyarrow)\n"
                    "  /usr/bin/python3 -c \"import pandas as pd; pd.read_parquet('%s')"
                    ".to_csv('%.*s.csv', index=False)\"\nthen convert the CSV: rtrain-data "
                    "convert %.*s.csv %s --target COLUMN", input, input, (int)stem, input,
                    (int)stem, input, o->args[1]);
}

/* One input format: opened (and checked) before anything is written, then
 * written into the open output file. */
typedef struct input_format {
    const char *name;
    rt_status (*open)(const cmd_opts *o, convert_input *in);
    rt_status (*write)(const cmd_opts *o, convert_input *in, h5_out *out);
} input_format;

static const input_format formats[] = {
    {"idx", open_idx, write_dataset},
    {"csv", open_csv, write_dataset},
    {"npy", open_npy, write_npy},
    {"parquet", parquet_hint, NULL},
};
#define NFORMATS (sizeof formats / sizeof formats[0])

/* The format of INPUT from its name when --format is not given. */
static const struct { const char *suffix, *format; } suffix_formats[] = {
    {".csv", "csv"}, {".csv.gz", "csv"}, {".npy", "npy"}, {".parquet", "parquet"},
};

static const char *format_from_name(const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < sizeof suffix_formats / sizeof suffix_formats[0]; i++) {
        size_t n = strlen(suffix_formats[i].suffix);
        if (len >= n && strcmp(path + len - n, suffix_formats[i].suffix) == 0)
            return suffix_formats[i].format;
    }
    /* The idx naming convention: t10k-images-idx3-ubyte.gz */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strstr(base, "idx") || strstr(base, "ubyte") ? "idx" : NULL;
}

static rt_status find_format(const cmd_opts *o, const input_format **out)
{
    const char *name = o->format ? o->format : format_from_name(o->args[0]);
    if (!name)
        return RT_ERROR(RT_ERR_CONFIG, "cannot tell the format of %s from its name; pass "
                        "--format idx, csv or npy", o->args[0]);
    for (size_t i = 0; i < NFORMATS; i++)
        if (strcmp(formats[i].name, name) == 0) {
            *out = &formats[i];
            return RT_OK;
        }
    return RT_ERROR(RT_ERR_CONFIG, "--format %s: not a format rtrain-data converts (idx, csv, "
                    "npy)", name);
}

/* Options the chosen format does not read are errors, not silently ignored. */
static rt_status check_format_opts(const cmd_opts *o, const char *format)
{
    const char *csv_only = o->target ? "--target" : o->features ? "--features"
                         : o->categorical ? "--categorical" : o->classify ? "--classify" : NULL;
    int csv = strcmp(format, "csv") == 0;
    if (!csv && csv_only)
        return RT_ERROR(RT_ERR_CONFIG, "%s applies to csv input only; %s is read as %s",
                        csv_only, o->args[0], format);
    if (csv && o->labels)
        return RT_ERROR(RT_ERR_CONFIG, "--labels applies to idx and npy input; a csv file "
                        "holds its target as a column (--target)");
    if (strcmp(o->x, o->y) == 0)
        return RT_ERROR(RT_ERR_CONFIG, "--x and --y both name %s", o->x);
    return RT_OK;
}

typedef struct convert_job {
    const cmd_opts *o;
    const input_format *fmt;
    convert_input *in;
    h5_out out;
} convert_job;

/* rt_fs_replace's writer: the HDF5 file goes to tmp_path through HDF5's
 * own descriptor; rt_fs_replace then syncs it through fd (the same file)
 * and renames it over OUTPUT, or removes it when this fails. */
static rt_status write_output(void *arg, int fd, const char *tmp_path)
{
    (void)fd;
    convert_job *job = arg;
    h5_out *out = &job->out;
    /* The 1.8 file format or later: an attribute over 64 KiB (a long csv
     * encoding) goes to dense storage instead of failing. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0) {
        if (fapl >= 0)
            H5Pclose(fapl);
        return h5_fail(out->path, RT_ERR_IO, "cannot set the file format version");
    }
    out->fid = H5Fcreate(tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (out->fid < 0)
        return h5_fail(out->path, RT_ERR_IO, "cannot create %s", tmp_path);
    out->lcpl = H5Pcreate(H5P_LINK_CREATE);
    rt_status st = out->lcpl < 0 || H5Pset_create_intermediate_group(out->lcpl, 1) < 0
                       ? h5_fail(out->path, RT_ERR_IO, "cannot set link properties")
                       : job->fmt->write(job->o, job->in, out);
    if (out->lcpl >= 0)
        H5Pclose(out->lcpl);
    if (H5Fclose(out->fid) < 0 && st == RT_OK)
        st = h5_fail(out->path, RT_ERR_IO, "cannot finish writing %s", tmp_path);
    return st;
}

/* Everything that can be refused before a byte is written. */
static rt_status convert_prepare(const cmd_opts *o, const input_format **fmt,
                                 convert_input *in)
{
    RT_CHECK(find_format(o, fmt));
    RT_CHECK(check_format_opts(o, (*fmt)->name));
    struct stat sb;
    if (!o->force && stat(o->args[1], &sb) == 0)
        return RT_ERROR(RT_ERR_CONFIG, "%s exists; pass --force to replace it", o->args[1]);
    return (*fmt)->open(o, in);
}

static int cmd_convert(int argc, char **argv)
{
    cmd_opts o = {.x = "/x", .y = "/y", .level = 4};
    if (parse_args(argc, argv, convert_specs, 2, &o) != RT_OK)
        return fail();
    const input_format *fmt = NULL;
    convert_input in = {0};
    convert_job job = {&o, NULL, &in, {.path = o.args[1], .chunk_rows = o.chunk_rows,
                                       .level = (int)o.level}};
    rt_status st = convert_prepare(&o, &fmt, &in);
    job.fmt = fmt;
    if (st == RT_OK)
        st = rt_fs_replace(o.args[1], 0644, write_output, &job);
    input_close(&in);
    if (st != RT_OK)
        return fail();
    printf("wrote %s: %s", o.args[1], job.out.summary);
    if (o.level > 0)
        printf("; shuffle + gzip level %d\n", (int)o.level);
    else
        printf("; not compressed\n");
    return EXIT_OK;
}

/* ---- reading HDF5 files (info, verify) -------------------------------------------- */

static rt_status open_h5(const char *path, hid_t *fid)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return RT_ERROR(RT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return RT_ERROR(RT_ERR_IO, "%s is not a file", path);
    *fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*fid < 0)
        return h5_fail(path, RT_ERR_FORMAT, "not a readable HDF5 file: not HDF5, or truncated "
                       "or damaged");
    return RT_OK;
}

/* Called with rows [row0, row0 + rows) of a dataset as doubles, row-major,
 * row_values values per row. */
typedef rt_status (*scan_fn)(void *arg, const double *v, hsize_t row0, hsize_t rows,
                             size_t row_values);

/* Reads dataset `name` of file `path` in blocks of at most SCAN_MAX_ROWS
 * rows and about SCAN_VALUES values, converted to double by HDF5 (exact
 * for every integer up to 2^53), so memory stays bounded whatever the
 * file's size. */
static rt_status scan_rows(const char *path, const char *name, hid_t dset, scan_fn fn, void *arg)
{
    hsize_t dims[H5S_MAX_RANK];
    int ndim = dataset_dims(dset, dims);
    if (ndim < 0)
        return h5_fail(path, RT_ERR_FORMAT, "cannot read the shape of %s", name);
    hsize_t n = ndim ? dims[0] : 1;
    size_t row_values = 1;
    for (int i = 1; i < ndim; i++)
        row_values *= (size_t)dims[i];
    if (n == 0 || row_values == 0)
        return RT_OK;
    hsize_t block = SCAN_VALUES / row_values;
    block = block < 1 ? 1 : block > SCAN_MAX_ROWS ? SCAN_MAX_ROWS : block > n ? n : block;
    double *buf = NULL;
    RT_CHECK(rt_alloc(&buf, (size_t)block * row_values, sizeof *buf, "rows being read"));
    rt_status st = RT_OK;
    for (hsize_t r = 0; st == RT_OK && r < n; r += block) {
        hsize_t rows = n - r < block ? n - r : block;
        if (rows_io(dset, H5T_NATIVE_DOUBLE, r, rows, buf, 0) < 0)
            st = h5_fail(path, RT_ERR_FORMAT, "cannot read samples %llu to %llu of %s",
                         (unsigned long long)r, (unsigned long long)(r + rows - 1), name);
        else
            st = fn(arg, buf, r, rows, row_values);
    }
    rt_free(buf);
    return st;
}

/* HDF5 converts no string between ASCII and UTF-8: the memory type takes
 * the character set of the stored one (ftype). */
static rt_status read_vlen_attr(const char *path, hid_t a, hid_t ftype, const char *attr,
                                char **out)
{
    hid_t mt = H5Tcopy(H5T_C_S1);
    char *s = NULL;
    rt_status st = RT_OK;
    if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 ||
        H5Tset_cset(mt, H5Tget_cset(ftype)) < 0 || H5Aread(a, mt, &s) < 0)
        st = h5_fail(path, RT_ERR_FORMAT, "cannot read attribute %s", attr);
    else if ((st = rt_alloc(out, strlen(s) + 1, 1, attr)) == RT_OK)
        memcpy(*out, s, strlen(s) + 1);
    H5free_memory(s);
    if (mt >= 0)
        H5Tclose(mt);
    return st;
}

/* A scalar string attribute (variable or fixed length) as a new string. */
static rt_status read_string_attr(const char *path, hid_t obj, const char *attr, char **out)
{
    hid_t a = H5Aopen(obj, attr, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a), space = a < 0 ? -1 : H5Aget_space(a);
    int ok = t >= 0 && space >= 0 && H5Tget_class(t) == H5T_STRING &&
             H5Sget_simple_extent_npoints(space) == 1;
    rt_status st = ok ? RT_OK : h5_fail(path, RT_ERR_FORMAT, "attribute %s is not one string",
                                        attr);
    if (st == RT_OK && H5Tis_variable_str(t) > 0) {
        st = read_vlen_attr(path, a, t, attr, out);
    } else if (st == RT_OK && (st = rt_alloc(out, H5Tget_size(t) + 1, 1, attr)) == RT_OK) {
        if (H5Aread(a, t, *out) < 0)
            st = h5_fail(path, RT_ERR_FORMAT, "cannot read attribute %s", attr);
    }
    if (space >= 0)
        H5Sclose(space);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    return st;
}

/* ---- info ----------------------------------------------------------------------------- */

/* Statistics of one numeric dataset: min/mean/max per feature of an [N, F]
 * dataset, over all values otherwise (non-finite values counted apart),
 * and how often each value occurs in a 1-D integer dataset (labels). */
typedef struct stats {
    size_t features;                  /* F, or 1 */
    double *min, *max, *sum, *count;  /* [features], one allocation */
    int64_t nonfinite;
    int classes;                      /* count the values */
    int nvalues, too_many;            /* distinct values (sorted); more than MAX_CLASSES */
    int64_t values[MAX_CLASSES], counts[MAX_CLASSES];
} stats;

static void stats_count_value(stats *s, int64_t v)
{
    int lo = 0, hi = s->nvalues;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s->values[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->nvalues && s->values[lo] == v) {
        s->counts[lo]++;
    } else if (s->nvalues == MAX_CLASSES) {
        s->too_many = 1;
    } else {
        memmove(s->values + lo + 1, s->values + lo, (size_t)(s->nvalues - lo) * sizeof(int64_t));
        memmove(s->counts + lo + 1, s->counts + lo, (size_t)(s->nvalues - lo) * sizeof(int64_t));
        s->values[lo] = v;
        s->counts[lo] = 1;
        s->nvalues++;
    }
}

static rt_status stats_block(void *arg, const double *v, hsize_t row0, hsize_t rows,
                             size_t row_values)
{
    (void)row0;
    stats *s = arg;
    for (size_t i = 0; i < rows * row_values; i++) {
        if (!isfinite(v[i])) {
            s->nonfinite++;
            continue;
        }
        size_t f = s->features > 1 ? i % row_values : 0;
        s->min[f] = v[i] < s->min[f] ? v[i] : s->min[f];
        s->max[f] = v[i] > s->max[f] ? v[i] : s->max[f];
        s->sum[f] += v[i];
        s->count[f]++;
        if (s->classes && !s->too_many)
            stats_count_value(s, (int64_t)v[i]);
    }
    return RT_OK;
}

static void stats_print(const stats *s)
{
    if (s->features == 1 && s->count[0] > 0)
        printf("    min %.6g  mean %.6g  max %.6g\n", s->min[0], s->sum[0] / s->count[0],
               s->max[0]);
    if (s->features > 1)
        printf("    %8s %14s %14s %14s\n", "feature", "min", "mean", "max");
    for (size_t f = 0; s->features > 1 && f < s->features && f < MAX_SHOWN_FEATURES; f++)
        printf("    %8zu %14.6g %14.6g %14.6g\n", f, s->min[f],
               s->count[f] > 0 ? s->sum[f] / s->count[f] : NAN, s->max[f]);
    if (s->features > MAX_SHOWN_FEATURES)
        printf("    ... (%zu more features)\n", s->features - MAX_SHOWN_FEATURES);
    if (s->nonfinite)
        printf("    non-finite values (NaN, Inf): %lld\n", (long long)s->nonfinite);
    if (s->classes && s->too_many)
        printf("    more than %d distinct values (not counted as classes)\n", MAX_CLASSES);
    if (s->classes && !s->too_many) {
        printf("    class counts (%d values):\n", s->nvalues);
        for (int i = 0; i < s->nvalues; i++)
            printf("      %lld: %lld\n", (long long)s->values[i], (long long)s->counts[i]);
    }
}

static rt_status info_stats(const char *path, const char *name, hid_t dset, int is_int,
                            int ndim, const hsize_t *dims)
{
    stats s = {.features = ndim == 2 ? (size_t)dims[1] : 1, .classes = ndim == 1 && is_int};
    double *acc = NULL;
    RT_CHECK(rt_alloc(&acc, 4 * s.features, sizeof *acc, "feature statistics"));
    s.min = acc;
    s.max = acc + s.features;
    s.sum = acc + 2 * s.features;
    s.count = acc + 3 * s.features;
    for (size_t f = 0; f < s.features; f++) {
        s.min[f] = INFINITY;
        s.max[f] = -INFINITY;
    }
    rt_status st = scan_rows(path, name, dset, stats_block, &s);
    if (st == RT_OK)
        stats_print(&s);
    rt_free(acc);
    return st;
}

/* "chunks [1337,1,28,28], filters: shuffle, gzip level 4" */
static rt_status print_layout(const char *path, const char *name, hid_t dset)
{
    hid_t dcpl = H5Dget_create_plist(dset);
    if (dcpl < 0)
        return h5_fail(path, RT_ERR_FORMAT, "cannot read the layout of %s", name);
    H5D_layout_t layout = H5Pget_layout(dcpl);
    if (layout == H5D_CHUNKED) {
        hsize_t chunk[H5S_MAX_RANK];
        char shape[256];
        format_dims(shape, sizeof shape, H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk), chunk);
        printf(", chunks %s", shape);
    } else {
        printf(", %s", layout == H5D_COMPACT ? "compact" : "contiguous");
    }
    int nfilters = H5Pget_nfilters(dcpl);
    fputs(nfilters > 0 ? ", filters: " : ", no filters", stdout);
    for (int i = 0; i < nfilters; i++) {
        unsigned flags = 0, cd[8] = {0}, config = 0;
        size_t ncd = 8;
        char fname[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof fname,
                                         fname, &config);
        printf("%s", i ? ", " : "");
        if (id == H5Z_FILTER_DEFLATE)
            printf("gzip level %u", ncd ? cd[0] : 0);
        else if (id == H5Z_FILTER_SHUFFLE)
            printf("shuffle");
        else
            printf("%s (filter %d)", fname[0] ? fname : "unknown", (int)id);
    }
    H5Pclose(dcpl);
    return RT_OK;
}

static rt_status info_dataset(const char *path, hid_t fid, const char *name)
{
    hid_t dset = H5Dopen2(fid, name, H5P_DEFAULT);
    if (dset < 0)
        return h5_fail(path, RT_ERR_FORMAT, "cannot open dataset %s", name);
    hid_t type = H5Dget_type(dset);
    hsize_t dims[H5S_MAX_RANK];
    int ndim = dataset_dims(dset, dims);
    rt_status st = type < 0 || ndim < 0 ? h5_fail(path, RT_ERR_FORMAT, "cannot read the type "
                                                  "and shape of %s", name) : RT_OK;
    H5T_class_t cls = type < 0 ? H5T_NO_CLASS : H5Tget_class(type);
    if (st == RT_OK) {
        char tname[64], shape[256];
        type_name(type, tname, sizeof tname);
        format_dims(shape, sizeof shape, ndim, dims);
        printf("%s: %s %s", name, tname, shape);
        st = print_layout(path, name, dset);
        putchar('\n');
    }
    if (st == RT_OK && (cls == H5T_INTEGER || cls == H5T_FLOAT))
        st = info_stats(path, name, dset, cls == H5T_INTEGER, ndim, dims);
    if (type >= 0)
        H5Tclose(type);
    H5Dclose(dset);
    return st;
}

typedef struct info_ctx {
    const char *path;
    hid_t fid;
    rt_status st;
    long long datasets;
} info_ctx;

/* H5Lvisit's callback: each hard link (name relative to the root), in name order. */
static herr_t info_link(hid_t group, const char *name, const link_info *link, void *arg)
{
    info_ctx *c = arg;
    if (link->type != H5L_TYPE_HARD)
        return 0;
    hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
    if (obj < 0) {
        c->st = h5_fail(c->path, RT_ERR_FORMAT, "cannot open /%s", name);
        return -1;
    }
    int is_dataset = H5Iget_type(obj) == H5I_DATASET;
    H5Oclose(obj);
    if (!is_dataset)
        return 0;
    char full[1024];
    snprintf(full, sizeof full, "/%s", name);
    c->st = info_dataset(c->path, c->fid, full);
    c->datasets++;
    return c->st == RT_OK ? 0 : -1;
}

static rt_status print_encoding(const char *path, hid_t fid)
{
    htri_t has = H5Aexists(fid, ENCODING_ATTR);
    if (has < 0)
        return h5_fail(path, RT_ERR_FORMAT, "cannot read the attributes of /");
    if (has == 0)
        return RT_OK;
    char *text = NULL;
    RT_CHECK(read_string_attr(path, fid, ENCODING_ATTR, &text));
    printf("%s: %s\n", ENCODING_ATTR, text);
    rt_free(text);
    return RT_OK;
}

static int cmd_info(int argc, char **argv)
{
    cmd_opts o = {0};
    hid_t fid = -1;
    if (parse_args(argc, argv, info_specs, 1, &o) != RT_OK || open_h5(o.args[0], &fid) != RT_OK)
        return fail();
    printf("%s\n", o.args[0]);
    info_ctx c = {o.args[0], fid, RT_OK, 0};
    if (H5Lvisit(fid, H5_INDEX_NAME, H5_ITER_INC, info_link, &c) < 0 && c.st == RT_OK)
        c.st = h5_fail(o.args[0], RT_ERR_FORMAT, "cannot list the datasets");
    if (c.st == RT_OK)
        c.st = print_encoding(o.args[0], fid);
    H5Fclose(fid);
    if (c.st != RT_OK)
        return fail();
    printf("%lld datasets\n", c.datasets);
    return EXIT_OK;
}

/* ---- verify ------------------------------------------------------------------------- */

/* One dataset being verified: its shape, the rule its values must keep
 * (finite floats; integer labels >= 0 and < num_classes) and the values
 * that break it, the first few by index. */
typedef struct check {
    const char *name;
    int found, ndim, is_float, is_labels;
    hsize_t dims[H5S_MAX_RANK];
    int64_t num_classes;          /* 0: no upper bound */
    int64_t bad, max_label;
    int nshown;
    char shown[MAX_SHOWN_PROBLEMS][128];
} check;

typedef struct verify_ctx { const char *path; int problems; } verify_ctx;

static void problem(verify_ctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(verify_ctx *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rtrain-data: %s: ", v->path);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    v->problems++;
}

/* "/x[17,0,3,4] = nan" for value number `flat` of the dataset. */
static void note_bad(check *c, uint64_t flat, double value)
{
    hsize_t idx[H5S_MAX_RANK];
    for (int d = c->ndim - 1; d >= 0; d--) {
        idx[d] = flat % c->dims[d];
        flat /= c->dims[d];
    }
    char where[96];
    format_dims(where, sizeof where, c->ndim, idx);
    snprintf(c->shown[c->nshown++], sizeof c->shown[0], "%s%s = %.9g", c->name, where, value);
}

static rt_status check_block(void *arg, const double *v, hsize_t row0, hsize_t rows,
                             size_t row_values)
{
    check *c = arg;
    for (size_t i = 0; i < rows * row_values; i++) {
        int ok = c->is_float ? isfinite(v[i])
                             : v[i] >= 0 && (c->num_classes == 0 || v[i] < c->num_classes);
        if (c->is_labels && v[i] > c->max_label)
            c->max_label = (int64_t)v[i];
        if (ok)
            continue;
        if (c->nshown < MAX_SHOWN_PROBLEMS)
            note_bad(c, row0 * row_values + i, v[i]);
        c->bad++;
    }
    return RT_OK;
}

/* Opens dataset c->name: missing or not numeric is a problem (*dset stays
 * -1); a file HDF5 cannot read is an error. */
static rt_status verify_open(verify_ctx *v, hid_t fid, check *c, hid_t *dset)
{
    *dset = -1;
    if (H5Lexists(fid, c->name, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        problem(v, "has no dataset %s", c->name);
        return RT_OK;
    }
    hid_t d = H5Dopen2(fid, c->name, H5P_DEFAULT);
    hid_t type = d < 0 ? -1 : H5Dget_type(d);
    c->ndim = d < 0 ? -1 : dataset_dims(d, c->dims);
    if (type < 0 || c->ndim < 0) {
        if (d >= 0)
            H5Dclose(d);
        return h5_fail(v->path, RT_ERR_FORMAT, "cannot open dataset %s", c->name);
    }
    H5T_class_t cls = H5Tget_class(type);
    char tname[64];
    type_name(type, tname, sizeof tname);
    H5Tclose(type);
    if ((cls != H5T_INTEGER && cls != H5T_FLOAT) || c->ndim == 0) {
        problem(v, "%s holds %s%s, not an array of samples", c->name,
                c->ndim == 0 ? "one " : "", tname);
        H5Dclose(d);
        return RT_OK;
    }
    c->found = 1;
    c->is_float = cls == H5T_FLOAT;
    c->is_labels = c->is_labels && !c->is_float;
    *dset = d;
    return RT_OK;
}

/* Scans one dataset if its values have a rule, and reports what breaks it. */
static rt_status verify_dataset(verify_ctx *v, hid_t fid, check *c)
{
    hid_t dset;
    RT_CHECK(verify_open(v, fid, c, &dset));
    if (dset < 0)
        return RT_OK;
    rt_status st = c->is_float || c->is_labels ? scan_rows(v->path, c->name, dset, check_block, c)
                                                : RT_OK;
    H5Dclose(dset);
    RT_CHECK(st);
    if (c->bad == 0)
        return RT_OK;
    char list[MAX_SHOWN_PROBLEMS * 130] = "";
    for (int i = 0; i < c->nshown; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 c->shown[i]);
    char rule[64];
    const char *s = c->bad == 1 ? "" : "s";
    if (c->is_float)
        snprintf(rule, sizeof rule, "non-finite value%s (NaN or Inf)", s);
    else if (c->num_classes)
        snprintf(rule, sizeof rule, "label%s outside [0, %lld)", s, (long long)c->num_classes);
    else
        snprintf(rule, sizeof rule, "negative label%s", s);
    problem(v, "%s has %lld %s: %s%s", c->name, (long long)c->bad, rule, list,
            c->bad > c->nshown ? ", ..." : "");
    return RT_OK;
}

static void print_ok(const verify_ctx *v, const check *x, const check *y)
{
    char shape[256], yshape[256];
    format_dims(shape, sizeof shape, x->ndim - 1, x->dims + 1);
    printf("%s: ok (%llu samples, shape %s, ", v->path, (unsigned long long)x->dims[0], shape);
    if (y->is_labels) {
        printf("%lld classes)\n", (long long)(y->num_classes ? y->num_classes
                                                             : y->max_label + 1));
    } else if (y->ndim == 1) {
        printf("float targets)\n");
    } else {
        format_dims(yshape, sizeof yshape, y->ndim - 1, y->dims + 1);
        printf("float targets of shape %s)\n", yshape);
    }
}

static int cmd_verify(int argc, char **argv)
{
    cmd_opts o = {.x = "/x", .y = "/y"};
    hid_t fid = -1;
    if (parse_args(argc, argv, verify_specs, 1, &o) != RT_OK || open_h5(o.args[0], &fid) != RT_OK)
        return fail();
    verify_ctx v = {o.args[0], 0};
    check x = {.name = o.x}, y = {.name = o.y, .is_labels = 1, .num_classes = o.num_classes};
    rt_status st = verify_dataset(&v, fid, &x);
    if (st == RT_OK)
        st = verify_dataset(&v, fid, &y);
    H5Fclose(fid);
    if (st != RT_OK)
        return fail();
    if (x.found && y.found && x.dims[0] != y.dims[0])
        problem(&v, "%s has %llu samples but %s has %llu", o.x, (unsigned long long)x.dims[0],
                o.y, (unsigned long long)y.dims[0]);
    if (y.found && y.is_float && o.num_classes)
        problem(&v, "--num-classes given but %s holds floats, not class labels", o.y);
    if (v.problems)
        return EXIT_PROBLEMS;
    print_ok(&v, &x, &y);
    return EXIT_OK;
}

/* ---- main ------------------------------------------------------------------------------ */

static int usage(FILE *to, int code)
{
    fprintf(to,
            "usage: rtrain-data convert INPUT OUTPUT.h5 [options]\n"
            "       rtrain-data info FILE.h5\n"
            "       rtrain-data verify FILE.h5 [--x PATH] [--y PATH] [--num-classes K]\n"
            "\n"
            "convert writes INPUT's samples to OUTPUT.h5 (inputs at /x, targets at /y),\n"
            "chunked along the samples and compressed with shuffle + gzip:\n"
            "  --format idx|csv|npy  INPUT's format (default: from its name: .csv, .csv.gz,\n"
            "                        .npy, idx or ubyte in the name)\n"
            "  --labels FILE         idx: the labels idx file; npy: the targets .npy\n"
            "  --x PATH, --y PATH    dataset paths in OUTPUT.h5 (default /x and /y)\n"
            "  --chunk-rows N        samples per chunk (default: about 1 MiB per chunk)\n"
            "  --compress LEVEL      gzip level 0-9 (default 4; 0: not compressed, not\n"
            "                        chunked unless --chunk-rows is given)\n"
            "  --force               replace an existing OUTPUT.h5\n"
            "  csv input:\n"
            "  --target COLUMN       the target column\n"
            "  --features a,b,c      the feature columns, in order (default: all others)\n"
            "  --categorical a,b     feature columns to one-hot encode\n"
            "  --classify            the target is a class (int32 labels), not a number\n"
            "Parquet: convert it to CSV with pandas first (rtrain-data convert X.parquet\n"
            "prints the command).\n"
            "\n"
            "info prints every dataset: shape, type, chunks, filters, min/mean/max (per\n"
            "feature for [N, F]) and the class counts of 1-D integer datasets.\n"
            "verify checks that x and y are finite, hold as many samples, and that integer\n"
            "labels are >= 0 (and < K).\n"
            "\n"
            "Exit status: 0 ok, 1 verify found problems, 2 usage or input error.\n");
    return code;
}

static const struct { const char *name; int (*run)(int argc, char **argv); } commands[] = {
    {"convert", cmd_convert}, {"info", cmd_info}, {"verify", cmd_verify},
};

int main(int argc, char **argv)
{
    h5_quiet();
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage(stdout, EXIT_OK);
    for (size_t c = 0; argc >= 2 && c < sizeof commands / sizeof commands[0]; c++)
        if (strcmp(argv[1], commands[c].name) == 0)
            return commands[c].run(argc - 1, argv + 1);
    if (argc >= 2)
        fprintf(stderr, "rtrain-data: unknown command '%s'\n", argv[1]);
    return usage(stderr, EXIT_ERROR);
}
