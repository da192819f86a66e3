/* Named float32 tensors and attributes in one HDF5 file, written and read
 * in parallel: the layer the checkpoint format is built on.
 *
 * Parallel mode (a communicator): MPI-IO driver, collective metadata reads
 * and writes, independent raw-data transfers: each rank writes (reads) its
 * own contiguous rows with no exchange between ranks, where MPI-IO's
 * collective buffering gathered them into aggregators first (ResNet18 and
 * its Adam state on 2 ranks: 0.38 s collective, 0.07-0.12 s independent,
 * bench/bench_ckpt). Every rank holds the full
 * replica of each tensor; rank r of W owns rows [R*r/W, R*(r+1)/W) of a
 * tensor with R rows (dimension 0; a scalar is one row), writes only those,
 * and on read reads only those, after which an all-gather over the
 * communicator (rt_comm_allgatherv) rebuilds the replica on every rank. A rank with no rows
 * still takes part in each collective transfer with an empty selection.
 * Datasets are contiguous with no fill, so the file holds exactly the data.
 *
 * Early writeback: a checkpoint ends with an fsync, which would otherwise
 * start writing every byte to the disk only once all were copied into the
 * page cache (the copy, then the disk, one after the other). So each rank,
 * right after writing its slice of a dataset, asks the kernel to start
 * writing that byte range out (sync_file_range(SYNC_FILE_RANGE_WRITE) on a
 * descriptor of its own: it starts the I/O and does not wait for it), and
 * the disk works on one dataset while the ranks copy the next. Durability
 * still comes only from the fsync of the whole file (manager.c); this
 * only moves work earlier. Where the call does not exist or fails, nothing
 * changes but the speed.
 *
 * Checksums: attribute "xxh3_64" of each dataset is XXH3_64bits over the
 * tensor's float32 bytes in row-major order (little-endian, as stored).
 * Every rank computes it over its replica (no communication; a helper
 * thread hashes a large tensor while the slice is written, h5tensor.c); on
 * read it is checked after the replica is rebuilt.
 *
 * Every HDF5 call is checked. HDF5's automatic error printing is turned
 * off; a failure becomes one rtrain message naming the file, the object
 * and the innermost reason HDF5 recorded. After each step that may fail
 * on one rank only, the ranks agree on the outcome (ckpt_agree) before the
 * next collective call, so a local failure never leaves ranks waiting.
 *
 * The file layer is split by concern: this file opens and closes files;
 * h5tensor.c reads and writes tensors; h5attr.c attributes; h5list.c
 * lists datasets and metrics. h5internal.h holds what they share. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <hdf5.h>
#include "rtrain/comm_mpi.h"
#include "h5internal.h"

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

rt_status h5_fail(const char *path, rt_status code, const char *fmt, ...)
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

void h5_quiet(void)
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

static rt_status file_new(rt_ckpt_file **out, rt_comm *comm, const char *path)
{
    rt_ckpt_file *f = NULL;
    RT_CHECK(rt_alloc(&f, 1, sizeof *f, "checkpoint file handle"));
    f->fid = f->lcpl = -1;
    f->wb_fd = -1;
    f->dxpl = H5P_DEFAULT;
    f->comm = comm;
    f->rank = ckpt_rank(comm);
    f->world = ckpt_world(comm);
    rt_status st = rt_fs_path(f->path, sizeof f->path, "%s", path);
    if (st == RT_OK)
        st = rt_alloc(&f->counts, (size_t)f->world, sizeof *f->counts, "checkpoint row counts");
    if (st == RT_OK)
        st = rt_alloc(&f->displs, (size_t)f->world, sizeof *f->displs, "checkpoint row offsets");
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
    if (f->wb_fd >= 0)
        close(f->wb_fd);
    if (f->lcpl >= 0)
        H5Pclose(f->lcpl);
    if (f->dxpl != H5P_DEFAULT)
        H5Pclose(f->dxpl);
    rt_free(f->counts);
    rt_free(f->displs);
    rt_free(f);
}

static rt_status file_open_locked(rt_ckpt_file **out, rt_comm *comm, const char *path,
                                  int create);

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
    if (f->comm == NULL) {
        if (H5Pset_fapl_sec2(fapl) < 0)
            return h5_fail(f->path, RT_ERR_IO, "cannot select the POSIX driver");
    } else {
        if (H5Pset_fapl_mpio(fapl, rt_comm_mpi(f->comm), MPI_INFO_NULL) < 0 ||
            H5Pset_all_coll_metadata_ops(fapl, 1) < 0 || H5Pset_coll_metadata_write(fapl, 1) < 0)
            return h5_fail(f->path, RT_ERR_IO, "cannot select the MPI-IO driver");
        f->dxpl = H5Pcreate(H5P_DATASET_XFER);
        if (f->dxpl < 0 || H5Pset_dxpl_mpio(f->dxpl, H5FD_MPIO_INDEPENDENT) < 0)
            return h5_fail(f->path, RT_ERR_IO, "cannot set collective transfers");
    }
    f->lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (f->lcpl < 0 || H5Pset_create_intermediate_group(f->lcpl, 1) < 0)
        return h5_fail(f->path, RT_ERR_IO, "cannot create link properties");
    return RT_OK;
}

/* The HDF5 lock (core.h) is held from here until rt_ckpt_file_close, or
 * released here on failure. */
