/* Tables of rows in a file of the checkpoint layer, written in pieces: a
 * dataset [rows] or [rows, cols] of float32 or int64 is created once, then
 * each call writes every rank's own block of consecutive rows (any block,
 * possibly empty), collectively. rtrain-predict writes its predictions so,
 * one global batch at a time. No checksum: the rows are results, not
 * state to restore. */
#include <hdf5.h>
#include "h5internal.h"

static hid_t file_type(rt_dtype t)
{
    return t == RT_DTYPE_INT64 ? H5T_STD_I64LE : H5T_IEEE_F32LE;
}

static hid_t mem_type(rt_dtype t)
{
    return t == RT_DTYPE_INT64 ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
}

static rt_status check_type(const rt_ckpt_file *f, const char *name, rt_dtype t)
{
    if (t != RT_DTYPE_FLOAT32 && t != RT_DTYPE_INT64)
        return RT_ERROR(RT_ERR_INVALID_ARG, "%s: rows of %s must be float32 or int64",
                        f->path, name);
    return RT_OK;
}

rt_status rt_ckpt_create_rows(rt_ckpt_file *f, const char *name, rt_dtype dtype, int64_t rows,
                              int64_t cols)
{
    rt_status st = check_type(f, name, dtype);
    if (st == RT_OK && (rows < 0 || cols < 0))
        st = RT_ERROR(RT_ERR_INVALID_ARG, "%s: %s of %lld rows of %lld values", f->path, name,
                      (long long)rows, (long long)cols);
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
    hid_t space = -1, dset = -1;
    if (st == RT_OK && (space = H5Screate_simple(cols ? 2 : 1, dims, NULL)) < 0)
        st = h5_fail(f->path, RT_ERR_IO, "cannot create the dataspace of %s", name);
    if (st == RT_OK) {
        dset = H5Dcreate2(f->fid, name, file_type(dtype), space, f->lcpl, H5P_DEFAULT,
                          H5P_DEFAULT);
        if (dset < 0)
            st = h5_fail(f->path, RT_ERR_IO, "cannot create dataset %s", name);
    }
    if (dset >= 0 && H5Dclose(dset) < 0 && st == RT_OK)
        st = h5_fail(f->path, RT_ERR_IO, "cannot close dataset %s", name);
    if (space >= 0)
        H5Sclose(space);
    RT_CHECK(ckpt_agree(f->comm, st));
    return RT_OK;
}

/* Rows [first, first + n) of dset's file space selected, and a memory
 * space of as many values. */
static rt_status select_rows(rt_ckpt_file *f, const char *name, hid_t dset, int64_t first,
                             int64_t n, hid_t *space, hid_t *mem)
{
    *space = H5Dget_space(dset);
    hsize_t dims[2] = {0, 1};
    int nd = *space < 0 ? -1 : H5Sget_simple_extent_dims(*space, dims, NULL);
    if (nd < 1 || nd > 2)
        return h5_fail(f->path, RT_ERR_IO, "cannot read the shape of %s", name);
    hsize_t cols = nd == 2 ? dims[1] : 1;
    if (first < 0 || n < 0 || (hsize_t)(first + n) > dims[0])
        return RT_ERROR(RT_ERR_INVALID_ARG, "%s: rows %lld..%lld of %s, which has %llu",
                        f->path, (long long)first, (long long)(first + n), name,
                        (unsigned long long)dims[0]);
    hsize_t count = n ? (hsize_t)n * cols : 1;
    *mem = H5Screate_simple(1, &count, NULL);
    if (*mem < 0)
        return h5_fail(f->path, RT_ERR_IO, "cannot create a memory dataspace");
    hsize_t start[2] = {(hsize_t)first, 0}, block[2] = {(hsize_t)n, cols};
    herr_t rc = n == 0 ? (H5Sselect_none(*space) < 0 ? -1 : H5Sselect_none(*mem))
                       : H5Sselect_hyperslab(*space, H5S_SELECT_SET, start, NULL, block, NULL);
    if (rc < 0)
        return h5_fail(f->path, RT_ERR_IO, "cannot select rows of %s", name);
    return RT_OK;
}

rt_status rt_ckpt_write_rows(rt_ckpt_file *f, const char *name, rt_dtype dtype, int64_t first,
                             int64_t n, const void *data)
{
    static const int64_t empty[1];
    rt_status st = check_type(f, name, dtype);
    hid_t dset = st == RT_OK ? H5Dopen2(f->fid, name, H5P_DEFAULT) : -1, space = -1, mem = -1;
    if (st == RT_OK && dset < 0)
        st = h5_fail(f->path, RT_ERR_IO, "cannot open dataset %s", name);
    if (st == RT_OK)
        st = select_rows(f, name, dset, first, n, &space, &mem);
    /* Every rank calls H5Dwrite, also with an empty selection. */
    if (st == RT_OK && H5Dwrite(dset, mem_type(dtype), mem, space, f->dxpl,
                                n && data ? data : empty) < 0)
        st = h5_fail(f->path, RT_ERR_IO, "cannot write rows of %s (disk full?)", name);
    return h5_write_done(f, name, dset, space, mem, st);
}
