/* ssim.c — SSIM per frame (spec/eval.md section 3; metrics.h).
 *
 * The 11x11 window is the outer product of a 1-D Gaussian, so each of the
 * five filtered planes (a, b, a^2, b^2, ab) is computed separably over the
 * valid region: a horizontal pass over every row, then a vertical pass.
 * Everything is double, as in the reference (which filters the whole
 * frame with OpenCV and crops 5 pixels from each side, so its border mode
 * never shows); separable and direct correlation agree to ~1e-16. */
#include "metrics.h"
#include "frames_check.h"

#include <math.h>
#include <stdlib.h>

#define WIN 11
#define HALF 5

/* OpenCV getGaussianKernel(11, 1.5, CV_64F): exp(-x^2 / (2 sigma^2)) for
 * x = i - 5, scaled by 1 / (their sum). */
static void gaussian_window(double g[WIN])
{
    double sum = 0, sigma = 1.5;
    for (int i = 0; i < WIN; i++) {
        double x = i - (WIN - 1) * 0.5;
        g[i] = exp(-0.5 / (sigma * sigma) * x * x);
        sum += g[i];
    }
    sum = 1.0 / sum;
    for (int i = 0; i < WIN; i++)
        g[i] *= sum;
}

enum { SIG_A, SIG_B, SIG_AA, SIG_BB, SIG_AB, SIGNALS };

/* Mean SSIM map of one plane pair (H, W >= 11); rows: H x (W-10) x 5
 * doubles of scratch. */
static double ssim_plane(const float *pa, const float *pb, int64_t H, int64_t W,
                         const double g[WIN], double *rows)
{
    const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;
    int64_t Wv = W - 2 * HALF, Hv = H - 2 * HALF;
    for (int64_t r = 0; r < H; r++) {
        const float *ra = pa + r * W, *rb = pb + r * W;
        double *out = rows + r * Wv * SIGNALS;
        for (int64_t j = 0; j < Wv; j++) {
            double s[SIGNALS] = {0};
            for (int k = 0; k < WIN; k++) {
                double a = ra[j + k], b = rb[j + k];
                s[SIG_A] += g[k] * a;
                s[SIG_B] += g[k] * b;
                s[SIG_AA] += g[k] * (a * a);
                s[SIG_BB] += g[k] * (b * b);
                s[SIG_AB] += g[k] * (a * b);
            }
            for (int q = 0; q < SIGNALS; q++)
                out[j * SIGNALS + q] = s[q];
        }
    }
    double total = 0;
    for (int64_t i = 0; i < Hv; i++)
        for (int64_t j = 0; j < Wv; j++) {
            double f[SIGNALS] = {0};
            for (int k = 0; k < WIN; k++) {
                const double *in = rows + ((i + k) * Wv + j) * SIGNALS;
                for (int q = 0; q < SIGNALS; q++)
                    f[q] += g[k] * in[q];
            }
            double mu_a = f[SIG_A], mu_b = f[SIG_B];
            double s_aa = f[SIG_AA] - mu_a * mu_a, s_bb = f[SIG_BB] - mu_b * mu_b;
            double s_ab = f[SIG_AB] - mu_a * mu_b;
            total += ((2 * mu_a * mu_b + C1) * (2 * s_ab + C2)) /
                     ((mu_a * mu_a + mu_b * mu_b + C1) * (s_aa + s_bb + C2));
        }
    return total / (double)(Hv * Wv);
}

osp_status osp_ssim(const osp_tensor *x, const osp_tensor *y, double *out)
{
    if (metrics_check_frames("ssim", x, y))
        return osp_error_code();
    int64_t T = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    if (C != 1 && C != 3)
        return osp_error(OSP_ERR_DATA, "ssim: frames must have 3 (RGB) or 1 channel, got %lld",
                         (long long)C);
    if (H < WIN || W < WIN) {
        for (int64_t t = 0; t < T; t++)
            out[t] = NAN; /* the reference's mean over an empty valid region */
        return OSP_OK;
    }
    double g[WIN];
    gaussian_window(g);
    int64_t plane = H * W;
    size_t scratch = (size_t)(H * (W - 2 * HALF) * SIGNALS) * sizeof(double);
    const float *a = osp_f32(x), *b = osp_f32(y);
    double *values = malloc((size_t)(T * C) * sizeof *values);
    if (!values)
        return osp_error_nomem("ssim values", (unsigned long long)(T * C) * sizeof *values);
    int failed = 0;
#pragma omp parallel
    {
        double *rows = malloc(scratch);
        if (!rows) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic)
        for (int64_t i = 0; i < T * C; i++)
            if (rows)
                values[i] = ssim_plane(a + i * plane, b + i * plane, H, W, g, rows);
        free(rows);
    }
    for (int64_t t = 0; t < T && !failed; t++) {
        double sum = 0;
        for (int64_t c = 0; c < C; c++)
            sum += values[t * C + c];
        out[t] = sum / (double)C;
    }
    free(values);
    return failed ? osp_error_nomem("ssim scratch", scratch) : OSP_OK;
}
