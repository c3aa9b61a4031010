/* latte_impl.h — LatteT2V internals shared by models/latte*.c: the loader
 * that either reads weights or records a shape plan, and the layers. */
#ifndef OSP_LATTE_IMPL_H
#define OSP_LATTE_IMPL_H

#include "latte.h"
#include "backend/ops.h"
#include "nn/params.h"

/* Every parameter goes through latte_param: with `params` set it is loaded
 * (shape-checked) from the model folder; with `plan` set only its name and
 * shape are recorded and the tensor stays NULL. One code path builds both,
 * so the plan is exactly what loading reads. */
typedef struct latte_loader {
    osp_params *params;
    osp_latte_plan *plan;
} latte_loader;

osp_status latte_param(latte_loader *ld, osp_tensor **dst, int ndim, const int64_t *shape,
                       const char *fmt, ...) OSP_PRINTF(5, 6);

/* y = x Wᵀ + b: keys <prefix>.weight [out, in] and <prefix>.bias [out]. */
typedef struct latte_linear {
    osp_tensor *w, *b;
} latte_linear;

osp_status latte_linear_load(latte_loader *ld, latte_linear *l, const char *prefix, int64_t in,
                             int64_t out);
osp_tensor *latte_linear_forward(const latte_linear *l, osp_tensor *x);

/* ---- embeddings and the final layer (latte_embed.c) ---- */

typedef struct latte_embed {
    osp_tensor *patch_w, *patch_b;   /* pos_embed.proj: conv p x p, stride p */
    latte_linear t_linear1, t_linear2; /* adaln_single.emb.timestep_embedder */
    latte_linear t6;                 /* adaln_single.linear: D -> 6D */
    osp_tensor *y_embedding;         /* caption_projection.y_embedding (unused) */
    latte_linear cap1, cap2;         /* caption_projection.linear_1/2 */
    osp_tensor *final_table;         /* scale_shift_table [2, D] */
    latte_linear proj_out;           /* D -> p*p*C_out */
} latte_embed;

/* The loaders follow the reference's state-dict order, which interleaves
 * top-level tensors with the blocks: head (scale_shift_table, pos_embed),
 * then the blocks, then tail (proj_out, adaln_single, caption_projection). */
osp_status latte_embed_load_head(latte_loader *ld, latte_embed *e, const osp_latte_config *cfg);
osp_status latte_embed_load_tail(latte_loader *ld, latte_embed *e, const osp_latte_config *cfg);

/* frames [S, C_in, H, W] -> tokens [S, N, D] (conv + 2-D table). */
osp_tensor *latte_patch_embed(const latte_embed *e, const osp_latte_config *cfg,
                              osp_tensor *frames);
/* sinusoid [B, 256] -> emb [B, D] (timestep MLP) and t6 [B, 6D]. */
osp_status latte_timestep_embed(const latte_embed *e, osp_tensor *sinusoid, osp_tensor **emb,
                                osp_tensor **t6);
/* T5 states [..., caption_channels] -> [..., D]. */
osp_tensor *latte_caption_project(const latte_embed *e, osp_tensor *text);
/* tokens [B, F*N, D], emb [B, D] -> [B, F*N, p*p*C_out] (before unpatchify). */
osp_tensor *latte_final_layer(const latte_embed *e, const osp_latte_config *cfg,
                              osp_tensor *tokens, osp_tensor *emb);
/* [B, F*h*w, p*p*C_out] -> [B, C_out, F, h*p, w*p]. */
osp_tensor *latte_unpatchify(osp_tensor *y, const osp_latte_config *cfg, int64_t frames,
                             int64_t h, int64_t w);

/* ---- transformer blocks (latte_blocks.c) ---- */

typedef struct latte_attn {
    latte_linear q, k, v, out;
    int heads;
} latte_attn;

typedef struct latte_block {
    osp_tensor *table; /* scale_shift_table [6, D] */
    latte_attn attn1, attn2;
    latte_linear ff_in, ff_out; /* ff.net.0.proj (D -> 4D), ff.net.2 */
    bool cross;                 /* spatial blocks have the text cross-attention */
    float eps;
} latte_block;

/* What a spatial block's cross-attention reads. Frame f of sample b uses
 * caption row 0 when f < video_frames, row 1 + (f - video_frames) after. */
typedef struct latte_text {
    osp_tensor *ctx;  /* [B, R, L, D] projected captions */
    osp_tensor *bias; /* NULL or [B, R, L]: 0 for real tokens, -10000 for padding */
    int64_t frames, video_frames;
} latte_text;

osp_status latte_block_load(latte_loader *ld, latte_block *b, const osp_latte_config *cfg,
                            const char *prefix, bool cross);
/* x [B * rows, N, D]: `rows` sequences of N tokens per sample, all
 * modulated by the sample's t6 [B, 6D]. text: the spatial blocks' captions
 * (rows = frames), NULL for temporal blocks. Returns the new x. */
osp_tensor *latte_block_forward(const latte_block *b, osp_tensor *x, osp_tensor *t6,
                                const latte_text *text);

#endif
