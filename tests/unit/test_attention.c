/* test_attention.c — softmax and scaled-dot-product attention: forward and
 * backward against naive double references (every mask shape, fully
 * masked rows, a long sequence, both backward schedules), argument errors,
 * gradients against finite differences, and per-head views read and
 * written in place. */
#include "backend/backend.h"
#include "backend/ops.h"
#include "backend/ops_attention_bwd.h"
#include "gradcheck.h"
#include "test.h"
#include "train/tape.h"

#include <stdlib.h>

/* ---- softmax ---- */

/* Softmax of one row in double. */
static void ref_softmax_row(const float *x, int64_t n, double *y)
{
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < n; j++)
        mx = x[j] > mx ? x[j] : mx;
    for (int64_t j = 0; j < n; j++)
        sum += y[j] = exp(x[j] - mx);
    for (int64_t j = 0; j < n; j++)
        y[j] /= sum;
}

TEST(softmax_matches_double_reference)
{
    struct {
        int nd;
        int64_t shape[3];
        float lo, hi;
    } cases[] = {
        {1, {7}, -3, 3},       {2, {3, 33}, -30, 30}, {3, {2, 3, 1}, -1, 1},
        {2, {4, 1000}, -5, 5}, {2, {5, 17}, 990, 1010}, /* large values: shifted by the max */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        osp_tensor *x = test_random(cases[c].nd, cases[c].shape, cases[c].lo, cases[c].hi);
        osp_tensor *y = osp_softmax(x);
        CHECK(y && osp_same_shape(y, x));
        if (!y)
            continue;
        int64_t cols = x->shape[x->ndim - 1], rows = osp_numel(x) / cols;
        double *want = malloc((size_t)cols * sizeof *want), worst = 0;
        for (int64_t r = 0; r < rows; r++) {
            ref_softmax_row(osp_f32(x) + r * cols, cols, want);
            for (int64_t j = 0; j < cols; j++) {
                double e = fabs(osp_f32(y)[r * cols + j] - want[j]) / fmax(want[j], 1e-30);
                if (!(e <= worst))
                    worst = e;
            }
        }
        free(want);
        if (!(worst <= 1e-5))
            printf("#   case %zu: worst relative error %.3g\n", c, worst);
        CHECK(worst <= 1e-5);
    }
}

TEST(softmax_of_infinite_entries)
{
    /* -Inf entries get probability 0; a row of only -Inf has no softmax
     * and gives NaN, as PyTorch does. */
    float data[] = {0.0f, -INFINITY, 1.0f, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t shape[] = {2, 4};
    osp_tensor *y = osp_softmax(osp_tensor_from_data(OSP_F32, 2, shape, data));
    CHECK(y != NULL);
    if (!y)
        return;
    const float *p = osp_f32(y);
    double e1 = 1.0 / (1.0 + exp(1.0));
    CHECK_NEAR(p[0], e1, 1e-6);
    CHECK(p[1] == 0.0f && p[3] == 0.0f);
    CHECK_NEAR(p[2], 1.0 - e1, 1e-6);
    for (int j = 4; j < 8; j++)
        CHECK(isnan(p[j]));
}

static osp_tensor *run_softmax(osp_tensor *const *in, void *ctx)
{
    (void)ctx;
    return osp_softmax(in[0]);
}

TEST(softmax_gradient)
{
    int64_t shape[] = {3, 4, 9};
    osp_tensor *x = osp_requires_grad(test_random(3, shape, -3, 3));
    CHECK(gradcheck("softmax", run_softmax, 1, &x, NULL, NULL));
}

/* ---- attention reference (double) ---- */

typedef struct attn_case {
    int64_t B, H, Lq, Lk, D, Dv;
    int mask_nd;
    int64_t mask[4];
} attn_case;

/* mask[b, h, i, j] with numpy broadcasting (right-aligned, size-1 dims). */
static double mask_at(const osp_tensor *mask, int64_t b, int64_t h, int64_t i, int64_t j)
{
    if (!mask)
        return 0.0;
    const int64_t idx[4] = {b, h, i, j};
    int64_t off = 0;
    for (int d = 0; d < mask->ndim; d++) {
        int64_t size = mask->shape[d];
        off = off * size + (size == 1 ? 0 : idx[4 - mask->ndim + d]);
    }
    return osp_f32(mask)[off];
}

/* Probabilities of query row i of head (b, h) into p[Lk] (double). */
static void ref_probs(const osp_tensor *q, const osp_tensor *k, const osp_tensor *mask,
                      double scale, int64_t b, int64_t h, int64_t i, double *p)
{
    int64_t H = q->shape[1], Lq = q->shape[2], Lk = k->shape[2], D = q->shape[3];
    const float *qi = osp_f32(q) + ((b * H + h) * Lq + i) * D;
    const float *kb = osp_f32(k) + (b * H + h) * Lk * D;
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < Lk; j++) {
        double s = 0;
        for (int64_t d = 0; d < D; d++)
            s += (double)qi[d] * kb[j * D + d];
        p[j] = s * scale + mask_at(mask, b, h, i, j);
        mx = p[j] > mx ? p[j] : mx;
    }
    for (int64_t j = 0; j < Lk; j++)
        sum += p[j] = exp(p[j] - mx);
    for (int64_t j = 0; j < Lk; j++)
        p[j] /= sum;
}

