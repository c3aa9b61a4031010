/* elementwise.cu — binary ops with broadcasting, unary ops and their
 * derivatives, fill, cast and strided copy (CPU reference:
 * backend/cpu/cpu_elementwise.c). */
#include "common.cuh"

extern "C" {
#include "backend/cuda/cu_index.h"
}

/* Offsets of element i of a cu_index plan, in 32 or 64 bits. */
template <bool NARROW>
__device__ __forceinline__ void plan_offsets(const cu_index &ix, int64_t i, int64_t *o0,
                                             int64_t *o1)
{
    if (NARROW)
        cu_offsets_narrow(ix, (uint32_t)i, o0, o1);
    else
        cu_offsets_wide(ix, i, o0, o1);
}

/* ---- binary ---- */

/* Element strides of contiguous t seen from an output of rank nd (0 on
 * broadcast dims). */
static void broadcast_strides(const osp_tensor *t, int nd, const int64_t *out_shape,
                              int64_t *stride)
{
    int lead = nd - t->ndim;
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int64_t dim = i < lead ? 1 : t->shape[i - lead];
        stride[i] = (dim == 1 && out_shape[i] != 1) ? 0 : s;
        s *= dim;
    }
}

__device__ inline float apply_binary(osp_binary_kind k, float a, float b)
{
    switch (k) {
    case OSP_BINARY_ADD: return a + b;
    case OSP_BINARY_SUB: return a - b;
    case OSP_BINARY_MUL: return a * b;
    default: return a / b;
    }
}

__global__ void binary_same(osp_binary_kind k, const float *a, const float *b, float *y,
                            int64_t n)
{
    CU_FOR(i, n) y[i] = apply_binary(k, a[i], b[i]);
}

template <bool NARROW>
__global__ void binary_bcast(osp_binary_kind k, const float *a, const float *b, float *y,
                             int64_t n, cu_index ix)
{
    CU_FOR(i, n) {
        int64_t oa, ob;
        plan_offsets<NARROW>(ix, i, &oa, &ob);
        y[i] = apply_binary(k, a[oa], b[ob]);
    }
}

extern "C" osp_status cuda_binary(const osp_node *n)
{
    const osp_tensor *a = n->in[0], *b = n->in[1], *y = n->out[0];
    int64_t total = osp_numel(y);
    if (total == 0)
        return OSP_OK;
    osp_binary_kind k = n->p.binary.kind;
    if (osp_same_shape(a, y) && osp_same_shape(b, y)) {
        binary_same<<<cu_grid(total), CU_THREADS, 0, cu_stream()>>>(k, cu_f32(a), cu_f32(b),
                                                                    cu_f32(y), total);
    } else {
        int64_t sa[OSP_MAX_DIMS], sb[OSP_MAX_DIMS];
        broadcast_strides(a, y->ndim, y->shape, sa);
        broadcast_strides(b, y->ndim, y->shape, sb);
        cu_index ix = cu_index_plan(y->ndim, y->shape, sa, sb);
        ix.narrow = ix.narrow && !cu_wide_index();
        unsigned grid = cu_grid(total);
        if (ix.narrow)
            binary_bcast<true><<<grid, CU_THREADS, 0, cu_stream()>>>(k, cu_f32(a), cu_f32(b),
                                                                     cu_f32(y), total, ix);
        else
            binary_bcast<false><<<grid, CU_THREADS, 0, cu_stream()>>>(k, cu_f32(a), cu_f32(b),
                                                                      cu_f32(y), total, ix);
    }
    return CU_LAUNCHED(n, "binary kernel");
}

/* ---- unary ---- */

#define SQRT_2_OVER_PI 0.7978845608028654
#define GELU_C 0.044715

__device__ inline float unary_value(osp_unary_kind k, float x, float alpha, float beta)
{
    switch (k) {
    case OSP_UNARY_EXP: return expf(x);
    case OSP_UNARY_LOG: return logf(x);
    case OSP_UNARY_TANH: return tanhf(x);
    case OSP_UNARY_SQRT: return sqrtf(x);
    case OSP_UNARY_ABS: return fabsf(x);
    case OSP_UNARY_SQUARE: return x * x;
    case OSP_UNARY_SIN: return sinf(x);
    case OSP_UNARY_COS: return cosf(x);
    case OSP_UNARY_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case OSP_UNARY_SILU: return x / (1.0f + expf(-x));
    case OSP_UNARY_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf((float)SQRT_2_OVER_PI * (x + (float)GELU_C * x * x * x)));
    case OSP_UNARY_GELU_ERF: return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    case OSP_UNARY_RELU: return x > 0 ? x : 0.0f;
    case OSP_UNARY_LEAKY_RELU: return x > 0 ? x : alpha * x;
    case OSP_UNARY_CLAMP: return x < alpha ? alpha : x > beta ? beta : x;
    case OSP_UNARY_SCALE_SHIFT: return alpha * x + beta;
    }
    return NAN;
}

