/* ops_shape.c — reshape, permute, slice and expand (views, recorded on the
 * tape so gradients flow through them), concat and split. */
#include "ops_util.h"
#include "train/tape.h"

/* Records a view op (no kernel runs) and returns the view. */
static osp_tensor *record_view(osp_op op, osp_tensor *base, osp_tensor *view,
                               const osp_op_params *p)
{
    if (!view)
        return NULL;
    osp_node n = ops_node(op);
    n.n_in = 1;
    n.in[0] = base;
    n.n_out = 1;
    n.out[0] = view;
    if (p)
        n.p = *p;
    return osp_tape_record(&n) == OSP_OK ? view : NULL;
}

osp_tensor *osp_reshape(osp_tensor *x, int ndim, const int64_t *shape)
{
    osp_tensor *c = osp_contiguous(x);
    if (!c)
        return NULL;
    return record_view(OSP_OP_VIEW_RESHAPE, c, osp_view_reshape(c, ndim, shape), NULL);
}

osp_tensor *osp_permute(osp_tensor *x, const int *perm)
{
    if (!x)
        return NULL;
    osp_op_params p = {0};
    for (int i = 0; i < x->ndim; i++)
        p.permute.perm[i] = perm[i];
    return record_view(OSP_OP_VIEW_PERMUTE, x, osp_view_permute(x, perm), &p);
}

osp_tensor *osp_transpose(osp_tensor *x, int axis0, int axis1)
{
    if (!x)
        return NULL;
    int a = osp_axis(x, axis0), b = osp_axis(x, axis1);
    if (a < 0 || b < 0)
        return NULL;
    int perm[OSP_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        perm[i] = i;
    perm[a] = b;
    perm[b] = a;
    return osp_permute(x, perm);
}

osp_tensor *osp_slice(osp_tensor *x, int axis, int64_t start, int64_t end, int64_t step)
{
    if (!x)
        return NULL;
    osp_op_params p = {0};
    p.slice.axis = osp_axis(x, axis);
    if (p.slice.axis < 0)
        return NULL;
    p.slice.start = start;
    p.slice.end = end;
    p.slice.step = step;
    return record_view(OSP_OP_VIEW_SLICE, x, osp_view_slice(x, axis, start, end, step), &p);
}

osp_tensor *osp_expand(osp_tensor *x, int ndim, const int64_t *shape)
{
    return record_view(OSP_OP_VIEW_EXPAND, x, osp_view_expand(x, ndim, shape), NULL);
}

osp_status osp_split(osp_tensor *x, int axis, int n, const int64_t *sizes, osp_tensor **outs)
{
    if (!x)
        return osp_error_code() ? osp_error_code() : OSP_ERR_RUNTIME;
    int a = osp_axis(x, axis);
    if (a < 0)
        return osp_error_code();
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 0 || sizes[i] > x->shape[a] - at)
            return osp_error(OSP_ERR_RUNTIME, "split: sizes exceed dimension %d of size %lld", a,
                             (long long)x->shape[a]);
        at += sizes[i];
    }
    if (at != x->shape[a])
        return osp_error(OSP_ERR_RUNTIME, "split: sizes add up to %lld, dimension %d has %lld",
                         (long long)at, a, (long long)x->shape[a]);
    at = 0;
    for (int i = 0; i < n; i++) {
        outs[i] = osp_slice(x, a, at, at + sizes[i], 1);
        if (!outs[i])
            return osp_error_code();
        at += sizes[i];
    }
    return OSP_OK;
}

static osp_tensor *concat_node(int n, osp_tensor *const *xs, int axis)
{
    osp_node node = ops_node(OSP_OP_CONCAT);
    int64_t shape[OSP_MAX_DIMS];
    for (int d = 0; d < xs[0]->ndim; d++)
        shape[d] = xs[0]->shape[d];
    shape[axis] = 0;
    for (int i = 0; i < n; i++) {
        if (xs[i]->ndim != xs[0]->ndim)
            return osp_error(OSP_ERR_RUNTIME, "concat: inputs have different ranks"), NULL;
        for (int d = 0; d < xs[0]->ndim; d++)
            if (d != axis && xs[i]->shape[d] != xs[0]->shape[d])
                return osp_error(OSP_ERR_RUNTIME,
                                 "concat: input %d differs in dimension %d (%lld vs %lld)", i, d,
                                 (long long)xs[i]->shape[d], (long long)xs[0]->shape[d]), NULL;
        if (__builtin_add_overflow(shape[axis], xs[i]->shape[axis], &shape[axis]))
            return osp_error(OSP_ERR_RUNTIME, "concat: size overflows"), NULL;
        node.in[i] = osp_prepare(xs[i]);
        if (!node.in[i])
            return NULL;
    }
    node.n_in = n;
    node.n_out = 1;
    node.out[0] = ops_output(xs[0], xs[0]->ndim, shape);
    if (!node.out[0])
        return NULL;
    node.p.concat.axis = axis;
    return osp_run(&node);
}

osp_tensor *osp_concat(int n, osp_tensor *const *xs, int axis)
{
    if (n < 1) {
        osp_error(OSP_ERR_RUNTIME, "concat: no inputs");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!xs[i])
            return NULL;
        if (ops_check_float("concat", "input", xs[i]) || ops_check_devices("concat", 2,
                                                          (osp_tensor *[]){xs[0], xs[i]}))
            return NULL;
    }
    int a = osp_axis(xs[0], axis);
    if (a < 0)
        return NULL;
    if (n <= OSP_MAX_INPUTS)
        return concat_node(n, xs, a);
    /* More inputs than a node holds: concatenate in groups, then the groups. */
    osp_tensor *groups[OSP_MAX_INPUTS];
    int per = (n + OSP_MAX_INPUTS - 1) / OSP_MAX_INPUTS, ng = 0;
    for (int i = 0; i < n; i += per) {
        int k = n - i < per ? n - i : per;
        groups[ng] = osp_concat(k, xs + i, a);
        if (!groups[ng++])
            return NULL;
    }
    return osp_concat(ng, groups, a);
}
