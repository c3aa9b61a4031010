/* clip_transform.h — what the reference's T2V dataset does to a video
 * before encoding (spec/training.md §1.2-1.5): temporal sampling, center
 * crop on the short edge, antialiased bilinear resize (align_corners=True)
 * to a square, optional horizontal flip, and 2x - 1. */
#ifndef OSP_TRAIN_CLIP_TRANSFORM_H
#define OSP_TRAIN_CLIP_TRANSFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"

/* numpy linspace(first, last, count, dtype=int): count >= 1 values
 * floor(first + k·(last − first)/(count − 1)) in float64, the last exactly
 * `last`. */
void osp_linspace_int(int64_t first, int64_t last, int count, int64_t *out);

/* The largest window start for a clip of n frames, `frames` F and sample
 * rate s: max(0, n − F·s − 1) (the reference's off-by-one included). A
 * trainer draws begin uniformly in [0, that]. */
int64_t osp_frame_last_start(int64_t n, int frames, int rate);
/* The F frame indices of the window starting at begin (§1.2). Fails
 * (OSP_ERR_DATA) when n < 1 or begin is out of range. */
osp_status osp_frame_indices(int64_t n, int frames, int rate, int64_t begin, int64_t *idx);
/* The N image frames among F video frames (§1.5): linspace(0, F−1, N);
 * needs 1 <= N <= F. */
osp_status osp_image_frame_indices(int frames, int images, int64_t *idx);

/* u8 video [T, 3, H, W] -> f32 [T, 3, size, size] in [0, 1]: x/255, center
 * crop on the short edge (offset rounded half to even), antialiased
 * bilinear resize with align_corners=True, width pass first (§1.3 steps
 * 1-3). A new tensor (pool), or NULL + OSP_ERR_DATA on a bad shape. */
osp_tensor *osp_clip_crop_resize(osp_tensor *video_u8, int64_t size);
/* The whole per-sample transform: crop + resize, flipped horizontally when
 * `flip`, then 2x − 1 (§1.3 steps 1-5). */
osp_tensor *osp_clip_transform(osp_tensor *video_u8, int64_t size, bool flip);

#endif
