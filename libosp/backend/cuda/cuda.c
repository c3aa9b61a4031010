/* cuda.c — the CUDA backend's op table, device probe, stream and error
 * messages (see cuda.h). */
#include "cuda.h"
#include "cuda_kernels.h"
#include "cuda_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static osp_device_memory memory(void)
{
    osp_cuda_memory m = osp_cuda_memory_stats();
    size_t free_bytes = 0, total = 0;
    if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) {
        cudaGetLastError(); /* not sticky: forget it, report the capacity as unknown */
        total = 0;
    }
    return (osp_device_memory){.in_use = m.in_use, .peak = m.peak, .cached = m.cached,
                               .reserved_peak = m.reserved_peak, .total = total};
}

static const osp_backend cuda_backend = {
    .name = "cuda",
    .device = OSP_DEVICE_CUDA,
    .memory = memory,
    .kernels = {
        [OSP_OP_BINARY] = cuda_binary,
        [OSP_OP_UNARY] = cuda_unary,
        [OSP_OP_UNARY_BACKWARD] = cuda_unary_backward,
        [OSP_OP_FILL] = cuda_fill,
        [OSP_OP_CAST] = cuda_cast,
        [OSP_OP_COPY] = cuda_copy,
        [OSP_OP_REDUCE] = cuda_reduce,
        [OSP_OP_REDUCE_MAX_BACKWARD] = cuda_reduce_max_backward,
        [OSP_OP_CONCAT] = cuda_concat,
        [OSP_OP_MATMUL] = cuda_matmul,
        [OSP_OP_LINEAR] = cuda_linear,
        [OSP_OP_SOFTMAX] = cuda_softmax,
        [OSP_OP_SOFTMAX_BACKWARD] = cuda_softmax_backward,
        [OSP_OP_ATTENTION] = cuda_attention,
        [OSP_OP_ATTENTION_BACKWARD] = cuda_attention_backward,
        [OSP_OP_CONV] = cuda_conv,
        [OSP_OP_CONV_BACKWARD_DATA] = cuda_conv_backward_data,
        [OSP_OP_CONV_BACKWARD_WEIGHT] = cuda_conv_backward_weight,
        [OSP_OP_PAD] = cuda_pad,
        [OSP_OP_PAD_BACKWARD] = cuda_pad_backward,
        [OSP_OP_INTERPOLATE] = cuda_interpolate,
        [OSP_OP_INTERPOLATE_BACKWARD] = cuda_interpolate_backward,
        [OSP_OP_AVG_POOL] = cuda_avg_pool,
        [OSP_OP_AVG_POOL_BACKWARD] = cuda_avg_pool_backward,
        [OSP_OP_MAX_POOL] = cuda_max_pool,
        [OSP_OP_MAX_POOL_BACKWARD] = cuda_max_pool_backward,
        [OSP_OP_GROUP_NORM] = cuda_group_norm,
        [OSP_OP_GROUP_NORM_BACKWARD] = cuda_group_norm_backward,
        [OSP_OP_LAYER_NORM] = cuda_layer_norm,
        [OSP_OP_LAYER_NORM_BACKWARD] = cuda_layer_norm_backward,
        [OSP_OP_RMS_NORM] = cuda_rms_norm,
        [OSP_OP_RMS_NORM_BACKWARD] = cuda_rms_norm_backward,
        [OSP_OP_EMBEDDING] = cuda_embedding,
        [OSP_OP_EMBEDDING_BACKWARD] = cuda_embedding_backward,
        [OSP_OP_TIMESTEP_EMBEDDING] = cuda_timestep_embedding,
        [OSP_OP_RANDN] = cuda_randn,
        [OSP_OP_ADAMW] = cuda_adamw,
        [OSP_OP_EMA] = cuda_ema,
        [OSP_OP_CORRELATION] = cuda_correlation,
        [OSP_OP_GRID_SAMPLE] = cuda_grid_sample,
    },
};

/* cuda_alloc.c */
osp_storage *cu_alloc(size_t nbytes);

/* OSP_CUDA_SYNC=1: every kernel is followed by a stream synchronisation,
 * so an asynchronous fault (an illegal address, say) is reported against
 * the op that caused it rather than at the next copy to the host. */
static osp_backend synced_backend;

static osp_status run_synced(const osp_node *n)
{
    osp_status st = cuda_backend.kernels[n->op](n);
    cudaError_t e = cudaStreamSynchronize(cu_stream());
    return st ? st : cu_check(n, e, "kernel (checked by OSP_CUDA_SYNC)");
}

static int probed;          /* 0 not yet, 1 usable, -1 not */
static char reason[160];
static char device_name[320];
static cudaStream_t stream;
static bool tf32, bf16, reproducible, wide_index;

static int device_index;

