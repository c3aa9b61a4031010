/* layers.c — see layers.h. */
#include "layers.h"

#include <string.h>

osp_status nn_causal_conv3d_load(nn_causal_conv3d *c, osp_params *p, const char *prefix,
                                 int64_t cin, int64_t cout, int64_t kt, int64_t k_hw,
                                 int64_t pad, int64_t stride_hw)
{
    int64_t ws[] = {cout, cin, kt, k_hw, k_hw}, bs[] = {cout};
    c->w = osp_params_load(p, 5, ws, "%s.conv.weight", prefix);
    c->b = c->w ? osp_params_load(p, 1, bs, "%s.conv.bias", prefix) : NULL;
    if (!c->b)
        return osp_error_code();
    c->kt = kt;
    c->win = osp_window_default(3);
    c->win.pad[1] = c->win.pad[2] = pad;
    c->win.stride[1] = c->win.stride[2] = stride_hw;
    return OSP_OK;
}

osp_tensor *nn_causal_conv3d_forward(const nn_causal_conv3d *c, osp_tensor *x)
{
    if (!x)
        return NULL;
    if (c->kt > 1) {
        int64_t before[5] = {0, 0, c->kt - 1, 0, 0}, after[5] = {0};
        x = osp_pad(x, before, after, OSP_PAD_REPLICATE, 0.0f);
    }
    return osp_conv(x, c->w, c->b, &c->win);
}

osp_status nn_group_norm_load(nn_group_norm *g, osp_params *p, const char *prefix,
                              int64_t channels, int groups, float eps)
{
    if (channels % groups)
        return osp_error(OSP_ERR_DATA, "%s: %lld channels do not split into %d groups", prefix,
                         (long long)channels, groups);
    int64_t s[] = {channels};
    g->gamma = osp_params_load(p, 1, s, "%s.weight", prefix);
    g->beta = g->gamma ? osp_params_load(p, 1, s, "%s.bias", prefix) : NULL;
    g->groups = groups;
    g->eps = eps;
    return g->beta ? OSP_OK : osp_error_code();
}

osp_tensor *nn_group_norm_forward(const nn_group_norm *g, osp_tensor *x)
{
    return osp_group_norm(x, g->groups, g->gamma, g->beta, g->eps);
}
