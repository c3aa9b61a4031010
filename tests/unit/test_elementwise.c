/* test_elementwise.c — binary/unary ops, reductions, shape ops and the
 * tape: forward against direct loops, backward against finite differences. */
#include "backend/ops.h"
#include "gradcheck.h"
#include "test.h"
#include "train/tape.h"

static const osp_binary_kind binary_kinds[] = {OSP_BINARY_ADD, OSP_BINARY_SUB, OSP_BINARY_MUL,
                                               OSP_BINARY_DIV};

static osp_tensor *apply_binary(osp_binary_kind k, osp_tensor *a, osp_tensor *b)
{
    switch (k) {
    case OSP_BINARY_ADD: return osp_add(a, b);
    case OSP_BINARY_SUB: return osp_sub(a, b);
    case OSP_BINARY_MUL: return osp_mul(a, b);
    default: return osp_div(a, b);
    }
}

TEST(binary_broadcasting_matches_loops)
{
    int64_t sa[] = {2, 3, 4}, sb[] = {3, 1};
    osp_tensor *a = test_random(3, sa, -2, 2), *b = test_random(2, sb, 0.5f, 2);
    for (int k = 0; k < 4; k++) {
        osp_tensor *y = apply_binary(binary_kinds[k], a, b);
        CHECK(y && y->ndim == 3 && y->shape[2] == 4);
        if (!y)
            continue;
        const float *pa = osp_f32(a), *pb = osp_f32(b), *py = osp_f32(y);
        double worst = 0;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int l = 0; l < 4; l++) {
                    float x = pa[(i * 3 + j) * 4 + l], z = pb[j];
                    float want = k == 0 ? x + z : k == 1 ? x - z : k == 2 ? x * z : x / z;
                    worst = fmax(worst, fabs(py[(i * 3 + j) * 4 + l] - want));
                }
        CHECK(worst == 0);
    }
    int64_t sc[] = {4, 3};
    CHECK(osp_add(a, test_random(2, sc, 0, 1)) == NULL);
    CHECK(osp_error_code() == OSP_ERR_RUNTIME);
    CHECK(osp_add(NULL, a) == NULL);
}

/* Long rows (several chunks, the threaded path) with each operand in turn
 * broadcast along the last axis, and equal shapes, against scalar loops. */
TEST(binary_long_rows_match_loops)
{
    enum { R = 3, C = 7, L = 4100 };
    int64_t s_row[] = {R, 1, L}, s_col[] = {R, C, 1}, s_full[] = {R, C, L};
    osp_tensor *row = test_random(3, s_row, -2, 2), *col = test_random(3, s_col, 0.5f, 2);
    osp_tensor *full = test_random(3, s_full, 0.5f, 2), *full2 = test_random(3, s_full, -2, 2);
    const osp_tensor *pairs[][2] = {{row, col}, {col, row}, {full2, full}};
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 4; k++) {
            const osp_tensor *a = pairs[c][0], *b = pairs[c][1];
            osp_tensor *y = apply_binary(binary_kinds[k], (osp_tensor *)a, (osp_tensor *)b);
            CHECK(y && osp_numel(y) == R * C * L);
            if (!y)
                continue;
            int64_t bad = 0;
            for (int64_t i = 0; i < R; i++)
                for (int64_t j = 0; j < C; j++)
                    for (int64_t l = 0; l < L; l++) {
                        float x[2];
                        for (int o = 0; o < 2; o++) {
                            const osp_tensor *t = pairs[c][o];
                            int64_t jj = t->shape[1] == 1 ? 0 : j, ll = t->shape[2] == 1 ? 0 : l;
                            x[o] = osp_f32(t)[(i * t->shape[1] + jj) * t->shape[2] + ll];
                        }
                        float want = k == 0 ? x[0] + x[1] : k == 1 ? x[0] - x[1]
                                   : k == 2 ? x[0] * x[1] : x[0] / x[1];
                        bad += osp_f32(y)[(i * C + j) * L + l] != want;
                    }
            CHECK(bad == 0);
        }
}