/* The GPU of this process: under mpirun, rank r of a node takes GPU
 * r mod count (ranks beyond the count share one); otherwise the first. */
static int pick_device(int count)
{
    const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        long r = v && *v ? strtol(v, &end, 10) : -1;
        if (r >= 0 && v && *end == '\0')
            return (int)(r % count);
    }
    return 0;
}

static void probe(void)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaSuccess && count == 0)
        e = cudaErrorNoDevice;
    if (e == cudaSuccess)
        e = cudaSetDevice(device_index = pick_device(count));
    if (e == cudaSuccess)
        e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        snprintf(reason, sizeof reason, "%s", cudaGetErrorString(e));
        cudaGetLastError(); /* clear the sticky-free error state */
        probed = -1;
        return;
    }
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, device_index) == cudaSuccess)
        snprintf(device_name, sizeof device_name, "%s, sm_%d%d, %.0f GiB", prop.name, prop.major,
                 prop.minor, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    const char *env = getenv("OSP_CUDA_TF32");
    tf32 = env && *env && strcmp(env, "0") != 0;
    env = getenv("OSP_CUDA_BF16");
    bf16 = env && *env && strcmp(env, "0") != 0;
    env = getenv("OSP_CUDA_REPRODUCIBLE");
    reproducible = env && *env && strcmp(env, "0") != 0;
    env = getenv("OSP_CUDA_WIDE_INDEX");
    wide_index = env && *env && strcmp(env, "0") != 0;
    env = getenv("OSP_CUDA_SYNC");
    if (env && *env && strcmp(env, "0") != 0) {
        synced_backend = cuda_backend;
        for (int op = 0; op < OSP_OP_COUNT; op++)
            if (synced_backend.kernels[op])
                synced_backend.kernels[op] = run_synced;
    }
    probed = 1;
}

/* Device tensors can be created before anything asks for the backend (a
 * library user's osp_to_device): the allocator is there from load time and
 * probes the device on its first call. */
__attribute__((constructor)) static void register_allocator(void)
{
    osp_register_allocator(OSP_DEVICE_CUDA, cu_alloc);
}

const osp_backend *osp_backend_cuda(void)
{
    if (!probed)
        probe();
    if (probed <= 0)
        return NULL;
    return synced_backend.name ? &synced_backend : &cuda_backend;
}

bool osp_cuda_available(void) { return osp_backend_cuda() != NULL; }

const char *osp_cuda_unavailable_reason(void)
{
    return osp_cuda_available() ? NULL : reason;
}

const char *osp_cuda_device_name(void)
{
    return osp_cuda_available() ? device_name : "none";
}

cudaStream_t cu_stream(void) { return stream; }

bool osp_cuda_set_tf32(bool on)
{
    bool old = tf32;
    tf32 = on;
    return old;
}

/* bf16 mode allows TF32 too: the float32 products it leaves (convolutions,
 * the attention's GEMM path and backward) are then still more precise
 * than its bf16 ones. */
bool cu_tf32(void) { return tf32 || bf16; }

bool osp_cuda_set_bf16(bool on)
{
    bool old = bf16;
    bf16 = on;
    return old;
}

bool cu_bf16(void) { return bf16; }
bool cu_reproducible(void) { return reproducible; }

bool cu_wide_index(void) { return wide_index; }

osp_status osp_cuda_synchronize(void)
{
    if (!osp_cuda_available())
        return osp_error(OSP_ERR_RUNTIME, "CUDA: %s", reason);
    return cu_check(NULL, cudaStreamSynchronize(stream), "synchronize");
}

/* "op [2, 3] [3] -> [2, 3]" for error messages. */
static void describe(const osp_node *n, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "%s", osp_op_name(n->op));
    for (int side = 0; side < 2; side++) {
        int count = side ? n->n_out : n->n_in;
        osp_tensor *const *ts = side ? n->out : n->in;
        if (side && at < len)
            at += (size_t)snprintf(buf + at, len - at, " ->");
        for (int i = 0; i < count && at < len; i++) {
            char shape[96];
            at += (size_t)snprintf(buf + at, len - at, " %s",
                                   ts[i] ? osp_shape_str(ts[i], shape, sizeof shape) : "-");
        }
    }
}

osp_status cu_fail(const osp_node *n, osp_status code, const char *what, const char *detail)
{
    char op[512] = "CUDA";
    if (n)
        describe(n, op, sizeof op);
    return osp_error(code, "%s: %s: %s", op, what, detail);
}

osp_status cu_check(const osp_node *n, cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return OSP_OK;
    cudaGetLastError(); /* clear a non-sticky error so later calls can proceed */
    osp_status code = e == cudaErrorMemoryAllocation ? OSP_ERR_NOMEM : OSP_ERR_RUNTIME;
    return cu_fail(n, code, what, cudaGetErrorString(e));
}
