/* psnr.c — PSNR's per-plane sums (spec/eval.md section 2;
 * plane_metrics.h). The reference's numpy mean accumulates float32
 * squares pairwise; a double accumulator of the same float32 squares (in a
 * few partial sums, so the loop vectorises) agrees to ~1e-7 relative.
 * 8-bit planes are summed exactly in integers instead, sum (u - v)^2 /
 * 255^2: each float32 square of (float32 u / 255 - float32 v / 255) is
 * within ~1e-7 relative of its exact value, so this too agrees with the
 * reference to ~1e-7 relative (4e-7 dB), and costs a fraction of the
 * float32 path. */
#include "plane_metrics.h"
#include "core/simd.h"
#include "metrics.h"

#include <math.h>

ROW_CLONES
static double sq_diff_sum_f32(const float *a, const float *b, int64_t n)
{
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++) {
        float d = a[i] - b[i];
        sum += (double)(d * d);
    }
    return sum;
}

/* Squares of 8-bit differences fit 16 bits: a block of 65536 of them fits
 * a 32-bit sum, which vectorises better than a 64-bit one. */
#define U8_BLOCK 65536

ROW_CLONES
static double sq_diff_sum_u8(const uint8_t *a, const uint8_t *b, int64_t n)
{
    uint64_t total = 0;
    for (int64_t i0 = 0; i0 < n; i0 += U8_BLOCK) {
        int64_t i1 = n - i0 < U8_BLOCK ? n : i0 + U8_BLOCK;
        uint32_t sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = i0; i < i1; i++) {
            int32_t d = (int32_t)a[i] - (int32_t)b[i];
            sum += (uint32_t)(d * d);
        }
        total += sum;
    }
    return (double)total / (255.0 * 255.0);
}

double metrics_sq_diff_sum(const void *a, const void *b, int64_t n, size_t elem)
{
    return elem == 1 ? sq_diff_sum_u8(a, b, n) : sq_diff_sum_f32(a, b, n);
}

double metrics_psnr_from_sum(double sum, int64_t n)
{
    float mse = (float)(sum / (double)n); /* numpy's mean is float32 */
    return mse < 1e-10f ? OSP_PSNR_SENTINEL : 20.0 * log10(1.0 / sqrt((double)mse));
}
