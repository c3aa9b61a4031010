/* ops_util.h — small helpers shared by the op frontends (ops_*.c). */
#ifndef OSP_OPS_UTIL_H
#define OSP_OPS_UTIL_H

#include "ops.h"

/* A node for op with zeroed params. */
static inline osp_node ops_node(osp_op op)
{
    osp_node n = {0};
    n.op = op;
    return n;
}

/* New contiguous compute-dtype (f32) output on like's device. */
osp_tensor *ops_output(const osp_tensor *like, int ndim, const int64_t *shape);
/* Like ops_output, but stored in the dim order of `order` (same rank; its
 * dims by decreasing stride, the last dim innermost) and returned as a
 * view in `shape`'s order: a kernel that writes through strides then hands
 * a permuting consumer a contiguous result. Contiguous when `order` is. */
osp_tensor *ops_output_ordered(const osp_tensor *order, int ndim, const int64_t *shape);
/* numpy broadcasting of two shapes; error names `op`. */
osp_status ops_broadcast_shape(const char *op, int na, const int64_t *sa, int nb,
                               const int64_t *sb, int *ndim, int64_t *shape);
/* Error unless t has a float dtype / the given rank range. */
osp_status ops_check_float(const char *op, const char *what, const osp_tensor *t);
osp_status ops_check_rank(const char *op, const char *what, const osp_tensor *t, int lo, int hi);
/* Error unless every non-NULL tensor is on the same device as the first. */
osp_status ops_check_devices(const char *op, int n, osp_tensor *const *ts);

#endif