/* d/dx of unary_value, in double (as the CPU computes it). */
__device__ inline double unary_derivative(osp_unary_kind k, double x, double alpha, double beta)
{
    switch (k) {
    case OSP_UNARY_EXP: return exp(x);
    case OSP_UNARY_LOG: return 1.0 / x;
    case OSP_UNARY_TANH: { double t = tanh(x); return 1.0 - t * t; }
    case OSP_UNARY_SQRT: return 0.5 / sqrt(x);
    case OSP_UNARY_ABS: return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
    case OSP_UNARY_SQUARE: return 2.0 * x;
    case OSP_UNARY_SIN: return cos(x);
    case OSP_UNARY_COS: return -sin(x);
    case OSP_UNARY_SIGMOID: { double s = 1.0 / (1.0 + exp(-x)); return s * (1.0 - s); }
    case OSP_UNARY_SILU: { double s = 1.0 / (1.0 + exp(-x)); return s * (1.0 + x * (1.0 - s)); }
    case OSP_UNARY_GELU_TANH: {
        double u = SQRT_2_OVER_PI * (x + GELU_C * x * x * x);
        double t = tanh(u);
        double du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x);
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
    }
    case OSP_UNARY_GELU_ERF:
        return 0.5 * (1.0 + erf(x * M_SQRT1_2)) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
    case OSP_UNARY_RELU: return x > 0 ? 1.0 : 0.0;
    case OSP_UNARY_LEAKY_RELU: return x > 0 ? 1.0 : alpha;
    case OSP_UNARY_CLAMP: return (x >= alpha && x <= beta) ? 1.0 : 0.0;
    case OSP_UNARY_SCALE_SHIFT: return alpha;
    }
    return NAN;
}

__global__ void unary_kernel(osp_unary_kind k, const float *x, float *y, int64_t n, float alpha,
                             float beta)
{
    CU_FOR(i, n) y[i] = unary_value(k, x[i], alpha, beta);
}

__global__ void unary_backward_kernel(osp_unary_kind k, const float *gy, const float *x,
                                      float *gx, int64_t n, double alpha, double beta)
{
    CU_FOR(i, n) gx[i] = (float)(gy[i] * unary_derivative(k, x[i], alpha, beta));
}

extern "C" osp_status cuda_unary(const osp_node *n)
{
    int64_t total = osp_numel(n->out[0]);
    if (total == 0)
        return OSP_OK;
    unary_kernel<<<cu_grid(total), CU_THREADS, 0, cu_stream()>>>(
        n->p.unary.kind, cu_f32(n->in[0]), cu_f32(n->out[0]), total, n->p.unary.alpha,
        n->p.unary.beta);
    return CU_LAUNCHED(n, "unary kernel");
}

extern "C" osp_status cuda_unary_backward(const osp_node *n)
{
    int64_t total = osp_numel(n->out[0]);
    if (total == 0)
        return OSP_OK;
    unary_backward_kernel<<<cu_grid(total), CU_THREADS, 0, cu_stream()>>>(
        n->p.unary.kind, cu_f32(n->in[0]), cu_f32(n->in[1]), cu_f32(n->out[0]), total,
        n->p.unary.alpha, n->p.unary.beta);
    return CU_LAUNCHED(n, "unary backward kernel");
}

/* ---- fill ---- */

template <typename T> __global__ void fill_kernel(T *y, int64_t n, T v)
{
    CU_FOR(i, n) y[i] = v;
}

extern "C" osp_status cuda_fill(const osp_node *n)
{
    osp_tensor *y = n->out[0];
    int64_t total = osp_numel(y);
    if (total == 0)
        return OSP_OK;
    /* The value converted on the host exactly as the CPU does it. */
    uint64_t pattern = 0;
    osp_convert(&pattern, y->dtype, &n->p.fill.value, OSP_F64, 1);
    void *p = cu_ptr(y);
    unsigned grid = cu_grid(total);
    switch (osp_dtype_size(y->dtype)) {
    case 1: return cu_check(n, cudaMemsetAsync(p, (int)(pattern & 0xff), (size_t)total,
                                               cu_stream()), "fill");
    case 2: fill_kernel<<<grid, CU_THREADS, 0, cu_stream()>>>((uint16_t *)p, total,
                                                              (uint16_t)pattern); break;
    case 4: fill_kernel<<<grid, CU_THREADS, 0, cu_stream()>>>((uint32_t *)p, total,
                                                              (uint32_t)pattern); break;
    default: fill_kernel<<<grid, CU_THREADS, 0, cu_stream()>>>((uint64_t *)p, total, pattern);
    }
    return CU_LAUNCHED(n, "fill kernel");
}

