/* ops_conv.c — frontends of convolution (ops.h): conv, transposed conv, and
 * the backward-data / backward-weight ops (ops_conv_bwd.h).
 *
 * Every size is validated before use: window parameters, channel counts,
 * the relation between input and output extents, and the 2^31 - 1 limit of
 * the BLAS interface on matrix dimensions (channels·taps, positions). */
#include "ops_conv_bwd.h"
#include "ops_util.h"
#include "core/checked.h"

#include <limits.h>

osp_window osp_window_default(int nsp)
{
    osp_window w = {0};
    w.nsp = nsp;
    for (int i = 0; i < 3; i++) {
        w.kernel[i] = 1;
        w.stride[i] = 1;
        w.dilation[i] = 1;
    }
    return w;
}

static osp_status check_window(const char *op, const osp_window *win, int ndim)
{
    if (!win)
        return osp_error(OSP_ERR_RUNTIME, "%s: window is NULL", op);
    if (ndim < 3 || ndim > 5 || win->nsp != ndim - 2)
        return osp_error(OSP_ERR_RUNTIME,
                         "%s: a %d-D input needs a window of %d spatial dims, got nsp %d", op,
                         ndim, ndim - 2, win->nsp);
    for (int i = 0; i < win->nsp; i++) {
        if (win->stride[i] < 1 || win->stride[i] > INT_MAX || win->pad[i] < 0 ||
            win->pad[i] > INT_MAX || win->dilation[i] < 1 || win->dilation[i] > INT_MAX)
            return osp_error(OSP_ERR_RUNTIME,
                             "%s: spatial dim %d: stride %lld, pad %lld, dilation %lld "
                             "(need stride >= 1, pad >= 0, dilation >= 1)",
                             op, i, (long long)win->stride[i], (long long)win->pad[i],
                             (long long)win->dilation[i]);
    }
    return OSP_OK;
}

static const char *dims_str(int ndim, const int64_t *shape, char *buf, size_t len)
{
    osp_tensor t = {.ndim = ndim};
    for (int i = 0; i < ndim; i++)
        t.shape[i] = shape[i];
    return osp_shape_str(&t, buf, len);
}

static osp_status blas_limit(const char *op, const char *what, int64_t v)
{
    if (v > INT_MAX)
        return osp_error(OSP_ERR_RUNTIME, "%s: %s (%lld) exceeds the BLAS limit of %d", op,
                         what, (long long)v, INT_MAX);
    return OSP_OK;
}

static osp_status shape_error(const char *op, int ndim, const int64_t *xs, const int64_t *ws,
                              const int64_t *ys, const char *why)
{
    char bx[96], bw[96], by[96];
    return osp_error(OSP_ERR_RUNTIME,
                     "%s: input %s, weight %s and output %s do not form a convolution (%s)", op,
                     dims_str(ndim, xs, bx, sizeof bx), dims_str(ndim, ws, bw, sizeof bw),
                     dims_str(ndim, ys, by, sizeof by), why);
}

/* Checks that x [N, C, *Sx], w [O, C, *K] and y [N, O, *Sy] form a
 * convolution under win (checked already): every extent positive (N may be
 * 0), channels agree, each Sx within [base, base + max(stride, dilation))
 * for base = (Sy - 1)·stride - 2·pad + dilation·(K - 1) + 1, and the
 * matrices fit the BLAS interface. */
static osp_status check_conv_shapes(const char *op, int ndim, const int64_t *xs,
                                    const int64_t *ws, const int64_t *ys, const osp_window *win)
{
    bool ok = xs[0] >= 0 && xs[0] == ys[0] && xs[1] == ws[1] && ys[1] == ws[0];
    for (int i = 0; i < ndim; i++)
        ok = ok && ws[i] >= 1 && (i == 0 || (xs[i] >= 1 && ys[i] >= 1));
    if (!ok)
        return shape_error(op, ndim, xs, ws, ys,
                           "channel counts differ or an extent is not positive");
    int64_t rows = ws[1], xsize = 1, ysize = 1;
    for (int i = 0; i < win->nsp; i++) {
        int64_t k = ws[2 + i], s = win->stride[i], d = win->dilation[i];
        if (k > INT_MAX || ys[2 + i] > INT_MAX || xs[2 + i] > INT_MAX)
            return shape_error(op, ndim, xs, ws, ys, "an extent exceeds the BLAS limit");
        int64_t base = (ys[2 + i] - 1) * s - 2 * win->pad[i] + d * (k - 1) + 1;
        int64_t slack = s > d ? s : d;
        if (xs[2 + i] < base || xs[2 + i] >= base + slack)
            return shape_error(op, ndim, xs, ws, ys, "spatial extents disagree with the window");
        if (!osp_mul_i64(rows, k, &rows) || !osp_mul_i64(xsize, xs[2 + i], &xsize) ||
            !osp_mul_i64(ysize, ys[2 + i], &ysize))
            return shape_error(op, ndim, xs, ws, ys, "a matrix dimension overflows");
    }
    if (blas_limit(op, "output channels", ws[0]) || blas_limit(op, "input channels", ws[1]) ||
        blas_limit(op, "channels x kernel taps", rows) ||
        blas_limit(op, "input positions per item", xsize) ||
        blas_limit(op, "output positions per item", ysize))
        return osp_error_code();
    return OSP_OK;
}

