/* test_threads.cu — the emulator's GPU threads (threads.cc) on kernels
 * written for the purpose: block barriers between phases that read each
 * other's writes, warp shuffles, __syncthreads_or, 2-D and 3-D blocks,
 * mma.sync against a plain product, shared memory poisoned per block, the
 * reverse and warps schedules exposing missing barriers, launches the GPU
 * refuses, and the
 * misuses that must stop the program (run in a child process). Built and
 * run by `make EMU=1 test-cuda` (translated like the kernels). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;

static void check(bool ok, const char *what)
{
    printf("%s %d - %s\n", ok ? "ok" : "not ok", passed + failed + 1, what);
    ok ? passed++ : failed++;
}

/* Each thread writes its slot, then reads its neighbour's after a barrier:
 * without the barrier it would read the previous round's value. */
__global__ void rotate(int *out, int rounds)
{
    __shared__ int ring[256];
    int t = threadIdx.x, v = t;
    for (int r = 0; r < rounds; r++) {
        ring[t] = v;
        __syncthreads();
        v = ring[(t + 1) % blockDim.x];
        __syncthreads();
    }
    out[blockIdx.x * blockDim.x + t] = v;
}

/* Block 0 fills its shared array; later blocks, and later launches, read
 * theirs unwritten: on a GPU undefined, here all bits set. */
__global__ void fill_or_peek(int *out, int fill)
{
    __shared__ int s[32];
    int t = threadIdx.x;
    if (fill && blockIdx.x == 0)
        s[t] = 7;
    __syncthreads();
    out[blockIdx.x * blockDim.x + t] = s[t];
}

/* Reads the neighbour below without a barrier between the write and the
 * read: right only when the lower thread happens to run first. */
__global__ void shift_without_barrier(int *out)
{
    __shared__ int s[64];
    int t = threadIdx.x;
    s[t] = t;
    out[t] = s[t > 0 ? t - 1 : 0];
}

/* Two block sums through one shared array, with no barrier before the
 * second pass writes it: right only while no warp runs ahead into the
 * second pass before the others have read the first. */
__global__ void sums_reusing_shared(const float *x, float *out)
{
    __shared__ float s[2];
    float v = x[threadIdx.x];
    for (int pass = 0; pass < 2; pass++) {
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_xor_sync(0xffffffffu, v, o);
        if (threadIdx.x % 32 == 0)
            s[threadIdx.x / 32] = v;
        __syncthreads();
        v = s[0] + s[1];
    }
    out[threadIdx.x] = v;
}

__global__ void log_block_order(int *log, int *next)
{
    if (threadIdx.x == 0)
        log[blockIdx.x] = (*next)++;
}

