/* latte_embed.c — LatteT2V's embeddings and fixed tables (spec §4.2-§4.5)
 * and its final layer (§4.8): patch embedding + 2-D sin-cos table,
 * adaLN-single timestep embedding, caption projection, temporal table,
 * final modulation, projection and unpatchify. */
#include "latte_impl.h"
#include "core/checked.h"

#include <math.h>
#include <stdio.h>

/* ---- loading ---- */

osp_status latte_embed_load_head(latte_loader *ld, latte_embed *e, const osp_latte_config *cfg)
{
    int64_t D = cfg->hidden, p = cfg->patch_size;
    return latte_param(ld, &e->final_table, 2, (int64_t[]){2, D}, "scale_shift_table") ||
                   latte_param(ld, &e->patch_w, 4, (int64_t[]){D, cfg->in_channels, p, p},
                               "pos_embed.proj.weight") ||
                   latte_param(ld, &e->patch_b, 1, &D, "pos_embed.proj.bias")
               ? osp_error_code()
               : OSP_OK;
}

osp_status latte_embed_load_tail(latte_loader *ld, latte_embed *e, const osp_latte_config *cfg)
{
    int64_t D = cfg->hidden, p = cfg->patch_size, C = cfg->caption_channels;
    return latte_linear_load(ld, &e->proj_out, "proj_out", D, p * p * cfg->out_channels) ||
                   latte_linear_load(ld, &e->t_linear1,
                                     "adaln_single.emb.timestep_embedder.linear_1",
                                     OSP_LATTE_TIMESTEP_DIM, D) ||
                   latte_linear_load(ld, &e->t_linear2,
                                     "adaln_single.emb.timestep_embedder.linear_2", D, D) ||
                   latte_linear_load(ld, &e->t6, "adaln_single.linear", D, 6 * D) ||
                   latte_param(ld, &e->y_embedding, 2,
                               (int64_t[]){OSP_LATTE_Y_EMBEDDING_TOKENS, C},
                               "caption_projection.y_embedding") ||
                   latte_linear_load(ld, &e->cap1, "caption_projection.linear_1", C, D) ||
                   latte_linear_load(ld, &e->cap2, "caption_projection.linear_2", D, D)
               ? osp_error_code()
               : OSP_OK;
}

/* ---- fixed sin-cos tables ---- */

/* out[k] = sin(pos·ω_k), out[q + k] = cos(pos·ω_k) for k < q, with
 * ω_k = 1 / 10000^(k/q), in double from the float32 position (numpy's
 * get_1d_sincos_pos_embed_from_grid), rounded to float32 once. */
static void sincos_row(float pos, int q, float *out)
{
    for (int k = 0; k < q; k++) {
        double a = (double)pos * (1.0 / pow(10000.0, (double)k / (double)q));
        out[k] = (float)sin(a);
        out[q + k] = (float)cos(a);
    }
}

/* Positions of an n-cell axis relative to the trained grid of `base`
 * cells, in float32 arithmetic as numpy does it: fl(fl(i / fl(n/base)) /
 * interp). */
static float grid_pos(int64_t i, int64_t n, int64_t base, int64_t interp)
{
    float step = (float)((double)n / (double)base);
    return ((float)i / step) / (float)interp;
}

osp_tensor *osp_latte_pos_embed_2d(const osp_latte_config *cfg, int64_t h, int64_t w)
{
    int64_t n;
    if (h < 1 || w < 1 || !osp_mul_i64(h, w, &n)) {
        osp_error(OSP_ERR_DATA, "2-D position table: bad grid %lld x %lld", (long long)h,
                  (long long)w);
        return NULL;
    }
    int64_t D = cfg->hidden, q = D / 4;
    int64_t base = cfg->sample_size / cfg->patch_size;
    int64_t interp = cfg->sample_size / 64 > 1 ? cfg->sample_size / 64 : 1;
    if (base < 1) {
        osp_error(OSP_ERR_DATA, "sample_size %d is smaller than the patch size %d",
                  cfg->sample_size, cfg->patch_size);
        return NULL;
    }
    osp_tensor *t = osp_tensor_new(OSP_F32, 2, (int64_t[]){n, D}, OSP_DEVICE_CPU);
    if (!t)
        return NULL;
    float *out = osp_f32(t);
    /* first half: the column (x) position, second half: the row (y) */
    for (int64_t r = 0; r < h; r++) {
        sincos_row(grid_pos(r, h, base, interp), (int)q, out + r * w * D + 2 * q);
        for (int64_t c = 1; c < w; c++)
            for (int64_t k = 0; k < 2 * q; k++)
                out[(r * w + c) * D + 2 * q + k] = out[r * w * D + 2 * q + k];
    }
    for (int64_t c = 0; c < w; c++) {
        sincos_row(grid_pos(c, w, base, interp), (int)q, out + c * D);
        for (int64_t r = 1; r < h; r++)
            for (int64_t k = 0; k < 2 * q; k++)
                out[(r * w + c) * D + k] = out[c * D + k];
    }
    return t;
}

