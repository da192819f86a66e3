/* Tensors of a checkpoint file: each rank's slice of rows written and read
 * collectively, the replica rebuilt by an all-gather, the XXH3-64 checksum
 * attribute written and verified (the design is in h5file.c). */
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <hdf5.h>
#include <xxhash.h>
#include "h5internal.h"

/* ---- slices ---------------------------------------------------------------------- */

typedef struct tensor_geom {
    hsize_t dims[RT_CKPT_MAX_NDIM];
    int ndim;
    uint64_t rows, row_size, count;   /* a scalar: 1 row of 1 */
} tensor_geom;

static rt_status geom_init(tensor_geom *g, const rt_ckpt_file *f, const char *name, int ndim,
                           const int64_t *shape)
{
    if (ndim < 0 || ndim > RT_CKPT_MAX_NDIM)
        return RT_ERROR(RT_ERR_INVALID_ARG, "%s: tensor %s has %d dimensions (at most %d)",
                        f->path, name, ndim, RT_CKPT_MAX_NDIM);
    g->ndim = ndim;
    g->rows = ndim ? 0 : 1;
    g->row_size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (uint64_t)shape[i] > ((uint64_t)1 << 40))
            return RT_ERROR(RT_ERR_INVALID_ARG, "%s: tensor %s has dimension %d of size %lld",
                            f->path, name, i, (long long)shape[i]);
        g->dims[i] = (hsize_t)shape[i];
        if (i == 0)
            g->rows = (uint64_t)shape[0];
        else
            g->row_size *= (uint64_t)shape[i];
    }
    g->count = g->rows * g->row_size;
    if (g->count > ((uint64_t)1 << 40) || g->rows > INT_MAX || g->row_size > INT_MAX)
        return RT_ERROR(RT_ERR_INVALID_ARG,
                        "%s: tensor %s is too large (%llu rows of %llu floats; at most "
                        "2^31-1 of each)", f->path, name, (unsigned long long)g->rows,
                        (unsigned long long)g->row_size);
    return RT_OK;
}

static uint64_t row_begin(const tensor_geom *g, int rank, int world)
{
    return g->rows * (uint64_t)rank / (uint64_t)world;
}

/* Selects this rank's rows in file space `space` and creates the matching
 * memory space; *offset = first float of the slice in the replica. */
static rt_status select_slice(const rt_ckpt_file *f, const tensor_geom *g, hid_t space,
                              hid_t *mem, uint64_t *offset)
{
    uint64_t b = row_begin(g, f->rank, f->world), e = row_begin(g, f->rank + 1, f->world);
    hsize_t n = (hsize_t)((e - b) * g->row_size);
    *offset = b * g->row_size;
    hsize_t one = 1;
    *mem = H5Screate_simple(1, n ? &n : &one, NULL);
    if (*mem < 0)
        return h5_fail(f->path, RT_ERR_IO, "cannot create a memory dataspace");
    herr_t rc;
    if (n == 0) {
        rc = H5Sselect_none(space) < 0 ? -1 : H5Sselect_none(*mem);
    } else if (g->ndim == 0) {
        rc = H5Sselect_all(space);
    } else {
        hsize_t start[RT_CKPT_MAX_NDIM] = {0}, count[RT_CKPT_MAX_NDIM];
        for (int i = 0; i < g->ndim; i++)
            count[i] = g->dims[i];
        start[0] = (hsize_t)b;
        count[0] = (hsize_t)(e - b);
        rc = H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL);
    }
    if (rc < 0)
        return h5_fail(f->path, RT_ERR_IO, "cannot select this rank's rows");
    return RT_OK;
}

/* The replica from every rank's slice (in place). */
static rt_status gather_rows(const rt_ckpt_file *f, const tensor_geom *g, float *data)
{
    if (!f->comm || f->world == 1 || g->count == 0)
        return RT_OK;
    for (int r = 0; r < f->world; r++) {
        f->displs[r] = (size_t)(row_begin(g, r, f->world) * g->row_size);
        f->counts[r] = (size_t)(row_begin(g, r + 1, f->world) * g->row_size) - f->displs[r];
    }
    return rt_comm_allgatherv(f->comm, data, f->counts, f->displs, RT_DTYPE_FLOAT32);
}

