/* dit_train.h — the LatteT2V training loop behind `osp-train dit`
 * (spec/training.md §2): prepared features (train/dit_data.h), uniform
 * timesteps, the hybrid loss, AdamW with a constant learning rate after
 * an optional linear warmup, gradient accumulation, optional global-norm
 * clipping, checkpoints in a locked run folder (train/checkpoint.h) and
 * exact resume.
 *
 * Randomness is counter-based (Philox, core/rng.h) and keyed by what it is
 * for and by the global sample index s = micro-batch · B + row: the epoch
 * permutation (seed, epoch), the timestep, the noise ε and the posterior
 * draw from `moments` (seed, s). Clip s is the (s mod n)-th entry of the
 * permutation of epoch s / n (n clips; batches run across epoch ends). So
 * the whole run is a function of the seed and the step count, and a run
 * resumed from checkpoint-k continues exactly as one that never stopped. */
#ifndef OSP_TRAIN_DIT_TRAIN_H
#define OSP_TRAIN_DIT_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "train/adamw.h"
#include "train/train_loop.h"

typedef struct osp_dit_train_opts {
    /* data: a feature folder or list; batch: the micro-batch; device: where
     * the weights, gradients, optimizer state and steps are. With dist,
     * rank r takes micro-batch k·R + r, and the result equals one process
     * with R times the batch. */
    osp_train_opts common;
    const char *init; /* model folder to start from (unused when resuming) */
    /* NULL, or a config.json to train instead of the init folder's: the
     * init weights are read by name into this config (a stage change:
     * another video_length or sample_size rebuilds the position tables) */
    const char *config;
    int64_t accum;           /* micro-batches per step */
    int64_t warmup;          /* linear warmup steps (0: none) */
    double ema;              /* EMA decay of the weights (0: no EMA) */
    osp_adamw_hparams adamw; /* adamw.lr is the base learning rate */
    bool checkpointing;      /* recompute each Latte layer in the backward */
} osp_dit_train_opts;

/* Runs the training. *busy is set when another run holds the folder's
 * lock (the error is then OSP_ERR_IO). */
osp_status osp_dit_train(const osp_dit_train_opts *o, bool *busy);

#endif
