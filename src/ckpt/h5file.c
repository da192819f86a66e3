/* Named float32 tensors and attributes in one HDF5 file, written and read
 * in parallel: the layer the checkpoint format is built on.
 *
 * Parallel mode (a communicator): MPI-IO driver, collective metadata reads
 * and writes, collective raw-data transfers. Every rank holds the full
 * replica of each tensor; rank r of W owns rows [R*r/W, R*(r+1)/W) of a
 * tensor with R rows (dimension 0; a scalar is one row), writes only those,
 * and on read reads only those, after which MPI_Allgatherv (rows as one
 * MPI datatype) rebuilds the replica on every rank. A rank with no rows
 * still takes part in each collective transfer with an empty selection.
 * Datasets are contiguous with no fill, so the file holds exactly the data.
 *
 * Checksums: attribute "xxh3_64" of each dataset is XXH3_64bits over the
 * tensor's float32 bytes in row-major order (little-endian, as stored).
 * Every rank computes it over its replica (no communication); on read it is
 * checked after the replica is rebuilt.
 *
 * Every HDF5 call is checked. HDF5's automatic error printing is turned
 * off; a failure becomes one rtrain message naming the file, the object
 * and the innermost reason HDF5 recorded. After each step that may fail
 * on one rank only, the ranks agree on the outcome (ckpt_agree) before the
 * next collective call, so a local failure never leaves ranks waiting. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <hdf5.h>
#include <xxhash.h>
#include "internal.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checksums are defined over little-endian float32 bytes: add a byte swap for this host"
#endif

#define CHECKSUM_ATTR "xxh3_64"

struct rt_ckpt_file {
    hid_t fid;
    hid_t dxpl;    /* collective transfers (parallel) or H5P_DEFAULT */
    hid_t lcpl;    /* creates missing intermediate groups */
    MPI_Comm comm;
    int rank, world;
    int *counts, *displs;   /* [world] rows per rank, for MPI_Allgatherv */
    char path[RT_CKPT_PATH_MAX];
};

/* ---- errors ------------------------------------------------------------------ */

typedef struct reason_buf { char text[384]; } reason_buf;

/* Walking downward ends at the innermost frame: the most specific reason
 * ("truncated file: eof = ...", "incorrect metadata checksum ..."). */
static herr_t innermost_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    reason_buf *r = data;
    if (e->desc && e->desc[0])
        snprintf(r->text, sizeof r->text, "%s", e->desc);
    return 0;
}

static rt_status h5_fail(const char *path, rt_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rt_status h5_fail(const char *path, rt_status code, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    reason_buf r = {"no detail recorded by HDF5"};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, innermost_cb, &r);
    H5Eclear2(H5E_DEFAULT);
    return RT_ERROR(code, "%s: %s (HDF5: %s)", path, what, r.text);
}

