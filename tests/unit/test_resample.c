/* test_resample.c — padding (constant, replicate), interpolation (nearest,
 * linear / bilinear / trilinear, both align_corners settings) and average
 * pooling: forward against exact known values and hand-computed PyTorch
 * formulas, backward against finite differences, invalid arguments. */
#include "backend/ops.h"
#include "backend/ops_resample_bwd.h"
#include "gradcheck.h"
#include "test.h"
#include "train/tape.h"

#include <stdlib.h>
#include <string.h>

static osp_tensor *tensor_of(int ndim, const int64_t *shape, const float *v)
{
    return osp_tensor_from_data(OSP_F32, ndim, shape, v);
}

/* Every element of t equals want[i] within tol. */
static bool equals(const osp_tensor *t, const float *want, int64_t n, double tol)
{
    if (!t || osp_numel(t) != n)
        return false;
    for (int64_t i = 0; i < n; i++) {
        if (!(fabs((double)osp_f32(t)[i] - want[i]) <= tol)) {
            printf("#   element %lld: got %.9g want %.9g\n", (long long)i, osp_f32(t)[i],
                   want[i]);
            return false;
        }
    }
    return true;
}

/* Expects NULL and an error message. */
#define CHECK_REJECTS(expr)                                        \
    do {                                                           \
        osp_error_clear();                                         \
        CHECK((expr) == NULL);                                     \
        CHECK(osp_error_code() != OSP_OK && *osp_error_message()); \
    } while (0)

