/* test_norm.c — group, layer and RMS normalisation: forward against naive
 * double references, backward against finite differences. */
#include "backend/backend.h"
#include "backend/ops.h"
#include "backend/ops_norm_bwd.h"
#include "gradcheck.h"
#include "test.h"
#include "train/tape.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* y = (x - mean)/sqrt(var + eps)·gamma + beta over [n, c, s] in `groups`
 * groups, biased variance, all in double (layer norm: c = D, s = 1,
 * groups = 1). gamma/beta may be NULL. */
static void ref_norm(const float *x, int64_t n, int64_t c, int64_t s, int64_t groups,
                     const float *gamma, const float *beta, double eps, double *y)
{
    int64_t len = c / groups * s;
    for (int64_t b = 0; b < n * groups; b++) {
        const float *xb = x + b * len;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < len; i++)
            mean += xb[i];
        mean /= (double)len;
        for (int64_t i = 0; i < len; i++)
            var += (xb[i] - mean) * (xb[i] - mean);
        var /= (double)len;
        for (int64_t i = 0; i < len; i++) {
            int64_t ch = (b % groups) * (c / groups) + i / s;
            y[b * len + i] = (xb[i] - mean) / sqrt(var + eps) * (gamma ? gamma[ch] : 1.0) +
                             (beta ? beta[ch] : 0.0);
        }
    }
}

/* max |got - want| / max(1, |want|) */
static double worst_error(const osp_tensor *got, const double *want)
{
    const float *g = osp_f32(got);
    double worst = 0;
    for (int64_t i = 0; i < osp_numel(got); i++) {
        double e = fabs(g[i] - want[i]) / fmax(1.0, fabs(want[i]));
        if (!(e <= worst))
            worst = e;
    }
    return worst;
}

TEST(group_norm_matches_double_reference)
{
    struct {
        int ndim;
        int64_t shape[5];
        int groups;
        bool affine;
    } cases[] = {
        {5, {2, 6, 3, 4, 5}, 3, true},  /* the VAE's layout: all frames in one group */
        {5, {1, 64, 3, 6, 6}, 32, true},
        {4, {2, 4, 3, 3}, 1, true},     /* groups = 1 */
        {4, {2, 4, 3, 3}, 4, true},     /* groups = C */
        {3, {3, 6, 7}, 2, false},
        {2, {5, 8}, 4, true},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t *sh = cases[k].shape, c = sh[1], s = 1;
        for (int i = 2; i < cases[k].ndim; i++)
            s *= sh[i];
        osp_tensor *x = test_random(cases[k].ndim, sh, -3, 2);
        osp_tensor *gamma = cases[k].affine ? test_random(1, &c, 0.5f, 1.5f) : NULL;
        osp_tensor *beta = cases[k].affine ? test_random(1, &c, -1, 1) : NULL;
        osp_tensor *y = osp_group_norm(x, cases[k].groups, gamma, beta, 1e-6f);
        CHECK(y && osp_same_shape(y, x));
        if (!y)
            continue;
        double *want = malloc((size_t)osp_numel(x) * sizeof *want);
        ref_norm(osp_f32(x), sh[0], c, s, cases[k].groups, gamma ? osp_f32(gamma) : NULL,
                 beta ? osp_f32(beta) : NULL, 1e-6, want);
        double e = worst_error(y, want);
        if (e > 1e-6)
            printf("#   case %zu: worst error %.3g\n", k, e);
        CHECK(e <= 1e-6);
        free(want);
    }
}

TEST(layer_norm_with_and_without_affine)
{
    int64_t sh[] = {3, 5, 24}, d = 24;
    osp_tensor *x = test_random(3, sh, -2, 4);
    osp_tensor *gamma = test_random(1, &d, 0.5f, 1.5f), *beta = test_random(1, &d, -1, 1);
    double *want = malloc((size_t)osp_numel(x) * sizeof *want);
    for (int affine = 0; affine < 2; affine++) {
        osp_tensor *g = affine ? gamma : NULL, *b = affine ? beta : NULL;
        osp_tensor *y = osp_layer_norm(x, g, b, 1e-5f);
        CHECK(y && osp_same_shape(y, x));
        if (!y)
            continue;
        ref_norm(osp_f32(x), 15, d, 1, 1, g ? osp_f32(g) : NULL, b ? osp_f32(b) : NULL, 1e-5,
                 want);
        CHECK(worst_error(y, want) <= 1e-6);
    }
    free(want);
}

