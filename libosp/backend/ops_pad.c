/* ops_pad.c — frontends of constant / replicate padding (ops.h) and its
 * backward op (ops_resample_bwd.h). */
#include "ops_resample_bwd.h"
#include "ops_util.h"

/* Validates the pads of a `ndim`-D tensor whose unpadded extents are `in`
 * (the forward input) and writes the padded extents to `out`. */
static osp_status pad_shapes(const char *op, int ndim, const int64_t *in, const int64_t *before,
                             const int64_t *after, osp_pad_mode mode, int64_t *out)
{
    if (ndim > 0 && (!before || !after))
        return osp_error(OSP_ERR_RUNTIME, "%s: before/after pads are NULL", op);
    if (mode != OSP_PAD_CONSTANT && mode != OSP_PAD_REPLICATE)
        return osp_error(OSP_ERR_RUNTIME, "%s: unknown pad mode %d", op, (int)mode);
    for (int d = 0; d < ndim; d++) {
        if (before[d] < 0 || after[d] < 0)
            return osp_error(OSP_ERR_RUNTIME, "%s: dim %d: pads %lld/%lld must not be negative",
                             op, d, (long long)before[d], (long long)after[d]);
        if (in[d] < 0)
            return osp_error(OSP_ERR_RUNTIME, "%s: dim %d: the pads exceed the padded extent",
                             op, d);
        if (mode == OSP_PAD_REPLICATE && in[d] == 0 && (before[d] || after[d]))
            return osp_error(OSP_ERR_RUNTIME,
                             "%s: dim %d is empty: there is nothing to replicate", op, d);
        if (__builtin_add_overflow(in[d], before[d], &out[d]) ||
            __builtin_add_overflow(out[d], after[d], &out[d]))
            return osp_error(OSP_ERR_RUNTIME, "%s: dim %d: padded size overflows", op, d);
    }
    return OSP_OK;
}

static void set_params(osp_node *n, int ndim, const int64_t *before, const int64_t *after,
                       osp_pad_mode mode, float value)
{
    for (int d = 0; d < ndim; d++) {
        n->p.pad.before[d] = before[d];
        n->p.pad.after[d] = after[d];
    }
    n->p.pad.mode = mode;
    n->p.pad.value = value;
}

osp_tensor *osp_pad(osp_tensor *x, const int64_t *before, const int64_t *after,
                    osp_pad_mode mode, float value)
{
    int64_t out[OSP_MAX_DIMS];
    if (!x || ops_check_float("pad", "x", x) ||
        pad_shapes("pad", x->ndim, x->shape, before, after, mode, out))
        return NULL;
    osp_node n = ops_node(OSP_OP_PAD);
    set_params(&n, x->ndim, before, after, mode, value);
    n.n_in = n.n_out = 1;
    if (!(n.in[0] = osp_prepare(x)) || !(n.out[0] = ops_output(x, x->ndim, out)))
        return NULL;
    return osp_run(&n);
}

osp_tensor *osp_pad_backward(osp_tensor *gy, const int64_t *before, const int64_t *after,
                             osp_pad_mode mode)
{
    const char *op = "pad_backward";
    if (!gy || ops_check_float(op, "gy", gy))
        return NULL;
    int64_t in[OSP_MAX_DIMS], check[OSP_MAX_DIMS];
    for (int d = 0; d < gy->ndim; d++)
        if (!before || !after || __builtin_sub_overflow(gy->shape[d], before[d], &in[d]) ||
            __builtin_sub_overflow(in[d], after[d], &in[d]))
            in[d] = -1;
    if (pad_shapes(op, gy->ndim, in, before, after, mode, check))
        return NULL;
    osp_node n = ops_node(OSP_OP_PAD_BACKWARD);
    set_params(&n, gy->ndim, before, after, mode, 0.0f);
    n.n_in = n.n_out = 1;
    if (!(n.in[0] = osp_prepare(gy)) || !(n.out[0] = ops_output(gy, gy->ndim, in)))
        return NULL;
    return osp_run(&n);
}
