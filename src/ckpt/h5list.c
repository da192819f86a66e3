/* Listing a checkpoint file: every float dataset under a group (for the
 * verifier and the tools), the metric attributes of the root, and the size
 * of a group. */
#include <stdio.h>
#include <string.h>
#include <hdf5.h>
#include "h5internal.h"

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

/* 1 if dataset `name` holds bytes (uint8), the model of a library
 * (rt_ckpt_write_bytes), which tensor listings skip. */
static int is_bytes(rt_ckpt_file *f, const char *name)
{
    hid_t dset = H5Dopen2(f->fid, name, H5P_DEFAULT);
    hid_t type = dset < 0 ? -1 : H5Dget_type(dset);
    int bytes = type >= 0 && H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 1;
    if (type >= 0)
        H5Tclose(type);
    if (dset >= 0)
        H5Dclose(dset);
    return bytes;
}

/* Calls fn for every float32 dataset under group (bytes 0; a dataset of
 * another type is an error, byte datasets are skipped) or every byte
 * dataset (bytes 1). */
static rt_status visit_group(rt_ckpt_file *f, const char *group, rt_ckpt_tensor_fn fn, void *arg,
                             int depth, int bytes)
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
        st = rt_fs_path(full, sizeof full, "%s%s%s", group,
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
            st = visit_group(f, full, fn, arg, depth + 1, bytes);
        } else if (kind == H5I_DATASET && is_bytes(f, full) == bytes) {
            hid_t dset = -1;
            int nd = 0;
            int64_t shape[RT_CKPT_MAX_NDIM];
            st = h5_open_typed(f, full, bytes, &dset, &nd, shape);
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
    if (f->comm != NULL)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_ckpt_foreach_tensor needs a file opened "
                        "without a communicator (%s)", f->path);
    RT_CHECK(visit_group(f, under, fn, arg, 0, 0));
    return RT_OK;
}

rt_status ckpt_foreach_bytes(rt_ckpt_file *f, const char *under, rt_ckpt_tensor_fn fn,
                             void *arg)
{
    RT_CHECK(visit_group(f, under, fn, arg, 0, 1));
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
