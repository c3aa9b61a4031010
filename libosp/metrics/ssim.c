/* ssim.c — SSIM of one plane pair (spec/eval.md section 3;
 * plane_metrics.h; psnr_ssim.c runs it over frames).
 *
 * The 11x11 window is the outer product of a 1-D Gaussian g, so each of
 * the four filtered planes (a, b, a^2 + b^2, ab) is computed separably over
 * the valid region. Everything is double, as in the reference (which
 * filters the whole frame with OpenCV and crops 5 pixels from each side, so
 * its border mode never shows); the summation order differs from OpenCV's
 * by ~1e-16.
 *
 * The plane is cut into strips of STRIP output columns, so that a strip's
 * working set (the ring of horizontally filtered rows) stays in L1. Down a
 * strip, every input row is filtered horizontally into a ring of the last
 * RING such rows; each BLOCK new rows, BLOCK output rows are filtered
 * vertically from the ring and their SSIM map is summed. Both passes are
 * written on 4-double vectors (GCC vector extensions) so that loads are
 * shared: the horizontal pass makes 4 output vectors from 3 * 4 + 11
 * overlapping loads, the vertical one BLOCK output rows from RING loaded
 * rows. g is symmetric, so each output adds mirrored taps first and
 * multiplies 6 times, not 11. A strip's loop is also built for AVX2 and
 * AVX-512 (the latter's 32 vector registers hold all of a block's rows),
 * picked at run time. */
#include "plane_metrics.h"
#include "metrics.h"

#include <math.h>
#include <string.h>

#define WIN SSIM_MIN_SIDE
#define HALF 5
#define STRIP 64 /* output columns per strip: a multiple of HSTEP */
#define BLOCK 4  /* output rows per vertical pass */
#define RING (BLOCK + WIN - 1)
#define LANES 4
#define HSTEP (4 * LANES) /* output columns per step of the horizontal pass */

#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define SSIM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef SSIM_CLONES
#define SSIM_CLONES
#endif

typedef double vec __attribute__((vector_size(LANES * sizeof(double))));

/* The six distinct taps of g, each in every lane (kept in registers
 * rather than re-broadcast from memory by every multiply). */
typedef struct taps {
    vec g[HALF + 1];
} taps;

/* OpenCV getGaussianKernel(11, 1.5, CV_64F): exp(-x^2 / (2 sigma^2)) for
 * x = i - 5, scaled by 1 / (their sum). */
static taps gaussian_window(void)
{
    double g[WIN], sum = 0, sigma = 1.5;
    for (int i = 0; i < WIN; i++) {
        double x = i - (WIN - 1) * 0.5;
        g[i] = exp(-0.5 / (sigma * sigma) * x * x);
        sum += g[i];
    }
    sum = 1.0 / sum;
    taps t;
    for (int i = 0; i <= HALF; i++)
        for (int l = 0; l < LANES; l++)
            t.g[i][l] = g[i] * sum;
    return t;
}

/* The filtered signals. a^2 and b^2 enter the map only through
 * s_aa + s_bb = F(a^2 + b^2) - mu_a^2 - mu_b^2, so they are filtered as
 * one sum (equal up to rounding, ~1e-16). */
enum { SIG_A, SIG_B, SIG_SQ, SIG_AB, SIGNALS };

/* Scratch of one thread, 64-byte aligned (so the vertical pass's loads
 * never straddle cache lines): a strip's input signals (STRIP + 10 each),
 * the ring of RING horizontally filtered rows and BLOCK vertically
 * filtered rows (SIGNALS x STRIP each, 64-byte multiples). Rows are
 * ROW_LEN apart, one cache line more than they hold: at 2 KiB apart, every
 * other row shared its address bits below 4 KiB with the row being
 * written, which the CPU takes for a possible store-to-load dependency
 * (about 5 % slower). */
#define SIG_LEN (STRIP + 2 * HALF)
#define ROW_LEN (SIGNALS * STRIP + 8)
#define SCRATCH_DOUBLES (SIGNALS * SIG_LEN + (RING + BLOCK) * ROW_LEN)
_Static_assert(SIGNALS * SIG_LEN * sizeof(double) % 64 == 0 && STRIP * sizeof(double) % 64 == 0 &&
                   ROW_LEN * sizeof(double) % 64 == 0,
               "the ring's rows start on cache lines");

/* *out = sum_k g[k] x[k] over 11 vectors, mirrored taps added first. */
static inline void filter11(double *out, const vec *x, const taps *t)
{
    vec y = t->g[5] * x[5] + t->g[0] * (x[0] + x[10]) + t->g[1] * (x[1] + x[9]) +
            t->g[2] * (x[2] + x[8]) + t->g[3] * (x[3] + x[7]) + t->g[4] * (x[4] + x[6]);
    memcpy(out, &y, sizeof y);
}

/* out[j] = sum_k g[k] in[j + k] for j < STRIP (in: SIG_LEN values). The
 * inner loops are unrolled outright so that x[] lives in registers (at -O2
 * GCC otherwise keeps it on the stack, at half the speed). */
