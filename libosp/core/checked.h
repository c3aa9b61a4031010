/* checked.h — overflow-checked size arithmetic.
 * Every product of dimensions in osp goes through these; they return false
 * instead of wrapping. */
#ifndef OSP_CHECKED_H
#define OSP_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool osp_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

static inline bool osp_add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline bool osp_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Product of n non-negative dimensions; false on a negative dimension or
 * on overflow of int64. */
static inline bool osp_shape_numel(const int64_t *shape, int n, int64_t *out)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(p, shape[i], &p))
            return false;
    }
    *out = p;
    return true;
}

#endif
