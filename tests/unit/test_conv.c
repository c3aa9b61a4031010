/* test_conv.c — convolution (1-, 2-, 3-D), its backward ops and the
 * transposed convolution: forward against naive double-precision loops on
 * fresh random inputs, backward against finite differences, and rejection
 * of inconsistent shapes. */
#include "backend/ops.h"
#include "backend/ops_conv_bwd.h"
#include "gradcheck.h"
#include "test.h"
#include "train/tape.h"

#include <stdlib.h>
#include <string.h>

/* A convolution in 3-D form: for nsp < 3 the leading 3 - nsp dims are
 * unit (in 1, k 1, s 1, p 0, d 1) and absent from the tensors. */
typedef struct conv_case {
    int nsp;
    int64_t n, c, o;
    int64_t in[3], k[3], s[3], p[3], d[3];
    bool bias;
} conv_case;

static int64_t conv_out(const conv_case *cc, int i)
{
    return (cc->in[i] + 2 * cc->p[i] - cc->d[i] * (cc->k[i] - 1) - 1) / cc->s[i] + 1;
}

static osp_window window_of(const conv_case *cc)
{
    osp_window win = osp_window_default(cc->nsp);
    for (int i = 0; i < cc->nsp; i++) {
        int j = 3 - cc->nsp + i;
        win.stride[i] = cc->s[j];
        win.pad[i] = cc->p[j];
        win.dilation[i] = cc->d[j];
    }
    return win;
}

/* [a, b, trailing nsp entries of v] */
static int shape_of(const conv_case *cc, int64_t a, int64_t b, const int64_t *v, int64_t *shape)
{
    shape[0] = a;
    shape[1] = b;
    for (int i = 0; i < cc->nsp; i++)
        shape[2 + i] = v[3 - cc->nsp + i];
    return cc->nsp + 2;
}

static int64_t vol(const int64_t *v) { return v[0] * v[1] * v[2]; }

/* The input index that output index q reads through tap k along dim i, or
 * -1 in the padding. */
static int64_t tap_input(const conv_case *cc, int i, int64_t q, int64_t k)
{
    int64_t at = q * cc->s[i] - cc->p[i] + k * cc->d[i];
    return at >= 0 && at < cc->in[i] ? at : -1;
}

static void out_dims(const conv_case *cc, int64_t *out)
{
    for (int i = 0; i < 3; i++)
        out[i] = conv_out(cc, i);
}

/* Every (input position, output position, tap) triple of one channel pair
 * whose input position lies inside the input (flat indices). */
typedef struct tap { int64_t x, y, k; } tap;

static tap *tap_list(const conv_case *cc, int64_t *count)
{
    int64_t out[3];
    out_dims(cc, out);
    tap *list = malloc((size_t)(vol(out) * vol(cc->k)) * sizeof *list);
    int64_t n = 0;
    for (int64_t q0 = 0; q0 < out[0]; q0++)
        for (int64_t q1 = 0; q1 < out[1]; q1++)
            for (int64_t q2 = 0; q2 < out[2]; q2++)
                for (int64_t k0 = 0; k0 < cc->k[0]; k0++)
                    for (int64_t k1 = 0; k1 < cc->k[1]; k1++)
                        for (int64_t k2 = 0; k2 < cc->k[2]; k2++) {
                            int64_t i0 = tap_input(cc, 0, q0, k0);
                            int64_t i1 = tap_input(cc, 1, q1, k1);
                            int64_t i2 = tap_input(cc, 2, q2, k2);
                            if (i0 < 0 || i1 < 0 || i2 < 0)
                                continue;
                            list[n++] = (tap){(i0 * cc->in[1] + i1) * cc->in[2] + i2,
                                              (q0 * out[1] + q1) * out[2] + q2,
                                              (k0 * cc->k[1] + k1) * cc->k[2] + k2};
                        }
    *count = n;
    return list;
}

/* Sizes per channel: input positions, output positions, kernel taps. */
static void sizes(const conv_case *cc, int64_t *xs, int64_t *ys, int64_t *ks)
{
    int64_t out[3];
    out_dims(cc, out);
    *xs = vol(cc->in);
    *ys = vol(out);
    *ks = vol(cc->k);
}

