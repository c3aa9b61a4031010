/* causalvae_blocks.c — ResnetBlock3D, AttnBlock3D and the resamplers. */
#include "causalvae_blocks.h"

#include <math.h>
#include <stdio.h>

#define VAE_GROUPS 32
#define VAE_EPS 1e-6f

static osp_status load_norm(nn_group_norm *g, osp_params *p, const char *prefix,
                            const char *name, int64_t c)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    return nn_group_norm_load(g, p, key, c, VAE_GROUPS, VAE_EPS);
}

static osp_status load_conv(nn_causal_conv3d *conv, osp_params *p, const char *prefix,
                            const char *name, int64_t cin, int64_t cout, int64_t k, int64_t pad)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    return nn_causal_conv3d_load(conv, p, key, cin, cout, k, k, pad, 1);
}

osp_status vae_resblock_load(vae_resblock *b, osp_params *p, const char *prefix, int64_t cin,
                             int64_t cout)
{
    b->has_shortcut = cin != cout;
    if (load_norm(&b->norm1, p, prefix, "norm1", cin) ||
        load_conv(&b->conv1, p, prefix, "conv1", cin, cout, 3, 1) ||
        load_norm(&b->norm2, p, prefix, "norm2", cout) ||
        load_conv(&b->conv2, p, prefix, "conv2", cout, cout, 3, 1) ||
        (b->has_shortcut && load_conv(&b->shortcut, p, prefix, "nin_shortcut", cin, cout, 1, 0)))
        return osp_error_code();
    return OSP_OK;
}

/* conv(silu(norm(x))); the normalised, activated and padded copies are
 * freed before it returns. */
static osp_tensor *norm_act_conv(const nn_group_norm *n, const nn_causal_conv3d *c,
                                 osp_tensor *x)
{
    osp_pool_push();
    return osp_pool_pop_keep(nn_causal_conv3d_forward(c, osp_silu(nn_group_norm_forward(n, x))));
}

osp_tensor *vae_resblock_forward(const vae_resblock *b, osp_tensor *x)
{
    osp_pool_push();
    osp_tensor *h = norm_act_conv(&b->norm2, &b->conv2, norm_act_conv(&b->norm1, &b->conv1, x));
    osp_tensor *skip = b->has_shortcut ? nn_causal_conv3d_forward(&b->shortcut, x) : x;
    return osp_pool_pop_keep(osp_add(skip, h));
}

osp_status vae_attn_load(vae_attn *a, osp_params *p, const char *prefix, int64_t c)
{
    a->channels = c;
    if (load_norm(&a->norm, p, prefix, "norm", c) || load_conv(&a->q, p, prefix, "q", c, c, 1, 0) ||
        load_conv(&a->k, p, prefix, "k", c, c, 1, 0) ||
        load_conv(&a->v, p, prefix, "v", c, c, 1, 0) ||
        load_conv(&a->proj_out, p, prefix, "proj_out", c, c, 1, 0))
        return osp_error_code();
    return OSP_OK;
}

/* [B, C, T, H, W] read as [B*T, C, N] without moving T next to B (the
 * reference's regrouping quirk, spec 3.5), then as single-head attention
 * input [B*T, 1, N, C]. */
static osp_tensor *regroup(osp_tensor *x)
{
    int64_t s[] = {x->shape[0] * x->shape[2], x->shape[1], x->shape[3] * x->shape[4]};
    int64_t heads[] = {s[0], 1, s[1], s[2]};
    return osp_transpose(osp_reshape(osp_reshape(x, 3, s), 4, heads), 2, 3);
}

osp_tensor *vae_attn_forward(const vae_attn *a, osp_tensor *x)
{
    if (!x)
        return NULL;
    osp_pool_push();
    osp_tensor *n = nn_group_norm_forward(&a->norm, x);
    osp_tensor *q = nn_causal_conv3d_forward(&a->q, n), *k = nn_causal_conv3d_forward(&a->k, n),
               *v = nn_causal_conv3d_forward(&a->v, n);
    osp_tensor *o = osp_attention(regroup(q), regroup(k), regroup(v), NULL,
                                  1.0f / sqrtf((float)a->channels));
    /* [B*T, 1, N, C] -> [B*T, C, N] -> [B, C, T, H, W] (the inverse regrouping) */
    o = osp_reshape(osp_transpose(o, 2, 3), x->ndim, x->shape);
    return osp_pool_pop_keep(osp_add(x, nn_causal_conv3d_forward(&a->proj_out, o)));
}

osp_status vae_spatial_down_load(nn_causal_conv3d *c, osp_params *p, const char *prefix,
                                 int64_t channels)
{
    char key[256];
    snprintf(key, sizeof key, "%s.conv", prefix);
    return nn_causal_conv3d_load(c, p, key, channels, channels, 1, 3, 0, 2);
}

osp_tensor *vae_spatial_down(const nn_causal_conv3d *c, osp_tensor *x)
{
    int64_t before[5] = {0}, after[5] = {0, 0, 0, 1, 1};
    return nn_causal_conv3d_forward(c, osp_pad(x, before, after, OSP_PAD_CONSTANT, 0.0f));
}

osp_status vae_spatial_up_load(nn_causal_conv3d *c, osp_params *p, const char *prefix,
                               int64_t channels)
{
    char key[256];
    snprintf(key, sizeof key, "%s.conv", prefix);
    return nn_causal_conv3d_load(c, p, key, channels, channels, 1, 3, 1, 1);
}

osp_tensor *vae_spatial_up(const nn_causal_conv3d *c, osp_tensor *x)
{
    if (!x)
        return NULL;
    int64_t size[] = {x->shape[2], 2 * x->shape[3], 2 * x->shape[4]};
    return nn_causal_conv3d_forward(c, osp_interpolate(x, 3, size, OSP_INTERP_NEAREST, false));
}

osp_tensor *vae_time_down(osp_tensor *x)
{
    if (!x)
        return NULL;
    int64_t before[5] = {0, 0, 2, 0, 0}, after[5] = {0};
    osp_window pool = osp_window_default(3);
    pool.kernel[0] = 3;
    pool.kernel[1] = pool.kernel[2] = 1;
    pool.stride[0] = 2;
    return osp_avg_pool(osp_pad(x, before, after, OSP_PAD_REPLICATE, 0.0f), &pool);
}

osp_tensor *vae_time_up(osp_tensor *x)
{
    if (!x || x->shape[2] == 1)
        return x;
    int64_t T = x->shape[2];
    int64_t size[] = {2 * (T - 1), x->shape[3], x->shape[4]};
    osp_tensor *parts[2] = {
        osp_slice(x, 2, 0, 1, 1),
        osp_interpolate(osp_slice(x, 2, 1, T, 1), 3, size, OSP_INTERP_LINEAR, false),
    };
    return osp_concat(2, parts, 2);
}