/* ---- tensors ------------------------------------------------------------------------ */

static rt_status create_dataset(rt_ckpt_file *f, const char *name, const tensor_geom *g,
                                hid_t type, hid_t *dset, hid_t *space)
{
    *space = g->ndim ? H5Screate_simple(g->ndim, g->dims, NULL) : H5Screate(H5S_SCALAR);
    if (*space < 0)
        return h5_fail(f->path, RT_ERR_IO, "cannot create the dataspace of %s", name);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0 || H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0) {
        if (dcpl >= 0)
            H5Pclose(dcpl);
        return h5_fail(f->path, RT_ERR_IO, "cannot set the creation properties of %s", name);
    }
    *dset = H5Dcreate2(f->fid, name, type, *space, f->lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    if (*dset < 0)
        return h5_fail(f->path, RT_ERR_IO, "cannot create dataset %s", name);
    return RT_OK;
}

static rt_status set_checksum(rt_ckpt_file *f, hid_t dset, const char *name, uint64_t sum)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = space < 0 ? -1
                           : H5Acreate2(dset, CHECKSUM_ATTR, H5T_STD_U64LE, space, H5P_DEFAULT,
                                        H5P_DEFAULT);
    herr_t rc = attr < 0 ? -1 : H5Awrite(attr, H5T_NATIVE_UINT64, &sum);
    if (attr >= 0 && H5Aclose(attr) < 0)
        rc = -1;
    if (space >= 0)
        H5Sclose(space);
    if (rc < 0)
        return h5_fail(f->path, RT_ERR_IO, "cannot write the checksum of %s", name);
    return RT_OK;
}

/* The disk starts on this rank's slice now (h5file.c: early writeback).
 * The datasets are contiguous and allocated at creation, so the slice is
 * one byte range at the dataset's file address. */
static void start_slice_writeback(rt_ckpt_file *f, const tensor_geom *g, hid_t dset,
                                  uint64_t off, size_t elem)
{
    uint64_t e = row_begin(g, f->rank + 1, f->world) * g->row_size;
    haddr_t base = f->wb_fd >= 0 ? H5Dget_offset(dset) : HADDR_UNDEF;
    if (base != HADDR_UNDEF && e > off)
        h5_start_writeback(f, (int64_t)(base + off * elem), (int64_t)((e - off) * elem));
}

/* A tensor's checksum over the whole replica, computed by a helper thread
 * while this thread writes its slice (both only read the data): the hash
 * then costs no time of the save for tensors of HASH_THREAD_MIN bytes or
 * more (ResNet18's largest are 9 MiB; a thread start costs tens of
 * microseconds, less than hashing 4 MiB). Smaller ones, or when no thread
 * can be started, are hashed on this thread. */
#define HASH_THREAD_MIN ((size_t)4 << 20)

typedef struct hash_job {
    const void *data;
    size_t len;
    uint64_t sum;
    pthread_t thread;
    int threaded;
} hash_job;

static void *hash_run(void *arg)
{
    hash_job *j = arg;
    j->sum = XXH3_64bits(j->data, j->len);
    return NULL;
}

static void hash_start(hash_job *j, const void *data, size_t len)
{
    *j = (hash_job){.data = data, .len = len};
    j->threaded = len >= HASH_THREAD_MIN && pthread_create(&j->thread, NULL, hash_run, j) == 0;
}

static uint64_t hash_finish(hash_job *j)
{
    if (j->threaded)
        pthread_join(j->thread, NULL);
    else
        hash_run(j);
    return j->sum;
}

rt_status h5_write_done(rt_ckpt_file *f, const char *name, hid_t dset, hid_t space, hid_t mem,
                        rt_status st)
{
    if (mem >= 0)
        H5Sclose(mem);
    if (space >= 0)
        H5Sclose(space);
    if (dset >= 0 && H5Dclose(dset) < 0 && st == RT_OK)
        st = h5_fail(f->path, RT_ERR_IO, "cannot close dataset %s", name);
    RT_CHECK(ckpt_agree(f->comm, st));
    return RT_OK;
}

