/* test_cublaslt.c — self-test of the test-only cuBLASLt emulation
 * (cublaslt.c) for tests/cuemu: drives it through the call sequence of
 * libosp/backend/cuda/cuda_gemm.c (a row-major product as the column-major
 * Cᵀ = op(B)ᵀ·op(A)ᵀ, B passed first; alignments from the pointers; one
 * heuristic result; in-place C == D) and checks every element against a
 * naive row-major triple loop in double, and that nothing of C outside its
 * m x n matrices changed; then the heuristic's answer and some rejections.
 * Links no NVIDIA library.
 *
 * cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I/usr/local/cuda/include \
 *    tests/cuemu/test_cublaslt.c tests/cuemu/cublaslt.c -lm -o /tmp/test_cublaslt */
#include <cublasLt.h>

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKSPACE_BYTES ((size_t)32 << 20) /* as cuda_gemm.c */
#define POISON_F32 0x7fbadbadu             /* a NaN that no computation makes */
#define POISON_16 0x7fbbu

static int passed, failed;
static cublasLtHandle_t lt;
static void *workspace;

static bool check(bool cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s %d - ", cond ? "ok" : "not ok", passed + failed + 1);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    cond ? passed++ : failed++;
    return cond;
}

/* ---- elements, independent of the emulation's conversions ---- */

static size_t esize(cudaDataType t) { return t == CUDA_R_32F ? 4 : 2; }

/* Random values: floats with full mantissas, or for 16-bit types small
 * multiples of 1/16, exact in bf16 and f16 alike. */
static uint64_t rng = 88172645463325252ull;

static double rnd(cudaDataType t)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    if (t != CUDA_R_32F)
        return (double)((int)(rng % 129) - 64) / 16.0;
    return (double)(float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static double get(cudaDataType t, const void *buf, int64_t i)
{
    if (t == CUDA_R_32F)
        return ((const float *)buf)[i];
    uint32_t h = ((const uint16_t *)buf)[i];
    if (t == CUDA_R_16BF) {
        uint32_t u = h << 16;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 31 ? (m ? NAN : INFINITY)
               : e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return h & 0x8000 ? -v : v;
}

/* Only for values exact in the type (rnd's, NaN). */
static void put(cudaDataType t, void *buf, int64_t i, double v)
{
    if (t == CUDA_R_32F) {
        ((float *)buf)[i] = (float)v;
        return;
    }
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t h = (uint16_t)(u >> 16);
    if (t == CUDA_R_16F) {
        int e;
        double fr = frexp(fabs(v), &e); /* |v| = fr · 2^e, fr in [0.5, 1) */
        h = isnan(v) ? 0x7e00 : v == 0 ? 0 : (uint16_t)((e + 14) << 10 | ((int)(fr * 2048) - 1024));
        h |= signbit(v) ? 0x8000 : 0;
    }
    ((uint16_t *)buf)[i] = h;
}

static void poison(cudaDataType t, void *buf, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (t == CUDA_R_32F)
            ((uint32_t *)buf)[i] = POISON_F32;
        else
            ((uint16_t *)buf)[i] = POISON_16;
}

static void *alloc(int64_t elems, cudaDataType t)
{
    size_t bytes = ((size_t)elems * esize(t) + 255) / 256 * 256;
    void *p = aligned_alloc(256, bytes);
    if (!p) {
        perror("aligned_alloc");
        exit(2);
    }
    return p;
}

/* ---- the backend's call sequence ---- */

typedef struct gemm {
    bool ta, tb;
    int64_t m, n, k, batch;
    float alpha, beta;
    const void *a, *b;
    void *c;
    int64_t lda, sa, ldb, sb, ldc, sc;
    cudaDataType ab, ct;
    cublasComputeType_t compute;
    const void *bias;
    bool gelu;
} gemm;

/* The largest power of two up to 256 dividing address and batch stride. */
static uint32_t alignment(const void *p, int64_t stride, cudaDataType t)
{
    uint64_t bits = (uint64_t)(uintptr_t)p | (uint64_t)stride * esize(t);
    uint32_t a = 256;
    while (a > 1 && bits % a)
        a >>= 1;
    return a;
}

/* Column-major layout of a row-major rows x cols matrix. */
static cublasStatus_t layout(cublasLtMatrixLayout_t *l, cudaDataType t, int64_t rows,
                             int64_t cols, int64_t ld, int64_t stride, int64_t batch)
{
    cublasStatus_t s = cublasLtMatrixLayoutCreate(l, t, (uint64_t)cols, (uint64_t)rows, ld);
    int32_t count = (int32_t)batch;
    if (s == CUBLAS_STATUS_SUCCESS && batch > 1)
        s = cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                             sizeof count);
    if (s == CUBLAS_STATUS_SUCCESS && batch > 1)
        s = cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                             &stride, sizeof stride);
    return s;
}

