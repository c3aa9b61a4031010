/* common.cuh — helpers every kernel file shares: launch geometry,
 * grid-stride loops, block reductions, and the node plumbing from
 * backend/cuda/cuda_util.h. */
#ifndef OSP_KERNELS_COMMON_CUH
#define OSP_KERNELS_COMMON_CUH

#include <math.h>
#include <stdint.h>

extern "C" {
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_util.h"
}

#define CU_THREADS 256
/* Grid-stride loops keep the grid at most this many blocks. The emulated
 * build (tests/cuemu) can lower it, OSP_CUEMU_MAX_BLOCKS, so that a small
 * test runs the loops' later turns as a tensor of millions would. */
#ifdef OSP_CUEMU
#define CU_MAX_BLOCKS cuemu::max_blocks()
#else
#define CU_MAX_BLOCKS 65536
#endif

static inline unsigned cu_grid(int64_t n, int threads = CU_THREADS)
{
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : b > CU_MAX_BLOCKS ? CU_MAX_BLOCKS : b);
}

#define CU_FOR(i, n)                                                                  \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);          \
         i += (int64_t)gridDim.x * blockDim.x)

/* Sums v over the block (blockDim.x a multiple of 32, at most 1024); every
 * thread gets the total. `shared` holds 32 T. */
template <typename T> __device__ inline T block_sum(T v, T *shared)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads(); /* shared may still be read by a previous call */
    if (lane == 0)
        shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : (T)0;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Maximum over the block, NaN-propagating when `nan` is set by a thread. */
__device__ inline float block_max(float v, float *shared)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0)
        shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Rows and row length of a tensor viewed as [rows, last axis]. */
static inline void cu_rows_cols(const osp_tensor *t, int64_t *rows, int64_t *cols)
{
    *cols = t->ndim ? t->shape[t->ndim - 1] : 1;
    *rows = *cols ? osp_numel(t) / *cols : 0;
}

/* Spatial geometry of [N, C, *S] tensors with 1-3 spatial dims, padded to
 * 3-D with unit leading dims (as the CPU kernels do). */
struct cu_geom3 {
    int64_t planes;
    int64_t in[3], out[3], k[3], s[3], p[3];
    int64_t in_size, out_size;
};

static inline cu_geom3 cu_geom3_of(const osp_tensor *x, const osp_tensor *y,
                                   const osp_window *win)
{
    cu_geom3 g;
    int nsp = x->ndim - 2, lead = 3 - nsp;
    g.planes = x->shape[0] * x->shape[1];
    g.in_size = g.out_size = 1;
    for (int d = 0; d < 3; d++) {
        int j = d - lead;
        g.in[d] = j >= 0 ? x->shape[2 + j] : 1;
        g.out[d] = j >= 0 ? y->shape[2 + j] : 1;
        g.k[d] = j >= 0 && win ? win->kernel[j] : 1;
        g.s[d] = j >= 0 && win ? win->stride[j] : 1;
        g.p[d] = j >= 0 && win ? win->pad[j] : 0;
        g.in_size *= g.in[d];
        g.out_size *= g.out[d];
    }
    return g;
}

#endif
