/* cublaslt.c — a test-only emulation of cuBLASLt for tests/cuemu (device
 * memory is host memory, streams are synchronous); not a performance path.
 * It defines exactly the cuBLAS/cuBLASLt calls libosp/backend/cuda/ makes,
 * with the real headers' signatures (cublasLt.h is included so that the
 * compiler checks them), so that the backend's GEMM code runs, and is
 * checked, without a GPU.
 *
 * D = epilogue(alpha·op(A)·op(B) + beta·C) per batch element, column-major
 * with leading dimensions and strided batches. A, B: both CUDA_R_32F,
 * CUDA_R_16BF or CUDA_R_16F; C, D: CUDA_R_32F or A's type; compute type
 * CUBLAS_COMPUTE_32F, or CUBLAS_COMPUTE_32F_FAST_TF32 (float inputs, which
 * are rounded to TF32 as tensor cores do); scale type CUDA_R_32F, host
 * pointer mode. Epilogues DEFAULT, BIAS, GELU (tanh approximation) and
 * GELU_BIAS; the bias has D's type and length m (rows of D) and is added
 * before the GELU. Dot products are accumulated in double and rounded once
 * to float (no dependence on an emulated tiling); the epilogue runs in
 * float as on the GPU. C is unread when beta == 0; nothing of D outside
 * its m x n matrices is written.
 *
 * The one "algorithm" records the preference's minimum alignments, which
 * cublasLtMatmul checks of every matrix (address and batch stride), and
 * claims min(max workspace, 1 MiB) of workspace, which it fills with 0xff
 * bytes so that a workspace overlapping live data shows.
 *
 * Each rejection prints "cuemu: cublasLt: <function>: <reason>" to stderr
 * (the real library is silent) and returns NOT_INITIALIZED for a NULL
 * handle (as documented for cublasLtMatmul), INVALID_VALUE for misuse, and
 * NOT_SUPPORTED for what is valid but not emulated (other types,
 * epilogues, orders; empty matrices, which cuBLASLt leaves undocumented). */
#include <cublasLt.h>

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALGO_MAGIC 0x63756c744c74656dull /* marks the algos this emulation made */
#define ALGO_WORKSPACE ((uint64_t)1 << 20)
#define DEFAULT_ALIGNMENT 256u /* documented default of the preference */

struct cublasLtContext {
    int unused;
};

/* The descriptors' fields have the types the header documents for their
 * attributes, so that sizeof a field is the size SetAttribute requires. */
typedef struct layout {
    uint32_t type;
    int32_t order;
    uint64_t rows, cols;
    int64_t ld;
    int32_t batch;
    int64_t stride;
} layout;

typedef struct desc {
    int32_t compute, scale, pointer_mode, trans_a, trans_b, trans_c;
    uint32_t epilogue;
    const void *bias;
} desc;

typedef struct pref {
    uint64_t max_workspace;
    uint32_t align[4]; /* A, B, C, D */
} pref;

_Static_assert(sizeof(layout) <= sizeof(cublasLtMatrixLayoutOpaque_t), "layout fits");
_Static_assert(sizeof(desc) <= sizeof(cublasLtMatmulDescOpaque_t), "desc fits");
_Static_assert(sizeof(pref) <= sizeof(cublasLtMatmulPreferenceOpaque_t), "pref fits");

/* What the checks derive from the descriptors for the product itself. */
typedef struct problem {
    const layout *l[4]; /* A, B, C, D */
    const void *bias;   /* NULL without a bias epilogue */
    int64_t m, n, k, batch;
    bool trans_a, trans_b, tf32, gelu;
} problem;

static cublasStatus_t fail(cublasStatus_t s, const char *fn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuemu: cublasLt: %s: ", fn);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return s;
}

/* ---- handles and descriptors ---- */

cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle)
{
    if (!handle)
        return fail(CUBLAS_STATUS_INVALID_VALUE, __func__, "NULL handle pointer");
    *handle = calloc(1, sizeof **handle);
    return *handle ? CUBLAS_STATUS_SUCCESS
                   : fail(CUBLAS_STATUS_ALLOC_FAILED, __func__, "out of memory");
}

