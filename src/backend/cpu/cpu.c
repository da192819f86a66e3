/* The "cpu" backend's table: host memory, OpenBLAS products and loops split
 * over the backend's own threads (parallel.h explains why not OpenBLAS's
 * or OpenMP's); convolutions through oneDNN when built with it (conv2d.c). */
#include "backend/host.h"
#include "backend/cpu/kernels.h"

const rt_backend rt_backend_cpu = {
    .abi_version = RT_BACKEND_ABI_VERSION,
    .name = "cpu",
    .flags = RT_BACKEND_HOST_MEMORY,

    .alloc = rt_host_alloc,
    .free = rt_host_free,
    .upload = rt_host_copy,
    .download = rt_host_copy,
    .copy = rt_host_copy,
    .fill = rt_cpu_fill,
    .synchronize = rt_host_synchronize,

    .linear_forward = rt_cpu_linear_forward,
    .linear_backward = rt_cpu_linear_backward,

    .conv2d_plan = rt_cpu_conv2d_plan,
    .conv2d_plan_free = rt_cpu_conv2d_plan_free,
    .conv2d_forward = rt_cpu_conv2d_forward,
    .conv2d_backward = rt_cpu_conv2d_backward,

    .relu_forward = rt_cpu_relu_forward,
    .relu_backward = rt_cpu_relu_backward,
    .dropout_forward = rt_host_dropout_forward,
    .dropout_backward = rt_cpu_dropout_backward,
    .add = rt_cpu_add,

    .maxpool2d_forward = rt_cpu_maxpool2d_forward,
    .maxpool2d_backward = rt_cpu_maxpool2d_backward,
    .global_avgpool_forward = rt_cpu_global_avgpool_forward,
    .global_avgpool_backward = rt_cpu_global_avgpool_backward,

    .bn_sums = rt_cpu_bn_sums,
    .bn_train_stats = rt_host_bn_train_stats,
    .bn_eval_stats = rt_host_bn_eval_stats,
    .bn_normalize = rt_cpu_bn_normalize,
    .bn_backward_sums = rt_cpu_bn_backward_sums,
    .bn_backward_dx = rt_cpu_bn_backward_dx,

    .cross_entropy = rt_host_cross_entropy,
    .nll_loss = rt_host_nll_loss,
    .count_correct = rt_host_count_correct,
    .mse_loss = rt_host_mse_loss,
    .l1_loss = rt_host_l1_loss,
    .smooth_l1_loss = rt_host_smooth_l1_loss,
    .bce_logits_loss = rt_host_bce_logits_loss,
    .target_sums = rt_host_target_sums,

    .sgd_update = rt_cpu_sgd_update,
    .sgd_momentum_update = rt_cpu_sgd_momentum_update,
    .adam_update = rt_cpu_adam_update,
};
