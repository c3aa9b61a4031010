/* grad_resample.c — backward rules of padding, interpolation and average
 * pooling, through their backward ops (backend/ops_resample_bwd.h). */
#include "grad.h"
#include "backend/ops_resample_bwd.h"

osp_status osp_grad_pad(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    gin[0] = osp_pad_backward(gout[0], n->p.pad.before, n->p.pad.after, n->p.pad.mode);
    return gin[0] ? OSP_OK : osp_error_code();
}

osp_status osp_grad_interpolate(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    gin[0] = osp_interpolate_backward(gout[0], n->p.interp.nsp, n->in[0]->shape,
                                      n->p.interp.mode, n->p.interp.align_corners);
    return gin[0] ? OSP_OK : osp_error_code();
}

osp_status osp_grad_avg_pool(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    gin[0] = osp_avg_pool_backward(gout[0], &n->p.pool, n->in[0]->shape);
    return gin[0] ? OSP_OK : osp_error_code();
}
