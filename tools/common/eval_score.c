/* eval_score.c — see eval_score.h. */
#include "eval_score.h"

#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "metrics/metrics.h"

/* Frames per LPIPS call: bounds AlexNet's activations on long videos. */
#define LPIPS_CHUNK 8

void eval_pair_result_free(pair_result *r)
{
    for (int m = 0; m < METRICS; m++)
        osp_eval_series_free(&r->series[m]);
}

/* LPIPS of every frame, LPIPS_CHUNK frames per network call. */
static osp_status lpips_video(osp_lpips *lp, osp_tensor *x, osp_tensor *y, double *out)
{
    osp_status st = OSP_OK;
    for (int64_t t0 = 0; t0 < x->shape[0] && !st; t0 += LPIPS_CHUNK) {
        int64_t t1 = t0 + LPIPS_CHUNK < x->shape[0] ? t0 + LPIPS_CHUNK : x->shape[0];
        osp_pool_push();
        st = osp_lpips_frames(lp, osp_slice(x, 0, t0, t1, 1), osp_slice(y, 0, t0, t1, 1),
                              out + t0, NULL);
        osp_pool_pop();
    }
    return st;
}

/* Adds video pair (x, y)'s scores ([T, 3, H, W] each) to the sums: PSNR
 * and SSIM from pixel[] (computed for the whole pair, see pixel_scores),
 * LPIPS and FloLPIPS computed here on float32 copies of the frames. */
static osp_status score_video(evaluator *ev, pair_result *r, osp_tensor *x, osp_tensor *y,
                              double *const pixel[METRICS])
{
    int64_t T = x->shape[0];
    double *v = malloc((size_t)T * sizeof *v);
    if (!v)
        return osp_error_nomem("scores", (unsigned long long)T * sizeof *v);
    osp_pool_push();
    bool nets = ev->on[M_LPIPS] || ev->on[M_FLOLPIPS];
    osp_tensor *xf = nets ? osp_eval_frames_f32(x) : NULL;
    osp_tensor *yf = nets ? osp_eval_frames_f32(y) : NULL;
    osp_status st = nets && (!xf || !yf) ? osp_error_code() : OSP_OK;
    for (int m = 0; m < METRICS && !st; m++) {
        if (!ev->on[m])
            continue;
        int64_t n = m == M_FLOLPIPS ? T - 1 : T;
        const double *values = v;
        switch (m) {
        case M_PSNR:
        case M_SSIM: values = pixel[m]; break;
        case M_LPIPS: st = lpips_video(ev->lpips, xf, yf, v); break;
        default: st = osp_flolpips(ev->lpips, ev->pwc, xf, yf, v);
        }
        if (!st)
            st = osp_eval_series_add(&r->series[m], values, n);
        if (!st)
            st = osp_eval_series_add(&ev->total[m], values, n);
    }
    osp_pool_pop();
    free(v);
    return st;
}

/* A u8 side against a float32 one: both become float32 (PSNR and SSIM
 * take two frames of one type). */
static osp_status same_dtypes(osp_tensor **va, osp_tensor **vb, int64_t n)
{
    osp_status st = OSP_OK;
    for (int64_t i = 0; i < n && !st; i++) {
        if (va[i]->dtype == vb[i]->dtype)
            continue;
        osp_pool_push();
        osp_tensor *a = osp_retain(osp_eval_frames_f32(va[i]));
        osp_tensor *b = osp_retain(osp_eval_frames_f32(vb[i]));
        osp_pool_pop();
        osp_release(va[i]);
        osp_release(vb[i]);
        va[i] = a;
        vb[i] = b;
        st = a && b ? OSP_OK : osp_error_code();
    }
    return st;
}

/* PSNR and SSIM (those asked for) of all n video pairs in one call, so that
 * their planes are spread over the threads together: pixel[m][i] points at
 * video i's values, in one malloc'd block per metric (*blocks). */
