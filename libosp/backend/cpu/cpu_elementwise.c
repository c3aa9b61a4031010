/* cpu_elementwise.c — binary ops with broadcasting, unary ops and their
 * derivatives, fill, cast and strided copy. */
#include "cpu_kernels.h"
#include "cpu_vexp.h"

#include <math.h>
#include <string.h>

/* Element strides of `t` as seen from an output of rank nd (0 on broadcast
 * dims); t is contiguous. */
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

/* y[k] = a[k·ia] ∘ b[k·ib] for k < n, with ia and ib 0 (a broadcast value)
 * or 1: one loop per kind and stride pattern, so that each vectorises. */
#define BINARY_LOOPS(OP)                                                      \
    do {                                                                      \
        if (ia && ib) {                                                       \
            _Pragma("omp simd") for (int64_t k = 0; k < n; k++)               \
                y[k] = a[k] OP b[k];                                          \
        } else if (ia) {                                                      \
            float bv = b[0];                                                  \
            _Pragma("omp simd") for (int64_t k = 0; k < n; k++)               \
                y[k] = a[k] OP bv;                                            \
        } else if (ib) {                                                      \
            float av = a[0];                                                  \
            _Pragma("omp simd") for (int64_t k = 0; k < n; k++)               \
                y[k] = av OP b[k];                                            \
        } else {                                                              \
            float v = a[0] OP b[0];                                           \
            for (int64_t k = 0; k < n; k++)                                   \
                y[k] = v;                                                     \
        }                                                                     \
    } while (0)

ROW_CLONES static void binary_row(osp_binary_kind kind, float *y, const float *a, int64_t ia,
                                  const float *b, int64_t ib, int64_t n)
{
    switch (kind) {
    case OSP_BINARY_ADD: BINARY_LOOPS(+); break;
    case OSP_BINARY_SUB: BINARY_LOOPS(-); break;
    case OSP_BINARY_MUL: BINARY_LOOPS(*); break;
    default: BINARY_LOOPS(/); break;
    }
}

#define BINARY_CHUNK 4096

osp_status cpu_binary(const osp_node *n)
{
    const osp_tensor *a = n->in[0], *b = n->in[1], *y = n->out[0];
    const float *pa = osp_f32(a), *pb = osp_f32(b);
    float *py = osp_f32(y);
    osp_binary_kind kind = n->p.binary.kind;
    int nd = y->ndim;
    int64_t total = osp_numel(y);
    if (total == 0)
        return OSP_OK;
    if (osp_same_shape(a, y) && osp_same_shape(b, y)) {
#pragma omp parallel for schedule(static) if (total > 32768)
        for (int64_t i = 0; i < total; i += BINARY_CHUNK)
            binary_row(kind, py + i, pa + i, 1, pb + i, 1,
                       total - i < BINARY_CHUNK ? total - i : BINARY_CHUNK);
        return OSP_OK;
    }
    int64_t sa[OSP_MAX_DIMS], sb[OSP_MAX_DIMS];
    broadcast_strides(a, nd, y->shape, sa);
    broadcast_strides(b, nd, y->shape, sb);
    int64_t inner = nd ? y->shape[nd - 1] : 1, rows = total / inner;
    int64_t ia = nd ? sa[nd - 1] : 0, ib = nd ? sb[nd - 1] : 0;
#pragma omp parallel for schedule(static) if (total > 32768)
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, oa = 0, ob = 0;
        for (int d = nd - 2; d >= 0; d--) {
            int64_t idx = rem % y->shape[d];
            rem /= y->shape[d];
            oa += idx * sa[d];
            ob += idx * sb[d];
        }
        binary_row(kind, py + r * inner, pa + oa, ia, pb + ob, ib, inner);
    }
    return OSP_OK;
}

static const double SQRT_2_OVER_PI = 0.7978845608028654;
static const double GELU_C = 0.044715;

/* GELU, tanh form: 0.5·x·(1 + tanh(u)) = x / (1 + e^(-2u)), u = √(2/π)(x +
 * 0.044715x³); the same function without libm's scalar tanhf, so loops over
 * it vectorise (gelu_tanh_row), and more accurate for negative x, where
 * 1 + tanhf(u) cancels. */
static inline float gelu_tanh(float x)
{
    float u = (float)SQRT_2_OVER_PI * (x + (float)GELU_C * x * x * x);
    return x / (1.0f + exp_poly(-2.0f * u));
}

static inline float unary_value(osp_unary_kind k, float x, float alpha, float beta)
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
    case OSP_UNARY_GELU_TANH: break; /* gelu_tanh_row */
    case OSP_UNARY_GELU_ERF: return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    case OSP_UNARY_RELU: return x > 0 ? x : 0.0f;
    case OSP_UNARY_LEAKY_RELU: return x > 0 ? x : alpha * x;
    case OSP_UNARY_CLAMP: return x < alpha ? alpha : x > beta ? beta : x;
    case OSP_UNARY_SCALE_SHIFT: return alpha * x + beta;
    }
    return NAN;
}

/* d/dx of unary_value, computed in double from x. */
static inline double unary_derivative(osp_unary_kind k, double x, double alpha, double beta)
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
    case OSP_UNARY_SILU:
    case OSP_UNARY_GELU_TANH: break; /* silu_backward_row, gelu_tanh_backward_row */
    case OSP_UNARY_GELU_ERF:
        return 0.5 * (1.0 + erf(x * M_SQRT1_2)) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
    case OSP_UNARY_RELU: return x > 0 ? 1.0 : 0.0;
    case OSP_UNARY_LEAKY_RELU: return x > 0 ? 1.0 : alpha;
    /* PyTorch passes the gradient where lo <= x <= hi. */
    case OSP_UNARY_CLAMP: return (x >= alpha && x <= beta) ? 1.0 : 0.0;
    case OSP_UNARY_SCALE_SHIFT: return alpha;
    }
    return NAN;
}

