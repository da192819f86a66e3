/* The "cuda" backend's table: device memory through the CUDA runtime,
 * products through cuBLAS and cuDNN, everything else rtrain's own kernels
 * (kernels.cu, norm_loss.cu). The GPU is the one rt_gpu_open chose. */
#include "backend/cuda/cuda_internal.h"

const rt_backend rt_backend_cuda = {
    .abi_version = RT_BACKEND_ABI_VERSION,
    .name = "cuda",
    .flags = 0,   /* device memory: the host reads it only through download */

    .alloc = rt_cuda_alloc,
    .free = rt_cuda_free,
    .upload = rt_cuda_upload,
    .download = rt_cuda_download,
    .copy = rt_cuda_copy,
    .fill = rt_cuda_fill,
    .synchronize = rt_cuda_synchronize,

    .linear_forward = rt_cuda_linear_forward,
    .linear_backward = rt_cuda_linear_backward,

    .conv2d_plan = rt_cuda_conv2d_plan,
    .conv2d_plan_free = rt_cuda_conv2d_plan_free,
    .conv2d_forward = rt_cuda_conv2d_forward,
    .conv2d_backward = rt_cuda_conv2d_backward,

    .relu_forward = rt_cuda_relu_forward,
    .relu_backward = rt_cuda_relu_backward,
    .dropout_forward = rt_cuda_dropout_forward,
    .dropout_backward = rt_cuda_dropout_backward,
    .add = rt_cuda_add,

    .maxpool2d_forward = rt_cuda_maxpool2d_forward,
    .maxpool2d_backward = rt_cuda_maxpool2d_backward,
    .global_avgpool_forward = rt_cuda_global_avgpool_forward,
    .global_avgpool_backward = rt_cuda_global_avgpool_backward,

    .bn_sums = rt_cuda_bn_sums,
    .bn_train_stats = rt_cuda_bn_train_stats,
    .bn_eval_stats = rt_cuda_bn_eval_stats,
    .bn_normalize = rt_cuda_bn_normalize,
    .bn_backward_sums = rt_cuda_bn_backward_sums,
    .bn_backward_dx = rt_cuda_bn_backward_dx,

    .cross_entropy = rt_cuda_cross_entropy,
    .nll_loss = rt_cuda_nll_loss,
    .count_correct = rt_cuda_count_correct,
    .mse_loss = rt_cuda_mse_loss,
    .l1_loss = rt_cuda_l1_loss,
    .smooth_l1_loss = rt_cuda_smooth_l1_loss,
    .bce_logits_loss = rt_cuda_bce_logits_loss,
    .target_sums = rt_cuda_target_sums,

    .sgd_update = rt_cuda_sgd_update,
    .sgd_momentum_update = rt_cuda_sgd_momentum_update,
    .adam_update = rt_cuda_adam_update,
};