static cublasStatus_t run(const gemm *g)
{
    cublasLtMatmulDesc_t desc = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasOperation_t op_a = g->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op_b = g->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasStatus_t s = cublasLtMatmulDescCreate(&desc, g->compute, CUDA_R_32F);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_b, sizeof op_b);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_a, sizeof op_a);
    if (s == CUBLAS_STATUS_SUCCESS && (g->bias || g->gelu)) {
        cublasLtEpilogue_t epi = !g->gelu ? CUBLASLT_EPILOGUE_BIAS
                                 : g->bias ? CUBLASLT_EPILOGUE_GELU_BIAS
                                           : CUBLASLT_EPILOGUE_GELU;
        s = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
        if (s == CUBLAS_STATUS_SUCCESS && g->bias)
            s = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g->bias,
                                               sizeof g->bias);
    }
    if (s == CUBLAS_STATUS_SUCCESS)
        s = layout(&la, g->ab, g->ta ? g->k : g->m, g->ta ? g->m : g->k, g->lda, g->sa, g->batch);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = layout(&lb, g->ab, g->tb ? g->n : g->k, g->tb ? g->k : g->n, g->ldb, g->sb, g->batch);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = layout(&lc, g->ct, g->m, g->n, g->ldc, g->sc, g->batch);
    size_t ws = WORKSPACE_BYTES;
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceCreate(&pref);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &ws, sizeof ws);
    const struct { cublasLtMatmulPreferenceAttributes_t attr; uint32_t bytes; } al[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment(g->b, g->sb, g->ab)}, /* Lt's A */
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment(g->a, g->sa, g->ab)},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment(g->c, g->sc, g->ct)},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment(g->c, g->sc, g->ct)},
    };
    for (int i = 0; s == CUBLAS_STATUS_SUCCESS && i < 4; i++)
        s = cublasLtMatmulPreferenceSetAttribute(pref, al[i].attr, &al[i].bytes,
                                                 sizeof al[i].bytes);
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulAlgoGetHeuristic(lt, desc, lb, la, lc, lc, pref, 1, &heur, &found);
    if (s == CUBLAS_STATUS_SUCCESS && found == 1)
        s = cublasLtMatmul(lt, desc, &g->alpha, g->b, lb, g->a, la, &g->beta, g->c, lc, g->c, lc,
                           &heur.algo, workspace, ws, NULL);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(desc);
    return s == CUBLAS_STATUS_SUCCESS && found != 1 ? CUBLAS_STATUS_NOT_SUPPORTED : s;
}

/* ---- the reference ---- */

