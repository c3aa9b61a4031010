/* cpu_kernels.h — the CPU reference kernels, one per op code (see op.h for
 * each node's inputs, outputs and parameters). float32 compute, OpenBLAS
 * sgemm for matrix products, OpenMP across cores. */
#ifndef OSP_CPU_KERNELS_H
#define OSP_CPU_KERNELS_H

#include "backend/backend.h"

/* cpu_elementwise.c */
osp_status cpu_binary(const osp_node *n);
osp_status cpu_unary(const osp_node *n);
osp_status cpu_unary_backward(const osp_node *n);
osp_status cpu_fill(const osp_node *n);
osp_status cpu_cast(const osp_node *n);
osp_status cpu_copy(const osp_node *n);
/* y = GELU-tanh(x) over total floats (y may be x), vectorised, in parallel. */
void cpu_gelu_tanh(float *y, const float *x, int64_t total);
/* cpu_reduce.c */
osp_status cpu_reduce(const osp_node *n);
osp_status cpu_reduce_max_backward(const osp_node *n);
/* cpu_shape.c */
osp_status cpu_concat(const osp_node *n);

/* cpu_linalg.c */
osp_status cpu_matmul(const osp_node *n);
osp_status cpu_linear(const osp_node *n);
/* cpu_softmax.c */
osp_status cpu_softmax(const osp_node *n);
osp_status cpu_softmax_backward(const osp_node *n);
/* cpu_attention.c */
osp_status cpu_attention(const osp_node *n);
osp_status cpu_attention_backward(const osp_node *n);

/* cpu_norm.c */
osp_status cpu_group_norm(const osp_node *n);
osp_status cpu_group_norm_backward(const osp_node *n);
osp_status cpu_layer_norm(const osp_node *n);
osp_status cpu_layer_norm_backward(const osp_node *n);
osp_status cpu_rms_norm(const osp_node *n);
osp_status cpu_rms_norm_backward(const osp_node *n);
/* cpu_embed.c */
osp_status cpu_embedding(const osp_node *n);
osp_status cpu_embedding_backward(const osp_node *n);
osp_status cpu_timestep_embedding(const osp_node *n);
/* cpu_random.c */
osp_status cpu_randn(const osp_node *n);
osp_status cpu_adamw(const osp_node *n);
osp_status cpu_ema(const osp_node *n);

/* cpu_conv.c */
osp_status cpu_conv(const osp_node *n);
/* cpu_conv_winograd.c: 3x3x3 stride-1 convs at least 16 channels wide,
 * forward and input gradient (OSP_CONV_WINOGRAD=0 in the environment
 * turns it off) */
bool cpu_conv_winograd_applies(const osp_tensor *w, const osp_window *win);
osp_status cpu_conv_winograd(const osp_node *n);
osp_status cpu_conv_winograd_backward_data(const osp_node *n);
osp_status cpu_conv_backward_data(const osp_node *n);
osp_status cpu_conv_backward_weight(const osp_node *n);
/* cpu_pad.c */
osp_status cpu_pad(const osp_node *n);
osp_status cpu_pad_backward(const osp_node *n);
/* cpu_interp.c */
osp_status cpu_interpolate(const osp_node *n);
osp_status cpu_interpolate_backward(const osp_node *n);
/* cpu_pool.c */
osp_status cpu_avg_pool(const osp_node *n);
osp_status cpu_avg_pool_backward(const osp_node *n);
/* cpu_maxpool.c */
osp_status cpu_max_pool(const osp_node *n);
osp_status cpu_max_pool_backward(const osp_node *n);
/* cpu_flow.c */
osp_status cpu_correlation(const osp_node *n);
osp_status cpu_grid_sample(const osp_node *n);

#endif
