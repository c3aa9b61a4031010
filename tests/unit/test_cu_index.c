/* test_cu_index.c — the CUDA kernels' index arithmetic (backend/cuda/
 * cu_index.h), run here on the host: multiply-shift division against the
 * hardware's, and the coalesced offsets of two strided operands against
 * per-dim offsets, element by element, in the 32-bit and 64-bit paths. */
#include "backend/cuda/cu_index.h"
#include "test.h"

#include <stdlib.h>

static bool divides_like_hardware(uint32_t d, uint32_t n)
{
    cu_divider v = cu_divider_of(d);
    return cu_div(v, n) == n / d;
}

TEST(division_by_multiply_and_shift)
{
    const uint32_t top = 0x7fffffffu; /* the largest dividend the kernels use */
    int bad = 0;
    /* every small divisor, with the dividends around its multiples and the
     * top of the range */
    for (uint32_t d = 1; d <= 4096; d++) {
        for (uint32_t k = 0; k < 64; k++) {
            uint64_t m = (uint64_t)k * d;
            for (int e = -1; e <= 1; e++)
                if ((int64_t)m + e >= 0 && m + e <= top)
                    bad += !divides_like_hardware(d, (uint32_t)(m + e));
        }
        for (uint32_t e = 0; e < 4; e++)
            bad += !divides_like_hardware(d, top - e);
        bad += !divides_like_hardware(d, top / d * d) + !divides_like_hardware(d, top / d * d - 1);
    }
    /* random divisors over the whole range, powers of two and their
     * neighbours, random dividends */
    for (int r = 0; r < 200000; r++) {
        uint32_t d = test_u32() % top + 1, n = test_u32() & top;
        bad += !divides_like_hardware(d, n);
    }
    for (int s = 0; s <= 31; s++)
        for (int e = -1; e <= 1; e++) {
            int64_t d = ((int64_t)1 << s) + e;
            if (d < 1 || d > ((int64_t)1 << 31))
                continue;
            for (int r = 0; r < 1000; r++)
                bad += !divides_like_hardware((uint32_t)d, test_u32() & top);
            bad += !divides_like_hardware((uint32_t)d, top);
        }
    CHECK(bad == 0);
}

/* Offsets of element i by per-dim division of the original shape. */
static void naive_offsets(int nd, const int64_t *shape, const int64_t *s0, const int64_t *s1,
                          int64_t i, int64_t *o0, int64_t *o1)
{
    *o0 = *o1 = 0;
    for (int d = nd - 1; d >= 0; d--) {
        int64_t c = i % shape[d];
        i /= shape[d];
        *o0 += c * s0[d];
        *o1 += c * s1[d];
    }
}

/* Strides of a contiguous tensor of `shape` whose dims are stored in the
 * order `perm` (outermost first), with the dims in `bcast` at stride 0. */
static void layout(int nd, const int64_t *shape, const int *perm, unsigned bcast, int64_t *st)
{
    int64_t s = 1;
    for (int j = nd - 1; j >= 0; j--) {
        int d = perm[j];
        st[d] = (bcast >> d) & 1u ? 0 : s;
        s *= (bcast >> d) & 1u ? 1 : shape[d];
    }
}

static void random_perm(int nd, int *perm)
{
    for (int i = 0; i < nd; i++)
        perm[i] = i;
    for (int i = nd - 1; i > 0; i--) {
        int j = (int)(test_u32() % (uint32_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

TEST(coalesced_offsets_match_per_dim_offsets)
{
    int bad = 0, narrow = 0, merged = 0;
    for (int r = 0; r < 3000; r++) {
        int nd = 1 + (int)(test_u32() % OSP_MAX_DIMS);
        int64_t shape[OSP_MAX_DIMS], s0[OSP_MAX_DIMS], s1[OSP_MAX_DIMS], numel = 1;
        for (int d = 0; d < nd; d++) {
            shape[d] = 1 + test_u32() % (nd > 5 ? 3 : 6);
            numel *= shape[d];
        }
        /* operand 0 contiguous or permuted; operand 1 broadcast along some
         * dims, permuted in a third of the cases */
        int p0[OSP_MAX_DIMS], p1[OSP_MAX_DIMS];
        for (int d = 0; d < nd; d++)
            p0[d] = p1[d] = d;
        if (r % 2)
            random_perm(nd, p0);
        if (r % 3 == 0)
            random_perm(nd, p1);
        layout(nd, shape, p0, 0, s0);
        layout(nd, shape, p1, test_u32() & ((1u << nd) - 1), s1);
        cu_index ix = cu_index_plan(nd, shape, s0, s1);
        narrow += ix.narrow;
        merged += ix.nd < nd;
        for (int64_t i = 0; i < numel; i++) {
            int64_t w0, w1, a0, a1, b0, b1;
            naive_offsets(nd, shape, s0, s1, i, &w0, &w1);
            cu_offsets_wide(ix, i, &a0, &a1);
            cu_offsets_narrow(ix, (uint32_t)i, &b0, &b1);
            bad += a0 != w0 || a1 != w1 || b0 != w0 || b1 != w1;
        }
    }
    CHECK(bad == 0);
    CHECK(narrow == 3000 && merged > 1000); /* both paths exercised, dims merged */
}

TEST(coalescing_of_the_models_shapes)
{
    /* adaLN modulation x[B, N, D] · s[B, 1, D]: 3 dims stay 3 */
    int64_t shape[] = {2, 1024, 1152};
    int64_t sx[] = {1024 * 1152, 1152, 1}, ss[] = {1152, 0, 1};
    cu_index ix = cu_index_plan(3, shape, sx, ss);
    CHECK(ix.nd == 3 && ix.narrow);
    /* a row broadcast [R, D] + [D] (as [1, D]): 2 dims */
    int64_t rows[] = {4096, 1152}, sr[] = {1152, 1}, sb[] = {0, 1};
    ix = cu_index_plan(2, rows, sr, sb);
    CHECK(ix.nd == 2 && ix.shape[0] == 4096 && ix.shape[1] == 1152);
    /* same-shape operands: one dim */
    ix = cu_index_plan(3, shape, sx, sx);
    CHECK(ix.nd == 1 && ix.shape[0] == 2 * 1024 * 1152);
    /* size-1 dims vanish; a single element is one dim of 1 */
    int64_t ones[] = {1, 1, 1}, any[] = {7, 9, 3};
    ix = cu_index_plan(3, ones, any, any);
    CHECK(ix.nd == 1 && ix.shape[0] == 1);
    /* 2^31 elements or offsets take the 64-bit path */
    int64_t big[] = {1 << 16, 1 << 15}, sbig[] = {1 << 15, 1}, zero[] = {0, 0};
    CHECK(!cu_index_plan(2, big, sbig, zero).narrow);
    int64_t small[] = {3, 4}, far[] = {(int64_t)1 << 30, 1};
    CHECK(!cu_index_plan(2, small, far, far).narrow);
    CHECK(cu_index_plan(2, small, (int64_t[]){4, 1}, (int64_t[]){1, 3}).narrow);
    /* the wide path's offsets beyond 2^31 */
    int64_t o0, o1;
    ix = cu_index_plan(2, small, far, (int64_t[]){1, 3});
    cu_offsets_wide(ix, 11, &o0, &o1);
    CHECK(o0 == 2 * ((int64_t)1 << 30) + 3 && o1 == 2 + 9);
}

int main(void)
{
    RUN(division_by_multiply_and_shift);
    RUN(coalesced_offsets_match_per_dim_offsets);
    RUN(coalescing_of_the_models_shapes);
    return test_summary();
}
