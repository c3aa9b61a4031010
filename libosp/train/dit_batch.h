/* dit_batch.h — micro-batches of prepared features for the trainer: which
 * clip each sample is, and its timestep, noise and latent draw, all from
 * counter-based Philox streams keyed by the seed and the global sample
 * index (see dit_train.h), so batch k is the same whenever it is built. */
#ifndef OSP_TRAIN_DIT_BATCH_H
#define OSP_TRAIN_DIT_BATCH_H

#include "train/dit_data.h"
#include "train/dit_step.h"
#include "train/train_rng.h"

#define OSP_VAE_SCALE 0.18215f /* latent = 0.18215 · VAE sample */

typedef struct osp_dit_sampler {
    const osp_dit_data *data;
    uint64_t seed;
    int64_t batch;
    osp_epoch_order order;
} osp_dit_sampler;

osp_status osp_dit_sampler_init(osp_dit_sampler *s, const osp_dit_data *d, uint64_t seed,
                                int64_t batch);
void osp_dit_sampler_free(osp_dit_sampler *s);

/* The clip of global sample index i (its epoch's permutation entry). */
osp_status osp_dit_sampler_clip(osp_dit_sampler *s, int64_t i, size_t *clip);

/* Micro-batch k (samples k·B .. k·B + B − 1): x0 (drawn from moments, or
 * the stored latent), ε, the text context replicated over the 1 + N
 * caption rows when N > 0, the mask as float, and t[0..B-1]. Tensors
 * belong to the current pool. */
osp_status osp_dit_sampler_batch(osp_dit_sampler *s, int64_t k, osp_dit_batch *b, int64_t *t);

#endif