/* Error unless t (when present) is a float tensor of shape [len]. */
static osp_status check_vector(const char *op, const char *what, const osp_tensor *t,
                               int64_t len)
{
    if (!t)
        return OSP_OK;
    if (ops_check_float(op, what, t))
        return osp_error_code();
    if (t->ndim != 1 || t->shape[0] != len) {
        char buf[96];
        return osp_error(OSP_ERR_RUNTIME, "%s: %s must have shape [%lld], got %s", op, what,
                         (long long)len, osp_shape_str(t, buf, sizeof buf));
    }
    return OSP_OK;
}

/* Common checks of the two tensor operands a (the data) and w. */
static osp_status check_operands(const char *op, const char *a_name, const osp_tensor *a,
                                 const osp_tensor *w, const osp_tensor *bias,
                                 const osp_window *win)
{
    osp_tensor *ts[3] = {(osp_tensor *)a, (osp_tensor *)w, (osp_tensor *)bias};
    if (ops_check_float(op, a_name, a) || ops_check_rank(op, a_name, a, 3, 5) ||
        ops_check_float(op, "weight", w) || ops_check_devices(op, 3, ts) ||
        check_window(op, win, a->ndim))
        return osp_error_code();
    if (w->ndim != a->ndim) {
        char buf[96];
        return osp_error(OSP_ERR_RUNTIME, "%s: weight must have %d dimensions, got %s", op,
                         a->ndim, osp_shape_str(w, buf, sizeof buf));
    }
    return OSP_OK;
}

/* Runs a node with inputs in[0..n_in) (NULLs allowed) prepared for the
 * kernel and one or two outputs. */
static osp_tensor *run(osp_node *n, osp_tensor *const *in, int n_in)
{
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++)
        if (in[i] && !(n->in[i] = osp_prepare(in[i])))
            return NULL;
    for (int i = 0; i < n->n_out; i++)
        if (!n->out[i])
            return NULL;
    return osp_run(n);
}

osp_tensor *osp_conv(osp_tensor *x, osp_tensor *w, osp_tensor *bias, const osp_window *win)
{
    const char *op = "conv";
    if (!x || !w || check_operands(op, "x", x, w, bias, win) ||
        check_vector(op, "bias", bias, w->shape[0]))
        return NULL;
    int64_t ys[5] = {x->shape[0], w->shape[0]};
    for (int i = 0; i < win->nsp; i++) {
        int64_t span = win->dilation[i] * (w->shape[2 + i] - 1) + 1;
        int64_t padded = x->shape[2 + i] + 2 * win->pad[i];
        if (w->shape[2 + i] < 1 || w->shape[2 + i] > INT_MAX || padded < span) {
            char bx[96], bw[96];
            osp_error(OSP_ERR_RUNTIME,
                      "%s: kernel %s (dilated extent %lld) does not fit input %s padded to %lld "
                      "in spatial dim %d",
                      op, osp_shape_str(w, bw, sizeof bw), (long long)span,
                      osp_shape_str(x, bx, sizeof bx), (long long)padded, i);
            return NULL;
        }
        ys[2 + i] = (padded - span) / win->stride[i] + 1;
    }
    if (check_conv_shapes(op, x->ndim, x->shape, w->shape, ys, win))
        return NULL;
    osp_node n = ops_node(OSP_OP_CONV);
    n.p.conv = *win;
    n.n_out = 1;
    n.out[0] = ops_output(x, x->ndim, ys);
    osp_tensor *in[3] = {x, w, bias};
    return run(&n, in, 3);
}

