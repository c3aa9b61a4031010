/* cuda.h — the CUDA backend's public controls (built with make CUDA=1).
 *
 * Tensors on OSP_DEVICE_CUDA run every op of the op table (op.h) on the
 * process's GPU (the first; under mpirun, rank r of a node takes GPU
 * r mod count), on one stream, in the order they are issued; the host
 * waits only when data comes back to it (osp_to_device(x, OSP_DEVICE_CPU))
 * or on osp_cuda_synchronize. Device memory comes from a caching
 * allocator: freed blocks go back to per-size-class free lists and are
 * reused, so a forward pass does not call cudaMalloc/cudaFree once warm. */
#ifndef OSP_CUDA_H
#define OSP_CUDA_H

#include <stdbool.h>
#include <stddef.h>

#include "core/dtype.h"
#include "core/error.h"

/* True when this build has the backend and a usable GPU is present (the
 * first call probes the driver). */
bool osp_cuda_available(void);
/* Why the backend is unavailable ("no CUDA-capable device is detected"),
 * or NULL when it is available. */
const char *osp_cuda_unavailable_reason(void);
/* A one-line description of the device ("NVIDIA H200, sm_90, 139 GiB"). */
const char *osp_cuda_device_name(void);
/* Waits for every queued kernel; reports an asynchronous failure. */
osp_status osp_cuda_synchronize(void);

/* Lets float32 GEMMs and convolutions use TF32 tensor cores (10-bit
 * mantissa products, float32 accumulation; about 1e-3 relative error).
 * Off by default; OSP_CUDA_TF32=1 in the environment turns it on. Returns
 * the previous setting. */
bool osp_cuda_set_tf32(bool on);

/* Runs the float32 matmul and linear ops as bf16 GEMMs, and the flash
 * attention forward (head dims 64 and 72) on bf16 tensor cores, with float32
 * accumulation and output (inputs rounded to bf16 on the way in; about
 * 1e-2 relative error): the tensor-core path until the frontends carry a
 * bf16 compute dtype. The other float32 products (convolutions, the
 * attention's GEMM path and backward) may then use TF32. Off by default;
 * OSP_CUDA_BF16=1 turns it on.
 * Returns the previous setting. */
bool osp_cuda_set_bf16(bool on);

/* Convolution algorithms are measured per shape and the fastest
 * deterministic one runs; OSP_CUDA_REPRODUCIBLE=1 in the environment takes
 * cuDNN's heuristic choice instead, the same in every process, so that a
 * resumed training run continues bit for bit (timing can rank two
 * algorithms differently from one process to the next). */

typedef struct osp_cuda_memory {
    size_t in_use;  /* bytes held by live tensors (rounded to size classes) */
    size_t peak;    /* largest in_use so far */
    size_t cached;  /* freed bytes kept for reuse */
    size_t reserved_peak; /* largest in_use + cached so far: what the driver saw */
} osp_cuda_memory;
osp_cuda_memory osp_cuda_memory_stats(void);
/* Returns every cached block to the driver. */
void osp_cuda_empty_cache(void);

/* Row-major C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b] for b < batch on the
 * backend's stream, through cuBLASLt. A, B in ab_type (f32, f16 or bf16),
 * C in c_type (f32, or ab_type when that is f16/bf16), float32 accumulation
 * (TF32 products for f32 inputs when enabled). Strides in elements; a
 * stride of 0 reuses one matrix for every batch element. Device pointers.
 * With k = 0 (an empty sum) beta must be 0 or 1: C is zeroed or kept. */
osp_status osp_cuda_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                         float alpha, const void *a, int64_t lda, int64_t stride_a,
                         const void *b, int64_t ldb, int64_t stride_b, float beta, void *c,
                         int64_t ldc, int64_t stride_c, int64_t batch, osp_dtype ab_type,
                         osp_dtype c_type);

/* ---- NCCL, for data-parallel training with one GPU per rank
 * (cuda_nccl.c). libnccl.so.2 is loaded on first use. ---- */
#define OSP_CUDA_COMM_ID_BYTES 128
typedef struct osp_cuda_comm osp_cuda_comm;
/* Why collectives are unavailable (no GPU, no libnccl.so.2), or NULL. */
const char *osp_cuda_comm_unavailable(void);
/* Rank 0: a fresh communicator id, for every rank to pass to
 * osp_cuda_comm_init (the caller distributes it, over MPI). */
osp_status osp_cuda_comm_id(unsigned char id[OSP_CUDA_COMM_ID_BYTES]);
/* Collective: every rank of the run calls it with the same id. */
osp_cuda_comm *osp_cuda_comm_init(const unsigned char id[OSP_CUDA_COMM_ID_BYTES], int rank,
                                  int size);
/* x[0..n-1] (device memory) <- its mean over the ranks; rank root's x on
 * every rank. Queued on the backend's stream. */
osp_status osp_cuda_allreduce_mean(osp_cuda_comm *c, float *x, size_t n);
osp_status osp_cuda_broadcast(osp_cuda_comm *c, float *x, size_t n, int root);
void osp_cuda_comm_free(osp_cuda_comm *c);
/* This process's GPU's UUID: ranks whose UUIDs repeat share a GPU, which
 * NCCL refuses. */
osp_status osp_cuda_device_uuid(unsigned char uuid[16]);

#endif
