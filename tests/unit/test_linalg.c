/* test_linalg.c — matmul and linear: forward against naive double
 * references (transposes, broadcast batches, odd sizes, both CPU code
 * paths), argument errors, and backward against finite differences. */
#include "backend/ops.h"
#include "gradcheck.h"
#include "test.h"
#include "train/tape.h"

#include <stdlib.h>

/* Offset of batch element `index` of the output batch (out_nd dims of
 * out_shape) in t, whose own batch dims broadcast right-aligned. */
static int64_t batch_offset(const osp_tensor *t, int out_nd, const int64_t *out_shape,
                            int64_t index)
{
    int64_t off = 0, step = t->shape[t->ndim - 2] * t->shape[t->ndim - 1];
    for (int i = out_nd - 1; i >= 0; i--) {
        int64_t j = index % out_shape[i];
        index /= out_shape[i];
        int d = i - (out_nd - (t->ndim - 2));
        if (d >= 0) {
            if (t->shape[d] != 1)
                off += j * step;
            step *= t->shape[d];
        }
    }
    return off;
}

/* Worst |got - want| relative to the sum of |products| that formed want
 * (the scale of float32 rounding in a dot product), over all of y. */
static double matmul_error(const osp_tensor *a, const osp_tensor *b, bool ta, bool tb,
                           const osp_tensor *y)
{
    int nd = y->ndim - 2;
    int64_t m = y->shape[nd], n = y->shape[nd + 1];
    int64_t k = ta ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    int64_t lda = a->shape[a->ndim - 1], ldb = b->shape[b->ndim - 1], batch = 1;
    for (int i = 0; i < nd; i++)
        batch *= y->shape[i];
    const float *pa = osp_f32(a), *pb = osp_f32(b), *py = osp_f32(y);
    double worst = 0;
    for (int64_t t = 0; t < batch; t++) {
        const float *ab = pa + batch_offset(a, nd, y->shape, t);
        const float *bb = pb + batch_offset(b, nd, y->shape, t);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double sum = 0, mag = 0;
                for (int64_t p = 0; p < k; p++) {
                    double x = ta ? ab[p * lda + i] : ab[i * lda + p];
                    double z = tb ? bb[j * ldb + p] : bb[p * ldb + j];
                    sum += x * z;
                    mag += fabs(x * z);
                }
                double e = fabs(py[(t * m + i) * n + j] - sum) / (mag + 1e-30);
                if (!(e <= worst))
                    worst = e;
            }
    }
    return worst;
}

typedef struct mm_case {
    bool ta, tb;
    int nda;
    int64_t a[5];
    int ndb;
    int64_t b[5];
} mm_case;

static const mm_case mm_cases[] = {
    {false, false, 2, {7, 33}, 2, {33, 5}},
    {true, false, 2, {33, 7}, 2, {33, 5}},
    {false, true, 2, {7, 33}, 2, {5, 33}},
    {true, true, 2, {33, 7}, 2, {5, 33}},
    {false, false, 2, {1, 1}, 2, {1, 1}},
    {false, false, 2, {1, 7}, 2, {7, 1}},
    {false, false, 2, {7, 1}, 2, {1, 7}},                   /* outer product */
    {false, false, 3, {3, 33, 17}, 2, {17, 65}},            /* batch folds into rows */
    {false, true, 3, {3, 33, 17}, 2, {65, 17}},
    {true, false, 3, {3, 17, 33}, 2, {17, 65}},             /* one sgemm per batch */
    {false, false, 2, {5, 4}, 3, {3, 4, 6}},                /* a broadcast over b's batch */
    {false, false, 4, {2, 1, 3, 4}, 3, {5, 4, 6}},          /* batch [2,1] x [5] */
    {true, true, 4, {2, 1, 4, 3}, 4, {1, 5, 6, 4}},
    {false, false, 3, {16, 8, 8}, 3, {16, 8, 8}},           /* many small: parallel */
    {false, false, 3, {3, 128, 256}, 3, {3, 256, 160}},     /* few large: threaded BLAS */
    /* one product over the team: bands of rows, or of columns when rows are few */
    {true, false, 2, {96, 300}, 2, {96, 70}},
    {false, true, 2, {40, 96}, 2, {700, 96}},
    {true, true, 2, {160, 40}, 2, {500, 160}},
    {false, false, 5, {2, 1, 1, 3, 4}, 4, {1, 3, 4, 2}},
};

