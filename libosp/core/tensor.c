/* tensor.c — tensor handles, storage, pools and views (see tensor.h). */
#include "tensor.h"
#include "checked.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- storage ---------------- */

/* Every op allocates its output and frees its inputs' temporaries, so the
 * same sizes come and go all the time. glibc would hand large blocks back
 * to the kernel (munmap, heap trimming) and fault fresh zeroed pages in at
 * the next op: 8 % of a transformer forward's CPU time. Keep blocks up to
 * 32 MiB (glibc's maximum) in the heap and do not trim it below 1 GiB. */
static pthread_once_t heap_once = PTHREAD_ONCE_INIT;

static void keep_heap(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

static void free_host(osp_storage *s) { free(s->data); }

static osp_allocator_fn allocators[2];

void osp_register_allocator(osp_device device, osp_allocator_fn fn)
{
    if ((unsigned)device < 2)
        allocators[device] = fn;
}

osp_storage *osp_storage_new(void *data, size_t nbytes, osp_device device,
                             void (*release)(osp_storage *), void *owner)
{
    osp_storage *s = calloc(1, sizeof *s);
    if (!s) {
        osp_error_nomem("storage header", sizeof *s);
        return NULL;
    }
    s->data = data;
    s->nbytes = nbytes;
    s->refcount = 1;
    s->device = device;
    s->release = release;
    s->owner = owner;
    return s;
}

osp_storage *osp_storage_alloc(size_t nbytes, osp_device device)
{
    if (device != OSP_DEVICE_CPU) {
        if ((unsigned)device >= 2 || !allocators[device]) {
            osp_error(OSP_ERR_RUNTIME, "device %d is not available in this build", (int)device);
            return NULL;
        }
        return allocators[device](nbytes);
    }
    pthread_once(&heap_once, keep_heap);
    /* 64-byte alignment for SIMD; aligned_alloc needs a multiple of it. */
    size_t rounded;
    if (!osp_add_size(nbytes, 63, &rounded)) {
        osp_error(OSP_ERR_DATA, "tensor of %zu bytes is too large", nbytes);
        return NULL;
    }
    rounded &= ~(size_t)63;
    void *data = aligned_alloc(64, rounded ? rounded : 64);
    if (!data) {
        osp_error_nomem("tensor data", nbytes);
        return NULL;
    }
    osp_storage *s = osp_storage_new(data, nbytes, OSP_DEVICE_CPU, free_host, NULL);
    if (!s)
        free(data);
    return s;
}

void osp_storage_retain(osp_storage *s)
{
    if (s)
        s->refcount++;
}

void osp_storage_release(osp_storage *s)
{
    if (!s || --s->refcount > 0)
        return;
    if (s->release)
        s->release(s);
    free(s);
}

/* ---------------- pools ---------------- */

typedef struct pool {
    osp_tensor **items;
    size_t count, cap;
    struct pool *parent;
} pool;

static pool *current_pool;

void osp_pool_push(void)
{
    pool *p = calloc(1, sizeof *p);
    if (!p) {
        /* Without a pool, tensors simply belong to the caller; report it. */
        osp_error_nomem("autorelease pool", sizeof *p);
        return;
    }
    p->parent = current_pool;
    current_pool = p;
}

void osp_pool_pop(void)
{
    pool *p = current_pool;
    if (!p)
        return;
    current_pool = p->parent;
    for (size_t i = p->count; i-- > 0;)
        osp_release(p->items[i]);
    free(p->items);
    free(p);
}

static void pool_add(osp_tensor *t);

osp_tensor *osp_pool_pop_keep(osp_tensor *keep)
{
    osp_retain(keep);
    osp_pool_pop();
    return osp_autorelease(keep);
}

osp_tensor *osp_autorelease(osp_tensor *t)
{
    if (t)
        pool_add(t);
    return t;
}

static void pool_add(osp_tensor *t)
{
    pool *p = current_pool;
    if (!p)
        return;
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        osp_tensor **items = realloc(p->items, cap * sizeof *items);
        if (!items) {
            /* Keep the tensor alive rather than free it under the caller. */
            osp_error_nomem("autorelease pool", cap * sizeof *items);
            return;
        }
        p->items = items;
        p->cap = cap;
    }
    p->items[p->count++] = t;
}

