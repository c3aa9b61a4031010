/* ops_pool_max_bwd.h — frontend of max pooling's backward op (used by
 * train/grad_pool_max.c). */
#ifndef OSP_OPS_POOL_MAX_BWD_H
#define OSP_OPS_POOL_MAX_BWD_H

#include "ops.h"

/* gy: gradient of osp_max_pool(x, win). Each gy element goes to the first
 * maximum (in scan order) of its window in x; the result has x's shape. */
osp_tensor *osp_max_pool_backward(osp_tensor *gy, osp_tensor *x, const osp_window *win);

#endif
