/* t5.c — T5 v1.1 encoder: loading and forward pass (spec/t5.md §5-6). */
#include "t5.h"

#include "backend/ops.h"
#include "core/checked.h"
#include "io/model.h"
#include "nn/params.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct t5_block {
    osp_tensor *ln_attn, *q, *k, *v, *o; /* layer.0 */
    osp_tensor *ln_ff, *wi0, *wi1, *wo;  /* layer.1 */
} t5_block;

struct osp_t5 {
    osp_t5_config cfg;
    osp_model_dir *dir;
    osp_params params;
    osp_device device;
    osp_tensor *embed, *rel_bias, *final_ln;
    const char *spare_embed_key; /* the other tied embedding key, if present */
    t5_block *blocks;
};

/* ---- loading ---- */

static osp_status load_block(osp_t5 *t, int i)
{
    const osp_t5_config *c = &t->cfg;
    osp_params *p = &t->params;
    t5_block *b = &t->blocks[i];
    const int64_t norm[1] = {c->d_model}, qkv[2] = {c->num_heads * c->d_kv, c->d_model},
                  out[2] = {c->d_model, c->num_heads * c->d_kv}, wi[2] = {c->d_ff, c->d_model},
                  wo[2] = {c->d_model, c->d_ff};
    char pre_att[64], pre_ff[64];
    snprintf(pre_att, sizeof pre_att, "encoder.block.%d.layer.0", i);
    snprintf(pre_ff, sizeof pre_ff, "encoder.block.%d.layer.1", i);
    b->ln_attn = osp_params_load(p, 1, norm, "%s.layer_norm.weight", pre_att);
    b->q = b->ln_attn ? osp_params_load(p, 2, qkv, "%s.SelfAttention.q.weight", pre_att) : NULL;
    b->k = b->q ? osp_params_load(p, 2, qkv, "%s.SelfAttention.k.weight", pre_att) : NULL;
    b->v = b->k ? osp_params_load(p, 2, qkv, "%s.SelfAttention.v.weight", pre_att) : NULL;
    b->o = b->v ? osp_params_load(p, 2, out, "%s.SelfAttention.o.weight", pre_att) : NULL;
    b->ln_ff = b->o ? osp_params_load(p, 1, norm, "%s.layer_norm.weight", pre_ff) : NULL;
    b->wi0 = b->ln_ff ? osp_params_load(p, 2, wi, "%s.DenseReluDense.wi_0.weight", pre_ff) : NULL;
    b->wi1 = b->wi0 ? osp_params_load(p, 2, wi, "%s.DenseReluDense.wi_1.weight", pre_ff) : NULL;
    b->wo = b->wi1 ? osp_params_load(p, 2, wo, "%s.DenseReluDense.wo.weight", pre_ff) : NULL;
    return b->wo ? OSP_OK : osp_error_code();
}

/* The embedding: shared.weight or encoder.embed_tokens.weight, whichever
 * exists (both in an HF save, where they are one tensor). */
static osp_status load_embedding(osp_t5 *t)
{
    static const char *const keys[2] = {"shared.weight", "encoder.embed_tokens.weight"};
    const int64_t shape[2] = {t->cfg.vocab_size, t->cfg.d_model};
    const bool has[2] = {osp_model_find(t->dir, keys[0]) != NULL,
                         osp_model_find(t->dir, keys[1]) != NULL};
    if (!has[0] && !has[1])
        return osp_error(OSP_ERR_DATA, "%s: no token embedding (shared.weight or "
                         "encoder.embed_tokens.weight)", osp_model_path(t->dir));
    t->embed = osp_params_load(&t->params, 2, shape, "%s", keys[has[0] ? 0 : 1]);
    if (!t->embed)
        return osp_error_code();
    if (has[0] && has[1]) {
        const osp_st_entry *e = osp_model_find(t->dir, keys[1]);
        if (e->ndim != 2 || e->shape[0] != shape[0] || e->shape[1] != shape[1])
            return osp_error(OSP_ERR_DATA, "%s: %s and %s differ in shape",
                             osp_model_path(t->dir), keys[0], keys[1]);
        t->spare_embed_key = keys[1];
    }
    return OSP_OK;
}

