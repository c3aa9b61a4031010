/* grad_elementwise.c — backward rules of binary, unary, cast and copy. */
#include "grad.h"
#include "backend/ops.h"
#include "backend/ops_elementwise_bwd.h"

static osp_tensor *reduce_like(osp_tensor *g, const osp_tensor *like)
{
    return osp_sum_to_shape(g, like->ndim, like->shape);
}

osp_status osp_grad_binary(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    osp_tensor *a = n->in[0], *b = n->in[1], *gy = gout[0];
    switch (n->p.binary.kind) {
    case OSP_BINARY_ADD:
        gin[0] = reduce_like(gy, a);
        gin[1] = reduce_like(gy, b);
        break;
    case OSP_BINARY_SUB:
        gin[0] = reduce_like(gy, a);
        gin[1] = reduce_like(osp_scale_shift(gy, -1.0f, 0.0f), b);
        break;
    case OSP_BINARY_MUL:
        gin[0] = a->requires_grad ? reduce_like(osp_mul(gy, b), a) : NULL;
        gin[1] = b->requires_grad ? reduce_like(osp_mul(gy, a), b) : NULL;
        break;
    case OSP_BINARY_DIV:
        gin[0] = a->requires_grad ? reduce_like(osp_div(gy, b), a) : NULL;
        if (b->requires_grad) {
            /* d(a/b)/db = -a / b² */
            osp_tensor *t = osp_div(osp_mul(gy, a), osp_square(b));
            gin[1] = reduce_like(osp_scale_shift(t, -1.0f, 0.0f), b);
        }
        break;
    }
    for (int i = 0; i < 2; i++)
        if (n->in[i]->requires_grad && !gin[i])
            return osp_error_code();
    return OSP_OK;
}

osp_status osp_grad_unary(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    gin[0] = osp_unary_backward(gout[0], n->in[0], n->p.unary.kind, n->p.unary.alpha,
                                n->p.unary.beta);
    return gin[0] ? OSP_OK : osp_error_code();
}

osp_status osp_grad_cast(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    gin[0] = osp_cast(gout[0], n->in[0]->dtype);
    return gin[0] ? OSP_OK : osp_error_code();
}

osp_status osp_grad_copy(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    gin[0] = osp_to_device(gout[0], n->in[0]->storage->device);
    return gin[0] ? OSP_OK : osp_error_code();
}
