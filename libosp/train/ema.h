/* ema.h — an exponential moving average of the trained weights (the
 * optional EMA of the issue; off by default, as in the reference). After
 * every optimizer step, per element: s ← s − (1 − decay)·(s − p), the form
 * diffusers' EMAModel uses, on float32 tensors where the parameters lie
 * (the op table's OSP_OP_EMA). */
#ifndef OSP_TRAIN_EMA_H
#define OSP_TRAIN_EMA_H

#include <stddef.h>

#include "core/tensor.h"

typedef struct osp_ema {
    double decay;
    size_t n;
    osp_tensor **shadow; /* owned copies, like the parameters */
} osp_ema;

/* Starts from copies of params[0..n-1]; decay in [0, 1). */
osp_status osp_ema_init(osp_ema *e, double decay, size_t n, osp_tensor *const *params);
osp_status osp_ema_update(osp_ema *e, osp_tensor *const *params);
void osp_ema_free(osp_ema *e);

#endif
