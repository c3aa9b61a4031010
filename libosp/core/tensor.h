/* tensor.h — the osp tensor: a typed, shaped view onto reference-counted
 * storage on the host or a device.
 *
 * Memory model (reference counting + autorelease pools):
 *   - An osp_storage holds the bytes (malloc'd, mmapped from a checkpoint,
 *     or device memory) and a reference count; views share it.
 *   - An osp_tensor is a small handle with its own reference count.
 *     osp_retain()/osp_release() adjust it; the last release frees the
 *     handle and drops its storage reference.
 *   - Every tensor created while an autorelease pool is open (osp_pool_push)
 *     belongs to that pool; osp_pool_pop() releases them all. To keep a
 *     result past the pool, osp_retain() it first (the caller then owns a
 *     reference). With no pool open, the creator owns the tensor and must
 *     osp_release() it. The tape retains what backward needs.
 *   - A model forward runs inside a pool, so intermediate activations are
 *     freed when it ends without a single explicit release.
 * Not thread-safe: one thread drives ops (kernels parallelise inside).
 *
 * Layout: shape and strides are in elements, outermost first; `offset` is
 * in elements from the storage start. A tensor is contiguous when its
 * strides are the row-major ones. Views (reshape of a contiguous tensor,
 * permute, slice) share storage; osp_contiguous() materialises a copy.
 * All size arithmetic is overflow-checked (checked.h). */
#ifndef OSP_TENSOR_H
#define OSP_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "error.h"

#define OSP_MAX_DIMS 8

typedef enum osp_device {
    OSP_DEVICE_CPU = 0,
    OSP_DEVICE_CUDA = 1,
} osp_device;

typedef struct osp_storage osp_storage;
struct osp_storage {
    void *data;
    size_t nbytes;
    int refcount;
    osp_device device;
    /* Frees `data` (free, munmap, device free); `owner` is its argument. */
    void (*release)(osp_storage *self);
    void *owner;
};

typedef struct osp_tensor osp_tensor;
struct osp_tensor {
    osp_dtype dtype;
    int ndim;
    int64_t shape[OSP_MAX_DIMS];
    int64_t stride[OSP_MAX_DIMS]; /* elements */
    int64_t offset;               /* elements */
    osp_storage *storage;
    int refcount;
    bool requires_grad; /* a leaf the user wants gradients for, or a result of one */
    osp_tensor *grad;   /* accumulated by osp_backward (owned reference) */
};

/* ---- creation (results belong to the current pool, see above) ---- */

/* Uninitialised contiguous tensor. Fails (NULL, OSP_ERR_DATA) on a bad
 * shape or byte-size overflow, OSP_ERR_NOMEM on allocation failure. */
osp_tensor *osp_tensor_new(osp_dtype dtype, int ndim, const int64_t *shape,
                           osp_device device);
osp_tensor *osp_tensor_zeros(osp_dtype dtype, int ndim, const int64_t *shape,
                             osp_device device);
/* Copies n = numel elements of `data` (host memory, same dtype). */
osp_tensor *osp_tensor_from_data(osp_dtype dtype, int ndim, const int64_t *shape,
                                 const void *data);
/* Convenience for 1-4-D f32 host tensors in tests and models. */
osp_tensor *osp_tensor_f32(int ndim, const int64_t *shape);
/* Wraps existing storage (retained) as a contiguous tensor at byte offset. */
osp_tensor *osp_tensor_wrap(osp_storage *s, osp_dtype dtype, int ndim,
                            const int64_t *shape, size_t byte_offset);

/* Storage with a custom release (used for mmap and device memory). */
osp_storage *osp_storage_new(void *data, size_t nbytes, osp_device device,
                             void (*release)(osp_storage *), void *owner);
/* Allocates nbytes on a device. The CPU allocator is built in; a backend
 * registers its own for other devices (osp_register_allocator). */
osp_storage *osp_storage_alloc(size_t nbytes, osp_device device);
typedef osp_storage *(*osp_allocator_fn)(size_t nbytes);
void osp_register_allocator(osp_device device, osp_allocator_fn fn);
void osp_storage_retain(osp_storage *s);
void osp_storage_release(osp_storage *s);

/* ---- lifetime ---- */
osp_tensor *osp_retain(osp_tensor *t); /* returns t; NULL-safe */
void osp_release(osp_tensor *t);       /* NULL-safe */

void osp_pool_push(void);
void osp_pool_pop(void);
/* Pops the innermost pool but keeps `keep` alive in the enclosing one
 * (NULL-safe). Returns keep. Lets a block free its temporaries eagerly:
 *   osp_pool_push(); y = ...; return osp_pool_pop_keep(y); */
osp_tensor *osp_pool_pop_keep(osp_tensor *keep);
/* Hands an owned reference to the current pool (released at its pop). */
osp_tensor *osp_autorelease(osp_tensor *t);
/* Moves t out of the innermost pool into the caller's ownership (the
 * reference the pool held now belongs to the caller). Returns t. */
osp_tensor *osp_pool_take(osp_tensor *t);

/* ---- queries ---- */
int64_t osp_numel(const osp_tensor *t);
size_t osp_nbytes(const osp_tensor *t);
bool osp_is_contiguous(const osp_tensor *t);
/* The elements fill numel consecutive slots from the first one in some dim
 * order: a permutation of a contiguous layout (contiguous tensors too). */
bool osp_is_dense(const osp_tensor *t);
bool osp_same_shape(const osp_tensor *a, const osp_tensor *b);
/* Same shape and the same strides (dims of size 1 aside). */
bool osp_same_layout(const osp_tensor *a, const osp_tensor *b);
/* Negative axes count from the end; returns -1 (and sets an error) when
 * out of range. */
int osp_axis(const osp_tensor *t, int axis);
/* Host pointer to the first element (t->storage->data + offset); NULL for
 * device tensors. */
void *osp_data(const osp_tensor *t);
static inline float *osp_f32(const osp_tensor *t) { return (float *)osp_data(t); }
/* "[2, 3, 4]" into buf. */
const char *osp_shape_str(const osp_tensor *t, char *buf, size_t len);

/* ---- views (share storage; no data moves) ---- */
/* One entry may be -1 (inferred). Contiguous input only; otherwise use
 * osp_contiguous first. */
osp_tensor *osp_view_reshape(osp_tensor *t, int ndim, const int64_t *shape);
osp_tensor *osp_view_permute(osp_tensor *t, const int *perm);
/* Elements start, start+step, ... < end along axis (step >= 1). */
osp_tensor *osp_view_slice(osp_tensor *t, int axis, int64_t start, int64_t end,
                           int64_t step);

/* Broadcasts to shape (numpy rules: dims of size 1 or missing leading dims
 * get stride 0). */
osp_tensor *osp_view_expand(osp_tensor *t, int ndim, const int64_t *shape);

/* ---- copies ---- */
/* Contiguous copy with the same dtype (returns a new reference to t itself,
 * retained into the pool, when t is already contiguous). */
osp_tensor *osp_tensor_contiguous(osp_tensor *t);
/* Contiguous copy converted to dtype (host only; device tensors go through
 * the backend). */
osp_tensor *osp_tensor_to_dtype(osp_tensor *t, osp_dtype dtype);
osp_tensor *osp_tensor_clone(osp_tensor *t);
/* Copies src into dst elementwise (same shape; dtypes may differ; either may
 * be strided). Host tensors only. */
osp_status osp_tensor_copy_into(osp_tensor *dst, const osp_tensor *src);

#endif