static rt_status file_start(rt_ckpt_file **out, rt_comm *comm, const char *path, int create)
{
    *out = NULL;
    /* An existing file is checked against its manifest before HDF5 parses
     * a byte of it (rank 0 reads it; the others learn the outcome). */
    if (!create)
        RT_CHECK(ckpt_agree(comm, ckpt_rank(comm) == 0 ? ckpt_check_file(path) : RT_OK));
    rt_hdf5_lock();
    rt_status st = file_open_locked(out, comm, path, create);
    if (st != RT_OK)
        rt_hdf5_unlock();
    return st;
}

static rt_status file_open_locked(rt_ckpt_file **out, rt_comm *comm, const char *path,
                                  int create)
{
    *out = NULL;
    h5_quiet();
    rt_ckpt_file *f = NULL;
    /* Agreed before the collective open: a rank without its handle must
     * not leave the others inside H5Fcreate. */
    rt_status st = ckpt_agree(comm, file_new(&f, comm, path));
    if (st != RT_OK) {
        if (f)
            file_free(f);
        return st;
    }
    hid_t fapl = -1;
    st = make_props(f, &fapl);
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
    if (st == RT_OK && create)   /* -1 on failure: no early writeback, nothing else */
        f->wb_fd = open(path, O_RDONLY | O_CLOEXEC);
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

rt_status rt_ckpt_file_create(rt_ckpt_file **out, rt_comm *comm, const char *path)
{
    RT_CHECK(file_start(out, comm, path, 1));
    return RT_OK;
}

rt_status rt_ckpt_file_open(rt_ckpt_file **out, rt_comm *comm, const char *path)
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
    rt_comm *comm = f->comm;
    file_free(f);
    rt_hdf5_unlock();
    RT_CHECK(ckpt_agree(comm, st));
    return RT_OK;
}

void h5_start_writeback(rt_ckpt_file *f, int64_t offset, int64_t len)
{
#ifdef SYNC_FILE_RANGE_WRITE
    if (f->wb_fd >= 0 && offset >= 0 && len > 0)
        (void)sync_file_range(f->wb_fd, (off_t)offset, (off_t)len, SYNC_FILE_RANGE_WRITE);
#else
    (void)f;
    (void)offset;
    (void)len;
#endif
}

const char *rt_ckpt_file_path(const rt_ckpt_file *f) { return f->path; }
int ckpt_file_rank(const rt_ckpt_file *f) { return f->rank; }
