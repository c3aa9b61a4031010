/* ops_elementwise_bwd.h — frontends of the backward-only ops of the
 * elementwise and reduction families (used by train/grad_*.c). */
#ifndef OSP_OPS_ELEMENTWISE_BWD_H
#define OSP_OPS_ELEMENTWISE_BWD_H

#include "ops.h"

/* gy * f'(x) for the unary op `kind` with its parameters. */
osp_tensor *osp_unary_backward(osp_tensor *gy, osp_tensor *x, osp_unary_kind kind, float alpha,
                               float beta);
/* Gradient of max over the axes set `axes` (bit mask): gy (keepdim shape)
 * split evenly between the elements of x equal to y (keepdim shape). */
osp_tensor *osp_reduce_max_backward(osp_tensor *gy, osp_tensor *x, osp_tensor *y, uint32_t axes);

#endif
