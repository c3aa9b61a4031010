/* cpu_linalg.c — matmul and linear with OpenBLAS sgemm, and the sgemm
 * helpers other CPU kernels share (cpu_blas.h).
 *
 * A product is one sgemm whenever the batch collapses into rows: linear
 * over x [..., I] is [rows, I]·[I, O]; a batched matmul whose b has no
 * batch (or only size-1 batch dims) and whose a is not transposed is
 * [batch·M, K]·[K, N]. Otherwise each batch element is its own sgemm: many
 * small products run in parallel (one per thread, OpenBLAS serial), a few
 * large ones one after another with OpenBLAS's threads. */
#include "cpu_blas.h"
#include "cpu_kernels.h"

#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <string.h>

/* Below this many multiply-adds OpenBLAS runs a product on one thread
 * anyway, so batches of such products are spread over our threads. */
#define SMALL_GEMM_MACS (1 << 22)
/* Elementwise loops go parallel from this many elements, batches of
 * products from this many multiply-adds in all. */
#define PARALLEL_MIN_ELEMS (1 << 15)
#define PARALLEL_MIN_MACS (1 << 18)

static blasint blas_ld(int64_t ld) { return ld < 1 ? 1 : (blasint)ld; }

/* C rows [r0, r1) and columns [c0, c1) of the product, one sgemm call per
 * INT_MAX rows (rows of op(A) are rows of A, or its columns when
 * transposed; columns of op(B) likewise). */
static void sgemm_block(bool trans_a, bool trans_b, int64_t r0, int64_t r1, int64_t c0,
                        int64_t c1, int64_t k, float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    const int64_t chunk = INT_MAX;
    b += trans_b ? c0 * ldb : c0;
    for (int64_t i = r0; i < r1; i += chunk) {
        int64_t rows = r1 - i < chunk ? r1 - i : chunk;
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, (blasint)rows, (blasint)(c1 - c0),
                    (blasint)k, alpha, a + (trans_a ? i : i * lda), blas_ld(lda), b,
                    blas_ld(ldb), beta, c + i * ldc + c0, blas_ld(ldc));
    }
}

/* OpenBLAS built on OpenMP (what the Makefile links where Debian's
 * libopenblas0-openmp is installed) runs a product on our team itself,
 * sharing one packed B. With the pthreads (or serial) build, a product
 * this big is split over the team by hand: its own threads would fight the
 * team's spinning workers for the cores after every parallel loop (3-4x
 * slower on a busy 2-core machine). Each thread then computes a band of C,
 * by rows, or by columns when the rows are few. */
#define SPLIT_GEMM_MACS (1 << 20)
#define SPLIT_ALIGN 16

