/* latte_blocks.c — LatteT2V's layers: linear, multi-head attention, and
 * the PixArt-alpha style spatial (§4.6) and temporal (§4.7) blocks. */
#include "latte_impl.h"

#include <math.h>
#include <stdio.h>

/* The feed-forward's inner width is 4 x hidden (diffusers' FeedForward). */
#define LATTE_FF_MULT 4

osp_status latte_linear_load(latte_loader *ld, latte_linear *l, const char *prefix, int64_t in,
                             int64_t out)
{
    return latte_param(ld, &l->w, 2, (int64_t[]){out, in}, "%s.weight", prefix) ||
                   latte_param(ld, &l->b, 1, &out, "%s.bias", prefix)
               ? osp_error_code()
               : OSP_OK;
}

osp_tensor *latte_linear_forward(const latte_linear *l, osp_tensor *x)
{
    return osp_linear(x, l->w, l->b);
}

static osp_status attn_load(latte_loader *ld, latte_attn *a, const char *prefix, int64_t D,
                            int heads)
{
    char key[256];
    latte_linear *parts[] = {&a->q, &a->k, &a->v, &a->out};
    static const char *const names[] = {"to_q", "to_k", "to_v", "to_out.0"};
    a->heads = heads;
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "%s.%s", prefix, names[i]);
        if (latte_linear_load(ld, parts[i], key, D, D))
            return osp_error_code();
    }
    return OSP_OK;
}

osp_status latte_block_load(latte_loader *ld, latte_block *b, const osp_latte_config *cfg,
                            const char *prefix, bool cross)
{
    int64_t D = cfg->hidden;
    char key[256];
    b->cross = cross;
    b->eps = cfg->norm_eps;
    if (latte_param(ld, &b->table, 2, (int64_t[]){6, D}, "%s.scale_shift_table", prefix))
        return osp_error_code();
    snprintf(key, sizeof key, "%s.attn1", prefix);
    if (attn_load(ld, &b->attn1, key, D, cfg->heads))
        return osp_error_code();
    snprintf(key, sizeof key, "%s.attn2", prefix);
    if (cross && attn_load(ld, &b->attn2, key, D, cfg->heads))
        return osp_error_code();
    snprintf(key, sizeof key, "%s.ff.net.0.proj", prefix);
    if (latte_linear_load(ld, &b->ff_in, key, D, LATTE_FF_MULT * D))
        return osp_error_code();
    snprintf(key, sizeof key, "%s.ff.net.2", prefix);
    return latte_linear_load(ld, &b->ff_out, key, LATTE_FF_MULT * D, D);
}

/* [S, L, D] -> [S, heads, L, D / heads] (head h = channels h·hd .. h·hd + hd - 1) */
static osp_tensor *to_heads(osp_tensor *x, int heads)
{
    if (!x)
        return NULL;
    int64_t split[] = {x->shape[0], x->shape[1], heads, x->shape[2] / heads};
    const int perm[] = {0, 2, 1, 3};
    return osp_permute(osp_reshape(x, 4, split), perm);
}

/* [S, heads, L, hd] -> [S, L, heads · hd] */
static osp_tensor *from_heads(osp_tensor *o)
{
    if (!o)
        return NULL;
    const int perm[] = {0, 2, 1, 3};
    int64_t merged[] = {o->shape[0], o->shape[2], o->shape[1] * o->shape[3]};
    return osp_reshape(osp_permute(o, perm), 3, merged);
}

/* softmax(q kᵀ / √hd + bias) v over projected q [S, Lq, D], k, v [S, Lk, D];
 * bias NULL or [S, 1, 1, Lk]. Result [S, Lq, D] before the out projection. */
static osp_tensor *multi_head(const latte_attn *a, osp_tensor *q, osp_tensor *k, osp_tensor *v,
                              osp_tensor *bias)
{
    if (!q)
        return NULL;
    float scale = 1.0f / sqrtf((float)(q->shape[2] / a->heads));
    return from_heads(osp_attention(to_heads(q, a->heads), to_heads(k, a->heads),
                                    to_heads(v, a->heads), bias, scale));
}

static osp_tensor *self_attention(const latte_attn *a, osp_tensor *x)
{
    osp_tensor *o = multi_head(a, latte_linear_forward(&a->q, x), latte_linear_forward(&a->k, x),
                               latte_linear_forward(&a->v, x), NULL);
    return latte_linear_forward(&a->out, o);
}

/* Rows [first, first + count) of the caption axis of t [B, R, ...] as
 * [B·count, rest...]: the keys, values or bias of those caption rows. */
static osp_tensor *caption_rows(osp_tensor *t, int64_t first, int64_t count)
{
    if (!t)
        return NULL;
    int64_t shape[OSP_MAX_DIMS];
    shape[0] = t->shape[0] * count;
    for (int d = 2; d < t->ndim; d++)
        shape[d - 1] = t->shape[d];
    return osp_reshape(osp_slice(t, 1, first, first + count, 1), t->ndim - 1, shape);
}

