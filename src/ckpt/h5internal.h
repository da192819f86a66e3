/* Internal to the checkpoint file layer (h5file.c, h5tensor.c, h5attr.c,
 * h5list.c): the open file handle and the helpers those files share.
 * See h5file.c for the design. */
#ifndef RTRAIN_CKPT_H5INTERNAL_H
#define RTRAIN_CKPT_H5INTERNAL_H

#include <hdf5.h>
#include "internal.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checksums are defined over little-endian float32 bytes: add a byte swap for this host"
#endif

#define CHECKSUM_ATTR "xxh3_64"

struct rt_ckpt_file {
    hid_t fid;
    hid_t dxpl;    /* collective transfers (parallel) or H5P_DEFAULT */
    hid_t lcpl;    /* creates missing intermediate groups */
    rt_comm *comm;
    int rank, world;
    size_t *counts, *displs;   /* [world] floats per rank, for the all-gather */
    int wb_fd;     /* a file being written: starts the writeback of each slice (-1: none) */
    char path[RT_CKPT_PATH_MAX];
};

/* Records code with "<path>: <what> (HDF5: <innermost reason>)" and clears
 * HDF5's error stack. */
rt_status h5_fail(const char *path, rt_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Turns off HDF5's own error printing (our messages replace it). */
void h5_quiet(void);
/* 1 if every component of the absolute path name exists (local step). */
rt_status h5_path_exists(rt_ckpt_file *f, const char *name, int *exists);

/* The end of a collective write of dataset `name`: closes the memory and
 * file spaces and the dataset (each when >= 0; a failed close is an
 * error unless st already is one) and agrees on the outcome. */
rt_status h5_write_done(rt_ckpt_file *f, const char *name, hid_t dset, hid_t space, hid_t mem,
                        rt_status st);

/* Starts the kernel's writeback of bytes [offset, offset + len) of the file
 * being written, without waiting for it (h5file.c). */
void h5_start_writeback(rt_ckpt_file *f, int64_t offset, int64_t len);

/* Opens float32 dataset name and reads its shape (local step); RT_ERR_FORMAT
 * naming the file when it is missing or not float32. */
rt_status h5_open_dataset(rt_ckpt_file *f, const char *name, hid_t *dset, int *ndim,
                          int64_t *shape);

/* As h5_open_dataset, for a float32 dataset (bytes 0) or a uint8 one (1). */
rt_status h5_open_typed(rt_ckpt_file *f, const char *name, int bytes, hid_t *dset, int *ndim,
                        int64_t *shape);

#endif
