/* eval_input.c — see eval_input.h. */
#include "eval_input.h"
#include "backend/ops.h"
#include "io/clip.h"
#include "io/stream.h"
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t osp_eval_frame_indices(int64_t total, int64_t num_frames, int64_t sample_rate,
                               int64_t *idx)
{
    if (total < 0 || num_frames < 0 || sample_rate < 1) {
        osp_error(OSP_ERR_RUNTIME, "frame selection: bad arguments (%lld frames, n %lld, "
                  "rate %lld)", (long long)total, (long long)num_frames, (long long)sample_rate);
        return -1;
    }
    if (num_frames == 0) {
        int64_t count = (total + sample_rate - 1) / sample_rate;
        for (int64_t i = 0; i < count; i++)
            idx[i] = i * sample_rate;
        return count;
    }
    int64_t span, end, count;
    if (__builtin_mul_overflow(num_frames, sample_rate, &span)) {
        osp_error(OSP_ERR_RUNTIME, "frame selection: %lld frames x rate %lld overflows",
                  (long long)num_frames, (long long)sample_rate);
        return -1;
    }
    if (total >= span) {
        end = span;
        count = num_frames;
    } else {
        end = total;
        count = (int64_t)((double)total / (double)span * (double)num_frames);
    }
    if (count == 1) {
        idx[0] = 0;
        return 1;
    }
    /* numpy.linspace(0, end - 1, count) cast to int: i * step + start,
     * truncated, with the endpoint exact. */
    double step = (double)(end - 1) / (double)(count - 1);
    for (int64_t i = 0; i < count; i++)
        idx[i] = i == count - 1 ? end - 1 : (int64_t)((double)i * step);
    return count;
}

static osp_tensor *frames_tensor(osp_dtype dtype, int64_t count, int64_t height, int64_t width)
{
    return osp_tensor_new(dtype, 4, (int64_t[]){count, 3, height, width}, OSP_DEVICE_CPU);
}

osp_tensor *osp_eval_frames_from_rgb(const uint8_t *rgb, int64_t height, int64_t width,
                                     const int64_t *idx, int64_t count)
{
    osp_tensor *out = frames_tensor(OSP_U8, count, height, width);
    if (!out)
        return NULL;
    int64_t plane = height * width;
    uint8_t *o = osp_data(out);
    for (int64_t t = 0; t < count; t++) {
        const uint8_t *src = rgb + idx[t] * plane * 3;
        for (int c = 0; c < 3; c++)
            for (int64_t i = 0; i < plane; i++)
                o[(t * 3 + c) * plane + i] = src[3 * i + c];
    }
    return out;
}

/* Whether the indices are 0, 1, ..., T - 1: every frame of the clip. */
static bool every_frame(const int64_t *idx, int64_t count, int64_t T)
{
    for (int64_t t = 0; t < count; t++)
        if (idx[t] != t)
            return false;
    return count == T;
}

/* Batch item b of a contiguous video [B, 3, T, H, W] as a view [T, 3, H,
 * W]: frames and channels strided, each plane contiguous, as PSNR and SSIM
 * take them. (A view holds the whole stream's storage, so it serves only
 * where every frame is scored; a few frames of a long clip are copied.) */
static osp_tensor *frames_view(osp_tensor *video, int64_t b)
{
    const int64_t *s = video->shape;
    osp_tensor *v = osp_view_reshape(video, 4, (int64_t[]){s[0] * 3, s[2], s[3], s[4]});
    v = osp_view_slice(v, 0, b * 3, b * 3 + 3, 1);
    return osp_view_permute(v, (int[]){1, 0, 2, 3});
}

