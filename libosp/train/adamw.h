/* adamw.h — torch.optim.AdamW (PyTorch 2.1, single-tensor path) and
 * torch.nn.utils.clip_grad_norm_, on float32 tensors of any device, through
 * the op table's in-place AdamW update (spec/training.md §2.5). Per parameter tensor, step k = 1, 2, ...:
 *   p ← p·(1 − lr·wd);  m ← lerp(m, g, 1 − β1);  v ← β2·v + (1 − β2)·g²
 *   p ← p − lr/(1 − β1^k) · m / (√v / √(1 − β2^k) + eps)
 * with the scalars computed in double and applied in float32 in the
 * reference's operation order. */
#ifndef OSP_TRAIN_ADAMW_H
#define OSP_TRAIN_ADAMW_H

#include <stdbool.h>
#include <stddef.h>

#include "core/tensor.h"

typedef struct osp_adamw_hparams {
    double lr, beta1, beta2, eps, weight_decay;
} osp_adamw_hparams;

/* The reference's values: lr 2e-5, betas (0.9, 0.999), eps 1e-8, wd 1e-2. */
osp_adamw_hparams osp_adamw_defaults(void);

typedef struct osp_adamw {
    osp_adamw_hparams h;
    int64_t step;            /* completed steps */
    size_t n;                /* parameter tensors */
    osp_tensor **exp_avg;    /* m, owned, like each parameter; NULL where not held */
    osp_tensor **exp_avg_sq; /* v, owned; NULL where not held */
} osp_adamw;

/* Zero moments shaped like params[0..n-1] (f32 host tensors). */
osp_status osp_adamw_init(osp_adamw *o, const osp_adamw_hparams *h, size_t n,
                          osp_tensor *const *params);
/* The same for the tensors i with held[i] only (a sharded optimizer,
 * train/zero.h): the others have no moments and their steps leave them
 * alone. held NULL: all. */
osp_status osp_adamw_init_held(osp_adamw *o, const osp_adamw_hparams *h, size_t n,
                               osp_tensor *const *params, const bool *held);
void osp_adamw_free(osp_adamw *o);

/* One step at learning rate lr (the schedule's value; h.lr is the base)
 * of the tensors whose moments o holds. grads[i] like params[i]; a NULL
 * gradient counts as zeros (the parameter still decays, as torch does for
 * a parameter whose .grad is set). */
osp_status osp_adamw_step(osp_adamw *o, osp_tensor *const *params, osp_tensor *const *grads,
                          double lr);

/* clip_grad_norm_: *norm = the global L2 norm of the gradients before
 * clipping and, when max_norm > 0 and the norm exceeds it, every gradient
 * is scaled by max_norm / (norm + 1e-6). NULL gradients are skipped. */
osp_status osp_clip_grad_norm(osp_tensor *const *grads, size_t n, double max_norm,
                              double *norm);

#endif