/* σ(z) through exp_poly, so that loops over it vectorise. */
static inline float sigmoid_poly(float z) { return 1.0f / (1.0f + exp_poly(-z)); }

/* Rows of the activations that are a large share of a step, vectorised:
 * with libm's scalar tanhf the GELU (Latte's MLPs) was a quarter of a
 * transformer forward, and its double derivative a tenth of a training
 * step. SiLU's forward stays on expf: exp_poly's last-bit steps make the
 * VAE's finite-difference gradient check (eps 1e-4) miss by 3 %. */
ROW_CLONES static void gelu_tanh_row(float *y, const float *x, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = gelu_tanh(x[i]);
}

/* GELU = x·s with s = σ(2u) (as in gelu_tanh), so GELU' = s + 2x·s(1 − s)·u'. */
ROW_CLONES static void gelu_tanh_backward_row(float *gx, const float *gy, const float *x,
                                              int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float u = (float)SQRT_2_OVER_PI * (v + (float)GELU_C * v * v * v);
        float du = (float)SQRT_2_OVER_PI * (1.0f + 3.0f * (float)GELU_C * v * v);
        float s = sigmoid_poly(2.0f * u);
        gx[i] = gy[i] * (s + 2.0f * v * s * (1.0f - s) * du);
    }
}

/* SiLU' = s(1 + x(1 − s)) with s = σ(x). */
ROW_CLONES static void silu_backward_row(float *gx, const float *gy, const float *x, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float s = sigmoid_poly(x[i]);
        gx[i] = gy[i] * (s * (1.0f + x[i] * (1.0f - s)));
    }
}

#define ROW_CHUNK 4096
#define PARALLEL_MIN 16384

void cpu_gelu_tanh(float *y, const float *x, int64_t total)
{
#pragma omp parallel for schedule(static) if (total > PARALLEL_MIN)
    for (int64_t i = 0; i < total; i += ROW_CHUNK)
        gelu_tanh_row(y + i, x + i, total - i < ROW_CHUNK ? total - i : ROW_CHUNK);
}

osp_status cpu_unary(const osp_node *n)
{
    const float *x = osp_f32(n->in[0]);
    float *y = osp_f32(n->out[0]);
    int64_t total = osp_numel(n->out[0]);
    osp_unary_kind k = n->p.unary.kind;
    float alpha = n->p.unary.alpha, beta = n->p.unary.beta;
    if (k == OSP_UNARY_GELU_TANH) {
        cpu_gelu_tanh(y, x, total);
        return OSP_OK;
    }
#pragma omp parallel for schedule(static) if (total > PARALLEL_MIN)
    for (int64_t i = 0; i < total; i++)
        y[i] = unary_value(k, x[i], alpha, beta);
    return OSP_OK;
}

osp_status cpu_unary_backward(const osp_node *n)
{
    const float *gy = osp_f32(n->in[0]), *x = osp_f32(n->in[1]);
    float *gx = osp_f32(n->out[0]);
    int64_t total = osp_numel(n->out[0]);
    osp_unary_kind k = n->p.unary.kind;
    if (k == OSP_UNARY_GELU_TANH || k == OSP_UNARY_SILU) {
        void (*row)(float *, const float *, const float *, int64_t) =
            k == OSP_UNARY_SILU ? silu_backward_row : gelu_tanh_backward_row;
#pragma omp parallel for schedule(static) if (total > PARALLEL_MIN)
        for (int64_t i = 0; i < total; i += ROW_CHUNK)
            row(gx + i, gy + i, x + i, total - i < ROW_CHUNK ? total - i : ROW_CHUNK);
        return OSP_OK;
    }
    double alpha = n->p.unary.alpha, beta = n->p.unary.beta;
#pragma omp parallel for schedule(static) if (total > PARALLEL_MIN)
    for (int64_t i = 0; i < total; i++)
        gx[i] = (float)(gy[i] * unary_derivative(k, x[i], alpha, beta));
    return OSP_OK;
}

osp_status cpu_fill(const osp_node *n)
{
    osp_tensor *y = n->out[0];
    int64_t total = osp_numel(y);
    size_t item = osp_dtype_size(y->dtype);
    char *p = osp_data(y);
    if (total == 0)
        return OSP_OK;
    osp_convert(p, y->dtype, &n->p.fill.value, OSP_F64, 1);
    /* Doubling copies: log2(n) memcpy calls. */
    for (int64_t have = 1; have < total;) {
        int64_t chunk = have < total - have ? have : total - have;
        memcpy(p + (size_t)have * item, p, (size_t)chunk * item);
        have += chunk;
    }
    return OSP_OK;
}

osp_status cpu_cast(const osp_node *n)
{
    osp_convert(osp_data(n->out[0]), n->out[0]->dtype, osp_data(n->in[0]), n->in[0]->dtype,
                (size_t)osp_numel(n->in[0]));
    return OSP_OK;
}

osp_status cpu_copy(const osp_node *n)
{
    return osp_tensor_copy_into(n->out[0], n->in[0]);
}