TEST(unary_values)
{
    int64_t s[] = {5};
    float in[] = {-2.0f, -0.5f, 0.25f, 1.0f, 3.0f};
    osp_tensor *x = osp_tensor_from_data(OSP_F32, 1, s, in);
    const float *g = osp_f32(osp_gelu_tanh(x)), *e = osp_f32(osp_gelu_erf(x));
    /* Reference values from the closed forms, in double. */
    for (int i = 0; i < 5; i++) {
        double v = in[i];
        double gt = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
        double ge = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        CHECK_NEAR(g[i], gt, 1e-6);
        CHECK_NEAR(e[i], ge, 1e-6);
    }
    CHECK_NEAR(osp_f32(osp_silu(x))[3], 1.0 / (1 + exp(-1.0)), 1e-7);
    CHECK(osp_f32(osp_leaky_relu(x, 0.2f))[0] == -0.4f);
    CHECK(osp_f32(osp_clamp(x, -1, 1))[4] == 1.0f);
    CHECK(osp_clamp(x, 1, -1) == NULL);
    CHECK(osp_f32(osp_scale_shift(x, 2, 1))[2] == 1.5f);
}

TEST(reductions_match_loops)
{
    int64_t s[] = {3, 4, 5};
    osp_tensor *x = test_random(3, s, -3, 3);
    const float *p = osp_f32(x);
    int axes[] = {0, 2};
    osp_tensor *sum = osp_sum(x, 2, axes, false), *mean = osp_mean(x, 2, axes, true);
    osp_tensor *var = osp_var(x, 2, axes, 1, false), *mx = osp_max(x, 2, axes, false);
    CHECK(sum->ndim == 1 && sum->shape[0] == 4 && mean->ndim == 3 && mean->shape[1] == 4);
    for (int j = 0; j < 4; j++) {
        double s1 = 0, s2 = 0, m = -1e30;
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 5; k++) {
                double v = p[(i * 4 + j) * 5 + k];
                s1 += v;
                m = fmax(m, v);
            }
        double mu = s1 / 15;
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 5; k++) {
                double d = p[(i * 4 + j) * 5 + k] - mu;
                s2 += d * d;
            }
        CHECK_NEAR(osp_f32(sum)[j], s1, 1e-5);
        CHECK_NEAR(osp_f32(mean)[j], mu, 1e-6);
        CHECK_NEAR(osp_f32(var)[j], s2 / 14, 1e-5);
        CHECK(osp_f32(mx)[j] == (float)m);
    }
    osp_tensor *all = osp_sum(x, 0, NULL, false);
    CHECK(all->ndim == 0 && osp_numel(all) == 1);
    int dup[] = {1, -2};
    CHECK(osp_sum(x, 2, dup, false) == NULL);
    int far[] = {3};
    CHECK(osp_sum(x, 1, far, false) == NULL);
}

/* Sums, means and variances over axis sets that keep the innermost axis
 * (the row-wise path), rows longer than a block and enough elements for
 * the threaded path, against sums in double over a flat index walk. */