/* A descriptor: a block of the header's opaque size starting with `init`. */
static void *create(size_t opaque_size, const void *init, size_t init_size)
{
    void *p = calloc(1, opaque_size);
    if (p)
        memcpy(p, init, init_size);
    return p;
}

#define CREATE(out, opaque, init)                                                               \
    if (!(out))                                                                                 \
        return fail(CUBLAS_STATUS_INVALID_VALUE, __func__, "NULL descriptor pointer");          \
    *(out) = create(sizeof(opaque), &(init), sizeof(init));                                     \
    return *(out) ? CUBLAS_STATUS_SUCCESS                                                       \
                  : fail(CUBLAS_STATUS_ALLOC_FAILED, __func__, "out of memory")

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld)
{
    layout init = {(uint32_t)type, CUBLASLT_ORDER_COL, rows, cols, ld, 1, 0};
    CREATE(l, cublasLtMatrixLayoutOpaque_t, init);
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute,
                                        cudaDataType_t scale)
{
    desc init = {compute, scale, CUBLASLT_POINTER_MODE_HOST, CUBLAS_OP_N, CUBLAS_OP_N,
                 CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT, NULL};
    CREATE(d, cublasLtMatmulDescOpaque_t, init);
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p)
{
    pref init = {0, {DEFAULT_ALIGNMENT, DEFAULT_ALIGNMENT, DEFAULT_ALIGNMENT, DEFAULT_ALIGNMENT}};
    CREATE(p, cublasLtMatmulPreferenceOpaque_t, init);
}

/* Destroying NULL is a no-op: the backend destroys whatever it may not
 * have created after a failure. */
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l)
{
    free(l);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d)
{
    free(d);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p)
{
    free(p);
    return CUBLAS_STATUS_SUCCESS;
}

/* ---- attributes ---- */

static cublasStatus_t copy_attr(const char *fn, const char *name, void *field, size_t field_size,
                                const void *buf, size_t size)
{
    if (size != field_size)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "%s takes %zu bytes, got %zu", name,
                    field_size, size);
    memcpy(field, buf, size);
    return CUBLAS_STATUS_SUCCESS;
}

#define ATTR(id, field)                                                                         \
    case id:                                                                                    \
        return copy_attr(__func__, #id, &(field), sizeof(field), buf, size)

#define UNKNOWN_ATTR                                                                            \
    default:                                                                                    \
        return fail(CUBLAS_STATUS_INVALID_VALUE, __func__, "attribute %d unknown or not emulated", \
                    (int)attr)

#define CHECK_SET(obj)                                                                          \
    if (!(obj) || !buf)                                                                         \
        return fail(CUBLAS_STATUS_INVALID_VALUE, __func__, "NULL descriptor or buffer")

cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l,
                                                cublasLtMatrixLayoutAttribute_t attr,
                                                const void *buf, size_t size)
{
    CHECK_SET(l);
    layout *x = (layout *)(void *)l;
    switch (attr) {
    ATTR(CUBLASLT_MATRIX_LAYOUT_TYPE, x->type);
    ATTR(CUBLASLT_MATRIX_LAYOUT_ORDER, x->order);
    ATTR(CUBLASLT_MATRIX_LAYOUT_ROWS, x->rows);
    ATTR(CUBLASLT_MATRIX_LAYOUT_COLS, x->cols);
    ATTR(CUBLASLT_MATRIX_LAYOUT_LD, x->ld);
    ATTR(CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, x->batch);
    ATTR(CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, x->stride);
    UNKNOWN_ATTR;
    }
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d,
                                              cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t size)
{
    CHECK_SET(d);
    desc *x = (desc *)(void *)d;
    switch (attr) {
    ATTR(CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, x->compute);
    ATTR(CUBLASLT_MATMUL_DESC_SCALE_TYPE, x->scale);
    ATTR(CUBLASLT_MATMUL_DESC_POINTER_MODE, x->pointer_mode);
    ATTR(CUBLASLT_MATMUL_DESC_TRANSA, x->trans_a);
    ATTR(CUBLASLT_MATMUL_DESC_TRANSB, x->trans_b);
    ATTR(CUBLASLT_MATMUL_DESC_TRANSC, x->trans_c);
    ATTR(CUBLASLT_MATMUL_DESC_EPILOGUE, x->epilogue);
    ATTR(CUBLASLT_MATMUL_DESC_BIAS_POINTER, x->bias);
    UNKNOWN_ATTR;
    }
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void *buf, size_t size)
{
    CHECK_SET(p);
    pref *x = (pref *)(void *)p;
    switch (attr) {
    ATTR(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, x->max_workspace);
    ATTR(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, x->align[0]);
    ATTR(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, x->align[1]);
    ATTR(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, x->align[2]);
    ATTR(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, x->align[3]);
    UNKNOWN_ATTR;
    }
}