/* y = conv(x, w) + b in double. */
static void ref_conv(const conv_case *cc, const float *x, const float *w, const float *b,
                     double *y)
{
    int64_t xs, ys, ks, nt;
    sizes(cc, &xs, &ys, &ks);
    tap *taps = tap_list(cc, &nt);
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t o = 0; o < cc->o; o++) {
            double *yp = y + (n * cc->o + o) * ys;
            for (int64_t i = 0; i < ys; i++)
                yp[i] = b ? b[o] : 0.0;
            for (int64_t c = 0; c < cc->c; c++) {
                const float *xp = x + (n * cc->c + c) * xs, *wp = w + (o * cc->c + c) * ks;
                for (int64_t t = 0; t < nt; t++)
                    yp[taps[t].y] += (double)xp[taps[t].x] * wp[taps[t].k];
            }
        }
    free(taps);
}

/* gx[n][c] = Σ gy[n][o] scattered through w[o][c] (+ b[c]): the adjoint of
 * conv, which is also the transposed convolution of gy. */
static void ref_conv_adjoint(const conv_case *cc, const float *gy, const float *w,
                             const float *b, double *gx)
{
    int64_t xs, ys, ks, nt;
    sizes(cc, &xs, &ys, &ks);
    tap *taps = tap_list(cc, &nt);
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t c = 0; c < cc->c; c++) {
            double *xp = gx + (n * cc->c + c) * xs;
            for (int64_t i = 0; i < xs; i++)
                xp[i] = b ? b[c] : 0.0;
            for (int64_t o = 0; o < cc->o; o++) {
                const float *yp = gy + (n * cc->o + o) * ys, *wp = w + (o * cc->c + c) * ks;
                for (int64_t t = 0; t < nt; t++)
                    xp[taps[t].x] += (double)yp[taps[t].y] * wp[taps[t].k];
            }
        }
    free(taps);
}

/* gw[o][c] = Σ gy[n][o] · x[n][c] at the tapped positions. */
static void ref_conv_weight_grad(const conv_case *cc, const float *gy, const float *x,
                                 double *gw)
{
    int64_t xs, ys, ks, nt;
    sizes(cc, &xs, &ys, &ks);
    tap *taps = tap_list(cc, &nt);
    memset(gw, 0, (size_t)(cc->o * cc->c * ks) * sizeof *gw);
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t o = 0; o < cc->o; o++)
            for (int64_t c = 0; c < cc->c; c++) {
                const float *yp = gy + (n * cc->o + o) * ys, *xp = x + (n * cc->c + c) * xs;
                double *wp = gw + (o * cc->c + c) * ks;
                for (int64_t t = 0; t < nt; t++)
                    wp[taps[t].k] += (double)yp[taps[t].y] * xp[taps[t].x];
            }
    free(taps);
}

/* max |got - want| / max(1, max |want|) */
static double scaled_error(const osp_tensor *got, const double *want, int64_t n)
{
    if (!got || osp_numel(got) != n)
        return INFINITY;
    const float *g = osp_f32(got);
    double worst = 0, scale = 1;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(g[i] - want[i]);
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst / scale;
}

