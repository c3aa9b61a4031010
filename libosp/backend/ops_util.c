/* ops_util.c — see ops_util.h. */
#include "ops_util.h"

osp_tensor *ops_output(const osp_tensor *like, int ndim, const int64_t *shape)
{
    return osp_tensor_new(OSP_F32, ndim, shape, like->storage->device);
}

osp_tensor *ops_output_ordered(const osp_tensor *order, int ndim, const int64_t *shape)
{
    if (osp_is_contiguous(order))
        return ops_output(order, ndim, shape);
    /* phys[j]: the dim stored j-th (stable by decreasing stride), the last
     * dim always innermost */
    int phys[OSP_MAX_DIMS], back[OSP_MAX_DIMS], n = 0;
    for (int i = 0; i < ndim - 1; i++) {
        int j = n++;
        for (; j > 0 && order->stride[phys[j - 1]] < order->stride[i]; j--)
            phys[j] = phys[j - 1];
        phys[j] = i;
    }
    phys[n++] = ndim - 1;
    int64_t stored[OSP_MAX_DIMS];
    for (int j = 0; j < ndim; j++) {
        stored[j] = shape[phys[j]];
        back[phys[j]] = j;
    }
    return osp_view_permute(ops_output(order, ndim, stored), back);
}

osp_status ops_broadcast_shape(const char *op, int na, const int64_t *sa, int nb,
                               const int64_t *sb, int *ndim, int64_t *shape)
{
    int nd = na > nb ? na : nb;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - na), ib = i - (nd - nb);
        int64_t da = ia >= 0 ? sa[ia] : 1, db = ib >= 0 ? sb[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return osp_error(OSP_ERR_RUNTIME,
                             "%s: shapes do not broadcast (dimension %d: %lld vs %lld)", op, i,
                             (long long)da, (long long)db);
        shape[i] = da == 1 ? db : da;
    }
    *ndim = nd;
    return OSP_OK;
}

osp_status ops_check_float(const char *op, const char *what, const osp_tensor *t)
{
    if (!osp_dtype_is_float(t->dtype))
        return osp_error(OSP_ERR_RUNTIME, "%s: %s must be a float tensor, got %s", op, what,
                         osp_dtype_name(t->dtype));
    return OSP_OK;
}

osp_status ops_check_rank(const char *op, const char *what, const osp_tensor *t, int lo, int hi)
{
    if (t->ndim < lo || t->ndim > hi) {
        char buf[128];
        return osp_error(OSP_ERR_RUNTIME, "%s: %s must have %d..%d dimensions, got %s", op, what,
                         lo, hi, osp_shape_str(t, buf, sizeof buf));
    }
    return OSP_OK;
}

osp_status ops_check_devices(const char *op, int n, osp_tensor *const *ts)
{
    for (int i = 1; i < n; i++)
        if (ts[i] && ts[i]->storage->device != ts[0]->storage->device)
            return osp_error(OSP_ERR_RUNTIME, "%s: tensors are on different devices", op);
    return OSP_OK;
}
