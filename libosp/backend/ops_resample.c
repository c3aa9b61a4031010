/* ops_resample.c — frontends of interpolation and average pooling (ops.h)
 * and of their backward ops (ops_resample_bwd.h). */
#include "ops_resample_bwd.h"
#include "ops_util.h"

#include <limits.h>

/* x [N, C, *S] with nsp = 1..3 spatial dims, none empty. */
static osp_status check_spatial_input(const char *op, const osp_tensor *x, int nsp)
{
    if (ops_check_float(op, "x", x))
        return osp_error_code();
    if (nsp < 1 || nsp > 3 || x->ndim != nsp + 2) {
        char buf[96];
        return osp_error(OSP_ERR_RUNTIME, "%s: %d spatial dims need a %d-D input, got %s", op,
                         nsp, nsp + 2, osp_shape_str(x, buf, sizeof buf));
    }
    for (int i = 0; i < nsp; i++)
        if (x->shape[2 + i] < 1)
            return osp_error(OSP_ERR_RUNTIME, "%s: spatial dim %d of the input is empty", op, i);
    return OSP_OK;
}

/* Interpolation sizes and mode; writes the output shape. */
static osp_status interp_shape(const char *op, int nsp, const int64_t *in_shape,
                               const int64_t *out_size, osp_interp_mode mode,
                               bool align_corners, int64_t *out)
{
    if (mode != OSP_INTERP_NEAREST && mode != OSP_INTERP_LINEAR)
        return osp_error(OSP_ERR_RUNTIME, "%s: unknown interpolation mode %d", op, (int)mode);
    if (mode == OSP_INTERP_NEAREST && align_corners)
        return osp_error(OSP_ERR_RUNTIME, "%s: align_corners applies to linear modes only", op);
    if (!out_size)
        return osp_error(OSP_ERR_RUNTIME, "%s: output size is NULL", op);
    out[0] = in_shape[0];
    out[1] = in_shape[1];
    for (int i = 0; i < nsp; i++) {
        if (out_size[i] < 1)
            return osp_error(OSP_ERR_RUNTIME, "%s: output size %lld in spatial dim %d is not "
                             "positive", op, (long long)out_size[i], i);
        out[2 + i] = out_size[i];
    }
    return OSP_OK;
}

static void set_interp(osp_node *n, int nsp, osp_interp_mode mode, bool align_corners)
{
    n->p.interp.mode = mode;
    n->p.interp.align_corners = align_corners;
    n->p.interp.nsp = nsp;
}

osp_tensor *osp_interpolate(osp_tensor *x, int nsp, const int64_t *out_size,
                            osp_interp_mode mode, bool align_corners)
{
    int64_t out[5];
    if (!x || check_spatial_input("interpolate", x, nsp) ||
        interp_shape("interpolate", nsp, x->shape, out_size, mode, align_corners, out))
        return NULL;
    osp_node n = ops_node(OSP_OP_INTERPOLATE);
    set_interp(&n, nsp, mode, align_corners);
    n.n_in = n.n_out = 1;
    if (!(n.in[0] = osp_prepare(x)) || !(n.out[0] = ops_output(x, x->ndim, out)))
        return NULL;
    return osp_run(&n);
}

osp_tensor *osp_interpolate_backward(osp_tensor *gy, int nsp, const int64_t *x_shape,
                                     osp_interp_mode mode, bool align_corners)
{
    const char *op = "interpolate_backward";
    int64_t out[5];
    if (!gy || check_spatial_input(op, gy, nsp))
        return NULL;
    if (!x_shape || x_shape[0] != gy->shape[0] || x_shape[1] != gy->shape[1]) {
        osp_error(OSP_ERR_RUNTIME, "%s: x's batch and channels must match gy's", op);
        return NULL;
    }
    /* gy's extents are the forward output size; x's must be valid inputs. */
    if (interp_shape(op, nsp, x_shape, x_shape + 2, mode, align_corners, out) ||
        interp_shape(op, nsp, gy->shape, gy->shape + 2, mode, align_corners, out))
        return NULL;
    osp_node n = ops_node(OSP_OP_INTERPOLATE_BACKWARD);
    set_interp(&n, nsp, mode, align_corners);
    n.n_in = n.n_out = 1;
    if (!(n.in[0] = osp_prepare(gy)) || !(n.out[0] = ops_output(gy, gy->ndim, x_shape)))
        return NULL;
    return osp_run(&n);
}

