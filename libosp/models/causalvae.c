/* causalvae.c — CausalVideoVAE: loading, encoder, decoder, posterior
 * (spec sections 4-6). Tiling lives in causalvae_tiling.c. */
#include "causalvae.h"
#include "causalvae_blocks.h"
#include "io/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vae_level {
    vae_resblock *blocks;
    int n_blocks;
    nn_causal_conv3d spatial;
    bool has_spatial, has_temporal;
} vae_level;

struct osp_vae {
    osp_vae_config cfg;
    osp_params params;
    osp_model_dir *dir;
    /* encoder */
    nn_causal_conv3d enc_conv_in, enc_conv_out, quant_conv;
    vae_level enc_levels[OSP_VAE_MAX_LEVELS];
    vae_resblock enc_mid1, enc_mid2;
    vae_attn enc_attn;
    nn_group_norm enc_norm_out;
    /* decoder */
    nn_causal_conv3d post_quant_conv, dec_conv_in, dec_conv_out;
    vae_level dec_levels[OSP_VAE_MAX_LEVELS];
    vae_resblock dec_mid1, dec_mid2;
    vae_attn dec_attn;
    nn_group_norm dec_norm_out;
};

static osp_status load_level(osp_params *p, vae_level *lv, const char *prefix, int n_blocks,
                             int64_t cin, int64_t cout)
{
    char key[256];
    lv->blocks = calloc((size_t)n_blocks, sizeof *lv->blocks);
    if (!lv->blocks)
        return osp_error_nomem("VAE level", (unsigned long long)n_blocks * sizeof *lv->blocks);
    lv->n_blocks = n_blocks;
    for (int j = 0; j < n_blocks; j++) {
        snprintf(key, sizeof key, "%s.block.%d", prefix, j);
        if (vae_resblock_load(&lv->blocks[j], p, key, j == 0 ? cin : cout, cout))
            return osp_error_code();
    }
    return OSP_OK;
}

static osp_status load_encoder(osp_vae *v)
{
    const osp_vae_config *c = &v->cfg;
    osp_params *p = &v->params;
    int64_t ch = c->hidden_size, top = ch * c->mult[c->levels - 1];
    char key[256];
    if (nn_causal_conv3d_load(&v->enc_conv_in, p, "encoder.conv_in", 3, ch, 3, 3, 1, 1))
        return osp_error_code();
    for (int i = 0; i < c->levels; i++) {
        vae_level *lv = &v->enc_levels[i];
        int64_t cin = ch * (i ? c->mult[i - 1] : 1), cout = ch * c->mult[i];
        snprintf(key, sizeof key, "encoder.down.%d", i);
        if (load_level(p, lv, key, c->num_res_blocks, cin, cout))
            return osp_error_code();
        lv->has_spatial = c->spatial_down[i];
        lv->has_temporal = c->temporal_down[i];
        snprintf(key, sizeof key, "encoder.down.%d.downsample", i);
        if (lv->has_spatial && vae_spatial_down_load(&lv->spatial, p, key, cout))
            return osp_error_code();
    }
    if (vae_resblock_load(&v->enc_mid1, p, "encoder.mid.block_1", top, top) ||
        vae_attn_load(&v->enc_attn, p, "encoder.mid.attn_1", top) ||
        vae_resblock_load(&v->enc_mid2, p, "encoder.mid.block_2", top, top) ||
        nn_group_norm_load(&v->enc_norm_out, p, "encoder.norm_out", top, 32, 1e-6f) ||
        nn_causal_conv3d_load(&v->enc_conv_out, p, "encoder.conv_out", top, 2 * c->z_channels,
                              3, 3, 1, 1) ||
        nn_causal_conv3d_load(&v->quant_conv, p, "quant_conv", 2 * c->z_channels,
                              2 * c->embed_dim, 1, 1, 0, 1))
        return osp_error_code();
    return OSP_OK;
}

