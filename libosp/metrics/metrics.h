/* metrics.h — PSNR and SSIM exactly as Open-Sora-Plan's evaluation
 * computes them (spec/eval.md sections 2 and 3), on frames held on the
 * host: x (real) and y (generated) are [T, C, H, W] tensors, both float32
 * with values in [0, 1] or both u8 (read as osp_unit_u8 does); one value
 * per frame goes to out[T]. */
#ifndef OSP_METRICS_H
#define OSP_METRICS_H

#include "core/tensor.h"

#include <stdint.h>

/* An 8-bit value as the reference reads it: (float32)u / 255 in float32. */
static inline float osp_unit_u8(uint8_t u) { return (float)u / 255.0f; }

/* What the reference returns when the frame MSE (as float32) is below
 * 1e-10: identical frames, but also nearly identical large ones. */
#define OSP_PSNR_SENTINEL 100.0

/* 20 log10(1 / sqrt(mse)) with peak 1, or the sentinel. Any C. */
osp_status osp_psnr(const osp_tensor *x, const osp_tensor *y, double *out);

/* Mean over the C = 3 channels (or the single plane, C = 1) of the mean
 * SSIM map over the valid region, in double: 11x11 Gaussian window
 * (sigma 1.5, OpenCV's getGaussianKernel), population statistics,
 * C1 = 0.01^2, C2 = 0.03^2, data range 1. NaN when H or W is below 11
 * (the valid region is empty), as in the reference. */
osp_status osp_ssim(const osp_tensor *x, const osp_tensor *y, double *out);

/* Both (or either: a NULL list skips that metric) for n video pairs
 * x[i], y[i] at once, the planes of all of them spread over the threads:
 * psnr[i] and ssim[i] receive video i's T values. Same values as the
 * calls above, for any number of threads. */
osp_status osp_psnr_ssim(const osp_tensor *const *x, const osp_tensor *const *y, int64_t n,
                         double *const *psnr, double *const *ssim);

#endif