TEST(reductions_keeping_the_last_axis)
{
    enum { A = 3, B = 7, C = 300, D = 8, N = A * B * C * D };
    int64_t s[] = {A, B, C, D}, dims[] = {A, B, C, D};
    osp_tensor *x = test_random(4, s, -3, 3);
    const float *p = osp_f32(x);
    static const int sets[][4] = {{1, 0}, {1, 1}, {2, 0, 1}, {2, 0, 2}, {2, 1, 2}, {1, 2},
                                  {3, 0, 1, 2}};
    static double sum[N], sq[N];
    for (size_t c = 0; c < sizeof sets / sizeof *sets; c++) {
        int n_axes = sets[c][0];
        const int *axes = sets[c] + 1;
        osp_tensor *ys = osp_sum(x, n_axes, axes, false);
        osp_tensor *ym = osp_mean(x, n_axes, axes, false);
        osp_tensor *yv = osp_var(x, n_axes, axes, 1, false);
        CHECK(ys && ym && yv);
        if (!ys || !ym || !yv)
            continue;
        int64_t n_red = 1;
        for (int a = 0; a < n_axes; a++)
            n_red *= dims[axes[a]];
        /* out[i]: the flat index over the kept axes, in order */
        int64_t n_out = N / n_red;
        for (int64_t i = 0; i < n_out; i++)
            sum[i] = sq[i] = 0;
        for (int pass = 0; pass < 2; pass++)
            for (int64_t e = 0; e < N; e++) {
                int64_t rest = e, out = 0, scale = 1;
                for (int d = 3; d >= 0; d--) {
                    int64_t idx = rest % dims[d];
                    rest /= dims[d];
                    bool reduced = false;
                    for (int a = 0; a < n_axes; a++)
                        reduced |= axes[a] == d;
                    if (!reduced) {
                        out += idx * scale;
                        scale *= dims[d];
                    }
                }
                if (pass == 0) {
                    sum[out] += p[e];
                } else {
                    double dv = p[e] - sum[out] / (double)n_red;
                    sq[out] += dv * dv;
                }
            }
        double worst = 0;
        for (int64_t i = 0; i < n_out; i++) {
            worst = fmax(worst, fabs(osp_f32(ys)[i] - sum[i]) / (1 + fabs(sum[i])));
            worst = fmax(worst, fabs(osp_f32(ym)[i] - sum[i] / (double)n_red));
            worst = fmax(worst, fabs(osp_f32(yv)[i] - sq[i] / (double)(n_red - 1)));
        }
        CHECK(worst < 1e-6);
        if (worst >= 1e-6)
            printf("#   axis set %zu: worst error %.3g\n", c, worst);
    }
}

TEST(shape_ops)
{
    int64_t s[] = {2, 3, 4};
    osp_tensor *x = test_random(3, s, -1, 1);
    int64_t r[] = {6, -1};
    osp_tensor *y = osp_reshape(x, 2, r);
    CHECK(y && y->shape[1] == 4 && osp_f32(y) == osp_f32(x));
    osp_tensor *t = osp_transpose(x, 0, 2);
    CHECK(t->shape[0] == 4 && t->shape[2] == 2);
    osp_tensor *parts[3];
    int64_t sizes[] = {1, 1, 2};
    CHECK(osp_split(x, -1, 3, sizes, parts) == OSP_OK);
    osp_tensor *back = osp_concat(3, parts, 2);
    CHECK(back && test_max_abs_diff(back, x) == 0);
    int64_t bad_sizes[] = {1, 1, 1};
    CHECK(osp_split(x, -1, 3, bad_sizes, parts) != OSP_OK);
    /* Many inputs go through grouped nodes. */
    osp_tensor *many[20];
    for (int i = 0; i < 20; i++)
        many[i] = osp_slice(x, 0, i % 2, i % 2 + 1, 1);
    osp_tensor *cat = osp_concat(20, many, 0);
    CHECK(cat && cat->shape[0] == 20 && osp_f32(cat)[12 * 5] == osp_f32(x)[12]);
    int64_t e[] = {5, 2, 3, 4};
    osp_tensor *ex = osp_contiguous(osp_expand(x, 4, e));
    CHECK(ex && osp_f32(ex)[24 * 3 + 7] == osp_f32(x)[7]);
}

/* ---- gradients ---- */

typedef struct { int kind; float alpha, beta; int axes_n; int axes[3]; } case_ctx;

static osp_tensor *f_binary(osp_tensor *const *in, void *ctx)
{
    return apply_binary(((case_ctx *)ctx)->kind, in[0], in[1]);
}

TEST(grad_binary_with_broadcast)
{
    int64_t sa[] = {2, 3, 4}, sb[] = {3, 1};
    for (int k = 0; k < 4; k++) {
        osp_tensor *in[] = {osp_requires_grad(test_random(3, sa, -1, 1)),
                            osp_requires_grad(test_random(2, sb, 0.5f, 1.5f))};
        case_ctx c = {.kind = binary_kinds[k]};
        CHECK(gradcheck("binary", f_binary, 2, in, &c, NULL));
    }
}

