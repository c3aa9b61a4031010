/* ops_optim.c — the in-place updates of the op table (OSP_OP_ADAMW,
 * OSP_OP_EMA) and osp_copy_into. They write into existing tensors, so they
 * are dispatched directly, never recorded on the tape. */
#include "ops_util.h"

/* Error unless t is a contiguous f32 tensor shaped like ref on its device. */
static osp_status check_state(const char *op, const char *what, const osp_tensor *t,
                              const osp_tensor *ref)
{
    if (!t || !ref)
        return osp_error_code() ? osp_error_code()
                                : osp_error(OSP_ERR_RUNTIME, "%s: %s is missing", op, what);
    if (t->dtype != OSP_F32 || !osp_is_contiguous(t) || !osp_same_shape(t, ref) ||
        t->storage->device != ref->storage->device)
        return osp_error(OSP_ERR_RUNTIME, "%s: %s must be a contiguous float32 tensor shaped "
                         "like the parameter, on its device", op, what);
    return OSP_OK;
}

osp_status osp_adamw_inplace(osp_tensor *p, osp_tensor *m, osp_tensor *v, osp_tensor *g,
                             const osp_adamw_scalars *c)
{
    osp_status st = check_state("adamw", "the parameter", p, p);
    if (!st)
        st = check_state("adamw", "exp_avg", m, p);
    if (!st)
        st = check_state("adamw", "exp_avg_sq", v, p);
    if (!st && g)
        st = check_state("adamw", "the gradient", g, p);
    if (st)
        return st;
    osp_node n = ops_node(OSP_OP_ADAMW);
    n.n_in = 4;
    n.in[0] = n.out[0] = p;
    n.in[1] = n.out[1] = m;
    n.in[2] = n.out[2] = v;
    n.in[3] = g;
    n.n_out = 3;
    n.p.adamw = *c;
    return osp_dispatch(&n);
}

osp_status osp_ema_inplace(osp_tensor *shadow, osp_tensor *p, float weight)
{
    osp_status st = check_state("ema", "the average", shadow, shadow);
    if (!st)
        st = check_state("ema", "the parameter", p, shadow);
    if (st)
        return st;
    osp_node n = ops_node(OSP_OP_EMA);
    n.n_in = 2;
    n.in[0] = n.out[0] = shadow;
    n.in[1] = p;
    n.n_out = 1;
    n.p.ema.weight = weight;
    return osp_dispatch(&n);
}

osp_status osp_copy_into(osp_tensor *dst, osp_tensor *src)
{
    if (!dst || !src)
        return osp_error_code() ? osp_error_code()
                                : osp_error(OSP_ERR_RUNTIME, "copy_into: a tensor is missing");
    if (!osp_is_contiguous(dst) || !osp_same_shape(dst, src) || dst->dtype != src->dtype)
        return osp_error(OSP_ERR_RUNTIME, "copy_into: the destination must be contiguous, "
                                          "with the source's shape and dtype");
    if (dst->storage == src->storage)
        return osp_error(OSP_ERR_RUNTIME, "copy_into: source and destination overlap");
    osp_node n = ops_node(OSP_OP_COPY);
    n.n_in = 1;
    n.in[0] = src;
    n.n_out = 1;
    n.out[0] = dst;
    return osp_numel(dst) ? osp_dispatch(&n) : OSP_OK;
}
