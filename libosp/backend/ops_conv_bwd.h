/* ops_conv_bwd.h — frontends of the convolution backward ops (used by
 * osp_conv_transpose and train/grad_conv.c). Shapes follow the forward
 * convolution y = conv(x, w): x [N, C, *Sx], w [O, C, *K], y [N, O, *Sy],
 * window as in osp_conv. Sx may exceed the size a forward conv would need
 * by up to max(stride, dilation) - 1 per dim (a transposed convolution's
 * output_padding): those positions get no contribution.
 * Results belong to the current pool. */
#ifndef OSP_OPS_CONV_BWD_H
#define OSP_OPS_CONV_BWD_H

#include "ops.h"

/* gx [x_shape] = the gradient of conv(x, w) with respect to x, given gy;
 * this is also the transposed convolution of gy by w. bias [C] or NULL is
 * added to every position of gx (the transposed convolution's bias). */
osp_tensor *osp_conv_backward_data(osp_tensor *gy, osp_tensor *w, osp_tensor *bias,
                                   const osp_window *win, int ndim, const int64_t *x_shape);

/* *gw [w_shape] = the gradient of conv(x, w) with respect to w, given gy;
 * when gbias is non-NULL also *gbias [O] = Σ gy over batch and positions. */
osp_status osp_conv_backward_weight(osp_tensor *gy, osp_tensor *x, const osp_window *win,
                                    const int64_t *w_shape, osp_tensor **gw,
                                    osp_tensor **gbias);

#endif
