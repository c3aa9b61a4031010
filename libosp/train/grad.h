/* grad.h — backward rules, one per differentiable op.
 *
 * A rule receives the recorded node and the gradients of its outputs
 * (gout[j], same shape as out[j]; never NULL — missing ones are zeros), and
 * sets gin[i] to the gradient of input i (exactly in[i]'s shape) for each
 * input with requires_grad; it may leave others NULL. Rules are written
 * with ops (ops.h, and the *_BACKWARD ops through their frontends), so they
 * run on every backend. New differentiable op => new rule + table entry in
 * grad_table.c + a finite-difference test. */
#ifndef OSP_GRAD_H
#define OSP_GRAD_H

#include "backend/op.h"

typedef osp_status (*osp_grad_fn)(const osp_node *n, osp_tensor *const *gout,
                                  osp_tensor **gin);

/* The rule for op, or NULL (not differentiable). */
osp_grad_fn osp_grad_rule(osp_op op);

/* Rules (grad_*.c) */
osp_status osp_grad_binary(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_unary(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_cast(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_copy(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_reduce(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_view(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_concat(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_matmul(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_linear(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_recompute(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_conv(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_conv_transpose(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_group_norm(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_layer_norm(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_rms_norm(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_softmax(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_attention(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_pad(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_interpolate(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_avg_pool(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_max_pool(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);
osp_status osp_grad_embedding(const osp_node *n, osp_tensor *const *gout, osp_tensor **gin);

#endif
