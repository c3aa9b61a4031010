/* latte.c — LatteT2V: loading (and the shape plan, from the same code),
 * input checks and the forward pass (spec §4.1, §5). */
#include "latte_impl.h"
#include "core/checked.h"
#include "io/model.h"
#include "train/recompute.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a layer needs besides its tensors. A checkpointed layer is run
 * again in the backward, after the forward has returned: so these live in
 * the model (one per layer, rewritten by each forward), and the input
 * (only for the debug taps) is left out of them then. */
typedef struct layer_ctx {
    const struct osp_latte *m;
    const osp_latte_input *in; /* NULL when checkpointing */
    int layer;
    bool temporal;
    int64_t B, F, Fv;
} layer_ctx;

struct osp_latte {
    osp_latte_config cfg;
    osp_params params;
    osp_model_dir *dir;
    latte_embed embed;
    latte_block *spatial, *temporal; /* num_layers each */
    bool checkpointing;                /* recompute layers in the backward */
    layer_ctx *layers;                 /* num_layers */
};

void osp_latte_set_checkpointing(osp_latte *m, bool on)
{
    m->checkpointing = on;
}

/* ---- loading and the shape plan ---- */

static osp_status plan_add(osp_latte_plan *plan, const char *name, int ndim,
                           const int64_t *shape)
{
    if (ndim > 4)
        return osp_error(OSP_ERR_RUNTIME, "shape plan: %s has %d dimensions", name, ndim);
    if (plan->n == plan->cap) {
        size_t cap = plan->cap ? 2 * plan->cap : 256;
        osp_latte_param_info *items = realloc(plan->items, cap * sizeof *items);
        if (!items)
            return osp_error_nomem("shape plan", cap * sizeof *items);
        plan->items = items;
        plan->cap = cap;
    }
    osp_latte_param_info *it = &plan->items[plan->n];
    memset(it, 0, sizeof *it);
    if (!(it->name = strdup(name)))
        return osp_error_nomem("shape plan", strlen(name) + 1);
    it->ndim = ndim;
    memcpy(it->shape, shape, (size_t)ndim * sizeof *shape);
    plan->n++;
    return OSP_OK;
}

osp_status latte_param(latte_loader *ld, osp_tensor **dst, int ndim, const int64_t *shape,
                       const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof name)
        return osp_error(OSP_ERR_RUNTIME, "parameter name too long: %s...", name);
    *dst = NULL;
    if (ld->plan)
        return plan_add(ld->plan, name, ndim, shape);
    *dst = osp_params_load(ld->params, ndim, shape, "%s", name);
    return *dst ? OSP_OK : osp_error_code();
}

/* Every tensor, in the reference's state-dict order. */
static osp_status load_all(latte_loader *ld, const osp_latte_config *cfg, latte_embed *e,
                           latte_block *spatial, latte_block *temporal)
{
    char prefix[64];
    if (latte_embed_load_head(ld, e, cfg))
        return osp_error_code();
    for (int i = 0; i < cfg->num_layers; i++) {
        snprintf(prefix, sizeof prefix, "transformer_blocks.%d", i);
        if (latte_block_load(ld, &spatial[i], cfg, prefix, true))
            return osp_error_code();
    }
    for (int i = 0; i < cfg->num_layers; i++) {
        snprintf(prefix, sizeof prefix, "temporal_transformer_blocks.%d", i);
        if (latte_block_load(ld, &temporal[i], cfg, prefix, false))
            return osp_error_code();
    }
    return latte_embed_load_tail(ld, e, cfg);
}

static osp_status alloc_blocks(const osp_latte_config *cfg, latte_block **spatial,
                               latte_block **temporal)
{
    *spatial = calloc((size_t)cfg->num_layers, sizeof **spatial);
    *temporal = calloc((size_t)cfg->num_layers, sizeof **temporal);
    if (!*spatial || !*temporal)
        return osp_error_nomem("Latte blocks", 2 * (unsigned long long)cfg->num_layers *
                                                   sizeof **spatial);
    return OSP_OK;
}

osp_status osp_latte_plan_build(const osp_latte_config *cfg, osp_latte_plan *out)
{
    memset(out, 0, sizeof *out);
    latte_loader ld = {.plan = out};
    latte_embed e;
    latte_block *spatial, *temporal;
    osp_status st = alloc_blocks(cfg, &spatial, &temporal);
    if (!st)
        st = load_all(&ld, cfg, &e, spatial, temporal);
    free(spatial);
    free(temporal);
    if (st)
        osp_latte_plan_free(out);
    return st;
}

void osp_latte_plan_free(osp_latte_plan *plan)
{
    for (size_t i = 0; i < plan->n; i++)
        free(plan->items[i].name);
    free(plan->items);
    memset(plan, 0, sizeof *plan);
}