static void h5_quiet(void)
{
    /* Our messages replace HDF5's stack dumps on stderr. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void ckpt_format_shape(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "",
                                 (long long)shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

int64_t ckpt_file_size(const rt_ckpt_file *f)
{
    struct stat sb;
    return stat(f->path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* ---- open / close -------------------------------------------------------------- */

static rt_status file_new(rt_ckpt_file **out, MPI_Comm comm, const char *path)
{
    rt_ckpt_file *f = NULL;
    RT_CHECK(rt_alloc(&f, 1, sizeof *f, "checkpoint file handle"));
    f->fid = f->lcpl = -1;
    f->dxpl = H5P_DEFAULT;
    f->comm = comm;
    f->rank = ckpt_rank(comm);
    f->world = ckpt_world(comm);
    rt_status st = ckpt_path(f->path, sizeof f->path, "%s", path);
    if (st == RT_OK)
        st = rt_alloc(&f->counts, (size_t)f->world, sizeof(int), "checkpoint row counts");
    if (st == RT_OK)
        st = rt_alloc(&f->displs, (size_t)f->world, sizeof(int), "checkpoint row offsets");
    if (st != RT_OK) {
        rt_free(f->counts);
        rt_free(f);
        RT_CHECK(st);
    }
    *out = f;
    return RT_OK;
}

static void file_free(rt_ckpt_file *f)
{
    if (f->lcpl >= 0)
        H5Pclose(f->lcpl);
    if (f->dxpl != H5P_DEFAULT)
        H5Pclose(f->dxpl);
    rt_free(f->counts);
    rt_free(f->displs);
    rt_free(f);
}

/* File access and transfer properties for f's mode. The v1.8+ format
 * bounds give object headers and the superblock checksums of their own,
 * so corrupt metadata is detected by HDF5 as our checksums detect corrupt
 * data. */
static rt_status make_props(rt_ckpt_file *f, hid_t *fapl_out)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    *fapl_out = fapl;
    if (fapl < 0)
        return h5_fail(f->path, RT_ERR_IO, "cannot create file access properties");
    if (H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0)
        return h5_fail(f->path, RT_ERR_IO, "cannot set the file format version");
    if (f->comm == MPI_COMM_NULL) {
        if (H5Pset_fapl_sec2(fapl) < 0)
            return h5_fail(f->path, RT_ERR_IO, "cannot select the POSIX driver");
    } else {
        if (H5Pset_fapl_mpio(fapl, f->comm, MPI_INFO_NULL) < 0 ||
            H5Pset_all_coll_metadata_ops(fapl, 1) < 0 || H5Pset_coll_metadata_write(fapl, 1) < 0)
            return h5_fail(f->path, RT_ERR_IO, "cannot select the MPI-IO driver");
        f->dxpl = H5Pcreate(H5P_DATASET_XFER);
        if (f->dxpl < 0 || H5Pset_dxpl_mpio(f->dxpl, H5FD_MPIO_COLLECTIVE) < 0)
            return h5_fail(f->path, RT_ERR_IO, "cannot set collective transfers");
    }
    f->lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (f->lcpl < 0 || H5Pset_create_intermediate_group(f->lcpl, 1) < 0)
        return h5_fail(f->path, RT_ERR_IO, "cannot create link properties");
    return RT_OK;
}

static rt_status file_start(rt_ckpt_file **out, MPI_Comm comm, const char *path, int create)
{
    *out = NULL;
    h5_quiet();
    rt_ckpt_file *f = NULL;
    RT_CHECK(file_new(&f, comm, path));
    hid_t fapl = -1;
    rt_status st = make_props(f, &fapl);
    if (st == RT_OK) {
        f->fid = create ? H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
                        : H5Fopen(path, H5F_ACC_RDONLY, fapl);
        if (f->fid < 0)
            st = create ? h5_fail(path, RT_ERR_IO, "cannot create the checkpoint file")
                        : h5_fail(path, RT_ERR_FORMAT,
                                  "cannot open the checkpoint file (missing, truncated or "
                                  "not an HDF5 file)");
    }
    if (fapl >= 0)
        H5Pclose(fapl);
    st = ckpt_agree(comm, st);
    if (st != RT_OK) {
        if (f->fid >= 0)
            H5Fclose(f->fid);
        file_free(f);
        return st;
    }
    *out = f;
    return RT_OK;
}

rt_status rt_ckpt_file_create(rt_ckpt_file **out, MPI_Comm comm, const char *path)
{
    RT_CHECK(file_start(out, comm, path, 1));
    return RT_OK;
}

rt_status rt_ckpt_file_open(rt_ckpt_file **out, MPI_Comm comm, const char *path)
{
    RT_CHECK(file_start(out, comm, path, 0));
    return RT_OK;
}

rt_status rt_ckpt_file_close(rt_ckpt_file *f)
{
    if (!f)
        return RT_OK;
    rt_status st = RT_OK;
    if (H5Fclose(f->fid) < 0)
        st = h5_fail(f->path, RT_ERR_IO, "cannot close the file (data may be incomplete)");
    MPI_Comm comm = f->comm;
    file_free(f);
    RT_CHECK(ckpt_agree(comm, st));
    return RT_OK;
}