osp_tensor *osp_pool_take(osp_tensor *t)
{
    pool *p = current_pool;
    if (!t || !p)
        return t;
    for (size_t i = p->count; i-- > 0;) {
        if (p->items[i] == t) {
            memmove(p->items + i, p->items + i + 1, (p->count - i - 1) * sizeof *p->items);
            p->count--;
            return t;
        }
    }
    /* Not in the innermost pool: give the caller a reference of its own. */
    return osp_retain(t);
}

/* ---------------- handles ---------------- */

static void set_contiguous_strides(osp_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->stride[i] = s;
        s *= t->shape[i] ? t->shape[i] : 1;
    }
}

static bool check_shape(int ndim, const int64_t *shape, osp_dtype dtype, size_t *nbytes)
{
    if (ndim < 0 || ndim > OSP_MAX_DIMS) {
        osp_error(OSP_ERR_DATA, "tensor rank %d is outside 0..%d", ndim, OSP_MAX_DIMS);
        return false;
    }
    if ((unsigned)dtype >= OSP_DTYPE_COUNT) {
        osp_error(OSP_ERR_DATA, "unknown dtype %d", (int)dtype);
        return false;
    }
    int64_t n;
    if (!osp_shape_numel(shape, ndim, &n) ||
        !osp_mul_size((size_t)n, osp_dtype_size(dtype), nbytes)) {
        osp_error(OSP_ERR_DATA, "tensor shape has a negative dimension or its size overflows");
        return false;
    }
    return true;
}

static osp_tensor *handle_new(osp_storage *s, osp_dtype dtype, int ndim, const int64_t *shape)
{
    osp_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        osp_error_nomem("tensor handle", sizeof *t);
        return NULL;
    }
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim)
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    set_contiguous_strides(t);
    t->storage = s;
    t->refcount = 1;
    pool_add(t);
    return t;
}

osp_tensor *osp_tensor_new(osp_dtype dtype, int ndim, const int64_t *shape, osp_device device)
{
    size_t nbytes;
    if (!check_shape(ndim, shape, dtype, &nbytes))
        return NULL;
    osp_storage *s = osp_storage_alloc(nbytes, device);
    if (!s)
        return NULL;
    osp_tensor *t = handle_new(s, dtype, ndim, shape);
    if (!t)
        osp_storage_release(s);
    return t;
}

osp_tensor *osp_tensor_zeros(osp_dtype dtype, int ndim, const int64_t *shape, osp_device device)
{
    if (device != OSP_DEVICE_CPU) {
        osp_error(OSP_ERR_RUNTIME, "osp_tensor_zeros: use the backend's fill on device tensors");
        return NULL;
    }
    osp_tensor *t = osp_tensor_new(dtype, ndim, shape, device);
    if (t)
        memset(t->storage->data, 0, t->storage->nbytes);
    return t;
}

osp_tensor *osp_tensor_from_data(osp_dtype dtype, int ndim, const int64_t *shape, const void *data)
{
    osp_tensor *t = osp_tensor_new(dtype, ndim, shape, OSP_DEVICE_CPU);
    if (t && t->storage->nbytes)
        memcpy(t->storage->data, data, t->storage->nbytes);
    return t;
}

osp_tensor *osp_tensor_f32(int ndim, const int64_t *shape)
{
    return osp_tensor_new(OSP_F32, ndim, shape, OSP_DEVICE_CPU);
}

osp_tensor *osp_tensor_wrap(osp_storage *s, osp_dtype dtype, int ndim, const int64_t *shape,
                            size_t byte_offset)
{
    size_t nbytes, end;
    if (!check_shape(ndim, shape, dtype, &nbytes))
        return NULL;
    size_t item = osp_dtype_size(dtype);
    if (byte_offset % item || !osp_add_size(byte_offset, nbytes, &end) || end > s->nbytes) {
        osp_error(OSP_ERR_DATA, "tensor of %zu bytes at offset %zu does not fit storage of %zu bytes",
                  nbytes, byte_offset, s->nbytes);
        return NULL;
    }
    osp_tensor *t = handle_new(s, dtype, ndim, shape);
    if (!t)
        return NULL;
    osp_storage_retain(s);
    t->offset = (int64_t)(byte_offset / item);
    return t;
}