/* Worst |o - want| / max(1, |want|) over query rows i = 0, step, 2·step, ...
 * of every head. NaN where the reference is NaN counts as a match. */
static double attention_error(const osp_tensor *q, const osp_tensor *k, const osp_tensor *v,
                              const osp_tensor *mask, double scale, const osp_tensor *o,
                              int64_t step)
{
    int64_t B = q->shape[0], H = q->shape[1], Lq = q->shape[2], Lk = k->shape[2];
    int64_t Dv = v->shape[3];
    double *p = malloc((size_t)(Lk ? Lk : 1) * sizeof *p), worst = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Lq; i += step) {
                ref_probs(q, k, mask, scale, b, h, i, p);
                const float *vb = osp_f32(v) + (b * H + h) * Lk * Dv;
                const float *oi = osp_f32(o) + ((b * H + h) * Lq + i) * Dv;
                for (int64_t d = 0; d < Dv; d++) {
                    double want = 0;
                    for (int64_t j = 0; j < Lk; j++)
                        want += p[j] * vb[j * Dv + d];
                    double e = isnan(want) && isnan(oi[d])
                                   ? 0.0
                                   : fabs(oi[d] - want) / fmax(1.0, fabs(want));
                    if (!(e <= worst))
                        worst = e;
                }
            }
    free(p);
    return worst;
}

static void make_attention(const attn_case *c, osp_tensor **q, osp_tensor **k, osp_tensor **v,
                           osp_tensor **mask)
{
    *q = test_random(4, (int64_t[]){c->B, c->H, c->Lq, c->D}, -1, 1);
    *k = test_random(4, (int64_t[]){c->B, c->H, c->Lk, c->D}, -1, 1);
    *v = test_random(4, (int64_t[]){c->B, c->H, c->Lk, c->Dv}, -1, 1);
    *mask = c->mask_nd ? test_random(c->mask_nd, c->mask, -3, 0) : NULL;
}

/* B, H, Lq, Lk, D, Dv, then the mask (rank 0 = none). */
static const attn_case attn_cases[] = {
    {2, 3, 5, 7, 4, 6, 0, {0}},
    {2, 3, 5, 7, 4, 6, 4, {2, 1, 1, 7}},     /* key padding, per batch item */
    {2, 3, 5, 7, 4, 6, 4, {2, 1, 5, 7}},
    {2, 3, 5, 7, 4, 6, 4, {1, 1, 5, 7}},
    {2, 3, 5, 7, 4, 6, 4, {2, 3, 5, 7}},     /* full */
    {2, 3, 5, 7, 4, 6, 2, {5, 7}},           /* fewer dims, right-aligned */
    {2, 3, 5, 7, 4, 6, 1, {7}},
    {2, 3, 5, 7, 4, 6, 4, {2, 3, 5, 1}},     /* broadcast along the keys */
    {1, 1, 33, 1, 1, 1, 0, {0}},             /* one key */
    {1, 2, 1, 33, 7, 3, 3, {2, 1, 33}},      /* one query */
    {3, 1, 150, 45, 72, 72, 4, {3, 1, 1, 45}}, /* two query blocks, one partial */
    {1, 1, 300, 257, 16, 8, 0, {0}},
};