TEST(layer_norm_per_sample_affine)
{
    /* adaLN: gamma, beta [N, 1, D] for x [N, R, D] equal LN(x)·gamma + beta
     * broadcast by the ops; with 1 and 3 threads; bad shapes refused. */
    int64_t sh[] = {3, 7, 40}, ps[] = {3, 1, 40};
    osp_tensor *x = test_random(3, sh, -2, 4);
    osp_tensor *gamma = test_random(3, ps, 0.5f, 1.5f), *beta = test_random(3, ps, -1, 1);
    osp_tensor *want = osp_add(osp_mul(osp_layer_norm(x, NULL, NULL, 1e-6f), gamma), beta);
    for (int threads = 1; threads <= 3; threads += 2) {
        osp_set_threads(threads);
        osp_tensor *y = osp_layer_norm(x, gamma, beta, 1e-6f);
        CHECK(y && want && test_max_abs_diff(y, want) <= 2e-6);
        osp_tensor *g = osp_layer_norm(x, gamma, NULL, 1e-6f);
        CHECK(g && test_max_abs_diff(g, osp_mul(osp_layer_norm(x, NULL, NULL, 1e-6f), gamma)) <=
                       2e-6);
    }
    osp_set_threads(0);
    int64_t wrong[][3] = {{1, 1, 40}, {3, 7, 40}, {3, 1, 39}};
    for (int i = 0; i < 3; i++)
        CHECK(osp_layer_norm(x, test_random(3, wrong[i], 0, 1), NULL, 1e-6f) == NULL);
    CHECK(osp_layer_norm(x, gamma, test_random(1, &sh[2], 0, 1), 1e-6f) == NULL); /* differ */
    CHECK(osp_group_norm(osp_reshape(x, 3, (int64_t[]){3, 40, 7}), 4,
                         test_random(3, (int64_t[]){3, 40, 1}, 0, 1), NULL, 1e-6f) == NULL);
}

TEST(rms_norm_with_bf16_gamma)
{
    int64_t sh[] = {4, 3, 40}, d = 40;
    osp_tensor *x = test_random(3, sh, -5, 5);
    osp_tensor *g32 = test_random(1, &d, 0.2f, 2.0f);
    uint16_t bits[40];
    float widened[40];
    for (int i = 0; i < d; i++) {
        bits[i] = osp_f32_to_bf16(osp_f32(g32)[i]);
        widened[i] = osp_bf16_to_f32(bits[i]);
    }
    osp_tensor *gamma = osp_tensor_from_data(OSP_BF16, 1, &d, bits);
    osp_tensor *y = osp_rms_norm(x, gamma, 1e-6f);
    CHECK(y && y->dtype == OSP_F32 && osp_same_shape(y, x));
    if (!y)
        return;
    const float *px = osp_f32(x);
    double want[4 * 3 * 40];
    for (int r = 0; r < 12; r++) {
        double ms = 0;
        for (int i = 0; i < d; i++)
            ms += (double)px[r * d + i] * px[r * d + i];
        double rstd = 1.0 / sqrt(ms / (double)d + 1e-6);
        for (int i = 0; i < d; i++)
            want[r * d + i] = widened[i] * (px[r * d + i] * rstd);
    }
    CHECK(worst_error(y, want) <= 1e-6);
    /* Without gamma: the plain normalised value. */
    osp_tensor *y1 = osp_rms_norm(x, NULL, 1e-6f);
    CHECK(y1 && fabs(osp_f32(y1)[7] - osp_f32(y)[7] / widened[7]) <= 1e-5);
}

