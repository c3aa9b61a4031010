/* train_rng.c — see train_rng.h. */
#include "train_rng.h"

#include "core/rng.h"

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t osp_stream_seed(uint64_t seed, int what, uint64_t index)
{
    return splitmix64(splitmix64(splitmix64(seed) ^ (uint64_t)what) ^ index);
}

uint32_t osp_random_u32(uint64_t key, uint64_t counter)
{
    const uint32_t ctr[4] = {(uint32_t)counter, (uint32_t)(counter >> 32), 0, 0};
    const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
    uint32_t out[4];
    osp_philox4x32_10(ctr, k, out);
    return out[0];
}

uint64_t osp_random_below(uint64_t key, uint64_t counter, uint64_t n)
{
    return ((uint64_t)osp_random_u32(key, counter) * n) >> 32;
}
