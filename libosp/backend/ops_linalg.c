/* ops_linalg.c — frontends of matmul and linear (ops.h). */
#include "ops_util.h"

#include <limits.h>

/* BLAS takes int sizes: every matrix dimension (and so every leading
 * dimension) must fit one. Batch and row counts may be larger. */
static osp_status check_blas_dims(const char *op, int n, const int64_t *dims)
{
    for (int i = 0; i < n; i++)
        if (dims[i] > INT_MAX)
            return osp_error(OSP_ERR_RUNTIME,
                             "%s: matrix dimension %lld exceeds the BLAS limit %d", op,
                             (long long)dims[i], INT_MAX);
    return OSP_OK;
}

osp_tensor *osp_matmul(osp_tensor *a, osp_tensor *b, bool trans_a, bool trans_b)
{
    if (!a || !b)
        return NULL;
    osp_tensor *ab[2] = {a, b};
    if (ops_check_float("matmul", "a", a) || ops_check_float("matmul", "b", b) ||
        ops_check_rank("matmul", "a", a, 2, OSP_MAX_DIMS) ||
        ops_check_rank("matmul", "b", b, 2, OSP_MAX_DIMS) || ops_check_devices("matmul", 2, ab))
        return NULL;
    int64_t a_rows = a->shape[a->ndim - 2], a_cols = a->shape[a->ndim - 1];
    int64_t b_rows = b->shape[b->ndim - 2], b_cols = b->shape[b->ndim - 1];
    int64_t m = trans_a ? a_cols : a_rows, k = trans_a ? a_rows : a_cols;
    int64_t kb = trans_b ? b_cols : b_rows, n = trans_b ? b_rows : b_cols;
    if (k != kb) {
        char sa[128], sb[128];
        osp_error(OSP_ERR_RUNTIME,
                  "matmul: inner dimensions differ: a %s%s gives K = %lld, b %s%s gives K = %lld",
                  osp_shape_str(a, sa, sizeof sa), trans_a ? " (transposed)" : "", (long long)k,
                  osp_shape_str(b, sb, sizeof sb), trans_b ? " (transposed)" : "",
                  (long long)kb);
        return NULL;
    }
    const int64_t dims[4] = {a_rows, a_cols, b_rows, b_cols};
    int nd;
    int64_t shape[OSP_MAX_DIMS];
    if (check_blas_dims("matmul", 4, dims) ||
        ops_broadcast_shape("matmul (batch dimensions)", a->ndim - 2, a->shape, b->ndim - 2,
                            b->shape, &nd, shape))
        return NULL;
    shape[nd] = m;
    shape[nd + 1] = n;
    osp_node node = ops_node(OSP_OP_MATMUL);
    node.n_in = 2;
    node.in[0] = osp_prepare(a);
    node.in[1] = osp_prepare(b);
    if (!node.in[0] || !node.in[1])
        return NULL;
    node.n_out = 1;
    node.out[0] = ops_output(a, nd + 2, shape);
    if (!node.out[0])
        return NULL;
    node.p.matmul.trans_a = trans_a;
    node.p.matmul.trans_b = trans_b;
    node.p.matmul.alpha = 1.0f;
    return osp_run(&node);
}

static osp_tensor *linear_node(osp_tensor *x, osp_tensor *w, osp_tensor *bias, bool gelu)
{
    if (!x || !w)
        return NULL;
    osp_tensor *all[3] = {x, w, bias};
    if (ops_check_float("linear", "x", x) || ops_check_float("linear", "w", w) ||
        (bias && ops_check_float("linear", "bias", bias)) ||
        ops_check_rank("linear", "x", x, 1, OSP_MAX_DIMS) ||
        ops_check_rank("linear", "w", w, 2, 2) || ops_check_devices("linear", 3, all))
        return NULL;
    int64_t out = w->shape[0], in = w->shape[1];
    char sx[128], sw[128];
    if (x->shape[x->ndim - 1] != in) {
        osp_error(OSP_ERR_RUNTIME, "linear: x %s does not end in w's input size (w is %s)",
                  osp_shape_str(x, sx, sizeof sx), osp_shape_str(w, sw, sizeof sw));
        return NULL;
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != out)) {
        osp_error(OSP_ERR_RUNTIME, "linear: bias must have shape [%lld] for w %s, got %s",
                  (long long)out, osp_shape_str(w, sw, sizeof sw),
                  osp_shape_str(bias, sx, sizeof sx));
        return NULL;
    }
    const int64_t dims[2] = {out, in};
    if (check_blas_dims("linear", 2, dims))
        return NULL;
    int64_t shape[OSP_MAX_DIMS];
    for (int i = 0; i < x->ndim - 1; i++)
        shape[i] = x->shape[i];
    shape[x->ndim - 1] = out;
    osp_node node = ops_node(OSP_OP_LINEAR);
    node.n_in = 3;
    node.in[0] = osp_prepare(x);
    node.in[1] = osp_prepare(w);
    node.in[2] = bias ? osp_prepare(bias) : NULL;
    if (!node.in[0] || !node.in[1] || (bias && !node.in[2]))
        return NULL;
    node.n_out = 1;
    node.out[0] = ops_output(x, x->ndim, shape);
    if (!node.out[0])
        return NULL;
    node.p.linear.gelu_tanh = gelu;
    return osp_run(&node);
}

osp_tensor *osp_linear(osp_tensor *x, osp_tensor *w, osp_tensor *bias)
{
    return linear_node(x, w, bias, false);
}

osp_tensor *osp_linear_gelu(osp_tensor *x, osp_tensor *w, osp_tensor *bias)
{
    /* the fused node has no gradient rule (its backward would need the
     * pre-activation it never writes), and a pass to be replayed with
     * gradients must compute what the replay will (bit for bit) */
    if (osp_grad_enabled() || osp_grad_deferred())
        return osp_gelu_tanh(osp_linear(x, w, bias));
    return linear_node(x, w, bias, true);
}
