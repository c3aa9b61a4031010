/* cuda_util.h — what the CUDA backend's host files (backend/cuda/ files) and
 * its kernels (kernels/ files) share: the stream, error checks that name the
 * op and its shapes, device scratch memory and device pointers. */
#ifndef OSP_CUDA_UTIL_H
#define OSP_CUDA_UTIL_H

#include <cuda_runtime.h>

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The backend's one stream (created by the first osp_backend_cuda call). */
cudaStream_t cu_stream(void);

/* OSP_OK when e is cudaSuccess; otherwise records "op [shapes]: what:
 * CUDA error text" (OSP_ERR_NOMEM for an allocation failure, else
 * OSP_ERR_RUNTIME) and returns its code. n may be NULL. */
osp_status cu_check(const osp_node *n, cudaError_t e, const char *what);
/* Records a failure of a library call (cuBLAS, cuDNN) the same way. */
osp_status cu_fail(const osp_node *n, osp_status code, const char *what, const char *detail);

#define CU_TRY(n, call)                                                        \
    do {                                                                       \
        cudaError_t e_ = (call);                                               \
        if (e_ != cudaSuccess)                                                 \
            return cu_check((n), e_, #call);                                   \
    } while (0)
/* After a kernel launch: reports a bad launch configuration. */
#define CU_LAUNCHED(n, what) cu_check((n), cudaGetLastError(), (what))

/* nbytes of device memory from the caching allocator, for a kernel's
 * temporaries; give it back with osp_storage_release (stream-ordered, so
 * it may be released right after the kernels that use it are queued). */
osp_storage *cu_scratch(size_t nbytes);

/* Device address of a tensor's first element. */
static inline void *cu_ptr(const osp_tensor *t)
{
    return (char *)t->storage->data + (size_t)t->offset * osp_dtype_size(t->dtype);
}
static inline float *cu_f32(const osp_tensor *t) { return (float *)cu_ptr(t); }
/* Optional input i of n as a float pointer, NULL when absent. */
static inline const float *cu_opt(const osp_node *n, int i)
{
    return i < n->n_in && n->in[i] ? cu_f32(n->in[i]) : NULL;
}

/* Whether TF32 is allowed for float32 products (in TF32 or bf16 mode), and
 * whether matmul, linear and the flash attention run in bf16 (cuda.h). */
bool cu_tf32(void);
bool cu_bf16(void);
/* OSP_CUDA_REPRODUCIBLE=1: convolution algorithms from cuDNN's heuristics,
 * the same in every process, instead of the fastest measured (cuda.h). */
bool cu_reproducible(void);
/* OSP_CUDA_WIDE_INDEX=1 (tests): elementwise kernels, copies and concat
 * index in 64 bits even where 32 would do, so the parity suite covers the
 * path that only tensors of 2^31 or more elements take otherwise. */
bool cu_wide_index(void);

#ifdef __cplusplus
}
#endif

#endif
