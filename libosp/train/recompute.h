/* recompute.h — gradient checkpointing: trade compute for memory.
 *
 * osp_recompute(fn, ctx, n, in) returns fn(ctx, in) computed with the tape
 * off, so none of the region's intermediate activations is kept; one tape
 * node stands for the whole region. Its backward runs fn again with the
 * tape on (over aliases of the inputs, on a nested tape), backpropagates
 * the output's gradient through that, and hands back the inputs'
 * gradients; the region's parameters (leaves) collect theirs as usual. fn
 * must be deterministic, and ctx and every tensor fn reads other than `in`
 * must live until the backward: with the same kernels the gradients are
 * bit for bit those of the plain forward. Without gradients on, it is just
 * fn(ctx, in). */
#ifndef OSP_TRAIN_RECOMPUTE_H
#define OSP_TRAIN_RECOMPUTE_H

#include "core/tensor.h"

typedef osp_tensor *(*osp_region_fn)(const void *ctx, osp_tensor *const *in);

/* n_in <= OSP_MAX_INPUTS (backend/op.h); in[i] may be NULL. */
osp_tensor *osp_recompute(osp_region_fn fn, const void *ctx, int n_in, osp_tensor *const *in);

#endif
