/* grad_linalg.c — backward rules of matmul and linear, written as
 * products again (one sgemm each where the batch folds into rows). */
#include "grad.h"
#include "backend/ops.h"

/* Whether input i is present and needs a gradient. */
static bool wants(const osp_node *n, int i)
{
    return i < n->n_in && n->in[i] && n->in[i]->requires_grad;
}

static int64_t batch_numel(const osp_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim - 2; i++)
        n *= t->shape[i];
    return n;
}

/* g (computed over the output's batch) summed back to like's shape, times
 * the product's alpha. */
static osp_tensor *to_input(osp_tensor *g, const osp_tensor *like, float alpha)
{
    if (g && !osp_same_shape(g, like))
        g = osp_sum_to_shape(g, like->ndim, like->shape);
    return alpha == 1.0f ? g : osp_scale_shift(g, alpha, 0.0f);
}

/* y = op(a)·op(b) with op(a) [.., M, K], op(b) [.., K, N]:
 *   d op(a) = gy · op(b)ᵀ,  d op(b) = op(a)ᵀ · gy.
 * For a stored transposed ([.., K, M]) its gradient is (gy·op(b)ᵀ)ᵀ =
 * op(b)·gyᵀ, one product with the factors swapped; likewise for b. */
osp_status osp_grad_matmul(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    osp_tensor *a = n->in[0], *b = n->in[1], *gy = gout[0];
    bool ta = n->p.matmul.trans_a, tb = n->p.matmul.trans_b;
    float alpha = n->p.matmul.alpha;
    if (wants(n, 0)) {
        osp_tensor *g = ta ? osp_matmul(b, gy, tb, true) : osp_matmul(gy, b, false, !tb);
        if (!(gin[0] = to_input(g, a, alpha)))
            return osp_error_code();
    }
    if (wants(n, 1)) {
        osp_tensor *a2 = a, *gy2 = gy;
        bool fold = batch_numel(b) == 1 && !ta;
        if (fold) {
            /* A weight-like b: fold the batch into rows, so its gradient
             * is one [K, rows]·[rows, N] product, not one per batch
             * element summed afterwards. */
            int64_t k = a->shape[a->ndim - 1], cols = gy->shape[gy->ndim - 1];
            int64_t rows = batch_numel(a) * a->shape[a->ndim - 2];
            a2 = osp_reshape(a, 2, (const int64_t[]){rows, k});
            gy2 = osp_reshape(gy, 2, (const int64_t[]){rows, cols});
        }
        osp_tensor *g = tb ? osp_matmul(gy2, a2, true, ta) : osp_matmul(a2, gy2, !ta, false);
        if (fold)
            g = osp_reshape(g, b->ndim, b->shape);
        if (!(gin[1] = to_input(g, b, alpha)))
            return osp_error_code();
    }
    return OSP_OK;
}

/* y = x·wᵀ + bias over rows of x [.., I]:
 *   gx = gy·w,  gw = gyᵀ·x (summed over all rows),  gbias = Σ_rows gy. */
osp_status osp_grad_linear(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    if (n->p.linear.gelu_tanh)
        return osp_error(OSP_ERR_RUNTIME, "linear with GELU was recorded without its "
                                          "pre-activation (osp_linear_gelu under grad composes ops)");
    osp_tensor *x = n->in[0], *w = n->in[1];
    int64_t out = w->shape[0], in = w->shape[1], rows = 1;
    for (int i = 0; i < x->ndim - 1; i++)
        rows *= x->shape[i];
    osp_tensor *gy = osp_reshape(gout[0], 2, (const int64_t[]){rows, out});
    if (!gy)
        return osp_error_code();
    if (wants(n, 0) &&
        !(gin[0] = osp_reshape(osp_matmul(gy, w, false, false), x->ndim, x->shape)))
        return osp_error_code();
    if (wants(n, 1) &&
        !(gin[1] = osp_matmul(gy, osp_reshape(x, 2, (const int64_t[]){rows, in}), true, false)))
        return osp_error_code();
    if (wants(n, 2) && !(gin[2] = osp_sum(gy, 1, (const int[]){0}, false)))
        return osp_error_code();
    return OSP_OK;
}
