/* ema.c — see ema.h. */
#include "ema.h"

#include <stdlib.h>

#include "backend/ops.h"

osp_status osp_ema_init(osp_ema *e, double decay, size_t n, osp_tensor *const *params)
{
    *e = (osp_ema){.decay = decay, .n = n};
    if (!(decay >= 0.0 && decay < 1.0))
        return osp_error(OSP_ERR_USAGE, "EMA decay %g is not in [0, 1)", decay);
    if (!(e->shadow = calloc(n ? n : 1, sizeof *e->shadow)))
        return osp_error_nomem("EMA weights", n * sizeof *e->shadow);
    for (size_t i = 0; i < n; i++) {
        osp_tensor *p = params[i];
        if (p->dtype != OSP_F32) {
            osp_ema_free(e);
            return osp_error(OSP_ERR_RUNTIME, "EMA: parameter %zu is not float32", i);
        }
        e->shadow[i] = osp_pool_take(osp_tensor_new(OSP_F32, p->ndim, p->shape,
                                                    p->storage->device));
        if (!e->shadow[i] || osp_copy_into(e->shadow[i], p)) {
            osp_ema_free(e);
            return osp_error_code();
        }
    }
    return OSP_OK;
}

osp_status osp_ema_update(osp_ema *e, osp_tensor *const *params)
{
    float w = (float)(1.0 - e->decay);
    for (size_t i = 0; i < e->n; i++)
        if (osp_ema_inplace(e->shadow[i], params[i], w))
            return osp_error_code();
    return OSP_OK;
}

void osp_ema_free(osp_ema *e)
{
    for (size_t i = 0; e->shadow && i < e->n; i++)
        osp_release(e->shadow[i]);
    free(e->shadow);
    e->shadow = NULL;
    e->n = 0;
}
