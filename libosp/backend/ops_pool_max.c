/* ops_pool_max.c — frontends of max pooling (ops.h) and its backward op
 * (ops_pool_max_bwd.h). */
#include "ops_pool_max_bwd.h"
#include "ops_util.h"

#include <limits.h>

/* x [N, C, *S] with win->nsp = 1..3 spatial dims; PyTorch's rules: kernel
 * >= 1, stride >= 1, 0 <= pad <= kernel/2 (so every window holds at least
 * one real element), kernel within the padded input. Writes the output
 * shape (floor mode). */
static osp_status max_pool_shape(const char *op, const osp_window *win, const osp_tensor *x,
                                 int64_t *out)
{
    if (!win)
        return osp_error(OSP_ERR_RUNTIME, "%s: window is NULL", op);
    if (ops_check_float(op, "x", x))
        return osp_error_code();
    if (win->nsp < 1 || win->nsp > 3 || x->ndim != win->nsp + 2) {
        char buf[96];
        return osp_error(OSP_ERR_RUNTIME, "%s: %d spatial dims need a %d-D input, got %s", op,
                         win->nsp, win->nsp + 2, osp_shape_str(x, buf, sizeof buf));
    }
    out[0] = x->shape[0];
    out[1] = x->shape[1];
    for (int i = 0; i < win->nsp; i++) {
        int64_t k = win->kernel[i], s = win->stride[i], p = win->pad[i], in = x->shape[2 + i];
        if (k < 1 || k > INT_MAX || s < 1 || s > INT_MAX || p < 0 || p > k / 2)
            return osp_error(OSP_ERR_RUNTIME,
                             "%s: spatial dim %d: kernel %lld, stride %lld, pad %lld (need "
                             "kernel >= 1, stride >= 1, 0 <= pad <= kernel/2)",
                             op, i, (long long)k, (long long)s, (long long)p);
        if (in < 1 || in > INT64_MAX / 4 || in + 2 * p < k)
            return osp_error(OSP_ERR_RUNTIME,
                             "%s: kernel %lld does not fit spatial dim %d of size %lld padded "
                             "by %lld",
                             op, (long long)k, i, (long long)in, (long long)p);
        out[2 + i] = (in + 2 * p - k) / s + 1;
    }
    return OSP_OK;
}

osp_tensor *osp_max_pool(osp_tensor *x, const osp_window *win)
{
    int64_t out[5];
    if (!x || max_pool_shape("max_pool", win, x, out))
        return NULL;
    osp_node n = ops_node(OSP_OP_MAX_POOL);
    n.p.pool = *win;
    n.n_in = n.n_out = 1;
    if (!(n.in[0] = osp_prepare(x)) || !(n.out[0] = ops_output(x, x->ndim, out)))
        return NULL;
    return osp_run(&n);
}

osp_tensor *osp_max_pool_backward(osp_tensor *gy, osp_tensor *x, const osp_window *win)
{
    const char *op = "max_pool_backward";
    int64_t out[5];
    if (!gy || !x || max_pool_shape(op, win, x, out))
        return NULL;
    if (ops_check_float(op, "gy", gy))
        return NULL;
    for (int i = 0; i < x->ndim; i++) {
        if (gy->ndim != x->ndim || gy->shape[i] != out[i]) {
            char buf[96];
            osp_error(OSP_ERR_RUNTIME, "%s: gy %s is not the pooled shape of x", op,
                      osp_shape_str(gy, buf, sizeof buf));
            return NULL;
        }
    }
    osp_tensor *in[2] = {gy, x};
    if (ops_check_devices(op, 2, in))
        return NULL;
    osp_node n = ops_node(OSP_OP_MAX_POOL_BACKWARD);
    n.p.pool = *win;
    n.n_in = 2;
    n.n_out = 1;
    if (!(n.in[0] = osp_prepare(gy)) || !(n.in[1] = osp_prepare(x)) ||
        !(n.out[0] = ops_output(x, x->ndim, x->shape)))
        return NULL;
    return osp_run(&n);
}