static double ref_gelu(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

/* x rounded to `bits` significant bits, ties to even: 11 for TF32 and f16
 * (normal range), 8 for bf16. */
static double round_sig(double x, int bits)
{
    int e;
    double f = frexp(x, &e);
    return ldexp(rint(ldexp(f, bits)), e - bits);
}

static double elem_a(const gemm *g, int64_t e, int64_t i, int64_t l)
{
    double v = get(g->ab, g->a, e * g->sa + (g->ta ? l * g->lda + i : i * g->lda + l));
    return g->compute == CUBLAS_COMPUTE_32F_FAST_TF32 ? round_sig(v, 11) : v;
}

static double elem_b(const gemm *g, int64_t e, int64_t l, int64_t j)
{
    double v = get(g->ab, g->b, e * g->sb + (g->tb ? j * g->ldb + l : l * g->ldb + j));
    return g->compute == CUBLAS_COMPUTE_32F_FAST_TF32 ? round_sig(v, 11) : v;
}

/* Runs g on C = `c0` (left unchanged) and compares with the triple loop:
 * float results within 1e-5 of a magnitude bound; 16-bit ones bit for bit
 * with the reference rounded to the type (their operands, multiples of
 * 1/16, make every sum exact); all elements outside D unchanged. */
static void expect(const gemm *g, const void *c0, int64_t c_elems, const char *what)
{
    size_t bytes = (size_t)c_elems * esize(g->ct);
    memcpy(g->c, c0, bytes);
    cublasStatus_t s = run(g);
    int bits = g->ct == CUDA_R_16BF ? 8 : 11;
    int64_t bad = 0, touched = 0;
    bool *in = calloc((size_t)c_elems, sizeof *in);
    for (int64_t e = 0; s == CUBLAS_STATUS_SUCCESS && e < g->batch; e++)
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t j = 0; j < g->n; j++) {
                double sum = 0, mag = 0;
                for (int64_t l = 0; l < g->k; l++) {
                    double p = elem_a(g, e, i, l) * elem_b(g, e, l, j);
                    sum += p;
                    mag += fabs(p);
                }
                int64_t at = e * g->sc + i * g->ldc + j;
                double v = g->alpha * sum, bound = fabs(g->alpha) * mag;
                if (g->beta != 0) {
                    v += g->beta * get(g->ct, c0, at);
                    bound += fabs(g->beta * get(g->ct, c0, at));
                }
                if (g->bias) {
                    v += ((const float *)g->bias)[j];
                    bound += fabs(((const float *)g->bias)[j]);
                }
                v = g->gelu ? ref_gelu(v) : v;
                double got = get(g->ct, g->c, at);
                if (g->ct == CUDA_R_32F) /* GELU's slope is below 1.2 */
                    bad += !(fabs(got - v) <= 1e-5 * bound * 1.2 + 1e-30);
                else
                    bad += got != round_sig(v, bits);
                in[at] = true;
            }
    for (int64_t i = 0; s == CUBLAS_STATUS_SUCCESS && i < c_elems; i++)
        touched += !in[i] && memcmp((const char *)c0 + i * esize(g->ct),
                                    (const char *)g->c + i * esize(g->ct), esize(g->ct));
    free(in);
    check(s == CUBLAS_STATUS_SUCCESS && !bad && !touched,
          "%s: %s%s %lldx%lldx%lld batch %lld (status %d, %lld wrong, %lld outside D written)",
          what, g->ta ? "T" : "N", g->tb ? "T" : "N", (long long)g->m, (long long)g->n,
          (long long)g->k, (long long)g->batch, (int)s, (long long)bad, (long long)touched);
}

/* A product with random operands, C poisoned outside its matrices and NaN
 * (beta == 0) or random inside; extra: ld padding; gap: batch stride gap;
 * b_stride0: B broadcast over the batch (stride 0). */
static void product(gemm g, int extra, int gap, bool b_stride0, const char *what)
{
    int64_t ar = g.ta ? g.k : g.m, ac = g.ta ? g.m : g.k;
    int64_t br = g.tb ? g.n : g.k, bc = g.tb ? g.k : g.n;
    g.lda = ac + extra, g.ldb = bc + extra, g.ldc = g.n + extra;
    g.sa = ar * g.lda + gap, g.sb = b_stride0 ? 0 : br * g.ldb + gap, g.sc = g.m * g.ldc + gap;
    int64_t na = g.sa * g.batch, nb = br * g.ldb + g.sb * g.batch, nc = g.sc * g.batch;
    void *a = alloc(na, g.ab), *b = alloc(nb, g.ab), *c = alloc(nc, g.ct), *c0 = alloc(nc, g.ct);
    for (int64_t i = 0; i < na; i++)
        put(g.ab, a, i, rnd(g.ab));
    for (int64_t i = 0; i < nb; i++)
        put(g.ab, b, i, rnd(g.ab));
    poison(g.ct, c0, nc);
    for (int64_t e = 0; e < g.batch; e++)
        for (int64_t i = 0; i < g.m; i++)
            for (int64_t j = 0; j < g.n; j++)
                put(g.ct, c0, e * g.sc + i * g.ldc + j, g.beta != 0 ? rnd(g.ct) : NAN);
    g.a = a, g.b = b, g.c = c;
    expect(&g, c0, nc, what);
    free(a), free(b), free(c), free(c0);
}

static gemm plain(bool ta, bool tb, int64_t m, int64_t n, int64_t k)
{
    return (gemm){.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .batch = 1, .alpha = 1.0f,
                  .ab = CUDA_R_32F, .ct = CUDA_R_32F, .compute = CUBLAS_COMPUTE_32F};
}

