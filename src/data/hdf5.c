/* HDF5 datasets (data.format = "hdf5"): one file, an input dataset x of
 * shape [N, ...] (any integer or float type; the sample is everything
 * after the first dimension, [N] alone is one value per sample) and a
 * target dataset y of N rows: integer class labels [N] (or [N, 1]) for a
 * class loss, values [N] or [N, K] for a vector loss. Chunked and
 * compressed datasets read as any other; a filter this HDF5 library lacks
 * is named before anything is read.
 *
 * Three ways to hold x (data.cache): "rank" reads this split's rows into
 * memory once (uint8 stays uint8, everything else becomes float32, HDF5
 * converting), so fetch is a copy and may run on the loader's thread;
 * "node" does the same once per node, into memory the node's ranks share
 * (rt_node_memory: the node's writer reads, the others wait at `ready`,
 * and every rank takes part in both steps even when its own open failed,
 * so that no rank is left waiting); "none" keeps the file open and reads
 * the rows fetches need a block at a time (a block is the dataset's chunk
 * rows, so a chunk is decompressed once per visit) into STREAM_BLOCKS
 * buffers, for data larger than memory; with data.shuffle_block set to the
 * chunk rows a batch needs one or two blocks. The parallel HDF5 build is
 * not thread-safe: every HDF5 call here holds the process's HDF5 lock
 * (rt_hdf5_lock, which a checkpoint file holds from open to close), so the
 * loader's thread may read blocks while the training thread computes, and
 * waits while a checkpoint is being written.
 * Targets are always read into memory (they are small) and checked there:
 * labels must be integers >= 0, values finite. Inputs held in memory are
 * checked for NaN/Inf at open; streamed rows when they are read.
 *
 * The file is untrusted input: every HDF5 failure becomes one message
 * naming the file (and dataset) with HDF5's own error stack silenced. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "data/formats.h"

/* Streaming: a block of rows [first, first + rows) of x held as read
 * (uint8, or float32), last used at `used` (0: empty). */
#define STREAM_BLOCKS 4                               /* a batch spans at most 4 */
#define STREAM_BLOCK_BYTES ((int64_t)1 << 20)         /* unchunked data: ~1 MiB blocks */
#define STREAM_MAX_BLOCK_BYTES ((int64_t)256 << 20)
typedef struct stream_block {
    int64_t first, rows, used;
    void *data;
} stream_block;

typedef struct h5data {
    char file[RT_PATH_MAX];
    char xname[256];
    int64_t first;        /* row of the file where this split begins */
    size_t sample_size;   /* values per sample */
    size_t target_size;   /* values per target */
    int is_u8;            /* inputs held as uint8 (cache "rank") */
    void *x;              /* [rows][sample_size] uint8 or float; NULL when streamed */
    void *y;              /* [rows][target_size] int32 or float */
    /* node cache: x is the node's shared memory, released through these */
    const rt_node_memory *node_memory;
    void *shared;
    /* streaming (cache "none"): the file and x stay open; rows are read a
     * block at a time (the dataset's chunk rows, aligned as its chunks
     * are) into a few buffers reused least recently used first */
    hid_t fid, dset;
    int ndim;
    hsize_t dims[RT_SAMPLE_MAX_NDIM + 1];
    int64_t block_rows;
    stream_block blocks[STREAM_BLOCKS];
    int64_t clock;
} h5data;

/* Opening: every handle is closed by h5_close whatever happened. */
typedef struct h5open {
    const rt_data_source *src;
    hid_t fid, x, y;
    int ndim;                               /* of x */
    hsize_t dims[RT_SAMPLE_MAX_NDIM + 1];
    int64_t rows;                           /* of this split */
} h5open;

static rt_status fail(const char *file, rt_status code, const char *fmt, const char *name)
{
    char what[512];
    snprintf(what, sizeof what, fmt, name);
    return RT_ERROR(code, "%s: %s", file, what);
}