/* Every encoder tensor of the checkpoint must have been used: a leftover
 * means config and weights disagree (e.g. more blocks than num_layers). */
static osp_status check_unused(const osp_t5 *t)
{
    size_t n = osp_model_tensor_count(t->dir);
    for (size_t i = 0; i < n; i++) {
        const char *name = osp_model_entry(t->dir, i)->name;
        if (strncmp(name, "decoder.", 8) == 0 || strncmp(name, "lm_head.", 8) == 0 ||
            (t->spare_embed_key && strcmp(name, t->spare_embed_key) == 0))
            continue;
        if (!osp_params_find(&t->params, name))
            return osp_error(OSP_ERR_DATA, "%s: unexpected tensor %s for this config "
                             "(num_layers %lld)", osp_model_path(t->dir), name,
                             (long long)t->cfg.num_layers);
    }
    return OSP_OK;
}

static osp_status load_weights(osp_t5 *t)
{
    const osp_t5_config *c = &t->cfg;
    const int64_t rel[2] = {c->num_buckets, c->num_heads}, norm[1] = {c->d_model};
    if (load_embedding(t))
        return osp_error_code();
    t->rel_bias = osp_params_load(&t->params, 2, rel, "encoder.block.0.layer.0.SelfAttention."
                                  "relative_attention_bias.weight");
    if (!t->rel_bias)
        return osp_error_code();
    t->blocks = calloc((size_t)c->num_layers, sizeof *t->blocks);
    if (!t->blocks)
        return osp_error_nomem("T5 blocks", (unsigned long long)c->num_layers * sizeof *t->blocks);
    for (int i = 0; i < c->num_layers; i++)
        if (load_block(t, i))
            return osp_error_code();
    t->final_ln = osp_params_load(&t->params, 1, norm, "encoder.final_layer_norm.weight");
    return t->final_ln ? check_unused(t) : osp_error_code();
}

osp_t5 *osp_t5_load(const char *dir, osp_device device)
{
    osp_t5 *t = calloc(1, sizeof *t);
    if (!t) {
        osp_error_nomem("T5", sizeof *t);
        return NULL;
    }
    t->device = device;
    t->dir = osp_model_open(dir);
    if (!t->dir)
        goto fail;
    if (!osp_model_config(t->dir)) {
        osp_error(OSP_ERR_DATA, "%s: no config.json", dir);
        goto fail;
    }
    osp_params_init(&t->params, t->dir, device);
    t->params.keep_stored_dtype = true;
    if (osp_t5_config_parse(osp_model_config(t->dir), &t->cfg) || load_weights(t))
        goto fail;
    return t;
fail:
    osp_t5_free(t);
    return NULL;
}

void osp_t5_free(osp_t5 *t)
{
    if (!t)
        return;
    free(t->blocks);
    osp_params_free(&t->params);
    osp_model_close(t->dir);
    free(t);
}

const osp_t5_config *osp_t5_get_config(const osp_t5 *t)
{
    return &t->cfg;
}

/* ---- forward ---- */

/* x·wᵀ in its own pool, so the float32 copy of a bf16/f16 weight that the
 * op makes is freed as soon as the product exists (one at a time). */
static osp_tensor *linear(osp_tensor *x, osp_tensor *w)
{
    osp_pool_push();
    return osp_pool_pop_keep(osp_linear(x, w, NULL));
}

static osp_tensor *embed(osp_tensor *table, osp_tensor *ids)
{
    osp_pool_push();
    return osp_pool_pop_keep(osp_embedding(table, ids));
}

static const int swap_12[4] = {0, 2, 1, 3};

/* [B, L, H·d_kv] -> [B, H, L, d_kv] (a view; the op makes it contiguous). */
static osp_tensor *split_heads(osp_tensor *t, const osp_t5_config *c)
{
    if (!t)
        return NULL;
    const int64_t shape[4] = {t->shape[0], t->shape[1], c->num_heads, c->d_kv};
    return osp_permute(osp_reshape(t, 4, shape), swap_12);
}

