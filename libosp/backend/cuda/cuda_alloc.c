/* cuda_alloc.c — the caching device allocator behind CUDA tensors.
 *
 * Requests round up to a size class: multiples of 512 bytes up to 4 KiB,
 * then four classes per power of two (2^k, 1.25·2^k, 1.5·2^k, 1.75·2^k),
 * so at most 25% is lost to rounding. A released block goes onto its
 * class's free list and the next request of that class takes it back
 * without touching the driver. Reuse is safe without synchronising: every
 * kernel runs on the one stream, so work queued after a release runs after
 * the work that used the block before.
 *
 * Blocks of one class serve only that class, so a run whose tensors come
 * in many sizes (the VAE decoder: each resolution, each tile shape) would
 * otherwise keep the most blocks it ever held of every class at once —
 * 58 GB reserved for a tiled decode (bench/RESULTS.md, cuda). The cache
 * is therefore bounded: when a request misses and the cached bytes exceed
 * the limit (the larger of 1 GiB and the peak bytes in use by tensors so
 * far, or OSP_CUDA_CACHE_MB), the largest cached blocks go back to the
 * driver until half the limit is left. When cudaMalloc fails, the whole
 * cache is returned and the allocation tried once more; a second failure
 * is reported as out of device memory with the size requested. */
#include "cuda.h"
#include "cuda_util.h"
#include "core/log.h"

#include <stdint.h>
#include <stdlib.h>

#define MIN_CLASS_BYTES 512u
#define SMALL_LIMIT 4096u
#define N_CLASSES 256
#define CACHE_FLOOR ((size_t)1 << 30)

typedef struct block {
    void *ptr;
    size_t size; /* the class size */
    int cls;
    struct block *next;
} block;

static block *free_lists[N_CLASSES];
static osp_cuda_memory stats;

/* The class of nbytes and its size; -1 when larger than any class. */
static int size_class(size_t nbytes, size_t *size)
{
    if (nbytes <= SMALL_LIMIT) {
        size_t units = nbytes ? (nbytes + MIN_CLASS_BYTES - 1) / MIN_CLASS_BYTES : 1;
        *size = units * MIN_CLASS_BYTES;
        return (int)units - 1; /* classes 0..7 */
    }
    int k = 63 - __builtin_clzll((unsigned long long)(nbytes - 1)); /* 2^k < nbytes <= 2^(k+1) */
    size_t base = (size_t)1 << k, quarter = base / 4;
    size_t steps = (nbytes - base + quarter - 1) / quarter; /* 1..4 */
    *size = base + steps * quarter;
    int cls = 8 + (k - 12) * 4 + (int)steps - 1;
    return cls < N_CLASSES ? cls : -1;
}

static void release_to_cache(osp_storage *s)
{
    block *b = s->owner;
    stats.in_use -= b->size;
    stats.cached += b->size;
    b->next = free_lists[b->cls];
    free_lists[b->cls] = b;
}

/* Returns cached blocks to the driver, largest first, until at most
 * `keep` bytes are cached. */
static void trim_cache(size_t keep)
{
    if (stats.cached <= keep)
        return;
    /* queued kernels may still use them; an error a kernel left is
     * reported by the next op's check, so it is not consumed here */
    if (cudaStreamSynchronize(cu_stream()) != cudaSuccess)
        return;
    for (int c = N_CLASSES - 1; c >= 0 && stats.cached > keep; c--) {
        while (free_lists[c] && stats.cached > keep) {
            block *b = free_lists[c];
            free_lists[c] = b->next;
            cudaFree(b->ptr);
            stats.cached -= b->size;
            free(b);
        }
    }
}

void osp_cuda_empty_cache(void)
{
    if (osp_cuda_available())
        trim_cache(0);
}

/* The most bytes the cache keeps (see the top of the file). */
static size_t cache_limit(void)
{
    static long long mb = -2; /* -2: not read yet; -1: not set */
    if (mb == -2) {
        const char *e = getenv("OSP_CUDA_CACHE_MB");
        mb = -1;
        if (e && *e) {
            char *end;
            long long v = strtoll(e, &end, 10);
            if (*end || v < 0 || v > (long long)(SIZE_MAX >> 21))
                osp_log_warn("OSP_CUDA_CACHE_MB=%s is not a number of MiB; ignored", e);
            else
                mb = v;
        }
    }
    if (mb >= 0)
        return (size_t)mb << 20;
    return stats.peak > CACHE_FLOOR ? stats.peak : CACHE_FLOOR;
}

osp_cuda_memory osp_cuda_memory_stats(void) { return stats; }

osp_storage *cu_alloc(size_t nbytes)
{
    if (!osp_cuda_available()) {
        osp_error(OSP_ERR_RUNTIME, "CUDA: no usable device (%s)", osp_cuda_unavailable_reason());
        return NULL;
    }
    size_t size;
    int cls = size_class(nbytes, &size);
    if (cls < 0) {
        osp_error(OSP_ERR_NOMEM, "CUDA: %zu bytes is beyond any device allocation", nbytes);
        return NULL;
    }
    block *b = free_lists[cls];
    if (b) {
        free_lists[cls] = b->next;
        stats.cached -= b->size;
    } else {
        size_t limit = cache_limit();
        if (stats.cached > limit)
            trim_cache(limit / 2);
        b = calloc(1, sizeof *b);
        if (!b) {
            osp_error_nomem("device block record", sizeof *b);
            return NULL;
        }
        cudaError_t e = cudaMalloc(&b->ptr, size);
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            osp_cuda_empty_cache();
            e = cudaMalloc(&b->ptr, size);
        }
        if (e != cudaSuccess) {
            cudaGetLastError();
            free(b);
            if (e == cudaErrorMemoryAllocation)
                osp_error(OSP_ERR_NOMEM,
                          "CUDA: out of device memory allocating %zu bytes (%zu in use by tensors)",
                          nbytes, stats.in_use);
            else
                osp_error(OSP_ERR_RUNTIME, "CUDA: cudaMalloc of %zu bytes: %s", nbytes,
                          cudaGetErrorString(e));
            return NULL;
        }
        b->size = size;
        b->cls = cls;
        if (stats.in_use + stats.cached + size > stats.reserved_peak)
            stats.reserved_peak = stats.in_use + stats.cached + size;
    }
    stats.in_use += b->size;
    if (stats.in_use > stats.peak)
        stats.peak = stats.in_use;
    osp_storage *s = osp_storage_new(b->ptr, nbytes, OSP_DEVICE_CUDA, release_to_cache, b);
    if (!s) {
        stats.in_use -= b->size;
        stats.cached += b->size;
        b->next = free_lists[cls];
        free_lists[cls] = b;
    }
    return s;
}

osp_storage *cu_scratch(size_t nbytes) { return cu_alloc(nbytes); }
