/* ssim.c — SSIM per frame (spec/eval.md section 3; metrics.h).
 *
 * The 11x11 window is the outer product of a 1-D Gaussian g, so each of
 * the four filtered planes (a, b, a^2 + b^2, ab) is computed separably over
 * the valid region: every input row is filtered horizontally into a ring of
 * the last 11 such rows, and each output row is the vertical filter of the
 * ring, from which one row of the SSIM map is summed at once. g is
 * symmetric, so each pass adds mirrored taps first and multiplies 6 times,
 * not 11. Everything is double, as in the reference (which filters the
 * whole frame with OpenCV and crops 5 pixels from each side, so its border
 * mode never shows); the summation order differs from OpenCV's by ~1e-16.
 * The loops run along a row, in arrays per signal, so they vectorise; on
 * x86-64 the hot function is also built for AVX2+FMA, picked at run time. */
#include "metrics.h"
#include "frames_check.h"

#include <math.h>
#include <stdlib.h>

#define WIN 11
#define HALF 5

#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define SSIM_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
#endif
#ifndef SSIM_CLONES
#define SSIM_CLONES
#endif

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

/* The filtered signals. a^2 and b^2 enter the map only through
 * s_aa + s_bb = F(a^2 + b^2) - mu_a^2 - mu_b^2, so they are filtered as
 * one sum (equal up to rounding, ~1e-16). */
enum { SIG_A, SIG_B, SIG_SQ, SIG_AB, SIGNALS };

/* Scratch of one plane: the signals of an input row (W each), a ring
 * of WIN horizontally filtered rows and the vertically filtered output row
 * (SIGNALS x Wv each). */
static size_t scratch_doubles(int64_t W)
{
    return (size_t)(SIGNALS * W + WIN * SIGNALS * (W - 2 * HALF) + SIGNALS * (W - 2 * HALF));
}

/* out[j] = sum_k g[k] in[j + k] over j < n, mirrored taps added first
 * (the taps written out, as in filter_column). */
static inline void filter_row(const double *in, double *out, int64_t n, const double g[WIN])
{
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        const double *x = in + j;
        out[j] = g[5] * x[5] + g[0] * (x[0] + x[10]) + g[1] * (x[1] + x[9]) +
                 g[2] * (x[2] + x[8]) + g[3] * (x[3] + x[7]) + g[4] * (x[4] + x[6]);
    }
}

/* out[j] = sum_k g[k] rows[k][o + j] over j < n, mirrored taps added first
 * (written out: a loop over k keeps the compiler from vectorising over j,
 * or leaves one long chain of dependent adds). */
static inline void filter_column(const double *const rows[WIN], int64_t o, double *out,
                                 int64_t n, const double g[WIN])
{
    const double *r0 = rows[0] + o, *r1 = rows[1] + o, *r2 = rows[2] + o, *r3 = rows[3] + o;
    const double *r4 = rows[4] + o, *r5 = rows[5] + o, *r6 = rows[6] + o, *r7 = rows[7] + o;
    const double *r8 = rows[8] + o, *r9 = rows[9] + o, *r10 = rows[10] + o;
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        out[j] = g[5] * r5[j] + g[0] * (r0[j] + r10[j]) + g[1] * (r1[j] + r9[j]) +
                 g[2] * (r2[j] + r8[j]) + g[3] * (r3[j] + r7[j]) + g[4] * (r4[j] + r6[j]);
}

/* Mean SSIM map of one plane pair (H, W >= 11). */
SSIM_CLONES
static double ssim_plane(const float *pa, const float *pb, int64_t H, int64_t W,
                         const double g[WIN], double *scratch)
{
    const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;
    int64_t Wv = W - 2 * HALF, Hv = H - 2 * HALF;
    double *sig = scratch, *ring = sig + SIGNALS * W, *f = ring + WIN * SIGNALS * Wv;
    double total = 0;
    for (int64_t r = 0; r < H; r++) {
        const float *ra = pa + r * W, *rb = pb + r * W;
        double *s = sig;
#pragma omp simd
        for (int64_t j = 0; j < W; j++) {
            double a = ra[j], b = rb[j];
            s[SIG_A * W + j] = a;
            s[SIG_B * W + j] = b;
            s[SIG_SQ * W + j] = a * a + b * b;
            s[SIG_AB * W + j] = a * b;
        }
        double *slot = ring + (r % WIN) * SIGNALS * Wv;
        for (int q = 0; q < SIGNALS; q++)
            filter_row(sig + q * W, slot + q * Wv, Wv, g);
        if (r < WIN - 1)
            continue;
        /* output row r - 10: rows r-10 .. r of the ring, tap k = row r-10+k */
        const double *rows[WIN];
        for (int k = 0; k < WIN; k++)
            rows[k] = ring + ((r - (WIN - 1) + k) % WIN) * SIGNALS * Wv;
        for (int q = 0; q < SIGNALS; q++)
            filter_column(rows, q * Wv, f + q * Wv, Wv, g);
        double row_sum = 0;
#pragma omp simd reduction(+ : row_sum)
        for (int64_t j = 0; j < Wv; j++) {
            double mu_a = f[SIG_A * Wv + j], mu_b = f[SIG_B * Wv + j];
            double mu_sq = mu_a * mu_a + mu_b * mu_b;
            double s_sq = f[SIG_SQ * Wv + j] - mu_sq; /* s_aa + s_bb */
            double s_ab = f[SIG_AB * Wv + j] - mu_a * mu_b;
            row_sum += ((2 * mu_a * mu_b + C1) * (2 * s_ab + C2)) / ((mu_sq + C1) * (s_sq + C2));
        }
        total += row_sum;
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
    size_t scratch = scratch_doubles(W) * sizeof(double);
    const float *a = osp_f32(x), *b = osp_f32(y);
    double *values = malloc((size_t)(T * C) * sizeof *values);
    if (!values)
        return osp_error_nomem("ssim values", (unsigned long long)(T * C) * sizeof *values);
    int failed = 0;
#pragma omp parallel
    {
        double *buf = malloc(scratch);
        if (!buf) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic)
        for (int64_t i = 0; i < T * C; i++)
            if (buf)
                values[i] = ssim_plane(a + i * plane, b + i * plane, H, W, g, buf);
        free(buf);
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