/* ---- writing datasets ------------------------------------------------------------
 * Each rank writes its slice of rows of a dataset (the whole replica is on
 * every rank), and the file gets the checksum of all of it. The rule
 * throughout: no rank makes a collective HDF5 call after a rank failed
 * (ckpt_agree after each step that can fail on one rank). Writing one
 * dataset at a time took four agreements per dataset (after creating it,
 * after the slices, after the checksum, after closing it); ResNet18 with
 * Adam is 250 datasets, and on 2 ranks the save took 0.116 s that way
 * against 0.084 s in batches (bench_ckpt, medians of alternated runs). So
 * a batch of datasets goes in phases:
 *   1. each dataset is created and the creation agreed, one by one
 *      (H5Dcreate is collective);
 *   2. every rank writes its slices of all of them (independent MPI-IO
 *      transfers, no collective HDF5 call among them), each dataset's
 *      checksum computed meanwhile, and the ranks agree once;
 *   3. each checksum attribute is written and agreed, one by one (H5Acreate
 *      is collective), only after every slice was written;
 *   4. every handle is closed, and the ranks agree once.
 * Two agreements per dataset and two per batch; a batch of one is the
 * old four. rt_ckpt_write_tensor and rt_ckpt_write_bytes are batches of
 * one, the model and each optimizer slot one batch each (state.c). */
typedef struct pending_dataset {
    char name[RT_CKPT_PATH_MAX];
    tensor_geom g;
    const void *data;          /* the whole replica */
    hid_t file_type, mem_type;
    size_t elem;               /* bytes per value */
    hid_t dset, space, mem;
    uint64_t sum;              /* the replica's checksum, from phase 2 */
} pending_dataset;

/* A dataset of `name` with nothing open yet; its geometry is the same on
 * every rank (the same arguments), so its failure needs no agreement. */
static rt_status pending_init(pending_dataset *d, rt_ckpt_file *f, const char *name, int ndim,
                              const int64_t *shape, const void *data, int bytes)
{
    static const float empty_buf[1];
    *d = (pending_dataset){.data = data ? data : empty_buf,
                           .file_type = bytes ? H5T_STD_U8LE : H5T_IEEE_F32LE,
                           .mem_type = bytes ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT,
                           .elem = bytes ? 1 : sizeof(float), .dset = -1, .space = -1,
                           .mem = -1};
    RT_CHECK(rt_fs_path(d->name, sizeof d->name, "%s", name));
    return geom_init(&d->g, f, name, ndim, shape);
}

/* This rank's slice of one dataset. */
static rt_status write_slice(rt_ckpt_file *f, pending_dataset *d)
{
    uint64_t off = 0;
    RT_CHECK(select_slice(f, &d->g, d->space, &d->mem, &off));
    /* Every rank calls H5Dwrite, also with an empty selection. */
    if (H5Dwrite(d->dset, d->mem_type, d->mem, d->space, f->dxpl,
                 (const char *)d->data + off * d->elem) < 0)
        return h5_fail(f->path, RT_ERR_IO, "cannot write dataset %s (disk full?)", d->name);
    start_slice_writeback(f, &d->g, d->dset, off, d->elem);
    if (ckpt_fault_active("ckpt_fail_write", f->rank))
        return RT_ERROR(RT_ERR_IO, "%s: cannot write dataset %s: injected failure "
                        "(RTRAIN_FAULT=ckpt_fail_write, test only)", f->path, d->name);
    return RT_OK;
}

/* Phase 2 for one dataset: the checksum is computed while the slice is
 * written (one helper thread at a time). */
static rt_status write_pending_slice(rt_ckpt_file *f, pending_dataset *d)
{
    hash_job sum;
    hash_start(&sum, d->data, (size_t)d->g.count * d->elem);
    rt_status st = write_slice(f, d);
    d->sum = hash_finish(&sum);   /* joined on every path */
    return st;
}

