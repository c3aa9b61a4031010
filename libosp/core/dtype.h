/* dtype.h — element types of osp tensors and conversions between them.
 *
 * Conversions to f16 and bf16 round to nearest, ties to even; NaN stays NaN
 * (quiet, sign kept) and ±Inf stays ±Inf. Integer targets truncate toward
 * zero as C does, saturating at the type's range; NaN converts to 0. */
#ifndef OSP_DTYPE_H
#define OSP_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef enum osp_dtype {
    OSP_F32 = 0,
    OSP_F16,
    OSP_BF16,
    OSP_F64,
    OSP_I32,
    OSP_I64,
    OSP_U8,
    OSP_DTYPE_COUNT
} osp_dtype;

/* Bytes per element. */
size_t osp_dtype_size(osp_dtype t);
/* Stream/safetensors short name: "f32", "bf16", ... */
const char *osp_dtype_name(osp_dtype t);
/* Parses "f32"/"F32"/"float32" etc. (the stream names and the safetensors
 * names "F32" "F16" "BF16" "F64" "I32" "I64" "U8"); false when unknown. */
bool osp_dtype_parse(const char *s, size_t len, osp_dtype *out);
/* The safetensors spelling ("F32", "BF16", ...). */
const char *osp_dtype_safetensors_name(osp_dtype t);
bool osp_dtype_is_float(osp_dtype t);

float osp_f16_to_f32(uint16_t h);
uint16_t osp_f32_to_f16(float f);
float osp_bf16_to_f32(uint16_t b);
uint16_t osp_f32_to_bf16(float f);

/* Converts n elements between any two dtypes (buffers must not overlap).
 * Values pass through double (exact for every source); f64 -> f16/bf16 goes
 * via f32, so it can round twice. */
void osp_convert(void *dst, osp_dtype dst_type, const void *src,
                 osp_dtype src_type, size_t n);

#endif