static void test_products(void)
{
    static const int64_t shapes[][3] = {{1, 1, 1}, {1, 5, 3}, {4, 1, 6}, {3, 7, 1}, {5, 3, 8},
                                        {33, 17, 29}};
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            product(plain(t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2]), (int)s % 3, 0,
                    false, "f32, beta 0 over NaN C, ld padding");
    gemm g = plain(false, true, 6, 5, 4);
    g.alpha = 0.5f, g.beta = 1.0f;
    product(g, 2, 0, false, "alpha 0.5, beta 1");
    g.beta = -2.0f;
    product(g, 0, 0, false, "beta -2");
    for (int t = 0; t < 4; t++) {
        g = plain(t & 1, t >> 1, 4, 6, 5);
        g.batch = 3;
        product(g, t % 2, 7, false, "strided batch, gaps between matrices");
    }
    g = plain(false, false, 3, 4, 5);
    g.batch = 4;
    product(g, 1, 3, true, "strided batch, B broadcast (stride 0)");
}

static void test_types(void)
{
    static const struct { cudaDataType ab, ct; const char *what; } types[] = {
        {CUDA_R_16BF, CUDA_R_32F, "bf16 inputs, f32 output"},
        {CUDA_R_16BF, CUDA_R_16BF, "bf16 inputs and output"},
        {CUDA_R_16F, CUDA_R_32F, "f16 inputs, f32 output"},
        {CUDA_R_16F, CUDA_R_16F, "f16 inputs and output"},
    };
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        for (int t = 0; t < 4; t++) {
            gemm g = plain(t & 1, t >> 1, 7, 5, 9);
            g.ab = types[i].ab, g.ct = types[i].ct;
            g.batch = 1 + t % 2;
            g.beta = t == 3 ? 1.0f : 0.0f;
            product(g, t % 2, 1, false, types[i].what);
        }
    gemm g = plain(true, false, 9, 6, 11);
    g.compute = CUBLAS_COMPUTE_32F_FAST_TF32;
    product(g, 1, 0, false, "TF32 compute: inputs rounded to TF32");
}

/* f16 results at the edges of the format: 1x1x1 products, bits in and out
 * (overflow, the largest finite, subnormal results with a tie to even,
 * a subnormal input). */
static void test_f16_edges(void)
{
    static const uint16_t cases[][3] = {
        {0x6800, 0x5000, 0x7c00}, {0x7bff, 0x3c00, 0x7bff}, {0x0400, 0x2800, 0x0020},
        {0x0400, 0x1000, 0x0000}, {0x0600, 0x1000, 0x0001}, {0x8400, 0x2800, 0x8020},
        {0x0003, 0x6400, 0x0a00}};
    uint16_t *a = alloc(1, CUDA_R_16F), *b = alloc(1, CUDA_R_16F), *c = alloc(1, CUDA_R_16F);
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gemm g = plain(false, false, 1, 1, 1);
        g.ab = g.ct = CUDA_R_16F, g.lda = g.ldb = g.ldc = 1;
        g.a = a, g.b = b, g.c = c;
        a[0] = cases[i][0], b[0] = cases[i][1], c[0] = POISON_16;
        bad += run(&g) != CUBLAS_STATUS_SUCCESS || c[0] != cases[i][2];
    }
    check(!bad, "f16 overflow, largest finite, subnormals, ties to even (%d wrong)", bad);
    free(a), free(b), free(c);
}

/* The linear layer's GEMM: x[rows, in] · w[out, in]ᵀ + bias[out], GELU. */
static void test_epilogues(void)
{
    int64_t rows = 6, in = 10, out = 7;
    float *bias = alloc(out, CUDA_R_32F);
    for (int64_t i = 0; i < out; i++)
        bias[i] = (float)rnd(CUDA_R_32F) * 2;
    static const struct { bool bias, gelu; const char *what; } epi[] = {
        {true, false, "BIAS epilogue"}, {false, true, "GELU epilogue (tanh)"},
        {true, true, "GELU_BIAS epilogue"}};
    for (int bf = 0; bf < 2; bf++)
        for (size_t i = 0; i < sizeof epi / sizeof *epi; i++) {
            gemm g = plain(false, true, rows, out, in);
            g.ab = bf ? CUDA_R_16BF : CUDA_R_32F;
            g.bias = epi[i].bias ? bias : NULL;
            g.gelu = epi[i].gelu;
            product(g, 0, 0, false, epi[i].what);
        }
    free(bias);
}

/* ---- the heuristic and the rejections, on a column-major D = A·B ---- */

typedef struct direct {
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulHeuristicResult_t heur;
    float *a, *b, *c, alpha, beta;
} direct;

