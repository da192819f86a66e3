/* The CUDA library's table for librtrain (library.h). */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/library.h"

extern const rt_backend rt_backend_cuda;   /* table.c */

static const rt_cuda_library library = {
    .version = RT_CUDA_LIBRARY_VERSION,
    .backend_abi = RT_BACKEND_ABI_VERSION,
    .backend = &rt_backend_cuda,
    .gpu_count = rt_cuda_gpu_count,
    .gpu_uuid = rt_cuda_gpu_uuid,
    .gpu_open = rt_cuda_gpu_open,
    .gpu_close = rt_cuda_gpu_close,
    .gpu_describe = rt_cuda_gpu_describe,
    .gpu_peak_bytes = rt_cuda_gpu_peak_bytes,
    .nccl_unique_id = rt_nccl_unique_id,
    .nccl_create = rt_nccl_create,
    .nccl_allreduce = rt_nccl_allreduce,
    .nccl_broadcast = rt_nccl_broadcast,
    .nccl_test = rt_nccl_test,
    .nccl_set_timeout = rt_nccl_set_timeout,
    .nccl_abort = rt_nccl_abort,
    .nccl_free = rt_nccl_free,
};

const rt_cuda_library *rt_cuda_library_get(void) { return &library; }