/* Phases 1 to 3. */
static rt_status write_phases(rt_ckpt_file *f, pending_dataset *d, int count)
{
    rt_status st = RT_OK;
    for (int i = 0; i < count && st == RT_OK; i++)
        st = ckpt_agree(f->comm, create_dataset(f, d[i].name, &d[i].g, d[i].file_type,
                                                &d[i].dset, &d[i].space));
    if (st == RT_OK) {   /* else every rank has the same failure already */
        for (int i = 0; i < count && st == RT_OK; i++)
            st = write_pending_slice(f, &d[i]);
        st = ckpt_agree(f->comm, st);
    }
    for (int i = 0; i < count && st == RT_OK; i++)
        st = ckpt_agree(f->comm, set_checksum(f, d[i].dset, d[i].name, d[i].sum));
    return st;
}

/* All four phases for `count` datasets whose geometry is set. Collective. */
static rt_status write_batch(rt_ckpt_file *f, pending_dataset *d, int count)
{
    rt_status st = write_phases(f, d, count);
    for (int i = 0; i < count; i++) {   /* phase 4 */
        if (d[i].mem >= 0)
            H5Sclose(d[i].mem);
        if (d[i].space >= 0)
            H5Sclose(d[i].space);
        if (d[i].dset >= 0 && H5Dclose(d[i].dset) < 0 && st == RT_OK)
            st = h5_fail(f->path, RT_ERR_IO, "cannot close dataset %s", d[i].name);
    }
    return ckpt_agree(f->comm, st);
}

rt_status rt_ckpt_write_tensor(rt_ckpt_file *f, const char *name, int ndim,
                               const int64_t *shape, const float *data)
{
    pending_dataset d;
    RT_CHECK(pending_init(&d, f, name, ndim, shape, data, 0));
    return write_batch(f, &d, 1);
}

rt_status rt_ckpt_write_bytes(rt_ckpt_file *f, const char *name, const void *data, size_t len)
{
    pending_dataset d;
    int64_t shape = (int64_t)len;
    RT_CHECK(pending_init(&d, f, name, 1, &shape, data, 1));
    return write_batch(f, &d, 1);
}

rt_status ckpt_write_tensors(rt_ckpt_file *f, int count, ckpt_tensor_fn describe, void *arg)
{
    if (count <= 0)
        return RT_OK;
    pending_dataset *d = NULL;
    RT_CHECK(ckpt_agree(f->comm, rt_alloc(&d, (size_t)count, sizeof *d,
                                          "the checkpoint's list of datasets")));
    rt_status st = RT_OK;
    int kept = 0;
    for (int i = 0; i < count && st == RT_OK; i++) {
        char name[RT_CKPT_PATH_MAX];
        int64_t shape[RT_CKPT_MAX_NDIM];
        int ndim = 0;
        const float *data = NULL;
        if (describe(arg, i, name, &ndim, shape, &data))   /* the same on every rank */
            st = pending_init(&d[kept++], f, name, ndim, shape, data, 0);
    }
    if (st == RT_OK)
        st = write_batch(f, d, kept);
    rt_free(d);
    return st;
}

/* 1 if every component of an absolute path exists (H5Lexists needs the
 * parents to exist). */
rt_status h5_path_exists(rt_ckpt_file *f, const char *name, int *exists)
{
    *exists = 0;
    char buf[RT_CKPT_PATH_MAX];
    RT_CHECK(rt_fs_path(buf, sizeof buf, "%s", name));
    if (strcmp(buf, "/") == 0) {
        *exists = 1;
        return RT_OK;
    }
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        htri_t e = H5Lexists(f->fid, buf, H5P_DEFAULT);
        *p = saved;
        if (e < 0)
            return h5_fail(f->path, RT_ERR_FORMAT, "cannot look up %s", name);
        if (e == 0 || saved == '\0') {
            *exists = e > 0;
            return RT_OK;
        }
    }
}

rt_status rt_ckpt_exists(rt_ckpt_file *f, const char *name, int *exists)
{
    rt_status st = name[0] == '/' ? h5_path_exists(f, name, exists)
                                  : RT_ERROR(RT_ERR_INVALID_ARG, "%s: object name %s is "
                                             "not absolute (start it with /)", f->path, name);
    RT_CHECK(ckpt_agree(f->comm, st));
    return RT_OK;
}

