/* pwcnet.h — PWC-Net optical flow as FloLPIPS runs it (spec/eval.md 5.3;
 * sniklaus pytorch-pwc, the `network-default` architecture): a six-level
 * feature pyramid, a correlation cost volume and a DenseNet-style decoder
 * per level from 1/64 down to 1/4 resolution, a dilated-conv refiner, and
 * the flow upsampled to the frame size.
 *
 * Weights: one safetensors file (or a folder holding one) under the
 * Network state-dict names (netExtractor.netOne.0.weight, netSix.netOne.0.*,
 * netFiv.netUpflow.*, ..., netRefiner.netMain.12.bias); the original
 * checkpoint's `module` spelling (moduleExtractor.moduleOne.0.weight) is
 * accepted too. Every width is read from the stored shapes; the 81
 * correlation channels (displacement 4) are fixed. Forward only (the
 * correlation and grid-sample ops have no backward). */
#ifndef OSP_PWCNET_H
#define OSP_PWCNET_H

#include "core/tensor.h"

typedef struct osp_pwcnet osp_pwcnet;

osp_pwcnet *osp_pwcnet_load(const char *path, osp_device device);
void osp_pwcnet_free(osp_pwcnet *m);

/* Flow from `first` to `second`, frames [N, 3, H, W] in [0, 1] (RGB, fed
 * as the reference feeds them): [N, 2, H, W] in pixels, channel 0 = x,
 * 1 = y. Pool-owned, on the network's device. */
osp_tensor *osp_pwcnet_flow(osp_pwcnet *m, osp_tensor *first, osp_tensor *second);

/* PWC-Net's backward warp: x [N, C, h, w] sampled bilinearly at each pixel
 * plus flow [N, 2, h, w] stretched by w/(w-1), h/(h-1) (the reference's
 * grid construction), zero outside, and zeroed wherever the in-frame
 * corner weights sum to 0.999 or less. h, w >= 2. */
osp_tensor *osp_pwcnet_backwarp(osp_tensor *x, osp_tensor *flow);

#endif
