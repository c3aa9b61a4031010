/* ops_reduce.c — reductions over a set of axes, and sum-to-shape. */
#include "ops_elementwise_bwd.h"
#include "ops_util.h"

static osp_tensor *reduce(osp_tensor *x, int naxes, const int *axes, bool keepdim,
                          osp_reduce_kind kind, int correction, const char *name)
{
    if (!x || ops_check_float(name, "x", x))
        return NULL;
    uint32_t mask = 0;
    if (naxes == 0) {
        mask = (1u << x->ndim) - 1;
    } else {
        for (int i = 0; i < naxes; i++) {
            int a = osp_axis(x, axes[i]);
            if (a < 0)
                return NULL;
            if (mask & (1u << a)) {
                osp_error(OSP_ERR_RUNTIME, "%s: axis %d given twice", name, axes[i]);
                return NULL;
            }
            mask |= 1u << a;
        }
    }
    int64_t shape[OSP_MAX_DIMS], count = 1;
    int nd = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (mask & (1u << i)) {
            count *= x->shape[i];
            if (keepdim)
                shape[nd++] = 1;
        } else {
            shape[nd++] = x->shape[i];
        }
    }
    if (count == 0 && kind == OSP_REDUCE_MAX) {
        osp_error(OSP_ERR_RUNTIME, "max: reduction over an empty set of elements");
        return NULL;
    }
    osp_node n = ops_node(OSP_OP_REDUCE);
    n.n_in = 1;
    n.in[0] = osp_prepare(x);
    if (!n.in[0])
        return NULL;
    n.n_out = 1;
    n.out[0] = ops_output(x, nd, shape);
    if (!n.out[0])
        return NULL;
    n.p.reduce.kind = kind;
    n.p.reduce.axes = mask;
    n.p.reduce.keepdim = keepdim;
    n.p.reduce.correction = correction;
    return osp_run(&n);
}

osp_tensor *osp_sum(osp_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return reduce(x, naxes, axes, keepdim, OSP_REDUCE_SUM, 0, "sum");
}

osp_tensor *osp_mean(osp_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return reduce(x, naxes, axes, keepdim, OSP_REDUCE_MEAN, 0, "mean");
}

osp_tensor *osp_var(osp_tensor *x, int naxes, const int *axes, int correction, bool keepdim)
{
    return reduce(x, naxes, axes, keepdim, OSP_REDUCE_VAR, correction, "var");
}

osp_tensor *osp_max(osp_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return reduce(x, naxes, axes, keepdim, OSP_REDUCE_MAX, 0, "max");
}

osp_tensor *osp_sum_to_shape(osp_tensor *x, int ndim, const int64_t *shape)
{
    if (!x)
        return NULL;
    int lead = x->ndim - ndim, axes[OSP_MAX_DIMS], naxes = 0;
    if (lead < 0) {
        osp_error(OSP_ERR_RUNTIME, "sum_to_shape: target has more dimensions than the tensor");
        return NULL;
    }
    for (int i = 0; i < x->ndim; i++) {
        if (i < lead) {
            axes[naxes++] = i;
        } else if (shape[i - lead] == 1 && x->shape[i] != 1) {
            axes[naxes++] = i;
        } else if (shape[i - lead] != x->shape[i]) {
            osp_error(OSP_ERR_RUNTIME, "sum_to_shape: dimension %d (%lld) cannot reduce to %lld",
                      i, (long long)x->shape[i], (long long)shape[i - lead]);
            return NULL;
        }
    }
    osp_tensor *s = naxes ? osp_sum(x, naxes, axes, true) : x;
    return osp_reshape(s, ndim, shape);
}

osp_tensor *osp_reduce_max_backward(osp_tensor *gy, osp_tensor *x, osp_tensor *y, uint32_t axes)
{
    if (!gy || !x || !y)
        return NULL;
    osp_node n = ops_node(OSP_OP_REDUCE_MAX_BACKWARD);
    n.n_in = 3;
    n.in[0] = osp_prepare(gy);
    n.in[1] = osp_prepare(x);
    n.in[2] = osp_prepare(y);
    if (!n.in[0] || !n.in[1] || !n.in[2])
        return NULL;
    n.n_out = 1;
    n.out[0] = ops_output(x, x->ndim, x->shape);
    if (!n.out[0])
        return NULL;
    n.p.reduce.kind = OSP_REDUCE_MAX;
    n.p.reduce.axes = axes;
    n.p.reduce.keepdim = true;
    return osp_run(&n);
}
