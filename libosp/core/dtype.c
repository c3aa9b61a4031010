/* dtype.c — dtype table and conversions (see dtype.h for the rounding rules). */
#include "dtype.h"

#include <math.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name, *st_name, *long_name;
    size_t size;
    bool is_float;
} dtype_info[OSP_DTYPE_COUNT] = {
    [OSP_F32] = {"f32", "F32", "float32", 4, true},
    [OSP_F16] = {"f16", "F16", "float16", 2, true},
    [OSP_BF16] = {"bf16", "BF16", "bfloat16", 2, true},
    [OSP_F64] = {"f64", "F64", "float64", 8, true},
    [OSP_I32] = {"i32", "I32", "int32", 4, false},
    [OSP_I64] = {"i64", "I64", "int64", 8, false},
    [OSP_U8] = {"u8", "U8", "uint8", 1, false},
};

size_t osp_dtype_size(osp_dtype t)
{
    return (unsigned)t < OSP_DTYPE_COUNT ? dtype_info[t].size : 0;
}

const char *osp_dtype_name(osp_dtype t)
{
    return (unsigned)t < OSP_DTYPE_COUNT ? dtype_info[t].name : "?";
}

const char *osp_dtype_safetensors_name(osp_dtype t)
{
    return (unsigned)t < OSP_DTYPE_COUNT ? dtype_info[t].st_name : "?";
}

bool osp_dtype_is_float(osp_dtype t)
{
    return (unsigned)t < OSP_DTYPE_COUNT && dtype_info[t].is_float;
}

bool osp_dtype_parse(const char *s, size_t len, osp_dtype *out)
{
    for (int t = 0; t < OSP_DTYPE_COUNT; t++) {
        const char *names[3] = {dtype_info[t].name, dtype_info[t].st_name,
                                dtype_info[t].long_name};
        for (int k = 0; k < 3; k++) {
            if (strlen(names[k]) == len && strncmp(names[k], s, len) == 0) {
                *out = (osp_dtype)t;
                return true;
            }
        }
    }
    return false;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float osp_bf16_to_f32(uint16_t b)
{
    return bits_f32((uint32_t)b << 16);
}

uint16_t osp_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign, force quiet */
        return (uint16_t)((u >> 16) | 0x0040u);
    uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)((u + rounding) >> 16);
}

float osp_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) /* Inf or NaN */
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        /* zero or subnormal: value = man * 2^-24 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t osp_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) /* NaN */
        return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    if (abs >= 0x477ff000u) /* rounds to >= 65520: Inf */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) {
        /* below the smallest normal (2^-14): subnormal or zero.
         * Scaling by 2^24 makes the f16 mantissa the integer part; rintf
         * rounds half to even under the default rounding mode. */
        float v = bits_f32(abs) * 0x1p24f;
        return (uint16_t)(sign | (uint16_t)rintf(v));
    }
    /* normal: drop 13 mantissa bits with round-to-nearest-even; a carry
     * into the exponent is the correct result. */
    uint32_t rounding = 0xfffu + ((abs >> 13) & 1u);
    abs += rounding;
    return (uint16_t)(sign | (uint16_t)((abs - 0x38000000u) >> 13));
}

static double load_as_double(const void *src, osp_dtype t, size_t i)
{
    switch (t) {
    case OSP_F32: return ((const float *)src)[i];
    case OSP_F16: return osp_f16_to_f32(((const uint16_t *)src)[i]);
    case OSP_BF16: return osp_bf16_to_f32(((const uint16_t *)src)[i]);
    case OSP_F64: return ((const double *)src)[i];
    case OSP_I32: return ((const int32_t *)src)[i];
    case OSP_I64: return (double)((const int64_t *)src)[i];
    case OSP_U8: return ((const uint8_t *)src)[i];
    default: return 0.0;
    }
}

static double saturate(double v, double lo, double hi)
{
    if (isnan(v)) return 0.0;
    v = trunc(v);
    return v < lo ? lo : v > hi ? hi : v;
}

static void store_double(void *dst, osp_dtype t, size_t i, double v)
{
    switch (t) {
    case OSP_F32: ((float *)dst)[i] = (float)v; break;
    case OSP_F16: ((uint16_t *)dst)[i] = osp_f32_to_f16((float)v); break;
    case OSP_BF16: ((uint16_t *)dst)[i] = osp_f32_to_bf16((float)v); break;
    case OSP_F64: ((double *)dst)[i] = v; break;
    case OSP_I32: ((int32_t *)dst)[i] = (int32_t)saturate(v, INT32_MIN, INT32_MAX); break;
    case OSP_I64:
        /* 2^63 is not representable in int64; clamp just below it. */
        ((int64_t *)dst)[i] = isnan(v) ? 0
                              : v >= 0x1p63 ? INT64_MAX
                              : v < -0x1p63 ? INT64_MIN
                                            : (int64_t)v;
        break;
    case OSP_U8: ((uint8_t *)dst)[i] = (uint8_t)saturate(v, 0, 255); break;
    default: break;
    }
}

void osp_convert(void *dst, osp_dtype dst_type, const void *src,
                 osp_dtype src_type, size_t n)
{
    if (dst_type == src_type) {
        memcpy(dst, src, n * osp_dtype_size(src_type));
        return;
    }
    /* The hot paths: widening stored weights to f32. f32 -> f16/bf16 via
     * double would double-round, so go direct. */
    if (dst_type == OSP_F32 && src_type == OSP_BF16) {
        for (size_t i = 0; i < n; i++)
            ((float *)dst)[i] = osp_bf16_to_f32(((const uint16_t *)src)[i]);
        return;
    }
    if (dst_type == OSP_F32 && src_type == OSP_F16) {
        for (size_t i = 0; i < n; i++)
            ((float *)dst)[i] = osp_f16_to_f32(((const uint16_t *)src)[i]);
        return;
    }
    if (src_type == OSP_F32 && (dst_type == OSP_BF16 || dst_type == OSP_F16)) {
        for (size_t i = 0; i < n; i++) {
            float f = ((const float *)src)[i];
            ((uint16_t *)dst)[i] = dst_type == OSP_BF16 ? osp_f32_to_bf16(f)
                                                        : osp_f32_to_f16(f);
        }
        return;
    }
    if (src_type == OSP_I64 && dst_type == OSP_I32) {
        for (size_t i = 0; i < n; i++) {
            int64_t v = ((const int64_t *)src)[i];
            ((int32_t *)dst)[i] = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
        }
        return;
    }
    if (dst_type == OSP_I64 && !osp_dtype_is_float(src_type)) {
        for (size_t i = 0; i < n; i++)
            ((int64_t *)dst)[i] = src_type == OSP_I32 ? ((const int32_t *)src)[i]
                                                      : ((const uint8_t *)src)[i];
        return;
    }
    for (size_t i = 0; i < n; i++)
        store_double(dst, dst_type, i, load_as_double(src, src_type, i));
}
