/* psnr.c — PSNR per frame (spec/eval.md section 2; metrics.h). The
 * reference's numpy mean accumulates float32 squares pairwise; a double
 * accumulator of the same float32 squares agrees to ~1e-7 relative. */
#include "metrics.h"
#include "frames_check.h"

#include <math.h>

osp_status osp_psnr(const osp_tensor *x, const osp_tensor *y, double *out)
{
    if (metrics_check_frames("psnr", x, y))
        return osp_error_code();
    int64_t T = x->shape[0], n = x->shape[1] * x->shape[2] * x->shape[3];
    const float *a = osp_f32(x), *b = osp_f32(y);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; t++) {
        const float *ap = a + t * n, *bp = b + t * n;
        double sum = 0;
        for (int64_t i = 0; i < n; i++) {
            float d = ap[i] - bp[i];
            sum += (double)(d * d);
        }
        float mse = (float)(sum / (double)n); /* numpy's mean is float32 */
        out[t] = mse < 1e-10f ? OSP_PSNR_SENTINEL : 20.0 * log10(1.0 / sqrt((double)mse));
    }
    return OSP_OK;
}
