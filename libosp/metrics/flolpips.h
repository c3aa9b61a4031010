/* flolpips.h — FloLPIPS as Open-Sora-Plan's evaluation computes it
 * (spec/eval.md section 5): for each pair of consecutive frames, the LPIPS
 * lin maps of (generated, real) averaged with weights proportional to the
 * magnitude of the difference between the two videos' PWC-Net flows. */
#ifndef OSP_FLOLPIPS_H
#define OSP_FLOLPIPS_H

#include "lpips.h"
#include "pwcnet.h"

/* flolpips' mw_spatial_average: lin_map [N, 1, h, w], flow_diff
 * [N, 2, H, W] -> [N, 1, 1, 1] = sum of lin_map * m / sum(m), with m the
 * magnitude of flow_diff bilinearly resized to h x w. 0/0 (no flow
 * difference on that grid) gives NaN, as in the reference. */
osp_tensor *osp_flolpips_weighted_mean(osp_tensor *lin_map, osp_tensor *flow_diff);

/* FloLPIPS of the T-1 consecutive frame pairs of real and generated
 * [T, 3, H, W] (values in [0, 1], T >= 2, the same shape) into out[T-1]. */
osp_status osp_flolpips(osp_lpips *lpips, osp_pwcnet *pwc, osp_tensor *real,
                        osp_tensor *generated, double *out);

#endif
