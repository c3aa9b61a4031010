/* test_metrics.c — osp-eval's metrics against ../shared/fixtures/eval
 * (produced by Open-Sora-Plan v1.0.0's own functions), with the README's
 * tolerances: the single ops (resize, correlation, backwarp, flow-weighted
 * mean, preprocessing), PSNR, SSIM, LPIPS (and its per-layer shares),
 * PWC-Net flows, FloLPIPS, the edge cases, and the reduction to per-frame
 * means and final scores (including the batch_size quirk). Each check
 * prints the error it achieved as a TAP comment. */
#include "backend/ops.h"
#include "fixture.h"
#include "io/safetensors.h"
#include "metrics/eval_input.h"
#include "metrics/eval_reduce.h"
#include "metrics/flolpips.h"
#include "metrics/metrics.h"
#include "test.h"
#include "train/tape.h"

#include <stdlib.h>
#include <string.h>

#define EVAL "eval/"

/* ---- fixture access ---- */

/* Tensor `name` of eval/<file> in float64 (exact for the f64 expected
 * values), pool-owned; NULL + a TAP comment when missing. */
static osp_tensor *expected(const char *file, const char *name)
{
    osp_safetensors *st = osp_safetensors_open(fixture_path(file));
    osp_tensor *t = st ? osp_tensor_to_dtype(osp_safetensors_get(st, name), OSP_F64) : NULL;
    osp_safetensors_close(st);
    if (!t)
        printf("#   fixture %s:%s: %s\n", file, name, osp_error_message());
    return t;
}

static const double *f64(const osp_tensor *t) { return (const double *)osp_data(t); }

/* The fixture videos: `real` or `generated` u8 [B, T, H, W, 3]. */
static osp_tensor *videos(const char *name)
{
    osp_safetensors *st = osp_safetensors_open(fixture_path(EVAL "videos.safetensors"));
    osp_tensor *t = st ? osp_tensor_contiguous(osp_safetensors_get(st, name)) : NULL;
    osp_safetensors_close(st);
    return t;
}

/* Video b of a fixture video tensor as [T, 3, H, W] u8 frames (what
 * osp-eval scores PSNR and SSIM on; osp_eval_frames_f32 gives the values). */
static osp_tensor *video_frames(const osp_tensor *v, int64_t b)
{
    int64_t T = v->shape[1], H = v->shape[2], W = v->shape[3], idx[64];
    for (int64_t t = 0; t < T; t++)
        idx[t] = t;
    const uint8_t *rgb = (const uint8_t *)osp_data(v) + b * T * H * W * 3;
    return osp_eval_frames_from_rgb(rgb, H, W, idx, T);
}

/* ---- comparisons (README tolerances) ---- */

typedef enum { TOL_ABS, TOL_REL, TOL_REL_OR_SMALL_ABS } tol_kind;

/* got[i] vs want[i] for n values; NaN must match NaN. Prints the worst
 * error (absolute or relative, as the kind measures it). */
static bool close_values(const char *label, const double *got, const double *want, int64_t n,
                         tol_kind kind, double tol)
{
    double worst = 0;
    bool ok = true;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(want[i]) || isnan(got[i])) {
            if (isnan(want[i]) != isnan(got[i])) {
                printf("#   %s[%lld]: got %.9g, want %.9g\n", label, (long long)i, got[i],
                       want[i]);
                ok = false;
            }
            continue;
        }
        double d = fabs(got[i] - want[i]);
        bool rel = kind == TOL_REL || (kind == TOL_REL_OR_SMALL_ABS && fabs(want[i]) >= 1e-2);
        double err = rel ? d / fabs(want[i]) : d;
        double bound = kind == TOL_REL_OR_SMALL_ABS && !rel ? 1e-6 : tol;
        if (err > bound) {
            printf("#   %s[%lld]: got %.9g, want %.9g (error %.3g > %.3g)\n", label,
                   (long long)i, got[i], want[i], err, bound);
            ok = false;
        }
        worst = fmax(worst, err);
    }
    printf("#   %s: worst %s error %.3g over %lld values\n", label,
           kind == TOL_ABS ? "abs" : "rel", worst, (long long)n);
    return ok;
}

/* A float tensor (any device/dtype) against an expected tensor. */
static bool close_tensor(const char *label, osp_tensor *got, const osp_tensor *want,
                         tol_kind kind, double tol)
{
    if (!got || !want) {
        printf("#   %s: missing result (%s)\n", label, osp_error_message());
        return false;
    }
    if (osp_numel(got) != osp_numel(want)) {
        char a[96], b[96];
        printf("#   %s: shape %s, expected %s\n", label, osp_shape_str(got, a, sizeof a),
               osp_shape_str(want, b, sizeof b));
        return false;
    }
    osp_tensor *g = osp_tensor_to_dtype(osp_to_device(got, OSP_DEVICE_CPU), OSP_F64);
    return g && close_values(label, f64(g), f64(want), osp_numel(want), kind, tol);
}

