/* train_loop.h — what osp-train's trainers (dit_train, vae_train) share:
 * opening the run folder for a fresh start or a resume, reading
 * train_state.json back, averaging and clipping gradients over the ranks,
 * saving a checkpoint, and the step loop with its stop conditions
 * (--max-steps, --time-budget, SIGINT/SIGTERM, each ending in a
 * checkpoint). */
#ifndef OSP_TRAIN_LOOP_H
#define OSP_TRAIN_LOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "train/checkpoint.h"
#include "train/dist.h"

struct cJSON;

/* Seconds on a monotonic clock. */
double osp_train_clock(void);
/* This process's peak resident memory, MiB. */
double osp_train_max_rss_mb(void);

/* Rank 0 takes the lock of run folder `dir` (creating it) and finds its
 * latest checkpoint; every rank learns the step. *start = that step (0:
 * none) and *ckpt = its folder (malloc'd) or NULL. A folder with a
 * checkpoint needs `resume`; one without needs `have_init` (else the
 * error quotes `init_hint`, e.g. "--init MODEL"). *busy: another process
 * holds the lock (OSP_ERR_IO). */
osp_status osp_train_begin(osp_train_run *run, const char *dir, const osp_dist *dist,
                           bool resume, bool have_init, const char *init_hint, bool *busy,
                           int64_t *start, char **ckpt);

/* CKPT/train_state.json, parsed, with its global_step checked against
 * `step` and its world_size against the ranks of this run (the data order
 * depends on it). NULL with OSP_ERR_DATA naming the file. */
struct cJSON *osp_train_state_read(const char *ckpt, int64_t step, const osp_dist *dist);
/* An integer >= min under `key` of a state read from CKPT. */
osp_status osp_train_state_int(const struct cJSON *state, const char *ckpt, const char *key,
                               int64_t min, int64_t *out);

/* The gradients of params[0..n-1] (NULL where none), averaged over the
 * ranks and clipped to a global norm of max_norm (0: no clipping):
 * *grads is malloc'd, *norm the norm before clipping. */
osp_status osp_train_reduce_grads(const osp_dist *dist, osp_tensor *const *params, size_t n,
                                  double max_norm, osp_tensor ***grads, double *norm);

/* Writes checkpoint-<step>, then prunes to the newest `keep` (0: all). */
osp_status osp_train_save(osp_train_run *run, int64_t step, const osp_checkpoint *c,
                          int64_t keep);

typedef struct osp_train_loop {
    const char *run;  /* the run folder, for messages */
    const osp_dist *dist;
    int64_t start, max_steps, checkpoint_every;
    double time_budget, started; /* seconds; started: osp_train_clock() at launch */
    volatile sig_atomic_t *stop; /* set by a signal handler, or NULL */
    osp_status (*step)(void *ctx, int64_t step); /* runs (and logs) step `step`, 1-based */
    osp_status (*save)(void *ctx, int64_t step); /* rank 0 only */
    /* NULL, or what the other ranks do meanwhile (send rank 0 their
     * shards of the optimizer state) */
    osp_status (*serve)(void *ctx, int64_t step);
    void *ctx;
} osp_train_loop;

/* Steps start+1 .. max_steps, checkpointing every checkpoint_every steps
 * and at the end; a signal or the spent time budget ends the run early,
 * after the step in progress and a checkpoint. */
osp_status osp_train_loop_run(const osp_train_loop *l);

#endif
