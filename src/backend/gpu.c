/* The GPU functions of rtrain/backend.h. They live in librtrain, so a
 * program needs only -lrtrain; with the CUDA backend they call the CUDA
 * library (src/backend/cuda/gpu.h). In a build without it (./configure
 * found no CUDA, or --without-cuda) no GPU is ever visible, and opening
 * one says how to get a build that has them. */
#include <stdio.h>
#include <string.h>
#include "config.h"
#include "rtrain/backend.h"
#ifdef RT_HAVE_CUDA
#include "backend/cuda/gpu.h"

int rt_gpu_built(void) { return 1; }
int rt_gpu_count(void) { return rt_cuda_gpu_count(); }
rt_status rt_gpu_uuid(int device, unsigned char uuid[16]) { return rt_cuda_gpu_uuid(device, uuid); }
rt_status rt_gpu_open(int device, const rt_gpu_opts *opts) { return rt_cuda_gpu_open(device, opts); }
void rt_gpu_close(void) { rt_cuda_gpu_close(); }
void rt_gpu_describe(char *buf, size_t size) { rt_cuda_gpu_describe(buf, size); }
size_t rt_gpu_peak_bytes(void) { return rt_cuda_gpu_peak_bytes(); }

#else

int rt_gpu_built(void) { return 0; }
int rt_gpu_count(void) { return 0; }

rt_status rt_gpu_open(int device, const rt_gpu_opts *opts)
{
    (void)device;
    (void)opts;
    return RT_ERROR(RT_ERR_UNSUPPORTED, "this rtrain was built without the CUDA backend: "
                    "rebuild with ./configure --with-cuda (CUDA, cuDNN and NCCL installed) or "
                    "set scaling.use_gpu = false");
}

rt_status rt_gpu_uuid(int device, unsigned char uuid[16])
{
    memset(uuid, 0, 16);
    return rt_gpu_open(device, NULL);   /* its message */
}

void rt_gpu_close(void) {}
void rt_gpu_describe(char *buf, size_t size) { snprintf(buf, size, "no CUDA backend in this build"); }
size_t rt_gpu_peak_bytes(void) { return 0; }
#endif