const char *rt_ckpt_file_path(const rt_ckpt_file *f) { return f->path; }
int ckpt_file_rank(const rt_ckpt_file *f) { return f->rank; }

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
static rt_status gather_rows(const rt_ckpt_file *f, const tensor_geom *g, float *data,
                             const char *name)
{
    if (f->comm == MPI_COMM_NULL || f->world == 1 || g->count == 0)
        return RT_OK;
    for (int r = 0; r < f->world; r++) {
        f->displs[r] = (int)row_begin(g, r, f->world);
        f->counts[r] = (int)(row_begin(g, r + 1, f->world) - (uint64_t)f->displs[r]);
    }
    MPI_Datatype row;
    if (MPI_Type_contiguous((int)g->row_size, MPI_FLOAT, &row) != MPI_SUCCESS ||
        MPI_Type_commit(&row) != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "cannot create an MPI row type reading %s", name);
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, row, data, f->counts, f->displs, row, f->comm);
    MPI_Type_free(&row);
    if (rc != MPI_SUCCESS)
        return RT_ERROR(RT_ERR_MPI, "MPI_Allgatherv of %s from %s failed", name, f->path);
    return RT_OK;
}

/* ---- tensors ------------------------------------------------------------------------ */

static rt_status create_dataset(rt_ckpt_file *f, const char *name, const tensor_geom *g,
                                hid_t *dset, hid_t *space)
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
    *dset = H5Dcreate2(f->fid, name, H5T_IEEE_F32LE, *space, f->lcpl, dcpl, H5P_DEFAULT);
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

rt_status rt_ckpt_write_tensor(rt_ckpt_file *f, const char *name, int ndim,
                               const int64_t *shape, const float *data)
{
    tensor_geom g;
    RT_CHECK(geom_init(&g, f, name, ndim, shape));   /* same arguments on every rank */
    static const float empty_buf[1];
    if (!data)
        data = empty_buf;
    hid_t dset = -1, space = -1, mem = -1;
    rt_status st = create_dataset(f, name, &g, &dset, &space);
    st = ckpt_agree(f->comm, st);
    if (st == RT_OK) {
        uint64_t off = 0;
        st = select_slice(f, &g, space, &mem, &off);
        /* Every rank calls H5Dwrite, also with an empty selection. */
        if (st == RT_OK && H5Dwrite(dset, H5T_NATIVE_FLOAT, mem, space, f->dxpl,
                                    data + off) < 0)
            st = h5_fail(f->path, RT_ERR_IO, "cannot write dataset %s (disk full?)", name);
        if (st == RT_OK && ckpt_fault_active("ckpt_fail_write", f->rank))
            st = RT_ERROR(RT_ERR_IO, "%s: cannot write dataset %s: injected failure "
                          "(RTRAIN_FAULT=ckpt_fail_write, test only)", f->path, name);
        st = ckpt_agree(f->comm, st);
    }
    if (st == RT_OK)
        st = ckpt_agree(f->comm, set_checksum(f, dset, name,
                                              XXH3_64bits(data, (size_t)g.count * 4)));
    if (mem >= 0)
        H5Sclose(mem);
    if (space >= 0)
        H5Sclose(space);
    if (dset >= 0 && H5Dclose(dset) < 0 && st == RT_OK)
        st = h5_fail(f->path, RT_ERR_IO, "cannot close dataset %s", name);
    RT_CHECK(ckpt_agree(f->comm, st));
    return RT_OK;
}

/* 1 if every component of an absolute path exists (H5Lexists needs the
 * parents to exist). */
static rt_status path_exists(rt_ckpt_file *f, const char *name, int *exists)
{
    *exists = 0;
    char buf[RT_CKPT_PATH_MAX];
    RT_CHECK(ckpt_path(buf, sizeof buf, "%s", name));
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
    rt_status st = name[0] == '/' ? path_exists(f, name, exists)
                                  : RT_ERROR(RT_ERR_INVALID_ARG, "%s: object name %s is "
                                             "not absolute (start it with /)", f->path, name);
    RT_CHECK(ckpt_agree(f->comm, st));
    return RT_OK;
}