/* ---- single ops ---- */

TEST(bilinear_resize_matches_fixture)
{
    osp_tensor *in = fixture_tensor(EVAL "ops.safetensors", "resize_in");
    osp_tensor *in2 = fixture_tensor(EVAL "ops.safetensors", "resize2_in");
    osp_tensor *up = osp_interpolate(in, 2, (int64_t[]){17, 30}, OSP_INTERP_LINEAR, false);
    osp_tensor *down = osp_interpolate(in2, 2, (int64_t[]){6, 10}, OSP_INTERP_LINEAR, false);
    CHECK(close_tensor("resize_up_17x30", up, expected(EVAL "ops.safetensors", "resize_up_17x30"),
                       TOL_ABS, 1e-5));
    CHECK(close_tensor("resize2_down_6x10", down,
                       expected(EVAL "ops.safetensors", "resize2_down_6x10"), TOL_ABS, 1e-5));
}

TEST(correlation_matches_fixture)
{
    osp_tensor *a = fixture_tensor(EVAL "ops.safetensors", "corr_first");
    osp_tensor *b = fixture_tensor(EVAL "ops.safetensors", "corr_second");
    CHECK(close_tensor("corr_out", osp_correlation(a, b, 4),
                       expected(EVAL "ops.safetensors", "corr_out"), TOL_ABS, 1e-5));
}

TEST(backwarp_matches_fixture)
{
    osp_tensor *x = fixture_tensor(EVAL "ops.safetensors", "warp_input");
    osp_tensor *flow = fixture_tensor(EVAL "ops.safetensors", "warp_flow");
    CHECK(close_tensor("warp_out", osp_pwcnet_backwarp(x, flow),
                       expected(EVAL "ops.safetensors", "warp_out"), TOL_ABS, 1e-5));
}

TEST(flow_weighted_mean_matches_fixture)
{
    osp_tensor *map = fixture_tensor(EVAL "ops.safetensors", "mw_lin_map");
    osp_tensor *flow = fixture_tensor(EVAL "ops.safetensors", "mw_flow");
    CHECK(close_tensor("mw_out", osp_flolpips_weighted_mean(map, flow),
                       expected(EVAL "ops.safetensors", "mw_out"), TOL_REL, 1e-5));
}

TEST(preprocessing_matches_fixture)
{
    /* info.json preprocess_cases: (res, crop) = (24, 20) and (16, 16) */
    static const int64_t res[2] = {24, 16}, crop[2] = {20, 16};
    for (int i = 0; i < 2; i++) {
        char in_name[32], out_name[32];
        snprintf(in_name, sizeof in_name, "pre%d_in_u8_THWC", i);
        snprintf(out_name, sizeof out_name, "pre%d_out", i);
        osp_safetensors *st = osp_safetensors_open(fixture_path(EVAL "ops.safetensors"));
        osp_tensor *u8 = st ? osp_tensor_contiguous(osp_safetensors_get(st, in_name)) : NULL;
        osp_safetensors_close(st);
        CHECK(u8 != NULL);
        if (!u8)
            continue;
        int64_t T = u8->shape[0], idx[2] = {0, 1};
        osp_tensor *frames = osp_eval_frames_from_rgb(osp_data(u8), u8->shape[1], u8->shape[2],
                                                      idx, T);
        osp_tensor *got =
            osp_eval_frames_f32(osp_eval_resize_crop(frames, res[i], crop[i], crop[i]));
        CHECK(close_tensor(out_name, got, expected(EVAL "ops.safetensors", out_name), TOL_ABS,
                           1e-5));
    }
}

static bool indices_are(int64_t total, int64_t n, int64_t r, const int64_t *want, int64_t count)
{
    int64_t idx[128];
    int64_t got = osp_eval_frame_indices(total, n, r, idx);
    if (got != count) {
        printf("#   (%lld, %lld, %lld): %lld indices, want %lld\n", (long long)total,
               (long long)n, (long long)r, (long long)got, (long long)count);
        return false;
    }
    for (int64_t i = 0; i < count; i++)
        if (idx[i] != want[i]) {
            printf("#   (%lld, %lld, %lld): index %lld is %lld, want %lld\n", (long long)total,
                   (long long)n, (long long)r, (long long)i, (long long)idx[i],
                   (long long)want[i]);
            return false;
        }
    return true;
}

