/* grad_shape.c — backward rules of the views and of concat. */
#include "grad.h"
#include "backend/ops.h"

/* Gradient of a slice: zeros of the base's shape with gy written into the
 * sliced positions (a COPY into a strided view of the result). */
static osp_tensor *unslice(const osp_node *n, osp_tensor *gy)
{
    osp_tensor *gx = osp_full_like(n->in[0], 0.0);
    osp_tensor *window = osp_view_slice(gx, n->p.slice.axis, n->p.slice.start, n->p.slice.end,
                                        n->p.slice.step);
    if (!window)
        return NULL;
    osp_node copy = {.op = OSP_OP_COPY, .n_in = 1, .n_out = 1, .in = {gy}, .out = {window}};
    return osp_dispatch(&copy) == OSP_OK ? gx : NULL;
}

osp_status osp_grad_view(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    osp_tensor *base = n->in[0], *gy = gout[0];
    switch (n->op) {
    case OSP_OP_VIEW_RESHAPE:
        gin[0] = osp_reshape(gy, base->ndim, base->shape);
        break;
    case OSP_OP_VIEW_PERMUTE: {
        int inverse[OSP_MAX_DIMS];
        for (int i = 0; i < base->ndim; i++)
            inverse[n->p.permute.perm[i]] = i;
        /* a view when that lays the gradient out like the base (the
         * per-head attention output merged back), else a copy */
        osp_tensor *g = osp_permute(gy, inverse);
        gin[0] = g && osp_same_layout(g, base) && osp_is_dense(g) ? g : osp_contiguous(g);
        break;
    }
    case OSP_OP_VIEW_SLICE:
        gin[0] = unslice(n, gy);
        break;
    case OSP_OP_VIEW_EXPAND:
        gin[0] = osp_sum_to_shape(gy, base->ndim, base->shape);
        break;
    default:
        return osp_error(OSP_ERR_RUNTIME, "grad_view: %s is not a view", osp_op_name(n->op));
    }
    return gin[0] ? OSP_OK : osp_error_code();
}

osp_status osp_grad_concat(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    int axis = n->p.concat.axis;
    int64_t at = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = n->in[i]->shape[axis];
        if (n->in[i]->requires_grad) {
            gin[i] = osp_contiguous(osp_slice(gout[0], axis, at, at + len, 1));
            if (!gin[i])
                return osp_error_code();
        }
        at += len;
    }
    return OSP_OK;
}