static void check_attention_case(size_t index, const attn_case *c)
{
    osp_tensor *q, *k, *v, *mask;
    make_attention(c, &q, &k, &v, &mask);
    double scale = 1.0 / sqrt((double)c->D);
    osp_tensor *o = osp_attention(q, k, v, mask, (float)scale);
    CHECK(o && o->ndim == 4 && o->shape[2] == c->Lq && o->shape[3] == c->Dv);
    if (!o)
        return;
    double e = attention_error(q, k, v, mask, scale, o, 1);
    if (!(e <= 1e-5))
        printf("#   case %zu: worst error %.3g\n", index, e);
    CHECK(e <= 1e-5);
}

TEST(attention_matches_double_reference)
{
    for (size_t i = 0; i < sizeof attn_cases / sizeof attn_cases[0]; i++)
        check_attention_case(i, &attn_cases[i]);
}

TEST(attention_threads_do_not_change_results)
{
    /* One thread, and more threads than heads (smaller query blocks). */
    const attn_case *c = &attn_cases[10];
    osp_tensor *q, *k, *v, *mask;
    make_attention(c, &q, &k, &v, &mask);
    osp_set_threads(1);
    osp_tensor *one = osp_attention(q, k, v, mask, 0.1f);
    osp_set_threads(5);
    osp_tensor *five = osp_attention(q, k, v, mask, 0.1f);
    osp_set_threads(0);
    CHECK(one && five && test_max_abs_diff(one, five) <= 1e-6);
}

TEST(attention_fully_masked_row_is_nan)
{
    /* Row 1 of batch item 0 masks every key with -Inf: NaN there (as
     * PyTorch), every other row finite and correct. Latte's -10000 bias
     * for padding keys is an ordinary mask value. */
    int64_t B = 2, H = 2, L = 6, D = 8;
    osp_tensor *q = test_random(4, (int64_t[]){B, H, L, D}, -1, 1);
    osp_tensor *k = test_random(4, (int64_t[]){B, H, L, D}, -1, 1);
    osp_tensor *v = test_random(4, (int64_t[]){B, H, L, D}, -1, 1);
    osp_tensor *mask = osp_tensor_zeros(OSP_F32, 4, (int64_t[]){B, 1, L, L}, OSP_DEVICE_CPU);
    float *m = osp_f32(mask);
    for (int64_t j = 0; j < L; j++)
        m[1 * L + j] = -INFINITY;          /* b 0, row 1: everything */
    m[L * L + 2 * L + 3] = -INFINITY;      /* b 1, row 2: one key */
    for (int64_t j = 4; j < L; j++)
        m[L * L + 0 * L + j] = -10000.0f;  /* b 1, row 0: padding keys */
    osp_tensor *o = osp_attention(q, k, v, mask, 0.35f);
    CHECK(o != NULL);
    if (!o)
        return;
    for (int64_t h = 0; h < H; h++)
        for (int64_t d = 0; d < D; d++) {
            CHECK(isnan(osp_f32(o)[(h * L + 1) * D + d]));
            CHECK(!isnan(osp_f32(o)[(h * L + 0) * D + d]));
        }
    CHECK(attention_error(q, k, v, mask, 0.35, o, 1) <= 1e-5);
}

TEST(attention_long_sequence)
{
    /* A 2048-token self-attention (Latte's head width 72) against the
     * reference on every 97th query row. */
    int64_t B = 1, H = 2, L = 2048, D = 72;
    osp_tensor *q = test_random(4, (int64_t[]){B, H, L, D}, -1, 1);
    osp_tensor *k = test_random(4, (int64_t[]){B, H, L, D}, -1, 1);
    osp_tensor *v = test_random(4, (int64_t[]){B, H, L, D}, -1, 1);
    osp_tensor *mask = test_random(4, (int64_t[]){B, 1, 1, L}, -2, 0);
    double scale = 1.0 / sqrt(72.0);
    osp_tensor *o = osp_attention(q, k, v, mask, (float)scale);
    CHECK(o != NULL);
    if (o)
        CHECK(attention_error(q, k, v, mask, scale, o, 97) <= 1e-5);
}