/* Opens float dataset name and reads its shape (local step). */
static rt_status open_dataset(rt_ckpt_file *f, const char *name, hid_t *dset, int *ndim,
                              int64_t *shape)
{
    int exists = 0;
    RT_CHECK(path_exists(f, name, &exists));
    if (!exists)
        return RT_ERROR(RT_ERR_FORMAT, "%s has no dataset %s", f->path, name);
    *dset = H5Dopen2(f->fid, name, H5P_DEFAULT);
    if (*dset < 0)
        return h5_fail(f->path, RT_ERR_FORMAT, "%s is not a readable dataset", name);
    hid_t type = H5Dget_type(*dset);
    int ok_type = type >= 0 && H5Tget_class(type) == H5T_FLOAT && H5Tget_size(type) == 4;
    if (type >= 0)
        H5Tclose(type);
    if (!ok_type)
        return RT_ERROR(RT_ERR_FORMAT, "%s: dataset %s is not float32", f->path, name);
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

rt_status rt_ckpt_tensor_shape(rt_ckpt_file *f, const char *name, int *ndim,
                               int64_t shape[RT_CKPT_MAX_NDIM])
{
    hid_t dset = -1;
    rt_status st = open_dataset(f, name, &dset, ndim, shape);
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
                                 const float *data, uint64_t count)
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
    uint64_t sum = XXH3_64bits(data, (size_t)count * 4);
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
    rt_status st = open_dataset(f, name, &dset, &nd, got);
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
        st = gather_rows(f, &g, data, name);
    if (st == RT_OK)   /* identical replicas: every rank reaches the same verdict */
        st = verify_checksum(f, dset, name, data, g.count);
    if (mem >= 0)
        H5Sclose(mem);
    if (space >= 0)
        H5Sclose(space);
    if (dset >= 0)
        H5Dclose(dset);
    RT_CHECK(ckpt_agree(f->comm, st));
    return RT_OK;
}

/* ---- attributes ------------------------------------------------------------------------ */

static rt_status open_object(rt_ckpt_file *f, const char *obj, int create, hid_t *oid)
{
    int exists = 0;
    RT_CHECK(path_exists(f, obj, &exists));
    if (!exists && !create)
        return RT_ERROR(RT_ERR_FORMAT, "%s has no group %s", f->path, obj);
    if (!exists) {
        hid_t g = H5Gcreate2(f->fid, obj, f->lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0)
            return h5_fail(f->path, RT_ERR_IO, "cannot create group %s", obj);
        H5Gclose(g);
    }
    *oid = H5Oopen(f->fid, obj, H5P_DEFAULT);
    if (*oid < 0)
        return h5_fail(f->path, RT_ERR_FORMAT, "cannot open %s", obj);
    return RT_OK;
}

static rt_status attr_write(rt_ckpt_file *f, const char *obj, const char *attr, hid_t ftype,
                            hid_t mtype, const void *value)
{
    hid_t oid = -1, space = -1, aid = -1;
    rt_status st = open_object(f, obj, 1, &oid);
    if (st == RT_OK) {
        htri_t e = H5Aexists(oid, attr);
        if (e < 0 || (e > 0 && H5Adelete(oid, attr) < 0))
            st = h5_fail(f->path, RT_ERR_IO, "cannot replace attribute %s of %s", attr, obj);
    }
    if (st == RT_OK) {
        space = H5Screate(H5S_SCALAR);
        aid = space < 0 ? -1 : H5Acreate2(oid, attr, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
        if (aid < 0 || H5Awrite(aid, mtype, value) < 0)
            st = h5_fail(f->path, RT_ERR_IO, "cannot write attribute %s of %s", attr, obj);
    }
    if (aid >= 0 && H5Aclose(aid) < 0 && st == RT_OK)
        st = h5_fail(f->path, RT_ERR_IO, "cannot close attribute %s of %s", attr, obj);
    if (space >= 0)
        H5Sclose(space);
    if (oid >= 0)
        H5Oclose(oid);
    RT_CHECK(ckpt_agree(f->comm, st));
    return RT_OK;
}

rt_status rt_ckpt_attr_set_int(rt_ckpt_file *f, const char *obj, const char *attr, int64_t v)
{
    RT_CHECK(attr_write(f, obj, attr, H5T_STD_I64LE, H5T_NATIVE_INT64, &v));
    return RT_OK;
}

rt_status rt_ckpt_attr_set_uint(rt_ckpt_file *f, const char *obj, const char *attr, uint64_t v)
{
    RT_CHECK(attr_write(f, obj, attr, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v));
    return RT_OK;
}

rt_status rt_ckpt_attr_set_double(rt_ckpt_file *f, const char *obj, const char *attr, double v)
{
    RT_CHECK(attr_write(f, obj, attr, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v));
    return RT_OK;
}

static hid_t vlen_string_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        t = -1;
    }
    return t;
}

