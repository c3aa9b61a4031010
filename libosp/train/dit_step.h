/* dit_step.h — one LatteT2V training micro-step (spec/training.md §2.6):
 * x_t = q_sample(x0, ε, t), the model forward on the autograd tape, the
 * hybrid loss (diffusion.h) and the backward pass seeded with the loss's
 * gradient, which accumulates into the parameters' `grad`. */
#ifndef OSP_TRAIN_DIT_STEP_H
#define OSP_TRAIN_DIT_STEP_H

#include "models/latte.h"
#include "train/diffusion.h"

/* The trainable parameters: every tensor of the model except the
 * caption_projection.y_embedding buffer (a buffer in the reference, never
 * trained, but kept in checkpoints). Pointers into the model. */
typedef struct osp_dit_params {
    size_t n;
    const char **names;
    osp_tensor **tensors;
} osp_dit_params;

/* Lists them and sets requires_grad on each. */
osp_status osp_dit_params_init(osp_latte *m, osp_dit_params *out);
void osp_dit_params_free(osp_dit_params *p);
/* Releases every parameter's gradient. */
void osp_dit_params_zero_grad(const osp_dit_params *p);

/* One micro-batch. x0, noise [B, C_in, F_v + n_img, h, w]; context [B, L,
 * D] (n_img = 0) or [B, 1 + n_img, L, D]; mask NULL or its leading
 * dimensions (1 = token); t [B] in [0, 999]. */
typedef struct osp_dit_batch {
    osp_tensor *x0, *noise, *context, *mask;
    const int64_t *t;
    int n_img;
} osp_dit_batch;

/* The model output on the tape for x_t (training mode, temporal blocks on).
 * Exposed for tests: the joint-images fixture runs through it. */
osp_tensor *osp_dit_forward(osp_latte *m, osp_tensor *x_t, const int64_t *t, osp_tensor *context,
                            osp_tensor *mask, int n_img);

/* Forward, loss and backward for one micro-batch; the loss's gradient is
 * scaled by grad_scale (1 / accumulation steps) before backward. terms
 * receives the loss (per-sample arrays optional). */
osp_status osp_dit_micro_step(osp_latte *m, const osp_diffusion *d, const osp_dit_batch *b,
                              double grad_scale, osp_diffusion_terms *terms);

#endif
