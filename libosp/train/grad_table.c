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
    case OSP_OP_VIEW_SLICE:
    case OSP_OP_VIEW_EXPAND: return osp_grad_view;
    case OSP_OP_CONCAT: return osp_grad_concat;
    case OSP_OP_CONV: return osp_grad_conv;
    case OSP_OP_CONV_BACKWARD_DATA: return osp_grad_conv_transpose;
    case OSP_OP_PAD: return osp_grad_pad;
    case OSP_OP_INTERPOLATE: return osp_grad_interpolate;
    case OSP_OP_AVG_POOL: return osp_grad_avg_pool;
    case OSP_OP_MAX_POOL: return osp_grad_max_pool;
    case OSP_OP_GROUP_NORM: return osp_grad_group_norm;
    case OSP_OP_LAYER_NORM: return osp_grad_layer_norm;
    case OSP_OP_RMS_NORM: return osp_grad_rms_norm;
    case OSP_OP_EMBEDDING: return osp_grad_embedding;
    case OSP_OP_MATMUL: return osp_grad_matmul;
    case OSP_OP_LINEAR: return osp_grad_linear;
    case OSP_OP_SOFTMAX: return osp_grad_softmax;
    case OSP_OP_ATTENTION: return osp_grad_attention;
    case OSP_OP_RECOMPUTE: return osp_grad_recompute;
    default: return NULL;
    }
}