TEST(attention_rejects_bad_arguments)
{
    int64_t s4[] = {2, 3, 5, 4};
    osp_tensor *q = test_random(4, s4, -1, 1), *kv = test_random(4, s4, -1, 1);
    struct {
        osp_tensor *q, *k, *v, *mask;
        const char *what;
    } bad[] = {
        {test_random(3, (int64_t[]){3, 5, 4}, -1, 1), kv, kv, NULL, "rank-3 q"},
        {q, test_random(4, (int64_t[]){2, 3, 5, 6}, -1, 1), kv, NULL, "k head width 6 vs 4"},
        {q, kv, test_random(4, (int64_t[]){2, 3, 6, 4}, -1, 1), NULL, "v has 6 keys, k 5"},
        {q, kv, test_random(4, (int64_t[]){1, 3, 5, 4}, -1, 1), NULL, "v batch 1 vs 2"},
        {q, kv, kv, test_random(4, (int64_t[]){2, 3, 5, 6}, -1, 1), "mask keys 6 vs 5"},
        {q, kv, kv, test_random(4, (int64_t[]){3, 1, 1, 5}, -1, 1), "mask batch 3 vs 2"},
        {q, kv, kv, test_random(5, (int64_t[]){1, 2, 3, 5, 5}, -1, 1), "rank-5 mask"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(osp_attention(bad[i].q, bad[i].k, bad[i].v, bad[i].mask, 0.5f) == NULL);
        if (osp_error_code() == OSP_OK)
            printf("#   %s: accepted\n", bad[i].what);
        CHECK(osp_error_code() != OSP_OK);
        osp_error_clear();
    }
    int64_t zero_d[1] = {0};
    CHECK(osp_softmax(osp_tensor_f32(0, zero_d)) == NULL && osp_error_code() != OSP_OK);
    osp_error_clear();
    CHECK(osp_attention(NULL, kv, kv, NULL, 1.0f) == NULL && osp_error_code() == OSP_OK);
}

TEST(attention_empty_dimensions)
{
    /* No keys: every output is an empty sum (0). Head width 0: all scores
     * are equal, so each output row is the mean of v's rows. No queries:
     * an empty output, and no gradient reaches k or v. */
    osp_tensor *q = test_random(4, (int64_t[]){1, 2, 3, 4}, -1, 1);
    osp_tensor *k0 = test_random(4, (int64_t[]){1, 2, 0, 4}, -1, 1);
    osp_tensor *v0 = test_random(4, (int64_t[]){1, 2, 0, 5}, -1, 1);
    osp_tensor *o = osp_attention(q, k0, v0, NULL, 1.0f);
    CHECK(o && o->shape[3] == 5);
    for (int64_t i = 0; o && i < osp_numel(o); i++)
        CHECK(osp_f32(o)[i] == 0.0f);

    osp_tensor *qd = test_random(4, (int64_t[]){1, 1, 3, 0}, -1, 1);
    osp_tensor *kd = test_random(4, (int64_t[]){1, 1, 4, 0}, -1, 1);
    osp_tensor *v = test_random(4, (int64_t[]){1, 1, 4, 2}, -1, 1);
    o = osp_attention(qd, kd, v, NULL, 1.0f);
    CHECK(o != NULL);
    for (int64_t i = 0; o && i < 3; i++)
        for (int64_t d = 0; d < 2; d++) {
            const float *pv = osp_f32(v);
            double mean = (pv[d] + pv[2 + d] + pv[4 + d] + pv[6 + d]) / 4.0;
            CHECK_NEAR(osp_f32(o)[i * 2 + d], mean, 1e-6);
        }

    osp_tensor *q0 = test_random(4, (int64_t[]){1, 2, 0, 4}, -1, 1);
    osp_tensor *k = test_random(4, (int64_t[]){1, 2, 3, 4}, -1, 1);
    osp_tensor *v3 = test_random(4, (int64_t[]){1, 2, 3, 5}, -1, 1);
    osp_tensor *go = osp_tensor_f32(4, (int64_t[]){1, 2, 0, 5});
    osp_tensor *gq, *gk, *gv;
    CHECK(osp_attention_backward(go, q0, k, v3, NULL, 1.0f, &gq, &gk, &gv) == OSP_OK);
    CHECK(osp_numel(gq) == 0 && osp_same_shape(gk, k) && osp_same_shape(gv, v3));
    for (int64_t i = 0; i < osp_numel(gk); i++)
        CHECK(osp_f32(gk)[i] == 0.0f);
}

/* ---- attention backward ---- */

/* Gradients of Σ o·go in double (see cpu_attention.c for the formulas). */
static void ref_attention_grads(const osp_tensor *q, const osp_tensor *k, const osp_tensor *v,
                                const osp_tensor *mask, double scale, const osp_tensor *go,
                                double *gq, double *gk, double *gv)
{
    int64_t B = q->shape[0], H = q->shape[1], Lq = q->shape[2], Lk = k->shape[2];
    int64_t D = q->shape[3], Dv = v->shape[3];
    double *p = malloc((size_t)Lk * sizeof *p), *ds = malloc((size_t)Lk * sizeof *ds);
    for (int64_t i = 0; i < osp_numel(k); i++)
        gk[i] = 0;
    for (int64_t i = 0; i < osp_numel(v); i++)
        gv[i] = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            int64_t bh = b * H + h;
            const float *qb = osp_f32(q) + bh * Lq * D, *kb = osp_f32(k) + bh * Lk * D;
            const float *vb = osp_f32(v) + bh * Lk * Dv, *gob = osp_f32(go) + bh * Lq * Dv;
            for (int64_t i = 0; i < Lq; i++) {
                ref_probs(q, k, mask, scale, b, h, i, p);
                double dot = 0;
                for (int64_t j = 0; j < Lk; j++) {
                    double dp = 0;
                    for (int64_t d = 0; d < Dv; d++)
                        dp += (double)gob[i * Dv + d] * vb[j * Dv + d];
                    ds[j] = dp;
                    dot += p[j] * dp;
                }
                for (int64_t j = 0; j < Lk; j++)
                    ds[j] = p[j] * (ds[j] - dot);
                for (int64_t d = 0; d < D; d++) {
                    double s = 0;
                    for (int64_t j = 0; j < Lk; j++)
                        s += ds[j] * kb[j * D + d];
                    gq[(bh * Lq + i) * D + d] = scale * s;
                }
                for (int64_t j = 0; j < Lk; j++) {
                    for (int64_t d = 0; d < D; d++)
                        gk[(bh * Lk + j) * D + d] += scale * ds[j] * qb[i * D + d];
                    for (int64_t d = 0; d < Dv; d++)
                        gv[(bh * Lk + j) * Dv + d] += p[j] * gob[i * Dv + d];
                }
            }
        }
    free(p);
    free(ds);
}