static osp_tensor *f_unary(osp_tensor *const *in, void *ctx)
{
    case_ctx *c = ctx;
    return osp_unary(in[0], c->kind, c->alpha, c->beta);
}

TEST(grad_unary_all_kinds)
{
    int64_t s[] = {3, 7};
    for (int k = OSP_UNARY_EXP; k <= OSP_UNARY_SCALE_SHIFT; k++) {
        bool positive = k == OSP_UNARY_LOG || k == OSP_UNARY_SQRT;
        osp_tensor *x = osp_requires_grad(test_random(2, s, positive ? 0.5f : -2, 2));
        /* Keep clear of kinks (finite differences straddle them). */
        float *p = osp_f32(x);
        for (int i = 0; i < 21; i++) {
            if (fabsf(p[i]) < 0.05f)
                p[i] += 0.1f;
            if (k == OSP_UNARY_CLAMP && fabsf(fabsf(p[i]) - 1.0f) < 0.05f)
                p[i] += 0.1f;
        }
        case_ctx c = {.kind = k, .alpha = k == OSP_UNARY_CLAMP ? -1.0f : 0.3f,
                      .beta = k == OSP_UNARY_CLAMP ? 1.0f : 0.7f};
        char label[32];
        snprintf(label, sizeof label, "unary %d", k);
        CHECK(gradcheck(label, f_unary, 1, (osp_tensor *[]){x}, &c, NULL));
    }
}

static osp_tensor *f_reduce(osp_tensor *const *in, void *ctx)
{
    case_ctx *c = ctx;
    switch (c->kind) {
    case OSP_REDUCE_SUM: return osp_sum(in[0], c->axes_n, c->axes, false);
    case OSP_REDUCE_MEAN: return osp_mean(in[0], c->axes_n, c->axes, true);
    case OSP_REDUCE_VAR: return osp_var(in[0], c->axes_n, c->axes, 1, false);
    default: return osp_max(in[0], c->axes_n, c->axes, false);
    }
}

TEST(grad_reductions)
{
    int64_t s[] = {3, 4, 5};
    for (int k = OSP_REDUCE_SUM; k <= OSP_REDUCE_MAX; k++) {
        osp_tensor *x = osp_requires_grad(test_random(3, s, -2, 2));
        case_ctx c = {.kind = k, .axes_n = 2, .axes = {0, -1}};
        CHECK(gradcheck("reduce", f_reduce, 1, (osp_tensor *[]){x}, &c, NULL));
        case_ctx all = {.kind = k, .axes_n = 0};
        CHECK(gradcheck("reduce all", f_reduce, 1, (osp_tensor *[]){x}, &all, NULL));
    }
}

static osp_tensor *f_shapes(osp_tensor *const *in, void *ctx)
{
    (void)ctx;
    /* permute -> slice (step 2) -> reshape -> concat with an expanded tensor */
    int perm[] = {2, 0, 1};
    osp_tensor *p = osp_permute(in[0], perm);
    osp_tensor *s = osp_slice(p, 0, 1, 5, 2);
    int64_t r[] = {2, -1};
    osp_tensor *flat = osp_reshape(s, 2, r);
    int64_t e[] = {2, 6};
    osp_tensor *ex = osp_expand(in[1], 2, e);
    return osp_concat(2, (osp_tensor *[]){flat, ex}, 1);
}

TEST(grad_views_and_concat)
{
    int64_t sx[] = {2, 3, 5}, sy[] = {2, 1};
    osp_tensor *in[] = {osp_requires_grad(test_random(3, sx, -1, 1)),
                        osp_requires_grad(test_random(2, sy, -1, 1))};
    CHECK(gradcheck("views", f_shapes, 2, in, NULL, NULL));
}

