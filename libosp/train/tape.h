/* tape.h — reverse-mode automatic differentiation.
 *
 * With gradients on (osp_grad_set_enabled(true)), every op whose inputs
 * include a tensor with requires_grad is recorded here (osp_run calls
 * osp_tape_record); its outputs then require grad too. osp_backward()
 * walks the tape in reverse, calling each op's rule (train/grad.h) with the
 * gradients of its outputs and accumulating the gradients of its inputs
 * into their `grad` field. Gradients of intermediate results are freed as
 * soon as they have been propagated; leaves keep theirs until released
 * (osp_zero_grad) or the next backward adds to them.
 *
 * Backward runs with gradients off and inside its own pools, so rules may
 * create temporaries freely. */
#ifndef OSP_TAPE_H
#define OSP_TAPE_H

#include "backend/op.h"

/* Records n when gradients are on and an input requires grad. */
osp_status osp_tape_record(const osp_node *n);
/* Backpropagates from `loss`; `seed` is d(objective)/d(loss), or NULL for
 * ones (a scalar loss). Clears the tape afterwards. */
osp_status osp_backward(osp_tensor *loss, osp_tensor *seed);
/* Drops every recorded node (and the references it held). */
void osp_tape_clear(void);
size_t osp_tape_size(void);
/* A nested tape, for a backward rule that records and backpropagates a
 * sub-graph (train/recompute.c): osp_tape_suspend saves the current tape
 * and starts an empty one; osp_tape_resume restores the saved one. */
typedef struct osp_tape_saved {
    osp_node *nodes;
    size_t len, cap;
} osp_tape_saved;
void osp_tape_suspend(osp_tape_saved *saved);
void osp_tape_resume(const osp_tape_saved *saved);
/* Marks t as a leaf that wants a gradient (returns t). */
osp_tensor *osp_requires_grad(osp_tensor *t);
/* Releases t->grad. */
void osp_zero_grad(osp_tensor *t);

#endif