static inline void filter_row(const double *in, double *out, const taps *t)
{
    for (int j = 0; j < STRIP; j += HSTEP) {
        vec x[HSTEP - LANES + WIN];
#pragma GCC unroll 32
        for (int m = 0; m < HSTEP - LANES + WIN; m++)
            memcpy(&x[m], in + j + m, sizeof x[m]);
#pragma GCC unroll 4
        for (int v = 0; v < HSTEP; v += LANES)
            filter11(out + j + v, x + v, t);
    }
}

/* Output row v < BLOCK, out + v * stride: sum_k g[k] rows[v + k][o + j]
 * for j < STRIP. */
static inline void filter_column(double *const rows[RING], int o, double *out, int stride,
                                 const taps *t)
{
    for (int j = 0; j < STRIP; j += LANES) {
        vec x[RING];
#pragma GCC unroll 32
        for (int k = 0; k < RING; k++)
            memcpy(&x[k], rows[k] + o + j, sizeof x[k]);
#pragma GCC unroll 8
        for (int v = 0; v < BLOCK; v++)
            filter11(out + v * stride + j, x + v, t);
    }
}

/* The four signals of pixels [0, n) of a row pair, as doubles (u8 pixels
 * read through osp_unit_u8), zero up to SIG_LEN. */
static inline void row_signals(const void *pa, const void *pb, bool u8, int64_t n, double *sig)
{
    double *a = sig + SIG_A * SIG_LEN, *b = sig + SIG_B * SIG_LEN;
    if (u8) {
        const uint8_t *ua = pa, *ub = pb;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            a[j] = osp_unit_u8(ua[j]);
            b[j] = osp_unit_u8(ub[j]);
        }
    } else {
        const float *fa = pa, *fb = pb;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            a[j] = fa[j];
            b[j] = fb[j];
        }
    }
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        sig[SIG_SQ * SIG_LEN + j] = a[j] * a[j] + b[j] * b[j];
        sig[SIG_AB * SIG_LEN + j] = a[j] * b[j];
    }
    for (int q = 0; q < SIGNALS; q++)
        memset(sig + q * SIG_LEN + n, 0, (size_t)(SIG_LEN - n) * sizeof *sig);
}

/* Sum of the SSIM map over n pixels of one output row (f: SIGNALS rows of
 * STRIP filtered values). */
static inline double map_sum(const double *f, int64_t n)
{
    const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; j++) {
        double mu_a = f[SIG_A * STRIP + j], mu_b = f[SIG_B * STRIP + j];
        double mu_sq = mu_a * mu_a + mu_b * mu_b;
        double s_sq = f[SIG_SQ * STRIP + j] - mu_sq; /* s_aa + s_bb */
        double s_ab = f[SIG_AB * STRIP + j] - mu_a * mu_b;
        sum += ((2 * mu_a * mu_b + C1) * (2 * s_ab + C2)) / ((mu_sq + C1) * (s_sq + C2));
    }
    return sum;
}

/* Sum of the SSIM map over output columns [c0, c0 + cols) of a plane
 * pair (cols <= STRIP). Input rows past the plane are zeros, so the last
 * block can be filtered whole; its rows past the valid region are left
 * out of the sum. */
SSIM_CLONES
static double strip_sum(const uint8_t *pa, const uint8_t *pb, size_t elem, int64_t H, int64_t W,
                        int64_t c0, int64_t cols, const taps *t, double *scratch)
{
    int64_t Hv = H - 2 * HALF;
    double *sig = scratch, *ring = sig + SIGNALS * SIG_LEN, *f = ring + RING * ROW_LEN;
    double sum = 0;
    for (int64_t r = 0; r < H + BLOCK - 1; r++) {
        double *slot = ring + (r % RING) * ROW_LEN;
        if (r < H) {
            size_t at = (size_t)(r * W + c0) * elem;
            row_signals(pa + at, pb + at, elem == 1, cols + 2 * HALF, sig);
            for (int q = 0; q < SIGNALS; q++)
                filter_row(sig + q * SIG_LEN, slot + q * STRIP, t);
        } else {
            memset(slot, 0, SIGNALS * STRIP * sizeof *slot);
        }
        /* output rows i0 .. i0 + BLOCK - 1 need input rows i0 .. r */
        int64_t i0 = r - (RING - 1);
        if (i0 < 0 || i0 % BLOCK)
            continue;
        double *rows[RING];
        for (int k = 0; k < RING; k++)
            rows[k] = ring + ((i0 + k) % RING) * ROW_LEN;
        for (int q = 0; q < SIGNALS; q++)
            filter_column(rows, q * STRIP, f + q * STRIP, ROW_LEN, t);
        for (int v = 0; v < BLOCK && i0 + v < Hv; v++)
            sum += map_sum(f + v * ROW_LEN, cols);
    }
    return sum;
}

size_t metrics_ssim_scratch_bytes(void)
{
    return (SCRATCH_DOUBLES * sizeof(double) + 63) / 64 * 64;
}

double metrics_ssim_plane(const uint8_t *a, const uint8_t *b, size_t elem, int64_t H, int64_t W,
                          double *scratch)
{
    taps window = gaussian_window();
    int64_t Wv = W - 2 * HALF, Hv = H - 2 * HALF;
    double total = 0;
    for (int64_t c0 = 0; c0 < Wv; c0 += STRIP)
        total += strip_sum(a, b, elem, H, W, c0, Wv - c0 < STRIP ? Wv - c0 : STRIP, &window,
                           scratch);
    return total / (double)(Hv * Wv);
}
