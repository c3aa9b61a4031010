/* cpu_kernels.h — the CPU reference kernels, one per op code (see op.h for
 * each node's inputs, outputs and parameters). float32 compute, OpenBLAS
 * sgemm for matrix products, OpenMP across cores. */
#ifndef OSP_CPU_KERNELS_H
#define OSP_CPU_KERNELS_H

#include "backend/backend.h"

/* cpu_elementwise.c */
osp_status cpu_binary(const osp_node *n);
osp_status cpu_unary(const osp_node *n);
osp_status cpu_unary_backward(const osp_node *n);
osp_status cpu_fill(const osp_node *n);
osp_status cpu_cast(const osp_node *n);
osp_status cpu_copy(const osp_node *n);
/* cpu_reduce.c */
osp_status cpu_reduce(const osp_node *n);
osp_status cpu_reduce_max_backward(const osp_node *n);
/* cpu_shape.c */
osp_status cpu_concat(const osp_node *n);

#endif