osp_tensor *osp_latte_temp_pos_embed(const osp_latte_config *cfg)
{
    int64_t F = cfg->video_length, D = cfg->hidden;
    int s = cfg->video_length / 5 > 1 ? cfg->video_length / 5 : 1;
    osp_tensor *t = osp_tensor_new(OSP_F32, 2, (int64_t[]){F, D}, OSP_DEVICE_CPU);
    if (!t)
        return NULL;
    for (int64_t f = 0; f < F; f++)
        sincos_row((float)f / (float)s, (int)(D / 2), osp_f32(t) + f * D);
    return t;
}

/* ---- forward pieces ---- */

osp_tensor *latte_patch_embed(const latte_embed *e, const osp_latte_config *cfg,
                              osp_tensor *frames)
{
    if (!frames)
        return NULL;
    int64_t p = cfg->patch_size, h = frames->shape[2] / p, w = frames->shape[3] / p;
    osp_window win = osp_window_default(2);
    win.stride[0] = win.stride[1] = p;
    osp_pool_push();
    osp_tensor *y = osp_conv(frames, e->patch_w, e->patch_b, &win); /* [S, D, h, w] */
    int64_t flat[] = {frames->shape[0], cfg->hidden, h * w};
    y = osp_transpose(osp_reshape(y, 3, flat), 1, 2);
    osp_tensor *table = osp_to_device(osp_latte_pos_embed_2d(cfg, h, w), frames->storage->device);
    return osp_pool_pop_keep(osp_add(y, table));
}

osp_status latte_timestep_embed(const latte_embed *e, osp_tensor *sinusoid, osp_tensor **emb,
                                osp_tensor **t6)
{
    osp_tensor *h = latte_linear_forward(&e->t_linear1, sinusoid);
    *emb = latte_linear_forward(&e->t_linear2, osp_silu(h));
    *t6 = latte_linear_forward(&e->t6, osp_silu(*emb));
    return *emb && *t6 ? OSP_OK : osp_error_code();
}

osp_tensor *latte_caption_project(const latte_embed *e, osp_tensor *text)
{
    return latte_linear_forward(&e->cap2, osp_linear_gelu(text, e->cap1.w, e->cap1.b));
}

osp_tensor *latte_final_layer(const latte_embed *e, const osp_latte_config *cfg,
                              osp_tensor *tokens, osp_tensor *emb)
{
    if (!tokens || !emb)
        return NULL;
    osp_pool_push();
    int64_t B = emb->shape[0], D = cfg->hidden;
    /* [2, D] + emb[:, None] -> rows shift, scale; emb is not passed through silu */
    osp_tensor *m = osp_add(e->final_table, osp_reshape(emb, 3, (int64_t[]){B, 1, D}));
    osp_tensor *shift = osp_slice(m, 1, 0, 1, 1), *scale = osp_slice(m, 1, 1, 2, 1);
    /* LN(tokens [B, F·N, D])·(1 + scale) + shift: per-sample gamma, beta */
    osp_tensor *y = osp_layer_norm(tokens, osp_scale_shift(scale, 1.0f, 1.0f), shift,
                                   cfg->norm_eps);
    return osp_pool_pop_keep(latte_linear_forward(&e->proj_out, y));
}

osp_tensor *latte_unpatchify(osp_tensor *y, const osp_latte_config *cfg, int64_t frames,
                             int64_t h, int64_t w)
{
    if (!y)
        return NULL;
    int64_t B = y->shape[0], p = cfg->patch_size, C = cfg->out_channels;
    /* channel (di·p + dj)·C + c of token (r, col) -> out[b, c, f, r·p + di, col·p + dj] */
    int64_t split[] = {B, frames, h, w, p, p, C};
    const int perm[] = {0, 6, 1, 2, 4, 3, 5};
    int64_t out[] = {B, C, frames, h * p, w * p};
    return osp_reshape(osp_permute(osp_reshape(y, 7, split), perm), 5, out);
}
