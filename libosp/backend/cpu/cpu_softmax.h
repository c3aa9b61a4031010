/* cpu_softmax.h — row primitives of the softmax, shared by the softmax and
 * attention kernels (cpu_softmax.c).
 *
 * The exponential is a vectorisable polynomial (Cephes-style range
 * reduction, relative error below 1e-7); results below e^-87.3 flush to 0,
 * above e^88.3 become +Inf, NaN stays NaN. A row whose maximum is
 * -Inf (every entry -Inf, e.g. a fully masked attention row) gives NaN, as
 * PyTorch's softmax does. */
#ifndef OSP_CPU_SOFTMAX_H
#define OSP_CPU_SOFTMAX_H

#include <stdint.h>

/* Largest element of x[0..n) (-Inf for n = 0). */
float cpu_row_max(const float *x, int64_t n);
/* dst[i] = exp(src[i] - shift) (dst may be src); returns the sum of dst. */
float cpu_row_exp_sum(float *dst, const float *src, int64_t n, float shift);
/* x[i] *= s. */
void cpu_row_scale(float *x, int64_t n, float s);
/* Softmax backward of one row: gx = y · (gy - Σ gy·y) (gx may be gy). */
void cpu_row_softmax_backward(float *gx, const float *gy, const float *y, int64_t n);

#endif