/* Self-attention of the normed input y, with bias = position bias + key
 * mask [B, H, L, Lk]; scores are NOT scaled by 1/sqrt(d_kv). Only the first
 * Lk positions serve as keys and values: the rest are padding in every
 * prompt of the batch (osp_t5_forward). */
static osp_tensor *self_attention(const t5_block *b, const osp_t5_config *c, osp_tensor *y,
                                  osp_tensor *bias)
{
    if (!y || !bias)
        return NULL;
    osp_tensor *keys = bias->shape[3] < y->shape[1] ? osp_slice(y, 1, 0, bias->shape[3], 1) : y;
    osp_tensor *q = split_heads(linear(y, b->q), c), *k = split_heads(linear(keys, b->k), c),
               *v = split_heads(linear(keys, b->v), c);
    const int64_t merged[3] = {y->shape[0], y->shape[1], c->num_heads * c->d_kv};
    osp_tensor *a = osp_attention(q, k, v, bias, 1.0f);
    return linear(osp_reshape(osp_permute(a, swap_12), 3, merged), b->o);
}

/* Gated FFN: gelu_new(y·W0ᵀ) ⊙ (y·W1ᵀ), then ·Woᵀ. */
static osp_tensor *feed_forward(const t5_block *b, osp_tensor *y)
{
    osp_tensor *g = osp_mul(osp_linear_gelu(y, b->wi0, NULL), linear(y, b->wi1));
    return linear(g, b->wo);
}

static osp_tensor *block_forward(const t5_block *b, const osp_t5_config *c, osp_tensor *x,
                                 osp_tensor *bias)
{
    osp_pool_push();
    x = osp_add(x, self_attention(b, c, osp_rms_norm(x, b->ln_attn, c->eps), bias));
    x = osp_add(x, feed_forward(b, osp_rms_norm(x, b->ln_ff, c->eps)));
    return osp_pool_pop_keep(x);
}

osp_tensor *osp_t5_position_bias(osp_t5 *t, int64_t Lq, int64_t Lk)
{
    const osp_t5_config *c = &t->cfg;
    int64_t n;
    if (Lq < 1 || Lk < 1 || !osp_mul_i64(Lq, Lk, &n)) {
        osp_error(OSP_ERR_DATA, "T5: sequence length %lld x %lld is out of range",
                  (long long)Lq, (long long)Lk);
        return NULL;
    }
    const int64_t shape[2] = {Lq, Lk};
    osp_tensor *buckets = osp_tensor_new(OSP_I64, 2, shape, OSP_DEVICE_CPU);
    if (!buckets)
        return NULL;
    int64_t *bk = osp_data(buckets);
    for (int64_t i = 0; i < Lq; i++) /* row = query i, column = key j */
        for (int64_t j = 0; j < Lk; j++)
            bk[i * Lk + j] = osp_t5_bucket(j - i, c->num_buckets, c->max_distance);
    static const int heads_first[3] = {2, 0, 1};
    const int64_t out[4] = {1, c->num_heads, Lq, Lk};
    osp_tensor *pb = embed(t->rel_bias, osp_to_device(buckets, t->device)); /* [Lq, Lk, H] */
    return osp_reshape(osp_permute(pb, heads_first), 4, out);
}

/* The keys attention needs: up to the last real token of any prompt of the
 * batch. Past it every key is padding in every row, whose -FLT_MAX score
 * gives it a softmax weight of exactly 0, so leaving it out changes no
 * weight (the sums may round differently in the last bit). A prompt with
 * no real token at all spreads its weight over every key, padding
 * included, as the reference does: then all L stay. */
static int64_t keys_needed(const double *mask, int64_t B, int64_t L)
{
    int64_t n = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t last = L;
        while (last > 0 && mask[b * L + last - 1] == 0)
            last--;
        if (last == 0)
            return L;
        n = last > n ? last : n;
    }
    return n;
}

/* Validates ids and mask and builds the additive key mask [B, 1, 1, Lk]
 * (Lk: keys_needed): 0 for a real token, -FLT_MAX for padding (spec §6:
 * not -inf). */
