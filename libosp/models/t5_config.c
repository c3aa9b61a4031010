/* t5_config.c — reading a T5 config.json and the relative position
 * bucket rule (spec/t5.md §4 and §6.1). */
#include "t5.h"

#include <math.h>
#include <string.h>

/* Upper bound of every size in the config: far above any T5 release
 * (XXL: d_ff 10240, vocab 32128; mT5: vocab 250112), low enough that
 * products of two of them cannot overflow. */
#define T5_MAX_SIZE (1 << 22)

static osp_status size_key(const osp_config *c, const char *key, int64_t fallback, int64_t min,
                           int64_t *out)
{
    if (osp_config_int_or(c, key, fallback, out))
        return osp_error_code();
    if (*out < min || *out > T5_MAX_SIZE)
        return osp_error(OSP_ERR_DATA, "%s: %s = %lld is out of range [%lld, %d]",
                         osp_config_label(c), key, (long long)*out, (long long)min, T5_MAX_SIZE);
    return OSP_OK;
}

/* The FFN kind (spec §4 loader rule): gated = is_gated_act if present, else
 * feed_forward_proj starts with "gated-"; activation = dense_act_fn if
 * present, else the part after the dash, "gated-gelu" meaning gelu_new. */
static osp_status check_ffn(const osp_config *c)
{
    const char *proj, *act;
    bool gated;
    if (osp_config_str_or(c, "feed_forward_proj", "relu", &proj))
        return osp_error_code();
    const char *dash = strchr(proj, '-');
    if (osp_config_bool_or(c, "is_gated_act", strncmp(proj, "gated-", 6) == 0, &gated) ||
        osp_config_str_or(c, "dense_act_fn", dash ? dash + 1 : proj, &act))
        return osp_error_code();
    if (!osp_config_has(c, "dense_act_fn") && strcmp(proj, "gated-gelu") == 0)
        act = "gelu_new";
    if (!gated || strcmp(act, "gelu_new") != 0)
        return osp_error(OSP_ERR_DATA, "%s: feed_forward_proj \"%s\" (%s, activation %s) is not "
                         "supported: only the T5 v1.1 gated-gelu FFN (gelu_new) is",
                         osp_config_label(c), proj, gated ? "gated" : "not gated", act);
    return OSP_OK;
}

osp_status osp_t5_config_parse(const osp_config *c, osp_t5_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    const char *type;
    if (osp_config_str_or(c, "model_type", "t5", &type))
        return osp_error_code();
    if (strcmp(type, "t5") != 0 && strcmp(type, "mt5") != 0)
        return osp_error(OSP_ERR_DATA, "%s: model_type \"%s\" is not a T5 model",
                         osp_config_label(c), type);
    double eps;
    if (size_key(c, "vocab_size", 32128, 1, &cfg->vocab_size) ||
        size_key(c, "d_model", 512, 1, &cfg->d_model) ||
        size_key(c, "d_kv", 64, 1, &cfg->d_kv) ||
        size_key(c, "num_heads", 8, 1, &cfg->num_heads) ||
        size_key(c, "d_ff", 2048, 1, &cfg->d_ff) ||
        size_key(c, "num_layers", 6, 1, &cfg->num_layers) ||
        size_key(c, "relative_attention_num_buckets", 32, 4, &cfg->num_buckets) ||
        size_key(c, "relative_attention_max_distance", 128, 1, &cfg->max_distance) ||
        osp_config_float_or(c, "layer_norm_epsilon", 1e-6, &eps) || check_ffn(c))
        return osp_error_code();
    if (!(eps >= 0 && eps < 1))
        return osp_error(OSP_ERR_DATA, "%s: layer_norm_epsilon = %g is out of range [0, 1)",
                         osp_config_label(c), eps);
    cfg->eps = (float)eps;
    /* The log-spaced buckets need max_distance beyond the exact range. */
    int64_t max_exact = cfg->num_buckets / 2 / 2;
    if (cfg->max_distance <= max_exact)
        return osp_error(OSP_ERR_DATA, "%s: relative_attention_max_distance = %lld must exceed "
                         "num_buckets / 4 = %lld", osp_config_label(c),
                         (long long)cfg->max_distance, (long long)max_exact);
    if (cfg->num_heads * cfg->d_kv > T5_MAX_SIZE)
        return osp_error(OSP_ERR_DATA, "%s: num_heads x d_kv = %lld is out of range",
                         osp_config_label(c), (long long)(cfg->num_heads * cfg->d_kv));
    return OSP_OK;
}

/* transformers' _relative_position_bucket with bidirectional=True. The
 * large-distance branch runs in float32 as the reference's tensors do:
 * log(n / max_exact) / log(max_distance / max_exact) * (nb - max_exact),
 * the second log a Python double rounded to float, truncated toward 0. */
int64_t osp_t5_bucket(int64_t rel, int64_t num_buckets, int64_t max_distance)
{
    int64_t nb = num_buckets / 2, max_exact = nb / 2;
    int64_t bucket = rel > 0 ? nb : 0;
    int64_t n = rel >= 0 ? rel : rel == INT64_MIN ? INT64_MAX : -rel;
    if (n < max_exact)
        return bucket + n;
    float ratio = logf((float)n / (float)max_exact) /
                  (float)log((double)max_distance / (double)max_exact);
    int64_t large = max_exact + (int64_t)(ratio * (float)(nb - max_exact));
    return bucket + (large < nb - 1 ? large : nb - 1);
}
