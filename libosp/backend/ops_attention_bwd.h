/* ops_attention_bwd.h — frontends of the softmax and attention backward ops
 * (used by train/grad_attention.c). Results belong to the current pool. */
#ifndef OSP_OPS_ATTENTION_BWD_H
#define OSP_OPS_ATTENTION_BWD_H

#include "ops.h"

/* gx = y · (gy - Σ gy·y) over the last axis, y = softmax(x). */
osp_tensor *osp_softmax_backward(osp_tensor *gy, osp_tensor *y);
/* Gradients of osp_attention(q, k, v, mask, scale) for the output
 * gradient go [B,H,Lq,Dv]: sets *gq, *gk, *gv (shapes of q, k, v). The
 * probabilities are recomputed block by block, never stored whole. */
osp_status osp_attention_backward(osp_tensor *go, osp_tensor *q, osp_tensor *k, osp_tensor *v,
                                  osp_tensor *mask, float scale, osp_tensor **gq,
                                  osp_tensor **gk, osp_tensor **gv);

#endif
