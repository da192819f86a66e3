/* Attributes of a checkpoint file: integers, doubles and UTF-8 strings on
 * the root or on groups (created when missing). Strings are written with
 * a fixed length (the text's bytes and a NUL): a variable-length string
 * lives in HDF5's global heap, which has no checksum, so a damaged byte
 * there could crash or hang a reader. Both kinds are read (checkpoints
 * written before stored variable-length strings). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hdf5.h>
#include "h5internal.h"

/* ---- attributes ------------------------------------------------------------------------ */

static rt_status open_object(rt_ckpt_file *f, const char *obj, int create, hid_t *oid)
{
    int exists = 0;
    RT_CHECK(h5_path_exists(f, obj, &exists));
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

static hid_t fixed_string_type(size_t bytes)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, bytes) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0 ||
                   H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        t = -1;
    }
    return t;
}

rt_status rt_ckpt_attr_set_string(rt_ckpt_file *f, const char *obj, const char *attr,
                                  const char *v)
{
    if (!v)
        v = "";
    hid_t t = fixed_string_type(strlen(v) + 1);
    rt_status st = t < 0 ? h5_fail(f->path, RT_ERR_IO, "cannot create a string type") : RT_OK;
    st = ckpt_agree(f->comm, st);
    if (st == RT_OK)
        st = attr_write(f, obj, attr, t, t, v);
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

/* The string attribute aid as a new NUL-terminated copy (free() it).
 * Variable-length strings are read through a pointer HDF5 allocates;
 * fixed-length ones (written by other tools) into a buffer of their size. */
static rt_status read_string_copy(rt_ckpt_file *f, hid_t aid, const char *obj,
                                  const char *attr, char **out)
{
    *out = NULL;
    hid_t ftype = H5Aget_type(aid);
    htri_t is_vlen = ftype < 0 ? -1 : H5Tis_variable_str(ftype);
    size_t fixed = ftype < 0 ? 0 : H5Tget_size(ftype);
    /* A fixed-length string is read as stored (HDF5 has no conversion
     * between ASCII and UTF-8 strings). */
    hid_t mtype = is_vlen > 0 ? vlen_string_type() : ftype < 0 ? -1 : H5Tcopy(ftype);
    if (ftype >= 0)
        H5Tclose(ftype);
    char *vlen = NULL;
    int ok = mtype >= 0 && is_vlen >= 0;
    if (ok && is_vlen) {
        ok = H5Aread(aid, mtype, &vlen) >= 0;
        *out = ok ? strdup(vlen ? vlen : "") : NULL;
    } else if (ok) {
        ok = fixed > 0 && H5Tset_size(mtype, fixed) >= 0 && (*out = calloc(fixed + 1, 1)) &&
             H5Aread(aid, mtype, *out) >= 0;
    }
    if (vlen)
        H5free_memory(vlen);
    if (mtype >= 0)
        H5Tclose(mtype);
    if (ok && *out)
        return RT_OK;
    free(*out);
    *out = NULL;
    return h5_fail(f->path, RT_ERR_FORMAT, "cannot read string attribute %s of %s", attr, obj);
}

/* Into a bounded buffer: a longer text is an error, not a truncation. */
static rt_status read_string(rt_ckpt_file *f, hid_t aid, const char *obj, const char *attr,
                             char *buf, size_t size)
{
    char *text = NULL;
    RT_CHECK(read_string_copy(f, aid, obj, attr, &text));
    rt_status st = strlen(text) < size ? RT_OK
                   : RT_ERROR(RT_ERR_FORMAT, "%s: attribute %s of %s is too long (%zu bytes, "
                              "at most %zu)", f->path, attr, obj, strlen(text), size - 1);
    if (st == RT_OK)
        snprintf(buf, size, "%s", text);
    free(text);
    return st;
}

/* Local step of rt_ckpt_attr_get_text: *text stays NULL when obj has no
 * such attribute. */
static rt_status read_text(rt_ckpt_file *f, const char *obj, const char *attr, char **text)
{
    hid_t oid = -1, aid = -1;
    RT_CHECK(open_object(f, obj, 0, &oid));
    htri_t e = H5Aexists(oid, attr);
    H5Oclose(oid);
    oid = -1;
    if (e < 0)
        return h5_fail(f->path, RT_ERR_FORMAT, "cannot read the attributes of %s", obj);
    if (e == 0)
        return RT_OK;
    rt_status st = attr_open(f, obj, attr, H5T_STRING, &oid, &aid);
    if (st == RT_OK)
        st = read_string_copy(f, aid, obj, attr, text);
    if (aid >= 0)
        H5Aclose(aid);
    if (oid >= 0)
        H5Oclose(oid);
    return st;
}

rt_status rt_ckpt_attr_get_text(rt_ckpt_file *f, const char *obj, const char *attr,
                                char **text)
{
    *text = NULL;
    rt_status st = read_text(f, obj, attr, text);
    st = ckpt_agree(f->comm, st);
    if (st != RT_OK) {
        free(*text);
        *text = NULL;
    }
    return st;
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
