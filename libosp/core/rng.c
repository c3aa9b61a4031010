/* rng.c — Philox-4x32-10 and its uniform and normal samplers (see rng.h).
 *
 * The normal sampler's ln, cos and sin are computed here from polynomials
 * with basic double operations only, so a CUDA port that performs the same
 * operations in the same order (no FMA contraction) reproduces every bit.
 * Their accuracy (~1e-16 relative) is far below the float32 rounding of
 * the result. The file is compiled as ISO C (-std=c11), where GCC does not
 * contract a*b+c into an FMA. */
#include "rng.h"

#include <math.h>
#include <stdbool.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void osp_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        c0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        c1 = (uint32_t)p1;
        c2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c3 = (uint32_t)p0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* The doubles nearest ln 2, sqrt 2 and π/2. */
#define LN2 0x1.62e42fefa39efp-1
#define SQRT2 0x1.6a09e667f3bcdp+0
#define PI_2 0x1.921fb54442d18p+0

/* ln((2a + 1) · 2^-33). With m = 2a + 1 = mant · 2^k, mant in
 * [sqrt(1/2), sqrt(2)] (k from the top bit of m; mant = m · 2^-k exactly,
 * halved and k + 1 when above SQRT2):
 *   s = (mant - 1) / (mant + 1),  z = s·s  (z <= 0.0295)
 *   ln(mant) = 2s · Σ_{n=0..10} z^n / (2n+1)   (Horner from n = 10 down,
 *              each coefficient the double nearest 1/(2n+1))
 *   result   = ln(mant) + (k - 33) · LN2 */
static double ln_unit_interval(uint32_t a)
{
    uint64_t m = 2 * (uint64_t)a + 1;
    int k = 63 - __builtin_clzll(m);
    double mant = ldexp((double)m, -k);
    if (mant > SQRT2) {
        mant *= 0.5;
        k += 1;
    }
    double s = (mant - 1.0) / (mant + 1.0), z = s * s;
    double poly = 1.0 / 21.0;
    for (int n = 9; n >= 0; n--)
        poly = poly * z + 1.0 / (double)(2 * n + 1);
    return 2.0 * s * poly + (double)(k - 33) * LN2;
}

/* 1/n! for n = 0..18, each the double nearest it (n! is exact in double up
 * to 18!, so one correctly rounded division gives it). */
static const double inv_factorial[19] = {
    1.0 / 1.0, 1.0 / 1.0, 1.0 / 2.0, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0,
    1.0 / 5040.0, 1.0 / 40320.0, 1.0 / 362880.0, 1.0 / 3628800.0, 1.0 / 39916800.0,
    1.0 / 479001600.0, 1.0 / 6227020800.0, 1.0 / 87178291200.0, 1.0 / 1307674368000.0,
    1.0 / 20922789888000.0, 1.0 / 355687428096000.0, 1.0 / 6402373705728000.0,
};

/* cos and sin of theta = 2π · b · 2^-32:
 *   q = b >> 30 (quarter turn), f = (b & 0x3FFFFFFF) · 2^-30 in [0, 1);
 *   when f > 0.5, f = 1 - f and sin/cos swap places (both exact);
 *   x = f · PI_2 in [0, π/4], w = x·x;
 *   sin x = x · Σ_{k=0..8} (-w)^k / (2k+1)!,  cos x = Σ_{k=0..9} (-w)^k / (2k)!
 *   (Horner in -w from the highest k down: p = 1/17! resp. 1/18!, then
 *   p = p·(-w) + 1/(2k+1)! resp. 1/(2k)!);
 *   then rotate by q quarter turns: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c). */
static void cos_sin_turn(uint32_t b, double *cos_out, double *sin_out)
{
    unsigned q = b >> 30;
    double f = (double)(b & 0x3FFFFFFFu) * 0x1p-30;
    bool swap = f > 0.5;
    if (swap)
        f = 1.0 - f;
    double x = f * PI_2, w = x * x;
    double ps = inv_factorial[17], pc = inv_factorial[18];
    for (int k = 7; k >= 0; k--)
        ps = ps * -w + inv_factorial[2 * k + 1];
    for (int k = 8; k >= 0; k--)
        pc = pc * -w + inv_factorial[2 * k];
    double s = x * ps, c = pc;
    if (swap) {
        double t = s;
        s = c;
        c = t;
    }
    switch (q) {
    case 0: *cos_out = c; *sin_out = s; break;
    case 1: *cos_out = -s; *sin_out = c; break;
    case 2: *cos_out = -c; *sin_out = -s; break;
    default: *cos_out = s; *sin_out = -c; break;
    }
}

void osp_rng_box_muller(uint32_t a, uint32_t b, float z[2])
{
    double r = sqrt(-2.0 * ln_unit_interval(a)), c, s;
    cos_sin_turn(b, &c, &s);
    z[0] = (float)(r * c);
    z[1] = (float)(r * s);
}

/* The 4 values of Philox block `blk` of the seed's stream. */
static void block_values(uint64_t blk, uint64_t seed, bool normal, float v[4])
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), 0, 0};
    uint32_t out[4];
    osp_philox4x32_10(ctr, key, out);
    if (normal) {
        osp_rng_box_muller(out[0], out[1], v);
        osp_rng_box_muller(out[2], out[3], v + 2);
    } else {
        for (int i = 0; i < 4; i++)
            v[i] = (float)(out[i] >> 8) * 0x1p-24f;
    }
}

static osp_status fill(float *dst, int64_t n, uint64_t seed, uint64_t offset, bool normal)
{
    if (n < 0 || (n > 0 && (uint64_t)(n - 1) > UINT64_MAX - offset))
        return osp_error(OSP_ERR_RUNTIME,
                         "random fill: %lld elements from offset %llu run past 2^64",
                         (long long)n, (unsigned long long)offset);
    if (n == 0)
        return OSP_OK;
    uint64_t last = offset + (uint64_t)(n - 1), first_blk = offset / 4;
    int64_t blocks = (int64_t)(last / 4 - first_blk) + 1;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < blocks; i++) {
        uint64_t blk = first_blk + (uint64_t)i;
        float v[4];
        block_values(blk, seed, normal, v);
        for (unsigned lane = 0; lane < 4; lane++) {
            uint64_t e = blk * 4 + lane;
            if (e >= offset && e <= last)
                dst[e - offset] = v[lane];
        }
    }
    return OSP_OK;
}

osp_status osp_rng_normal_fill(float *dst, int64_t n, uint64_t seed, uint64_t offset)
{
    return fill(dst, n, seed, offset, true);
}

osp_status osp_rng_uniform_fill(float *dst, int64_t n, uint64_t seed, uint64_t offset)
{
    return fill(dst, n, seed, offset, false);
}