static osp_tensor *key_mask(const osp_t5 *t, osp_tensor *ids, osp_tensor *mask,
                            osp_tensor **ids_out)
{
    char a[96], b[96];
    if (ids->ndim != 2 || (ids->dtype != OSP_I32 && ids->dtype != OSP_I64) ||
        !osp_numel(ids)) {
        osp_error(OSP_ERR_DATA, "T5: token ids must be a non-empty i32/i64 [B, L] tensor, got "
                  "%s %s", osp_dtype_name(ids->dtype), osp_shape_str(ids, a, sizeof a));
        return NULL;
    }
    if (!osp_same_shape(ids, mask)) {
        osp_error(OSP_ERR_DATA, "T5: mask %s does not match the token ids %s",
                  osp_shape_str(mask, a, sizeof a), osp_shape_str(ids, b, sizeof b));
        return NULL;
    }
    int64_t B = ids->shape[0], L = ids->shape[1];
    osp_tensor *id = osp_tensor_to_dtype(osp_to_device(ids, OSP_DEVICE_CPU), OSP_I64);
    osp_tensor *m = osp_tensor_to_dtype(osp_to_device(mask, OSP_DEVICE_CPU), OSP_F64);
    if (!id || !m)
        return NULL;
    const int64_t *idv = osp_data(id);
    const double *mv = osp_data(m);
    int64_t Lk = keys_needed(mv, B, L);
    const int64_t shape[4] = {B, 1, 1, Lk};
    osp_tensor *add = osp_tensor_new(OSP_F32, 4, shape, OSP_DEVICE_CPU);
    if (!add)
        return NULL;
    float *out = osp_f32(add);
    for (int64_t i = 0; i < B * L; i++) {
        if (idv[i] < 0 || idv[i] >= t->cfg.vocab_size) {
            osp_error(OSP_ERR_DATA, "T5: token id %lld at [%lld, %lld] is outside the "
                      "vocabulary of %lld", (long long)idv[i], (long long)(i / L),
                      (long long)(i % L), (long long)t->cfg.vocab_size);
            return NULL;
        }
        if (mv[i] != 0 && mv[i] != 1) {
            osp_error(OSP_ERR_DATA, "T5: mask value %g at [%lld, %lld] is not 0 or 1", mv[i],
                      (long long)(i / L), (long long)(i % L));
            return NULL;
        }
        if (i % L < Lk)
            out[i / L * Lk + i % L] = mv[i] != 0 ? 0.0f : -FLT_MAX;
    }
    *ids_out = osp_to_device(id, t->device);
    return osp_to_device(add, t->device);
}

osp_tensor *osp_t5_forward(osp_t5 *t, osp_tensor *ids, osp_tensor *mask, osp_tensor **block_out)
{
    if (!ids || !mask)
        return NULL;
    const osp_t5_config *c = &t->cfg;
    if (block_out)
        memset(block_out, 0, (size_t)c->num_layers * sizeof *block_out);
    osp_pool_push();
    osp_tensor *dev_ids = NULL, *madd = key_mask(t, ids, mask, &dev_ids);
    /* Position bias + key mask, added once in float32 and shared by all blocks. */
    osp_tensor *bias =
        madd ? osp_add(osp_t5_position_bias(t, ids->shape[1], madd->shape[3]), madd) : NULL;
    osp_tensor *x = bias ? embed(t->embed, dev_ids) : NULL;
    for (int i = 0; i < c->num_layers; i++) {
        x = block_forward(&t->blocks[i], c, x, bias);
        if (block_out)
            block_out[i] = osp_retain(x);
    }
    osp_tensor *out = osp_pool_pop_keep(osp_rms_norm(x, t->final_ln, c->eps));
    for (int i = 0; block_out && i < c->num_layers; i++)
        if (block_out[i])
            osp_autorelease(block_out[i]);
    return out;
}

osp_tensor *osp_t5_run(osp_t5 *t, osp_tensor *ids, osp_tensor *mask)
{
    return osp_t5_forward(t, ids, mask, NULL);
}
