/* vae_train.h — the CausalVideoVAE training loop behind `osp-train vae`
 * (spec/training.md §3): videos (train/vae_data.h), the generator step of
 * train/vae_step.h with the frozen VGG16 LPIPS as the perceptual term and
 * the PatchGAN (train/patchgan.h) as the adversary, then the
 * discriminator's hinge step on the same reconstruction; two Adam
 * optimisers (betas 0.5, 0.9, no weight decay), each clipped to a global
 * norm; checkpoints in a locked run folder and exact resume, as
 * dit_train.h. One batch's work is train/vae_update.h (tested there against
 * PyTorch); this file adds the data, noise, checkpoints and metrics.
 *
 * One osp step is one batch, which the reference counts as two Lightning
 * global steps: batch k (0-based) runs its generator step at global step
 * 2k and its discriminator step at 2k + 1, and `disc_start` is given in
 * those units (2001 in the released config: the discriminator learns from
 * batch 1000, the adversarial term enters the VAE's loss at batch 1001).
 * Before that the discriminator still runs on every batch (its running
 * statistics move) and its optimiser steps on zero gradients, as the
 * reference's does, so resuming and the reference's Adam step counts
 * agree.
 *
 * Randomness is keyed by the seed: the epoch order, and each clip's window
 * and posterior noise by its global index (so R ranks of batch B draw what
 * one process of batch R·B does), the initial
 * discriminator (and a VAE built from a config) by the seed alone. */
#ifndef OSP_TRAIN_VAE_TRAIN_H
#define OSP_TRAIN_VAE_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "train/train_loop.h"

typedef struct osp_vae_train_opts {
    /* data: a folder of videos (.avi, .mp4, .webm; recursive) or a list;
     * device: where the VAE, the discriminator and LPIPS run;
     * max_grad_norm clips both models. With dist, both models' gradients
     * are averaged; the discriminator's batch statistics stay per rank (as
     * under DDP). */
    osp_train_opts common;
    const char *init;   /* VAE folder to start from, or NULL ... */
    const char *config; /* ... a config.json to train from scratch */
    const char *init_2d; /* with config: a 2-D SD VAE (diffusers folder or
                          * .safetensors) the VAE is tail-initialised from
                          * (models/causalvae.h osp_vae_init_2d); NULL: random */
    const char *lpips;  /* VGG16 LPIPS weights; NULL only with perceptual_weight 0 */
    int64_t frames, sample_rate, size; /* clips of frames × size² */
    double lr, disc_lr; /* Adam learning rates of the VAE and the discriminator */
    double kl_weight, perceptual_weight, disc_weight;
    int64_t disc_start; /* in Lightning global steps, 2 per batch */
    int64_t ndf, disc_layers;
} osp_vae_train_opts;

/* The reference's defaults (lr 1e-5 for both, kl 1e-6, perceptual 1,
 * disc weight 0.5, disc_start 2001, clip 1, ndf 64, 3 layers, 17 × 256²). */
osp_vae_train_opts osp_vae_train_defaults(void);

/* Runs the training; *busy as in osp_dit_train. */
osp_status osp_vae_train(const osp_vae_train_opts *o, bool *busy);

#endif
