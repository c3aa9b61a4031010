/* tape.c — the recorded list of nodes and the backward walk (see tape.h). */
#include "tape.h"
#include "grad.h"
#include "backend/ops.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local osp_node *tape;
static _Thread_local size_t tape_len, tape_cap;

osp_tensor *osp_requires_grad(osp_tensor *t)
{
    if (t)
        t->requires_grad = true;
    return t;
}

void osp_zero_grad(osp_tensor *t)
{
    if (t) {
        osp_release(t->grad);
        t->grad = NULL;
    }
}

size_t osp_tape_size(void) { return tape_len; }

static void node_release(osp_node *n)
{
    for (int i = 0; i < n->n_in; i++)
        osp_release(n->in[i]);
    for (int i = 0; i < n->n_out; i++)
        osp_release(n->out[i]);
}

void osp_tape_clear(void)
{
    for (size_t i = 0; i < tape_len; i++)
        node_release(&tape[i]);
    free(tape);
    tape = NULL;
    tape_len = tape_cap = 0;
}

void osp_tape_suspend(osp_tape_saved *saved)
{
    *saved = (osp_tape_saved){tape, tape_len, tape_cap};
    tape = NULL;
    tape_len = tape_cap = 0;
}

void osp_tape_resume(const osp_tape_saved *saved)
{
    osp_tape_clear();
    tape = saved->nodes;
    tape_len = saved->len;
    tape_cap = saved->cap;
}

osp_status osp_tape_record(const osp_node *n)
{
    if (!osp_grad_enabled())
        return OSP_OK;
    bool needs = false;
    for (int i = 0; i < n->n_in; i++)
        needs |= n->in[i] && n->in[i]->requires_grad;
    if (!needs && n->op != OSP_OP_RECOMPUTE) /* a region's parameters may want grads */
        return OSP_OK;
    if (!osp_grad_rule(n->op))
        return osp_error(OSP_ERR_RUNTIME, "op %s has no backward rule but an input requires grad",
                         osp_op_name(n->op));
    if (tape_len == tape_cap) {
        size_t cap = tape_cap ? 2 * tape_cap : 256;
        osp_node *t = realloc(tape, cap * sizeof *t);
        if (!t)
            return osp_error_nomem("autograd tape", cap * sizeof *t);
        tape = t;
        tape_cap = cap;
    }
    osp_node *rec = &tape[tape_len++];
    *rec = *n;
    for (int i = 0; i < n->n_in; i++)
        osp_retain(n->in[i]);
    for (int i = 0; i < n->n_out; i++) {
        osp_retain(n->out[i]);
        n->out[i]->requires_grad = true;
    }
    return OSP_OK;
}

/* Adds g into t->grad, keeping the sum alive beyond the current pool. A
 * first gradient stays as it is when it is laid out like t (a dense view,
 * such as attention's gradient of a per-head view); otherwise it is made
 * contiguous (parameters' gradients always are). */
static osp_status accumulate(osp_tensor *t, osp_tensor *g)
{
    if (!osp_same_shape(t, g))
        return osp_error(OSP_ERR_RUNTIME, "backward produced a gradient of the wrong shape");
    bool as_is = osp_same_layout(t, g) && osp_is_dense(g);
    osp_tensor *sum = t->grad ? osp_add(t->grad, g) : as_is ? g : osp_contiguous(g);
    if (!sum)
        return osp_error_code();
    osp_retain(sum);
    osp_release(t->grad);
    t->grad = sum;
    return OSP_OK;
}

static osp_status backward_node(const osp_node *n)
{
    osp_tensor *gout[OSP_MAX_OUTPUTS] = {0}, *gin[OSP_MAX_INPUTS] = {0};
    bool any = false;
    for (int j = 0; j < n->n_out; j++)
        any |= n->out[j]->grad != NULL;
    if (!any)
        return OSP_OK;
    for (int j = 0; j < n->n_out; j++)
        gout[j] = n->out[j]->grad ? n->out[j]->grad : osp_full_like(n->out[j], 0.0);
    osp_status st = osp_grad_rule(n->op)(n, gout, gin);
    for (int i = 0; st == OSP_OK && i < n->n_in; i++)
        if (n->in[i] && n->in[i]->requires_grad && gin[i])
            st = accumulate(n->in[i], gin[i]);
    if (st != OSP_OK)
        osp_error_context("backward of %s", osp_op_name(n->op));
    return st;
}

osp_status osp_backward(osp_tensor *loss, osp_tensor *seed)
{
    if (!loss || !loss->requires_grad)
        return osp_error(OSP_ERR_RUNTIME, "backward: the loss does not depend on any tensor "
                                          "that requires grad");
    bool was_on = osp_grad_set_enabled(false);
    osp_status st = OSP_OK;
    osp_pool_push();
    osp_tensor *g = seed ? seed : osp_full_like(loss, 1.0);
    st = g ? accumulate(loss, g) : osp_error_code();
    osp_pool_pop();
    for (size_t i = tape_len; st == OSP_OK && i-- > 0;) {
        osp_pool_push();
        st = backward_node(&tape[i]);
        osp_pool_pop();
        /* Intermediate gradients are done once their node has run. */
        for (int j = 0; j < tape[i].n_out; j++)
            osp_zero_grad(tape[i].out[j]);
    }
    osp_tape_clear();
    osp_grad_set_enabled(was_on);
    return st;
}