/* Window of an average pool over x_shape: kernel >= 1, stride >= 1,
 * 0 <= pad <= kernel/2 (PyTorch's rule), kernel within the padded input;
 * writes the output shape. */
static osp_status pool_shape(const char *op, const osp_window *win, const int64_t *x_shape,
                             int64_t *out)
{
    out[0] = x_shape[0];
    out[1] = x_shape[1];
    for (int i = 0; i < win->nsp; i++) {
        int64_t k = win->kernel[i], s = win->stride[i], p = win->pad[i];
        if (k < 1 || k > INT_MAX || s < 1 || s > INT_MAX || p < 0 || p > k / 2)
            return osp_error(OSP_ERR_RUNTIME,
                             "%s: spatial dim %d: kernel %lld, stride %lld, pad %lld (need "
                             "kernel >= 1, stride >= 1, 0 <= pad <= kernel/2)",
                             op, i, (long long)k, (long long)s, (long long)p);
        if (x_shape[2 + i] < 1)
            return osp_error(OSP_ERR_RUNTIME, "%s: spatial dim %d of the input is empty", op, i);
        if (x_shape[2 + i] + 2 * p < k)
            return osp_error(OSP_ERR_RUNTIME,
                             "%s: kernel %lld does not fit spatial dim %d of size %lld padded "
                             "by %lld",
                             op, (long long)k, i, (long long)x_shape[2 + i], (long long)p);
        out[2 + i] = (x_shape[2 + i] + 2 * p - k) / s + 1;
    }
    return OSP_OK;
}

osp_tensor *osp_avg_pool(osp_tensor *x, const osp_window *win)
{
    int64_t out[5];
    if (!x)
        return NULL;
    if (!win) {
        osp_error(OSP_ERR_RUNTIME, "avg_pool: window is NULL");
        return NULL;
    }
    if (check_spatial_input("avg_pool", x, win->nsp) || pool_shape("avg_pool", win, x->shape, out))
        return NULL;
    osp_node n = ops_node(OSP_OP_AVG_POOL);
    n.p.pool = *win;
    n.n_in = n.n_out = 1;
    if (!(n.in[0] = osp_prepare(x)) || !(n.out[0] = ops_output(x, x->ndim, out)))
        return NULL;
    return osp_run(&n);
}

osp_tensor *osp_avg_pool_backward(osp_tensor *gy, const osp_window *win, const int64_t *x_shape)
{
    const char *op = "avg_pool_backward";
    int64_t out[5];
    if (!gy)
        return NULL;
    if (!win || !x_shape) {
        osp_error(OSP_ERR_RUNTIME, "%s: window or x shape is NULL", op);
        return NULL;
    }
    if (check_spatial_input(op, gy, win->nsp) || pool_shape(op, win, x_shape, out))
        return NULL;
    for (int i = 0; i < gy->ndim; i++) {
        if (out[i] != gy->shape[i]) {
            char buf[96];
            osp_error(OSP_ERR_RUNTIME, "%s: gy %s is not the pooled shape of x", op,
                      osp_shape_str(gy, buf, sizeof buf));
            return NULL;
        }
    }
    osp_node n = ops_node(OSP_OP_AVG_POOL_BACKWARD);
    n.p.pool = *win;
    n.n_in = n.n_out = 1;
    if (!(n.in[0] = osp_prepare(gy)) || !(n.out[0] = ops_output(gy, gy->ndim, x_shape)))
        return NULL;
    return osp_run(&n);
}