static rt_status open_file(h5open *o)
{
    const char *file = o->src->file;
    if (access(file, R_OK) != 0)
        return RT_ERROR(RT_ERR_CONFIG, "cannot open HDF5 file '%s': %s; check data.train.file / "
                        "data.test.file and data.dir", file, strerror(errno));
    htri_t is_h5 = -1;
    H5E_BEGIN_TRY { is_h5 = H5Fis_hdf5(file); } H5E_END_TRY;
    if (is_h5 <= 0)
        return RT_ERROR(RT_ERR_FORMAT, "%s is not an HDF5 file, or it is truncated or damaged "
                        "(h5dump -H %s shows what HDF5 makes of it); convert data with "
                        "rtrain-data convert", file, file);
    H5E_BEGIN_TRY { o->fid = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    if (o->fid < 0)
        return RT_ERROR(RT_ERR_FORMAT, "%s: HDF5 cannot open it (truncated or damaged?)", file);
    return RT_OK;
}

/* A dataset of the file by path, with a readable (available) filter set. */
static rt_status open_dataset(h5open *o, const char *path, const char *role, hid_t *out)
{
    const char *file = o->src->file;
    htri_t exists = 0;
    if (!path || !path[0])
        return RT_ERROR(RT_ERR_CONFIG, "%s: no %s dataset named (data.train.%s)", file, role,
                        role);
    H5E_BEGIN_TRY {
        exists = H5Lexists(o->fid, path, H5P_DEFAULT);   /* fails on a missing parent group */
        *out = exists > 0 ? H5Dopen2(o->fid, path, H5P_DEFAULT) : -1;
    } H5E_END_TRY;
    if (*out < 0)
        return RT_ERROR(RT_ERR_CONFIG, "%s has no dataset '%s' (the %s): check "
                        "data.train.%s / data.test.%s (rtrain-data info %s lists the datasets)",
                        file, path, role[0] == 'x' ? "inputs" : "targets", role, role, file);
    hid_t dcpl = H5Dget_create_plist(*out);
    int nfilters = dcpl < 0 ? -1 : H5Pget_nfilters(dcpl);
    rt_status st = nfilters < 0 ? fail(file, RT_ERR_FORMAT, "cannot read the filters of "
                                       "dataset '%s'", path) : RT_OK;
    for (int i = 0; st == RT_OK && i < nfilters; i++) {
        unsigned flags, config;
        size_t nvalues = 0;
        char name[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nvalues, NULL,
                                         sizeof name, name, &config);
        if (id < 0 || H5Zfilter_avail(id) <= 0)
            st = RT_ERROR(RT_ERR_UNSUPPORTED, "%s: dataset '%s' is compressed with filter %d "
                          "(\"%s\"), which this HDF5 library cannot decode: rewrite it with "
                          "gzip (h5repack -f GZIP=4 in out, or rtrain-data convert)", file, path,
                          (int)id, name);
    }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    return st;
}

/* Shape of a dataset (at most RT_SAMPLE_MAX_NDIM + 1 dimensions). */
static rt_status dataset_shape(const h5open *o, hid_t d, const char *path, int *ndim,
                               hsize_t *dims)
{
    hid_t space = H5Dget_space(d);
    *ndim = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    if (*ndim > RT_SAMPLE_MAX_NDIM + 1 || *ndim < 0) {
        if (space >= 0)
            H5Sclose(space);
        return RT_ERROR(RT_ERR_FORMAT, "%s: dataset '%s' has %d dimensions (at most %d: "
                        "samples, then up to %d per sample)", o->src->file, path, *ndim,
                        RT_SAMPLE_MAX_NDIM + 1, RT_SAMPLE_MAX_NDIM);
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    return RT_OK;
}

/* What one sample and one target may hold (the sample description's own
 * limits: rt_dataset_create), and the rows: a header that declares more
 * than these is refused before anything is allocated. */
#define MAX_SAMPLE_VALUES ((hsize_t)1 << 30)
#define MAX_TARGET_VALUES ((hsize_t)1 << 24)
#define MAX_ROWS ((hsize_t)INT32_MAX)

/* Every dimension after the first >= 1, their product <= max_values, and
 * at most MAX_ROWS rows. */
static rt_status check_extent(const char *file, const char *path, int ndim, const hsize_t *dims,
                              hsize_t max_values)
{
    hsize_t values = 1;
    for (int i = 1; i < ndim; i++) {
        if (dims[i] < 1 || dims[i] > max_values / values)
            return RT_ERROR(RT_ERR_FORMAT, "%s: dataset '%s' has dimension %d of size %llu: a "
                            "sample must have 1 to %llu values", file, path, i,
                            (unsigned long long)dims[i], (unsigned long long)max_values);
        values *= dims[i];
    }
    if (dims[0] > MAX_ROWS)
        return RT_ERROR(RT_ERR_FORMAT, "%s: dataset '%s' declares %llu rows (at most %llu)",
                        file, path, (unsigned long long)dims[0], (unsigned long long)MAX_ROWS);
    return RT_OK;
}

/* A dataset whose header declares rows that were never written would be
 * read as fill values: refuse it. */
static rt_status check_written(const h5open *o, hid_t d, const char *path)
{
    H5D_space_status_t status = H5D_SPACE_STATUS_ERROR;
    if (H5Dget_space_status(d, &status) < 0 || status == H5D_SPACE_STATUS_NOT_ALLOCATED)
        return RT_ERROR(RT_ERR_FORMAT, "%s: dataset '%s' holds no data (it was created but "
                        "never written)", o->src->file, path);
    return RT_OK;
}

/* rt_alloc of count elements of size bytes, failing with a message that
 * names the file and what to do. */
static rt_status alloc_named(void *out, size_t count, size_t size, const char *file,
                             const char *path)
{
    if (count > 0 && size > SIZE_MAX / count)
        return RT_ERROR(RT_ERR_FORMAT, "%s: dataset '%s' is too large to hold in memory",
                        file, path);
    if (rt_alloc(out, count, size, "HDF5 data") == RT_OK)
        return RT_OK;
    rt_error_clear();
    return RT_ERROR(RT_ERR_NOMEM, "%s: dataset '%s' needs %.1f MiB in memory, more than this "
                    "rank can allocate: stream it with data.cache = \"none\", or hold it once "
                    "per node with data.cache = \"node\"", file, path,
                    (double)count * (double)size / 1048576.0);
}

/* The type class of a numeric dataset, and whether it is uint8. */
static rt_status numeric_type(const h5open *o, hid_t d, const char *path, H5T_class_t *cls,
                              int *is_u8)
{
    hid_t t = H5Dget_type(d);
    *cls = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
    *is_u8 = *cls == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    if (t >= 0)
        H5Tclose(t);
    if (*cls != H5T_INTEGER && *cls != H5T_FLOAT)
        return RT_ERROR(RT_ERR_FORMAT, "%s: dataset '%s' is not numeric (integers or floats "
                        "are needed)", o->src->file, path);
    return RT_OK;
}

/* Reads rows [first, first + rows) of d (shape dims) into buf as mtype;
 * the error names file and path. */
static rt_status read_hyperslab(const char *file, hid_t d, const char *path, int ndim,
                                const hsize_t *dims, int64_t first, int64_t rows, hid_t mtype,
                                void *buf)
{
    hsize_t start[RT_SAMPLE_MAX_NDIM + 1] = {0}, count[RT_SAMPLE_MAX_NDIM + 1];
    for (int i = 0; i < ndim; i++)
        count[i] = dims[i];
    start[0] = (hsize_t)first;
    count[0] = (hsize_t)rows;
    hid_t fspace = H5Dget_space(d);
    hid_t mspace = H5Screate_simple(ndim, count, NULL);
    herr_t rc = -1;
    H5E_BEGIN_TRY {
        if (fspace >= 0 && mspace >= 0 &&
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
            rc = H5Dread(d, mtype, mspace, fspace, H5P_DEFAULT, buf);
    } H5E_END_TRY;
    if (fspace >= 0)
        H5Sclose(fspace);
    if (mspace >= 0)
        H5Sclose(mspace);
    if (rc < 0)
        return RT_ERROR(RT_ERR_FORMAT, "%s: cannot read rows %lld to %lld of dataset '%s' (the "
                        "file is truncated or damaged, or a value does not convert to %s)",
                        file, (long long)first, (long long)(first + rows - 1), path,
                        mtype == H5T_NATIVE_FLOAT ? "float32" : "its memory type");
    return RT_OK;
}

static rt_status read_rows(const h5open *o, hid_t d, const char *path, int ndim,
                           const hsize_t *dims, int64_t first, int64_t rows, hid_t mtype,
                           void *buf)
{
    return read_hyperslab(o->src->file, d, path, ndim, dims, first, rows, mtype, buf);
}

static rt_status check_finite(const char *file, const char *path, const float *v, size_t n,
                              size_t width, int64_t first)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return RT_ERROR(RT_ERR_FORMAT, "%s: dataset '%s' has a non-finite value (%g) in "
                            "row %lld: fix the data (rtrain-data verify %s lists such rows)",
                            file, path, (double)v[i], (long long)(first + (int64_t)(i / width)),
                            file);
    return RT_OK;
}

/* The target rows: class labels (integral values >= 0, as int32) or finite
 * values. Fills the description's target fields. */
static rt_status read_targets(h5open *o, h5data *h, int64_t rows, int64_t nx,
                              rt_sample_desc *desc)
{
    const rt_data_source *src = o->src;
    int ndim;
    hsize_t dims[RT_SAMPLE_MAX_NDIM + 1];
    H5T_class_t cls;
    int u8;
    if (src->no_target) {   /* zero targets: one class 0 or one value 0.0 per sample */
        desc->target = src->target == RT_TARGET_CLASS ? RT_TARGET_CLASS : RT_TARGET_VECTOR;
        desc->num_classes = 1;
        desc->target_size = 1;
        h->target_size = 1;
        return alloc_named(&h->y, (size_t)rows, 4, src->file, "(no targets)");
    }
    RT_CHECK(open_dataset(o, src->y, "y", &o->y));
    RT_CHECK(dataset_shape(o, o->y, src->y, &ndim, dims));
    RT_CHECK(numeric_type(o, o->y, src->y, &cls, &u8));
    if (ndim < 1 || (int64_t)dims[0] != nx)
        return RT_ERROR(RT_ERR_FORMAT, "%s: x ('%s') has %lld rows but y ('%s') has %lld: "
                        "every sample needs one target", src->file, src->x, (long long)nx,
                        src->y, ndim < 1 ? 0LL : (long long)dims[0]);
    RT_CHECK(check_extent(src->file, src->y, ndim, dims, MAX_TARGET_VALUES));
    RT_CHECK(check_written(o, o->y, src->y));
    size_t width = 1;
    for (int i = 1; i < ndim; i++)
        width *= dims[i];
    if (ndim > 2 || (src->target == RT_TARGET_CLASS && width != 1))
        return RT_ERROR(RT_ERR_FORMAT, "%s: targets '%s' must be [N] %s, not %d-dimensional",
                        src->file, src->y, src->target == RT_TARGET_CLASS
                        ? "class labels (a classification loss)" : "or [N, K] values", ndim);
    double *v = NULL;
    RT_CHECK(alloc_named(&v, (size_t)rows * width, sizeof *v, src->file, src->y));
    rt_status st = read_rows(o, o->y, src->y, ndim, dims, h->first, rows, H5T_NATIVE_DOUBLE, v);
    if (st == RT_OK)
        st = alloc_named(&h->y, (size_t)rows * width, 4, src->file, src->y);
    int64_t max_label = 0;
    for (size_t i = 0; st == RT_OK && i < (size_t)rows * width; i++) {
        long long row = (long long)(h->first + (int64_t)(i / width));
        if (src->target != RT_TARGET_CLASS) {
            ((float *)h->y)[i] = (float)v[i];
            if (!isfinite(((float *)h->y)[i]))
                st = RT_ERROR(RT_ERR_FORMAT, "%s: target '%s' row %lld is %g (not a finite "
                              "float32)", src->file, src->y, row, v[i]);
        } else if (!(v[i] >= 0 && v[i] < 2147483647.0 && v[i] == floor(v[i]))) {
            st = RT_ERROR(RT_ERR_FORMAT, "%s: label '%s' row %lld is %g: a classifier "
                          "(train.loss = cross_entropy/nll) needs integer labels >= 0; use a "
                          "regression loss for values", src->file, src->y, row, v[i]);
        } else {
            ((int32_t *)h->y)[i] = (int32_t)v[i];
            max_label = (int64_t)v[i] > max_label ? (int64_t)v[i] : max_label;
        }
    }
    rt_free(v);
    desc->target = src->target == RT_TARGET_CLASS ? RT_TARGET_CLASS : RT_TARGET_VECTOR;
    desc->num_classes = (int)max_label + 1;
    desc->target_size = (int)width;
    h->target_size = width;
    return st;
}

/* Inputs held in memory: uint8 as is, anything else as float32. */
static rt_status read_inputs(h5open *o, h5data *h, int ndim, const hsize_t *dims, int64_t rows)
{
    size_t n = (size_t)rows * h->sample_size;   /* < 2^61: rows and values are bounded */
    RT_CHECK(alloc_named(&h->x, n, h->is_u8 ? 1 : sizeof(float), o->src->file, o->src->x));
    RT_CHECK(read_rows(o, o->x, o->src->x, ndim, dims, h->first, rows,
                       h->is_u8 ? H5T_NATIVE_UCHAR : H5T_NATIVE_FLOAT, h->x));
    if (!h->is_u8)
        RT_CHECK(check_finite(o->src->file, o->src->x, h->x, n, h->sample_size, h->first));
    return RT_OK;
}

/* Rows per streamed block: the chunk rows of a chunked dataset (a block is
 * then one chunk, decompressed once), else about STREAM_BLOCK_BYTES. */
static int64_t stream_block_rows(hid_t d, size_t row_bytes)
{
    hid_t dcpl = H5Dget_create_plist(d);
    hsize_t chunk[RT_SAMPLE_MAX_NDIM + 1];
    int64_t rows = 0;
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED &&
        H5Pget_chunk(dcpl, RT_SAMPLE_MAX_NDIM + 1, chunk) > 0)
        rows = (int64_t)chunk[0];
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (rows < 1)
        rows = STREAM_BLOCK_BYTES / (int64_t)row_bytes;
    if (rows > STREAM_MAX_BLOCK_BYTES / (int64_t)row_bytes)
        rows = STREAM_MAX_BLOCK_BYTES / (int64_t)row_bytes;
    return rows < 1 ? 1 : rows;
}

/* Streaming: the file and x stay open, with STREAM_BLOCKS block buffers. */
static rt_status keep_open(h5open *o, h5data *h, int ndim, const hsize_t *dims)
{
    h->fid = o->fid;
    h->dset = o->x;
    o->fid = o->x = -1;
    h->ndim = ndim;
    memcpy(h->dims, dims, (size_t)ndim * sizeof *dims);
    size_t row_bytes = h->sample_size * (h->is_u8 ? 1 : sizeof(float));
    h->block_rows = stream_block_rows(h->dset, row_bytes);
    for (int b = 0; b < STREAM_BLOCKS; b++)
        RT_CHECK(alloc_named(&h->blocks[b].data, (size_t)h->block_rows, row_bytes, h->file,
                             h->xname));
    return RT_OK;
}

/* The block holding file row `row`, read now if no buffer holds it. */
static rt_status stream_block_read(h5data *h, stream_block *b, int64_t first)
{
    int64_t rows = (int64_t)h->dims[0] - first < h->block_rows ? (int64_t)h->dims[0] - first
                                                               : h->block_rows;
    b->used = 0;   /* empty until read in full */
    rt_hdf5_lock();
    rt_status st = read_hyperslab(h->file, h->dset, h->xname, h->ndim, h->dims, first, rows,
                                  h->is_u8 ? H5T_NATIVE_UCHAR : H5T_NATIVE_FLOAT, b->data);
    rt_hdf5_unlock();
    RT_CHECK(st);
    if (!h->is_u8)
        RT_CHECK(check_finite(h->file, h->xname, b->data, (size_t)rows * h->sample_size,
                              h->sample_size, first));
    *b = (stream_block){first, rows, ++h->clock, b->data};
    return RT_OK;
}

static rt_status stream_block_of(h5data *h, int64_t row, const stream_block **out)
{
    int64_t first = row / h->block_rows * h->block_rows;
    stream_block *lru = &h->blocks[0];
    for (int b = 0; b < STREAM_BLOCKS; b++) {
        stream_block *s = &h->blocks[b];
        if (s->used && s->first == first) {
            s->used = ++h->clock;
            *out = s;
            return RT_OK;
        }
        if (s->used < lru->used)
            lru = s;
    }
    RT_CHECK(stream_block_read(h, lru, first));
    *out = lru;
    return RT_OK;
}

/* Row i of rows held as uint8 or float32, as float32 (once per instruction
 * set: RT_CPU_CLONES). */
RT_CPU_CLONES
static void copy_row(float *x, const void *rows, int64_t i, size_t n, int is_u8)
{
    if (is_u8) {
        const uint8_t *p = (const uint8_t *)rows + (size_t)i * n;
        for (size_t k = 0; k < n; k++)
            x[k] = p[k];
    } else {
        memcpy(x, (const float *)rows + (size_t)i * n, n * sizeof *x);
    }
}

static rt_status h5_fetch(void *impl, int64_t index, float *x, void *target)
{
    h5data *h = impl;
    memcpy(target, (const char *)h->y + (size_t)index * h->target_size * 4, h->target_size * 4);
    if (h->x) {
        copy_row(x, h->x, index, h->sample_size, h->is_u8);
        return RT_OK;
    }
    const stream_block *b = NULL;
    int64_t row = h->first + index;
    RT_CHECK(stream_block_of(h, row, &b));
    copy_row(x, b->data, row - b->first, h->sample_size, h->is_u8);
    return RT_OK;
}

/* Held rows only: a streamed row is read from the file when fetched. */
static const void *h5_row(void *impl, int64_t index, size_t *bytes)
{
    const h5data *h = impl;
    if (!h->x)
        return NULL;
    size_t value_bytes = h->is_u8 ? 1 : sizeof(float);
    *bytes = h->sample_size * value_bytes;
    return (const char *)h->x + (size_t)index * *bytes;
}

static void h5_destroy(void *impl)
{
    h5data *h = impl;
    if (!h)
        return;
    for (int b = 0; b < STREAM_BLOCKS; b++)
        rt_free(h->blocks[b].data);
    rt_hdf5_lock();
    if (h->dset >= 0)
        H5Dclose(h->dset);
    if (h->fid >= 0)
        H5Fclose(h->fid);
    rt_hdf5_unlock();
    if (h->shared)
        h->node_memory->release(h->node_memory->arg, h->shared);
    else
        rt_free(h->x);
    rt_free(h->y);
    rt_free(h);
}

static void h5_close(h5open *o)
{
    if (o->x >= 0)
        H5Dclose(o->x);
    if (o->y >= 0)
        H5Dclose(o->y);
    if (o->fid >= 0)
        H5Fclose(o->fid);
}

/* The sample description of x, the rows of this split, then targets and
 * the inputs (held by this rank, or streamed; the node cache reads them
 * in read_shared). */
static rt_status open_split(h5open *o, h5data *h, rt_sample_desc *desc)
{
    const rt_data_source *src = o->src;
    int ndim;
    hsize_t *dims = o->dims;
    H5T_class_t cls;
    RT_CHECK(open_file(o));
    RT_CHECK(open_dataset(o, src->x, "x", &o->x));
    RT_CHECK(dataset_shape(o, o->x, src->x, &ndim, dims));
    RT_CHECK(numeric_type(o, o->x, src->x, &cls, &h->is_u8));
    if (ndim < 1 || dims[0] == 0)
        return RT_ERROR(RT_ERR_FORMAT, "%s: dataset '%s' has no samples", src->file, src->x);
    RT_CHECK(check_extent(src->file, src->x, ndim, dims, MAX_SAMPLE_VALUES));
    RT_CHECK(check_written(o, o->x, src->x));
    desc->ndim = ndim > 1 ? ndim - 1 : 1;
    desc->shape[0] = 1;
    for (int i = 1; i < ndim; i++)
        desc->shape[i - 1] = (int64_t)dims[i];
    desc->dtype = h->is_u8 ? RT_INPUT_U8 : cls == H5T_FLOAT ? RT_INPUT_F32 : RT_INPUT_I32;
    h->sample_size = rt_sample_input_size(desc);
    int64_t begin, end;
    o->ndim = ndim;
    RT_CHECK(rt_data_source_rows(src, (int64_t)dims[0], &begin, &end));
    h->first = begin;
    o->rows = end - begin;
    RT_CHECK(read_targets(o, h, o->rows, (int64_t)dims[0], desc));
    if (src->cache == RT_CACHE_NONE)
        return keep_open(o, h, ndim, dims);
    if (src->cache == RT_CACHE_NODE && src->node_memory)
        return RT_OK;
    return read_inputs(o, h, ndim, dims, o->rows);
}

/* The node cache: allocated and agreed with `local` (this rank's open so
 * far), filled by the node's writer, agreed again. Every rank calls it. */
static rt_status read_shared(h5open *o, h5data *h, rt_status local)
{
    const rt_node_memory *nm = o->src->node_memory;
    size_t bytes = local == RT_OK ? (size_t)o->rows * h->sample_size * (h->is_u8 ? 1 : 4) : 0;
    void *ptr = NULL, *handle = NULL;
    int writer = 0;
    RT_CHECK(nm->alloc(nm->arg, local, bytes, &ptr, &writer, &handle));
    h->node_memory = nm;
    h->shared = handle;
    h->x = ptr;
    rt_status st = RT_OK;
    if (writer)
        st = read_rows(o, o->x, o->src->x, o->ndim, o->dims, h->first, o->rows,
                       h->is_u8 ? H5T_NATIVE_UCHAR : H5T_NATIVE_FLOAT, ptr);
    if (writer && st == RT_OK && !h->is_u8)
        st = check_finite(o->src->file, o->src->x, ptr, (size_t)o->rows * h->sample_size,
                          h->sample_size, h->first);
    return nm->ready(nm->arg, handle, st);
}

rt_status rt_hdf5_open(rt_dataset **out, const rt_data_source *src)
{
    *out = NULL;
    if (!src->file || !src->file[0])
        return RT_ERROR(RT_ERR_CONFIG, "data.format = \"hdf5\" needs data.train.file");
    h5data *h = NULL;
    rt_status st = rt_alloc(&h, 1, sizeof *h, "HDF5 dataset");
    if (st != RT_OK && src->cache == RT_CACHE_NODE && src->node_memory) {
        /* take part in the node's allocation all the same */
        const rt_node_memory *nm = src->node_memory;
        void *ptr, *handle;
        int writer;
        return nm->alloc(nm->arg, st, 0, &ptr, &writer, &handle);
    }
    RT_CHECK(st);
    h->fid = h->dset = -1;
    snprintf(h->file, sizeof h->file, "%s", src->file);
    snprintf(h->xname, sizeof h->xname, "%s", src->x ? src->x : "");
    /* Either way fetch may run on the loader's thread: held rows are only
     * read, and a streamed fetch takes the HDF5 lock for its reads. */
    static const rt_dataset_ops ops = {RT_DATASET_OPS_VERSION, RT_DATASET_THREAD_SAFE,
                                       h5_fetch, h5_destroy};
    h5open o = {.src = src, .fid = -1, .x = -1, .y = -1};
    rt_sample_desc desc = {0};
    rt_dataset *ds = NULL;
    rt_hdf5_lock();
    st = open_split(&o, h, &desc);
    /* The dataset is made before the node cache's collective steps, so that
     * a failure to make it is agreed there: a rank must never release the
     * node's memory (collective) alone. */
    if (st == RT_OK)
        st = rt_dataset_create(&ds, &ops, h, o.rows, &desc);
    if (src->cache == RT_CACHE_NODE && src->node_memory)
        st = read_shared(&o, h, st);   /* collective: also after a local failure */
    h5_close(&o);
    rt_hdf5_unlock();
    if (st != RT_OK) {
        if (ds)
            rt_dataset_free(ds);   /* owns h */
        else
            h5_destroy(h);
        return st;
    }
    if (!h->x)   /* cannot fail: block_rows >= 1 */
        (void)rt_dataset_set_block_rows(ds, h->block_rows);
    rt_dataset_set_row_fn(ds, h5_row);
    *out = ds;
    return RT_OK;
}