/* [B·n, L] bias rows -> [B·n, 1, 1, L] for the attention scores. */
static osp_tensor *score_bias(osp_tensor *bias)
{
    if (!bias)
        return NULL;
    return osp_reshape(bias, 4, (int64_t[]){bias->shape[0], 1, 1, bias->shape[1]});
}

/* Cross-attention of frames x [B·F, N, D] to their captions. The keys and
 * values of a caption row are shared by all frames using it, so the
 * queries of those frames go into one attention call (each query row's
 * result is independent of the others): the F_v video frames of a sample
 * as one sequence of F_v·N queries, each image frame on its own. */
static osp_tensor *cross_attention(const latte_attn *a, osp_tensor *x, const latte_text *t)
{
    int64_t B = t->ctx->shape[0], R = t->ctx->shape[1], F = t->frames, Fv = t->video_frames;
    int64_t N = x->shape[1], D = x->shape[2];
    osp_tensor *q = osp_reshape(latte_linear_forward(&a->q, x), 4, (int64_t[]){B, F, N, D});
    osp_tensor *k = latte_linear_forward(&a->k, t->ctx), *v = latte_linear_forward(&a->v, t->ctx);
    osp_tensor *video_q = osp_reshape(osp_slice(q, 1, 0, Fv, 1), 3, (int64_t[]){B, Fv * N, D});
    osp_tensor *parts[2];
    parts[0] = osp_reshape(multi_head(a, video_q, caption_rows(k, 0, 1), caption_rows(v, 0, 1),
                                      score_bias(caption_rows(t->bias, 0, 1))),
                           4, (int64_t[]){B, Fv, N, D});
    if (F > Fv) { /* joint training: image j reads caption row 1 + j */
        int64_t n = F - Fv;
        osp_tensor *image_q = osp_reshape(osp_slice(q, 1, Fv, F, 1), 3, (int64_t[]){B * n, N, D});
        parts[1] = osp_reshape(multi_head(a, image_q, caption_rows(k, 1, R - 1),
                                          caption_rows(v, 1, R - 1),
                                          score_bias(caption_rows(t->bias, 1, R - 1))),
                               4, (int64_t[]){B, n, N, D});
    }
    osp_tensor *o = F > Fv ? osp_concat(2, parts, 1) : parts[0];
    return latte_linear_forward(&a->out, osp_reshape(o, 3, x->shape));
}

/* LN(x)·(1 + scale) + shift for x [B, R, D], scale and shift [B, 1, D]:
 * one layer norm with per-sample gamma and beta (one pass, not three). */
static osp_tensor *modulate(osp_tensor *x, osp_tensor *shift, osp_tensor *scale, float eps)
{
    return osp_layer_norm(x, osp_scale_shift(scale, 1.0f, 1.0f), shift, eps);
}

osp_tensor *latte_block_forward(const latte_block *b, osp_tensor *x, osp_tensor *t6,
                                const latte_text *text)
{
    if (!x || !t6)
        return NULL;
    osp_pool_push();
    int64_t B = t6->shape[0], S = x->shape[0], N = x->shape[1], D = x->shape[2];
    /* every row of sample b shares its modulation: view x as [B, rows·N, D] */
    int64_t per_sample[] = {B, S / B * N, D};
    osp_tensor *m = osp_add(b->table, osp_reshape(t6, 3, (int64_t[]){B, 6, D}));
    osp_tensor *shift_msa = osp_slice(m, 1, 0, 1, 1), *scale_msa = osp_slice(m, 1, 1, 2, 1),
               *gate_msa = osp_slice(m, 1, 2, 3, 1), *shift_mlp = osp_slice(m, 1, 3, 4, 1),
               *scale_mlp = osp_slice(m, 1, 4, 5, 1), *gate_mlp = osp_slice(m, 1, 5, 6, 1);
    osp_tensor *h = osp_reshape(x, 3, per_sample);
    osp_tensor *n = osp_reshape(modulate(h, shift_msa, scale_msa, b->eps), 3, x->shape);
    h = osp_add(osp_mul(gate_msa, osp_reshape(self_attention(&b->attn1, n), 3, per_sample)), h);
    /* PixArt-alpha: the cross-attention reads the raw residual stream and
     * is added without norm or gate */
    if (b->cross && h)
        h = osp_add(osp_reshape(cross_attention(&b->attn2, osp_reshape(h, 3, x->shape), text), 3,
                                per_sample),
                    h);
    n = modulate(h, shift_mlp, scale_mlp, b->eps);
    osp_tensor *ff = latte_linear_forward(&b->ff_out, osp_linear_gelu(n, b->ff_in.w, b->ff_in.b));
    h = osp_add(osp_mul(gate_mlp, ff), h);
    return osp_pool_pop_keep(osp_reshape(h, 3, x->shape));
}
