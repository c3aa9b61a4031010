/* clip.h — a video clip in memory as RGB24 frames, loaded from a video
 * file (FFmpeg), a PNG file, a folder of PNGs or a glob of PNGs, with frame
 * selection; and the conversions between clips and `video` tensors. */
#ifndef OSP_CLIP_H
#define OSP_CLIP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"

typedef struct osp_clip {
    int width, height;
    int64_t frames;
    double fps;          /* 0 when unknown (PNG input) */
    int64_t source_frames; /* frames in the source before selection */
    uint8_t *rgb;        /* frames * height * width * 3 */
} osp_clip;

/* Which frames to keep: start, start+stride, ...; at most `max_frames`
 * (0 = all available). */
typedef struct osp_frame_select {
    int64_t start, stride, max_frames;
} osp_frame_select;

/* path: a video file, a .png file, a folder (its *.png files in name
 * order) or a glob pattern of PNG files. */
osp_status osp_clip_load(const char *path, const osp_frame_select *sel, osp_clip *clip);
void osp_clip_free(osp_clip *clip);
/* Keeps the first n frames. */
void osp_clip_truncate(osp_clip *clip, int64_t n);

/* [1, 3, T, H, W] float32 in [-1, 1]: (u8 / 255) * 2 - 1 in float32. */
osp_tensor *osp_clip_to_video(const osp_clip *clip);
/* Frame t of batch item b of a `video` tensor ([B,3,T,H,W], f32 in [-1,1]
 * or u8) as RGB24: uint8(clamp(y/2 + 0.5, 0, 1) * 255), truncating, as
 * the reference pipeline does. */
osp_status osp_video_frame_rgb(const osp_tensor *video, int64_t b, int64_t t, uint8_t *rgb);

/* Antialiased bilinear resize of every frame (PyTorch's
 * interpolate(antialias=True), spec causalvae.md section 11). */
osp_tensor *osp_video_resize_antialias(osp_tensor *video, int64_t height, int64_t width,
                                       bool align_corners);
/* Centre crop with Python's round-half-even offsets. */
osp_tensor *osp_video_center_crop(osp_tensor *video, int64_t height, int64_t width);
/* The short-side size the reference resizes to so that the frame covers
 * height x width (short side = target, long side scaled and truncated). */
void osp_short_side_size(int64_t h, int64_t w, int64_t target_h, int64_t target_w,
                         int64_t *out_h, int64_t *out_w);

#endif
