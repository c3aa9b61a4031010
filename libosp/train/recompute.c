/* recompute.c — see recompute.h. */
#include "recompute.h"

#include "backend/op.h"
#include "backend/ops.h"
#include "train/grad.h"
#include "train/tape.h"

osp_tensor *osp_recompute(osp_region_fn fn, const void *ctx, int n_in, osp_tensor *const *in)
{
    if (!osp_grad_enabled())
        return fn(ctx, in);
    if (n_in < 0 || n_in > OSP_MAX_INPUTS) {
        osp_error(OSP_ERR_RUNTIME, "recompute: %d inputs (at most %d)", n_in, OSP_MAX_INPUTS);
        return NULL;
    }
    osp_grad_set_enabled(false);
    bool deferred = osp_grad_set_deferred(true);
    osp_tensor *out = fn(ctx, in);
    osp_grad_set_deferred(deferred);
    osp_grad_set_enabled(true);
    if (!out)
        return NULL;
    osp_node n = {.op = OSP_OP_RECOMPUTE, .n_in = n_in, .n_out = 1, .out = {out},
                  .p.recompute = {fn, ctx}};
    for (int i = 0; i < n_in; i++)
        n.in[i] = in[i];
    return osp_tape_record(&n) ? NULL : out;
}

osp_status osp_grad_recompute(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin)
{
    /* The inputs again, as leaves of the nested graph (same storage). */
    osp_tensor *alias[OSP_MAX_INPUTS] = {0};
    for (int i = 0; i < n->n_in; i++) {
        osp_tensor *x = n->in[i];
        if (!x)
            continue;
        if (!(alias[i] = osp_reshape(x, x->ndim, x->shape)))
            return osp_error_code();
        if (x->requires_grad)
            osp_requires_grad(alias[i]);
    }
    /* The inputs' gradients so far carry on into the nested backward, so
     * every addition happens in the order the plain backward would do it
     * (t6 and the text are read by every layer): bit-identical results. */
    for (int i = 0; i < n->n_in; i++)
        if (alias[i] && n->in[i]->requires_grad && n->in[i]->grad)
            alias[i]->grad = osp_retain(n->in[i]->grad);
    osp_tape_saved outer;
    osp_tape_suspend(&outer);
    osp_grad_set_enabled(true);
    osp_tensor *out = n->p.recompute.fn(n->p.recompute.ctx, alias);
    osp_grad_set_enabled(false);
    osp_status st = out ? OSP_OK : osp_error_code();
    if (!st && out->requires_grad) /* else nothing in the region wants a gradient */
        st = osp_backward(out, gout[0]);
    osp_tape_resume(&outer);
    /* ...and replace the inputs' gradients (gin stays NULL: nothing more to add). */
    for (int i = 0; !st && i < n->n_in; i++) {
        osp_tensor *x = n->in[i];
        if (alias[i] && x->requires_grad && alias[i]->grad && alias[i]->grad != x->grad) {
            osp_release(x->grad);
            x->grad = osp_retain(alias[i]->grad);
        }
    }
    (void)gin;
    if (st)
        osp_error_context("recomputed region");
    return st;
}