/* ---- the checks ---- */

static size_t type_size(uint32_t t)
{
    return t == CUDA_R_32F ? 4 : t == CUDA_R_16BF || t == CUDA_R_16F ? 2 : 0;
}

static cublasStatus_t check_layout(const char *fn, char name, const layout *l)
{
    if (l->order != CUBLASLT_ORDER_COL)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "%c: order %d not emulated", name, l->order);
    if (!type_size(l->type))
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "%c: data type %u not emulated", name,
                    l->type);
    if (l->rows == 0 || l->cols == 0)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "%c: empty %llux%llu matrix not emulated",
                    name, (unsigned long long)l->rows, (unsigned long long)l->cols);
    if (l->rows > INT32_MAX || l->cols > INT32_MAX)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "%c: %llux%llu exceeds int32", name,
                    (unsigned long long)l->rows, (unsigned long long)l->cols);
    if (l->ld < (int64_t)l->rows)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "%c: ld %lld < rows %llu", name,
                    (long long)l->ld, (unsigned long long)l->rows);
    if (l->batch < 1 || l->stride < 0)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "%c: batch count %d, batch stride %lld",
                    name, l->batch, (long long)l->stride);
    return CUBLAS_STATUS_SUCCESS;
}

static cublasStatus_t check_desc(const char *fn, const desc *d, problem *p)
{
    if (d->compute != CUBLAS_COMPUTE_32F && d->compute != CUBLAS_COMPUTE_32F_FAST_TF32)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "compute type %d not emulated", d->compute);
    if (d->scale != CUDA_R_32F)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "scale type %d not emulated", d->scale);
    if (d->pointer_mode != CUBLASLT_POINTER_MODE_HOST)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "pointer mode %d not emulated",
                    d->pointer_mode);
    for (int i = 0; i < 2; i++) {
        int32_t t = i ? d->trans_b : d->trans_a;
        if (t != CUBLAS_OP_N && t != CUBLAS_OP_T)
            return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "TRANS%c %d", "AB"[i], t);
    }
    if (d->trans_c != CUBLAS_OP_N)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "TRANSC must be CUBLAS_OP_N");
    uint32_t e = d->epilogue;
    if (e != CUBLASLT_EPILOGUE_DEFAULT && e != CUBLASLT_EPILOGUE_BIAS &&
        e != CUBLASLT_EPILOGUE_GELU && e != CUBLASLT_EPILOGUE_GELU_BIAS)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "epilogue %u not emulated", e);
    p->trans_a = d->trans_a == CUBLAS_OP_T;
    p->trans_b = d->trans_b == CUBLAS_OP_T;
    p->tf32 = d->compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    p->bias = (e & CUBLASLT_EPILOGUE_BIAS) ? d->bias : NULL;
    if ((e & CUBLASLT_EPILOGUE_BIAS) && !d->bias)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "bias epilogue without a bias pointer");
    p->gelu = e & CUBLASLT_EPILOGUE_GELU;
    return CUBLAS_STATUS_SUCCESS;
}

