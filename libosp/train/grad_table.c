/* grad_table.c — op code -> backward rule. */
#include "grad.h"

osp_grad_fn osp_grad_rule(osp_op op)
{
    switch (op) {
    case OSP_OP_BINARY: return osp_grad_binary;
    case OSP_OP_UNARY: return osp_grad_unary;
    case OSP_OP_CAST: return osp_grad_cast;
    case OSP_OP_COPY: return osp_grad_copy;
    case OSP_OP_REDUCE: return osp_grad_reduce;
    case OSP_OP_VIEW_RESHAPE:
    case OSP_OP_VIEW_PERMUTE:
    case OSP_OP_VIEW_SLICE: return osp_grad_view;
    case OSP_OP_CONCAT: return osp_grad_concat;
    default: return NULL;
    }
}
