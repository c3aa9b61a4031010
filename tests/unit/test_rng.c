/* test_rng.c — Philox-4x32-10 known answers, the documented stream
 * mapping, split and thread-count independence, the Box-Muller sampler
 * against libm, and statistical sanity. */
#include "backend/ops_random.h"
#include "core/rng.h"
#include "test.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

TEST(philox_known_answers)
{
    /* Random123's tests/kat_vectors, the three "philox4x32 10" lines:
     * counter[4], key[2] -> output[4]. */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        osp_philox4x32_10(kat[k], kat[k] + 4, out);
        for (int i = 0; i < 4; i++)
            CHECK(out[i] == kat[k][6 + i]);
    }
}

/* Element e of the seed's stream, as rng.h steps 2 and 3 define it. */
static float documented_uniform(uint64_t seed, uint64_t e)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)(e / 4), (uint32_t)(e / 4 >> 32), 0, 0};
    uint32_t out[4];
    osp_philox4x32_10(ctr, key, out);
    return (float)(out[e % 4] >> 8) * 0x1p-24f;
}

TEST(stream_follows_the_documented_mapping)
{
    const uint64_t seed = 0xFEEDFACE12345678ull, offset = 0x123456789ABCDEF1ull;
    float u[11], z[11];
    CHECK(osp_rng_uniform_fill(u, 11, seed, offset) == OSP_OK);
    CHECK(osp_rng_normal_fill(z, 11, seed, offset) == OSP_OK);
    for (int j = 0; j < 11; j++) {
        uint64_t e = offset + (uint64_t)j;
        CHECK(u[j] == documented_uniform(seed, e));
        const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
        const uint32_t ctr[4] = {(uint32_t)(e / 4), (uint32_t)(e / 4 >> 32), 0, 0};
        uint32_t out[4];
        float pair[2];
        osp_philox4x32_10(ctr, key, out);
        unsigned lane = (unsigned)(e % 4);
        osp_rng_box_muller(out[lane & 2], out[(lane & 2) + 1], pair);
        CHECK(z[j] == pair[lane & 1]);
    }
    /* The last elements of the 2^64 range work; one more is an error. */
    CHECK(osp_rng_normal_fill(z, 3, 7, UINT64_MAX - 2) == OSP_OK);
    CHECK(osp_rng_normal_fill(z, 3, 7, UINT64_MAX - 1) == OSP_ERR_RUNTIME);
    CHECK(osp_rng_uniform_fill(z, -1, 7, 0) == OSP_ERR_RUNTIME);
}

/* Pinned output bits (seed 42, elements 0..7) for ports of the stream
 * (the CUDA kernel) and other builds to check against. */
TEST(normal_bits_are_pinned)
{
    static const uint32_t want[8] = {
        0xbf785e5c, 0x3e46ace8, 0xbf9e28d2, 0x3ff6433b, /* -0.97019  0.19402 -1.23562  1.92393 */
        0xbd95e030, 0x3e0e7a0f, 0xbf8da733, 0x3ea742fd, /* -0.07318  0.13914 -1.10667  0.32668 */
    };
    float z[8];
    CHECK(osp_rng_normal_fill(z, 8, 42, 0) == OSP_OK);
    for (int i = 0; i < 8; i++) {
        uint32_t bits;
        memcpy(&bits, &z[i], sizeof bits);
        if (bits != want[i])
            printf("#   element %d: 0x%08x (%.9g), want 0x%08x\n", i, bits, z[i], want[i]);
        CHECK(bits == want[i]);
    }
}

/* The polynomial ln/cos/sin of rng.c against libm, in double: the float
 * results agree except where the exact value sits within a few double ulps
 * of a float rounding boundary. */
TEST(box_muller_matches_libm)
{
    const int n = 200000;
    int differ = 0;
    double worst_ulps = 0;
    for (int k = 0; k < n; k++) {
        const uint32_t ctr[4] = {(uint32_t)k, 0, 0, 0}, key[2] = {1234, 5};
        uint32_t out[4];
        osp_philox4x32_10(ctr, key, out);
        /* Also the extremes of both inputs. */
        if (k < 4) {
            out[0] = k & 1 ? 0xFFFFFFFFu : 0;
            out[1] = k & 2 ? 0xFFFFFFFFu : 0x40000000u * (uint32_t)k;
        }
        float z[2];
        osp_rng_box_muller(out[0], out[1], z);
        double r = sqrt(-2.0 * log(((double)out[0] * 2 + 1) * 0x1p-33));
        double theta = 2 * M_PI * out[1] * 0x1p-32;
        double ref[2] = {r * cos(theta), r * sin(theta)};
        for (int j = 0; j < 2; j++) {
            float want = (float)ref[j];
            /* At theta = a multiple of π/2, rng.c gives an exact 0 where libm
             * gives r·6e-17; count only differences above that. */
            if (z[j] != want && fabs(z[j] - ref[j]) > 1e-15) {
                differ++;
                if (differ <= 3)
                    printf("#   a 0x%08x b 0x%08x: %.9g vs libm %.17g\n", out[0], out[1],
                           z[j], ref[j]);
                double ulps = fabs(z[j] - want) / (nextafterf(fabsf(want), INFINITY) - fabsf(want));
                worst_ulps = fmax(worst_ulps, ulps);
            }
        }
    }
    printf("#   %d of %d normals differ from the libm computation, by at most %.0f float ulp\n",
           differ, 2 * n, worst_ulps);
    CHECK(worst_ulps <= 1);
    CHECK(differ <= 20);
}