/* The descriptors of one product, valid and consistent, as `p`. */
static cublasStatus_t check_problem(const char *fn, cublasLtMatmulDesc_t md,
                                    cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                                    cublasLtMatrixLayout_t lc, cublasLtMatrixLayout_t ld,
                                    problem *p)
{
    const desc *d = (const desc *)(void *)md;
    const layout *a = p->l[0] = (layout *)(void *)la, *b = p->l[1] = (layout *)(void *)lb;
    const layout *c = p->l[2] = (layout *)(void *)lc, *dd = p->l[3] = (layout *)(void *)ld;
    if (!d || !a || !b || !c || !dd)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "NULL descriptor");
    cublasStatus_t s = check_desc(fn, d, p);
    for (int i = 0; s == CUBLAS_STATUS_SUCCESS && i < 4; i++)
        s = check_layout(fn, "ABCD"[i], p->l[i]);
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    if (a->type != b->type || c->type != dd->type ||
        (dd->type != CUDA_R_32F && dd->type != a->type) || (p->tf32 && a->type != CUDA_R_32F))
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "types A %u B %u C %u D %u, compute %d",
                    a->type, b->type, c->type, dd->type, d->compute);
    p->m = (int64_t)dd->rows;
    p->n = (int64_t)dd->cols;
    p->k = (int64_t)(p->trans_a ? a->rows : a->cols);
    int64_t am = (int64_t)(p->trans_a ? a->cols : a->rows);
    int64_t bk = (int64_t)(p->trans_b ? b->cols : b->rows);
    int64_t bn = (int64_t)(p->trans_b ? b->rows : b->cols);
    if (am != p->m || bk != p->k || bn != p->n || c->rows != dd->rows || c->cols != dd->cols)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn,
                    "op(A) %lldx%lld, op(B) %lldx%lld, C %llux%llu, D %lldx%lld disagree",
                    (long long)am, (long long)p->k, (long long)bk, (long long)bn,
                    (unsigned long long)c->rows, (unsigned long long)c->cols, (long long)p->m,
                    (long long)p->n);
    if (a->batch != dd->batch || b->batch != dd->batch || c->batch != dd->batch)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "batch counts A %d B %d C %d D %d differ",
                    a->batch, b->batch, c->batch, dd->batch);
    p->batch = dd->batch;
    /* not a documented check, but overlapping outputs are a caller's bug */
    if (p->batch > 1 && dd->stride < dd->ld * (p->n - 1) + p->m)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "D's batch stride %lld overlaps its matrices",
                    (long long)dd->stride);
    if ((uintptr_t)p->bias % type_size(dd->type))
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "bias %p misaligned", d->bias);
    return CUBLAS_STATUS_SUCCESS;
}

/* ---- the heuristic ---- */

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t d,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t dd,
                                              cublasLtMatmulPreference_t pr, int requested,
                                              cublasLtMatmulHeuristicResult_t results[],
                                              int *returned)
{
    const char *fn = __func__;
    if (!handle)
        return fail(CUBLAS_STATUS_NOT_INITIALIZED, fn, "NULL handle");
    if (!pr || requested <= 0 || !results || !returned)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "preference %p, %d results at %p, count %p",
                    (void *)pr, requested, (void *)results, (void *)returned);
    *returned = 0;
    problem p;
    cublasStatus_t s = check_problem(fn, d, a, b, c, dd, &p);
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    const pref *x = (const pref *)(void *)pr;
    for (int i = 0; i < 4; i++) {
        uint32_t al = x->align[i];
        if (al == 0 || (al & (al - 1)))
            return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "%c alignment %u not a power of two",
                        "ABCD"[i], al);
        /* no kernel reads elements split across their natural alignment */
        if (al < type_size(p.l[i]->type))
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "no algorithm for %c aligned to %u bytes",
                        "ABCD"[i], al);
    }
    /* as a cuBLASLt without GELU kernels for a shape would answer, so the
     * caller's fallback (the GEMM, then a GELU kernel) gets run too */
    const char *no_gelu = getenv("OSP_CUEMU_LT_NO_GELU");
    if (p.gelu && no_gelu && *no_gelu && strcmp(no_gelu, "0") != 0)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, fn, "no algorithm with a GELU epilogue "
                    "(OSP_CUEMU_LT_NO_GELU)");
    uint64_t ws = x->max_workspace < ALGO_WORKSPACE ? x->max_workspace : ALGO_WORKSPACE;
    results[0] = (cublasLtMatmulHeuristicResult_t){
        .algo.data = {ALGO_MAGIC, ws, x->align[0], x->align[1], x->align[2], x->align[3]},
        .workspaceSize = (size_t)ws, .state = CUBLAS_STATUS_SUCCESS, .wavesCount = 1.0f};
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