osp_tensor *osp_retain(osp_tensor *t)
{
    if (t)
        t->refcount++;
    return t;
}

void osp_release(osp_tensor *t)
{
    if (!t || --t->refcount > 0)
        return;
    osp_release(t->grad);
    osp_storage_release(t->storage);
    free(t);
}

/* ---------------- queries ---------------- */

int64_t osp_numel(const osp_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i]; /* validated at creation */
    return n;
}

size_t osp_nbytes(const osp_tensor *t)
{
    return (size_t)osp_numel(t) * osp_dtype_size(t->dtype);
}

bool osp_is_contiguous(const osp_tensor *t)
{
    if (osp_numel(t) == 0) /* no element to place: any strides will do */
        return true;
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s)
            return false;
        s *= t->shape[i];
    }
    return true;
}

bool osp_is_dense(const osp_tensor *t)
{
    /* Dims of size > 1 by decreasing stride must nest exactly, the
     * innermost with stride 1 (size-1 dims place no element). */
    if (osp_numel(t) == 0)
        return true;
    int order[OSP_MAX_DIMS], n = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 1)
            continue;
        int j = n++;
        for (; j > 0 && t->stride[order[j - 1]] < t->stride[i]; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    int64_t s = 1;
    for (int j = n - 1; j >= 0; j--) {
        if (t->stride[order[j]] != s)
            return false;
        s *= t->shape[order[j]];
    }
    return true;
}

bool osp_same_layout(const osp_tensor *a, const osp_tensor *b)
{
    if (!osp_same_shape(a, b))
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != 1 && a->stride[i] != b->stride[i])
            return false;
    return true;
}

bool osp_same_shape(const osp_tensor *a, const osp_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

int osp_axis(const osp_tensor *t, int axis)
{
    int a = axis < 0 ? axis + t->ndim : axis;
    if (a < 0 || a >= t->ndim) {
        osp_error(OSP_ERR_RUNTIME, "axis %d is out of range for a %d-D tensor", axis, t->ndim);
        return -1;
    }
    return a;
}

void *osp_data(const osp_tensor *t)
{
    if (!t || t->storage->device != OSP_DEVICE_CPU)
        return NULL;
    return (char *)t->storage->data + (size_t)t->offset * osp_dtype_size(t->dtype);
}

const char *osp_shape_str(const osp_tensor *t, char *buf, size_t len)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "[");
    for (int i = 0; i < t->ndim; i++)
        n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%lld", i ? ", " : "",
                              (long long)t->shape[i]);
    snprintf(buf + n, n < len ? len - n : 0, "]");
    return buf;
}

/* ---------------- views ---------------- */

static osp_tensor *view_of(osp_tensor *t)
{
    osp_tensor *v = handle_new(t->storage, t->dtype, t->ndim, t->shape);
    if (!v)
        return NULL;
    osp_storage_retain(t->storage);
    memcpy(v->stride, t->stride, sizeof v->stride);
    v->offset = t->offset;
    return v;
}