/* eval.md 1.2 step 2's examples. */
TEST(frame_indices_follow_the_reference_rule)
{
    int64_t want[32];
    for (int i = 0; i < 16; i++)
        want[i] = 2 * i;
    want[16] = 33;
    CHECK(indices_are(100, 17, 2, want, 17));
    /* 40 frames < 17*3: trunc(40/51*17) = 13 over 0..39, step 39/12 */
    const int64_t short_clip[13] = {0, 3, 6, 9, 13, 16, 19, 22, 26, 29, 32, 35, 39};
    CHECK(indices_are(40, 17, 3, short_clip, 13));
    /* 15/22*22 is 14.999... in double: one frame lost */
    int64_t fourteen[14];
    for (int i = 0; i < 14; i++)
        fourteen[i] = i == 13 ? 14 : (int64_t)(i * (14.0 / 13.0));
    CHECK(indices_are(15, 22, 1, fourteen, 14));
    for (int i = 0; i < 17; i++)
        want[i] = i;
    CHECK(indices_are(17, 17, 1, want, 17));
    CHECK(indices_are(17, 0, 1, want, 17)); /* n = 0: every frame */
    const int64_t every_third[3] = {0, 3, 6};
    CHECK(indices_are(8, 0, 3, every_third, 3));
    const int64_t first[1] = {0};
    CHECK(indices_are(1, 1, 1, first, 1));
    CHECK(indices_are(1, 17, 2, first, 0)); /* trunc(1/34*17) = 0: nothing fits */
}

/* ---- the metrics on the fixture videos ---- */

typedef struct scores {
    int64_t B, T;
    double psnr[8][8], ssim[8][8], lpips[8][8], layers[8][8][OSP_LPIPS_TAPS], flolpips[8][8];
} scores;

static osp_lpips *load_lpips(void)
{
    return osp_lpips_load(fixture_path(EVAL "lpips_alex_tiny.safetensors"), OSP_DEVICE_CPU);
}

static osp_pwcnet *load_pwc(void)
{
    return osp_pwcnet_load(fixture_path(EVAL "pwcnet_tiny.safetensors"), OSP_DEVICE_CPU);
}

/* Scores every fixture video once (the networks are the slow part). */
static const scores *fixture_scores(void)
{
    static scores s;
    static int state; /* 0 not tried, 1 ok, -1 failed */
    if (state)
        return state > 0 ? &s : NULL;
    state = -1;
    osp_lpips *lp = load_lpips();
    osp_pwcnet *pwc = load_pwc();
    osp_pool_push();
    osp_tensor *real = videos("real"), *gen = videos("generated");
    if (lp && pwc && real && gen) {
        s.B = real->shape[0];
        s.T = real->shape[1];
        osp_status st = OSP_OK;
        for (int64_t b = 0; b < s.B && !st; b++) {
            osp_tensor *x8 = video_frames(real, b), *y8 = video_frames(gen, b);
            osp_tensor *x = osp_eval_frames_f32(x8), *y = osp_eval_frames_f32(y8);
            st = osp_psnr(x8, y8, s.psnr[b]);
            if (!st)
                st = osp_ssim(x8, y8, s.ssim[b]);
            if (!st)
                st = osp_lpips_frames(lp, x, y, s.lpips[b], &s.layers[b][0][0]);
            if (!st)
                st = osp_flolpips(lp, pwc, x, y, s.flolpips[b]);
        }
        state = st ? -1 : 1;
    }
    if (state < 0)
        printf("#   scoring the fixture videos failed: %s\n", osp_error_message());
    osp_pool_pop();
    osp_lpips_free(lp);
    osp_pwcnet_free(pwc);
    return state > 0 ? &s : NULL;
}

/* One metric's [B, T'] values in a flat array. */
static void flatten(const scores *s, const double (*m)[8], int64_t cols, double *out)
{
    for (int64_t b = 0; b < s->B; b++)
        for (int64_t t = 0; t < cols; t++)
            out[b * cols + t] = m[b][t];
}

static bool metric_matches(const char *name, const double (*m)[8], int64_t cols, tol_kind kind,
                           double tol)
{
    const scores *s = fixture_scores();
    osp_tensor *want = expected(EVAL "expected_metrics.safetensors", name);
    if (!s || !want || osp_numel(want) != s->B * cols)
        return false;
    double got[64];
    flatten(s, m, cols, got);
    return close_values(name, got, f64(want), s->B * cols, kind, tol);
}

