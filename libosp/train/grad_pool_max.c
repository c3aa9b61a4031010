/* grad_pool_max.c — backward rule of max pooling, through its backward op
 * (backend/ops_pool_max_bwd.h). */
#include "grad.h"
#include "backend/ops_pool_max_bwd.h"

osp_status osp_grad_max_pool(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    gin[0] = osp_max_pool_backward(gout[0], n->in[0], &n->p.pool);
    return gin[0] ? OSP_OK : osp_error_code();
}