static osp_tensor *backward_data(const char *op, osp_tensor *gy, osp_tensor *w, osp_tensor *bias,
                                 const osp_window *win, int ndim, const int64_t *x_shape)
{
    if (!gy || !w || check_operands(op, "input", gy, w, bias, win) ||
        check_vector(op, "bias", bias, w->shape[1]))
        return NULL;
    if (ndim != gy->ndim) {
        osp_error(OSP_ERR_RUNTIME, "%s: the result must have rank %d, got %d", op, gy->ndim,
                  ndim);
        return NULL;
    }
    if (check_conv_shapes(op, ndim, x_shape, w->shape, gy->shape, win))
        return NULL;
    osp_node n = ops_node(OSP_OP_CONV_BACKWARD_DATA);
    n.p.conv = *win;
    n.n_out = 1;
    n.out[0] = ops_output(gy, ndim, x_shape);
    osp_tensor *in[3] = {gy, w, bias};
    return run(&n, in, 3);
}

osp_tensor *osp_conv_backward_data(osp_tensor *gy, osp_tensor *w, osp_tensor *bias,
                                   const osp_window *win, int ndim, const int64_t *x_shape)
{
    return backward_data("conv_backward_data", gy, w, bias, win, ndim, x_shape);
}

osp_tensor *osp_conv_transpose(osp_tensor *x, osp_tensor *w, osp_tensor *bias,
                               const osp_window *win, const int64_t *output_padding)
{
    const char *op = "conv_transpose";
    if (!x || !w || check_operands(op, "x", x, w, NULL, win))
        return NULL;
    /* x plays the convolution's output (w [C_in, C_out, *K]); the result
     * is the input-shaped [N, C_out, *S']. */
    int64_t out[5] = {x->shape[0], w->shape[1]};
    for (int i = 0; i < win->nsp; i++) {
        int64_t s = win->stride[i], d = win->dilation[i], k = w->shape[2 + i];
        int64_t extra = output_padding ? output_padding[i] : 0;
        if (extra < 0 || extra >= (s > d ? s : d)) {
            osp_error(OSP_ERR_RUNTIME,
                      "%s: output_padding %lld in spatial dim %d must be in [0, max(stride, "
                      "dilation))",
                      op, (long long)extra, i);
            return NULL;
        }
        if (k < 1 || k > INT_MAX || x->shape[2 + i] < 1 || x->shape[2 + i] > INT_MAX)
            break; /* check_conv_shapes reports it */
        out[2 + i] = (x->shape[2 + i] - 1) * s - 2 * win->pad[i] + d * (k - 1) + extra + 1;
        if (out[2 + i] < 1) {
            osp_error(OSP_ERR_RUNTIME, "%s: output size %lld in spatial dim %d is not positive",
                      op, (long long)out[2 + i], i);
            return NULL;
        }
    }
    return backward_data(op, x, w, bias, win, x->ndim, out);
}

osp_status osp_conv_backward_weight(osp_tensor *gy, osp_tensor *x, const osp_window *win,
                                    const int64_t *w_shape, osp_tensor **gw, osp_tensor **gbias)
{
    const char *op = "conv_backward_weight";
    if (!gy || !x)
        return osp_error_code() ? osp_error_code() : OSP_ERR_RUNTIME;
    osp_tensor *ts[2] = {gy, x};
    if (ops_check_float(op, "gy", gy) || ops_check_float(op, "x", x) ||
        ops_check_rank(op, "x", x, 3, 5) || ops_check_devices(op, 2, ts) ||
        check_window(op, win, x->ndim))
        return osp_error_code();
    if (gy->ndim != x->ndim)
        return osp_error(OSP_ERR_RUNTIME, "%s: gy and x differ in rank", op);
    if (check_conv_shapes(op, x->ndim, x->shape, w_shape, gy->shape, win))
        return osp_error_code();
    osp_node n = ops_node(OSP_OP_CONV_BACKWARD_WEIGHT);
    n.p.conv = *win;
    n.n_out = gbias ? 2 : 1;
    n.out[0] = ops_output(x, x->ndim, w_shape);
    if (gbias)
        n.out[1] = ops_output(x, 1, w_shape);
    osp_tensor *in[2] = {gy, x};
    if (!run(&n, in, 2))
        return osp_error_code();
    *gw = n.out[0];
    if (gbias)
        *gbias = n.out[1];
    return OSP_OK;
}
