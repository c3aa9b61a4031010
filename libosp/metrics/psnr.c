/* psnr.c — PSNR per frame (spec/eval.md section 2; metrics.h). The
 * reference's numpy mean accumulates float32 squares pairwise; a double
 * accumulator of the same float32 squares (in a few partial sums, so the
 * loop vectorises) agrees to ~1e-7 relative. */
#include "metrics.h"
#include "core/simd.h"
#include "frames_check.h"

#include <math.h>

/* Sum of the float32 squares of the float32 differences a - b. */
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

/* The same on 8-bit pixels, each read as the reference does. */
ROW_CLONES
static double sq_diff_sum_u8(const uint8_t *a, const uint8_t *b, int64_t n)
{
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++) {
        float d = osp_unit_u8(a[i]) - osp_unit_u8(b[i]);
        sum += (double)(d * d);
    }
    return sum;
}

osp_status osp_psnr(const osp_tensor *x, const osp_tensor *y, double *out)
{
    if (metrics_check_frames("psnr", x, y))
        return osp_error_code();
    int64_t T = x->shape[0], n = x->shape[1] * x->shape[2] * x->shape[3];
    bool u8 = x->dtype == OSP_U8;
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; t++) {
        double sum = u8 ? sq_diff_sum_u8((const uint8_t *)osp_data(x) + t * n,
                                         (const uint8_t *)osp_data(y) + t * n, n)
                        : sq_diff_sum_f32(osp_f32(x) + t * n, osp_f32(y) + t * n, n);
        float mse = (float)(sum / (double)n); /* numpy's mean is float32 */
        out[t] = mse < 1e-10f ? OSP_PSNR_SENTINEL : 20.0 * log10(1.0 / sqrt((double)mse));
    }
    return OSP_OK;
}
