/* plane_metrics.h — the per-plane halves of PSNR (psnr.c) and SSIM
 * (ssim.c), which psnr_ssim.c runs over every plane of a batch of videos.
 * A plane is H x W pixels in rows of W, u8 (elem 1, read as osp_unit_u8
 * does) or float32 (elem 4). */
#ifndef OSP_METRICS_PLANE_METRICS_H
#define OSP_METRICS_PLANE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sum over n pixels of the float32 square of the float32 difference a - b,
 * accumulated in double. */
double metrics_sq_diff_sum(const void *a, const void *b, int64_t n, size_t elem);

/* A frame's PSNR from the sum above over all its n values (peak 1; the
 * reference's sentinel when the float32 mean is below 1e-10). */
double metrics_psnr_from_sum(double sum, int64_t n);

/* The smallest side with a valid region (the 11x11 window fits). */
#define SSIM_MIN_SIDE 11

/* Bytes (a multiple of 64) of the scratch one thread passes to
 * metrics_ssim_plane, which must be 64-byte aligned. */
size_t metrics_ssim_scratch_bytes(void);

/* Mean SSIM map over the valid region of one plane pair (H, W >= 11). */
double metrics_ssim_plane(const uint8_t *a, const uint8_t *b, size_t elem, int64_t H, int64_t W,
                          double *scratch);

#endif
