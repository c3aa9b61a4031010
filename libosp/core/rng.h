/* rng.h — deterministic random numbers: Philox-4x32-10 and the samplers
 * built on it. The same (seed, element index) gives the same bits on every
 * backend, thread count and split of the work. This header is the
 * specification a CUDA kernel follows to reproduce them bit for bit.
 *
 * 1. Philox-4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11; the Random123
 *    constants). State: counter c[4], key k[2], all uint32. Ten rounds;
 *    round r (r = 0..9) uses the key k + r·W (mod 2^32 per word) with
 *    W = {0x9E3779B9, 0xBB67AE85}, and maps
 *      p0 = 0xD2511F53 · c[0] (64-bit product),  p1 = 0xCD9E8D57 · c[2]
 *      c' = { hi(p1) ^ c[1] ^ k[0],  lo(p1),  hi(p0) ^ c[3] ^ k[1],  lo(p0) }
 *    The output is c after round 9 (known-answer vectors in test_rng.c).
 *
 * 2. Element e of the stream for a 64-bit seed (e = offset + j for dst[j]):
 *      key     = { lo32(seed), hi32(seed) }
 *      counter = { lo32(e / 4), hi32(e / 4), 0, 0 }
 *      out     = philox4x32_10(counter, key);  lane = e % 4
 *    So a stream holds 2^64 elements; counter words 2 and 3 are always 0.
 *
 * 3. Uniform: u = (float)(out[lane] >> 8) · 2^-24, in [0, 1), exact.
 *
 * 4. Normal (Box-Muller on the lane pair {0,1} or {2,3} of one block;
 *    lane 2m+j takes the pair (a, b) = (out[2m], out[2m+1])):
 *      u     = (2a + 1) · 2^-33                          in (0, 1), exact
 *      r     = sqrt(-2 · ln u)
 *      theta = 2π · b · 2^-32
 *      z     = j == 0 ? r · cos(theta) : r · sin(theta)
 *    computed in double by osp_rng_box_muller (rng.c spells out the
 *    polynomials and reductions it uses for ln, cos and sin) with only
 *    IEEE-754 double +, -, *, / and sqrt, each correctly rounded and never
 *    fused into an FMA, in a fixed order; z is then rounded to float once
 *    (nearest even). A CUDA port does the same operations in the same
 *    order with __dadd_rn/__dmul_rn/__ddiv_rn/__dsqrt_rn (never
 *    contracted) and __double2float_rn, and so gets the same bits; libm's
 *    log/sin/cos are not used because their last bits differ between
 *    libraries. (The floats equal a glibc log/cos/sin computation in all
 *    4e7 draws tested; test_rng.c pins the first normals of seed 42 for a
 *    port to check against.) |z| <= 6.77.
 *
 * Seeds: callers derive independent streams by giving them different
 * seeds (or disjoint element ranges of one seed). Normals and uniforms of
 * one seed come from the same Philox outputs, so do not draw both from it. */
#ifndef OSP_RNG_H
#define OSP_RNG_H

#include <stdint.h>

#include "error.h"

/* The Philox-4x32-10 block function. */
void osp_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Two normals from one lane pair (a, b): z[0] = r·cos(theta), z[1] =
 * r·sin(theta), exactly as in step 4 above. */
void osp_rng_box_muller(uint32_t a, uint32_t b, float z[2]);

/* dst[j] = element offset + j of the seed's stream, for j < n. Fails
 * (OSP_ERR_RUNTIME) when n < 0 or offset + n exceeds 2^64. OpenMP-parallel;
 * the result does not depend on the thread count. The tensor op is
 * osp_randn (backend/ops_random.h). */
osp_status osp_rng_normal_fill(float *dst, int64_t n, uint64_t seed, uint64_t offset);
osp_status osp_rng_uniform_fill(float *dst, int64_t n, uint64_t seed, uint64_t offset);

#endif