static osp_status pixel_scores(const evaluator *ev, osp_tensor **va, osp_tensor **vb, int64_t n,
                               double **pixel[METRICS], double *blocks[METRICS])
{
    int64_t frames = 0;
    for (int64_t i = 0; i < n; i++)
        frames += va[i]->shape[0];
    for (int m = M_PSNR; m <= M_SSIM && n > 0; m++) {
        if (!ev->on[m])
            continue;
        pixel[m] = malloc((size_t)n * sizeof *pixel[m]);
        blocks[m] = malloc((size_t)frames * sizeof *blocks[m]);
        if (!pixel[m] || !blocks[m])
            return osp_error_nomem("scores", (unsigned long long)frames * sizeof *blocks[m]);
        for (int64_t i = 0, t = 0; i < n; t += va[i++]->shape[0])
            pixel[m][i] = blocks[m] + t;
    }
    if (!pixel[M_PSNR] && !pixel[M_SSIM])
        return OSP_OK;
    return osp_psnr_ssim((const osp_tensor *const *)va, (const osp_tensor *const *)vb, n,
                         pixel[M_PSNR], pixel[M_SSIM]);
}

/* Both sides must hold the same videos: count, frames and frame size,
 * and ones the chosen metrics accept; checked before any video is scored,
 * so a bad pair adds nothing to the totals. */
static osp_status check_sides(const evaluator *ev, const char *a, osp_tensor **va, int64_t na,
                              const char *b, osp_tensor **vb, int64_t nb)
{
    if (na != nb)
        return osp_error(OSP_ERR_DATA, "%s holds %lld videos, %s holds %lld", a, (long long)na, b,
                         (long long)nb);
    for (int64_t i = 0; i < na; i++) {
        const int64_t *sa = va[i]->shape, *sb = vb[i]->shape;
        if (sa[0] != sb[0])
            return osp_error(OSP_ERR_DATA, "%s has %lld frames, %s has %lld (--frames N compares "
                             "the first N)", a, (long long)sa[0], b, (long long)sb[0]);
        if (sa[2] != sb[2] || sa[3] != sb[3])
            return osp_error(OSP_ERR_DATA, "%s is %lldx%lld, %s is %lldx%lld (--resolution N "
                             "--crop HxW brings both to one size)", a, (long long)sa[3],
                             (long long)sa[2], b, (long long)sb[3], (long long)sb[2]);
        if ((ev->on[M_LPIPS] || ev->on[M_FLOLPIPS]) &&
            (sa[2] < OSP_LPIPS_MIN_SIDE || sa[3] < OSP_LPIPS_MIN_SIDE))
            return osp_error(OSP_ERR_DATA, "%s: frames of %lldx%lld are too small for LPIPS "
                             "(at least %dx%d)", a, (long long)sa[3], (long long)sa[2],
                             OSP_LPIPS_MIN_SIDE, OSP_LPIPS_MIN_SIDE);
        if (ev->on[M_FLOLPIPS] && sa[0] < 2)
            return osp_error(OSP_ERR_DATA, "%s: flolpips needs at least 2 frames, got 1", a);
    }
    return OSP_OK;
}

osp_status eval_score_pair(evaluator *ev, const char *a, const char *b, pair_result *r)
{
    memset(r, 0, sizeof *r);
    osp_tensor **va = NULL, **vb = NULL;
    int64_t na = 0, nb = 0;
    double **pixel[METRICS] = {0}, *blocks[METRICS] = {0};
    osp_status st = osp_eval_load(a, &ev->input, &va, &na);
    if (!st)
        st = osp_eval_load(b, &ev->input, &vb, &nb);
    if (!st)
        st = check_sides(ev, a, va, na, b, vb, nb);
    if (!st)
        st = same_dtypes(va, vb, na);
    if (!st)
        st = pixel_scores(ev, va, vb, na, pixel, blocks);
    for (int64_t i = 0; i < na && !st; i++) {
        double *video_pixel[METRICS] = {0};
        for (int m = M_PSNR; m <= M_SSIM; m++)
            video_pixel[m] = pixel[m] ? pixel[m][i] : NULL;
        st = score_video(ev, r, va[i], vb[i], video_pixel);
        r->videos++;
        r->frames = va[i]->shape[0] > r->frames ? va[i]->shape[0] : r->frames;
    }
    for (int m = 0; m < METRICS; m++) {
        free(pixel[m]);
        free(blocks[m]);
    }
    osp_eval_videos_free(va, na);
    osp_eval_videos_free(vb, nb);
    ev->pairs++;
    ev->videos += r->videos;
    osp_progress_step(&ev->progress, 1);
    return st;
}