TEST(psnr_matches_fixture)
{
    const scores *s = fixture_scores();
    CHECK(s && metric_matches("psnr", s->psnr, s->T, TOL_ABS, 1e-4));
    /* the identical video scores the sentinel exactly */
    CHECK(s && s->psnr[2][0] == OSP_PSNR_SENTINEL);
}

TEST(ssim_matches_fixture)
{
    const scores *s = fixture_scores();
    CHECK(s && metric_matches("ssim", s->ssim, s->T, TOL_ABS, 1e-7));
    CHECK(s && s->ssim[2][0] == 1.0); /* identical frames: exactly 1 */
}

/* u8 frames and their float32 values: the same SSIM to the bit (it reads
 * the same doubles); PSNR within 1e-5 dB (u8 planes are summed exactly in
 * integers, float32 ones as the reference's float32 squares). */
TEST(u8_and_float32_frames_score_alike)
{
    osp_tensor *real = videos("real"), *gen = videos("generated");
    CHECK(real && gen);
    double worst = 0;
    for (int64_t b = 0; real && gen && b < real->shape[0]; b++) {
        osp_tensor *x8 = video_frames(real, b), *y8 = video_frames(gen, b);
        osp_tensor *x = osp_eval_frames_f32(x8), *y = osp_eval_frames_f32(y8);
        double p8[8], p[8], s8[8], s[8];
        CHECK(osp_psnr(x8, y8, p8) == OSP_OK && osp_psnr(x, y, p) == OSP_OK);
        CHECK(osp_ssim(x8, y8, s8) == OSP_OK && osp_ssim(x, y, s) == OSP_OK);
        for (int64_t t = 0; t < real->shape[1]; t++) {
            worst = fmax(worst, fabs(p8[t] - p[t]));
            CHECK(s8[t] == s[t]);
        }
    }
    printf("#   psnr u8 vs float32: worst abs difference %.3g dB\n", worst);
    CHECK(worst <= 1e-5);
}

/* u8 stream frames are a view when every frame of the clip is scored
 * (frames and channels strided; PSNR and SSIM score it as its contiguous
 * copy), and a copy of the chosen frames otherwise, so that a few frames of
 * a long clip do not keep the whole stream in memory. */
TEST(u8_frames_are_a_view_of_whole_clips_only)
{
    enum { T = 5, H = 16, W = 16 };
    osp_tensor *video = osp_tensor_new(OSP_U8, 5, (int64_t[]){2, 3, T, H, W}, OSP_DEVICE_CPU);
    uint8_t *px = osp_data(video);
    for (int64_t i = 0; i < osp_numel(video); i++)
        px[i] = (uint8_t)(test_u32() >> 24);
    static const int64_t all[T] = {0, 1, 2, 3, 4};
    osp_tensor *x = osp_eval_frames_from_video(video, 0, all, T);
    osp_tensor *y = osp_eval_frames_from_video(video, 1, all, T);
    CHECK(x && y && !osp_is_contiguous(x) && osp_data(x) == osp_data(video));
    if (x && y) {
        osp_tensor *xc = osp_tensor_contiguous(x), *yc = osp_tensor_contiguous(y);
        double p[T], pc[T], s[T], sc[T];
        CHECK(osp_psnr(x, y, p) == OSP_OK && osp_psnr(xc, yc, pc) == OSP_OK);
        CHECK(osp_ssim(x, y, s) == OSP_OK && osp_ssim(xc, yc, sc) == OSP_OK);
        for (int t = 0; t < T; t++)
            CHECK(p[t] == pc[t] && s[t] == sc[t]);
    }
    static const int64_t some[2][3] = {{1, 2, 3}, {0, 2, 4}};
    for (int k = 0; k < 2; k++) {
        osp_tensor *f = osp_eval_frames_from_video(video, 1, some[k], 3);
        CHECK(f && osp_is_contiguous(f));
        for (int64_t t = 0; f && t < 3; t++)
            for (int64_t c = 0; c < 3; c++)
                CHECK(memcmp((const uint8_t *)osp_data(f) + (t * 3 + c) * H * W,
                             px + ((3 + c) * T + some[k][t]) * H * W, H * W) == 0);
    }
}

/* Frames with no pixels are bad data, u8 or float32, H or W 0. */
TEST(empty_frames_are_refused)
{
    static const int64_t idx[1] = {0};
    static const int64_t shapes[2][5] = {{1, 3, 1, 0, 16}, {1, 3, 1, 16, 0}};
    for (int k = 0; k < 4; k++) {
        osp_dtype dt = k < 2 ? OSP_U8 : OSP_F32;
        osp_tensor *v = osp_tensor_new(dt, 5, shapes[k % 2], OSP_DEVICE_CPU);
        osp_error_clear();
        CHECK(v && osp_eval_frames_from_video(v, 0, idx, 1) == NULL);
        CHECK(osp_error_code() == OSP_ERR_DATA && strstr(osp_error_message(), "empty"));
    }
}