static void make_case(const mm_case *c, osp_tensor **a, osp_tensor **b)
{
    *a = test_random(c->nda, c->a, -1, 1);
    *b = test_random(c->ndb, c->b, -1, 1);
}

TEST(matmul_matches_double_reference)
{
    for (size_t i = 0; i < sizeof mm_cases / sizeof mm_cases[0]; i++) {
        const mm_case *c = &mm_cases[i];
        osp_tensor *a, *b;
        make_case(c, &a, &b);
        osp_tensor *y = osp_matmul(a, b, c->ta, c->tb);
        CHECK(y != NULL);
        if (!y)
            continue;
        double e = matmul_error(a, b, c->ta, c->tb, y);
        if (!(e <= 1e-5))
            printf("#   case %zu: worst relative error %.3g\n", i, e);
        CHECK(e <= 1e-5);
    }
}

TEST(matmul_output_shapes)
{
    int64_t sa[] = {2, 1, 3, 4}, sb[] = {5, 4, 6};
    osp_tensor *y = osp_matmul(test_random(4, sa, -1, 1), test_random(3, sb, -1, 1), false, false);
    CHECK(y && y->ndim == 4 && y->shape[0] == 2 && y->shape[1] == 5 && y->shape[2] == 3 &&
          y->shape[3] == 6);
    int64_t st[] = {6, 3}, sw[] = {4, 6};
    y = osp_matmul(test_random(2, st, -1, 1), test_random(2, sw, -1, 1), true, true);
    CHECK(y && y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 4);
}

TEST(matmul_of_strided_and_bf16_inputs)
{
    /* A transposed view goes through osp_prepare (a contiguous copy) and a
     * bf16 operand is widened; both must equal the plain f32 product. */
    int64_t sa[] = {9, 5}, sb[] = {9, 4};
    osp_tensor *a = test_random(2, sa, -1, 1), *b = test_random(2, sb, -1, 1);
    osp_tensor *want = osp_matmul(a, b, true, false);
    osp_tensor *got = osp_matmul(osp_transpose(a, 0, 1), b, false, false);
    CHECK(want && got && test_max_abs_diff(got, want) <= 1e-6);
    osp_tensor *b16 = osp_cast(b, OSP_BF16), *b_back = osp_cast(b16, OSP_F32);
    want = osp_matmul(a, b_back, true, false);
    got = osp_matmul(a, b16, true, false);
    CHECK(want && got && got->dtype == OSP_F32 && test_max_abs_diff(got, want) <= 1e-6);
}

TEST(matmul_and_linear_with_empty_dimensions)
{
    /* K = 0: an empty sum, all zeros (and the bias alone for linear). */
    osp_tensor *y = osp_matmul(test_random(2, (int64_t[]){3, 0}, -1, 1),
                               test_random(2, (int64_t[]){0, 4}, -1, 1), false, false);
    CHECK(y && y->shape[0] == 3 && y->shape[1] == 4);
    for (int64_t i = 0; y && i < osp_numel(y); i++)
        CHECK(osp_f32(y)[i] == 0.0f);
    osp_tensor *bias = test_random(1, (int64_t[]){4}, -1, 1);
    y = osp_linear(test_random(2, (int64_t[]){2, 0}, -1, 1),
                   test_random(2, (int64_t[]){4, 0}, -1, 1), bias);
    CHECK(y && y->shape[0] == 2 && y->shape[1] == 4);
    for (int64_t i = 0; y && i < osp_numel(y); i++)
        CHECK(osp_f32(y)[i] == osp_f32(bias)[i % 4]);
    /* M = 0 or an empty batch: empty results. */
    y = osp_matmul(test_random(3, (int64_t[]){0, 2, 3}, -1, 1),
                   test_random(2, (int64_t[]){3, 5}, -1, 1), true, false);
    CHECK(y == NULL); /* a [0,2,3] transposed has K = 2, b has 3 */
    osp_error_clear();
    y = osp_matmul(test_random(3, (int64_t[]){0, 2, 3}, -1, 1),
                   test_random(2, (int64_t[]){3, 5}, -1, 1), false, false);
    CHECK(y && y->ndim == 3 && y->shape[0] == 0 && y->shape[2] == 5);
}

static void expect_error(osp_tensor *result, const char *what)
{
    CHECK(result == NULL);
    if (result || osp_error_code() == OSP_OK || !*osp_error_message())
        printf("#   %s: expected a failure with a message\n", what);
    CHECK(osp_error_code() != OSP_OK);
    osp_error_clear();
}

