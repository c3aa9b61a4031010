/* causalvae_config.c — reading and validating a CausalVAEModel config.json. */
#include "causalvae.h"

#include <string.h>

/* Reads a list of class names: entry i is true when it equals `cls`,
 * false when "" (no module); anything else is rejected. */
static osp_status class_list(const osp_config *c, const char *key, const char *cls, int levels,
                             bool *out)
{
    const char *items[OSP_VAE_MAX_LEVELS];
    size_t n;
    if (osp_config_str_array(c, key, items, OSP_VAE_MAX_LEVELS, &n))
        return osp_error_code();
    if ((int)n != levels)
        return osp_error(OSP_ERR_DATA, "%s: %s has %zu entries for %d levels",
                         osp_config_label(c), key, n, levels);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i], cls) != 0 && items[i][0])
            return osp_error(OSP_ERR_DATA, "%s: %s[%zu] = \"%s\" is not supported (only \"%s\" or \"\")",
                             osp_config_label(c), key, i, items[i], cls);
        out[i] = items[i][0] != 0;
    }
    return OSP_OK;
}

static osp_status require_class(const osp_config *c, const char *key, const char *cls)
{
    const char *v;
    if (osp_config_str_or(c, key, cls, &v))
        return osp_error_code();
    if (strcmp(v, cls) != 0)
        return osp_error(OSP_ERR_DATA, "%s: %s = \"%s\" is not supported (expected \"%s\")",
                         osp_config_label(c), key, v, cls);
    return OSP_OK;
}

static osp_status positive_int(const osp_config *c, const char *key, int64_t fallback, int *out)
{
    int64_t v;
    if (osp_config_int_or(c, key, fallback, &v))
        return osp_error_code();
    if (v < 1 || v > 65536)
        return osp_error(OSP_ERR_DATA, "%s: %s = %lld is out of range", osp_config_label(c), key,
                         (long long)v);
    *out = (int)v;
    return OSP_OK;
}

osp_status osp_vae_config_parse(const osp_config *c, osp_vae_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    if (positive_int(c, "hidden_size", 128, &cfg->hidden_size) ||
        positive_int(c, "num_res_blocks", 2, &cfg->num_res_blocks) ||
        positive_int(c, "z_channels", 4, &cfg->z_channels) ||
        positive_int(c, "embed_dim", 4, &cfg->embed_dim) ||
        osp_config_bool_or(c, "double_z", true, &cfg->double_z))
        return osp_error_code();
    int64_t mult[OSP_VAE_MAX_LEVELS];
    size_t n;
    if (osp_config_int_array(c, "hidden_size_mult", mult, OSP_VAE_MAX_LEVELS, &n))
        return osp_error_code();
    if (n < 1)
        return osp_error(OSP_ERR_DATA, "%s: hidden_size_mult is empty", osp_config_label(c));
    cfg->levels = (int)n;
    for (size_t i = 0; i < n; i++) {
        if (mult[i] < 1 || mult[i] > 64)
            return osp_error(OSP_ERR_DATA, "%s: hidden_size_mult[%zu] = %lld is out of range",
                             osp_config_label(c), i, (long long)mult[i]);
        cfg->mult[i] = (int)mult[i];
    }
    if (!cfg->double_z)
        return osp_error(OSP_ERR_DATA, "%s: double_z = false is not supported",
                         osp_config_label(c));
    int64_t attn[OSP_VAE_MAX_LEVELS];
    n = 0;
    if (osp_config_has(c, "attn_resolutions") &&
        osp_config_int_array(c, "attn_resolutions", attn, OSP_VAE_MAX_LEVELS, &n))
        return osp_error_code();
    if (n > 0)
        return osp_error(OSP_ERR_DATA, "%s: attention inside the levels (attn_resolutions) is "
                                       "not supported", osp_config_label(c));
    static const char *const conv_keys[] = {"q_conv", "encoder_conv_in", "encoder_conv_out",
                                            "decoder_conv_in", "decoder_conv_out"};
    for (size_t i = 0; i < sizeof conv_keys / sizeof *conv_keys; i++)
        if (require_class(c, conv_keys[i], "CausalConv3d"))
            return osp_error_code();
    if (require_class(c, "encoder_mid_resnet", "ResnetBlock3D") ||
        require_class(c, "decoder_mid_resnet", "ResnetBlock3D") ||
        require_class(c, "encoder_attention", "AttnBlock3D") ||
        require_class(c, "decoder_attention", "AttnBlock3D"))
        return osp_error_code();
    bool res[OSP_VAE_MAX_LEVELS];
    int L = cfg->levels;
    if (class_list(c, "encoder_resnet_blocks", "ResnetBlock3D", L, res) ||
        class_list(c, "decoder_resnet_blocks", "ResnetBlock3D", L, res) ||
        class_list(c, "encoder_spatial_downsample", "SpatialDownsample2x", L, cfg->spatial_down) ||
        class_list(c, "encoder_temporal_downsample", "TimeDownsample2x", L, cfg->temporal_down) ||
        class_list(c, "decoder_spatial_upsample", "SpatialUpsample2x", L, cfg->spatial_up) ||
        class_list(c, "decoder_temporal_upsample", "TimeUpsample2x", L, cfg->temporal_up))
        return osp_error_code();
    for (int i = 0; i < L; i++)
        if (!res[i])
            return osp_error(OSP_ERR_DATA, "%s: every level needs ResnetBlock3D blocks",
                             osp_config_label(c));
    /* The reference's middle block reads the last level's last res-block,
     * skipping that level's resamplers (spec section 4); only layouts where
     * that makes no difference are accepted. */
    if (cfg->spatial_down[L - 1] || cfg->temporal_down[L - 1])
        return osp_error(OSP_ERR_DATA, "%s: a resampler at the last encoder level is not "
                                       "supported", osp_config_label(c));
    return OSP_OK;
}

int osp_vae_time_factor(const osp_vae_config *c)
{
    int f = 1;
    for (int i = 0; i < c->levels; i++)
        f *= c->temporal_down[i] ? 2 : 1;
    return f;
}

int osp_vae_space_factor(const osp_vae_config *c)
{
    int f = 1;
    for (int i = 0; i < c->levels; i++)
        f *= c->spatial_down[i] ? 2 : 1;
    return f;
}