/* Every checkpoint tensor must have been read: anything else means the
 * folder holds another config than config.json says. */
static osp_status check_unused(osp_latte *m)
{
    size_t n = osp_model_tensor_count(m->dir);
    for (size_t i = 0; i < n; i++) {
        const char *name = osp_model_entry(m->dir, i)->name;
        if (!osp_params_find(&m->params, name))
            return osp_error(OSP_ERR_DATA, "%s: unexpected tensor %s for this config",
                             osp_model_path(m->dir), name);
    }
    return OSP_OK;
}

osp_latte *osp_latte_load(const char *dir, osp_device device, bool keep_stored_dtype)
{
    osp_latte *m = calloc(1, sizeof *m);
    if (!m) {
        osp_error_nomem("Latte model", sizeof *m);
        return NULL;
    }
    if (!(m->dir = osp_model_open(dir)))
        goto fail;
    if (!osp_model_config(m->dir)) {
        osp_error(OSP_ERR_DATA, "%s: no config.json", dir);
        goto fail;
    }
    osp_params_init(&m->params, m->dir, device);
    m->params.keep_stored_dtype = keep_stored_dtype;
    latte_loader ld = {.params = &m->params};
    if (osp_latte_config_parse(osp_model_config(m->dir), &m->cfg) ||
        alloc_blocks(&m->cfg, &m->spatial, &m->temporal) ||
        load_all(&ld, &m->cfg, &m->embed, m->spatial, m->temporal) || check_unused(m))
        goto fail;
    if (!(m->layers = calloc((size_t)m->cfg.num_layers, sizeof *m->layers))) {
        osp_error_nomem("Latte layers", (size_t)m->cfg.num_layers * sizeof *m->layers);
        goto fail;
    }
    return m;
fail:
    osp_latte_free(m);
    return NULL;
}

void osp_latte_free(osp_latte *m)
{
    if (!m)
        return;
    free(m->spatial);
    free(m->temporal);
    free(m->layers);
    osp_params_free(&m->params);
    osp_model_close(m->dir);
    free(m);
}

const osp_latte_config *osp_latte_get_config(const osp_latte *m) { return &m->cfg; }
struct osp_params *osp_latte_params(osp_latte *m) { return &m->params; }

/* ---- input checks ---- */

static osp_status shape_error(const char *what, const osp_tensor *t, const char *expected)
{
    char buf[128];
    return osp_error(OSP_ERR_DATA, "%s must be %s, got %s", what, expected,
                     osp_shape_str(t, buf, sizeof buf));
}

static osp_status check_input(const osp_latte_config *cfg, const osp_latte_input *in)
{
    const osp_tensor *x = in->x, *c = in->context;
    if (!x || !in->timestep || !c)
        return osp_error_code() ? osp_error_code()
                                : osp_error(OSP_ERR_RUNTIME, "Latte forward: missing input");
    char expect[160];
    snprintf(expect, sizeof expect, "[B, %d, F, H, W] with H and W multiples of %d",
             cfg->in_channels, cfg->patch_size);
    if (x->ndim != 5 || x->shape[1] != cfg->in_channels || x->shape[0] < 1 || x->shape[2] < 1 ||
        x->shape[3] < cfg->patch_size || x->shape[4] < cfg->patch_size ||
        x->shape[3] % cfg->patch_size || x->shape[4] % cfg->patch_size)
        return shape_error("latent", x, expect);
    int64_t B = x->shape[0], F = x->shape[2];
    if (in->n_img < 0 || in->n_img >= F)
        return osp_error(OSP_ERR_DATA, "%d images leave no video frame among %lld frames",
                         in->n_img, (long long)F);
    int64_t Fv = F - in->n_img;
    if (in->temporal && Fv != cfg->video_length)
        return osp_error(OSP_ERR_DATA, "the model's temporal table has %d frames but the latent "
                         "has %lld video frames (use %d, or 1 frame in image mode)",
                         cfg->video_length, (long long)Fv, cfg->video_length);
    if (in->timestep->ndim != 1 || in->timestep->shape[0] != B) {
        snprintf(expect, sizeof expect, "[%lld]", (long long)B);
        return shape_error("timestep", in->timestep, expect);
    }
    int want_ndim = in->n_img ? 4 : 3; /* the joint layout has a caption-row axis */
    if (c->ndim != want_ndim || c->shape[0] != B || (in->n_img && c->shape[1] != 1 + in->n_img) ||
        c->shape[want_ndim - 1] != cfg->caption_channels || c->shape[want_ndim - 2] < 1) {
        if (in->n_img)
            snprintf(expect, sizeof expect, "[%lld, %d, L, %d]", (long long)B, 1 + in->n_img,
                     cfg->caption_channels);
        else
            snprintf(expect, sizeof expect, "[%lld, L, %d] (the model's caption_channels)",
                     (long long)B, cfg->caption_channels);
        return shape_error("text embedding", c, expect);
    }
    if (in->mask) {
        const osp_tensor *m = in->mask;
        bool ok = m->ndim == want_ndim - 1;
        for (int d = 0; ok && d < m->ndim; d++)
            ok = m->shape[d] == c->shape[d];
        if (!ok) {
            snprintf(expect, sizeof expect, "%s the text embedding's leading dimensions",
                     in->n_img ? "[B, 1 + images, L]:" : "[B, L]:");
            return shape_error("text mask", m, expect);
        }
    }
    if (in->t_sinusoid && (in->t_sinusoid->ndim != 2 || in->t_sinusoid->shape[0] != B ||
                           in->t_sinusoid->shape[1] != OSP_LATTE_TIMESTEP_DIM))
        return shape_error("timestep sinusoid", in->t_sinusoid, "[B, 256]");
    return OSP_OK;
}

