/* cu_index.h — element offsets of two strided operands for the CUDA
 * kernels (broadcast binary ops, strided copies).
 *
 * A kernel walks the elements of a shape in row-major order and needs,
 * for element i, each operand's offset Σ_d idx_d(i)·stride_d. Done
 * naively that is a 64-bit division and remainder per dim and element,
 * dozens of instructions each on a GPU, which made these memory-bound
 * kernels compute-bound. So the host first coalesces the dims (drops
 * size-1 dims, merges neighbours that are contiguous for both operands:
 * x[B, N, D] · s[B, 1, D] stays 3-D, a plain row broadcast becomes 2-D),
 * and where every index and offset is below 2^31 the kernel divides in 32
 * bits by multiply-high and shift with divisors prepared on the host
 * (Granlund and Montgomery). Larger problems keep the 64-bit arithmetic.
 *
 * Plain C, so that the host tests (tests/unit/test_cu_index.c) run the
 * very arithmetic the kernels run. */
#ifndef OSP_CU_INDEX_H
#define OSP_CU_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"

#ifdef __CUDACC__
#define CU_HD static __host__ __device__ __forceinline__
#else
#define CU_HD static inline
#endif

/* n / divisor for n < 2^31 as (mulhi(n, magic) + n) >> shift. */
typedef struct cu_divider {
    uint32_t divisor, magic, shift;
} cu_divider;

/* divisor in [1, 2^31]. shift = ceil(log2 divisor), magic = floor(2^32 ·
 * (2^shift - divisor) / divisor) + 1 (< 2^32 in that range). */
static inline cu_divider cu_divider_of(uint32_t divisor)
{
    uint32_t shift = 0;
    while (shift < 31 && ((uint32_t)1 << shift) < divisor)
        shift++;
    uint64_t magic = (((uint64_t)1 << 32) * (((uint64_t)1 << shift) - divisor)) / divisor + 1;
    cu_divider v = {divisor, (uint32_t)magic, shift};
    return v;
}

CU_HD uint32_t cu_div(cu_divider v, uint32_t n)
{
#ifdef __CUDA_ARCH__
    uint32_t hi = __umulhi(n, v.magic);
#else
    uint32_t hi = (uint32_t)(((uint64_t)n * v.magic) >> 32);
#endif
    return (hi + n) >> v.shift; /* no overflow: hi <= n < 2^31 */
}

typedef struct cu_index {
    int nd;     /* coalesced dims, 1..OSP_MAX_DIMS */
    bool narrow; /* numel and every offset < 2^31: the 32-bit path */
    int64_t shape[OSP_MAX_DIMS];
    int64_t stride[2][OSP_MAX_DIMS]; /* elements, per operand */
    cu_divider div[OSP_MAX_DIMS];    /* of shape[d], d >= 1 (narrow only) */
} cu_index;

/* The plan for walking `shape` (ndim dims) with operand strides s0 and s1
 * (elements, >= 0; 0 where an operand broadcasts). */
static inline cu_index cu_index_plan(int ndim, const int64_t *shape, const int64_t *s0,
                                     const int64_t *s1)
{
    cu_index ix;
    ix.nd = 0;
    int64_t numel = 1;
    /* innermost first into slots nd-1 .. 0, reversed below */
    int64_t sh[OSP_MAX_DIMS], st0[OSP_MAX_DIMS], st1[OSP_MAX_DIMS];
    int n = 0;
    for (int d = ndim - 1; d >= 0; d--) {
        numel *= shape[d];
        if (shape[d] == 1)
            continue;
        if (n > 0 && s0[d] == st0[n - 1] * sh[n - 1] && s1[d] == st1[n - 1] * sh[n - 1]) {
            sh[n - 1] *= shape[d];
            continue;
        }
        sh[n] = shape[d];
        st0[n] = s0[d];
        st1[n] = s1[d];
        n++;
    }
    if (n == 0) { /* a single element (or all dims 1) */
        sh[0] = 1;
        st0[0] = st1[0] = 0;
        n = 1;
    }
    ix.nd = n;
    /* narrow: numel, strides and every offset below 2^31 (each product
     * then stays below 2^62, and the sums stop at the first excess) */
    const int64_t limit = (int64_t)1 << 31;
    int64_t last0 = 0, last1 = 0;
    ix.narrow = numel > 0 && numel < limit;
    for (int j = 0; j < n; j++) {
        int d = n - 1 - j;
        ix.shape[d] = sh[j];
        ix.stride[0][d] = st0[j];
        ix.stride[1][d] = st1[j];
        if (st0[j] < 0 || st1[j] < 0 || st0[j] >= limit || st1[j] >= limit)
            ix.narrow = false;
        if (ix.narrow) {
            last0 += (sh[j] - 1) * st0[j];
            last1 += (sh[j] - 1) * st1[j];
            ix.narrow = last0 < limit && last1 < limit;
        }
    }
    for (int d = 0; d < n; d++)
        ix.div[d] = cu_divider_of(ix.narrow && d > 0 ? (uint32_t)ix.shape[d] : 1);
    return ix;
}

/* Offsets of element i (row-major over the plan's shape), 32-bit path.
 * The plan comes by value: a kernel passes its parameter, whose address
 * must not be taken (that would copy it to local memory). */
CU_HD void cu_offsets_narrow(cu_index ix, uint32_t i, int64_t *o0, int64_t *o1)
{
    uint32_t a = 0, b = 0, rem = i;
#ifdef __CUDACC__
#pragma unroll
#endif
    for (int d = OSP_MAX_DIMS - 1; d > 0; d--) {
        if (d >= ix.nd)
            continue;
        uint32_t q = cu_div(ix.div[d], rem), c = rem - q * (uint32_t)ix.shape[d];
        rem = q;
        a += c * (uint32_t)ix.stride[0][d];
        b += c * (uint32_t)ix.stride[1][d];
    }
    *o0 = a + rem * (uint32_t)ix.stride[0][0];
    *o1 = b + rem * (uint32_t)ix.stride[1][0];
}

/* The same in 64 bits, for any size. */
CU_HD void cu_offsets_wide(cu_index ix, int64_t i, int64_t *o0, int64_t *o1)
{
    int64_t a = 0, b = 0, rem = i;
    for (int d = ix.nd - 1; d > 0; d--) {
        int64_t q = rem / ix.shape[d], c = rem - q * ix.shape[d];
        rem = q;
        a += c * ix.stride[0][d];
        b += c * ix.stride[1][d];
    }
    *o0 = a + rem * ix.stride[0][0];
    *o1 = b + rem * ix.stride[1][0];
}

#endif
