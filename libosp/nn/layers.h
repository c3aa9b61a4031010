/* layers.h — parameterised layers shared by the models, each a struct of
 * weights plus a forward written with ops (so it trains through the tape
 * and runs on any backend). `*_load` reads the weights under `prefix`
 * (e.g. "encoder.conv_in") from the parameter store and checks shapes. */
#ifndef OSP_LAYERS_H
#define OSP_LAYERS_H

#include "backend/ops.h"
#include "params.h"

/* Causal 3-D convolution (Open-Sora-Plan CausalConv3d): kt-1 copies of
 * frame 0 are prepended in time, then a plain conv with zero spatial
 * padding `pad` and spatial stride. Keys <prefix>.conv.{weight,bias}. */
typedef struct nn_causal_conv3d {
    osp_tensor *w, *b;
    osp_window win;
    int64_t kt;
} nn_causal_conv3d;

osp_status nn_causal_conv3d_load(nn_causal_conv3d *c, osp_params *p, const char *prefix,
                                 int64_t cin, int64_t cout, int64_t kt, int64_t k_hw,
                                 int64_t pad, int64_t stride_hw);
osp_tensor *nn_causal_conv3d_forward(const nn_causal_conv3d *c, osp_tensor *x);

/* GroupNorm with affine parameters <prefix>.{weight,bias}. */
typedef struct nn_group_norm {
    osp_tensor *gamma, *beta;
    int groups;
    float eps;
} nn_group_norm;

osp_status nn_group_norm_load(nn_group_norm *g, osp_params *p, const char *prefix,
                              int64_t channels, int groups, float eps);
osp_tensor *nn_group_norm_forward(const nn_group_norm *g, osp_tensor *x);

#endif
