/* cpu_vexp.h — a vectorisable e^x for the CPU kernels' row loops (softmax,
 * attention, GELU), which are compiled with ROW_CLONES (core/simd.h).
 *
 * exp_poly: Cephes-style range reduction and polynomial, relative error
 * below 1e-7; results below e^-87.3 flush to 0, above e^88.3 become +Inf,
 * NaN stays NaN. */
#ifndef OSP_CPU_VEXP_H
#define OSP_CPU_VEXP_H

#include <stdint.h>
#include <string.h>

#include "core/simd.h"

/* Bit patterns of the exp range limits: below e^-87.34 the result is
 * subnormal (flushed to 0); above e^88.38, 2^n would overflow (+Inf). */
#define EXP_LO_BITS 0xC2AEAC50u /* -87.3365448f */
#define EXP_HI_BITS 0x42B0C0A5u /* 88.3762626f */
#define NEG_INF_BITS 0xFF800000u
#define POS_INF_BITS 0x7F800000u

static inline uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* (a & m) | (b & ~m) for a mask m of all ones or all zeros. */
static inline uint32_t pick(uint32_t m, uint32_t a, uint32_t b) { return (a & m) | (b & ~m); }

/* e^x, branch-free so that loops over it vectorise: GCC will not if-convert
 * float comparisons feeding arithmetic, so the range tests are done on the
 * bit patterns (a negative float's pattern grows with its magnitude). NaN
 * is in neither range and propagates through the arithmetic. */
static inline float exp_poly(float x)
{
    uint32_t xb = bits_of(x);
    uint32_t under = -(uint32_t)(xb > EXP_LO_BITS && xb <= NEG_INF_BITS);
    uint32_t over = -(uint32_t)(xb > EXP_HI_BITS && xb <= POS_INF_BITS);
    float xc = float_of(pick(under, EXP_LO_BITS, pick(over, EXP_HI_BITS, xb)));
    /* x = n ln2 + r with |r| <= ln2/2: adding 1.5·2^23 rounds x·log2(e)
     * to the integer n, which then sits in the low mantissa bits of t; ln2
     * is split in two so that n·ln2 is exact. */
    float t = xc * 1.44269504f + 12582912.0f;
    float nf = t - 12582912.0f;
    float r = xc - nf * 0.693359375f;
    r = r + nf * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float pow2n = float_of((bits_of(t) - 0x4B400000u + 127u) << 23);
    float y = (p * r * r + r + 1.0f) * pow2n;
    return float_of(pick(under, 0u, pick(over, POS_INF_BITS, bits_of(y))));
}

#endif
