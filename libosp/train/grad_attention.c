/* grad_attention.c — backward rules of softmax and attention, via their
 * backward ops (backend/ops_attention_bwd.h). */
#include "grad.h"
#include "backend/ops_attention_bwd.h"

osp_status osp_grad_softmax(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    gin[0] = osp_softmax_backward(gout[0], n->out[0]);
    return gin[0] ? OSP_OK : osp_error_code();
}

/* Inputs q, k, v get gradients; the additive mask (input 3) does not: it
 * is a constant of the problem (padding, causality), as in PyTorch's
 * attention kernels. */
osp_status osp_grad_attention(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    osp_tensor *g[3];
    osp_status st = osp_attention_backward(gout[0], n->in[0], n->in[1], n->in[2],
                                           n->n_in > 3 ? n->in[3] : NULL,
                                           n->p.attention.scale, &g[0], &g[1], &g[2]);
    if (st != OSP_OK)
        return st;
    for (int i = 0; i < 3; i++)
        if (n->in[i]->requires_grad)
            gin[i] = g[i];
    return OSP_OK;
}