static osp_status load_decoder(osp_vae *v)
{
    const osp_vae_config *c = &v->cfg;
    osp_params *p = &v->params;
    int64_t ch = c->hidden_size, block_in = ch * c->mult[c->levels - 1];
    char key[256];
    if (nn_causal_conv3d_load(&v->post_quant_conv, p, "post_quant_conv", c->embed_dim,
                              c->z_channels, 1, 1, 0, 1) ||
        nn_causal_conv3d_load(&v->dec_conv_in, p, "decoder.conv_in", c->z_channels, block_in, 3,
                              3, 1, 1) ||
        vae_resblock_load(&v->dec_mid1, p, "decoder.mid.block_1", block_in, block_in) ||
        vae_attn_load(&v->dec_attn, p, "decoder.mid.attn_1", block_in) ||
        vae_resblock_load(&v->dec_mid2, p, "decoder.mid.block_2", block_in, block_in))
        return osp_error_code();
    for (int i = c->levels - 1; i >= 0; i--) {
        vae_level *lv = &v->dec_levels[i];
        int64_t cout = ch * c->mult[i];
        snprintf(key, sizeof key, "decoder.up.%d", i);
        if (load_level(p, lv, key, c->num_res_blocks + 1, block_in, cout))
            return osp_error_code();
        block_in = cout;
        lv->has_spatial = c->spatial_up[i];
        lv->has_temporal = c->temporal_up[i];
        snprintf(key, sizeof key, "decoder.up.%d.upsample", i);
        if (lv->has_spatial && vae_spatial_up_load(&lv->spatial, p, key, cout))
            return osp_error_code();
    }
    if (nn_group_norm_load(&v->dec_norm_out, p, "decoder.norm_out", ch * c->mult[0], 32, 1e-6f) ||
        nn_causal_conv3d_load(&v->dec_conv_out, p, "decoder.conv_out", ch * c->mult[0], 3, 3, 3,
                              1, 1))
        return osp_error_code();
    return OSP_OK;
}

/* Every checkpoint tensor except the training loss's must have been used. */
static osp_status check_unused(osp_vae *v)
{
    size_t n = osp_model_tensor_count(v->dir);
    for (size_t i = 0; i < n; i++) {
        const char *name = osp_model_entry(v->dir, i)->name;
        if (strncmp(name, "loss.", 5) != 0 && !osp_params_find(&v->params, name))
            return osp_error(OSP_ERR_DATA, "%s: unexpected tensor %s for this config",
                             osp_model_path(v->dir), name);
    }
    return OSP_OK;
}

osp_vae *osp_vae_load(const char *dir, osp_device device)
{
    osp_vae *v = calloc(1, sizeof *v);
    if (!v) {
        osp_error_nomem("VAE", sizeof *v);
        return NULL;
    }
    v->dir = osp_model_open(dir);
    if (!v->dir)
        goto fail;
    if (!osp_model_config(v->dir)) {
        osp_error(OSP_ERR_DATA, "%s: no config.json", dir);
        goto fail;
    }
    osp_params_init(&v->params, v->dir, device);
    if (osp_vae_config_parse(osp_model_config(v->dir), &v->cfg) || load_encoder(v) ||
        load_decoder(v) || check_unused(v))
        goto fail;
    return v;
fail:
    osp_vae_free(v);
    return NULL;
}

osp_vae *osp_vae_init(const osp_config *config, osp_device device, uint64_t seed)
{
    osp_vae *v = calloc(1, sizeof *v);
    if (!v) {
        osp_error_nomem("VAE", sizeof *v);
        return NULL;
    }
    osp_params_init(&v->params, NULL, device);
    v->params.random_init = true;
    v->params.random_seed = seed;
    if (osp_vae_config_parse(config, &v->cfg) || load_encoder(v) || load_decoder(v)) {
        osp_vae_free(v);
        return NULL;
    }
    return v;
}

void osp_vae_free(osp_vae *v)
{
    if (!v)
        return;
    for (int i = 0; i < OSP_VAE_MAX_LEVELS; i++) {
        free(v->enc_levels[i].blocks);
        free(v->dec_levels[i].blocks);
    }
    osp_params_free(&v->params);
    osp_model_close(v->dir);
    free(v);
}

const osp_vae_config *osp_vae_get_config(const osp_vae *v) { return &v->cfg; }
struct osp_params *osp_vae_params(osp_vae *v) { return &v->params; }

osp_vae_tiling osp_vae_default_tiling(const osp_vae *v)
{
    /* tile_latent_min_size = 256 / 2^(L-1) in the reference. */
    osp_vae_tiling t = {false, 256, 256 >> (v->cfg.levels - 1), 0.25f};
    return t;
}

/* Each forward step runs in its own pool and replaces the activation it
 * read, which is released at once, so only the live activation and one
 * step's temporaries are held, not every block's output. */
static osp_tensor *advance(osp_tensor *old, osp_tensor *next)
{
    next = osp_pool_take(next);
    osp_release(old);
    return next;
}
#define STEP(h, expr)                                                                          \
    do {                                                                                       \
        osp_pool_push();                                                                       \
        osp_tensor *next_ = osp_pool_pop_keep(expr);                                           \
        h = advance(h, next_);                                                                 \
    } while (0)

static osp_tensor *run_level_blocks(const vae_level *lv, osp_tensor *h)
{
    for (int j = 0; j < lv->n_blocks; j++)
        STEP(h, vae_resblock_forward(&lv->blocks[j], h));
    return h;
}