/* ---- element conversions (round to nearest even, as the GPU stores) ---- */

static float bits_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t float_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static float f16_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) /* zero or subnormal: m · 2^-24 */
        return bits_float(sign | float_bits(ldexpf((float)m, -24)));
    if (e == 31)
        return bits_float(sign | 0x7f800000u | m << 13);
    return bits_float(sign | (e + 112) << 23 | m << 13);
}

static uint16_t float_to_f16(float f)
{
    uint32_t x = float_bits(f), sign = (x >> 16) & 0x8000, ax = x & 0x7fffffff;
    if (ax > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00);
    if (ax >= 0x477ff000u) /* 65520 and above round to infinity */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) /* below 2^-14: a subnormal, in units of 2^-24 (exact scaling) */
        return (uint16_t)(sign | (uint32_t)lrintf(bits_float(ax) * 16777216.0f));
    uint32_t r = ax - 0x38000000u; /* rebias the exponent from 127 to 15 */
    r += 0x0fff + ((r >> 13) & 1);
    return (uint16_t)(sign | r >> 13);
}

static float bf16_to_float(uint16_t h) { return bits_float((uint32_t)h << 16); }

static uint16_t float_to_bf16(float f)
{
    uint32_t x = float_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000u)
        return (uint16_t)(x >> 16 | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* TF32 keeps 10 of float's 23 mantissa bits. */
static float round_tf32(float f)
{
    uint32_t x = float_bits(f);
    if ((x & 0x7f800000u) == 0x7f800000u)
        return f;
    return bits_float((x + 0x0fff + ((x >> 13) & 1)) & ~0x1fffu);
}

static float load(const void *base, uint32_t type, int64_t i)
{
    if (type == CUDA_R_32F)
        return ((const float *)base)[i];
    uint16_t h = ((const uint16_t *)base)[i];
    return type == CUDA_R_16BF ? bf16_to_float(h) : f16_to_float(h);
}

static void store(void *base, uint32_t type, int64_t i, float v)
{
    if (type == CUDA_R_32F)
        ((float *)base)[i] = v;
    else
        ((uint16_t *)base)[i] = type == CUDA_R_16BF ? float_to_bf16(v) : float_to_f16(v);
}

/* ---- the product ---- */

/* op(X) of batch element `e` as `rows` contiguous float vectors of length
 * k (row r of op(X) for A; column r of op(X) for B), so that each dot
 * product reads two contiguous vectors. */
static void gather(float *dst, const void *x, const layout *l, int64_t e, bool trans,
                   bool rows_of_op, int64_t rows, int64_t k, bool tf32)
{
    bool stored_row = rows_of_op != trans; /* vector r is row r of the stored matrix */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < k; j++) {
            int64_t i = e * l->stride + (stored_row ? r + j * l->ld : j + r * l->ld);
            float v = load(x, l->type, i);
            dst[r * k + j] = tf32 ? round_tf32(v) : v;
        }
}

static float gelu_tanh(float x)
{
    return 0.5f * x * (1.0f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x)));
}

static void multiply(const problem *p, float alpha, const float *ra, const float *cb, float beta,
                     const void *c, void *d, int64_t e)
{
    const layout *lc = p->l[2], *ld = p->l[3];
    for (int64_t j = 0; j < p->n; j++)
        for (int64_t i = 0; i < p->m; i++) {
            double acc = 0;
            for (int64_t l = 0; l < p->k; l++)
                acc += (double)ra[i * p->k + l] * cb[j * p->k + l];
            float v = alpha * (float)acc;
            if (beta != 0.0f) /* beta == 0: C is not read, its NaNs do not propagate */
                v += beta * load(c, lc->type, e * lc->stride + i + j * lc->ld);
            if (p->bias)
                v += load(p->bias, ld->type, i);
            if (p->gelu)
                v = gelu_tanh(v);
            store(d, ld->type, e * ld->stride + i + j * ld->ld, v);
        }
}