TEST(norm_argument_errors)
{
    int64_t sh[] = {2, 6, 4}, c5 = 5, c6 = 6;
    osp_tensor *x = test_random(3, sh, -1, 1);
    CHECK(osp_group_norm(x, 4, NULL, NULL, 1e-6f) == NULL); /* 4 does not divide 6 */
    CHECK(osp_error_code() == OSP_ERR_RUNTIME);
    CHECK(osp_group_norm(x, 0, NULL, NULL, 1e-6f) == NULL);
    CHECK(osp_group_norm(x, 3, test_random(1, &c5, 0, 1), NULL, 1e-6f) == NULL);
    CHECK(osp_group_norm(x, 3, NULL, NULL, -1.0f) == NULL);
    CHECK(osp_group_norm(x, 3, test_random(1, &c6, 0, 1), NULL, 1e-6f) != NULL);
    CHECK(osp_layer_norm(x, test_random(1, &c6, 0, 1), NULL, 1e-5f) == NULL); /* D = 4 */
    CHECK(osp_rms_norm(osp_tensor_zeros(OSP_I32, 3, sh, OSP_DEVICE_CPU), NULL, 1e-6f) == NULL);
    CHECK(osp_layer_norm(NULL, NULL, NULL, 1e-5f) == NULL);
}

/* The backward op on shapes the gradient checks are too small for (more
 * row chunks than threads, channel tiles of one channel) against a double
 * reference, and bit-identical with 1 and 3 threads. */
TEST(norm_backward_large_shapes)
{
    struct {
        int ndim;
        int64_t shape[3];
        int groups; /* 0: layer norm over the last axis */
        bool affine;
    } cases[] = {{2, {150, 40}, 0, true}, {3, {2, 4, 5000}, 2, true}, {2, {150, 40}, 0, false},
                 {3, {2, 4, 5000}, 2, false}};
    for (size_t k = 0; k < 4; k++) {
        int layer = cases[k].groups == 0;
        int64_t *sh = cases[k].shape, c = sh[1];
        int64_t n = sh[0], s = layer ? 1 : sh[2], groups = layer ? 1 : cases[k].groups;
        osp_tensor *x = test_random(cases[k].ndim, sh, -2, 2);
        osp_tensor *gy = test_random(cases[k].ndim, sh, -1, 1);
        osp_tensor *gamma = cases[k].affine ? test_random(1, &c, 0.5f, 1.5f) : NULL;
        osp_tensor *out[2][3];
        for (int run = 0; run < 2; run++) {
            int old = omp_get_max_threads();
            omp_set_num_threads(run ? 3 : 1);
            osp_status st = layer ? osp_layer_norm_backward(gy, x, gamma, NULL, 1e-5f, &out[run][0],
                                                            &out[run][1], &out[run][2])
                                  : osp_group_norm_backward(gy, x, gamma, (int)groups, 1e-5f,
                                                            &out[run][0], &out[run][1],
                                                            &out[run][2]);
            omp_set_num_threads(old);
            CHECK(st == OSP_OK);
            if (st)
                return;
        }
        int outs = cases[k].affine ? 3 : 1;
        for (int j = 0; j < outs; j++)
            CHECK(memcmp(osp_f32(out[0][j]), osp_f32(out[1][j]), osp_nbytes(out[0][j])) == 0);
        /* double reference: xhat, then the sums */
        const float *px = osp_f32(x), *pg = osp_f32(gy);
        const float *pw = gamma ? osp_f32(gamma) : NULL;
        int64_t len = c / groups * s;
        double *gg = calloc((size_t)c, sizeof *gg), *gb = calloc((size_t)c, sizeof *gb);
        double worst_gx = 0;
        for (int64_t b = 0; b < n * groups; b++) {
            const float *xb = px + b * len, *gyb = pg + b * len;
            double mean = 0, var = 0, sum_g = 0, sum_gx = 0;
            for (int64_t i = 0; i < len; i++)
                mean += xb[i] / (double)len;
            for (int64_t i = 0; i < len; i++)
                var += (xb[i] - mean) * (xb[i] - mean) / (double)len;
            double rstd = 1 / sqrt(var + 1e-5);
            for (int64_t i = 0; i < len; i++) {
                int64_t ch = (b % groups) * (c / groups) + i / s;
                double xhat = (xb[i] - mean) * rstd, g = gyb[i] * (pw ? pw[ch] : 1.0f);
                gg[ch] += gyb[i] * xhat;
                gb[ch] += gyb[i];
                sum_g += g;
                sum_gx += g * xhat;
            }
            for (int64_t i = 0; i < len; i++) {
                int64_t ch = (b % groups) * (c / groups) + i / s;
                double xhat = (xb[i] - mean) * rstd;
                double w = pw ? pw[ch] : 1.0f;
                double want = rstd * (gyb[i] * w - sum_g / len - xhat * sum_gx / len);
                worst_gx = fmax(worst_gx, fabs(osp_f32(out[0][0])[b * len + i] - want));
            }
        }
        double worst_gg = 0, worst_gb = 0;
        for (int64_t ch = 0; cases[k].affine && ch < c; ch++) {
            double dg = fabs(osp_f32(out[0][1])[ch] - gg[ch]);
            double db = fabs(osp_f32(out[0][2])[ch] - gb[ch]);
            worst_gg = fmax(worst_gg, dg / fmax(1, fabs(gg[ch])));
            worst_gb = fmax(worst_gb, db / fmax(1, fabs(gb[ch])));
        }
        CHECK(worst_gx <= 1e-5);
        CHECK(worst_gg <= 1e-6);
        CHECK(worst_gb <= 1e-6);
        free(gg);
        free(gb);
    }
}