rt_status rt_ckpt_attr_set_string(rt_ckpt_file *f, const char *obj, const char *attr,
                                  const char *v)
{
    hid_t t = vlen_string_type();
    rt_status st = t < 0 ? h5_fail(f->path, RT_ERR_IO, "cannot create a string type") : RT_OK;
    st = ckpt_agree(f->comm, st);
    if (st == RT_OK)
        st = attr_write(f, obj, attr, t, t, &v);
    if (t >= 0)
        H5Tclose(t);
    RT_CHECK(st);
    return RT_OK;
}

/* Opens attribute attr of obj, checking its class; a local step. */
static rt_status attr_open(rt_ckpt_file *f, const char *obj, const char *attr,
                           H5T_class_t want, hid_t *oid, hid_t *aid)
{
    RT_CHECK(open_object(f, obj, 0, oid));
    htri_t e = H5Aexists(*oid, attr);
    if (e < 0)
        return h5_fail(f->path, RT_ERR_FORMAT, "cannot read the attributes of %s", obj);
    if (e == 0)
        return RT_ERROR(RT_ERR_FORMAT, "%s: %s has no attribute %s", f->path, obj, attr);
    *aid = H5Aopen(*oid, attr, H5P_DEFAULT);
    if (*aid < 0)
        return h5_fail(f->path, RT_ERR_FORMAT, "cannot open attribute %s of %s", attr, obj);
    hid_t type = H5Aget_type(*aid), space = H5Aget_space(*aid);
    H5T_class_t cls = type < 0 ? H5T_NO_CLASS : H5Tget_class(type);
    hssize_t npoints = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    if (cls != want || npoints != 1)
        return RT_ERROR(RT_ERR_FORMAT, "%s: attribute %s of %s has the wrong type or shape",
                        f->path, attr, obj);
    return RT_OK;
}

static rt_status attr_read(rt_ckpt_file *f, const char *obj, const char *attr,
                           H5T_class_t want, hid_t mtype, void *value)
{
    hid_t oid = -1, aid = -1;
    rt_status st = attr_open(f, obj, attr, want, &oid, &aid);
    if (st == RT_OK && H5Aread(aid, mtype, value) < 0)
        st = h5_fail(f->path, RT_ERR_FORMAT, "cannot read attribute %s of %s", attr, obj);
    if (aid >= 0)
        H5Aclose(aid);
    if (oid >= 0)
        H5Oclose(oid);
    RT_CHECK(ckpt_agree(f->comm, st));
    return RT_OK;
}

rt_status rt_ckpt_attr_get_int(rt_ckpt_file *f, const char *obj, const char *attr, int64_t *v)
{
    RT_CHECK(attr_read(f, obj, attr, H5T_INTEGER, H5T_NATIVE_INT64, v));
    return RT_OK;
}

rt_status rt_ckpt_attr_get_uint(rt_ckpt_file *f, const char *obj, const char *attr, uint64_t *v)
{
    RT_CHECK(attr_read(f, obj, attr, H5T_INTEGER, H5T_NATIVE_UINT64, v));
    return RT_OK;
}

rt_status rt_ckpt_attr_get_double(rt_ckpt_file *f, const char *obj, const char *attr, double *v)
{
    RT_CHECK(attr_read(f, obj, attr, H5T_FLOAT, H5T_NATIVE_DOUBLE, v));
    return RT_OK;
}

/* Variable-length strings are read through a pointer HDF5 allocates;
 * fixed-length ones (written by other tools) into a bounded buffer. */
