/* dit_batch.c — see dit_batch.h. */
#include "dit_batch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "core/rng.h"
#include "train/train_rng.h"

osp_status osp_dit_sampler_init(osp_dit_sampler *s, const osp_dit_data *d, uint64_t seed,
                                int64_t batch)
{
    *s = (osp_dit_sampler){.data = d, .seed = seed, .batch = batch};
    osp_status st = osp_epoch_order_init(&s->order, d->n, seed);
    if (st)
        osp_error_context("%s", d->label);
    return st;
}

void osp_dit_sampler_free(osp_dit_sampler *s)
{
    osp_epoch_order_free(&s->order);
}

osp_status osp_dit_sampler_clip(osp_dit_sampler *s, int64_t i, size_t *clip)
{
    *clip = osp_epoch_order_item(&s->order, i);
    return OSP_OK;
}

/* x0 row: 0.18215 · (mean + exp(0.5 · clamp(logvar, −30, 20)) · ε), or the
 * stored latent. dst has C·T·h·w floats. */
static osp_status latent_row(const osp_dit_sampler *s, const osp_tensor *x, int64_t sample,
                             float *dst, int64_t n)
{
    const float *src = osp_f32(x);
    if (!s->data->moments) {
        memcpy(dst, src, (size_t)n * sizeof *dst);
        return OSP_OK;
    }
    uint64_t key = osp_stream_seed(s->seed, OSP_STREAM_POSTERIOR, (uint64_t)sample);
    osp_status st = osp_rng_normal_fill(dst, n, key, 0);
    for (int64_t j = 0; !st && j < n; j++) {
        float logvar = fminf(fmaxf(src[n + j], -30.0f), 20.0f);
        float z = src[j] + expf(0.5f * logvar) * dst[j];
        dst[j] = z * OSP_VAE_SCALE;
    }
    return st;
}

osp_status osp_dit_sampler_batch(osp_dit_sampler *s, int64_t k, osp_dit_batch *b, int64_t *t)
{
    const osp_dit_data *d = s->data;
    int64_t B = s->batch, R = d->n_img ? 1 + d->n_img : 1, n = d->C * d->T * d->h * d->w;
    int64_t xs[5] = {B, d->C, d->T, d->h, d->w};
    int64_t cs[4] = {B, R, d->L, d->D};
    memset(b, 0, sizeof *b);
    b->x0 = osp_tensor_new(OSP_F32, 5, xs, OSP_DEVICE_CPU);
    b->noise = osp_tensor_new(OSP_F32, 5, xs, OSP_DEVICE_CPU);
    /* the joint layout has a caption-row axis; without images, [B, L, D] */
    b->context = d->n_img ? osp_tensor_new(OSP_F32, 4, cs, OSP_DEVICE_CPU)
                          : osp_tensor_new(OSP_F32, 3, (int64_t[]){B, d->L, d->D},
                                           OSP_DEVICE_CPU);
    if (d->has_mask)
        b->mask = d->n_img ? osp_tensor_new(OSP_F32, 3, cs, OSP_DEVICE_CPU)
                           : osp_tensor_new(OSP_F32, 2, (int64_t[]){B, d->L}, OSP_DEVICE_CPU);
    if (!b->x0 || !b->noise || !b->context || (d->has_mask && !b->mask))
        return osp_error_code();
    b->n_img = d->n_img;
    b->t = t;
    int64_t text = d->L * d->D;
    osp_status st = OSP_OK;
    for (int64_t i = 0; !st && i < B; i++) {
        int64_t sample = k * B + i;
        size_t clip;
        osp_dit_record r;
        osp_pool_push();
        st = osp_dit_sampler_clip(s, sample, &clip);
        st = st ? st : osp_dit_data_read(d, clip, &r);
        st = st ? st : latent_row(s, r.x, sample, osp_f32(b->x0) + i * n, n);
        uint64_t noise_key = osp_stream_seed(s->seed, OSP_STREAM_NOISE, (uint64_t)sample);
        st = st ? st : osp_rng_normal_fill(osp_f32(b->noise) + i * n, n, noise_key, 0);
        osp_tensor *mask = !st && r.mask ? osp_tensor_to_dtype(r.mask, OSP_F32) : NULL;
        if (!st && r.mask && !mask)
            st = osp_error_code();
        for (int64_t row = 0; !st && row < R; row++) {
            memcpy(osp_f32(b->context) + (i * R + row) * text, osp_f32(r.embedding),
                   (size_t)text * sizeof(float));
            if (mask)
                memcpy(osp_f32(b->mask) + (i * R + row) * d->L, osp_f32(mask),
                       (size_t)d->L * sizeof(float));
        }
        uint64_t t_key = osp_stream_seed(s->seed, OSP_STREAM_TIMESTEP, (uint64_t)sample);
        t[i] = (int64_t)osp_random_below(t_key, 0, OSP_DIFFUSION_STEPS);
        osp_pool_pop();
    }
    return st;
}
