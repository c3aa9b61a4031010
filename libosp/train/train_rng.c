/* train_rng.c — see train_rng.h. */
#include "train_rng.h"

#include <stdlib.h>

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

osp_status osp_epoch_order_init(osp_epoch_order *o, size_t n, uint64_t seed)
{
    *o = (osp_epoch_order){.seed = seed, .n = n, .epoch = -1};
    if (n == 0 || n > UINT32_MAX)
        return osp_error(OSP_ERR_DATA, "%zu items: an epoch holds 1 to 2^32", n);
    if (!(o->perm = malloc(n * sizeof *o->perm)))
        return osp_error_nomem("epoch permutation", n * sizeof *o->perm);
    return OSP_OK;
}

void osp_epoch_order_free(osp_epoch_order *o)
{
    free(o->perm);
    o->perm = NULL;
}

size_t osp_epoch_order_item(osp_epoch_order *o, int64_t i)
{
    int64_t epoch = i / (int64_t)o->n;
    if (epoch != o->epoch) {
        uint64_t key = osp_stream_seed(o->seed, OSP_STREAM_PERM, (uint64_t)epoch);
        for (size_t j = 0; j < o->n; j++)
            o->perm[j] = j;
        for (size_t j = o->n; j-- > 1;) {
            size_t r = (size_t)osp_random_below(key, j, j + 1), tmp = o->perm[j];
            o->perm[j] = o->perm[r];
            o->perm[r] = tmp;
        }
        o->epoch = epoch;
    }
    return o->perm[i % (int64_t)o->n];
}