static osp_tensor *check_video(osp_tensor *x, int64_t channels, const char *what)
{
    if (!x)
        return NULL;
    char buf[96];
    if (x->ndim != 5 || x->shape[1] != channels) {
        osp_error(OSP_ERR_DATA, "%s must be [B, %lld, T, H, W], got %s", what,
                  (long long)channels, osp_shape_str(x, buf, sizeof buf));
        return NULL;
    }
    if (osp_numel(x) == 0) {
        osp_error(OSP_ERR_DATA, "%s is empty: %s", what, osp_shape_str(x, buf, sizeof buf));
        return NULL;
    }
    return x;
}

osp_tensor *osp_vae_encoder_forward(osp_vae *v, osp_tensor *x)
{
    if (!check_video(x, 3, "video"))
        return NULL;
    int64_t min = osp_vae_space_factor(&v->cfg);
    if (x->shape[3] < min || x->shape[4] < min) {
        osp_error(OSP_ERR_DATA, "video frames of %lldx%lld are below the minimum %lldx%lld",
                  (long long)x->shape[3], (long long)x->shape[4], (long long)min, (long long)min);
        return NULL;
    }
    osp_tensor *h = NULL;
    STEP(h, nn_causal_conv3d_forward(&v->enc_conv_in, x));
    for (int i = 0; i < v->cfg.levels; i++) {
        const vae_level *lv = &v->enc_levels[i];
        h = run_level_blocks(lv, h);
        if (lv->has_spatial)
            STEP(h, vae_spatial_down(&lv->spatial, h));
        if (lv->has_temporal)
            STEP(h, vae_time_down(h));
    }
    STEP(h, vae_resblock_forward(&v->enc_mid1, h));
    STEP(h, vae_attn_forward(&v->enc_attn, h));
    STEP(h, vae_resblock_forward(&v->enc_mid2, h));
    STEP(h, nn_causal_conv3d_forward(&v->enc_conv_out,
                                     osp_silu(nn_group_norm_forward(&v->enc_norm_out, h))));
    STEP(h, nn_causal_conv3d_forward(&v->quant_conv, h));
    return osp_autorelease(h);
}

osp_tensor *osp_vae_decoder_forward(osp_vae *v, osp_tensor *z)
{
    osp_tensor *h = osp_retain(osp_vae_decoder_body(v, z));
    osp_tensor *out = h ? osp_vae_decoder_head(v, h) : NULL;
    osp_release(h);
    return out;
}

osp_tensor *osp_vae_decoder_head(osp_vae *v, osp_tensor *h)
{
    if (!h)
        return NULL;
    osp_pool_push();
    osp_tensor *y = nn_causal_conv3d_forward(&v->dec_conv_out,
                                             osp_silu(nn_group_norm_forward(&v->dec_norm_out, h)));
    return osp_pool_pop_keep(y);
}

osp_tensor *osp_vae_decoder_body(osp_vae *v, osp_tensor *z)
{
    if (!check_video(z, v->cfg.embed_dim, "latent"))
        return NULL;
    osp_tensor *h = NULL;
    STEP(h, nn_causal_conv3d_forward(&v->post_quant_conv, z));
    STEP(h, nn_causal_conv3d_forward(&v->dec_conv_in, h));
    STEP(h, vae_resblock_forward(&v->dec_mid1, h));
    STEP(h, vae_attn_forward(&v->dec_attn, h));
    STEP(h, vae_resblock_forward(&v->dec_mid2, h));
    for (int i = v->cfg.levels - 1; i >= 0; i--) {
        const vae_level *lv = &v->dec_levels[i];
        h = run_level_blocks(lv, h);
        if (lv->has_spatial)
            STEP(h, vae_spatial_up(&lv->spatial, h));
        if (lv->has_temporal)
            STEP(h, vae_time_up(h));
    }
    return osp_autorelease(h);
}

osp_status osp_vae_posterior(osp_tensor *moments, osp_tensor **mean, osp_tensor **logvar)
{
    if (!moments)
        return osp_error_code() ? osp_error_code() : OSP_ERR_RUNTIME;
    if (moments->ndim != 5 || moments->shape[1] % 2)
        return osp_error(OSP_ERR_DATA, "moments must be [B, 2E, T, H, W]");
    int64_t e = moments->shape[1] / 2;
    *mean = osp_contiguous(osp_slice(moments, 1, 0, e, 1));
    *logvar = osp_clamp(osp_slice(moments, 1, e, 2 * e, 1), -30.0f, 20.0f);
    return *mean && *logvar ? OSP_OK : osp_error_code();
}

osp_tensor *osp_vae_sample(osp_tensor *mean, osp_tensor *logvar, osp_tensor *noise)
{
    return osp_add(mean, osp_mul(osp_exp(osp_scale_shift(logvar, 0.5f, 0.0f)), noise));
}
