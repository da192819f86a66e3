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
 * one row per fetch by hyperslab,
 * for data larger than memory. The parallel HDF5 build is not
 * thread-safe, so that dataset does not set RT_DATASET_THREAD_SAFE: the
 * loader then fetches on the training thread, which is also the only
 * thread that writes checkpoints, and no two HDF5 calls ever overlap.
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
    /* streaming (cache "none") */
    hid_t fid, dset, fspace, mspace;
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

/* Chunk cache of a streamed input dataset: room for the chunks a batch
 * touches (with data.shuffle_block, one or two per rank), so that a chunk
 * is decompressed once per block rather than once per sample. */
#define STREAM_CHUNK_CACHE_BYTES ((size_t)32 << 20)
#define STREAM_CHUNK_CACHE_SLOTS 10007   /* prime, as HDF5 advises */

/* A dataset of the file by path, with a readable (available) filter set. */
static rt_status open_dataset(h5open *o, const char *path, const char *role, hid_t *out)
{
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    if (dapl >= 0 && role[0] == 'x' && o->src->cache == RT_CACHE_NONE)
        H5Pset_chunk_cache(dapl, STREAM_CHUNK_CACHE_SLOTS, STREAM_CHUNK_CACHE_BYTES, 1.0);
    const char *file = o->src->file;
    htri_t exists = 0;
    if (!path || !path[0])
        return RT_ERROR(RT_ERR_CONFIG, "%s: no %s dataset named (data.train.%s)", file, role,
                        role);
    H5E_BEGIN_TRY {
        exists = H5Lexists(o->fid, path, H5P_DEFAULT);   /* fails on a missing parent group */
        *out = exists > 0 ? H5Dopen2(o->fid, path, dapl >= 0 ? dapl : H5P_DEFAULT) : -1;
    } H5E_END_TRY;
    if (dapl >= 0)
        H5Pclose(dapl);
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

/* Reads rows [first, first + rows) of d, whose rows have `width` values,
 * into buf as mtype. */
static rt_status read_rows(const h5open *o, hid_t d, const char *path, int ndim,
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
        return RT_ERROR(RT_ERR_FORMAT, "%s: cannot read dataset '%s' (the file is truncated "
                        "or damaged, or a value does not convert to %s)", o->src->file, path,
                        mtype == H5T_NATIVE_FLOAT ? "float32" : "its memory type");
    return RT_OK;
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

/* Streaming: the file and x stay open; one row's selection is prepared. */
static rt_status keep_open(h5open *o, h5data *h, int ndim, const hsize_t *dims)
{
    hsize_t count[RT_SAMPLE_MAX_NDIM + 1];
    for (int i = 0; i < ndim; i++)
        count[i] = dims[i];
    count[0] = 1;
    h->fid = o->fid;
    h->dset = o->x;
    o->fid = o->x = -1;
    h->fspace = H5Dget_space(h->dset);
    h->mspace = H5Screate_simple(ndim, count, NULL);
    if (h->fspace < 0 || h->mspace < 0)
        return RT_ERROR(RT_ERR_FORMAT, "%s: cannot select rows of '%s'", h->file, h->xname);
    return RT_OK;
}

static rt_status h5_fetch(void *impl, int64_t index, float *x, void *target)
{
    h5data *h = impl;
    memcpy(target, (const char *)h->y + (size_t)index * h->target_size * 4, h->target_size * 4);
    if (h->x && h->is_u8) {
        const uint8_t *p = (const uint8_t *)h->x + (size_t)index * h->sample_size;
        for (size_t i = 0; i < h->sample_size; i++)
            x[i] = p[i];
        return RT_OK;
    }
    if (h->x) {
        memcpy(x, (const float *)h->x + (size_t)index * h->sample_size,
               h->sample_size * sizeof *x);
        return RT_OK;
    }
    int ndim = H5Sget_simple_extent_ndims(h->fspace);
    hsize_t start[RT_SAMPLE_MAX_NDIM + 1] = {0}, count[RT_SAMPLE_MAX_NDIM + 1];
    H5Sget_simple_extent_dims(h->fspace, count, NULL);
    start[0] = (hsize_t)(h->first + index);
    count[0] = 1;
    herr_t rc = -1;
    H5E_BEGIN_TRY {
        if (ndim > 0 &&
            H5Sselect_hyperslab(h->fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
            rc = H5Dread(h->dset, H5T_NATIVE_FLOAT, h->mspace, h->fspace, H5P_DEFAULT, x);
    } H5E_END_TRY;
    if (rc < 0)
        return RT_ERROR(RT_ERR_FORMAT, "%s: cannot read row %lld of '%s' (truncated or "
                        "damaged file?)", h->file, (long long)(h->first + index), h->xname);
    return check_finite(h->file, h->xname, x, h->sample_size, h->sample_size, h->first + index);
}

static void h5_destroy(void *impl)
{
    h5data *h = impl;
    if (!h)
        return;
    if (h->mspace >= 0)
        H5Sclose(h->mspace);
    if (h->fspace >= 0)
        H5Sclose(h->fspace);
    if (h->dset >= 0)
        H5Dclose(h->dset);
    if (h->fid >= 0)
        H5Fclose(h->fid);
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
    if (src->cache == RT_CACHE_NONE) {
        h->is_u8 = 0;   /* streamed rows are read as float32 */
        return keep_open(o, h, ndim, dims);
    }
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
    h->fid = h->dset = h->fspace = h->mspace = -1;
    snprintf(h->file, sizeof h->file, "%s", src->file);
    snprintf(h->xname, sizeof h->xname, "%s", src->x ? src->x : "");
    h5open o = {.src = src, .fid = -1, .x = -1, .y = -1};
    rt_sample_desc desc = {0};
    st = open_split(&o, h, &desc);
    if (src->cache == RT_CACHE_NODE && src->node_memory)
        st = read_shared(&o, h, st);   /* collective: also after a local failure */
    h5_close(&o);
    static const rt_dataset_ops cached = {RT_DATASET_OPS_VERSION, RT_DATASET_THREAD_SAFE,
                                          h5_fetch, h5_destroy};
    static const rt_dataset_ops streamed = {RT_DATASET_OPS_VERSION, 0, h5_fetch, h5_destroy};
    if (st == RT_OK)
        st = rt_dataset_create(out, h->x ? &cached : &streamed, h, o.rows, &desc);
    if (st != RT_OK)
        h5_destroy(h);
    return st;
}