osp_tensor *osp_view_reshape(osp_tensor *t, int ndim, const int64_t *shape)
{
    if (!t)
        return NULL;
    if (ndim < 0 || ndim > OSP_MAX_DIMS)
        return osp_error(OSP_ERR_RUNTIME, "reshape to rank %d (max %d)", ndim, OSP_MAX_DIMS), NULL;
    if (!osp_is_contiguous(t))
        return osp_error(OSP_ERR_RUNTIME, "reshape of a non-contiguous tensor"), NULL;
    int64_t dims[OSP_MAX_DIMS], known = 1, n = osp_numel(t);
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = shape[i];
        if (shape[i] == -1 && infer < 0) {
            infer = i;
            continue;
        }
        if (shape[i] < 0 || !osp_mul_i64(known, shape[i], &known))
            return osp_error(OSP_ERR_RUNTIME, "reshape: invalid target dimension %lld",
                             (long long)shape[i]), NULL;
    }
    if (infer >= 0) {
        if (known == 0 || n % known)
            return osp_error(OSP_ERR_RUNTIME, "reshape: cannot infer a dimension of %lld elements",
                             (long long)n), NULL;
        dims[infer] = n / known;
        known = n;
    }
    if (known != n) {
        char buf[128];
        return osp_error(OSP_ERR_RUNTIME, "reshape: %lld elements of %s do not fit the target shape",
                         (long long)n, osp_shape_str(t, buf, sizeof buf)), NULL;
    }
    osp_tensor *v = view_of(t);
    if (!v)
        return NULL;
    v->ndim = ndim;
    memcpy(v->shape, dims, (size_t)ndim * sizeof *dims);
    set_contiguous_strides(v);
    return v;
}

osp_tensor *osp_view_permute(osp_tensor *t, const int *perm)
{
    if (!t)
        return NULL;
    bool seen[OSP_MAX_DIMS] = {0};
    for (int i = 0; i < t->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= t->ndim || seen[perm[i]])
            return osp_error(OSP_ERR_RUNTIME, "permute: invalid permutation"), NULL;
        seen[perm[i]] = true;
    }
    osp_tensor *v = view_of(t);
    if (!v)
        return NULL;
    for (int i = 0; i < t->ndim; i++) {
        v->shape[i] = t->shape[perm[i]];
        v->stride[i] = t->stride[perm[i]];
    }
    return v;
}

osp_tensor *osp_view_slice(osp_tensor *t, int axis, int64_t start, int64_t end, int64_t step)
{
    if (!t)
        return NULL;
    int a = osp_axis(t, axis);
    if (a < 0)
        return NULL;
    if (step < 1 || start < 0 || end > t->shape[a] || start > end)
        return osp_error(OSP_ERR_RUNTIME, "slice [%lld:%lld:%lld] out of range for dimension of %lld",
                         (long long)start, (long long)end, (long long)step,
                         (long long)t->shape[a]), NULL;
    osp_tensor *v = view_of(t);
    if (!v)
        return NULL;
    v->shape[a] = (end - start + step - 1) / step;
    v->offset = t->offset + start * t->stride[a];
    v->stride[a] = t->stride[a] * step;
    return v;
}

osp_tensor *osp_view_expand(osp_tensor *t, int ndim, const int64_t *shape)
{
    if (!t)
        return NULL;
    if (ndim < t->ndim || ndim > OSP_MAX_DIMS)
        return osp_error(OSP_ERR_RUNTIME, "expand: cannot broadcast a %d-D tensor to %d-D",
                         t->ndim, ndim), NULL;
    int64_t stride[OSP_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int64_t have = i < lead ? 1 : t->shape[i - lead];
        if (shape[i] < 0 || (have != shape[i] && have != 1))
            return osp_error(OSP_ERR_RUNTIME, "expand: dimension %d of size %lld cannot become %lld",
                             i, (long long)have, (long long)shape[i]), NULL;
        stride[i] = (i < lead || have != shape[i]) ? 0 : t->stride[i - lead];
    }
    size_t nbytes;
    if (!check_shape(ndim, shape, t->dtype, &nbytes))
        return NULL;
    osp_tensor *v = view_of(t);
    if (!v)
        return NULL;
    v->ndim = ndim;
    memcpy(v->shape, shape, (size_t)ndim * sizeof *shape);
    memcpy(v->stride, stride, (size_t)ndim * sizeof *stride);
    return v;
}

/* ---------------- copies ---------------- */

/* Copies row by row in row-major order of src, any strides on either side,
 * converting dtype on the way. Dims that are contiguous on both sides are
 * merged first, so rows are as long as the layouts allow; large copies
 * (head splits and merges around attention) are split over threads. */
