/* runtime.c — the CUDA runtime calls of libosp's CUDA backend, emulated on
 * the host for the build of tests/cuemu (make EMU=1). One device whose
 * memory is host memory: allocations are poisoned (all bits set, NaN in
 * every float type) as real device memory holds garbage, tracked so that
 * a copy or fill whose direction or extent disagrees with where its
 * pointers live fails as cudaErrorInvalidValue, and bounded by
 * OSP_CUEMU_MB (default 8192 MiB) so out-of-memory paths can be driven.
 * The stream runs everything at once, in order. */
#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct block {
    uintptr_t lo, hi; /* [lo, hi) */
    struct block *next;
} block;

static block *blocks;
static size_t in_use;
static cudaError_t last_error = cudaSuccess;
static int current_device = -1;

/* A launch the GPU refuses (threads.cc) leaves its error for
 * cudaGetLastError, as the runtime does. */
void cuemu_set_launch_error(cudaError_t e, const char *why)
{
    fprintf(stderr, "cuemu: launch refused: %s\n", why);
    last_error = e;
}

static cudaError_t fail(cudaError_t e, const char *fmt, const char *what)
{
    fprintf(stderr, "cuemu: ");
    fprintf(stderr, fmt, what);
    fputc('\n', stderr);
    last_error = e;
    return e;
}

static size_t capacity(void)
{
    const char *mb = getenv("OSP_CUEMU_MB");
    return (mb && *mb ? (size_t)strtoull(mb, NULL, 10) : 8192) << 20;
}

/* The allocation holding all of [p, p + n), or NULL. */
static const block *device_range(const void *p, size_t n)
{
    uintptr_t lo = (uintptr_t)p;
    for (const block *b = blocks; b; b = b->next)
        if (lo >= b->lo && lo < b->hi)
            return n <= b->hi - lo ? b : NULL;
    return NULL;
}

static bool on_device(const void *p) { return device_range(p, 1) != NULL; }

cudaError_t cudaGetDeviceCount(int *count)
{
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
    if (device != 0)
        return fail(cudaErrorInvalidDevice, "%s", "cudaSetDevice: no such device");
    current_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device)
{
    *device = current_device < 0 ? 0 : current_device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    if (device != 0)
        return fail(cudaErrorInvalidDevice, "%s", "cudaGetDeviceProperties: no such device");
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "cuemu (host emulation)");
    memcpy(prop->uuid.bytes, "cuemu-host-gpu-0", 16);
    prop->totalGlobalMem = capacity();
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 132;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->sharedMemPerBlock = 48 << 10;
    prop->sharedMemPerBlockOptin = 227 << 10;
    prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags)
{
    (void)flags;
    static int the_stream;
    *stream = (cudaStream_t)&the_stream;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    (void)stream;
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    default: return "unknown error";
    }
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total)
{
    *total = capacity();
    *free_bytes = *total - in_use;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t size)
{
    *p = NULL;
    size_t bytes = size ? size : 1;
    if (bytes > capacity() - in_use)
        return fail(cudaErrorMemoryAllocation, "%s", "cudaMalloc: out of (emulated) memory");
    /* 256-byte aligned, as the driver's allocations are */
    void *data = aligned_alloc(256, (bytes + 255) / 256 * 256);
    block *b = malloc(sizeof *b);
    if (!data || !b) {
        free(data);
        free(b);
        return fail(cudaErrorMemoryAllocation, "%s", "cudaMalloc: out of host memory");
    }
    memset(data, 0xff, bytes);
    *b = (block){(uintptr_t)data, (uintptr_t)data + bytes, blocks};
    blocks = b;
    in_use += bytes;
    *p = data;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    if (!p)
        return cudaSuccess;
    for (block **at = &blocks; *at; at = &(*at)->next) {
        block *b = *at;
        if (b->lo == (uintptr_t)p) {
            *at = b->next;
            in_use -= b->hi - b->lo;
            free(b);
            free(p);
            return cudaSuccess;
        }
    }
    return fail(cudaErrorInvalidValue, "%s", "cudaFree: not the start of an allocation");
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t stream)
{
    (void)stream;
    if (n && !device_range(p, n))
        return fail(cudaErrorInvalidValue, "%s",
                    "cudaMemsetAsync: the range is not inside one device allocation");
    memset(p, value, n);
    return cudaSuccess;
}

/* The synchronous form (one stream, run in order: the same). */
cudaError_t cudaMemset(void *p, int value, size_t n) { return cudaMemsetAsync(p, value, n, 0); }

/* height rows of width bytes, pitch bytes apart; the whole extent inside
 * one allocation. */
cudaError_t cudaMemset2DAsync(void *p, size_t pitch, int value, size_t width, size_t height,
                              cudaStream_t stream)
{
    (void)stream;
    if (!width || !height)
        return cudaSuccess;
    if (pitch < width)
        return fail(cudaErrorInvalidPitchValue, "%s", "cudaMemset2DAsync: pitch < width");
    if ((height - 1) > (SIZE_MAX - width) / pitch || !device_range(p, (height - 1) * pitch + width))
        return fail(cudaErrorInvalidValue, "%s",
                    "cudaMemset2DAsync: the rows are not inside one device allocation");
    for (size_t r = 0; r < height; r++)
        memset((char *)p + r * pitch, value, width);
    return cudaSuccess;
}

/* The direction a copy claims must be where its pointers live: a device
 * side wholly inside one allocation, a host side outside all of them. */
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                            cudaStream_t stream)
{
    (void)stream;
    if (!n)
        return cudaSuccess;
    bool want_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool want_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind != cudaMemcpyDefault) {
        if (want_dst ? !device_range(dst, n) : on_device(dst))
            return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: the destination %s",
                        want_dst ? "is not inside one device allocation" : "is device memory");
        if (want_src ? !device_range(src, n) : on_device(src))
            return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: the source %s",
                        want_src ? "is not inside one device allocation" : "is device memory");
    }
    memmove(dst, src, n);
    return cudaSuccess;
}