/* SSIM of one plane pair by its definition: every 11x11 window of the
 * valid region weighted by the normalised Gaussian (sigma 1.5) directly,
 * population statistics, in double. */
static double naive_ssim_plane(const float *a, const float *b, int64_t H, int64_t W)
{
    double g[11], gsum = 0;
    for (int i = 0; i < 11; i++)
        gsum += g[i] = exp(-(double)((i - 5) * (i - 5)) / (2 * 1.5 * 1.5));
    double sum = 0;
    for (int64_t i = 0; i + 11 <= H; i++)
        for (int64_t j = 0; j + 11 <= W; j++) {
            double ma = 0, mb = 0, aa = 0, bb = 0, ab = 0;
            for (int u = 0; u < 11; u++)
                for (int v = 0; v < 11; v++) {
                    double w = g[u] / gsum * (g[v] / gsum);
                    double x = a[(i + u) * W + j + v], y = b[(i + u) * W + j + v];
                    ma += w * x, mb += w * y, aa += w * x * x, bb += w * y * y, ab += w * x * y;
                }
            double saa = aa - ma * ma, sbb = bb - mb * mb, sab = ab - ma * mb;
            const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;
            sum += (2 * ma * mb + C1) * (2 * sab + C2) /
                   ((ma * ma + mb * mb + C1) * (saa + sbb + C2));
        }
    return sum / (double)((H - 10) * (W - 10));
}

/* The strip kernel (64 output columns a strip, 4 rows at a time) against
 * the definition, on sizes around the strip and row-block edges, u8 and
 * float32 (the fixtures' 48x64 frames fit one strip). */
TEST(ssim_strips_match_the_definition)
{
    static const int64_t sizes[][2] = {{11, 11}, {12, 74}, {14, 75}, {15, 138}, {23, 139},
                                       {11, 200}};
    double worst = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int64_t H = sizes[k][0], W = sizes[k][1], shape[4] = {1, 3, H, W};
        osp_tensor *a8 = osp_tensor_new(OSP_U8, 4, shape, OSP_DEVICE_CPU);
        osp_tensor *b8 = osp_tensor_new(OSP_U8, 4, shape, OSP_DEVICE_CPU);
        CHECK(a8 && b8);
        if (!a8 || !b8)
            continue;
        uint8_t *pa = osp_data(a8), *pb = osp_data(b8);
        for (int64_t i = 0; i < osp_numel(a8); i++) {
            pa[i] = (uint8_t)(test_u32() >> 24);
            pb[i] = (uint8_t)(pa[i] / 2 + (test_u32() >> 25)); /* correlated */
        }
        osp_tensor *a = osp_eval_frames_f32(a8), *b = osp_eval_frames_f32(b8);
        double want = 0, got8, got;
        for (int c = 0; c < 3; c++)
            want += naive_ssim_plane(osp_f32(a) + c * H * W, osp_f32(b) + c * H * W, H, W) / 3;
        CHECK(osp_ssim(a8, b8, &got8) == OSP_OK && osp_ssim(a, b, &got) == OSP_OK);
        CHECK(got8 == got);
        worst = fmax(worst, fabs(got - want));
    }
    printf("#   ssim strips vs the definition: worst abs difference %.3g\n", worst);
    CHECK(worst <= 1e-12);
}

TEST(lpips_matches_fixture)
{
    const scores *s = fixture_scores();
    CHECK(s && metric_matches("lpips", s->lpips, s->T, TOL_REL_OR_SMALL_ABS, 1e-4));
    CHECK(s && s->lpips[2][0] == 0.0); /* identical frames: exactly 0 */
    osp_tensor *want = expected(EVAL "expected_metrics.safetensors", "lpips_layers");
    double got[8 * 8 * OSP_LPIPS_TAPS];
    for (int64_t b = 0; s && b < s->B; b++)
        memcpy(got + b * s->T * OSP_LPIPS_TAPS, s->layers[b], sizeof s->layers[b][0] * s->T);
    CHECK(s && want && osp_numel(want) == s->B * s->T * OSP_LPIPS_TAPS &&
          close_values("lpips_layers", got, f64(want), osp_numel(want), TOL_REL_OR_SMALL_ABS,
                       1e-4));
}

