/* grad_conv.c — backward rules of convolution and of the transposed
 * convolution (the OSP_OP_CONV_BACKWARD_DATA node osp_conv_transpose
 * records), through the conv backward ops (backend/ops_conv_bwd.h). */
#include "grad.h"
#include "backend/ops_conv_bwd.h"

/* Whether input i is present and needs a gradient. */
static bool wants(const osp_node *n, int i)
{
    return i < n->n_in && n->in[i] && n->in[i]->requires_grad;
}

/* Σ of g over every axis but the channel axis 1: a per-channel bias's
 * gradient. */
static osp_tensor *channel_sum(osp_tensor *g)
{
    int axes[OSP_MAX_DIMS], k = 0;
    for (int i = 0; i < g->ndim; i++)
        if (i != 1)
            axes[k++] = i;
    return osp_sum(g, k, axes, false);
}

/* y = conv(x, w) + bias:  gx = backward_data(gy, w),
 * gw and gbias = backward_weight(gy, x) (gbias alone: Σ gy per channel). */
osp_status osp_grad_conv(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    const osp_window *win = &n->p.conv;
    osp_tensor *x = n->in[0], *w = n->in[1], *gy = gout[0];
    if (wants(n, 0) && !(gin[0] = osp_conv_backward_data(gy, w, NULL, win, x->ndim, x->shape)))
        return osp_error_code();
    if (wants(n, 1))
        return osp_conv_backward_weight(gy, x, win, w->shape, &gin[1],
                                        wants(n, 2) ? &gin[2] : NULL);
    if (wants(n, 2) && !(gin[2] = channel_sum(gy)))
        return osp_error_code();
    return OSP_OK;
}

/* y = conv_transpose(x, w) + bias, recorded as backward_data(x, w, bias)
 * with x in the role of a conv's output gradient:  gx = conv(gy, w) (cut to
 * x's extent: output_padding past the stride adds positions the conv sees),
 * gw = backward_weight with the roles swapped (x as gy, gy as x),
 * gbias = Σ gy per channel. */
osp_status osp_grad_conv_transpose(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    const osp_window *win = &n->p.conv;
    osp_tensor *x = n->in[0], *w = n->in[1], *gy = gout[0];
    if (wants(n, 0)) {
        osp_tensor *gx = osp_conv(gy, w, NULL, win);
        for (int i = 2; gx && i < x->ndim; i++)
            if (gx->shape[i] != x->shape[i])
                gx = osp_slice(gx, i, 0, x->shape[i], 1);
        if (!(gin[0] = gx))
            return osp_error_code();
    }
    if (wants(n, 1) && osp_conv_backward_weight(x, gy, win, w->shape, &gin[1], NULL) != OSP_OK)
        return osp_error_code();
    if (wants(n, 2) && !(gin[2] = channel_sum(gy)))
        return osp_error_code();
    return OSP_OK;
}
