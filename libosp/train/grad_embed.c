/* grad_embed.c — backward rule of the embedding lookup: the table's
 * gradient is gy scatter-added at the looked-up rows (ids get none). */
#include "grad.h"
#include "backend/ops_embed_bwd.h"

osp_status osp_grad_embedding(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    osp_tensor *table = n->in[0];
    if (!table->requires_grad)
        return OSP_OK;
    gin[0] = osp_embedding_backward(gout[0], n->in[1], table->shape[0]);
    return gin[0] ? OSP_OK : osp_error_code();
}