TEST(flows_match_fixture)
{
    osp_pwcnet *pwc = load_pwc();
    osp_tensor *real = videos("real"), *gen = videos("generated");
    CHECK(pwc && real && gen);
    if (!pwc || !real || !gen) {
        osp_pwcnet_free(pwc);
        return;
    }
    const char *names[2] = {"flow_real", "flow_generated"};
    for (int side = 0; side < 2; side++) {
        osp_tensor *want = expected(EVAL "expected_flows.safetensors", names[side]);
        int64_t B = real->shape[0], T = real->shape[1];
        osp_tensor *flows[8];
        for (int64_t b = 0; b < B; b++) {
            osp_tensor *v = osp_eval_frames_f32(video_frames(side ? gen : real, b));
            flows[b] =
                osp_pwcnet_flow(pwc, osp_slice(v, 0, 0, T - 1, 1), osp_slice(v, 0, 1, T, 1));
        }
        CHECK(close_tensor(names[side], osp_concat((int)B, flows, 0), want, TOL_ABS, 2e-4));
    }
    osp_pwcnet_free(pwc);
}

TEST(flolpips_matches_fixture)
{
    const scores *s = fixture_scores();
    CHECK(s && metric_matches("flolpips", s->flolpips, s->T - 1, TOL_REL_OR_SMALL_ABS, 1e-4));
    CHECK(s && isnan(s->flolpips[2][0])); /* identical videos: 0/0 */
}

/* ---- edge cases ---- */

static osp_tensor *constant_frame(int64_t h, int64_t w, float v)
{
    osp_tensor *t = osp_tensor_f32(4, (int64_t[]){1, 3, h, w});
    for (int64_t i = 0; i < osp_numel(t); i++)
        osp_f32(t)[i] = v;
    return t;
}

static bool scalar_matches(const char *name, double got, tol_kind kind, double tol)
{
    osp_tensor *want = expected(EVAL "expected_metrics.safetensors", name);
    return want && close_values(name, &got, f64(want), 1, kind, tol);
}

TEST(edge_cases_match_fixture)
{
    double v;
    osp_tensor *zeros = constant_frame(256, 256, 0.0f);
    osp_tensor *one = osp_tensor_clone(zeros), *two = osp_tensor_clone(zeros);
    osp_f32(one)[12345] = 1.0f / 255.0f;
    osp_f32(two)[12345] = osp_f32(two)[54321] = 1.0f / 255.0f;
    CHECK(osp_psnr(zeros, one, &v) == OSP_OK && v == OSP_PSNR_SENTINEL);
    CHECK(scalar_matches("edge_psnr_one_lsb_256", v, TOL_ABS, 0));
    CHECK(osp_psnr(zeros, two, &v) == OSP_OK);
    CHECK(scalar_matches("edge_psnr_two_lsb_256", v, TOL_ABS, 1e-4));
    /* the same as u8 frames (PSNR's integer path) */
    osp_tensor *zeros8 = osp_tensor_new(OSP_U8, 4, (int64_t[]){1, 3, 256, 256}, OSP_DEVICE_CPU);
    memset(osp_data(zeros8), 0, osp_nbytes(zeros8));
    osp_tensor *one8 = osp_tensor_clone(zeros8), *two8 = osp_tensor_clone(zeros8);
    ((uint8_t *)osp_data(one8))[12345] = 1;
    ((uint8_t *)osp_data(two8))[12345] = ((uint8_t *)osp_data(two8))[54321] = 1;
    CHECK(osp_psnr(zeros8, one8, &v) == OSP_OK && v == OSP_PSNR_SENTINEL);
    CHECK(osp_psnr(zeros8, two8, &v) == OSP_OK);
    CHECK(scalar_matches("edge_psnr_two_lsb_256", v, TOL_ABS, 1e-4));
    CHECK(osp_ssim(constant_frame(16, 16, 51.0f / 255.0f), constant_frame(16, 16, 153.0f / 255.0f),
                   &v) == OSP_OK);
    CHECK(scalar_matches("edge_ssim_const_51_153", v, TOL_ABS, 1e-7));
    CHECK(osp_ssim(constant_frame(10, 10, 51.0f / 255.0f), constant_frame(10, 10, 153.0f / 255.0f),
                   &v) == OSP_OK);
    CHECK(isnan(v) && scalar_matches("edge_ssim_10x10", v, TOL_ABS, 0));
}

/* ---- reduction ---- */