TEST(matmul_and_linear_reject_bad_arguments)
{
    int64_t s34[] = {3, 4}, s54[] = {5, 4}, s4[] = {4}, s234[] = {2, 3, 4}, s345[] = {3, 4, 5},
            s5[] = {5}, s6[] = {6};
    osp_tensor *a = test_random(2, s34, -1, 1), *b = test_random(2, s54, -1, 1);
    expect_error(osp_matmul(a, b, false, false), "mismatched K");
    expect_error(osp_matmul(a, test_random(1, s4, -1, 1), false, false), "rank-1 b");
    expect_error(osp_matmul(test_random(1, s4, -1, 1), b, false, true), "rank-1 a");
    expect_error(osp_matmul(test_random(3, s234, -1, 1), test_random(3, s345, -1, 1), false,
                            false),
                 "batch 2 vs 3");
    osp_tensor *ints = osp_tensor_zeros(OSP_I32, 2, s34, OSP_DEVICE_CPU);
    expect_error(osp_matmul(ints, b, false, true), "integer a");
    CHECK(osp_matmul(NULL, b, false, false) == NULL && osp_error_code() == OSP_OK);

    osp_tensor *w = test_random(2, s54, -1, 1);
    CHECK(osp_linear(a, w, NULL) != NULL);
    expect_error(osp_linear(test_random(2, s54, -1, 1), test_random(2, (int64_t[]){4, 3}, -1, 1),
                            NULL),
                 "linear: x last dim 4 vs w in 3");
    expect_error(osp_linear(a, w, test_random(1, s6, -1, 1)), "linear: bias [6] for O = 5");
    expect_error(osp_linear(a, test_random(1, s5, -1, 1), NULL), "linear: rank-1 w");
    expect_error(osp_linear(a, test_random(3, s234, -1, 1), NULL), "linear: rank-3 w");
}

/* y[r, o] = Σ_i x[r, i] w[o, i] + bias[o], checked like matmul. */
static double linear_error(const osp_tensor *x, const osp_tensor *w, const osp_tensor *bias,
                           const osp_tensor *y)
{
    int64_t out = w->shape[0], in = w->shape[1], rows = osp_numel(x) / in;
    const float *px = osp_f32(x), *pw = osp_f32(w), *py = osp_f32(y);
    double worst = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double sum = bias ? osp_f32(bias)[o] : 0.0, mag = fabs(sum);
            for (int64_t i = 0; i < in; i++) {
                sum += (double)px[r * in + i] * pw[o * in + i];
                mag += fabs((double)px[r * in + i] * pw[o * in + i]);
            }
            double e = fabs(py[r * out + o] - sum) / (mag + 1e-30);
            if (!(e <= worst))
                worst = e;
        }
    return worst;
}

TEST(linear_matches_double_reference)
{
    struct {
        int nd;
        int64_t x[4];
        int64_t out;
        bool bias;
    } cases[] = {
        {3, {2, 3, 33}, 17, true}, {3, {2, 3, 33}, 17, false}, {1, {7}, 5, true},
        {2, {1, 1}, 1, true},      {4, {2, 2, 5, 64}, 96, true}, {2, {300, 72}, 1152, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t in = cases[i].x[cases[i].nd - 1];
        osp_tensor *x = test_random(cases[i].nd, cases[i].x, -1, 1);
        osp_tensor *w = test_random(2, (int64_t[]){cases[i].out, in}, -1, 1);
        osp_tensor *bias = cases[i].bias ? test_random(1, &cases[i].out, -1, 1) : NULL;
        osp_tensor *y = osp_linear(x, w, bias);
        CHECK(y && y->ndim == cases[i].nd && y->shape[y->ndim - 1] == cases[i].out);
        if (!y)
            continue;
        double e = linear_error(x, w, bias, y);
        if (!(e <= 1e-5))
            printf("#   case %zu: worst relative error %.3g\n", i, e);
        CHECK(e <= 1e-5);
    }
}

/* ---- gradients ---- */

typedef struct mm_flags {
    bool ta, tb;
} mm_flags;

static osp_tensor *run_matmul(osp_tensor *const *in, void *ctx)
{
    const mm_flags *f = ctx;
    return osp_matmul(in[0], in[1], f->ta, f->tb);
}

TEST(linear_gelu_fused_and_composed)
{
    /* Without gradients one fused op, bit-identical to GELU(linear) (the
     * same rows of the same kernels); under grad the two ops, so its
     * gradient is the composition's. */
    int64_t xs[] = {3, 5, 24}, ws[] = {40, 24}, bs[] = {40};
    osp_tensor *x = test_random(3, xs, -2, 2), *w = test_random(2, ws, -0.5f, 0.5f);
    osp_tensor *b = test_random(1, bs, -1, 1);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        osp_tensor *bias = with_bias ? b : NULL;
        osp_tensor *fused = osp_linear_gelu(x, w, bias);
        osp_tensor *want = osp_gelu_tanh(osp_linear(x, w, bias));
        CHECK(fused && want && osp_same_shape(fused, want));
        CHECK(fused && want && test_max_abs_diff(fused, want) == 0.0);
    }
    CHECK(osp_linear_gelu(x, b, NULL) == NULL); /* w must be 2-D */
    osp_requires_grad(x);
    bool was = osp_grad_set_enabled(true);
    osp_tensor *y = osp_linear_gelu(x, w, b);
    CHECK(y && osp_backward(osp_sum(y, 0, NULL, false), NULL) == OSP_OK && x->grad);
    osp_tensor *g1 = x->grad ? osp_tensor_clone(x->grad) : NULL;
    osp_zero_grad(x);
    y = osp_gelu_tanh(osp_linear(x, w, b));
    CHECK(y && osp_backward(osp_sum(y, 0, NULL, false), NULL) == OSP_OK && x->grad);
    CHECK(g1 && x->grad && test_max_abs_diff(g1, x->grad) == 0.0);
    osp_grad_set_enabled(was);
    osp_zero_grad(x);
}