void cpu_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    int team = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (team < 2 || (double)m * (double)n * (double)k < SPLIT_GEMM_MACS ||
        openblas_get_parallel() == 2 /* OpenBLAS on OpenMP: it shares our team */) {
        sgemm_block(trans_a, trans_b, 0, m, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    bool by_rows = m >= n || m >= 4 * SPLIT_ALIGN * team;
    int64_t len = by_rows ? m : n;
    int64_t band = (len + team - 1) / team;
    band = (band + SPLIT_ALIGN - 1) / SPLIT_ALIGN * SPLIT_ALIGN;
    int saved = cpu_blas_serial_begin();
#pragma omp parallel num_threads(team)
    {
        int64_t lo = omp_get_thread_num() * band, hi = lo + band < len ? lo + band : len;
        if (lo < hi && by_rows)
            sgemm_block(trans_a, trans_b, lo, hi, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else if (lo < hi)
            sgemm_block(trans_a, trans_b, 0, m, lo, hi, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
    cpu_blas_serial_end(saved);
}

int cpu_blas_serial_begin(void)
{
    /* Only the pthreads build needs it; the OpenMP build of OpenBLAS goes
     * serial by itself inside a parallel region. */
    if (openblas_get_parallel() != 1)
        return 0;
    int saved = openblas_get_num_threads();
    if (saved > 1)
        openblas_set_num_threads(1);
    return saved;
}

void cpu_blas_serial_end(int saved)
{
    if (saved > 1)
        openblas_set_num_threads(saved);
}

/* ---- matmul ---- */

typedef struct matmul_plan {
    bool trans_a, trans_b;
    float alpha;
    int64_t m, n, k, lda, ldb;
    int batch_ndim;                       /* output batch dims */
    int64_t batch_shape[OSP_MAX_DIMS];
    int64_t a_step[OSP_MAX_DIMS], b_step[OSP_MAX_DIMS]; /* 0 where broadcast */
    int64_t batch;                        /* number of output matrices */
} matmul_plan;

/* Element steps of t's matrices along the output batch dims (right-aligned,
 * numpy style; a size-1 or missing dim has step 0: it broadcasts, or its
 * only index is 0). */
static void batch_steps(const osp_tensor *t, int batch_ndim, int64_t *step)
{
    int own = t->ndim - 2;
    int64_t s = t->shape[t->ndim - 2] * t->shape[t->ndim - 1];
    for (int i = batch_ndim - 1; i >= 0; i--) {
        int d = i - (batch_ndim - own);
        int64_t size = d >= 0 ? t->shape[d] : 1;
        step[i] = size == 1 ? 0 : s;
        s *= size;
    }
}

static matmul_plan plan_matmul(const osp_node *n)
{
    const osp_tensor *a = n->in[0], *b = n->in[1], *y = n->out[0];
    matmul_plan p = {.trans_a = n->p.matmul.trans_a,
                     .trans_b = n->p.matmul.trans_b,
                     .alpha = n->p.matmul.alpha};
    p.batch_ndim = y->ndim - 2;
    p.m = y->shape[y->ndim - 2];
    p.n = y->shape[y->ndim - 1];
    p.k = a->shape[a->ndim - (p.trans_a ? 2 : 1)];
    p.lda = a->shape[a->ndim - 1];
    p.ldb = b->shape[b->ndim - 1];
    p.batch = 1;
    for (int i = 0; i < p.batch_ndim; i++) {
        p.batch_shape[i] = y->shape[i];
        p.batch *= y->shape[i];
    }
    batch_steps(a, p.batch_ndim, p.a_step);
    batch_steps(b, p.batch_ndim, p.b_step);
    return p;
}

/* Offsets of batch element `index` (row-major over the output batch). */
static void batch_offsets(const matmul_plan *p, int64_t index, int64_t *oa, int64_t *ob)
{
    *oa = *ob = 0;
    for (int i = p->batch_ndim - 1; i >= 0; i--) {
        int64_t j = index % p->batch_shape[i];
        index /= p->batch_shape[i];
        *oa += j * p->a_step[i];
        *ob += j * p->b_step[i];
    }
}

static void matmul_one(const matmul_plan *p, const float *a, const float *b, float *y,
                       int64_t index)
{
    int64_t oa, ob;
    batch_offsets(p, index, &oa, &ob);
    cpu_sgemm(p->trans_a, p->trans_b, p->m, p->n, p->k, p->alpha, a + oa, p->lda, b + ob,
              p->ldb, 0.0f, y + index * p->m * p->n, p->n);
}

static bool b_has_batch(const matmul_plan *p)
{
    for (int i = 0; i < p->batch_ndim; i++)
        if (p->b_step[i])
            return true;
    return false;
}

osp_status cpu_matmul(const osp_node *n)
{
    matmul_plan p = plan_matmul(n);
    const float *a = osp_f32(n->in[0]), *b = osp_f32(n->in[1]);
    float *y = osp_f32(n->out[0]);
    if (!b_has_batch(&p) && !p.trans_a) {
        /* Every a matrix meets the same b: stack a's rows. */
        cpu_sgemm(false, p.trans_b, p.batch * p.m, p.n, p.k, p.alpha, a, p.lda, b, p.ldb, 0.0f,
                  y, p.n);
        return OSP_OK;
    }
    int team = omp_get_max_threads();
    double macs = (double)p.m * (double)p.n * (double)p.k;
    bool small = macs <= SMALL_GEMM_MACS;
    bool balanced = p.batch >= team && (p.batch % team == 0 || p.batch >= 4 * team);
    bool worth_a_team = macs * (double)p.batch >= PARALLEL_MIN_MACS;
    if (team > 1 && p.batch > 1 && worth_a_team && (small || balanced)) {
        int saved = cpu_blas_serial_begin();
#pragma omp parallel for schedule(static) num_threads(team)
        for (int64_t i = 0; i < p.batch; i++)
            matmul_one(&p, a, b, y, i);
        cpu_blas_serial_end(saved);
    } else {
        for (int64_t i = 0; i < p.batch; i++)
            matmul_one(&p, a, b, y, i);
    }
    return OSP_OK;
}

/* ---- linear ---- */

osp_status cpu_linear(const osp_node *n)
{
    const osp_tensor *x = n->in[0], *w = n->in[1];
    const osp_tensor *bias = n->n_in > 2 ? n->in[2] : NULL;
    int64_t out = w->shape[0], in = w->shape[1];
    int64_t rows = 1;
    for (int i = 0; i < x->ndim - 1; i++)
        rows *= x->shape[i];
    float *y = osp_f32(n->out[0]);
    float beta = 0.0f;
    if (bias) {
        /* Start every output row at the bias and let sgemm add onto it. */
        const float *pb = osp_f32(bias);
#pragma omp parallel for schedule(static) if (rows * out >= PARALLEL_MIN_ELEMS)
        for (int64_t r = 0; r < rows; r++)
            memcpy(y + r * out, pb, (size_t)out * sizeof *y);
        beta = 1.0f;
    }
    cpu_sgemm(false, true, rows, out, in, 1.0f, osp_f32(x), in, osp_f32(w), in, beta, y, out);
    if (n->p.linear.gelu_tanh)
        cpu_gelu_tanh(y, y, rows * out);
    return OSP_OK;
}
