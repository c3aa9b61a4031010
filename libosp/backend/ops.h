/* ops.h — the functions models call. Each validates its arguments (shapes,
 * dtypes, devices, overflow), allocates the output on the inputs' device,
 * and runs the op through the op table (op.h), recording it on the tape
 * when gradients are on.
 *
 * Conventions: every function returns a new tensor owned by the current
 * autorelease pool (core/tensor.h), or NULL with an osp error set. A NULL
 * input makes the result NULL without changing the error, so a chain can be
 * checked once. Float inputs of other dtypes (bf16/f16 weights) are widened
 * to the compute dtype on use; strided views are made contiguous on use.
 * Axes may be negative (counted from the end). */
#ifndef OSP_OPS_H
#define OSP_OPS_H

#include "op.h"

/* ---- elementwise (numpy broadcasting for binary ops) ---- */
osp_tensor *osp_add(osp_tensor *a, osp_tensor *b);
osp_tensor *osp_sub(osp_tensor *a, osp_tensor *b);
osp_tensor *osp_mul(osp_tensor *a, osp_tensor *b);
osp_tensor *osp_div(osp_tensor *a, osp_tensor *b);
osp_tensor *osp_unary(osp_tensor *x, osp_unary_kind kind, float alpha, float beta);
osp_tensor *osp_exp(osp_tensor *x);
osp_tensor *osp_log(osp_tensor *x);
osp_tensor *osp_tanh(osp_tensor *x);
osp_tensor *osp_sqrt(osp_tensor *x);
osp_tensor *osp_abs(osp_tensor *x);
osp_tensor *osp_square(osp_tensor *x);
osp_tensor *osp_sin(osp_tensor *x);
osp_tensor *osp_cos(osp_tensor *x);
osp_tensor *osp_sigmoid(osp_tensor *x);
osp_tensor *osp_silu(osp_tensor *x);
osp_tensor *osp_gelu_tanh(osp_tensor *x);
osp_tensor *osp_gelu_erf(osp_tensor *x);
osp_tensor *osp_relu(osp_tensor *x);
osp_tensor *osp_leaky_relu(osp_tensor *x, float negative_slope);
osp_tensor *osp_clamp(osp_tensor *x, float lo, float hi);
osp_tensor *osp_scale_shift(osp_tensor *x, float scale, float shift); /* scale*x + shift */

/* ---- creation, dtype, device ---- */
osp_tensor *osp_full(osp_dtype dtype, int ndim, const int64_t *shape, osp_device device,
                     double value);
osp_tensor *osp_full_like(osp_tensor *x, double value);
osp_tensor *osp_cast(osp_tensor *x, osp_dtype dtype);
osp_tensor *osp_contiguous(osp_tensor *x);
/* Copy to another device (identity reference when already there). */
osp_tensor *osp_to_device(osp_tensor *x, osp_device device);
/* Moves x's data to device in place: x keeps its identity (a model's
 * layers hold it) and gets contiguous storage there. Views of the old
 * storage keep it. */
osp_status osp_move_to_device(osp_tensor *x, osp_device device);
/* Contiguous, compute-dtype version of x for a kernel (used by frontends). */
osp_tensor *osp_prepare(osp_tensor *x);

/* ---- reductions over a set of axes (naxes = 0: all axes) ---- */
osp_tensor *osp_sum(osp_tensor *x, int naxes, const int *axes, bool keepdim);
osp_tensor *osp_mean(osp_tensor *x, int naxes, const int *axes, bool keepdim);
osp_tensor *osp_var(osp_tensor *x, int naxes, const int *axes, int correction, bool keepdim);
osp_tensor *osp_max(osp_tensor *x, int naxes, const int *axes, bool keepdim);
/* Sums x down to `shape` (the reverse of broadcasting; used by backward). */
osp_tensor *osp_sum_to_shape(osp_tensor *x, int ndim, const int64_t *shape);

/* ---- linear algebra ---- */
/* a [..., M, K] (trans_a: [..., K, M]), b [..., K, N] (trans_b: [..., N, K]);
 * batch dims broadcast. Result [..., M, N]. */
osp_tensor *osp_matmul(osp_tensor *a, osp_tensor *b, bool trans_a, bool trans_b);
/* x [..., I] · w[O, I]ᵀ + bias[O] (bias may be NULL). */
osp_tensor *osp_linear(osp_tensor *x, osp_tensor *w, osp_tensor *bias);
/* GELU-tanh(osp_linear(x, w, bias)): one op writing the result once when
 * gradients are off (a GEMM epilogue on the GPU), the two ops otherwise. */
osp_tensor *osp_linear_gelu(osp_tensor *x, osp_tensor *w, osp_tensor *bias);

/* ---- convolution (x [N, C, *S], w [O, C, *K], bias [O] or NULL) ---- */
/* Fills a window for nsp spatial dims: stride 1, pad 0, dilation 1. */
osp_window osp_window_default(int nsp);
osp_tensor *osp_conv(osp_tensor *x, osp_tensor *w, osp_tensor *bias, const osp_window *win);
/* Transposed convolution, w [C_in, C_out, *K] as PyTorch stores it;
 * output_padding adds to the far side of each output dim. */
osp_tensor *osp_conv_transpose(osp_tensor *x, osp_tensor *w, osp_tensor *bias,
                               const osp_window *win, const int64_t *output_padding);