__global__ void warp_sum(const float *x, float *out)
{
    float v = x[blockIdx.x * blockDim.x + threadIdx.x];
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

__global__ void any_odd(const int *x, int *out)
{
    int r = __syncthreads_or(x[threadIdx.x] & 1);
    if (threadIdx.x == 0)
        out[blockIdx.x] = r;
}

__global__ void coords(int *out)
{
    int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    out[b * blockDim.x * blockDim.y * blockDim.z + t] = b * 1000 + t;
}

/* One warp: A (16x16) and B (16x8) loaded into fragments as the PTX ISA
 * lays them out, D = A·B through mma.sync. */
__global__ void mma_tile(const float *a, const float *b, float *d)
{
    int lane = threadIdx.x, g = lane / 4, t = lane % 4;
    auto pack = [](float lo, float hi) {
        __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
        uint32_t u;
        memcpy(&u, &v, sizeof u);
        return u;
    };
    uint32_t af[4];
    int rows[4] = {g, g + 8, g, g + 8}, cols[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
    for (int r = 0; r < 4; r++)
        af[r] = pack(a[rows[r] * 16 + cols[r]], a[rows[r] * 16 + cols[r] + 1]);
    uint32_t b0 = pack(b[(2 * t) * 8 + g], b[(2 * t + 1) * 8 + g]);
    uint32_t b1 = pack(b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g]);
    float c[4] = {0, 0, 0, 0};
    cuemu::mma_m16n8k16_bf16(c, af, b0, b1);
    d[g * 8 + 2 * t] = c[0];
    d[g * 8 + 2 * t + 1] = c[1];
    d[(g + 8) * 8 + 2 * t] = c[2];
    d[(g + 8) * 8 + 2 * t + 1] = c[3];
}

__global__ void shuffle_after_exit(float *x)
{
    if (threadIdx.x == 5)
        return;
    x[threadIdx.x] = __shfl_xor_sync(0xffffffffu, x[threadIdx.x], 1);
}

__global__ void split_warp(float *x)
{
    if (threadIdx.x < 16)
        __syncthreads();
    else
        x[threadIdx.x] = __shfl_xor_sync(0xffffffffu, x[threadIdx.x], 1);
}

__global__ void short_warp(float *x) { x[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1); }

/* Runs fn in a child; true when it died with stderr naming `expect`. */
static bool dies_with(void (*fn)(void), const char *expect)
{
    int pipefd[2];
    if (pipe(pipefd))
        return false;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        fn();
        _exit(0);
    }
    close(pipefd[1]);
    char buf[512] = {0};
    size_t got = 0;
    for (ssize_t r; got < sizeof buf - 1 && (r = read(pipefd[0], buf + got, sizeof buf - 1 - got)) > 0;)
        got += (size_t)r;
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    return got > 0 && strstr(buf, expect) && !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static float scratch[64];
static void run_shuffle_after_exit(void) { shuffle_after_exit<<<1, 32>>>(scratch); }
static void run_split_warp(void) { split_warp<<<1, 32>>>(scratch); }
static void run_short_warp(void) { short_warp<<<1, 20>>>(scratch); }

int main(void)
{
    cuemu::set_schedule("forward"); /* whatever OSP_CUEMU_ORDER says: the cases below expect it */
    int out[512];
    rotate<<<2, 256>>>(out, 3);
    bool ok = true;
    for (int i = 0; i < 512; i++)
        ok &= out[i] == (i % 256 + 3) % 256;
    check(ok, "__syncthreads orders a block's shared-memory rounds");

    float x[64], s[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i * i % 7);
    warp_sum<<<2, 32>>>(x, s);
    ok = true;
    for (int w = 0; w < 2; w++) {
        float want = 0;
        for (int i = 0; i < 32; i++)
            want += x[w * 32 + i];
        for (int i = 0; i < 32; i++)
            ok &= s[w * 32 + i] == want;
    }
    check(ok, "__shfl_xor_sync butterfly sums every lane of a warp");

    int bits[64] = {0}, any[2];
    bits[37] = 1;
    any_odd<<<1, 64>>>(bits, any);
    int none[64] = {0};
    any_odd<<<1, 64>>>(none, any + 1);
    check(any[0] == 1 && any[1] == 0, "__syncthreads_or");

    static int ids[2 * 3 * 4 * 5 * 2];
    coords<<<dim3(2, 3), dim3(4, 5, 2)>>>(ids);
    ok = cudaGetLastError() == cudaSuccess;
    for (int i = 0; i < (int)(sizeof ids / sizeof *ids); i++)
        ok &= ids[i] == i / 40 * 1000 + i % 40;
    check(ok, "2-D grids and 3-D blocks number their threads as CUDA does");

    float a[256], b[128], d[128];
    for (int i = 0; i < 256; i++)
        a[i] = (float)((i * 37 % 17) - 8) / 8; /* exact in bf16 */
    for (int i = 0; i < 128; i++)
        b[i] = (float)((i * 11 % 13) - 6) / 4;
    mma_tile<<<1, 32>>>(a, b, d);
    ok = true;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 8; c++) {
            float want = 0;
            for (int k = 0; k < 16; k++)
                want += a[r * 16 + k] * b[k * 8 + c];
            ok &= d[r * 8 + c] == want;
        }
    check(ok, "mma.sync m16n8k16 bf16 equals the product from PTX-layout fragments");

    int peek[64];
    fill_or_peek<<<2, 32>>>(peek, 1);
    ok = true;
    for (int i = 0; i < 64; i++)
        ok &= peek[i] == (i < 32 ? 7 : -1);
    fill_or_peek<<<1, 32>>>(peek, 0);
    for (int i = 0; i < 32; i++)
        ok &= peek[i] == -1;
    check(ok, "shared memory is poisoned at each block's start, not kept from the last");

    int shifted[64], log[3], next = 0;
    shift_without_barrier<<<1, 64>>>(shifted);
    log_block_order<<<3, 32>>>(log, &next);
    ok = log[0] == 0 && log[1] == 1 && log[2] == 2;
    for (int i = 0; i < 64; i++)
        ok &= shifted[i] == (i > 0 ? i - 1 : 0);
    cuemu::set_schedule("reverse");
    shift_without_barrier<<<1, 64>>>(shifted);
    log_block_order<<<3, 32>>>(log, &next);
    cuemu::set_schedule("forward");
    ok &= log[0] == 5 && log[1] == 4 && log[2] == 3;
    int wrong = 0;
    for (int i = 1; i < 64; i++)
        wrong += shifted[i] != i - 1;
    ok &= wrong == 63;
    check(ok, "the reverse order runs blocks and threads last first: a missing barrier shows");

    float ones[64], sums[64];
    for (int i = 0; i < 64; i++)
        ones[i] = 1;
    sums_reusing_shared<<<1, 64>>>(ones, sums);
    ok = true;
    for (int i = 0; i < 64; i++)
        ok &= sums[i] == 64 * 64;
    cuemu::set_schedule("warps");
    sums_reusing_shared<<<1, 64>>>(ones, sums);
    log_block_order<<<3, 32>>>(log, &next);
    cuemu::set_schedule("forward");
    ok &= log[0] == 8 && log[1] == 7 && log[2] == 6;
    for (int i = 0; i < 64; i++)
        ok &= sums[i] == 32 * (32 + 32 * 64) + 32 * 64; /* s[0] read after warp 1's 2nd write */
    check(ok, "the warps order lets the last warp run ahead: a shared array reused too soon shows");

    rotate<<<1, 2048>>>(out, 1);
    check(cudaGetLastError() == cudaErrorInvalidConfiguration,
          "a block of 2048 threads is refused, and cudaGetLastError says so");
    check(cudaGetLastError() == cudaSuccess, "the launch error is not sticky");

    check(dies_with(run_shuffle_after_exit, "some of whose threads have exited"),
          "a shuffle after a lane exited stops the program");
    check(dies_with(run_split_warp, "while its other threads wait at __syncthreads"),
          "a warp split between __syncthreads and a shuffle stops the program");
    check(dies_with(run_short_warp, "fewer than 32 threads"),
          "a full-mask shuffle in a 20-thread block stops the program");

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