/* Per-sample gamma and beta ([N, 1, D], adaLN) over samples of several
 * row chunks, the last one partial: each sample's gradients equal the
 * backward of that sample alone with its own gamma row, bit for bit, with
 * 1 and 3 threads. */
TEST(layer_norm_backward_per_sample_chunks)
{
    int64_t sh[] = {3, 50, 40}, ps[] = {3, 1, 40}, d = 40;
    osp_tensor *x = test_random(3, sh, -2, 2), *gy = test_random(3, sh, -1, 1);
    osp_tensor *gamma = test_random(3, ps, 0.5f, 1.5f), *beta = test_random(3, ps, -1, 1);
    for (int threads = 1; threads <= 3; threads += 2) {
        osp_set_threads(threads);
        osp_tensor *gx, *gg, *gb;
        CHECK(osp_layer_norm_backward(gy, x, gamma, beta, 1e-6f, &gx, &gg, &gb) == OSP_OK);
        for (int64_t n = 0; n < 3; n++) {
            osp_tensor *xs = osp_contiguous(osp_slice(x, 0, n, n + 1, 1));
            osp_tensor *gys = osp_contiguous(osp_slice(gy, 0, n, n + 1, 1));
            osp_tensor *gs = osp_contiguous(osp_reshape(osp_slice(gamma, 0, n, n + 1, 1), 1, &d));
            osp_tensor *gx1, *gg1, *gb1;
            CHECK(osp_layer_norm_backward(gys, xs, gs, NULL, 1e-6f, &gx1, &gg1, &gb1) == OSP_OK);
            CHECK(memcmp(osp_f32(gx) + n * 50 * d, osp_f32(gx1), osp_nbytes(gx1)) == 0);
            CHECK(memcmp(osp_f32(gg) + n * d, osp_f32(gg1), osp_nbytes(gg1)) == 0);
            CHECK(memcmp(osp_f32(gb) + n * d, osp_f32(gb1), osp_nbytes(gb1)) == 0);
        }
    }
    osp_set_threads(0);
}

/* ---- gradients ---- */

typedef struct norm_ctx {
    int kind; /* 0 group, 1 layer, 2 rms */
    int groups;
    bool affine;
} norm_ctx;

static osp_tensor *apply_norm(osp_tensor *const *in, void *ctx)
{
    const norm_ctx *c = ctx;
    osp_tensor *gamma = c->affine ? in[1] : NULL, *beta = c->affine ? in[2] : NULL;
    switch (c->kind) {
    case 0: return osp_group_norm(in[0], c->groups, gamma, beta, 1e-5f);
    case 1: return osp_layer_norm(in[0], gamma, beta, 1e-5f);
    default: return osp_rms_norm(in[0], gamma, 1e-6f);
    }
}

