/* frames_check.h — validation shared by PSNR and SSIM. */
#ifndef OSP_METRICS_FRAMES_CHECK_H
#define OSP_METRICS_FRAMES_CHECK_H

#include "core/tensor.h"

/* x and y: host tensors of the same [T, C, H, W] shape, both float32 or
 * both u8, each [H, W] plane contiguous (frames and channels may be
 * strided). */
osp_status metrics_check_frames(const char *metric, const osp_tensor *x, const osp_tensor *y);

#endif
