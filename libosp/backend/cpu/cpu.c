/* cpu.c — the CPU backend's op table. */
#include "cpu_kernels.h"

#include <cblas.h>
#include <omp.h>

static const osp_backend cpu_backend = {
    .name = "cpu",
    .device = OSP_DEVICE_CPU,
    .kernels = {
        [OSP_OP_BINARY] = cpu_binary,
        [OSP_OP_UNARY] = cpu_unary,
        [OSP_OP_UNARY_BACKWARD] = cpu_unary_backward,
        [OSP_OP_FILL] = cpu_fill,
        [OSP_OP_CAST] = cpu_cast,
        [OSP_OP_COPY] = cpu_copy,
        [OSP_OP_REDUCE] = cpu_reduce,
        [OSP_OP_REDUCE_MAX_BACKWARD] = cpu_reduce_max_backward,
        [OSP_OP_CONCAT] = cpu_concat,
        [OSP_OP_MATMUL] = cpu_matmul,
        [OSP_OP_LINEAR] = cpu_linear,
        [OSP_OP_SOFTMAX] = cpu_softmax,
        [OSP_OP_SOFTMAX_BACKWARD] = cpu_softmax_backward,
        [OSP_OP_ATTENTION] = cpu_attention,
        [OSP_OP_ATTENTION_BACKWARD] = cpu_attention_backward,
        [OSP_OP_CONV] = cpu_conv,
        [OSP_OP_CONV_BACKWARD_DATA] = cpu_conv_backward_data,
        [OSP_OP_CONV_BACKWARD_WEIGHT] = cpu_conv_backward_weight,
        [OSP_OP_PAD] = cpu_pad,
        [OSP_OP_PAD_BACKWARD] = cpu_pad_backward,
        [OSP_OP_INTERPOLATE] = cpu_interpolate,
        [OSP_OP_INTERPOLATE_BACKWARD] = cpu_interpolate_backward,
        [OSP_OP_AVG_POOL] = cpu_avg_pool,
        [OSP_OP_AVG_POOL_BACKWARD] = cpu_avg_pool_backward,
        [OSP_OP_MAX_POOL] = cpu_max_pool,
        [OSP_OP_MAX_POOL_BACKWARD] = cpu_max_pool_backward,
        [OSP_OP_GROUP_NORM] = cpu_group_norm,
        [OSP_OP_GROUP_NORM_BACKWARD] = cpu_group_norm_backward,
        [OSP_OP_LAYER_NORM] = cpu_layer_norm,
        [OSP_OP_LAYER_NORM_BACKWARD] = cpu_layer_norm_backward,
        [OSP_OP_RMS_NORM] = cpu_rms_norm,
        [OSP_OP_RMS_NORM_BACKWARD] = cpu_rms_norm_backward,
        [OSP_OP_EMBEDDING] = cpu_embedding,
        [OSP_OP_EMBEDDING_BACKWARD] = cpu_embedding_backward,
        [OSP_OP_TIMESTEP_EMBEDDING] = cpu_timestep_embedding,
        [OSP_OP_RANDN] = cpu_randn,
        [OSP_OP_ADAMW] = cpu_adamw,
        [OSP_OP_EMA] = cpu_ema,
        [OSP_OP_CORRELATION] = cpu_correlation,
        [OSP_OP_GRID_SAMPLE] = cpu_grid_sample,
    },
};

const osp_backend *osp_backend_cpu(void) { return &cpu_backend; }

void osp_set_threads(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}