osp_tensor *osp_eval_frames_from_video(osp_tensor *video, int64_t b, const int64_t *idx,
                                       int64_t count)
{
    char buf[96];
    if (!video)
        return NULL;
    if (video->ndim != 5 || video->shape[1] != 3 || b < 0 || b >= video->shape[0] ||
        (video->dtype != OSP_U8 && video->dtype != OSP_F32)) {
        osp_error(OSP_ERR_DATA, "video %s %s: expected [B, 3, T, H, W] u8 or f32",
                  osp_dtype_name(video->dtype), osp_shape_str(video, buf, sizeof buf));
        return NULL;
    }
    if (video->shape[3] < 1 || video->shape[4] < 1) {
        osp_error(OSP_ERR_DATA, "video %s: its frames are empty (H or W is 0)",
                  osp_shape_str(video, buf, sizeof buf));
        return NULL;
    }
    int64_t T = video->shape[2], plane = video->shape[3] * video->shape[4];
    osp_tensor *v = osp_tensor_contiguous(video);
    if (v && v->dtype == OSP_U8 && every_frame(idx, count, T))
        return frames_view(v, b);
    osp_tensor *out = v ? frames_tensor(v->dtype, count, video->shape[3], video->shape[4]) : NULL;
    if (!out)
        return NULL;
    bool u8 = v->dtype == OSP_U8;
    for (int64_t t = 0; t < count; t++)
        for (int64_t c = 0; c < 3; c++) {
            int64_t src = ((b * 3 + c) * T + idx[t]) * plane, dst = (t * 3 + c) * plane;
            if (u8) {
                memcpy((uint8_t *)osp_data(out) + dst, (const uint8_t *)osp_data(v) + src,
                       (size_t)plane);
                continue;
            }
            const float *f32 = osp_f32(v) + src;
            float *o = osp_f32(out) + dst;
            for (int64_t i = 0; i < plane; i++) {
                float y = (f32[i] + 1.0f) / 2.0f;
                o[i] = y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y; /* NaN stays NaN */
            }
        }
    return out;
}

osp_tensor *osp_eval_frames_f32(osp_tensor *frames)
{
    if (!frames || frames->dtype != OSP_U8)
        return frames;
    osp_tensor *u8 = osp_tensor_contiguous(frames);
    osp_tensor *out = u8 ? osp_tensor_new(OSP_F32, u8->ndim, u8->shape, OSP_DEVICE_CPU) : NULL;
    if (!out)
        return NULL;
    const uint8_t *src = osp_data(u8);
    float *o = osp_f32(out);
    int64_t n = osp_numel(out);
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++)
        o[i] = osp_unit_u8(src[i]);
    return out;
}

osp_tensor *osp_eval_resize_crop(osp_tensor *frames, int64_t resolution, int64_t crop_h,
                                 int64_t crop_w)
{
    if (!frames)
        return NULL;
    int64_t T = frames->shape[0], H = frames->shape[2], W = frames->shape[3];
    if (resolution > 0) {
        int64_t size[2];
        if (W < H) { /* pytorchvideo short_side_scale */
            size[0] = (int64_t)floor((double)H / (double)W * (double)resolution);
            size[1] = resolution;
        } else {
            size[0] = resolution;
            size[1] = (int64_t)floor((double)W / (double)H * (double)resolution);
        }
        if (size[0] != H || size[1] != W)
            frames = osp_interpolate(osp_eval_frames_f32(frames), 2, size, OSP_INTERP_LINEAR,
                                     false);
        H = size[0];
        W = size[1];
    }
    if (!frames || crop_h <= 0 || crop_w <= 0)
        return frames;
    if (H < crop_h || W < crop_w) {
        osp_error(OSP_ERR_DATA, "frames of %lldx%lld%s are smaller than the crop %lldx%lld",
                  (long long)H, (long long)W, resolution > 0 ? " (after scaling)" : "",
                  (long long)crop_h, (long long)crop_w);
        return NULL;
    }
    /* io/clip.h's crop works on [B, C, T, H, W]; T x 3 frames are one */
    osp_tensor *clip = osp_reshape(frames, 5, (int64_t[]){1, T, 3, H, W});
    return osp_reshape(osp_video_center_crop(clip, crop_h, crop_w), 4,
                       (int64_t[]){T, 3, crop_h, crop_w});
}

/* The selected frame indices of a video of `total` frames (malloc'd). */
static osp_status select_frames(int64_t total, const osp_eval_options *o, int64_t **idx,
                                int64_t *count)
{
    int64_t most = total > o->num_frames ? total : o->num_frames;
    if (!(*idx = malloc((size_t)(most > 0 ? most : 1) * sizeof **idx)))
        return osp_error_nomem("frame indices", (unsigned long long)most * sizeof **idx);
    *count = osp_eval_frame_indices(total, o->num_frames, o->sample_rate, *idx);
    if (*count < 0)
        return osp_error_code();
    if (*count == 0)
        return osp_error(OSP_ERR_DATA, "%lld frames are too few for --frames %lld at sample "
                         "rate %lld", (long long)total, (long long)o->num_frames,
                         (long long)o->sample_rate);
    return OSP_OK;
}

