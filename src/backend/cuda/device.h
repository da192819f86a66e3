/* Internal to the CUDA library: the cuBLAS and cuDNN handles of the open
 * GPU and the error helpers of cuBLAS, cuDNN and NCCL (the CUDA runtime's
 * are in cuda_internal.h). Kept apart so that the kernel files need only
 * the CUDA runtime's header. */
#ifndef RTRAIN_BACKEND_CUDA_DEVICE_H
#define RTRAIN_BACKEND_CUDA_DEVICE_H

#include <cublas_v2.h>
#include <cudnn.h>
#include "backend/cuda/cuda_internal.h"

cublasHandle_t rt_cuda_cublas(void);
cudnnHandle_t rt_cuda_cudnn(void);
/* Frees linear.c's vector of ones (rt_gpu_close). */
void rt_cuda_linear_release(void);

/* RT_OK on success, else the library's message with the device and host
 * (RT_ERR_NOMEM for allocation failures, RT_ERR_DEVICE otherwise). The
 * status is passed as int so that each header stays optional. */
rt_status rt_cuda_cublas_status(int status, const char *what, const char *file, int line);
rt_status rt_cuda_cudnn_status(int status, const char *what, const char *file, int line);
rt_status rt_cuda_nccl_status(int result, const char *what, const char *file, int line);

#define RT_CUDA_LIB_CHECK_(fn, call, what)                                          \
    do {                                                                            \
        int rt_lib_s_ = (int)(call);                                                \
        if (rt_lib_s_ != 0)                                                         \
            return fn(rt_lib_s_, (what), __FILE__, __LINE__);                       \
    } while (0)
#define RT_CUBLAS_CHECK(call, what) RT_CUDA_LIB_CHECK_(rt_cuda_cublas_status, call, what)
#define RT_CUDNN_CHECK(call, what) RT_CUDA_LIB_CHECK_(rt_cuda_cudnn_status, call, what)

#endif
