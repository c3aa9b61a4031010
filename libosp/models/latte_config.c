/* latte_config.c — reading and validating a LatteT2V config.json (spec §1). */
#include "latte.h"

#include <math.h>
#include <string.h>

static osp_status int_in_range(const osp_config *c, const char *key, int64_t fallback,
                               int64_t lo, int64_t hi, int *out)
{
    int64_t v;
    if (osp_config_int_or(c, key, fallback, &v))
        return osp_error_code();
    if (v < lo || v > hi)
        return osp_error(OSP_ERR_DATA, "%s: %s = %lld is out of range [%lld, %lld]",
                         osp_config_label(c), key, (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return OSP_OK;
}

/* A string key that, when present, must have the one value implemented. */
static osp_status require_str(const osp_config *c, const char *key, const char *want)
{
    const char *v;
    if (osp_config_str_or(c, key, want, &v))
        return osp_error_code();
    if (strcmp(v, want) != 0)
        return osp_error(OSP_ERR_DATA, "%s: %s = \"%s\" is not supported (only \"%s\")",
                         osp_config_label(c), key, v, want);
    return OSP_OK;
}

static osp_status require_bool(const osp_config *c, const char *key, bool want)
{
    bool v;
    if (osp_config_bool_or(c, key, want, &v))
        return osp_error_code();
    if (v != want)
        return osp_error(OSP_ERR_DATA, "%s: %s = %s is not supported", osp_config_label(c), key,
                         v ? "true" : "false");
    return OSP_OK;
}

/* sample_size: [s, s] (diffusers writes a list) or a plain integer. */
static osp_status parse_sample_size(const osp_config *c, int *out)
{
    int64_t s[2] = {64, 64};
    size_t n = 2;
    if (osp_config_has(c, "sample_size") &&
        osp_config_int_array(c, "sample_size", s, 2, &n) != OSP_OK) {
        osp_error_clear();
        if (osp_config_int(c, "sample_size", &s[0]))
            return osp_error(OSP_ERR_DATA, "%s: sample_size must be [size, size] or an integer",
                             osp_config_label(c));
        s[1] = s[0];
        n = 2;
    }
    if (n != 2)
        return osp_error(OSP_ERR_DATA, "%s: sample_size has %zu entries (expected 2)",
                         osp_config_label(c), n);
    /* The reference builds its cached table for a square grid only. */
    if (s[0] != s[1])
        return osp_error(OSP_ERR_DATA, "%s: non-square sample_size [%lld, %lld] is not supported",
                         osp_config_label(c), (long long)s[0], (long long)s[1]);
    if (s[0] < 1 || s[0] > 65536)
        return osp_error(OSP_ERR_DATA, "%s: sample_size %lld is out of range", osp_config_label(c),
                         (long long)s[0]);
    *out = (int)s[0];
    return OSP_OK;
}

/* Switches with no numerical effect in the LatteT2V path taken here
 * (attention_mode picks a GPU kernel, upcast_attention is fp16-only,
 * use_linear_projection and norm_num_groups belong to other input types)
 * are not read. The rest must be what this implementation builds. */
static osp_status check_unsupported(const osp_config *c)
{
    int64_t v;
    /* (the one '_' key read: it tells another model's folder apart) */
    if (require_str(c, "_class_name", "LatteT2V") ||
        require_str(c, "norm_type", "ada_norm_single") ||
        require_str(c, "activation_fn", "gelu-approximate") ||
        require_str(c, "attention_type", "default") ||
        require_bool(c, "norm_elementwise_affine", false) ||
        require_bool(c, "attention_bias", true) ||
        require_bool(c, "only_cross_attention", false) ||
        require_bool(c, "double_self_attention", false))
        return osp_error_code();
    if (osp_config_int_or(c, "patch_size_t", 1, &v))
        return osp_error_code();
    if (v != 1)
        return osp_error(OSP_ERR_DATA, "%s: patch_size_t = %lld is not supported (only 1)",
                         osp_config_label(c), (long long)v);
    if (osp_config_int_or(c, "num_vector_embeds", -1, &v))
        return osp_error_code();
    if (v != -1)
        return osp_error(OSP_ERR_DATA, "%s: num_vector_embeds (discrete inputs) is not supported",
                         osp_config_label(c));
    return OSP_OK;
}

osp_status osp_latte_config_parse(const osp_config *c, osp_latte_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    double eps, dropout;
    int cross;
    if (check_unsupported(c) ||
        int_in_range(c, "num_layers", 28, 1, 4096, &cfg->num_layers) ||
        int_in_range(c, "num_attention_heads", 16, 1, 4096, &cfg->heads) ||
        int_in_range(c, "attention_head_dim", 72, 1, 65536, &cfg->head_dim) ||
        int_in_range(c, "in_channels", 4, 1, 65536, &cfg->in_channels) ||
        int_in_range(c, "out_channels", 8, 1, 65536, &cfg->out_channels) ||
        int_in_range(c, "patch_size", 2, 1, 64, &cfg->patch_size) ||
        int_in_range(c, "video_length", 17, 1, 65536, &cfg->video_length) ||
        int_in_range(c, "caption_channels", 4096, 1, 1 << 20, &cfg->caption_channels) ||
        parse_sample_size(c, &cfg->sample_size) ||
        osp_config_float_or(c, "norm_eps", 1e-6, &eps) ||
        osp_config_float_or(c, "dropout", 0.0, &dropout))
        return osp_error_code();
    int64_t hidden = (int64_t)cfg->heads * cfg->head_dim;
    if (hidden > 1 << 20)
        return osp_error(OSP_ERR_DATA, "%s: %d heads x %d = %lld is too wide",
                         osp_config_label(c), cfg->heads, cfg->head_dim, (long long)hidden);
    cfg->hidden = (int)hidden;
    /* The 2-D table splits the width in four, the temporal table in two. */
    if (cfg->hidden % 4)
        return osp_error(OSP_ERR_DATA, "%s: hidden size %d (heads x head_dim) must be a "
                         "multiple of 4", osp_config_label(c), cfg->hidden);
    if (int_in_range(c, "cross_attention_dim", cfg->hidden, 1, 1 << 20, &cross))
        return osp_error_code();
    /* The caption projection outputs `hidden` channels for the keys. */
    if (cross != cfg->hidden)
        return osp_error(OSP_ERR_DATA, "%s: cross_attention_dim = %d must equal the hidden size "
                         "%d", osp_config_label(c), cross, cfg->hidden);
    if (!(eps >= 0) || !isfinite(eps))
        return osp_error(OSP_ERR_DATA, "%s: norm_eps = %g is invalid", osp_config_label(c), eps);
    if (!(dropout >= 0 && dropout < 1))
        return osp_error(OSP_ERR_DATA, "%s: dropout = %g is invalid", osp_config_label(c),
                         dropout);
    cfg->norm_eps = (float)eps;
    cfg->dropout = (float)dropout;
    return OSP_OK;
}
