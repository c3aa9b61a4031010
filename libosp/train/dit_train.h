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

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "train/adamw.h"
#include "train/dist.h"

typedef struct osp_dit_train_opts {
    const char *init; /* model folder to start from (unused when resuming) */
    /* NULL, or a config.json to train instead of the init folder's: the
     * init weights are read by name into this config (a stage change:
     * another video_length or sample_size rebuilds the position tables) */
    const char *config;
    const char *data; /* feature folder or list */
    const char *run;  /* run folder */
    int64_t batch, accum;    /* micro-batch size, micro-batches per step */
    int64_t max_steps;       /* stop at this global step */
    double time_budget;      /* seconds; stop after the step that passes it (0: none) */
    int64_t warmup;          /* linear warmup steps (0: none) */
    double max_grad_norm;    /* clip the global gradient norm (0: off) */
    double ema;              /* EMA decay of the weights (0: no EMA) */
    osp_adamw_hparams adamw; /* adamw.lr is the base learning rate */
    uint64_t seed;           /* < 2^53 */
    int64_t checkpoint_every, keep; /* keep 0: all checkpoints */
    bool resume;             /* continue from the latest checkpoint, if any */
    bool checkpointing;      /* recompute each Latte layer in the backward */
    bool shard_optimizer;    /* ZeRO-1 over the ranks (train/zero.h) */
    /* where the weights, gradients and optimizer state live and the
     * steps run; batches are assembled on the host and moved there */
    osp_device device;
    FILE *metrics;           /* one JSON object per step, or NULL */
    /* NULL, or the ranks of a data-parallel run: rank r takes micro-batch
     * k·R + r of the sample stream (batch = clips per rank), gradients and
     * metrics are averaged, only rank 0 locks and writes the run folder;
     * the result equals one process with R times the batch */
    const osp_dist *dist;
    /* set asynchronously (SIGINT, SIGTERM): finish the step, checkpoint,
     * return OSP_OK */
    volatile sig_atomic_t *stop;
} osp_dit_train_opts;

/* Runs the training. *busy is set when another run holds the folder's
 * lock (the error is then OSP_ERR_IO). */
osp_status osp_dit_train(const osp_dit_train_opts *o, bool *busy);

#endif