static osp_tensor *f_reuse(osp_tensor *const *in, void *ctx)
{
    (void)ctx;
    /* x used three times: gradients must accumulate. */
    osp_tensor *x = in[0];
    return osp_mul(osp_add(x, osp_tanh(x)), osp_cast(osp_cast(x, OSP_F64), OSP_F32));
}

TEST(grad_accumulates_over_uses)
{
    int64_t s[] = {4, 4};
    osp_tensor *x = osp_requires_grad(test_random(2, s, -1, 1));
    CHECK(gradcheck("reuse", f_reuse, 1, (osp_tensor *[]){x}, NULL, NULL));
}

/* The vectorised GELU-tanh and SiLU derivatives against their closed forms
 * in double, over a range that reaches exp's overflow and underflow, with
 * enough elements for several row chunks and the threaded path. */
TEST(activation_derivatives_match_closed_forms)
{
    enum { N = 40000 };
    int64_t s[] = {N};
    osp_tensor *seed = test_random(1, s, -2, 2);
    for (int silu = 0; silu < 2; silu++) {
        osp_tensor *x = osp_requires_grad(test_random(1, s, -60, 60));
        float *px = osp_f32(x);
        px[0] = -1e4f, px[1] = 1e4f, px[2] = 0.0f, px[3] = -0.75f;
        bool was = osp_grad_set_enabled(true);
        osp_tensor *y = silu ? osp_silu(x) : osp_gelu_tanh(x);
        CHECK(y && osp_backward(y, seed) == OSP_OK);
        osp_grad_set_enabled(was);
        if (!y || !x->grad)
            continue;
        const float *g = osp_f32(x->grad), *gy = osp_f32(seed);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double v = px[i], d;
            if (silu) {
                double sg = 1.0 / (1.0 + exp(-v));
                d = sg * (1.0 + v * (1.0 - sg));
            } else {
                double t = tanh(0.7978845608028654 * (v + 0.044715 * v * v * v));
                double du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * v * v);
                d = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du;
            }
            worst = fmax(worst, fabs(g[i] - gy[i] * d) / (fabs(gy[i]) * (1.0 + fabs(d))));
        }
        CHECK(worst < 1e-6);
        if (worst >= 1e-6)
            printf("#   %s derivative: worst scaled error %.3g\n", silu ? "SiLU" : "GELU", worst);
        osp_zero_grad(x);
    }
}

TEST(tape_bookkeeping)
{
    int64_t s[] = {3};
    osp_tensor *x = osp_requires_grad(test_random(1, s, -1, 1));
    osp_tensor *c = test_random(1, s, -1, 1);
    bool was = osp_grad_set_enabled(true);
    osp_tensor *y = osp_sum(osp_mul(x, c), 0, NULL, false);
    CHECK(osp_tape_size() == 2);
    CHECK(osp_backward(y, NULL) == OSP_OK);
    CHECK(osp_tape_size() == 0);
    for (int i = 0; i < 3; i++)
        CHECK(osp_f32(x->grad)[i] == osp_f32(c)[i]);
    /* No grad required: nothing is recorded and backward refuses. */
    osp_tensor *z = osp_sum(c, 0, NULL, false);
    CHECK(osp_tape_size() == 0);
    CHECK(osp_backward(z, NULL) != OSP_OK);
    osp_grad_set_enabled(was);
    osp_zero_grad(x);
    CHECK(x->grad == NULL);
}

int main(void)
{
    RUN(binary_broadcasting_matches_loops);
    RUN(binary_long_rows_match_loops);
    RUN(unary_values);
    RUN(reductions_match_loops);
    RUN(reductions_keeping_the_last_axis);
    RUN(shape_ops);
    RUN(grad_binary_with_broadcast);
    RUN(grad_unary_all_kinds);
    RUN(grad_reductions);
    RUN(grad_views_and_concat);
    RUN(grad_accumulates_over_uses);
    RUN(activation_derivatives_match_closed_forms);
    RUN(tape_bookkeeping);
    return test_summary();
}