/* Per-frame means and the final scores at batch size B and 2. */
static bool reduction_matches(const char *name, const double (*m)[8], int64_t cols)
{
    const scores *s = fixture_scores();
    if (!s)
        return false;
    osp_eval_series all, bs2;
    osp_eval_series_init(&all, 0);
    osp_eval_series_init(&bs2, 2);
    for (int64_t b = 0; b < s->B; b++)
        if (osp_eval_series_add(&all, m[b], cols) || osp_eval_series_add(&bs2, m[b], cols))
            return false;
    char key[64];
    double frame_means[8], final = osp_eval_series_mean(&all);
    double final_bs2 = osp_eval_series_mean(&bs2);
    for (int64_t t = 0; t < cols; t++)
        frame_means[t] = osp_eval_series_frame_mean(&all, t);
    bool ok = osp_eval_series_frames(&all) == cols;
    tol_kind kind = strcmp(name, "psnr") == 0 || strcmp(name, "ssim") == 0 ? TOL_ABS
                                                                           : TOL_REL_OR_SMALL_ABS;
    double tol = strcmp(name, "psnr") == 0 ? 1e-4 : strcmp(name, "ssim") == 0 ? 1e-7 : 1e-4;
    snprintf(key, sizeof key, "%s_frame_mean", name);
    osp_tensor *want = expected(EVAL "expected_metrics.safetensors", key);
    ok = ok && want && close_values(key, frame_means, f64(want), cols, kind, tol);
    snprintf(key, sizeof key, "%s_final", name);
    ok = ok && scalar_matches(key, final, kind, tol);
    if (strcmp(name, "flolpips") != 0) {
        snprintf(key, sizeof key, "%s_final_bs2", name);
        ok = ok && scalar_matches(key, final_bs2, kind, tol);
    }
    osp_eval_series_free(&all);
    osp_eval_series_free(&bs2);
    return ok;
}

TEST(reductions_match_fixture)
{
    const scores *s = fixture_scores();
    CHECK(s && reduction_matches("psnr", s->psnr, s->T));
    CHECK(s && reduction_matches("ssim", s->ssim, s->T));
    CHECK(s && reduction_matches("lpips", s->lpips, s->T));
    CHECK(s && reduction_matches("flolpips", s->flolpips, s->T - 1));
    /* the final FloLPIPS over the two non-identical videos */
    osp_eval_series two;
    osp_eval_series_init(&two, 0);
    CHECK(s && !osp_eval_series_add(&two, s->flolpips[0], s->T - 1) &&
          !osp_eval_series_add(&two, s->flolpips[1], s->T - 1));
    CHECK(scalar_matches("flolpips_final_nonidentical", osp_eval_series_mean(&two),
                         TOL_REL_OR_SMALL_ABS, 1e-4));
    osp_eval_series_free(&two);
}

/* ---- the flow ops beyond the fixture ---- */

/* Random inputs against the definition (eval.md 5.3), any displacement. */
TEST(correlation_matches_definition)
{
    osp_tensor *a = test_random(4, (int64_t[]){2, 3, 5, 6}, -1, 1);
    osp_tensor *b = test_random(4, (int64_t[]){2, 3, 5, 6}, -1, 1);
    int d = 2, side = 5;
    osp_tensor *y = osp_correlation(a, b, d);
    CHECK(y && y->shape[1] == side * side);
    if (!y)
        return;
    double worst = 0;
    for (int n = 0; n < 2; n++)
        for (int k = 0; k < side * side; k++)
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 6; j++) {
                    int dy = k / side - d, dx = k % side - d;
                    double want = 0;
                    for (int c = 0; c < 3; c++) {
                        int yi = i + dy, xj = j + dx;
                        if (yi >= 0 && yi < 5 && xj >= 0 && xj < 6)
                            want += osp_f32(a)[((n * 3 + c) * 5 + i) * 6 + j] *
                                    osp_f32(b)[((n * 3 + c) * 5 + yi) * 6 + xj];
                    }
                    worst = fmax(worst, fabs(osp_f32(y)[((n * 25 + k) * 5 + i) * 6 + j] -
                                             want / 3));
                }
    CHECK(worst < 1e-6);
}

/* Pixel-centre grids sample every pixel exactly (align_corners=False);
 * a grid shifted one pixel left reads the left neighbour, zero at the
 * border; with the mask the border column is zeroed too. */
