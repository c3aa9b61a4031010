/* ops_resample_bwd.h — frontends of the backward ops of padding,
 * interpolation and average pooling (used by train/grad_resample.c).
 * Each returns the gradient with respect to the forward op's input, given
 * the gradient gy of its output and the forward op's parameters. Results
 * belong to the current pool. */
#ifndef OSP_OPS_RESAMPLE_BWD_H
#define OSP_OPS_RESAMPLE_BWD_H

#include "ops.h"

/* x's shape is gy's shape minus before and after. Constant padding: the
 * interior slice of gy; replicate: each edge element also sums the border
 * replicated from it. */
osp_tensor *osp_pad_backward(osp_tensor *gy, const int64_t *before, const int64_t *after,
                             osp_pad_mode mode);
/* x_shape: the forward input's full shape [N, C, *S] (nsp + 2 entries). */
osp_tensor *osp_interpolate_backward(osp_tensor *gy, int nsp, const int64_t *x_shape,
                                     osp_interp_mode mode, bool align_corners);
osp_tensor *osp_avg_pool_backward(osp_tensor *gy, const osp_window *win, const int64_t *x_shape);

#endif