static void direct_setup(direct *d, uint64_t m, uint64_t n, uint64_t k, size_t max_ws)
{
    *d = (direct){.alpha = 1.0f};
    cublasLtMatmulDescCreate(&d->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    cublasLtMatrixLayoutCreate(&d->la, CUDA_R_32F, m, k, (int64_t)m);
    cublasLtMatrixLayoutCreate(&d->lb, CUDA_R_32F, k, n, (int64_t)k);
    cublasLtMatrixLayoutCreate(&d->lc, CUDA_R_32F, m, n, (int64_t)m);
    cublasLtMatmulPreferenceCreate(&d->pref);
    cublasLtMatmulPreferenceSetAttribute(d->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                         &max_ws, sizeof max_ws);
    d->a = alloc((int64_t)(m * k) + 64, CUDA_R_32F);
    d->b = alloc((int64_t)(k * n) + 64, CUDA_R_32F);
    d->c = alloc((int64_t)(m * n) + 64, CUDA_R_32F);
    for (uint64_t i = 0; i < m * k + 64; i++)
        d->a[i] = 1.0f;
    for (uint64_t i = 0; i < k * n + 64; i++)
        d->b[i] = 1.0f;
}

static cublasStatus_t direct_heuristic(direct *d)
{
    int found = 0;
    return cublasLtMatmulAlgoGetHeuristic(lt, d->desc, d->la, d->lb, d->lc, d->lc, d->pref, 1,
                                          &d->heur, &found);
}

static cublasStatus_t direct_matmul(direct *d, const void *a, void *ws, size_t ws_size)
{
    return cublasLtMatmul(lt, d->desc, &d->alpha, a, d->la, d->b, d->lb, &d->beta, d->c, d->lc,
                          d->c, d->lc, &d->heur.algo, ws, ws_size, NULL);
}

static void direct_teardown(direct *d)
{
    cublasLtMatmulPreferenceDestroy(d->pref);
    cublasLtMatrixLayoutDestroy(d->la);
    cublasLtMatrixLayoutDestroy(d->lb);
    cublasLtMatrixLayoutDestroy(d->lc);
    cublasLtMatmulDescDestroy(d->desc);
    free(d->a), free(d->b), free(d->c);
}

static void test_heuristic(void)
{
    direct d;
    direct_setup(&d, 4, 3, 2, WORKSPACE_BYTES);
    int found = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(lt, d.desc, d.la, d.lb, d.lc, d.lc, d.pref,
                                                      1, &d.heur, &found);
    check(s == CUBLAS_STATUS_SUCCESS && found == 1 && d.heur.state == CUBLAS_STATUS_SUCCESS &&
              d.heur.workspaceSize <= WORKSPACE_BYTES,
          "heuristic: one result, state SUCCESS, workspace %zu <= the maximum",
          d.heur.workspaceSize);
    memset(workspace, 0, d.heur.workspaceSize);
    s = direct_matmul(&d, d.a, workspace, WORKSPACE_BYTES);
    bool all2 = true;
    for (int i = 0; i < 12; i++)
        all2 &= d.c[i] == 2.0f;
    check(s == CUBLAS_STATUS_SUCCESS && all2, "column-major 4x2 ones · 2x3 ones = 2s");
    check(d.heur.workspaceSize == 0 || ((unsigned char *)workspace)[0] == 0xff,
          "the algorithm clobbers the workspace it claims");
    s = direct_matmul(&d, d.a, workspace, d.heur.workspaceSize ? d.heur.workspaceSize - 1 : 0);
    check(d.heur.workspaceSize == 0 || s == CUBLAS_STATUS_INVALID_VALUE,
          "workspace smaller than the algorithm's: INVALID_VALUE (%d)", (int)s);
    s = direct_matmul(&d, d.a + 1, workspace, WORKSPACE_BYTES);
    check(s == CUBLAS_STATUS_INVALID_VALUE, "A 4 bytes off the 256 declared: INVALID_VALUE (%d)",
          (int)s);
    direct_teardown(&d);
    direct_setup(&d, 4, 3, 2, 0);
    s = direct_heuristic(&d);
    check(s == CUBLAS_STATUS_SUCCESS && d.heur.workspaceSize == 0,
          "no workspace allowed: an algorithm without one");
    direct_teardown(&d);
}

static void test_rejections(void)
{
    direct d;
    direct_setup(&d, 4, 3, 2, WORKSPACE_BYTES);
    int found;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(lt, NULL, d.la, d.lb, d.lc, d.lc, d.pref,
                                                      1, &d.heur, &found);
    check(s == CUBLAS_STATUS_INVALID_VALUE, "NULL matmul descriptor: INVALID_VALUE");
    s = cublasLtMatmulAlgoGetHeuristic(NULL, d.desc, d.la, d.lb, d.lc, d.lc, d.pref, 1, &d.heur,
                                       &found);
    check(s == CUBLAS_STATUS_NOT_INITIALIZED, "NULL handle: NOT_INITIALIZED");
    int64_t op = CUBLAS_OP_T;
    s = cublasLtMatmulDescSetAttribute(d.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op, sizeof op);
    check(s == CUBLAS_STATUS_INVALID_VALUE, "TRANSA given 8 bytes (int32_t): INVALID_VALUE");
    s = cublasLtMatmulDescSetAttribute(d.desc, (cublasLtMatmulDescAttributes_t)999, &op, 4);
    check(s == CUBLAS_STATUS_INVALID_VALUE, "unknown attribute: INVALID_VALUE");
    int64_t ld = 3;
    cublasLtMatrixLayoutSetAttribute(d.la, CUBLASLT_MATRIX_LAYOUT_LD, &ld, sizeof ld);
    check(direct_heuristic(&d) == CUBLAS_STATUS_INVALID_VALUE, "ld 3 < 4 rows: INVALID_VALUE");
    ld = 4;
    cublasLtMatrixLayoutSetAttribute(d.la, CUBLASLT_MATRIX_LAYOUT_LD, &ld, sizeof ld);
    uint64_t k = 3;
    ld = 3;
    cublasLtMatrixLayoutSetAttribute(d.lb, CUBLASLT_MATRIX_LAYOUT_ROWS, &k, sizeof k);
    cublasLtMatrixLayoutSetAttribute(d.lb, CUBLASLT_MATRIX_LAYOUT_LD, &ld, sizeof ld);
    check(direct_heuristic(&d) == CUBLAS_STATUS_INVALID_VALUE, "A 4x2 · B 3x3: INVALID_VALUE");
    k = 2;
    cublasLtMatrixLayoutSetAttribute(d.lb, CUBLASLT_MATRIX_LAYOUT_ROWS, &k, sizeof k);
    int32_t batch = 2;
    int64_t stride = 8;
    cublasLtMatrixLayoutSetAttribute(d.la, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, 4);
    cublasLtMatrixLayoutSetAttribute(d.la, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, 8);
    check(direct_heuristic(&d) == CUBLAS_STATUS_INVALID_VALUE,
          "batch 2 for A, 1 for B, C, D: INVALID_VALUE");
    batch = 1;
    cublasLtMatrixLayoutSetAttribute(d.la, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, 4);
    uint32_t bf16 = CUDA_R_16BF;
    cublasLtMatrixLayoutSetAttribute(d.lb, CUBLASLT_MATRIX_LAYOUT_TYPE, &bf16, sizeof bf16);
    check(direct_heuristic(&d) == CUBLAS_STATUS_NOT_SUPPORTED, "A f32, B bf16: NOT_SUPPORTED");
    uint32_t f32 = CUDA_R_32F;
    cublasLtMatrixLayoutSetAttribute(d.lb, CUBLASLT_MATRIX_LAYOUT_TYPE, &f32, sizeof f32);
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    cublasLtMatmulDescSetAttribute(d.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
    check(direct_heuristic(&d) == CUBLAS_STATUS_INVALID_VALUE,
          "BIAS epilogue, no bias pointer: INVALID_VALUE");
    epi = CUBLASLT_EPILOGUE_DEFAULT;
    cublasLtMatmulDescSetAttribute(d.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
    check(direct_heuristic(&d) == CUBLAS_STATUS_SUCCESS, "restored: SUCCESS");
    direct_teardown(&d);
    direct_setup(&d, 4, 3, 0, WORKSPACE_BYTES);
    check(direct_heuristic(&d) == CUBLAS_STATUS_NOT_SUPPORTED, "k = 0: NOT_SUPPORTED");
    direct_teardown(&d);
}

int main(void)
{
    workspace = aligned_alloc(256, WORKSPACE_BYTES);
    if (!workspace || cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "test_cublaslt: setup failed\n");
        return 2;
    }
    test_products();
    test_types();
    test_f16_edges();
    test_epilogues();
    test_heuristic();
    test_rejections();
    free(workspace);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