static osp_status copy_strided(osp_tensor *dst, const osp_tensor *src)
{
    int nd = 0;
    int64_t shape[OSP_MAX_DIMS], ss[OSP_MAX_DIMS], ds[OSP_MAX_DIMS];
    for (int i = 0; i < src->ndim; i++) {
        if (src->shape[i] == 1)
            continue;
        if (nd > 0 && ss[nd - 1] == src->stride[i] * src->shape[i] &&
            ds[nd - 1] == dst->stride[i] * src->shape[i]) {
            shape[nd - 1] *= src->shape[i];
            ss[nd - 1] = src->stride[i];
            ds[nd - 1] = dst->stride[i];
            continue;
        }
        shape[nd] = src->shape[i];
        ss[nd] = src->stride[i];
        ds[nd++] = dst->stride[i];
    }
    int64_t inner = nd ? shape[nd - 1] : 1, rows = osp_numel(src) / inner;
    int64_t sstep = nd ? ss[nd - 1] : 1, dstep = nd ? ds[nd - 1] : 1;
    size_t di = osp_dtype_size(dst->dtype), si = osp_dtype_size(src->dtype);
    char *dbase = (char *)dst->storage->data + (size_t)dst->offset * di;
    const char *sbase = (const char *)src->storage->data + (size_t)src->offset * si;
    bool same = src->dtype == dst->dtype, f32 = same && src->dtype == OSP_F32;
#pragma omp parallel for schedule(static) if (rows * inner >= (1 << 16) && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t so = 0, dofs = 0;
        for (int64_t i = nd - 2, rem = r; i >= 0; i--) {
            int64_t idx = rem % shape[i];
            rem /= shape[i];
            so += idx * ss[i];
            dofs += idx * ds[i];
        }
        char *d = dbase + (size_t)dofs * di;
        const char *sp = sbase + (size_t)so * si;
        if (sstep == 1 && dstep == 1) {
            if (same)
                memcpy(d, sp, (size_t)inner * si);
            else
                osp_convert(d, dst->dtype, sp, src->dtype, (size_t)inner);
        } else if (f32) {
            float *df = (float *)(void *)d;
            const float *sf = (const float *)(const void *)sp;
            for (int64_t k = 0; k < inner; k++)
                df[k * dstep] = sf[k * sstep];
        } else {
            for (int64_t k = 0; k < inner; k++)
                osp_convert(d + (size_t)(k * dstep) * di, dst->dtype,
                            sp + (size_t)(k * sstep) * si, src->dtype, 1);
        }
    }
    return OSP_OK;
}

osp_status osp_tensor_copy_into(osp_tensor *dst, const osp_tensor *src)
{
    if (!osp_same_shape(dst, src))
        return osp_error(OSP_ERR_RUNTIME, "copy between tensors of different shapes");
    if (dst->storage->device != OSP_DEVICE_CPU || src->storage->device != OSP_DEVICE_CPU)
        return osp_error(OSP_ERR_RUNTIME, "osp_tensor_copy_into: host tensors only");
    if (osp_numel(src) == 0)
        return OSP_OK;
    if (osp_is_contiguous(dst) && osp_is_contiguous(src)) {
        osp_convert(osp_data(dst), dst->dtype, osp_data(src), src->dtype, (size_t)osp_numel(src));
        return OSP_OK;
    }
    return copy_strided(dst, src);
}

osp_tensor *osp_tensor_to_dtype(osp_tensor *t, osp_dtype dtype)
{
    if (!t)
        return NULL;
    osp_tensor *c = osp_tensor_new(dtype, t->ndim, t->shape, t->storage->device);
    if (c && osp_tensor_copy_into(c, t) != OSP_OK) {
        osp_release(osp_pool_take(c));
        return NULL;
    }
    return c;
}

osp_tensor *osp_tensor_clone(osp_tensor *t)
{
    return t ? osp_tensor_to_dtype(t, t->dtype) : NULL;
}

osp_tensor *osp_tensor_contiguous(osp_tensor *t)
{
    if (!t)
        return NULL;
    if (osp_is_contiguous(t)) {
        osp_tensor *v = view_of(t);
        return v;
    }
    return osp_tensor_clone(t);
}
