/* causalvae_blocks.h — the CausalVideoVAE's building blocks (spec
 * sections 3.4-3.9), internal to models/causalvae*.c. */
#ifndef OSP_CAUSALVAE_BLOCKS_H
#define OSP_CAUSALVAE_BLOCKS_H

#include "nn/layers.h"

typedef struct vae_resblock {
    nn_group_norm norm1, norm2;
    nn_causal_conv3d conv1, conv2, shortcut;
    bool has_shortcut;
} vae_resblock;

typedef struct vae_attn {
    nn_group_norm norm;
    nn_causal_conv3d q, k, v, proj_out;
    int64_t channels;
} vae_attn;

osp_status vae_resblock_load(vae_resblock *b, osp_params *p, const char *prefix, int64_t cin,
                             int64_t cout);
osp_tensor *vae_resblock_forward(const vae_resblock *b, osp_tensor *x);

osp_status vae_attn_load(vae_attn *a, osp_params *p, const char *prefix, int64_t channels);
osp_tensor *vae_attn_forward(const vae_attn *a, osp_tensor *x);

/* SpatialDownsample2x: pad right/bottom by one, conv (1,3,3) stride (1,2,2). */
osp_status vae_spatial_down_load(nn_causal_conv3d *c, osp_params *p, const char *prefix,
                                 int64_t channels);
osp_tensor *vae_spatial_down(const nn_causal_conv3d *c, osp_tensor *x);
/* SpatialUpsample2x: nearest x2 in H and W, conv (1,3,3) padding 1. */
osp_status vae_spatial_up_load(nn_causal_conv3d *c, osp_params *p, const char *prefix,
                               int64_t channels);
osp_tensor *vae_spatial_up(const nn_causal_conv3d *c, osp_tensor *x);
/* TimeDownsample2x / TimeUpsample2x (no parameters). */
osp_tensor *vae_time_down(osp_tensor *x);
osp_tensor *vae_time_up(osp_tensor *x);

#endif