/* Appends an owned reference to the list (the tensor stays in its pool). */
static osp_status list_add(osp_tensor ***list, int64_t *n, osp_tensor *t)
{
    if (!t)
        return osp_error_code();
    osp_tensor **grown = realloc(*list, (size_t)(*n + 1) * sizeof **list);
    if (!grown)
        return osp_error_nomem("video list", (unsigned long long)(*n + 1) * sizeof **list);
    *list = grown;
    (*list)[(*n)++] = osp_retain(t);
    return OSP_OK;
}

static osp_status load_stream(const char *path, const osp_eval_options *o, osp_tensor ***videos,
                              int64_t *count)
{
    osp_stream_reader *r = osp_stream_open_read(path);
    if (!r)
        return osp_error_code();
    osp_named_tensor nt = {0};
    bool got = false;
    osp_status st;
    while ((st = osp_stream_read(r, &nt, &got)) == OSP_OK && got && strcmp(nt.name, "video"))
        osp_named_tensor_free(&nt);
    osp_stream_close_read(r);
    if (st == OSP_OK && !got)
        st = osp_error(OSP_ERR_DATA, "%s: the stream holds no `video` tensor",
                       strcmp(path, "-") ? path : "stdin");
    const char *label = strcmp(path, "-") ? path : "stdin";
    if (st == OSP_OK && nt.tensor->ndim != 5) {
        char buf[96];
        st = osp_error(OSP_ERR_DATA, "%s: video %s is not [B, 3, T, H, W]", label,
                       osp_shape_str(nt.tensor, buf, sizeof buf));
    }
    for (int64_t b = 0; st == OSP_OK && b < nt.tensor->shape[0]; b++) {
        int64_t *idx = NULL, n = 0;
        st = select_frames(nt.tensor->shape[2], o, &idx, &n);
        if (st == OSP_OK) {
            osp_pool_push();
            osp_tensor *frames = osp_eval_frames_from_video(nt.tensor, b, idx, n);
            st = list_add(videos, count, osp_eval_resize_crop(frames, o->resolution, o->crop_h,
                                                              o->crop_w));
            osp_pool_pop();
        }
        free(idx);
        if (st)
            osp_error_context("%s", label);
    }
    if (got)
        osp_named_tensor_free(&nt);
    return st;
}

static osp_status load_clip(const char *path, const osp_eval_options *o, osp_tensor ***videos,
                            int64_t *count)
{
    /* The reference never looks past the first num_frames * sample_rate. */
    int64_t most = 0;
    if (o->num_frames && __builtin_mul_overflow(o->num_frames, o->sample_rate, &most))
        return osp_error(OSP_ERR_USAGE, "--frames x --sample-rate overflows");
    osp_frame_select sel = {0, 1, most};
    osp_clip clip;
    if (osp_clip_load(path, &sel, &clip))
        return osp_error_code();
    int64_t *idx = NULL, n = 0;
    osp_status st = select_frames(clip.frames, o, &idx, &n);
    if (st == OSP_OK) {
        osp_pool_push();
        osp_tensor *frames = osp_eval_frames_from_rgb(clip.rgb, clip.height, clip.width, idx, n);
        st = list_add(videos, count,
                      osp_eval_resize_crop(frames, o->resolution, o->crop_h, o->crop_w));
        osp_pool_pop();
    }
    if (st)
        osp_error_context("%s", path);
    free(idx);
    osp_clip_free(&clip);
    return st;
}

osp_status osp_eval_load(const char *path, const osp_eval_options *o, osp_tensor ***videos,
                         int64_t *count)
{
    *videos = NULL;
    *count = 0;
    osp_status st = osp_stream_sniff(path) ? load_stream(path, o, videos, count)
                                          : load_clip(path, o, videos, count);
    if (st) {
        osp_eval_videos_free(*videos, *count);
        *videos = NULL;
        *count = 0;
    }
    return st;
}

void osp_eval_videos_free(osp_tensor **videos, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        osp_release(videos[i]);
    free(videos);
}