static double grad_error(const osp_tensor *got, const double *want)
{
    double worst = 0;
    for (int64_t i = 0; i < osp_numel(got); i++) {
        double e = fabs(osp_f32(got)[i] - want[i]) / fmax(1.0, fabs(want[i]));
        if (!(e <= worst))
            worst = e;
    }
    return worst;
}

TEST(attention_backward_matches_double_reference)
{
    /* Each case under 1 thread (whole heads per thread) and 3 threads:
     * the last two are large enough for a team, and with fewer heads than
     * threads the query blocks are split and the key/value gradients summed
     * from per-thread buffers. */
    static const attn_case cases[] = {
        {2, 3, 5, 7, 4, 6, 4, {2, 1, 1, 7}},
        {1, 2, 200, 80, 8, 5, 4, {1, 2, 200, 80}},
        {1, 1, 300, 129, 16, 8, 0, {0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        osp_tensor *q, *k, *v, *mask;
        make_attention(&cases[c], &q, &k, &v, &mask);
        osp_tensor *go = test_random(4, (int64_t[]){cases[c].B, cases[c].H, cases[c].Lq,
                                                    cases[c].Dv}, -1, 1);
        double scale = 0.3;
        double *want = malloc((size_t)(osp_numel(q) + osp_numel(k) + osp_numel(v)) *
                              sizeof *want);
        double *wq = want, *wk = wq + osp_numel(q), *wv = wk + osp_numel(k);
        ref_attention_grads(q, k, v, mask, scale, go, wq, wk, wv);
        for (int threads = 1; threads <= 3; threads += 2) {
            osp_set_threads(threads);
            osp_tensor *gq, *gk, *gv;
            osp_status st = osp_attention_backward(go, q, k, v, mask, (float)scale, &gq, &gk, &gv);
            CHECK(st == OSP_OK);
            if (st != OSP_OK)
                continue;
            double e = fmax(grad_error(gq, wq), fmax(grad_error(gk, wk), grad_error(gv, wv)));
            if (!(e <= 1e-5))
                printf("#   case %zu, %d threads: worst error %.3g\n", c, threads, e);
            CHECK(e <= 1e-5);
        }
        osp_set_threads(0);
        free(want);
    }
}

typedef struct attn_ctx {
    osp_tensor *mask;
    float scale;
} attn_ctx;

static osp_tensor *run_attention(osp_tensor *const *in, void *ctx)
{
    const attn_ctx *c = ctx;
    return osp_attention(in[0], in[1], in[2], c->mask, c->scale);
}

TEST(attention_gradients)
{
    static const attn_case cases[] = {
        {1, 2, 5, 6, 3, 4, 0, {0}},
        {2, 1, 4, 6, 3, 2, 4, {2, 1, 1, 6}},
        {1, 1, 130, 9, 3, 2, 2, {130, 9}}, /* two query blocks (128 + 2) */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        osp_tensor *in[3];
        attn_ctx ctx = {.scale = 0.5f};
        make_attention(&cases[c], &in[0], &in[1], &in[2], &ctx.mask);
        for (int i = 0; i < 3; i++)
            osp_requires_grad(in[i]);
        char label[64];
        snprintf(label, sizeof label, "attention case %zu", c);
        CHECK(gradcheck(label, run_attention, 3, in, &ctx, NULL));
    }
}

/* ---- per-head views: [B, L, H·D] read and written through strides ---- */

/* x [B, L, H·D] as [B, H, L, D] (the models' to_heads: a view). */
static osp_tensor *heads_view(osp_tensor *x, int64_t H)
{
    int64_t B = x->shape[0], L = x->shape[1], D = x->shape[2] / H;
    return osp_permute(osp_reshape(x, 4, (int64_t[]){B, L, H, D}), (const int[]){0, 2, 1, 3});
}

/* Whether a [B, H, L, D] result is stored as [B, L, H, D]. */
static bool stored_heads_last(osp_tensor *t)
{
    return !osp_is_contiguous(t) && osp_is_contiguous(osp_view_permute(t, (const int[]){0, 2, 1, 3}));
}

TEST(attention_per_head_views_need_no_copy)
{
    /* Two query blocks, a mask, keys of another length (cross-attention):
     * the views give exactly the contiguous inputs' results, stored in the
     * views' order, in the forward and the backward. */
    int64_t B = 2, H = 3, Lq = 130, Lk = 9, D = 8;
    osp_tensor *xq = test_random(3, (int64_t[]){B, Lq, H * D}, -1, 1);
    osp_tensor *xk = test_random(3, (int64_t[]){B, Lk, H * D}, -1, 1);
    osp_tensor *xv = test_random(3, (int64_t[]){B, Lk, H * D}, -1, 1);
    osp_tensor *mask = test_random(4, (int64_t[]){B, 1, 1, Lk}, -3, 0);
    osp_tensor *q = heads_view(xq, H), *k = heads_view(xk, H), *v = heads_view(xv, H);
    osp_tensor *qc = osp_contiguous(q), *kc = osp_contiguous(k), *vc = osp_contiguous(v);
    CHECK(!osp_is_contiguous(q) && osp_is_contiguous(qc));
    for (int threads = 1; threads <= 2; threads++) {
        osp_set_threads(threads);
        osp_tensor *o = osp_attention(q, k, v, mask, 0.4f);
        osp_tensor *oc = osp_attention(qc, kc, vc, mask, 0.4f);
        CHECK(o && oc && stored_heads_last(o) && osp_is_contiguous(oc));
        CHECK(o && oc && test_max_abs_diff(osp_contiguous(o), oc) == 0.0);

        osp_tensor *go = heads_view(test_random(3, (int64_t[]){B, Lq, H * D}, -1, 1), H);
        osp_tensor *g[3], *gc[3];
        CHECK(osp_attention_backward(go, q, k, v, mask, 0.4f, &g[0], &g[1], &g[2]) == OSP_OK);
        CHECK(osp_attention_backward(osp_contiguous(go), qc, kc, vc, mask, 0.4f, &gc[0], &gc[1],
                                     &gc[2]) == OSP_OK);
        osp_tensor *like[3] = {q, k, v};
        for (int i = 0; i < 3; i++) {
            CHECK(osp_same_layout(g[i], like[i]) && osp_is_contiguous(gc[i]));
            CHECK(test_max_abs_diff(osp_contiguous(g[i]), gc[i]) == 0.0);
        }
    }
    osp_set_threads(0);
}

typedef struct heads_ctx {
    int64_t H;
    osp_tensor *mask;
} heads_ctx;

/* The models' multi-head attention: [B, L, H·D] in, [B, Lq, H·D] out. */
static osp_tensor *run_multi_head(osp_tensor *const *in, void *ctx)
{
    const heads_ctx *c = ctx;
    osp_tensor *o = osp_attention(heads_view(in[0], c->H), heads_view(in[1], c->H),
                                  heads_view(in[2], c->H), c->mask, 0.5f);
    int64_t merged[] = {o->shape[0], o->shape[2], o->shape[1] * o->shape[3]};
    return osp_reshape(osp_permute(o, (const int[]){0, 2, 1, 3}), 3, merged);
}

TEST(attention_gradients_through_per_head_views)
{
    /* The tape keeps gradients of the views in their order (no copies)
     * and still gets them right. */
    heads_ctx ctx = {.H = 2, .mask = test_random(4, (int64_t[]){2, 1, 1, 5}, -3, 0)};
    osp_tensor *in[3] = {test_random(3, (int64_t[]){2, 4, 6}, -1, 1),
                         test_random(3, (int64_t[]){2, 5, 6}, -1, 1),
                         test_random(3, (int64_t[]){2, 5, 6}, -1, 1)};
    for (int i = 0; i < 3; i++)
        osp_requires_grad(in[i]);
    CHECK(gradcheck("multi-head attention", run_multi_head, 3, in, &ctx, NULL));
}

TEST(attention_mask_gets_no_gradient)
{
    const attn_case *c = &attn_cases[1];
    osp_tensor *q, *k, *v, *mask;
    make_attention(c, &q, &k, &v, &mask);
    osp_requires_grad(q);
    osp_requires_grad(mask);
    bool was = osp_grad_set_enabled(true);
    osp_tensor *o = osp_attention(q, k, v, mask, 0.5f);
    CHECK(o && osp_backward(osp_sum(o, 0, NULL, false), NULL) == OSP_OK);
    osp_grad_set_enabled(was);
    CHECK(q->grad != NULL && mask->grad == NULL);
    osp_zero_grad(q);
}

int main(void)
{
    RUN(softmax_matches_double_reference);
    RUN(softmax_of_infinite_entries);
    RUN(softmax_gradient);
    RUN(attention_matches_double_reference);
    RUN(attention_threads_do_not_change_results);
    RUN(attention_fully_masked_row_is_nan);
    RUN(attention_long_sequence);
    RUN(attention_rejects_bad_arguments);
    RUN(attention_empty_dimensions);
    RUN(attention_backward_matches_double_reference);
    RUN(attention_gradients);
    RUN(attention_mask_gets_no_gradient);
    RUN(attention_per_head_views_need_no_copy);
    RUN(attention_gradients_through_per_head_views);
    return test_summary();
}