static bool fills_agree(bool normal, int threads)
{
    enum { N = 1003 };
    const uint64_t seed = 99, offset = 5;
    static float whole[N], parts[N];
    osp_status (*fill)(float *, int64_t, uint64_t, uint64_t) =
        normal ? osp_rng_normal_fill : osp_rng_uniform_fill;
    int old = omp_get_max_threads();
    omp_set_num_threads(1);
    fill(whole, N, seed, offset);
    omp_set_num_threads(threads);
    const int64_t sizes[] = {1, 2, 3, 7, 0, 990};
    int64_t at = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        fill(parts + at, sizes[i], seed, offset + (uint64_t)at);
        at += sizes[i];
    }
    omp_set_num_threads(old);
    return at == N && memcmp(whole, parts, sizeof whole) == 0;
}

TEST(split_and_thread_count_do_not_change_bits)
{
    for (int threads = 1; threads <= 4; threads += 3) {
        CHECK(fills_agree(true, threads));
        CHECK(fills_agree(false, threads));
    }
}

TEST(randn_tensor_is_the_stream)
{
    int64_t shape[] = {3, 5, 7}, half[] = {3, 5, 4};
    osp_tensor *y = osp_randn(3, shape, OSP_DEVICE_CPU, 2024, 10);
    CHECK(y && y->dtype == OSP_F32 && osp_numel(y) == 105);
    if (!y)
        return;
    float want[105];
    osp_rng_normal_fill(want, 105, 2024, 10);
    CHECK(memcmp(osp_f32(y), want, sizeof want) == 0);
    /* A later range of the stream continues it. */
    osp_tensor *tail = osp_randn(3, half, OSP_DEVICE_CPU, 2024, 10 + 105);
    float more[60];
    osp_rng_normal_fill(more, 60, 2024, 115);
    CHECK(tail && memcmp(osp_f32(tail), more, sizeof more) == 0);
    CHECK(osp_randn(3, shape, OSP_DEVICE_CPU, 1, UINT64_MAX - 50) == NULL);
    CHECK(osp_error_code() == OSP_ERR_RUNTIME);
}

TEST(normal_and_uniform_statistics)
{
    const int64_t n = 1000000;
    float *z = malloc((size_t)n * sizeof *z), *u = malloc((size_t)n * sizeof *u);
    CHECK(osp_rng_normal_fill(z, n, 31337, 0) == OSP_OK);
    CHECK(osp_rng_uniform_fill(u, n, 31337, 0) == OSP_OK);
    double sum = 0, sq = 0, lag = 0, umean = 0, umin = 1, umax = 0;
    int64_t tails = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += z[i];
        sq += (double)z[i] * z[i];
        lag += i ? (double)z[i] * z[i - 1] : 0;
        tails += fabsf(z[i]) > 1.959964f;
        umean += u[i];
        umin = fmin(umin, u[i]);
        umax = fmax(umax, u[i]);
    }
    double mean = sum / n, var = sq / n - mean * mean, frac = (double)tails / n;
    printf("#   normal mean %.5f var %.5f lag-1 corr %.5f P(|z|>1.96) %.5f; uniform mean %.5f\n",
           mean, var, lag / n, frac, umean / n);
    /* 5 sigma bounds for n = 1e6. */
    CHECK(fabs(mean) < 5 / sqrt((double)n));
    CHECK(fabs(var - 1) < 5 * sqrt(2.0 / n));
    CHECK(fabs(lag / n) < 5 / sqrt((double)n));
    CHECK(fabs(frac - 0.05) < 5 * sqrt(0.05 * 0.95 / n));
    CHECK(fabs(umean / n - 0.5) < 5 * sqrt(1.0 / 12 / n));
    CHECK(umin >= 0 && umax < 1);
    free(z);
    free(u);
}

int main(void)
{
    RUN(philox_known_answers);
    RUN(stream_follows_the_documented_mapping);
    RUN(normal_bits_are_pinned);
    RUN(box_muller_matches_libm);
    RUN(split_and_thread_count_do_not_change_bits);
    RUN(randn_tensor_is_the_stream);
    RUN(normal_and_uniform_statistics);
    return test_summary();
}
