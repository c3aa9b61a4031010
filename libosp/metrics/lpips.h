/* lpips.h — LPIPS on two trunks, told apart by the weights' keys.
 *
 * AlexNet, as Open-Sora-Plan's evaluation computes it (spec/eval.md
 * section 4): lpips 0.1.4, net='alex', version 0.1, spatial=True. AlexNet's
 * five ReLU taps, unit-normalised over channels, squared differences
 * weighted by the calibrated 1x1 "lin" layers, each map bilinearly
 * upsampled to the frame size, summed and averaged (osp_lpips_maps,
 * osp_lpips_frames; frames in [0, 1]).
 *
 * VGG16, the VAE trainer's frozen perceptual loss (spec/training.md 3.2):
 * taming-transformers' LPIPS, the same per-tap math on the last ReLU of
 * each of VGG16's five conv blocks, each map averaged over space, summed;
 * differentiable on the autograd tape (osp_lpips_loss; frames in [-1, 1]).
 *
 * Weights: one safetensors file (or a folder holding one) with the
 * torchvision keys features.{0,3,6,8,10}.{weight,bias} (AlexNet) or
 * features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.{weight,bias} (VGG16) and
 * the lpips keys lin{0..4}.model.1.weight [1, C_k, 1, 1]; the LPIPS
 * module's own spellings net.slice{1..5}.{i}.* and lins.{k}.model.1.weight
 * are accepted too. Channel widths are read from the shapes. The network
 * runs through the op table, so on whichever device it was loaded to. */
#ifndef OSP_LPIPS_H
#define OSP_LPIPS_H

#include "core/tensor.h"

#define OSP_LPIPS_TAPS 5
/* Smallest frame side AlexNet's two max-pools accept. */
#define OSP_LPIPS_MIN_SIDE 31
/* Smallest frame side VGG16's four 2x2 max-pools accept. */
#define OSP_LPIPS_VGG_MIN_SIDE 16

typedef struct osp_lpips osp_lpips;

osp_lpips *osp_lpips_load(const char *path, osp_device device);
void osp_lpips_free(osp_lpips *m);
osp_device osp_lpips_device(const osp_lpips *m);

/* AlexNet only. Steps 1-6 of eval.md 4.1 for frames x, y [N, C, H, W]
 * (C = 3, or 1: repeated) with values in [0, 1]: maps[k] = the
 * lin-weighted squared feature difference of tap k, [N, 1, h_k, w_k]
 * (pool-owned). */
osp_status osp_lpips_maps(osp_lpips *m, osp_tensor *x, osp_tensor *y,
                          osp_tensor *maps[OSP_LPIPS_TAPS]);

/* AlexNet only. LPIPS of each of the N frame pairs into values[N]; with
 * `layers` non-NULL also each tap's share, layers[n * 5 + k] = mean of the
 * upsampled map k (they sum to the value). */
osp_status osp_lpips_frames(osp_lpips *m, osp_tensor *x, osp_tensor *y, double *values,
                            double *layers);

/* The VAE trainer's perceptual loss (spec/training.md §3.2: taming's
 * LPIPS, VGG16 trunk, spatial averages): for frames x, y [N, 3, H, W] in
 * [-1, 1] (no 2x - 1), the sum over the five taps of the spatial mean of
 * the lin-weighted squared difference of the unit-normalised features,
 * [N], recorded on the tape when it is on (the network's weights never
 * require grad). Needs VGG16 weights (osp_lpips_load tells the trunks
 * apart by their keys); OSP_ERR_DATA for an AlexNet model or frames under
 * OSP_LPIPS_VGG_MIN_SIDE. */
osp_tensor *osp_lpips_loss(osp_lpips *m, osp_tensor *x, osp_tensor *y);

#endif