TEST(grid_sample_identity_and_shift)
{
    int64_t H = 3, W = 4;
    osp_tensor *x = test_random(4, (int64_t[]){1, 2, H, W}, -1, 1);
    osp_tensor *grid = osp_tensor_f32(4, (int64_t[]){1, H, W, 2});
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) {
            osp_f32(grid)[(i * W + j) * 2] = (float)(2 * j + 1) / (float)W - 1;
            osp_f32(grid)[(i * W + j) * 2 + 1] = (float)(2 * i + 1) / (float)H - 1;
        }
    osp_tensor *same = osp_grid_sample(x, grid, false, 0);
    CHECK(same && test_max_abs_diff(same, x) < 1e-6);
    for (int64_t i = 0; i < H * W; i++)
        osp_f32(grid)[2 * i] -= 2.0f / (float)W;
    osp_tensor *left = osp_grid_sample(x, grid, false, 0);
    osp_tensor *masked = osp_grid_sample(x, grid, false, 0.999f);
    double worst = 0;
    for (int64_t c = 0; c < 2 && left && masked; c++)
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < W; j++) {
                float want = j ? osp_f32(x)[(c * H + i) * W + j - 1] : 0.0f;
                worst = fmax(worst, fabs(osp_f32(left)[(c * H + i) * W + j] - want));
                worst = fmax(worst, fabs(osp_f32(masked)[(c * H + i) * W + j] - want));
            }
    CHECK(left && masked && worst < 1e-6);
}

TEST(flow_ops_are_refused_by_the_tape)
{
    osp_tensor *a = osp_requires_grad(test_random(4, (int64_t[]){1, 2, 3, 3}, -1, 1));
    osp_tensor *grid = test_random(4, (int64_t[]){1, 3, 3, 2}, -1, 1);
    bool was = osp_grad_set_enabled(true);
    osp_error_clear();
    CHECK(osp_correlation(a, a, 1) == NULL && osp_error_code() == OSP_ERR_RUNTIME);
    osp_error_clear();
    CHECK(osp_grid_sample(a, grid, false, 0) == NULL && osp_error_code() == OSP_ERR_RUNTIME);
    osp_grad_set_enabled(was);
    osp_tape_clear();
}

TEST(metrics_reject_bad_input)
{
    osp_tensor *a = test_random(4, (int64_t[]){2, 3, 40, 40}, 0, 1);
    osp_tensor *b = test_random(4, (int64_t[]){2, 3, 40, 41}, 0, 1);
    double v[2];
    osp_error_clear();
    CHECK(osp_psnr(a, b, v) == OSP_ERR_DATA);
    CHECK(osp_ssim(a, b, v) == OSP_ERR_DATA);
    osp_lpips *lp = load_lpips();
    CHECK(lp && osp_lpips_frames(lp, a, b, v, NULL) == OSP_ERR_DATA);
    osp_tensor *small = test_random(4, (int64_t[]){1, 3, 30, 40}, 0, 1);
    CHECK(lp && osp_lpips_frames(lp, small, small, v, NULL) == OSP_ERR_DATA);
    osp_lpips_free(lp);
    /* weights that miss a tensor or mis-shape one */
    osp_error_clear();
    CHECK(osp_lpips_load(fixture_path(EVAL "pwcnet_tiny.safetensors"), OSP_DEVICE_CPU) == NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA && strstr(osp_error_message(), "features.0.weight"));
    osp_error_clear();
    CHECK(osp_pwcnet_load(fixture_path(EVAL "lpips_alex_tiny.safetensors"), OSP_DEVICE_CPU) ==
          NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA);
    osp_error_clear();
    CHECK(osp_lpips_load("/nonexistent/lpips.safetensors", OSP_DEVICE_CPU) == NULL);
    CHECK(osp_error_code() == OSP_ERR_IO);
    osp_error_clear();
    CHECK(osp_eval_resize_crop(a, 0, 41, 41) == NULL && osp_error_code() == OSP_ERR_DATA);
}

int main(void)
{
    RUN(bilinear_resize_matches_fixture);
    RUN(correlation_matches_fixture);
    RUN(backwarp_matches_fixture);
    RUN(flow_weighted_mean_matches_fixture);
    RUN(preprocessing_matches_fixture);
    RUN(frame_indices_follow_the_reference_rule);
    RUN(psnr_matches_fixture);
    RUN(ssim_matches_fixture);
    RUN(u8_and_float32_frames_score_alike);
    RUN(u8_frames_are_a_view_of_whole_clips_only);
    RUN(empty_frames_are_refused);
    RUN(ssim_strips_match_the_definition);
    RUN(lpips_matches_fixture);
    RUN(flows_match_fixture);
    RUN(flolpips_matches_fixture);
    RUN(edge_cases_match_fixture);
    RUN(reductions_match_fixture);
    RUN(correlation_matches_definition);
    RUN(grid_sample_identity_and_shift);
    RUN(flow_ops_are_refused_by_the_tape);
    RUN(metrics_reject_bad_input);
    return test_summary();
}
