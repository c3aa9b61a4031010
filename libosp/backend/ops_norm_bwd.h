/* ops_norm_bwd.h — frontends of the normalisation backward ops (used by
 * train/grad_norm.c). Each takes the forward op's gy (shape of x), x,
 * gamma (or NULL) and parameters, and returns OSP_OK after setting *gx and,
 * when the pointer is non-NULL, the affine gradients *ggamma = Σ gy·xhat
 * and *gbeta = Σ gy (shape [C] resp. [D], summed over every other axis).
 * The results belong to the current pool. */
#ifndef OSP_OPS_NORM_BWD_H
#define OSP_OPS_NORM_BWD_H

#include "ops.h"

osp_status osp_group_norm_backward(osp_tensor *gy, osp_tensor *x, osp_tensor *gamma, int groups,
                                   float eps, osp_tensor **gx, osp_tensor **ggamma,
                                   osp_tensor **gbeta);
/* beta (or NULL) only gives the affine gradients' shape when there is no
 * gamma: [D], or per sample [N, 1, ..., 1, D] (summed within each sample). */
osp_status osp_layer_norm_backward(osp_tensor *gy, osp_tensor *x, osp_tensor *gamma,
                                   const osp_tensor *beta, float eps, osp_tensor **gx,
                                   osp_tensor **ggamma, osp_tensor **gbeta);
osp_status osp_rms_norm_backward(osp_tensor *gy, osp_tensor *x, osp_tensor *gamma, float eps,
                                 osp_tensor **gx, osp_tensor **ggamma);

#endif