/* Row-major multi-index of flat index i in shape. */
static void unravel(int64_t i, int ndim, const int64_t *shape, int64_t *idx)
{
    for (int d = ndim - 1; d >= 0; d--) {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
}

static int64_t ravel(int ndim, const int64_t *shape, const int64_t *idx)
{
    int64_t i = 0;
    for (int d = 0; d < ndim; d++)
        i = i * shape[d] + idx[d];
    return i;
}

/* ---------------- pad ---------------- */

TEST(pad_constant_exact_values)
{
    int64_t xs[] = {2, 3}, before[] = {1, 0}, after[] = {0, 2};
    float xv[] = {1, 2, 3, 4, 5, 6};
    osp_tensor *y = osp_pad(tensor_of(2, xs, xv), before, after, OSP_PAD_CONSTANT, 7);
    float want[] = {7, 7, 7, 7, 7, 1, 2, 3, 7, 7, 4, 5, 6, 7, 7};
    CHECK(y && y->shape[0] == 3 && y->shape[1] == 5);
    CHECK(equals(y, want, 15, 0));
}

TEST(pad_replicate_exact_values)
{
    int64_t xs[] = {2, 2}, before[] = {1, 2}, after[] = {1, 1};
    float xv[] = {1, 2, 3, 4};
    osp_tensor *y = osp_pad(tensor_of(2, xs, xv), before, after, OSP_PAD_REPLICATE, 0);
    float want[] = {1, 1, 1, 2, 2, /**/ 1, 1, 1, 2, 2, /**/ 3, 3, 3, 4, 4, /**/ 3, 3, 3, 4, 4};
    CHECK(y && y->shape[0] == 4 && y->shape[1] == 5);
    CHECK(equals(y, want, 20, 0));
}

/* Random N-D tensors against the definition: y[i] = x[clamp(i - before)]
 * (replicate) or x[i - before] inside / value outside (constant). */
TEST(pad_matches_definition_in_every_rank)
{
    static const struct {
        int ndim;
        int64_t shape[5], before[5], after[5];
    } cases[] = {
        {1, {5}, {3}, {2}},
        {3, {2, 3, 4}, {0, 2, 1}, {1, 0, 3}},
        {4, {1, 2, 3, 3}, {0, 0, 1, 1}, {0, 0, 1, 1}},
        {5, {1, 2, 3, 4, 5}, {0, 0, 2, 0, 0}, {0, 0, 0, 0, 0}}, /* causal time pad */
        {5, {2, 1, 2, 3, 2}, {1, 0, 2, 1, 3}, {0, 2, 1, 2, 0}},
        {2, {3, 4}, {0, 0}, {0, 0}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int nd = cases[k].ndim;
        const int64_t *xs = cases[k].shape, *b = cases[k].before, *a = cases[k].after;
        osp_tensor *x = test_random(nd, xs, -1, 1);
        for (int mode = 0; mode < 2; mode++) {
            osp_tensor *y = osp_pad(x, b, a, (osp_pad_mode)mode, -3.5f);
            CHECK(y && y->ndim == nd);
            if (!y)
                continue;
            bool ok = true;
            for (int64_t i = 0; i < osp_numel(y); i++) {
                int64_t idx[5];
                unravel(i, nd, y->shape, idx);
                bool inside = true;
                for (int d = 0; d < nd; d++) {
                    CHECK(y->shape[d] == xs[d] + b[d] + a[d]);
                    idx[d] -= b[d];
                    if (idx[d] < 0 || idx[d] >= xs[d]) {
                        inside = false;
                        idx[d] = idx[d] < 0 ? 0 : xs[d] - 1;
                    }
                }
                float want = mode == OSP_PAD_CONSTANT && !inside
                                 ? -3.5f
                                 : osp_f32(x)[ravel(nd, xs, idx)];
                ok &= osp_f32(y)[i] == want;
            }
            if (!ok)
                printf("#   case %zu mode %d differs\n", k, mode);
            CHECK(ok);
        }
    }
}

TEST(pad_backward_sums_replicated_borders)
{
    /* x [3] padded (2, 1): y = x0 x0 | x0 x1 x2 | x2 */
    int64_t ys[] = {6}, before[] = {2}, after[] = {1};
    float gv[] = {1, 2, 4, 8, 16, 32};
    osp_tensor *gy = tensor_of(1, ys, gv);
    float want_rep[] = {7, 8, 48}, want_const[] = {4, 8, 16};
    CHECK(equals(osp_pad_backward(gy, before, after, OSP_PAD_REPLICATE), want_rep, 3, 0));
    CHECK(equals(osp_pad_backward(gy, before, after, OSP_PAD_CONSTANT), want_const, 3, 0));
}

TEST(pad_rejects_invalid_arguments)
{
    int64_t xs[] = {2, 3}, es[] = {0, 3}, ok_b[] = {1, 1}, neg[] = {-1, 0}, zero[] = {0, 0};
    osp_tensor *x = test_random(2, xs, -1, 1);
    osp_tensor *empty = osp_tensor_f32(2, es);
    CHECK(osp_pad(x, ok_b, zero, OSP_PAD_REPLICATE, 0) != NULL);
    CHECK_REJECTS(osp_pad(x, neg, zero, OSP_PAD_CONSTANT, 0));
    CHECK_REJECTS(osp_pad(x, zero, neg, OSP_PAD_REPLICATE, 0));
    CHECK_REJECTS(osp_pad(x, NULL, zero, OSP_PAD_CONSTANT, 0));
    CHECK_REJECTS(osp_pad(x, ok_b, zero, (osp_pad_mode)7, 0));
    CHECK_REJECTS(osp_pad(empty, ok_b, zero, OSP_PAD_REPLICATE, 0)); /* nothing to copy */
    CHECK(osp_pad(empty, ok_b, zero, OSP_PAD_CONSTANT, 1) != NULL);
    int64_t huge[] = {INT64_MAX, 0};
    CHECK_REJECTS(osp_pad(x, huge, zero, OSP_PAD_CONSTANT, 0));
    CHECK_REJECTS(osp_pad_backward(x, (int64_t[]){2, 0}, (int64_t[]){1, 0},
                                   OSP_PAD_CONSTANT)); /* pads exceed gy */
}

/* ---------------- interpolation ---------------- */

TEST(bilinear_exact_known_values)
{
    int64_t xs[] = {1, 1, 2, 2}, three[] = {3, 3}, four[] = {4, 4};
    osp_tensor *x = tensor_of(4, xs, (float[]){1, 2, 3, 4});
    float w33[] = {1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4};
    /* 2 -> 3, no corners: src = 0 (clamped), 0.5, 7/6 -> index 1 (last) */
    CHECK(equals(osp_interpolate(x, 2, three, OSP_INTERP_LINEAR, false), w33, 9, 0));
    /* 2 -> 3, corners: src = 0, 0.5, 1 */
    CHECK(equals(osp_interpolate(x, 2, three, OSP_INTERP_LINEAR, true), w33, 9, 0));
    /* 2 -> 4, no corners: weights (1, 0), (.75, .25), (.25, .75), (0, 1) */
    float w44[] = {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f,
                   2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4};
    CHECK(equals(osp_interpolate(x, 2, four, OSP_INTERP_LINEAR, false), w44, 16, 0));
    /* 1-D 2 -> 4 with corners: src = 0, 1/3, 2/3, 1 */
    int64_t x1s[] = {1, 1, 2}, n4 = 4, n2 = 2;
    osp_tensor *x1 = tensor_of(3, x1s, (float[]){1, 2});
    CHECK(equals(osp_interpolate(x1, 1, &n4, OSP_INTERP_LINEAR, true),
                 (float[]){1, 4.0f / 3, 5.0f / 3, 2}, 4, 1e-6));
    /* 1-D 4 -> 2, no corners: src = 0.5, 2.5 (downsampling, no low-pass) */
    int64_t x4s[] = {1, 1, 4};
    osp_tensor *x4 = tensor_of(3, x4s, (float[]){1, 2, 4, 8});
    CHECK(equals(osp_interpolate(x4, 1, &n2, OSP_INTERP_LINEAR, false), (float[]){1.5f, 6}, 2, 0));
}

TEST(nearest_exact_known_values)
{
    int64_t x3s[] = {1, 1, 3}, x5s[] = {1, 1, 5}, n5 = 5, n3 = 3;
    osp_tensor *x3 = tensor_of(3, x3s, (float[]){10, 20, 30});
    osp_tensor *x5 = tensor_of(3, x5s, (float[]){1, 2, 3, 4, 5});
    /* 3 -> 5: floor(o · 0.6) = 0 0 1 1 2;  5 -> 3: floor(o · 5/3) = 0 1 3 */
    CHECK(equals(osp_interpolate(x3, 1, &n5, OSP_INTERP_NEAREST, false),
                 (float[]){10, 10, 20, 20, 30}, 5, 0));
    CHECK(equals(osp_interpolate(x5, 1, &n3, OSP_INTERP_NEAREST, false), (float[]){1, 2, 4}, 3,
                 0));
    /* The VAE's spatial upsample: u[t, i, j] = x[t, i/2, j/2] */
    int64_t xs[] = {1, 2, 3, 2, 3}, size[] = {3, 4, 6};
    osp_tensor *x = test_random(5, xs, -1, 1);
    osp_tensor *y = osp_interpolate(x, 3, size, OSP_INTERP_NEAREST, false);
    CHECK(y && y->shape[2] == 3 && y->shape[3] == 4 && y->shape[4] == 6);
    bool ok = y != NULL;
    for (int64_t i = 0; ok && i < osp_numel(y); i++) {
        int64_t idx[5];
        unravel(i, 5, y->shape, idx);
        idx[3] /= 2;
        idx[4] /= 2;
        ok = osp_f32(y)[i] == osp_f32(x)[ravel(5, xs, idx)];
    }
    CHECK(ok);
}

/* PyTorch's source index along one axis (float32 coordinates). */
static void ref_source(int64_t in, int64_t out, int64_t o, osp_interp_mode mode, bool corners,
                       int64_t *i0, int64_t *i1, double *l1)
{
    if (mode == OSP_INTERP_NEAREST) {
        int64_t i = (int64_t)floorf((float)o * ((float)in / (float)out));
        *i0 = *i1 = i < in - 1 ? i : in - 1;
        *l1 = 0;
        return;
    }
    float src;
    if (corners)
        src = out > 1 ? (float)(in - 1) / (float)(out - 1) * (float)o : 0.0f;
    else
        src = fmaxf((float)in / (float)out * ((float)o + 0.5f) - 0.5f, 0.0f);
    int64_t i = (int64_t)floorf(src);
    *i0 = i < in - 1 ? i : in - 1;
    *i1 = *i0 + (*i0 < in - 1);
    *l1 = (double)(src - (float)*i0);
}

/* y = interpolate(x) in double, separable over the nsp trailing axes. */
static void ref_interpolate(const osp_tensor *x, int nsp, const int64_t *out_size,
                            osp_interp_mode mode, bool corners, double *y)
{
    int nd = x->ndim;
    int64_t ys[5] = {x->shape[0], x->shape[1]}, ny = x->shape[0] * x->shape[1];
    for (int i = 0; i < nsp; i++)
        ny *= ys[2 + i] = out_size[i];
    for (int64_t j = 0; j < ny; j++) {
        int64_t idx[5], i0[3], i1[3];
        double l1[3];
        unravel(j, nd, ys, idx);
        for (int a = 0; a < nsp; a++)
            ref_source(x->shape[2 + a], ys[2 + a], idx[2 + a], mode, corners, &i0[a], &i1[a],
                       &l1[a]);
        double acc = 0;
        for (int corner = 0; corner < (1 << nsp); corner++) {
            double wgt = 1;
            for (int a = 0; a < nsp; a++) {
                bool hi = corner >> a & 1;
                wgt *= hi ? l1[a] : 1 - l1[a];
                idx[2 + a] = hi ? i1[a] : i0[a];
            }
            acc += wgt * osp_f32(x)[ravel(nd, x->shape, idx)];
        }
        y[j] = acc;
    }
}

TEST(interpolate_matches_pytorch_formulas)
{
    static const struct {
        int nsp;
        int64_t shape[5], size[3];
    } cases[] = {
        {1, {2, 3, 7}, {12}},
        {1, {1, 2, 9}, {4}},
        {2, {1, 2, 5, 7}, {9, 4}},
        {2, {2, 1, 6, 6}, {17, 13}},
        {2, {1, 1, 1, 5}, {3, 5}}, /* unit input extent */
        {3, {1, 2, 4, 3, 5}, {7, 6, 2}},
        {3, {1, 1, 3, 4, 4}, {3, 8, 8}}, /* one axis unchanged */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int nsp = cases[k].nsp;
        osp_tensor *x = test_random(nsp + 2, cases[k].shape, -2, 2);
        for (int variant = 0; variant < 3; variant++) {
            osp_interp_mode mode = variant == 0 ? OSP_INTERP_NEAREST : OSP_INTERP_LINEAR;
            bool corners = variant == 2;
            osp_tensor *y = osp_interpolate(x, nsp, cases[k].size, mode, corners);
            CHECK(y != NULL);
            if (!y)
                continue;
            double *want = malloc((size_t)osp_numel(y) * sizeof *want);
            ref_interpolate(x, nsp, cases[k].size, mode, corners, want);
            double worst = 0;
            for (int64_t i = 0; i < osp_numel(y); i++)
                worst = fmax(worst, fabs(osp_f32(y)[i] - want[i]));
            if (!(worst <= 2e-6))
                printf("#   case %zu variant %d: worst %.3g\n", k, variant, worst);
            CHECK(worst <= 2e-6);
            free(want);
        }
    }
}

TEST(trilinear_time_upsample_closed_form)
{
    /* spec causalvae §3.9: n frames -> 2n with scale (2, 1, 1), no corners:
     * out_0 = r_0, out_{2m-1} = .75 r_{m-1} + .25 r_m, out_{2m} = .25 r_{m-1}
     * + .75 r_m, out_{2n-1} = r_{n-1}. */
    int64_t xs[] = {1, 2, 4, 3, 2}, size[] = {8, 3, 2};
    osp_tensor *x = test_random(5, xs, -1, 1);
    osp_tensor *y = osp_interpolate(x, 3, size, OSP_INTERP_LINEAR, false);
    CHECK(y != NULL);
    if (!y)
        return;
    double worst = 0;
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < 8; k++)
            for (int p = 0; p < 6; p++) {
                const float *r = osp_f32(x) + c * 24 + p;
                int m = (k + 1) / 2;
                double want = k == 0 ? r[0]
                              : k == 7 ? r[18]
                              : k % 2 ? 0.75 * r[(m - 1) * 6] + 0.25 * r[m * 6]
                                      : 0.25 * r[(m - 1) * 6] + 0.75 * r[m * 6];
                worst = fmax(worst, fabs(osp_f32(y)[(c * 8 + k) * 6 + p] - want));
            }
    CHECK(worst <= 1e-6);
}

TEST(interpolate_rejects_invalid_arguments)
{
    int64_t xs[] = {1, 2, 4, 4}, es[] = {1, 2, 0, 4}, size[] = {8, 8}, zero[] = {8, 0};
    osp_tensor *x = test_random(4, xs, -1, 1), *empty = osp_tensor_f32(4, es);
    CHECK(osp_interpolate(x, 2, size, OSP_INTERP_LINEAR, true) != NULL);
    CHECK_REJECTS(osp_interpolate(x, 2, size, OSP_INTERP_NEAREST, true));
    CHECK_REJECTS(osp_interpolate(x, 2, zero, OSP_INTERP_LINEAR, false));
    CHECK_REJECTS(osp_interpolate(x, 3, size, OSP_INTERP_LINEAR, false));
    CHECK_REJECTS(osp_interpolate(x, 2, NULL, OSP_INTERP_LINEAR, false));
    CHECK_REJECTS(osp_interpolate(x, 2, size, (osp_interp_mode)5, false));
    CHECK_REJECTS(osp_interpolate(empty, 2, size, OSP_INTERP_LINEAR, false));
}

/* ---------------- average pooling ---------------- */

TEST(avg_pool_exact_values)
{
    /* [1 2 3 4], kernel 2, stride 2, pad 1: (0+1)/2, (2+3)/2, (4+0)/2 */
    int64_t xs[] = {1, 1, 4};
    osp_window win = osp_window_default(1);
    win.kernel[0] = win.stride[0] = 2;
    win.pad[0] = 1;
    osp_tensor *y = osp_avg_pool(tensor_of(3, xs, (float[]){1, 2, 3, 4}), &win);
    CHECK(equals(y, (float[]){0.5f, 2.5f, 2}, 3, 0));
}

TEST(time_downsample_is_replicate_pad_then_avg_pool)
{
    /* spec causalvae §3.8: y_0 = x_0, y_j = (x_{2j-2} + x_{2j-1} + x_{2j}) / 3 */
    int64_t frames[] = {1, 2, 3, 5, 9};
    for (size_t k = 0; k < sizeof frames / sizeof frames[0]; k++) {
        int64_t t = frames[k], xs[] = {1, 2, t, 2, 3}, before[] = {0, 0, 2, 0, 0};
        int64_t after[5] = {0};
        osp_tensor *x = test_random(5, xs, -1, 1);
        osp_window win = osp_window_default(3);
        win.kernel[0] = 3;
        win.stride[0] = 2;
        osp_tensor *y = osp_avg_pool(osp_pad(x, before, after, OSP_PAD_REPLICATE, 0), &win);
        int64_t tout = (t - 1) / 2 + 1;
        CHECK(y && y->shape[2] == tout);
        if (!y)
            continue;
        double worst = 0;
        for (int c = 0; c < 2; c++)
            for (int64_t j = 0; j < tout; j++)
                for (int p = 0; p < 6; p++) {
                    const float *r = osp_f32(x) + c * t * 6 + p;
                    double want = j == 0 ? r[0]
                                         : ((double)r[(2 * j - 2) * 6] + r[(2 * j - 1) * 6] +
                                            r[2 * j * 6]) / 3;
                    worst = fmax(worst, fabs(osp_f32(y)[(c * tout + j) * 6 + p] - want));
                }
        CHECK(worst <= 1e-6);
    }
}

TEST(avg_pool_matches_definition)
{
    static const struct {
        int nsp;
        int64_t shape[5], k[3], s[3], p[3];
    } cases[] = {
        {1, {2, 3, 11}, {3}, {2}, {1}},
        {2, {1, 2, 7, 8}, {3, 2}, {2, 3}, {1, 1}},
        {3, {1, 2, 5, 6, 7}, {3, 2, 3}, {2, 1, 2}, {1, 0, 1}},
        {3, {2, 1, 4, 4, 4}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int nsp = cases[k].nsp, nd = nsp + 2;
        osp_tensor *x = test_random(nd, cases[k].shape, -1, 1);
        osp_window win = osp_window_default(nsp);
        double volume = 1;
        for (int i = 0; i < nsp; i++) {
            win.kernel[i] = cases[k].k[i];
            win.stride[i] = cases[k].s[i];
            win.pad[i] = cases[k].p[i];
            volume *= (double)cases[k].k[i];
        }
        osp_tensor *y = osp_avg_pool(x, &win);
        CHECK(y != NULL);
        if (!y)
            continue;
        double worst = 0;
        for (int64_t j = 0; j < osp_numel(y); j++) {
            int64_t idx[5], at[5];
            unravel(j, nd, y->shape, idx);
            double sum = 0;
            for (int64_t tap = 0; tap < (int64_t)volume; tap++) {
                int64_t rest = tap;
                bool inside = true;
                memcpy(at, idx, sizeof at);
                for (int i = nsp - 1; i >= 0; i--) {
                    at[2 + i] = idx[2 + i] * win.stride[i] - win.pad[i] + rest % win.kernel[i];
                    rest /= win.kernel[i];
                    inside &= at[2 + i] >= 0 && at[2 + i] < x->shape[2 + i];
                }
                if (inside)
                    sum += osp_f32(x)[ravel(nd, x->shape, at)];
            }
            for (int i = 0; i < nsp; i++)
                CHECK(y->shape[2 + i] ==
                      (x->shape[2 + i] + 2 * win.pad[i] - win.kernel[i]) / win.stride[i] + 1);
            worst = fmax(worst, fabs(osp_f32(y)[j] - sum / volume));
        }
        if (!(worst <= 1e-6))
            printf("#   case %zu: worst %.3g\n", k, worst);
        CHECK(worst <= 1e-6);
    }
}

TEST(avg_pool_rejects_invalid_arguments)
{
    int64_t xs[] = {1, 2, 5, 5};
    osp_tensor *x = test_random(4, xs, -1, 1);
    osp_window win = osp_window_default(2);
    win.kernel[0] = win.kernel[1] = 2;
    win.stride[0] = win.stride[1] = 2;
    CHECK(osp_avg_pool(x, &win) != NULL);
    osp_window bad = win;
    bad.pad[0] = 2; /* > kernel / 2 */
    CHECK_REJECTS(osp_avg_pool(x, &bad));
    bad = win;
    bad.stride[1] = 0;
    CHECK_REJECTS(osp_avg_pool(x, &bad));
    bad = win;
    bad.kernel[0] = 6; /* larger than the input */
    CHECK_REJECTS(osp_avg_pool(x, &bad));
    bad = win;
    bad.nsp = 3;
    CHECK_REJECTS(osp_avg_pool(x, &bad));
    CHECK_REJECTS(osp_avg_pool(x, NULL));
}

/* ---------------- gradients ---------------- */

typedef struct resample_ctx {
    enum { DO_PAD, DO_INTERP, DO_POOL } op;
    int64_t before[5], after[5];
    osp_pad_mode pad_mode;
    int nsp;
    int64_t size[3];
    osp_interp_mode mode;
    bool corners;
    osp_window win;
} resample_ctx;

static osp_tensor *apply(osp_tensor *const *in, void *p)
{
    resample_ctx *c = p;
    switch (c->op) {
    case DO_PAD: return osp_pad(in[0], c->before, c->after, c->pad_mode, 0.25f);
    case DO_INTERP: return osp_interpolate(in[0], c->nsp, c->size, c->mode, c->corners);
    default: return osp_avg_pool(in[0], &c->win);
    }
}

TEST(pad_gradients_match_finite_differences)
{
    int64_t xs[] = {2, 3, 3, 4};
    resample_ctx c = {.op = DO_PAD, .before = {0, 1, 2, 1}, .after = {1, 0, 1, 3}};
    for (int mode = 0; mode < 2; mode++) {
        c.pad_mode = (osp_pad_mode)mode;
        osp_tensor *x = osp_requires_grad(test_random(4, xs, -1, 1));
        CHECK(gradcheck(mode ? "pad replicate" : "pad constant", apply, 1, &x, &c, NULL));
    }
}

TEST(interpolate_gradients_match_finite_differences)
{
    static const struct {
        int nsp;
        int64_t shape[5], size[3];
    } cases[] = {
        {1, {1, 2, 5}, {8}},
        {2, {1, 2, 4, 5}, {7, 3}},
        {3, {1, 1, 3, 3, 4}, {5, 4, 2}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        resample_ctx c = {.op = DO_INTERP, .nsp = cases[k].nsp};
        memcpy(c.size, cases[k].size, sizeof c.size);
        for (int variant = 0; variant < 3; variant++) {
            c.mode = variant == 0 ? OSP_INTERP_NEAREST : OSP_INTERP_LINEAR;
            c.corners = variant == 2;
            osp_tensor *x = osp_requires_grad(test_random(c.nsp + 2, cases[k].shape, -1, 1));
            char label[64];
            snprintf(label, sizeof label, "interpolate case %zu variant %d", k, variant);
            CHECK(gradcheck(label, apply, 1, &x, &c, NULL));
        }
    }
}

TEST(avg_pool_gradients_match_finite_differences)
{
    static const struct {
        int nsp;
        int64_t shape[5], k[3], s[3], p[3];
    } cases[] = {
        {1, {1, 2, 9}, {3}, {2}, {1}},
        {2, {1, 2, 5, 6}, {2, 3}, {1, 2}, {1, 1}},
        {3, {1, 1, 5, 3, 3}, {3, 1, 1}, {2, 1, 1}, {0, 0, 0}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        resample_ctx c = {.op = DO_POOL, .win = osp_window_default(cases[k].nsp)};
        for (int i = 0; i < cases[k].nsp; i++) {
            c.win.kernel[i] = cases[k].k[i];
            c.win.stride[i] = cases[k].s[i];
            c.win.pad[i] = cases[k].p[i];
        }
        osp_tensor *x = osp_requires_grad(test_random(cases[k].nsp + 2, cases[k].shape, -1, 1));
        CHECK(gradcheck("avg_pool", apply, 1, &x, &c, NULL));
    }
}

int main(void)
{
    RUN(pad_constant_exact_values);
    RUN(pad_replicate_exact_values);
    RUN(pad_matches_definition_in_every_rank);
    RUN(pad_backward_sums_replicated_borders);
    RUN(pad_rejects_invalid_arguments);
    RUN(bilinear_exact_known_values);
    RUN(nearest_exact_known_values);
    RUN(interpolate_matches_pytorch_formulas);
    RUN(trilinear_time_upsample_closed_form);
    RUN(interpolate_rejects_invalid_arguments);
    RUN(avg_pool_exact_values);
    RUN(time_downsample_is_replicate_pad_then_avg_pool);
    RUN(avg_pool_matches_definition);
    RUN(avg_pool_rejects_invalid_arguments);
    RUN(pad_gradients_match_finite_differences);
    RUN(interpolate_gradients_match_finite_differences);
    RUN(avg_pool_gradients_match_finite_differences);
    return test_summary();
}
