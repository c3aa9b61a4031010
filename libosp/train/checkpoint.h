/* checkpoint.h — a training run folder (spec/training.md §2.7):
 *
 *   RUN/lock                         flock(2)ed while a run is active
 *   RUN/checkpoint-<step>/model/     config.json + diffusion_pytorch_model
 *                                    .safetensors (release layout, float32:
 *                                    loadable by osp-denoise -m as is)
 *   RUN/checkpoint-<step>/ema/       the same for the EMA weights (--ema)
 *   RUN/checkpoint-<step>/optimizer.safetensors
 *                                    exp_avg.<name>, exp_avg_sq.<name>;
 *                                    metadata step, lr, betas, eps, wd
 *   RUN/checkpoint-<step>/train_state.json
 *                                    global step, data position, seed,
 *                                    the options of the run
 *
 * A checkpoint is written into RUN/.checkpoint-<step>.tmp, flushed to disk
 * and renamed into place, so a crash at any moment leaves the previous
 * checkpoints intact and either no checkpoint-<step> or a complete one;
 * stale temporary folders are removed when the next run takes the lock. */
#ifndef OSP_TRAIN_CHECKPOINT_H
#define OSP_TRAIN_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"
#include "nn/params.h"
#include "train/adamw.h"
#include "train/ema.h"

typedef struct osp_train_run {
    char *dir;
    int lock_fd;
} osp_train_run;

/* Creates RUN if needed, takes its lock and removes stale temporary
 * folders. When another process holds the lock: OSP_ERR_IO and *busy. */
osp_status osp_train_run_open(osp_train_run *r, const char *dir, bool *busy);
void osp_train_run_close(osp_train_run *r); /* releases the lock */

/* The largest step of a RUN/checkpoint-<step> folder, or 0 when none. */
osp_status osp_train_run_latest(const osp_train_run *r, int64_t *step);
/* "RUN/checkpoint-<step>" (malloc'd; NULL + error when out of memory). */
char *osp_train_run_checkpoint_dir(const osp_train_run *r, int64_t step);

/* Where the moments a sharded optimizer does not hold come from: like[i]
 * has the shape of parameter i's moments, fetch (safetensors.h) is called
 * for the optimizer file's entries exp_avg.<name i> = 2i and
 * exp_avg_sq.<name i> = 2i + 1 in that order. */
typedef struct osp_moment_source {
    osp_tensor *const *like;
    osp_st_fetch fetch;
    void *ctx;
} osp_moment_source;

typedef struct osp_checkpoint {
    const char *config_text; /* the model's config.json, verbatim */
    size_t config_len;
    const osp_params *model;  /* every tensor, in checkpoint order */
    const osp_adamw *opt;     /* state of the trainable tensors ... */
    const char *const *names; /* ... opt->n of them, by name */
    /* NULL when opt holds every moment; else the moments it lacks (a
     * sharded optimizer, train/zero.h) come from fetch as the file is
     * written: see osp_checkpoint_write_optimizer */
    const osp_moment_source *moments;
    const char *state_json;   /* train_state.json */
    /* NULL, or model->n tensors for ema/ (the EMA weights of the trained
     * tensors, the model's own for the rest) */
    osp_tensor *const *ema;
    /* NULL, or more files for the checkpoint (the VAE trainer's
     * discriminator and its optimizer), written into the temporary folder
     * DIR before it is renamed into place */
    osp_status (*extra)(void *ctx, const char *dir);
    void *extra_ctx;
} osp_checkpoint;

osp_status osp_train_run_save(osp_train_run *r, int64_t step, const osp_checkpoint *c);
/* Writes DIR, which must not exist, as a model folder in the release
 * layout: config.json (config_text verbatim) and
 * diffusion_pytorch_model.safetensors holding the tensors of model. It is
 * built in DIR.tmp.XXXXXX beside it, flushed to disk and renamed into
 * place, so DIR either does not exist or is complete; nothing else is left
 * behind. */
osp_status osp_model_folder_publish(const char *dir, const char *config_text, size_t config_len,
                                    const osp_params *model);
/* Deletes the oldest checkpoints until `keep` remain (keep 0: all stay);
 * each is renamed to a temporary name before it is removed. */
osp_status osp_train_run_prune(osp_train_run *r, int64_t keep);

/* Restores opt (already initialised for the same names and shapes) from
 * DIR/optimizer.safetensors: moments and step count. OSP_ERR_DATA naming
 * the file and tensor on anything missing or misshapen. */
osp_status osp_checkpoint_load_optimizer(const char *dir, osp_adamw *opt,
                                         const char *const *names);

/* The same for DIR/FILE (the moments opt holds only); and writing one
 * (exp_avg.<name>, exp_avg_sq.<name>, metadata step, lr, betas, eps, wd),
 * the moments o lacks from `moments` (NULL when o holds them all). */
osp_status osp_checkpoint_load_optimizer_file(const char *dir, const char *file, osp_adamw *opt,
                                              const char *const *names);
osp_status osp_checkpoint_write_optimizer(const char *dir, const char *file, const osp_adamw *o,
                                          const char *const *names,
                                          const osp_moment_source *moments);
/* osp_safetensors_write for tensors of any device: a device tensor is
 * copied to the host as its turn comes, one at a time. */
osp_status osp_checkpoint_write_tensors(const char *path, int n, const char *const *names,
                                        osp_tensor *const *tensors, const char *const *meta);

/* Restores the EMA weights of `names` from DIR/ema/. */
osp_status osp_checkpoint_load_ema(const char *dir, osp_ema *ema, const char *const *names);

#endif