/* ---- dtype conversion (bit-identical to core/dtype.c) ---- */

__device__ inline float bits_f32(uint32_t u) { return __uint_as_float(u); }

__device__ inline float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f)
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

__device__ inline uint16_t f32_to_f16(float f)
{
    uint32_t u = __float_as_uint(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    if (abs >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u)
        return (uint16_t)(sign | (uint16_t)rintf(bits_f32(abs) * 0x1p24f));
    abs += 0xfffu + ((abs >> 13) & 1u);
    return (uint16_t)(sign | (uint16_t)((abs - 0x38000000u) >> 13));
}

__device__ inline float bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

__device__ inline uint16_t f32_to_bf16(float f)
{
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ inline double load_as_double(const void *src, osp_dtype t, int64_t i)
{
    switch (t) {
    case OSP_F32: return ((const float *)src)[i];
    case OSP_F16: return f16_to_f32(((const uint16_t *)src)[i]);
    case OSP_BF16: return bf16_to_f32(((const uint16_t *)src)[i]);
    case OSP_F64: return ((const double *)src)[i];
    case OSP_I32: return ((const int32_t *)src)[i];
    case OSP_I64: return (double)((const int64_t *)src)[i];
    case OSP_U8: return ((const uint8_t *)src)[i];
    default: return 0.0;
    }
}

__device__ inline double saturate(double v, double lo, double hi)
{
    if (isnan(v))
        return 0.0;
    v = trunc(v);
    return v < lo ? lo : v > hi ? hi : v;
}

__device__ inline void store_double(void *dst, osp_dtype t, int64_t i, double v)
{
    switch (t) {
    case OSP_F32: ((float *)dst)[i] = (float)v; break;
    case OSP_F16: ((uint16_t *)dst)[i] = f32_to_f16((float)v); break;
    case OSP_BF16: ((uint16_t *)dst)[i] = f32_to_bf16((float)v); break;
    case OSP_F64: ((double *)dst)[i] = v; break;
    case OSP_I32: ((int32_t *)dst)[i] = (int32_t)saturate(v, INT32_MIN, INT32_MAX); break;
    case OSP_I64:
        ((int64_t *)dst)[i] = isnan(v) ? 0 : v >= 0x1p63 ? INT64_MAX
                              : v < -0x1p63 ? INT64_MIN : (int64_t)v;
        break;
    case OSP_U8: ((uint8_t *)dst)[i] = (uint8_t)saturate(v, 0, 255); break;
    default: break;
    }
}

/* One element of src (type st, index si) into dst (type dt, index di),
 * with core/dtype.c's direct paths where it has them. */
__device__ inline void convert_one(void *dst, osp_dtype dt, int64_t di, const void *src,
                                   osp_dtype st, int64_t si)
{
    if (st == OSP_F32 && dt == OSP_BF16) {
        ((uint16_t *)dst)[di] = f32_to_bf16(((const float *)src)[si]);
    } else if (st == OSP_F32 && dt == OSP_F16) {
        ((uint16_t *)dst)[di] = f32_to_f16(((const float *)src)[si]);
    } else if (st == OSP_I64 && dt == OSP_I32) {
        int64_t v = ((const int64_t *)src)[si];
        ((int32_t *)dst)[di] = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
    } else if (dt == OSP_I64 && st == OSP_I32) {
        ((int64_t *)dst)[di] = ((const int32_t *)src)[si];
    } else if (dt == OSP_I64 && st == OSP_U8) {
        ((int64_t *)dst)[di] = ((const uint8_t *)src)[si];
    } else {
        store_double(dst, dt, di, load_as_double(src, st, si));
    }
}

__global__ void cast_kernel(void *dst, osp_dtype dt, const void *src, osp_dtype st, int64_t n)
{
    CU_FOR(i, n) convert_one(dst, dt, i, src, st, i);
}

extern "C" osp_status cu_convert(const osp_node *n, void *dst, osp_dtype dt, const void *src,
                                 osp_dtype st, int64_t count)
{
    if (count == 0)
        return OSP_OK;
    cast_kernel<<<cu_grid(count), CU_THREADS, 0, cu_stream()>>>(dst, dt, src, st, count);
    return CU_LAUNCHED(n, "conversion kernel");
}

extern "C" osp_status cuda_cast(const osp_node *n)
{
    const osp_tensor *x = n->in[0], *y = n->out[0];
    int64_t total = osp_numel(x);
    if (total == 0)
        return OSP_OK;
    if (x->dtype == y->dtype)
        return cu_check(n, cudaMemcpyAsync(cu_ptr(y), cu_ptr(x), osp_nbytes(x),
                                           cudaMemcpyDeviceToDevice, cu_stream()), "cast copy");
    return cu_convert(n, cu_ptr(y), y->dtype, cu_ptr(x), x->dtype, total);
}

/* ---- strided copy (operand 0 of the plan: the source) ---- */

template <typename T, bool NARROW>
__global__ void copy_same(T *dst, const T *src, int64_t n, cu_index ix)
{
    CU_FOR(i, n) {
        int64_t so, dof;
        plan_offsets<NARROW>(ix, i, &so, &dof);
        dst[dof] = src[so];
    }
}

template <bool NARROW>
__global__ void copy_convert(void *dst, osp_dtype dt, const void *src, osp_dtype st, int64_t n,
                             cu_index ix)
{
    CU_FOR(i, n) {
        int64_t so, dof;
        plan_offsets<NARROW>(ix, i, &so, &dof);
        convert_one(dst, dt, dof, src, st, so);
    }
}

template <typename T>
static void launch_copy(void *dst, const void *src, int64_t n, const cu_index &ix,
                        unsigned grid, cudaStream_t s)
{
    if (ix.narrow)
        copy_same<T, true><<<grid, CU_THREADS, 0, s>>>((T *)dst, (const T *)src, n, ix);
    else
        copy_same<T, false><<<grid, CU_THREADS, 0, s>>>((T *)dst, (const T *)src, n, ix);
}

extern "C" osp_status cuda_copy_strided(const osp_node *n, osp_tensor *dst, const osp_tensor *src)
{
    int64_t total = osp_numel(src);
    if (total == 0)
        return OSP_OK;
    cu_index ix = cu_index_plan(src->ndim, src->shape, src->stride, dst->stride);
    ix.narrow = ix.narrow && !cu_wide_index();
    unsigned grid = cu_grid(total);
    cudaStream_t s = cu_stream();
    void *dp = cu_ptr(dst);
    const void *sp = cu_ptr(src);
    if (src->dtype != dst->dtype && ix.narrow) {
        copy_convert<true><<<grid, CU_THREADS, 0, s>>>(dp, dst->dtype, sp, src->dtype, total, ix);
    } else if (src->dtype != dst->dtype) {
        copy_convert<false><<<grid, CU_THREADS, 0, s>>>(dp, dst->dtype, sp, src->dtype, total, ix);
    } else {
        switch (osp_dtype_size(src->dtype)) {
        case 1: launch_copy<uint8_t>(dp, sp, total, ix, grid, s); break;
        case 2: launch_copy<uint16_t>(dp, sp, total, ix, grid, s); break;
        case 4: launch_copy<uint32_t>(dp, sp, total, ix, grid, s); break;
        default: launch_copy<uint64_t>(dp, sp, total, ix, grid, s);
        }
    }
    return CU_LAUNCHED(n, "strided copy kernel");
}

/* ---- channel bias (convolution helpers) ---- */

/* Planes (batch · channel) along the grid's y, each plane's elements along
 * x: no division per element, whatever the size. */
__global__ void channel_bias_kernel(float *y, const float *bias, int64_t planes,
                                    int64_t channels, int64_t spatial)
{
    for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
        float b = bias[p % channels], *yp = y + p * spatial;
        for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < spatial;
             i += (int64_t)gridDim.x * blockDim.x)
            yp[i] += b;
    }
}

extern "C" osp_status cu_add_channel_bias(const osp_node *n, float *y, const float *bias,
                                          int64_t batch, int64_t channels, int64_t spatial)
{
    int64_t planes = batch * channels;
    if (planes == 0 || spatial == 0)
        return OSP_OK;
    /* about 2^16 blocks in all, at least one per plane (up to 65535) */
    int64_t per_plane = (65536 + planes - 1) / planes;
    unsigned x = cu_grid(spatial) < per_plane ? cu_grid(spatial) : (unsigned)per_plane;
    dim3 grid(x, (unsigned)(planes < 65535 ? planes : 65535));
    channel_bias_kernel<<<grid, CU_THREADS, 0, cu_stream()>>>(y, bias, planes, channels, spatial);
    return CU_LAUNCHED(n, "channel bias kernel");
}