/* Checks the gradients of x, gamma, beta (those `mask` selects: bit 0 x,
 * bit 1 gamma, bit 2 beta). */
static bool check_norm_grad(const char *label, norm_ctx ctx, int ndim, const int64_t *shape,
                            int64_t channels, int mask)
{
    /* channels < 0: layer norm with gamma, beta per sample, [N, 1, ..., D] */
    int64_t ps[OSP_MAX_DIMS] = {channels};
    int pd = 1;
    if (channels < 0) {
        pd = ndim;
        for (int d = 0; d < ndim; d++)
            ps[d] = d == 0 || d == ndim - 1 ? shape[d] : 1;
    }
    osp_tensor *in[3] = {test_random(ndim, shape, -2, 2), test_random(pd, ps, 0.5f, 1.5f),
                         test_random(pd, ps, -1, 1)};
    int n_in = ctx.kind == 2 ? 2 : 3;
    for (int i = 0; i < n_in; i++)
        in[i]->requires_grad = (mask >> i) & 1;
    return gradcheck(label, apply_norm, n_in, in, &ctx, NULL);
}

TEST(group_norm_gradients)
{
    int64_t s5[] = {2, 4, 2, 3, 2}, s3[] = {3, 6, 5};
    CHECK(check_norm_grad("group_norm 5-D", (norm_ctx){0, 2, true}, 5, s5, 4, 7));
    CHECK(check_norm_grad("group_norm groups=C", (norm_ctx){0, 6, true}, 3, s3, 6, 7));
    CHECK(check_norm_grad("group_norm groups=1", (norm_ctx){0, 1, true}, 3, s3, 6, 7));
    CHECK(check_norm_grad("group_norm no affine", (norm_ctx){0, 3, false}, 3, s3, 6, 1));
    CHECK(check_norm_grad("group_norm gamma/beta only", (norm_ctx){0, 2, true}, 5, s5, 4, 6));
}

TEST(layer_norm_gradients)
{
    int64_t s[] = {2, 3, 16};
    CHECK(check_norm_grad("layer_norm affine", (norm_ctx){1, 1, true}, 3, s, 16, 7));
    CHECK(check_norm_grad("layer_norm no affine", (norm_ctx){1, 1, false}, 3, s, 16, 1));
    CHECK(check_norm_grad("layer_norm beta only", (norm_ctx){1, 1, true}, 3, s, 16, 4));
    CHECK(check_norm_grad("layer_norm per sample", (norm_ctx){1, 1, true}, 3, s, -1, 7));
    CHECK(check_norm_grad("layer_norm per sample, beta only", (norm_ctx){1, 1, true}, 3, s, -1,
                          4));
    int64_t s4[] = {3, 2, 4, 8};
    CHECK(check_norm_grad("layer_norm per sample, 4-D", (norm_ctx){1, 1, true}, 4, s4, -1, 7));
}

TEST(rms_norm_gradients)
{
    int64_t s[] = {4, 2, 24};
    CHECK(check_norm_grad("rms_norm", (norm_ctx){2, 1, true}, 3, s, 24, 3));
    CHECK(check_norm_grad("rms_norm gamma only", (norm_ctx){2, 1, true}, 3, s, 24, 2));
    CHECK(check_norm_grad("rms_norm no gamma", (norm_ctx){2, 1, false}, 3, s, 24, 1));
}

int main(void)
{
    RUN(group_norm_matches_double_reference);
    RUN(layer_norm_with_and_without_affine);
    RUN(layer_norm_per_sample_affine);
    RUN(rms_norm_with_bf16_gamma);
    RUN(norm_argument_errors);
    RUN(norm_backward_large_shapes);
    RUN(layer_norm_backward_per_sample_chunks);
    RUN(group_norm_gradients);
    RUN(layer_norm_gradients);
    RUN(rms_norm_gradients);
    return test_summary();
}