TEST(matmul_gradients)
{
    static const mm_case cases[] = {
        {false, false, 2, {3, 4}, 2, {4, 5}},
        {true, false, 2, {4, 3}, 2, {4, 5}},
        {false, true, 2, {3, 4}, 2, {5, 4}},
        {true, true, 2, {4, 3}, 2, {5, 4}},
        {false, false, 3, {2, 3, 4}, 2, {4, 5}},        /* b's gradient folds the batch */
        {false, true, 3, {2, 3, 4}, 2, {5, 4}},
        {true, false, 3, {2, 4, 3}, 2, {4, 5}},         /* summed per batch element */
        {false, false, 2, {3, 4}, 3, {2, 4, 5}},        /* a broadcast */
        {true, true, 4, {2, 1, 4, 3}, 3, {3, 5, 4}},    /* both broadcast */
        {false, false, 3, {1, 3, 4}, 4, {2, 2, 4, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        osp_tensor *ab[2];
        make_case(&cases[i], &ab[0], &ab[1]);
        osp_requires_grad(ab[0]);
        osp_requires_grad(ab[1]);
        mm_flags f = {cases[i].ta, cases[i].tb};
        char label[64];
        snprintf(label, sizeof label, "matmul case %zu", i);
        CHECK(gradcheck(label, run_matmul, 2, ab, &f, NULL));
    }
}

static osp_tensor *run_linear(osp_tensor *const *in, void *ctx)
{
    (void)ctx;
    return osp_linear(in[0], in[1], in[2]);
}

static osp_tensor *run_linear_nobias(osp_tensor *const *in, void *ctx)
{
    (void)ctx;
    return osp_linear(in[0], in[1], NULL);
}

TEST(linear_gradients)
{
    int64_t sx[] = {2, 3, 6}, sw[] = {5, 6}, sb[] = {5};
    osp_tensor *in[3] = {test_random(3, sx, -1, 1), test_random(2, sw, -1, 1),
                         test_random(1, sb, -1, 1)};
    for (int i = 0; i < 3; i++)
        osp_requires_grad(in[i]);
    CHECK(gradcheck("linear with bias", run_linear, 3, in, NULL, NULL));
    CHECK(gradcheck("linear without bias", run_linear_nobias, 2, in, NULL, NULL));
    int64_t s1[] = {6};
    osp_tensor *vec[3] = {osp_requires_grad(test_random(1, s1, -1, 1)), in[1], in[2]};
    CHECK(gradcheck("linear of a vector", run_linear, 3, vec, NULL, NULL));
}

int main(void)
{
    RUN(matmul_matches_double_reference);
    RUN(matmul_output_shapes);
    RUN(matmul_of_strided_and_bf16_inputs);
    RUN(matmul_and_linear_with_empty_dimensions);
    RUN(matmul_and_linear_reject_bad_arguments);
    RUN(linear_matches_double_reference);
    RUN(linear_gelu_fused_and_composed);
    RUN(matmul_gradients);
    RUN(linear_gradients);
    return test_summary();
}
