/* vae_update.h — one batch of the CausalVideoVAE trainer (spec/training.md
 * §3.2), apart from the data, checkpoints and logging of vae_train.c, so a
 * test can drive it with given inputs: batch k (0-based) runs
 *
 *   1. the generator step (train/vae_step.h) with the LPIPS as the
 *      perceptual term and the discriminator's −mean D(X̂) as the
 *      adversarial one, on from Lightning step 2k >= disc_start; D's
 *      parameters do not collect gradients there;
 *   2. the VAE's update: gradients averaged over the ranks, clipped to
 *      max_grad_norm, one Adam step;
 *   3. the discriminator's step on the same X̂: D(X), then D(X̂) (separate
 *      batch statistics, each updating the running ones), the hinge loss,
 *      its backward once 2k + 1 >= disc_start, then the same update for D
 *      (on zero gradients before that, as the reference steps its Adam on
 *      f·L_D = 0).
 *
 * D is called three times a batch, as the reference does. */
#ifndef OSP_TRAIN_VAE_UPDATE_H
#define OSP_TRAIN_VAE_UPDATE_H

#include <stdbool.h>

#include "metrics/lpips.h"
#include "models/causalvae.h"
#include "nn/params.h"
#include "train/adamw.h"
#include "train/dist.h"
#include "train/patchgan.h"
#include "train/zero.h"

typedef struct osp_vae_trainer {
    osp_vae *vae;
    const osp_params *vae_params; /* every tensor trains and requires grad */
    osp_patchgan *disc;
    osp_tensor *const *disc_tensors; /* osp_patchgan_trainable's */
    size_t n_disc;
    osp_lpips *lpips; /* VGG16; NULL: no perceptual term */
    osp_adamw *opt, *opt_disc; /* over vae_params and disc_tensors */
    const osp_zero *zero;      /* NULL, or opt's moments sharded (train/zero.h) */
    double kl_weight, perceptual_weight, disc_weight, max_grad_norm;
    int64_t disc_start; /* in Lightning global steps, 2 per batch */
    const osp_dist *dist;
} osp_vae_trainer;

typedef struct osp_vae_batch_stats {
    /* averaged over the ranks (in this order: osp_dist_mean_f64 takes the
     * first eight together) */
    double loss, nll, kl, g_loss, d_weight, disc_loss, logits_real, logits_fake;
    double grad_norm, disc_grad_norm; /* before clipping, of the averaged gradients */
} osp_vae_batch_stats;

/* Batch k on this rank: x [B, 3, F, H, W] in [-1, 1], eps the posterior
 * noise (the latent's shape). Runs steps 1-3 above in the caller's pool;
 * the parameters and both optimisers move, every gradient ends cleared.
 * disc_loss is 0 while D is off. */
osp_status osp_vae_train_batch(osp_vae_trainer *t, int64_t k, osp_tensor *x, osp_tensor *eps,
                               osp_vae_batch_stats *s);

/* Clears the gradients of t[0..n-1] and sets their requires_grad. */
void osp_vae_trainer_set_grad(osp_tensor *const *t, size_t n, bool on);

#endif