static const conv_case forward_cases[] = {
    /* 1-D: stride 2, pad 1, odd length */
    {1, 2, 3, 4, {1, 1, 11}, {1, 1, 3}, {1, 1, 2}, {0, 0, 1}, {1, 1, 1}, true},
    /* 1-D dilation 2, no padding, no bias */
    {1, 1, 2, 3, {1, 1, 13}, {1, 1, 4}, {1, 1, 1}, {0, 0, 0}, {1, 1, 2}, false},
    /* 2-D: mixed stride, pad and dilation per dim */
    {2, 2, 3, 5, {1, 9, 7}, {1, 3, 2}, {1, 2, 1}, {0, 1, 0}, {1, 1, 2}, true},
    /* 2-D AlexNet first layer shape class: 11x11 stride 4 pad 2 */
    {2, 1, 3, 4, {1, 23, 19}, {1, 11, 11}, {1, 4, 4}, {0, 2, 2}, {1, 1, 1}, true},
    /* 2-D dilated refiner conv: dilation = padding = 4 */
    {2, 1, 3, 2, {1, 10, 9}, {1, 3, 3}, {1, 1, 1}, {0, 4, 4}, {1, 4, 4}, true},
    /* 3-D causal-conv class: k3, pad (0, 1, 1) */
    {3, 1, 4, 3, {5, 6, 7}, {3, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, true},
    /* 3-D spatial downsample class: kernel (1, 3, 3), stride (1, 2, 2) */
    {3, 2, 3, 2, {3, 7, 8}, {1, 3, 3}, {1, 2, 2}, {0, 0, 0}, {1, 1, 1}, true},
    /* 3-D everything odd: stride (2, 1, 3), pad 2, dilation (2, 1, 2) */
    {3, 3, 2, 3, {7, 5, 9}, {2, 3, 3}, {2, 1, 3}, {2, 2, 2}, {2, 1, 2}, false},
    /* pointwise 3-D and 2-D (the direct-sgemm path) */
    {3, 2, 5, 6, {3, 4, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, true},
    {2, 3, 4, 1, {1, 6, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, false},
    /* 1x1 with stride / padding is not pointwise */
    {2, 1, 3, 2, {1, 7, 6}, {1, 1, 1}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, true},
    /* 64 channels x 27 taps over 5x30x30: several column blocks that start
     * and end inside output rows */
    {3, 1, 64, 4, {5, 30, 30}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, true},
};
#define N_FORWARD (sizeof forward_cases / sizeof forward_cases[0])

typedef struct conv_tensors {
    osp_tensor *x, *w, *b, *gy; /* gy: random, shaped like the conv's output */
    int64_t xs[5], ws[5], ys[5];
    int rank;
} conv_tensors;

static conv_tensors make_tensors(const conv_case *cc)
{
    conv_tensors t;
    int64_t out[3];
    out_dims(cc, out);
    t.rank = shape_of(cc, cc->n, cc->c, cc->in, t.xs);
    shape_of(cc, cc->o, cc->c, cc->k, t.ws);
    shape_of(cc, cc->n, cc->o, out, t.ys);
    t.x = test_random(t.rank, t.xs, -1, 1);
    t.w = test_random(t.rank, t.ws, -0.5f, 0.5f);
    t.b = cc->bias ? test_random(1, &cc->o, -1, 1) : NULL;
    t.gy = test_random(t.rank, t.ys, -1, 1);
    return t;
}

TEST(conv_matches_naive_double_loops)
{
    for (size_t i = 0; i < N_FORWARD; i++) {
        const conv_case *cc = &forward_cases[i];
        conv_tensors t = make_tensors(cc);
        osp_window win = window_of(cc);
        osp_tensor *y = osp_conv(t.x, t.w, t.b, &win);
        CHECK(y && y->ndim == t.rank);
        for (int d = 0; y && d < t.rank; d++)
            CHECK(y->shape[d] == t.ys[d]);
        int64_t ny = osp_numel(t.gy);
        double *want = malloc((size_t)ny * sizeof *want);
        ref_conv(cc, osp_f32(t.x), osp_f32(t.w), t.b ? osp_f32(t.b) : NULL, want);
        double e = scaled_error(y, want, ny);
        if (!(e <= 2e-6))
            printf("#   case %zu: scaled error %.3g\n", i, e);
        CHECK(e <= 2e-6);
        free(want);
    }
}

/* 3x3x3 stride-1 convs at least 16 channels wide take the Winograd path
 * (cpu_conv_winograd.c), forward and input gradient: every padding it
 * accepts, odd extents (partial 2x2x2 tiles), a single tile, several tile
 * blocks, long rows of tiles (loaded a row at a time); the forward also with OSP_CONV_WINOGRAD=0 (im2col) for
 * comparison. */
static const conv_case winograd_cases[] = {
    {3, 2, 16, 24, {5, 7, 9}, {3, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, true},
    {3, 1, 20, 16, {4, 6, 5}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, false},
    {3, 1, 16, 17, {6, 9, 10}, {3, 3, 3}, {1, 1, 1}, {2, 2, 2}, {1, 1, 1}, true},
    {3, 1, 16, 16, {3, 3, 3}, {3, 3, 3}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, true},
    {3, 1, 32, 32, {9, 34, 30}, {3, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, true},
    /* rows of 20 tiles: groups of 8 tiles in one row, at the borders too */
    {3, 2, 16, 16, {3, 5, 40}, {3, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, true},
    {3, 1, 16, 16, {4, 6, 37}, {3, 3, 3}, {1, 1, 1}, {2, 2, 2}, {1, 1, 1}, false},
    {3, 1, 16, 16, {3, 4, 42}, {3, 3, 3}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, true},
};

TEST(conv_winograd_matches_naive_double_loops)
{
    for (size_t i = 0; i < sizeof winograd_cases / sizeof *winograd_cases; i++) {
        const conv_case *cc = &winograd_cases[i];
        conv_tensors t = make_tensors(cc);
        osp_window win = window_of(cc);
        int64_t ny = osp_numel(t.gy);
        double *want = malloc((size_t)ny * sizeof *want);
        ref_conv(cc, osp_f32(t.x), osp_f32(t.w), t.b ? osp_f32(t.b) : NULL, want);
        double e[2];
        for (int im2col = 0; im2col < 2; im2col++) {
            if (im2col)
                setenv("OSP_CONV_WINOGRAD", "0", 1);
            e[im2col] = scaled_error(osp_conv(t.x, t.w, t.b, &win), want, ny);
            unsetenv("OSP_CONV_WINOGRAD");
        }
        printf("#   case %zu: scaled error winograd %.3g, im2col %.3g\n", i, e[0], e[1]);
        CHECK(e[0] <= 2e-6 && e[1] <= 2e-6);
        free(want);
        /* the input gradient takes the same path (flipped kernels) */
        int64_t nx = osp_numel(t.x);
        double *want_x = malloc((size_t)nx * sizeof *want_x);
        ref_conv_adjoint(cc, osp_f32(t.gy), osp_f32(t.w), NULL, want_x);
        double ex = scaled_error(osp_conv_backward_data(t.gy, t.w, NULL, &win, t.rank, t.xs),
                                 want_x, nx);
        printf("#   case %zu: input gradient scaled error %.3g\n", i, ex);
        CHECK(ex <= 2e-6);
        free(want_x);
    }
}

TEST(conv_backward_ops_match_naive_double_loops)
{
    for (size_t i = 0; i < N_FORWARD; i++) {
        const conv_case *cc = &forward_cases[i];
        conv_tensors t = make_tensors(cc);
        osp_window win = window_of(cc);
        int64_t nx = osp_numel(t.x), nw = osp_numel(t.w), ny = osp_numel(t.gy);
        double *want_x = malloc((size_t)nx * sizeof(double));
        double *want_w = malloc((size_t)nw * sizeof(double));
        double *want_b = calloc((size_t)cc->o, sizeof(double));
        ref_conv_adjoint(cc, osp_f32(t.gy), osp_f32(t.w), NULL, want_x);
        ref_conv_weight_grad(cc, osp_f32(t.gy), osp_f32(t.x), want_w);
        for (int64_t j = 0; j < ny; j++)
            want_b[j / (ny / (cc->n * cc->o)) % cc->o] += osp_f32(t.gy)[j];

        osp_tensor *gx = osp_conv_backward_data(t.gy, t.w, NULL, &win, t.rank, t.xs);
        osp_tensor *gw = NULL, *gb = NULL;
        CHECK(osp_conv_backward_weight(t.gy, t.x, &win, t.ws, &gw, &gb) == OSP_OK);
        double ex = scaled_error(gx, want_x, nx), ew = scaled_error(gw, want_w, nw);
        double eb = scaled_error(gb, want_b, cc->o);
        if (!(ex <= 2e-6 && ew <= 2e-6 && eb <= 2e-6))
            printf("#   case %zu: gx %.3g gw %.3g gbias %.3g\n", i, ex, ew, eb);
        CHECK(ex <= 2e-6 && ew <= 2e-6 && eb <= 2e-6);
        free(want_x);
        free(want_w);
        free(want_b);
    }
}

/* Transposed convolutions, written as the conv whose input shape they
 * produce: the transposed conv maps the conv's output shape back to
 * conv.in (with the output_padding that takes). */
static const conv_case transpose_cases[] = {
    /* PWC-Net upsampling: 4x4, stride 2, pad 1 doubles the size */
    {2, 2, 2, 5, {1, 12, 10}, {1, 4, 4}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, true},
    /* 1-D stride 2 with output_padding 1 (odd output length) */
    {1, 1, 3, 2, {1, 1, 10}, {1, 1, 3}, {1, 1, 2}, {0, 0, 1}, {1, 1, 1}, true},
    /* 3-D stride (1, 2, 2) */
    {3, 1, 2, 3, {3, 8, 6}, {2, 3, 3}, {1, 2, 2}, {0, 1, 0}, {1, 1, 1}, false},
    /* dilation 3 > stride 1: output_padding 2 reaches past the last tap */
    {1, 2, 2, 3, {1, 1, 9}, {1, 1, 3}, {1, 1, 1}, {0, 0, 1}, {1, 1, 3}, true},
};
#define N_TRANSPOSE (sizeof transpose_cases / sizeof transpose_cases[0])

/* output_padding that makes the transposed conv of the conv's output come
 * back to conv.in. */
static void output_padding_of(const conv_case *cc, int64_t *op)
{
    for (int i = 0; i < cc->nsp; i++) {
        int j = 3 - cc->nsp + i;
        int64_t base = (conv_out(cc, j) - 1) * cc->s[j] - 2 * cc->p[j] +
                       cc->d[j] * (cc->k[j] - 1) + 1;
        op[i] = cc->in[j] - base;
    }
}

TEST(conv_transpose_matches_scatter_definition)
{
    for (size_t i = 0; i < N_TRANSPOSE; i++) {
        const conv_case *cc = &transpose_cases[i];
        conv_tensors t = make_tensors(cc); /* gy = the transposed conv's input */
        osp_window win = window_of(cc);
        int64_t op[3];
        output_padding_of(cc, op);
        /* The transposed conv's weight [C_in = O, C_out = C, *K] is the
         * conv's w; its bias has C entries. */
        osp_tensor *b = cc->bias ? test_random(1, &cc->c, -1, 1) : NULL;
        osp_tensor *y = osp_conv_transpose(t.gy, t.w, b, &win, op);
        CHECK(y && y->ndim == t.rank);
        for (int d = 0; y && d < t.rank; d++)
            CHECK(y->shape[d] == t.xs[d]);
        int64_t nx = osp_numel(t.x);
        double *want = malloc((size_t)nx * sizeof *want);
        ref_conv_adjoint(cc, osp_f32(t.gy), osp_f32(t.w), b ? osp_f32(b) : NULL, want);
        double e = scaled_error(y, want, nx);
        if (!(e <= 2e-6))
            printf("#   case %zu: scaled error %.3g\n", i, e);
        CHECK(e <= 2e-6);
        free(want);
    }
}

TEST(conv_transpose_pwc_exact_values)
{
    /* One input pixel 1 at (1, 1) of a 3x3 map, w = 1..16 (4x4), stride 2,
     * pad 1: out[Y][X] = w[Y - 2·1 + 1][X - 2·1 + 1] where in range. */
    int64_t xs[] = {1, 1, 3, 3}, ws[] = {1, 1, 4, 4}, one = 1;
    float xv[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0}, wv[16], bv = 0.5f;
    for (int i = 0; i < 16; i++)
        wv[i] = (float)(i + 1);
    osp_tensor *x = osp_tensor_from_data(OSP_F32, 4, xs, xv);
    osp_tensor *w = osp_tensor_from_data(OSP_F32, 4, ws, wv);
    osp_tensor *b = osp_tensor_from_data(OSP_F32, 1, &one, &bv);
    osp_window win = osp_window_default(2);
    win.stride[0] = win.stride[1] = 2;
    win.pad[0] = win.pad[1] = 1;
    osp_tensor *y = osp_conv_transpose(x, w, b, &win, NULL);
    CHECK(y && y->shape[2] == 6 && y->shape[3] == 6);
    if (!y)
        return;
    for (int Y = 0; Y < 6; Y++)
        for (int X = 0; X < 6; X++) {
            int ky = Y - 1, kx = X - 1;
            float want = 0.5f + (ky >= 0 && ky < 4 && kx >= 0 && kx < 4 ? wv[ky * 4 + kx] : 0);
            CHECK(osp_f32(y)[Y * 6 + X] == want);
        }
}

TEST(causal_conv3d_from_replicate_pad_and_conv)
{
    /* CausalConv3d (spec causalvae §3.1): frames 0,0 prepended, then k3 p1:
     * output frame t sees frames max(t-2+a, 0) for a = 0..2. */
    int64_t xs[] = {1, 2, 4, 5, 5}, ws[] = {3, 2, 3, 3, 3}, o = 3;
    osp_tensor *x = test_random(5, xs, -1, 1), *w = test_random(5, ws, -1, 1);
    osp_tensor *b = test_random(1, &o, -1, 1);
    int64_t before[5] = {0, 0, 2, 0, 0}, after[5] = {0};
    osp_window win = osp_window_default(3);
    win.pad[1] = win.pad[2] = 1;
    osp_tensor *y = osp_conv(osp_pad(x, before, after, OSP_PAD_REPLICATE, 0), w, b, &win);
    CHECK(y && y->shape[2] == 4 && y->shape[3] == 5 && y->shape[4] == 5);
    if (!y)
        return;
    const float *px = osp_f32(x), *pw = osp_f32(w), *pb = osp_f32(b);
    double worst = 0;
    for (int oc = 0; oc < 3; oc++)
        for (int t = 0; t < 4; t++)
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 5; j++) {
                    double acc = pb[oc];
                    for (int c = 0; c < 2; c++)
                        for (int a = 0; a < 3; a++)
                            for (int u = 0; u < 3; u++)
                                for (int v = 0; v < 3; v++) {
                                    int ft = t - 2 + a < 0 ? 0 : t - 2 + a;
                                    int ii = i - 1 + u, jj = j - 1 + v;
                                    if (ii < 0 || ii >= 5 || jj < 0 || jj >= 5)
                                        continue;
                                    acc += (double)pw[(((oc * 2 + c) * 3 + a) * 3 + u) * 3 + v] *
                                           px[((c * 4 + ft) * 5 + ii) * 5 + jj];
                                }
                    double got = osp_f32(y)[((oc * 4 + t) * 5 + i) * 5 + j];
                    worst = fmax(worst, fabs(got - acc));
                }
    CHECK(worst <= 1e-5);
}

TEST(conv_widens_bf16_weights)
{
    int64_t xs[] = {1, 3, 6, 6}, ws[] = {2, 3, 3, 3};
    osp_tensor *x = test_random(4, xs, -1, 1), *w32 = test_random(4, ws, -1, 1);
    uint16_t bits[54];
    for (int i = 0; i < 54; i++) {
        bits[i] = osp_f32_to_bf16(osp_f32(w32)[i]);
        osp_f32(w32)[i] = osp_bf16_to_f32(bits[i]);
    }
    osp_tensor *w16 = osp_tensor_from_data(OSP_BF16, 4, ws, bits);
    osp_window win = osp_window_default(2);
    win.pad[0] = win.pad[1] = 1;
    osp_tensor *a = osp_conv(x, w16, NULL, &win), *b = osp_conv(x, w32, NULL, &win);
    CHECK(a && b && a->dtype == OSP_F32 && test_max_abs_diff(a, b) == 0);
}

/* Expects NULL and an error message. */
#define CHECK_REJECTS(expr)                                     \
    do {                                                        \
        osp_error_clear();                                      \
        CHECK((expr) == NULL);                                  \
        CHECK(osp_error_code() != OSP_OK && *osp_error_message()); \
    } while (0)

TEST(conv_rejects_inconsistent_shapes)
{
    int64_t xs[] = {1, 3, 8, 8}, ws[] = {4, 3, 3, 3}, wbad[] = {4, 2, 3, 3}, big[] = {4, 3, 9, 9};
    int64_t x1[] = {2, 8}, four = 4, three = 3;
    osp_tensor *x = test_random(4, xs, -1, 1), *w = test_random(4, ws, -1, 1);
    osp_tensor *wc = test_random(4, wbad, -1, 1), *wk = test_random(4, big, -1, 1);
    osp_tensor *b3 = test_random(1, &three, -1, 1), *b4 = test_random(1, &four, -1, 1);
    osp_tensor *x2d = test_random(2, x1, -1, 1);
    osp_window win = osp_window_default(2);
    CHECK(osp_conv(x, w, b4, &win) != NULL);
    CHECK_REJECTS(osp_conv(x, wc, NULL, &win));           /* channel mismatch */
    CHECK_REJECTS(osp_conv(x, wk, NULL, &win));           /* kernel > input */
    CHECK_REJECTS(osp_conv(x, w, b3, &win));              /* bias length */
    CHECK_REJECTS(osp_conv(x2d, w, NULL, &win));          /* rank 2 */
    CHECK_REJECTS(osp_conv(x, w, NULL, NULL));            /* no window */
    osp_window bad = win;
    bad.nsp = 3;
    CHECK_REJECTS(osp_conv(x, w, NULL, &bad));            /* nsp vs rank */
    bad = win;
    bad.stride[1] = 0;
    CHECK_REJECTS(osp_conv(x, w, NULL, &bad));
    bad = win;
    bad.pad[0] = -1;
    CHECK_REJECTS(osp_conv(x, w, NULL, &bad));
    bad = win;
    bad.dilation[0] = 0;
    CHECK_REJECTS(osp_conv(x, w, NULL, &bad));
    bad = win;
    bad.dilation[0] = 4; /* dilated extent 9 > 8 */
    CHECK_REJECTS(osp_conv(x, w, NULL, &bad));
    int64_t ids_shape[] = {1, 3, 8, 8};
    osp_tensor *ints = osp_tensor_zeros(OSP_I32, 4, ids_shape, OSP_DEVICE_CPU);
    CHECK_REJECTS(osp_conv(ints, w, NULL, &win));         /* integer input */
    osp_error_clear();
    CHECK(osp_conv(NULL, w, NULL, &win) == NULL && osp_error_code() == OSP_OK);

    /* transposed: x [1, 4, 8, 8] by w [4, 3, 3, 3] */
    osp_tensor *xt = test_random(4, (int64_t[]){1, 4, 8, 8}, -1, 1);
    osp_window s2 = win;
    s2.stride[0] = s2.stride[1] = 2;
    CHECK(osp_conv_transpose(xt, w, b3, &s2, (int64_t[]){1, 1}) != NULL);
    CHECK_REJECTS(osp_conv_transpose(xt, w, b3, &s2, (int64_t[]){2, 0})); /* >= stride */
    CHECK_REJECTS(osp_conv_transpose(xt, w, b3, &s2, (int64_t[]){-1, 0}));
    CHECK_REJECTS(osp_conv_transpose(xt, w, b4, &s2, NULL));            /* bias is C_out */
    CHECK_REJECTS(osp_conv_transpose(x, w, NULL, &s2, NULL));           /* x has 3 != 4 ch */

    /* backward ops: x shape inconsistent with gy */
    osp_tensor *gy = osp_conv(x, w, NULL, &win);
    CHECK_REJECTS(osp_conv_backward_data(gy, w, NULL, &win, 4, (int64_t[]){1, 3, 11, 8}));
    osp_tensor *gw = NULL;
    osp_error_clear();
    CHECK(osp_conv_backward_weight(gy, x, &win, (int64_t[]){4, 3, 2, 3}, &gw, NULL) != OSP_OK);
    CHECK(gw == NULL);
}

/* ---- gradients ---- */

typedef struct grad_ctx {
    osp_window win;
    bool has_bias, transpose;
    int64_t output_padding[3];
} grad_ctx;

static osp_tensor *apply_conv(osp_tensor *const *in, void *p)
{
    grad_ctx *c = p;
    osp_tensor *b = c->has_bias ? in[2] : NULL;
    return c->transpose ? osp_conv_transpose(in[0], in[1], b, &c->win, c->output_padding)
                        : osp_conv(in[0], in[1], b, &c->win);
}

static const conv_case grad_cases[] = {
    {1, 2, 2, 3, {1, 1, 9}, {1, 1, 3}, {1, 1, 2}, {0, 0, 1}, {1, 1, 1}, true},
    {2, 1, 2, 3, {1, 6, 5}, {1, 3, 2}, {1, 2, 1}, {0, 1, 1}, {1, 1, 2}, true},
    {3, 1, 2, 2, {3, 4, 5}, {2, 3, 3}, {1, 1, 2}, {0, 1, 1}, {2, 1, 1}, true},
    {3, 2, 3, 2, {2, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, false}, /* pointwise */
};

TEST(conv_gradients_match_finite_differences)
{
    for (size_t i = 0; i < sizeof grad_cases / sizeof grad_cases[0]; i++) {
        const conv_case *cc = &grad_cases[i];
        conv_tensors t = make_tensors(cc);
        grad_ctx ctx = {.win = window_of(cc), .has_bias = cc->bias};
        osp_tensor *in[3] = {osp_requires_grad(t.x), osp_requires_grad(t.w),
                             osp_requires_grad(t.b)};
        char label[64];
        snprintf(label, sizeof label, "conv case %zu", i);
        CHECK(gradcheck(label, apply_conv, cc->bias ? 3 : 2, in, &ctx, NULL));
        /* Only the bias (the path without backward-weight). */
        if (cc->bias) {
            t.x->requires_grad = t.w->requires_grad = false;
            CHECK(gradcheck(label, apply_conv, 3, in, &ctx, NULL));
        }
    }
}

TEST(conv_transpose_gradients_match_finite_differences)
{
    static const conv_case cases[] = {
        {2, 1, 2, 3, {1, 6, 6}, {1, 4, 4}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, true},
        {1, 2, 2, 3, {1, 1, 9}, {1, 1, 3}, {1, 1, 1}, {0, 0, 1}, {1, 1, 3}, true},
        {3, 1, 2, 2, {2, 5, 4}, {1, 3, 2}, {1, 2, 2}, {0, 1, 0}, {1, 1, 1}, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *cc = &cases[i];
        conv_tensors t = make_tensors(cc);
        grad_ctx ctx = {.win = window_of(cc), .has_bias = cc->bias, .transpose = true};
        output_padding_of(cc, ctx.output_padding);
        osp_tensor *b = cc->bias ? test_random(1, &cc->c, -1, 1) : NULL;
        osp_tensor *in[3] = {osp_requires_grad(t.gy), osp_requires_grad(t.w),
                             osp_requires_grad(b)};
        char label[64];
        snprintf(label, sizeof label, "conv_transpose case %zu", i);
        CHECK(gradcheck(label, apply_conv, cc->bias ? 3 : 2, in, &ctx, NULL));
    }
}

int main(void)
{
    RUN(conv_matches_naive_double_loops);
    RUN(conv_winograd_matches_naive_double_loops);
    RUN(conv_backward_ops_match_naive_double_loops);
    RUN(conv_transpose_matches_scatter_definition);
    RUN(conv_transpose_pwc_exact_values);
    RUN(causal_conv3d_from_replicate_pad_and_conv);
    RUN(conv_widens_bf16_weights);
    RUN(conv_rejects_inconsistent_shapes);
    RUN(conv_gradients_match_finite_differences);
    RUN(conv_transpose_gradients_match_finite_differences);
    return test_summary();
}