static rt_status read_string(rt_ckpt_file *f, hid_t aid, const char *obj, const char *attr,
                             char *buf, size_t size)
{
    hid_t ftype = H5Aget_type(aid);
    if (ftype < 0)
        return h5_fail(f->path, RT_ERR_FORMAT, "cannot read the type of %s of %s", attr, obj);
    htri_t is_vlen = H5Tis_variable_str(ftype);
    size_t fixed = H5Tget_size(ftype);
    H5Tclose(ftype);
    const char *text = NULL;
    char *vlen = NULL, fixed_buf[1024];
    hid_t mtype = is_vlen > 0 ? vlen_string_type() : H5Tcopy(H5T_C_S1);
    if (mtype < 0 || is_vlen < 0 || (is_vlen == 0 && (fixed == 0 || fixed >= sizeof fixed_buf)))
        goto bad;
    if (is_vlen) {
        if (H5Aread(aid, mtype, &vlen) < 0)
            goto bad;
        text = vlen ? vlen : "";
    } else {
        if (H5Tset_size(mtype, fixed) < 0 || H5Aread(aid, mtype, fixed_buf) < 0)
            goto bad;
        fixed_buf[fixed] = '\0';
        text = fixed_buf;
    }
    H5Tclose(mtype);
    rt_status st = strlen(text) < size ? RT_OK
                   : RT_ERROR(RT_ERR_FORMAT, "%s: attribute %s of %s is too long (%zu bytes, "
                              "at most %zu)", f->path, attr, obj, strlen(text), size - 1);
    if (st == RT_OK)
        snprintf(buf, size, "%s", text);
    if (vlen)
        H5free_memory(vlen);
    return st;
bad:
    if (mtype >= 0)
        H5Tclose(mtype);
    return h5_fail(f->path, RT_ERR_FORMAT, "cannot read string attribute %s of %s", attr, obj);
}

rt_status rt_ckpt_attr_get_string(rt_ckpt_file *f, const char *obj, const char *attr,
                                  char *buf, size_t size)
{
    hid_t oid = -1, aid = -1;
    rt_status st = attr_open(f, obj, attr, H5T_STRING, &oid, &aid);
    if (st == RT_OK)
        st = read_string(f, aid, obj, attr, buf, size);
    if (aid >= 0)
        H5Aclose(aid);
    if (oid >= 0)
        H5Oclose(oid);
    RT_CHECK(ckpt_agree(f->comm, st));
    return RT_OK;
}

/* ---- listing ---------------------------------------------------------------------------- */

typedef struct name_list { char (*names)[RT_NAME_MAX * 2]; int n, cap; rt_status st; } name_list;

static herr_t collect_cb(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    (void)g;
    (void)info;
    name_list *l = data;
    if (strlen(name) >= sizeof l->names[0]) {
        l->st = RT_ERROR(RT_ERR_FORMAT, "object name %.64s... is too long", name);
        return -1;
    }
    if (l->n == l->cap) {
        if (l->cap >= 1 << 20) {
            l->st = RT_ERROR(RT_ERR_FORMAT, "a group holds more than 2^20 objects");
            return -1;
        }
        int ncap = l->cap ? 2 * l->cap : 64;
        char (*grown)[RT_NAME_MAX * 2] = NULL;
        l->st = rt_alloc(&grown, (size_t)ncap, sizeof *grown, "checkpoint name list");
        if (l->st != RT_OK)
            return -1;
        if (l->n)
            memcpy(grown, l->names, (size_t)l->n * sizeof *grown);
        rt_free(l->names);
        l->names = grown;
        l->cap = ncap;
    }
    snprintf(l->names[l->n++], sizeof l->names[0], "%s", name);
    return 0;
}