/* ---- forward ---- */

static void tap(const osp_latte_input *in, const char *name, osp_tensor *t)
{
    if (in && in->tap && t)
        in->tap(in->tap_ctx, name, t);
}

/* Temporal block of one layer over x [B·F, N, D]: the first F_v frames of
 * each token position form a sequence (the temporal table added first at
 * layer 0), image frames pass unchanged. */
static osp_tensor *temporal_layer(const latte_block *blk, const osp_latte_input *in,
                                  osp_tensor *x, osp_tensor *t6, osp_tensor *table, int64_t B,
                                  int64_t F, int64_t Fv)
{
    if (!x)
        return NULL;
    int64_t N = x->shape[1], D = x->shape[2];
    const int swap[] = {0, 2, 1, 3};
    osp_tensor *x4 = osp_reshape(x, 4, (int64_t[]){B, F, N, D});
    osp_tensor *seq = osp_reshape(osp_permute(osp_slice(x4, 1, 0, Fv, 1), swap), 3,
                                  (int64_t[]){B * N, Fv, D});
    if (table)
        seq = osp_add(seq, table);
    seq = latte_block_forward(blk, seq, t6, NULL);
    if (table)
        tap(in, "tap_temporal0_out", seq);
    osp_tensor *back = osp_permute(osp_reshape(seq, 4, (int64_t[]){B, N, Fv, D}), swap);
    if (F > Fv) {
        osp_tensor *parts[2] = {back, osp_slice(x4, 1, Fv, F, 1)};
        back = osp_concat(2, parts, 1);
    }
    return osp_reshape(back, 3, (int64_t[]){B * F, N, D});
}

/* One layer (a spatial block, then a temporal one) as a region for
 * train/recompute.h: args x, t6, text context, text bias, temporal table. */
enum { LAYER_ARGS = 5 };

static osp_tensor *layer(const void *ctx, osp_tensor *const *args)
{
    const layer_ctx *c = ctx;
    latte_text text = {.ctx = args[2], .bias = args[3], .frames = c->F, .video_frames = c->Fv};
    osp_tensor *x = latte_block_forward(&c->m->spatial[c->layer], args[0], args[1], &text);
    if (c->layer == 0)
        tap(c->in, "tap_spatial0_out", x);
    if (c->temporal)
        x = temporal_layer(&c->m->temporal[c->layer], c->in, x, args[1], args[4], c->B, c->F,
                           c->Fv);
    return x;
}

/* How many text positions the cross-attention needs: up to the last real
 * token of any caption row of the batch (mask [.., L]; all L without a
 * mask, or -1 after an error). Past it every key is padding for every
 * row: its score is lowered by 10000, so its softmax weight underflows to
 * exactly 0 (float32's exp is 0 below -104: it would take a raw score
 * some 9900 above the row's best real one to differ) and leaving it out
 * changes no weight (the sums may round differently in the last bit),
 * forward or backward. A row with
 * no real token spreads its weight over every key, padding included, as
 * the reference does: then all L stay. */
static int64_t text_keys_needed(osp_tensor *mask, int64_t L)
{
    if (!mask)
        return L;
    osp_pool_push();
    osp_tensor *m = osp_tensor_to_dtype(osp_to_device(mask, OSP_DEVICE_CPU), OSP_F32);
    int64_t n = m ? 0 : -1, rows = m ? osp_numel(m) / L : 0;
    const float *v = m ? osp_f32(m) : NULL;
    for (int64_t r = 0; r < rows && n < L; r++) {
        int64_t last = L;
        while (last > 0 && v[r * L + last - 1] == 0)
            last--;
        n = last == 0 ? L : last > n ? last : n;
    }
    osp_pool_pop();
    return n;
}

