/* eval_input.h — how Open-Sora-Plan's evaluation turns a decoded video
 * into the frames it scores (spec/eval.md 1.2): which frames, the [0, 1]
 * float conversion, the short-side bilinear scale and the centre crop.
 * Decoding itself is io/clip.h's job. */
#ifndef OSP_EVAL_INPUT_H
#define OSP_EVAL_INPUT_H

#include <stdint.h>

#include "core/tensor.h"

/* The reference's frame indices for a video of `total` frames, n =
 * num_frames, r = sample_rate (eval.md 1.2 step 2): the first n*r frames
 * sampled at n evenly spaced positions (numpy linspace, truncated), or,
 * when the video is shorter, trunc(total / (n*r) * n) positions over all
 * of it (computed in double, as the reference does, which can lose a
 * frame). n = 0 means every r-th frame of the whole video. Writes at most
 * max(n, ceil(total / r)) indices to idx and returns how many (0 when
 * none fits: the caller reports it), or -1 with an error on bad
 * arguments. */
int64_t osp_eval_frame_indices(int64_t total, int64_t num_frames, int64_t sample_rate,
                               int64_t *idx);

/* Frames idx[0..count) of RGB24 frames [T][H][W][3] as u8
 * [count, 3, H, W] (planes; osp_eval_frames_f32 gives the values). */
osp_tensor *osp_eval_frames_from_rgb(const uint8_t *rgb, int64_t height, int64_t width,
                                     const int64_t *idx, int64_t count);

/* Frames idx[0..count) of batch item b of a `video` tensor [B, 3, T, H, W]
 * as [count, 3, H, W]: u8 stays u8 (a view of the video's planes when the
 * indices are every frame of the clip, so not contiguous), f32 in [-1, 1]
 * becomes (v + 1) / 2 clamped to [0, 1] (not quantised to 8 bits). Empty
 * frames (H or W 0) are refused (OSP_ERR_DATA). */
osp_tensor *osp_eval_frames_from_video(osp_tensor *video, int64_t b, const int64_t *idx,
                                       int64_t count);

/* Frames as float32 in [0, 1]: u8 ones as osp_unit_u8 reads them (a new
 * pool-owned tensor), float32 ones as they are. PSNR and SSIM read u8
 * frames directly; the networks take float32. */
osp_tensor *osp_eval_frames_f32(osp_tensor *frames);

/* pytorchvideo short_side_scale then torchvision's centre crop on frames
 * [T, 3, H, W]: with resolution S > 0 the short side becomes S and the
 * long one floor(long / short * S) (in double), by bilinear resize
 * (align_corners=False, no antialiasing; an unchanged size is an exact
 * copy, resized u8 frames come out float32); with crop_h, crop_w > 0 the
 * centre crop with round-half-even offsets. OSP_ERR_DATA when the frames
 * are smaller than the crop. */
osp_tensor *osp_eval_resize_crop(osp_tensor *frames, int64_t resolution, int64_t crop_h,
                                 int64_t crop_w);

/* What osp-eval does to each input: frame selection (num_frames 0 = all,
 * every sample_rate-th), then resize and crop as above (0 = off). */
typedef struct osp_eval_options {
    int64_t num_frames, sample_rate;
    int64_t resolution, crop_h, crop_w;
} osp_eval_options;

/* Loads the videos at `path` as frames [T, 3, h, w] (u8 from 8-bit input
 * that is not resized, float32 in [0, 1] otherwise), selected and
 * preprocessed per `o`: an osp stream (its first `video` tensor; each batch
 * item is one video; "-" = stdin), or anything io/clip.h reads (a video
 * file, a PNG, a folder or glob of PNGs: one video). *videos is a
 * malloc'd array of *count owned tensors (osp_eval_videos_free). */
osp_status osp_eval_load(const char *path, const osp_eval_options *o, osp_tensor ***videos,
                         int64_t *count);
void osp_eval_videos_free(osp_tensor **videos, int64_t count);

#endif