static rt_status visit_group(rt_ckpt_file *f, const char *group, rt_ckpt_tensor_fn fn, void *arg,
                             int depth)
{
    if (depth > 16)
        return RT_ERROR(RT_ERR_FORMAT, "%s: groups nested deeper than 16 levels at %s",
                        f->path, group);
    hid_t gid = H5Gopen2(f->fid, group, H5P_DEFAULT);
    if (gid < 0)
        return h5_fail(f->path, RT_ERR_FORMAT, "cannot open group %s", group);
    name_list l = {0};
    l.st = RT_OK;
    hsize_t idx = 0;
    herr_t rc = H5Literate(gid, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_cb, &l);
    H5Gclose(gid);
    rt_status st = l.st;
    if (st == RT_OK && rc < 0)
        st = h5_fail(f->path, RT_ERR_FORMAT, "cannot list group %s", group);
    for (int i = 0; st == RT_OK && i < l.n; i++) {
        char full[RT_CKPT_PATH_MAX];
        st = ckpt_path(full, sizeof full, "%s%s%s", group,
                       strcmp(group, "/") == 0 ? "" : "/", l.names[i]);
        if (st != RT_OK)
            break;
        hid_t oid = H5Oopen(f->fid, full, H5P_DEFAULT);
        if (oid < 0) {
            st = h5_fail(f->path, RT_ERR_FORMAT, "cannot open %s", full);
            break;
        }
        H5I_type_t kind = H5Iget_type(oid);
        H5Oclose(oid);
        if (kind == H5I_GROUP) {
            st = visit_group(f, full, fn, arg, depth + 1);
        } else if (kind == H5I_DATASET) {
            hid_t dset = -1;
            int nd = 0;
            int64_t shape[RT_CKPT_MAX_NDIM];
            st = open_dataset(f, full, &dset, &nd, shape);
            if (dset >= 0)
                H5Dclose(dset);
            if (st == RT_OK)
                st = fn(arg, full, nd, shape);
        }
    }
    rt_free(l.names);
    return st;
}

rt_status rt_ckpt_foreach_tensor(rt_ckpt_file *f, const char *under, rt_ckpt_tensor_fn fn,
                                 void *arg)
{
    if (f->comm != MPI_COMM_NULL)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_ckpt_foreach_tensor needs a file opened "
                        "with MPI_COMM_NULL (%s)", f->path);
    RT_CHECK(visit_group(f, under, fn, arg, 0));
    return RT_OK;
}

/* ---- metrics and group sizes ------------------------------------------------------------- */

static herr_t metric_name_cb(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)loc;
    (void)info;
    rt_ckpt_info *ci = data;
    size_t plen = strlen(CKPT_METRIC_PREFIX);
    if (strncmp(name, CKPT_METRIC_PREFIX, plen) != 0)
        return 0;
    if (ci->num_metrics >= RT_CKPT_MAX_METRICS ||
        strlen(name + plen) >= RT_CKPT_METRIC_NAME_MAX)
        return -1;
    snprintf(ci->metric_names[ci->num_metrics++], RT_CKPT_METRIC_NAME_MAX, "%s", name + plen);
    return 0;
}

rt_status ckpt_read_metrics(rt_ckpt_file *f, rt_ckpt_info *info)
{
    info->num_metrics = 0;
    hsize_t idx = 0;
    rt_status st = RT_OK;
    if (H5Aiterate2(f->fid, H5_INDEX_NAME, H5_ITER_INC, &idx, metric_name_cb, info) < 0)
        st = info->num_metrics >= RT_CKPT_MAX_METRICS
                 ? RT_ERROR(RT_ERR_FORMAT, "%s has more than %d metrics or a metric name "
                            "longer than %d bytes", f->path, RT_CKPT_MAX_METRICS,
                            RT_CKPT_METRIC_NAME_MAX - 1)
                 : h5_fail(f->path, RT_ERR_FORMAT, "cannot list the root attributes");
    RT_CHECK(ckpt_agree(f->comm, st));
    for (int i = 0; i < info->num_metrics; i++) {
        char attr[RT_CKPT_METRIC_NAME_MAX + 16];
        snprintf(attr, sizeof attr, "%s%s", CKPT_METRIC_PREFIX, info->metric_names[i]);
        RT_CHECK(rt_ckpt_attr_get_double(f, "/", attr, &info->metric_values[i]));
    }
    return RT_OK;
}

rt_status ckpt_group_count(rt_ckpt_file *f, const char *group, int64_t *count)
{
    *count = 0;
    H5G_info_t gi;
    hid_t gid = H5Gopen2(f->fid, group, H5P_DEFAULT);
    rt_status st = RT_OK;
    if (gid < 0 || H5Gget_info(gid, &gi) < 0)
        st = h5_fail(f->path, RT_ERR_FORMAT, "cannot open group %s", group);
    else
        *count = (int64_t)gi.nlinks;
    if (gid >= 0)
        H5Gclose(gid);
    RT_CHECK(ckpt_agree(f->comm, st));
    return RT_OK;
}
