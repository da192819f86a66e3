/* The CUDA library as librtrain sees it: one table of functions, the only
 * symbol librtrain looks up (rt_cuda_library_get) after loading the library
 * with dlopen on first use of a GPU (src/backend/gpu.c). Declared without
 * CUDA types, so that librtrain needs no GPU header, and loaded only when
 * asked for, so that a CPU run never maps cuDNN, cuBLAS or NCCL (about 150
 * MiB per rank) and a build with CUDA still runs where they are missing.
 *
 * The gpu_* entries are rt_gpu_* of rtrain/backend.h; the nccl_* entries
 * are those of nccl.h. The table's version changes with its layout. */
#ifndef RTRAIN_BACKEND_CUDA_LIBRARY_H
#define RTRAIN_BACKEND_CUDA_LIBRARY_H

#include "rtrain/backend.h"
#include "backend/cuda/nccl.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RT_CUDA_LIBRARY_VERSION 1
#define RT_CUDA_LIBRARY_SONAME "librtrain_cuda.so.0"

typedef struct rt_cuda_library {
    unsigned version;                /* RT_CUDA_LIBRARY_VERSION */
    unsigned backend_abi;            /* RT_BACKEND_ABI_VERSION it was built with */
    const rt_backend *backend;       /* the "cuda" table */

    int (*gpu_count)(void);
    rt_status (*gpu_uuid)(int device, unsigned char uuid[16]);
    rt_status (*gpu_open)(int device, const rt_gpu_opts *opts);
    void (*gpu_close)(void);
    void (*gpu_describe)(char *buf, size_t size);
    size_t (*gpu_peak_bytes)(void);

    rt_status (*nccl_unique_id)(unsigned char id[RT_NCCL_ID_BYTES]);
    rt_status (*nccl_create)(rt_nccl **out, const unsigned char id[RT_NCCL_ID_BYTES], int rank,
                             int size, double timeout_s);
    rt_status (*nccl_allreduce)(rt_nccl *n, void *buf, size_t count, int dtype, int op,
                                uintptr_t *handle);
    rt_status (*nccl_broadcast)(rt_nccl *n, void *buf, size_t count, int dtype, int root,
                                uintptr_t *handle);
    rt_status (*nccl_test)(rt_nccl *n, uintptr_t handle, int *done);
    void (*nccl_set_timeout)(rt_nccl *n, double timeout_s);
    void (*nccl_abort)(rt_nccl *n);
    void (*nccl_free)(rt_nccl *n);
} rt_cuda_library;

/* In the CUDA library: its table. */
const rt_cuda_library *rt_cuda_library_get(void);

/* In librtrain (gpu.c): the CUDA library's table, loading it on the first
 * call; RT_ERR_UNSUPPORTED with the reason (a build without CUDA, the
 * library or one of its CUDA libraries not found, a version mismatch) and
 * *out NULL otherwise. Not collective; thread-safe. */
rt_status rt_cuda_load(const rt_cuda_library **out);

#ifdef __cplusplus
}
#endif
#endif