/* The text context [B, R, Lk, D] and the mask bias [B, R, Lk] (0 keep,
 * -10000 padding) or NULL, Lk = text_keys_needed. */
static osp_status text_context(osp_latte *m, const osp_latte_input *in, latte_text *text)
{
    const osp_tensor *c = in->context;
    int64_t B = c->shape[0], R = in->n_img ? c->shape[1] : 1, L = c->shape[c->ndim - 2];
    int64_t Lk = text_keys_needed(in->mask, L);
    if (Lk < 0)
        return osp_error_code();
    osp_tensor *ctx = latte_caption_project(&m->embed, in->context);
    tap(in, "tap_caption", ctx);
    text->ctx = osp_reshape(ctx, 4, (int64_t[]){B, R, L, m->cfg.hidden});
    if (Lk < L)
        text->ctx = osp_slice(text->ctx, 2, 0, Lk, 1);
    text->bias = NULL;
    if (in->mask) {
        osp_tensor *mask = osp_to_device(in->mask, in->x->storage->device);
        /* (1 - mask) · -10000 = mask · 10000 - 10000 */
        text->bias = osp_reshape(osp_scale_shift(osp_cast(mask, OSP_F32), 10000.0f, -10000.0f), 3,
                                 (int64_t[]){B, R, L});
        if (text->bias && Lk < L)
            text->bias = osp_slice(text->bias, 2, 0, Lk, 1);
        if (!text->bias)
            return osp_error_code();
    }
    return text->ctx ? OSP_OK : osp_error_code();
}

osp_tensor *osp_latte_forward(osp_latte *m, const osp_latte_input *in)
{
    const osp_latte_config *cfg = &m->cfg;
    if (check_input(cfg, in))
        return NULL;
    osp_pool_push();
    osp_device dev = in->x->storage->device;
    int64_t B = in->x->shape[0], C = in->x->shape[1], F = in->x->shape[2];
    int64_t h = in->x->shape[3] / cfg->patch_size, w = in->x->shape[4] / cfg->patch_size;
    int64_t N = h * w, D = cfg->hidden, Fv = F - in->n_img;

    const int frames_first[] = {0, 2, 1, 3, 4};
    osp_tensor *frames = osp_reshape(osp_permute(in->x, frames_first), 4,
                                     (int64_t[]){B * F, C, in->x->shape[3], in->x->shape[4]});
    osp_tensor *x = latte_patch_embed(&m->embed, cfg, frames);
    tap(in, "tap_tokens_in", x);

    osp_tensor *sinusoid = in->t_sinusoid ? osp_to_device(in->t_sinusoid, dev)
                           : osp_timestep_embedding(osp_to_device(in->timestep, dev),
                                                    OSP_LATTE_TIMESTEP_DIM, true, 0.0f, 1.0f,
                                                    10000.0f);
    tap(in, "tap_t_sinusoid", sinusoid);
    osp_tensor *emb = NULL, *t6 = NULL;
    latte_text text = {.frames = F, .video_frames = Fv};
    if (!x || latte_timestep_embed(&m->embed, sinusoid, &emb, &t6) || text_context(m, in, &text)) {
        osp_pool_pop();
        return NULL;
    }
    tap(in, "tap_embedded_timestep", emb);
    tap(in, "tap_t6", t6);
    osp_tensor *table = in->temporal ? osp_to_device(osp_latte_temp_pos_embed(cfg), dev) : NULL;

    for (int i = 0; i < cfg->num_layers && x; i++) {
        osp_pool_push(); /* one layer's activations */
        layer_ctx *lc = &m->layers[i];
        *lc = (layer_ctx){.m = m, .in = m->checkpointing ? NULL : in, .layer = i,
                          .temporal = in->temporal, .B = B, .F = F, .Fv = Fv};
        osp_tensor *args[LAYER_ARGS] = {x, t6, text.ctx, text.bias, i == 0 ? table : NULL};
        x = m->checkpointing ? osp_recompute(layer, lc, LAYER_ARGS, args) : layer(lc, args);
        x = osp_pool_pop_keep(x);
    }
    osp_tensor *y = latte_final_layer(&m->embed, cfg, osp_reshape(x, 3, (int64_t[]){B, F * N, D}),
                                      emb);
    if (in->tap && y)
        tap(in, "tap_final_proj", osp_reshape(y, 3, (int64_t[]){B * F, N, y->shape[2]}));
    return osp_pool_pop_keep(latte_unpatchify(y, cfg, F, h, w));
}
