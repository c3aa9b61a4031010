/* cuemu.h — what a CUDA kernel file needs to compile and run on the host,
 * force-included (g++ -include) into the kernels of the emulated build
 * (make EMU=1; see tests/cuemu/README.md). Kernels keep their source: the
 * build rewrites each launch `k<<<grid, block, smem, stream>>>(args)` into
 * `cuemu::launch(k, grid, block, smem, stream)(args)` (translate.sh), and
 * every CUDA thread of a block runs as a fiber of tests/cuemu/threads.cc,
 * so barriers, warp shuffles and the warp-wide mma.sync meet as they do on
 * a GPU. This is a test tool: it checks that kernels compute what the CPU
 * reference computes and that they use barriers and warps legally; it
 * says nothing about speed or the memory model. OSP_CUEMU_ORDER=reverse
 * or =warps runs blocks and threads in another order (threads.cc): a
 * result that changes with it depends on an order the GPU leaves open. */
#ifndef OSP_CUEMU_H
#define OSP_CUEMU_H

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <tuple>
#include <type_traits>

/* After the NVIDIA headers (which must see a host compiler): the kernels
 * and the project's headers take their device paths. */
#define __CUDACC__ 1
#define __CUDA_ARCH__ 900
#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __forceinline__
#define __global__
#define __device__
#define __host__
/* Shared memory is a static of the kernel: blocks run one at a time, and
 * every fiber of the block sees the same array. translate.sh follows each
 * declaration with shared_fresh, which poisons it at each block's start. */
#define __shared__ static
#define __forceinline__ inline
#define __launch_bounds__(...)

/* The running fiber's coordinates (threads.cc sets them at each switch). */
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

namespace cuemu {

/* Runs body once per thread of every block of the grid; a launch the GPU
 * would refuse sets the error cudaGetLastError returns. */
void run(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()> &body);

/* Barriers of the calling fiber: the whole block, or its warp only. The
 * block barrier returns the OR of every thread's pred. */
bool block_barrier(bool pred);
void warp_barrier(const char *op);

/* Poisons a __shared__ array (all bits set: NaN as float) the first time a
 * thread of the running block declares it, so a read before any write
 * shows instead of seeing the previous block's values. */
void shared_fresh(void *array, size_t bytes);

/* The order threads and blocks run in, as OSP_CUEMU_ORDER names it
 * (forward, the default; reverse; warps: see threads.cc), for the
 * emulator's own tests. */
void set_schedule(const char *name);

/* The cap on grid-stride grids (kernels/common.cuh's CU_MAX_BLOCKS):
 * OSP_CUEMU_MAX_BLOCKS, 65536 (the real build's) by default. */
unsigned max_blocks();

/* The calling thread's lane, and its warp's 32 slots of 16 bytes for
 * exchanging registers. */
unsigned lane();
unsigned char (*warp_slots())[16];

/* Warp-wide D = A·B + C of mma.sync.m16n8k16 with bf16 inputs and float32
 * accumulation, from each lane's fragments (PTX ISA layout). */
void mma_m16n8k16_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1);

/* A launch as the build rewrites it (translate.sh): kernel is a lambda
 * calling the kernel, so templates are still deduced from the arguments,
 * which are copied once, as a launch copies them, for every thread. */
template <typename K> struct launcher {
    K kernel;
    dim3 grid, block;
    size_t shared_bytes;

    template <typename... A> void operator()(A &&...a) const
    {
        std::tuple<std::decay_t<A>...> args(std::forward<A>(a)...);
        run(grid, block, shared_bytes, [&] { std::apply(kernel, args); });
    }
};

template <typename K>
launcher<K> launch(K kernel, dim3 grid, dim3 block, size_t shared_bytes = 0,
                   cudaStream_t stream = 0)
{
    (void)stream; /* one stream, run in order */
    return launcher<K>{kernel, grid, block, shared_bytes};
}

} // namespace cuemu

/* ---- device built-ins ---- */

inline void __syncthreads() { cuemu::block_barrier(false); }
inline int __syncthreads_or(int pred) { return cuemu::block_barrier(pred != 0); }

template <typename T> T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
    static_assert(sizeof(T) <= 16, "a shuffled value fits a slot");
    (void)mask;
    unsigned char(*slot)[16] = cuemu::warp_slots();
    unsigned me = cuemu::lane(), from = (me ^ (unsigned)lane_mask) % (unsigned)width +
                                        me / (unsigned)width * (unsigned)width;
    memcpy(slot[me], &v, sizeof v);
    cuemu::warp_barrier("__shfl_xor_sync");
    T r;
    memcpy(&r, slot[from], sizeof r);
    cuemu::warp_barrier("__shfl_xor_sync"); /* the slots are read before reuse */
    return r;
}

/* Atomics need nothing more: fibers switch only at barriers. */
template <typename T> T atomicAdd(T *p, T v)
{
    T old = *p;
    *p = old + v;
    return old;
}
template <typename T> T atomicMin(T *p, T v)
{
    T old = *p;
    *p = v < old ? v : old;
    return old;
}

/* Correctly rounded arithmetic: plain operations (the emulated build
 * compiles with -ffp-contract=off, so nothing is fused behind our back). */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return sqrt(a); }
inline float __double2float_rn(double a) { return (float)a; }
inline float __expf(float a) { return expf(a); }

inline uint32_t __float_as_uint(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
inline float __uint_as_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
inline uint32_t __umulhi(uint32_t a, uint32_t b) { return (uint32_t)(((uint64_t)a * b) >> 32); }
inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }

#endif