static bool same_layout(const layout *x, const layout *y)
{
    return x->type == y->type && x->rows == y->rows && x->cols == y->cols && x->ld == y->ld &&
           x->batch == y->batch && x->stride == y->stride;
}

/* The algorithm (from the heuristic; the implicit one with the default
 * preference when NULL, as documented) and its demands on the call. */
static cublasStatus_t check_algo(const char *fn, const cublasLtMatmulAlgo_t *algo,
                                 const void *const x[4], const layout *const l[4],
                                 const void *ws, size_t ws_size, uint64_t *ws_used)
{
    uint64_t def[6] = {ALGO_MAGIC, 0, DEFAULT_ALIGNMENT, DEFAULT_ALIGNMENT, DEFAULT_ALIGNMENT,
                       DEFAULT_ALIGNMENT};
    const uint64_t *a = algo ? algo->data : def;
    if (a[0] != ALGO_MAGIC)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "algo not from the heuristic");
    if (ws_size < a[1] || (a[1] && !ws))
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "workspace %p of %zu bytes, algo needs %llu",
                    ws, ws_size, (unsigned long long)a[1]);
    for (int i = 0; i < 4; i++) { /* every batch element on an a[2 + i]-byte boundary */
        uint64_t step = l[i]->batch > 1 ? (uint64_t)l[i]->stride * type_size(l[i]->type) : 0;
        if (x[i] && ((uintptr_t)x[i] % a[2 + i] || step % a[2 + i]))
            return fail(CUBLAS_STATUS_INVALID_VALUE, fn,
                        "%c at %p, batch stride %lld: not aligned to the %llu bytes declared",
                        "ABCD"[i], x[i], (long long)l[i]->stride, (unsigned long long)a[2 + i]);
    }
    *ws_used = a[1];
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t dsc,
                              const void *alpha, const void *a, cublasLtMatrixLayout_t la,
                              const void *b, cublasLtMatrixLayout_t lb, const void *beta,
                              const void *c, cublasLtMatrixLayout_t lc, void *d,
                              cublasLtMatrixLayout_t ldd, const cublasLtMatmulAlgo_t *algo,
                              void *workspace, size_t workspace_size, cudaStream_t stream)
{
    (void)stream; /* the emulation is synchronous */
    const char *fn = __func__;
    if (!handle)
        return fail(CUBLAS_STATUS_NOT_INITIALIZED, fn, "NULL handle");
    problem p;
    cublasStatus_t s = check_problem(fn, dsc, la, lb, lc, ldd, &p);
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    if (!alpha || !beta)
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "NULL alpha or beta");
    float al, be;
    memcpy(&al, alpha, sizeof al);
    memcpy(&be, beta, sizeof be);
    if (!a || !b || !d || (!c && be != 0.0f))
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "NULL matrix: A %p B %p C %p D %p", a, b, c,
                    (void *)d);
    if (c == d && !same_layout(p.l[2], p.l[3]))
        return fail(CUBLAS_STATUS_INVALID_VALUE, fn, "in place (C == D) with different layouts");
    const void *x[4] = {a, b, c, d};
    uint64_t ws_used = 0;
    s = check_algo(fn, algo, x, p.l, workspace, workspace_size, &ws_used);
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    /* an algorithm owns its workspace: clobber it so that overlap with live data shows */
    if (ws_used)
        memset(workspace, 0xff, (size_t)ws_used);
    float *ra = malloc(sizeof(float) * (size_t)((p.m + p.n) * p.k));
    if (!ra)
        return fail(CUBLAS_STATUS_ALLOC_FAILED, fn, "out of host memory for op(A), op(B)");
    float *cb = ra + p.m * p.k;
    for (int64_t e = 0; e < p.batch; e++) {
        gather(ra, a, p.l[0], e, p.trans_a, true, p.m, p.k, p.tf32);
        gather(cb, b, p.l[1], e, p.trans_b, false, p.n, p.k, p.tf32);
        multiply(&p, al, ra, cb, be, c, d, e);
    }
    free(ra);
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
    default: return "unknown error";
    }
}
