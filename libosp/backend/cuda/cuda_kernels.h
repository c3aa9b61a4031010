/* cuda_kernels.h — the CUDA backend's kernels, one per op code (op.h gives
 * each node's inputs, outputs and parameters; the CPU kernel of the same
 * name in backend/cpu is the reference each one matches). Host-side ones
 * live in backend/cuda/, the rest in kernels/. float32 compute. */
#ifndef OSP_CUDA_KERNELS_H
#define OSP_CUDA_KERNELS_H

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* kernels/elementwise.cu */
osp_status cuda_binary(const osp_node *n);
osp_status cuda_unary(const osp_node *n);
osp_status cuda_unary_backward(const osp_node *n);
osp_status cuda_fill(const osp_node *n);
osp_status cuda_cast(const osp_node *n);
/* Strided device-to-device copy of src into dst (same shape; float dtypes
 * convert, others must match). */
osp_status cuda_copy_strided(const osp_node *n, osp_tensor *dst, const osp_tensor *src);
/* backend/cuda/cuda_copy.c: host<->device and device strided copies */
osp_status cuda_copy(const osp_node *n);
/* kernels/reduce.cu */
osp_status cuda_reduce(const osp_node *n);
osp_status cuda_reduce_max_backward(const osp_node *n);
osp_status cuda_softmax(const osp_node *n);
osp_status cuda_softmax_backward(const osp_node *n);
/* kernels/shape.cu */
osp_status cuda_concat(const osp_node *n);
osp_status cuda_pad(const osp_node *n);
osp_status cuda_pad_backward(const osp_node *n);
/* backend/cuda/cuda_gemm.c */
osp_status cuda_matmul(const osp_node *n);
osp_status cuda_linear(const osp_node *n);
/* backend/cuda/cuda_attention.c (+ kernels/attention.cu) */
osp_status cuda_attention(const osp_node *n);
osp_status cuda_attention_backward(const osp_node *n);
/* backend/cuda/cuda_conv.c (cuDNN) */
osp_status cuda_conv(const osp_node *n);
osp_status cuda_conv_backward_data(const osp_node *n);
osp_status cuda_conv_backward_weight(const osp_node *n);
/* kernels/norm.cu */
osp_status cuda_group_norm(const osp_node *n);
osp_status cuda_group_norm_backward(const osp_node *n);
osp_status cuda_layer_norm(const osp_node *n);
osp_status cuda_layer_norm_backward(const osp_node *n);
osp_status cuda_rms_norm(const osp_node *n);
osp_status cuda_rms_norm_backward(const osp_node *n);
/* kernels/resample.cu */
osp_status cuda_interpolate(const osp_node *n);
osp_status cuda_interpolate_backward(const osp_node *n);
osp_status cuda_avg_pool(const osp_node *n);
osp_status cuda_avg_pool_backward(const osp_node *n);
osp_status cuda_max_pool(const osp_node *n);
osp_status cuda_max_pool_backward(const osp_node *n);
/* kernels/optim.cu */
osp_status cuda_adamw(const osp_node *n);
osp_status cuda_ema(const osp_node *n);
/* kernels/embed.cu */
osp_status cuda_embedding(const osp_node *n);
osp_status cuda_embedding_backward(const osp_node *n);
osp_status cuda_timestep_embedding(const osp_node *n);
osp_status cuda_randn(const osp_node *n);
/* kernels/flow.cu */
osp_status cuda_correlation(const osp_node *n);
osp_status cuda_grid_sample(const osp_node *n);

/* ---- helpers the host-side kernels share ---- */
/* y[b, c, s] += bias[c] (elementwise.cu) */
osp_status cu_add_channel_bias(const osp_node *n, float *y, const float *bias, int64_t batch,
                               int64_t channels, int64_t spatial);
/* count elements of src (type st) converted into dst (type dt), as
 * core/dtype.c converts (elementwise.cu) */
osp_status cu_convert(const osp_node *n, void *dst, osp_dtype dt, const void *src, osp_dtype st,
                      int64_t count);
/* out[c] = Σ over b, s of x[b, c, s] (reduce.cu) */
osp_status cu_channel_sum(const osp_node *n, const float *x, float *out, int64_t batch,
                          int64_t channels, int64_t spatial);
/* y = softmax(scale·x + mask) per row of cols elements (reduce.cu); mask
 * may be NULL, else row r is query r % Lq of head bh0 + r / Lq (H heads)
 * and mask_step[4] its element steps along b, h, i, j (0 = broadcast). */
osp_status cu_softmax_rows(const osp_node *n, const float *x, float *y, int64_t rows,
                           int64_t cols, float scale, const float *mask,
                           const int64_t *mask_step, int64_t H, int64_t Lq, int64_t bh0);
osp_status cu_softmax_backward_rows(const osp_node *n, const float *gy, const float *y,
                                    float *gx, int64_t rows, int64_t cols);
/* Fused flash attention forward for head dims 64 and 72 (attention.cu) of
 * the ATTENTION node n: q, k, v read and o written through their batch,
 * head and row strides (unit stride along the head dim); the mask
 * contiguous, mask_step[4] its element steps along b, h, i, j (0 =
 * broadcast). OSP_ERR_RUNTIME when D has no instance (the caller takes the
 * GEMM path). */
bool cu_flash_supported(int64_t D, int64_t Dv);
osp_status cu_flash_attention(const osp_node *n, const int64_t *mask_step);

#ifdef __cplusplus
}
#endif

#endif