/* ---- normalisation ---- */
osp_tensor *osp_group_norm(osp_tensor *x, int groups, osp_tensor *gamma, osp_tensor *beta,
                           float eps);
/* gamma, beta: [D], or one per sample, [N, 1, ..., 1, D] for x [N, ..., D]
 * (adaLN: LN(x)·(1 + scale) + shift in one pass). */
osp_tensor *osp_layer_norm(osp_tensor *x, osp_tensor *gamma, osp_tensor *beta, float eps);
/* x * rsqrt(mean(x², last axis) + eps) * gamma (T5's norm: no mean removal). */
osp_tensor *osp_rms_norm(osp_tensor *x, osp_tensor *gamma, float eps);

/* ---- attention ---- */
osp_tensor *osp_softmax(osp_tensor *x); /* over the last axis */
/* softmax(q kᵀ · scale + mask) v. q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv];
 * mask additive, broadcastable to [B,H,Lq,Lk], or NULL. Never materialises
 * the whole [Lq, Lk] score matrix on the CPU (query blocks). q, k, v may be
 * strided views with unit stride along D (the per-head views of a
 * linear's output [B, L, H·D]: no copy is made); o is stored in q's
 * memory order, so it is a view of [B, Lq, H, Dv] when q is one of
 * [B, Lq, H, D], and merging its heads back needs no copy either. */
osp_tensor *osp_attention(osp_tensor *q, osp_tensor *k, osp_tensor *v, osp_tensor *mask,
                          float scale);

/* ---- shape ---- */
osp_tensor *osp_reshape(osp_tensor *x, int ndim, const int64_t *shape); /* one -1 allowed */
osp_tensor *osp_permute(osp_tensor *x, const int *perm);                 /* a view */
osp_tensor *osp_transpose(osp_tensor *x, int axis0, int axis1);          /* a view */
osp_tensor *osp_slice(osp_tensor *x, int axis, int64_t start, int64_t end, int64_t step);
/* Broadcast view of x to shape (numpy rules; stride 0 on broadcast dims). */
osp_tensor *osp_expand(osp_tensor *x, int ndim, const int64_t *shape);
osp_tensor *osp_concat(int n, osp_tensor *const *xs, int axis);
/* Splits x along axis into n parts of the given sizes (views). Returns
 * OSP_OK and fills outs[0..n-1]. */
osp_status osp_split(osp_tensor *x, int axis, int n, const int64_t *sizes, osp_tensor **outs);
/* before/after: per dimension of x (ndim entries each). */
osp_tensor *osp_pad(osp_tensor *x, const int64_t *before, const int64_t *after,
                    osp_pad_mode mode, float value);

/* ---- resampling (x [N, C, *S], nsp = 1..3 spatial dims) ---- */
osp_tensor *osp_interpolate(osp_tensor *x, int nsp, const int64_t *out_size,
                            osp_interp_mode mode, bool align_corners);
/* Counts padded zeros in the average (PyTorch's count_include_pad=True). */
osp_tensor *osp_avg_pool(osp_tensor *x, const osp_window *win);
/* PyTorch MaxPool (floor mode, dilation 1; ops_pool_max.c): padded
 * positions never win, NaN propagates. */
osp_tensor *osp_max_pool(osp_tensor *x, const osp_window *win);

/* ---- lookup and embeddings ---- */
osp_tensor *osp_embedding(osp_tensor *table, osp_tensor *ids);
/* diffusers get_timestep_embedding: t [B] -> [B, dim]. */
osp_tensor *osp_timestep_embedding(osp_tensor *t, int dim, bool flip_sin_to_cos,
                                   float downscale_freq_shift, float scale, float max_period);

/* ---- in-place updates (ops_optim.c): contiguous f32 tensors on one
 * device, updated where they lie; never recorded on the tape. ---- */
/* One AdamW step of p with moments m, v and gradient g (NULL: zeros). */
osp_status osp_adamw_inplace(osp_tensor *p, osp_tensor *m, osp_tensor *v, osp_tensor *g,
                             const osp_adamw_scalars *c);
/* shadow <- shadow - weight·(shadow - p): an exponential moving average. */
osp_status osp_ema_inplace(osp_tensor *shadow, osp_tensor *p, float weight);
/* src (any device, any strides) into dst (contiguous, same shape and
 * dtype, any device). */
osp_status osp_copy_into(osp_tensor *dst, osp_tensor *src);

/* ---- optical flow (ops_flow.c). Forward only: evaluation ops, so the tape
 * refuses them when an input requires grad. ---- */
/* PWC-Net cost volume: a, b [N, C, H, W] -> [N, (2d+1)^2, H, W] with
 * out[(dy+d)(2d+1) + dx+d][y][x] = (1/C) sum_c a[c][y][x] b[c][y+dy][x+dx],
 * b = 0 outside the frame (d = max_displacement). */
osp_tensor *osp_correlation(osp_tensor *a, osp_tensor *b, int max_displacement);
/* PyTorch grid_sample, bilinear, zeros padding: x [N, C, H, W] sampled at
 * grid [N, Ho, Wo, 2] (normalised x, y in [-1, 1]) -> [N, C, Ho, Wo].
 * mask_threshold > 0 zeroes every output pixel whose in-range corner
 * weights sum to <= the threshold (PWC-Net's backwarp validity mask). */
osp_tensor *osp_grid_sample(osp_tensor *x, osp_tensor *grid, bool align_corners,
                            float mask_threshold);

#endif
