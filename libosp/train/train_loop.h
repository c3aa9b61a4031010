/* train_loop.h — what osp-train's trainers (dit_train, vae_train) share:
 * their common options, opening the run folder for a fresh start or a
 * resume, reading train_state.json back, the model's optimizer (sharded or
 * not), averaging and clipping gradients over the ranks, saving a
 * checkpoint, and the step loop with its stop conditions (--max-steps,
 * --time-budget, SIGINT/SIGTERM, each ending in a checkpoint). */
#ifndef OSP_TRAIN_LOOP_H
#define OSP_TRAIN_LOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/dist.h"
#include "train/zero.h"

struct cJSON;

/* Seconds on a monotonic clock. */
double osp_train_clock(void);
/* This process's peak resident memory, MiB. */
double osp_train_max_rss_mb(void);

/* CKPT/train_state.json, parsed, with its global_step checked against
 * `step` and its world_size against the ranks of this run (the data order
 * depends on it), and the run's seed and batch, which a resumed run keeps.
 * NULL with OSP_ERR_DATA naming the file. */
struct cJSON *osp_train_state_read(const char *ckpt, int64_t step, const osp_dist *dist,
                                   uint64_t *seed, int64_t *batch);
/* An integer >= min under `key` of a state read from CKPT. */
osp_status osp_train_state_int(const struct cJSON *state, const char *ckpt, const char *key,
                               int64_t min, int64_t *out);

/* The gradients of params[0..n-1] (NULL where none), averaged over the
 * ranks and clipped to a global norm of max_norm (0: no clipping):
 * *grads is malloc'd, *norm the norm before clipping. */
osp_status osp_train_reduce_grads(const osp_dist *dist, osp_tensor *const *params, size_t n,
                                  double max_norm, osp_tensor ***grads, double *norm);

/* The options both trainers take: the `common` member of their own. */
typedef struct osp_train_opts {
    const char *data; /* the training data: a folder or a list */
    const char *run;  /* run folder */
    /* where the weights, gradients and optimizer state live and the steps
     * run; batches are assembled on the host and moved there */
    osp_device device;
    int64_t batch;          /* clips per rank in a (micro-)batch */
    int64_t max_steps;      /* stop at this global step */
    double time_budget;     /* seconds; stop after the step that passes it (0: none) */
    double max_grad_norm;   /* clip the global gradient norm (0: off) */
    uint64_t seed;          /* < 2^53 */
    int64_t checkpoint_every, keep; /* keep 0: all checkpoints */
    bool resume;            /* continue from the latest checkpoint, if any */
    bool shard_optimizer;   /* ZeRO-1 of the model's AdamW state over the ranks (train/zero.h) */
    FILE *metrics;          /* one JSON object per step, or NULL */
    /* NULL, or the ranks of a data-parallel run: rank r takes batch k·R + r
     * of the sample stream, gradients and metrics are averaged, only rank 0
     * locks and writes the run folder */
    const osp_dist *dist;
    /* set asynchronously (SIGINT, SIGTERM): finish the step, checkpoint,
     * return OSP_OK */
    volatile sig_atomic_t *stop;
} osp_train_opts;

/* What every trainer holds beside its models: set up by osp_trainer_run,
 * osp_trainer_begin and osp_trainer_init_opt, freed by osp_trainer_run. */
typedef struct osp_trainer {
    const osp_train_opts *o;
    osp_dist dist; /* a copy of o->dist, or rank 0 of 1 */
    bool lead;     /* rank 0: owns the run folder, logs */
    osp_train_run run;
    int64_t start_step; /* the checkpoint resumed from, or 0 */
    double started;     /* osp_train_clock() at launch, for the time budget */
    osp_adamw opt;      /* the model's optimizer */
    osp_zero zero;      /* n 0: opt holds every moment */
} osp_trainer;

/* A trainer's own part; each function gets the ctx given to osp_trainer_run. */
typedef struct osp_trainer_ops {
    /* builds the models and data, from the latest checkpoint when resuming
     * (osp_trainer_begin, osp_trainer_init_opt) */
    osp_status (*setup)(void *ctx, bool *busy);
    osp_status (*step)(void *ctx, int64_t step); /* runs (and logs) step `step`, 1-based */
    osp_status (*save)(void *ctx, int64_t step); /* rank 0 only: osp_trainer_save */
    void (*teardown)(void *ctx);                 /* frees what setup made, if only part */
} osp_trainer_ops;

/* Runs a trainer: t from o, ops->setup, then steps start_step+1 ..
 * max_steps, checkpointing every checkpoint_every steps and at the end; a
 * signal or the spent time budget ends the run early, after the step in
 * progress and a checkpoint. While rank 0 saves, the other ranks send it
 * their shares of a sharded optimizer's moments. Then ops->teardown and t's
 * own release. *busy as in osp_trainer_begin. */
osp_status osp_trainer_run(osp_trainer *t, const osp_train_opts *o, const osp_trainer_ops *ops,
                           void *ctx, bool *busy);

/* Rank 0 takes the lock of the run folder (creating it) and finds its
 * latest checkpoint; every rank learns the step. t->start_step = that step
 * (0: none) and *ckpt = its folder (malloc'd) or NULL. A folder with a
 * checkpoint needs --resume; one without needs `have_init` (else the error
 * quotes `init_hint`, e.g. "--init MODEL"). *busy: another process holds
 * the lock (OSP_ERR_IO). */
osp_status osp_trainer_begin(osp_trainer *t, bool have_init, const char *init_hint, bool *busy,
                             char **ckpt);

/* t->opt for params[0..n-1] with hyperparameters h, sharded over the ranks
 * with --shard-optimizer (t->zero); when resuming (ckpt not NULL), its
 * state from CKPT/optimizer.safetensors. */
osp_status osp_trainer_init_opt(osp_trainer *t, const osp_adamw_hparams *h,
                                osp_tensor *const *params, const char *const *names, size_t n,
                                const char *ckpt);

/* Rank 0: writes checkpoint-<step> of c, whose optimizer, moments and
 * train_state.json are filled in here from t and `state` (world_size is
 * added; state is deleted, and may be NULL after a failure), then prunes to
 * the newest --keep. */
osp_status osp_trainer_save(osp_trainer *t, int64_t step, osp_checkpoint *c, struct cJSON *state);

#endif
