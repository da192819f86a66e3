/* What librtrain calls in the CUDA library to implement the rt_gpu_*
 * functions of rtrain/backend.h (src/backend/gpu.c), declared without
 * CUDA types. Same contracts as those functions. */
#ifndef RTRAIN_BACKEND_CUDA_GPU_H
#define RTRAIN_BACKEND_CUDA_GPU_H

#include "rtrain/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

int rt_cuda_gpu_count(void);
rt_status rt_cuda_gpu_uuid(int device, unsigned char uuid[16]);
rt_status rt_cuda_gpu_open(int device, const rt_gpu_opts *opts);
void rt_cuda_gpu_close(void);
void rt_cuda_gpu_describe(char *buf, size_t size);
size_t rt_cuda_gpu_peak_bytes(void);

#ifdef __cplusplus
}
#endif
#endif