/* Opens dataset name, float32 or (bytes) uint8, and reads its shape (local step). */
rt_status h5_open_typed(rt_ckpt_file *f, const char *name, int bytes, hid_t *dset, int *ndim,
                        int64_t *shape)
{
    int exists = 0;
    RT_CHECK(h5_path_exists(f, name, &exists));
    if (!exists)
        return RT_ERROR(RT_ERR_FORMAT, "%s has no dataset %s", f->path, name);
    *dset = H5Dopen2(f->fid, name, H5P_DEFAULT);
    if (*dset < 0)
        return h5_fail(f->path, RT_ERR_FORMAT, "%s is not a readable dataset", name);
    hid_t type = H5Dget_type(*dset);
    int ok_type = type >= 0 && H5Tget_class(type) == (bytes ? H5T_INTEGER : H5T_FLOAT) &&
                  H5Tget_size(type) == (bytes ? 1 : 4);
    if (type >= 0)
        H5Tclose(type);
    if (!ok_type)
        return RT_ERROR(RT_ERR_FORMAT, "%s: dataset %s is not %s", f->path, name,
                        bytes ? "bytes (uint8)" : "float32");
    hid_t space = H5Dget_space(*dset);
    int nd = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    hsize_t dims[H5S_MAX_RANK];
    if (nd >= 0 && nd <= RT_CKPT_MAX_NDIM && H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        nd = -1;
    if (space >= 0)
        H5Sclose(space);
    if (nd < 0)
        return h5_fail(f->path, RT_ERR_FORMAT, "cannot read the shape of %s", name);
    if (nd > RT_CKPT_MAX_NDIM)
        return RT_ERROR(RT_ERR_FORMAT, "%s: dataset %s has %d dimensions (at most %d)",
                        f->path, name, nd, RT_CKPT_MAX_NDIM);
    *ndim = nd;
    for (int i = 0; i < nd; i++)
        shape[i] = (int64_t)dims[i];
    return RT_OK;
}

rt_status h5_open_dataset(rt_ckpt_file *f, const char *name, hid_t *dset, int *ndim,
                          int64_t *shape)
{
    return h5_open_typed(f, name, 0, dset, ndim, shape);
}

rt_status rt_ckpt_tensor_shape(rt_ckpt_file *f, const char *name, int *ndim,
                               int64_t shape[RT_CKPT_MAX_NDIM])
{
    hid_t dset = -1;
    rt_status st = h5_open_dataset(f, name, &dset, ndim, shape);
    if (dset >= 0)
        H5Dclose(dset);
    RT_CHECK(ckpt_agree(f->comm, st));
    return RT_OK;
}

static rt_status check_shape(const rt_ckpt_file *f, const char *name, int nd, const int64_t *got,
                             int ndim, const int64_t *want)
{
    int same = nd == ndim;
    for (int i = 0; same && i < nd; i++)
        same = got[i] == want[i];
    if (same)
        return RT_OK;
    char a[128], b[128];
    ckpt_format_shape(a, sizeof a, nd, got);
    ckpt_format_shape(b, sizeof b, ndim, want);
    return RT_ERROR(RT_ERR_FORMAT, "%s: dataset %s has shape %s, expected %s", f->path, name,
                    a, b);
}

static rt_status verify_checksum(rt_ckpt_file *f, hid_t dset, const char *name,
                                 const void *data, uint64_t bytes)
{
    uint64_t stored = 0;
    htri_t has = H5Aexists(dset, CHECKSUM_ATTR);
    if (has < 0)
        return h5_fail(f->path, RT_ERR_FORMAT, "cannot read the attributes of %s", name);
    if (!has)
        return RT_ERROR(RT_ERR_FORMAT, "%s: dataset %s has no %s checksum attribute", f->path,
                        name, CHECKSUM_ATTR);
    hid_t attr = H5Aopen(dset, CHECKSUM_ATTR, H5P_DEFAULT);
    herr_t rc = attr < 0 ? -1 : H5Aread(attr, H5T_NATIVE_UINT64, &stored);
    if (attr >= 0)
        H5Aclose(attr);
    if (rc < 0)
        return h5_fail(f->path, RT_ERR_FORMAT, "cannot read the checksum of %s", name);
    uint64_t sum = XXH3_64bits(data, (size_t)bytes);
    if (sum != stored)
        return RT_ERROR(RT_ERR_FORMAT,
                        "%s: checksum mismatch in dataset %s (stored %016llx, computed "
                        "%016llx): the file is corrupt", f->path, name,
                        (unsigned long long)stored, (unsigned long long)sum);
    return RT_OK;
}

rt_status rt_ckpt_read_tensor(rt_ckpt_file *f, const char *name, int ndim,
                              const int64_t *shape, float *data)
{
    tensor_geom g;
    RT_CHECK(geom_init(&g, f, name, ndim, shape));
    hid_t dset = -1, space = -1, mem = -1;
    int nd = 0;
    int64_t got[RT_CKPT_MAX_NDIM];
    rt_status st = h5_open_dataset(f, name, &dset, &nd, got);
    if (st == RT_OK)
        st = check_shape(f, name, nd, got, ndim, shape);
    st = ckpt_agree(f->comm, st);
    if (st == RT_OK) {
        uint64_t off = 0;
        static float empty_buf[1];
        space = H5Dget_space(dset);
        st = space < 0 ? h5_fail(f->path, RT_ERR_FORMAT, "cannot read the dataspace of %s", name)
                       : select_slice(f, &g, space, &mem, &off);
        float *dst = g.count ? data + off : empty_buf;
        if (st == RT_OK && H5Dread(dset, H5T_NATIVE_FLOAT, mem, space, f->dxpl, dst) < 0)
            st = h5_fail(f->path, RT_ERR_FORMAT, "cannot read dataset %s", name);
        st = ckpt_agree(f->comm, st);
    }
    if (st == RT_OK)
        st = gather_rows(f, &g, data);
    if (st == RT_OK)   /* identical replicas: every rank reaches the same verdict */
        st = verify_checksum(f, dset, name, data, g.count * 4);
    if (mem >= 0)
        H5Sclose(mem);
    if (space >= 0)
        H5Sclose(space);
    if (dset >= 0)
        H5Dclose(dset);
    RT_CHECK(ckpt_agree(f->comm, st));
    return RT_OK;
}

/* ---- byte datasets ------------------------------------------------------------------ */

/* Opens byte dataset name and allocates its size (local step). */
static rt_status open_bytes(rt_ckpt_file *f, const char *name, hid_t *dset, char **data,
                            size_t *len)
{
    int nd = 0;
    int64_t shape[RT_CKPT_MAX_NDIM];
    RT_CHECK(h5_open_typed(f, name, 1, dset, &nd, shape));
    if (nd != 1 || shape[0] > ckpt_file_size(f))
        return RT_ERROR(RT_ERR_FORMAT, "%s: dataset %s is not a byte string that fits in the "
                        "file: the file is corrupt", f->path, name);
    *len = (size_t)shape[0];
    return rt_alloc(data, *len + 1, 1, name);
}

/* Every rank reads all of it (a model's bytes are small next to tensors),
 * in one collective read, and checks it. */
rt_status rt_ckpt_read_bytes(rt_ckpt_file *f, const char *name, char **data, size_t *len)
{
    hid_t dset = -1;
    *data = NULL;
    *len = 0;
    rt_status st = ckpt_agree(f->comm, open_bytes(f, name, &dset, data, len));
    if (st == RT_OK) {
        if (H5Dread(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, f->dxpl, *data) < 0)
            st = h5_fail(f->path, RT_ERR_FORMAT, "cannot read dataset %s", name);
        if (st == RT_OK)
            st = verify_checksum(f, dset, name, *data, (uint64_t)*len);
        st = ckpt_agree(f->comm, st);
    }
    if (dset >= 0)
        H5Dclose(dset);
    if (st != RT_OK) {
        rt_free(*data);
        *data = NULL;
        *len = 0;
    }
    return st;
}
