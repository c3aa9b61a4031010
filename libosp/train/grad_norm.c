/* grad_norm.c — backward rules of group, layer and RMS normalisation, via
 * the *_BACKWARD ops (backend/ops_norm_bwd.h). The affine gradients are
 * requested only for the parameters that want them. */
#include "grad.h"
#include "backend/ops_norm_bwd.h"

/* Whether input i (x, gamma or beta) is present and needs a gradient. */
static bool wants(const osp_node *n, int i)
{
    return i < n->n_in && n->in[i] && n->in[i]->requires_grad;
}

osp_status osp_grad_group_norm(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    return osp_group_norm_backward(gout[0], n->in[0], n->in[1], n->p.norm.groups, n->p.norm.eps,
                                   &gin[0], wants(n, 1) ? &gin[1] : NULL,
                                   wants(n, 2) ? &gin[2] : NULL);
}

osp_status osp_grad_layer_norm(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    return osp_layer_norm_backward(gout[0], n->in[0], n->in[1], n->n_in > 2 ? n->in[2] : NULL,
                                   n->p.norm.eps, &gin[0], wants(n, 1) ? &gin[1] : NULL,
                                   wants(n, 2) ? &gin[2] : NULL);
}

osp_status osp_grad_rms_norm(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    return osp_rms_norm_backward(gout[0], n->in[0], n->in[1], n->p.norm.eps, &gin[0],
                                 wants(n, 1) ? &gin[1] : NULL);
}
