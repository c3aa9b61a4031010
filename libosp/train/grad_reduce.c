/* grad_reduce.c — backward rule of sum/mean/var/max. */
#include "grad.h"
#include "backend/ops.h"
#include "backend/ops_elementwise_bwd.h"

osp_status osp_grad_reduce(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    osp_tensor *x = n->in[0];
    uint32_t axes = n->p.reduce.axes;
    int64_t keep[OSP_MAX_DIMS], count = 1;
    for (int i = 0; i < x->ndim; i++) {
        bool reduced = axes & (1u << i);
        keep[i] = reduced ? 1 : x->shape[i];
        if (reduced)
            count *= x->shape[i];
    }
    osp_tensor *gy = osp_reshape(gout[0], x->ndim, keep);
    osp_tensor *gx = NULL;
    switch (n->p.reduce.kind) {
    case OSP_REDUCE_SUM:
        gx = osp_contiguous(osp_expand(gy, x->ndim, x->shape));
        break;
    case OSP_REDUCE_MEAN:
        gx = osp_scale_shift(osp_expand(gy, x->ndim, x->shape), 1.0f / (float)count, 0.0f);
        break;
    case OSP_REDUCE_VAR: {
        int axis_list[OSP_MAX_DIMS], na = 0;
        for (int i = 0; i < x->ndim; i++)
            if (axes & (1u << i))
                axis_list[na++] = i;
        osp_tensor *centered = osp_sub(x, osp_mean(x, na, axis_list, true));
        float k = 2.0f / (float)(count - n->p.reduce.correction);
        gx = osp_mul(osp_scale_shift(centered, k, 0.0f), gy);
        break;
    }
    case OSP_REDUCE_MAX:
        gx = osp_reduce_max_backward(gy, x, osp_reshape(n->out[0], x->ndim, keep), axes);
        break;
    }
    gin[0] = gx;
    return gx ? OSP_OK : osp_error_code();
}
