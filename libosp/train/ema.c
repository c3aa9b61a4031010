/* ema.c — see ema.h. */
#include "ema.h"

#include <stdlib.h>

osp_status osp_ema_init(osp_ema *e, double decay, size_t n, osp_tensor *const *params)
{
    *e = (osp_ema){.decay = decay, .n = n};
    if (!(decay >= 0.0 && decay < 1.0))
        return osp_error(OSP_ERR_USAGE, "EMA decay %g is not in [0, 1)", decay);
    if (!(e->shadow = calloc(n ? n : 1, sizeof *e->shadow)))
        return osp_error_nomem("EMA weights", n * sizeof *e->shadow);
    for (size_t i = 0; i < n; i++) {
        if (params[i]->dtype != OSP_F32 || params[i]->storage->device != OSP_DEVICE_CPU) {
            osp_ema_free(e);
            return osp_error(OSP_ERR_RUNTIME, "EMA: parameter %zu is not a float32 host tensor",
                             i);
        }
        if (!(e->shadow[i] = osp_pool_take(osp_tensor_clone(params[i])))) {
            osp_ema_free(e);
            return osp_error_code();
        }
    }
    return OSP_OK;
}

void osp_ema_update(osp_ema *e, osp_tensor *const *params)
{
    float w = (float)(1.0 - e->decay);
    for (size_t i = 0; i < e->n; i++) {
        float *s = osp_f32(e->shadow[i]);
        const float *p = osp_f32(params[i]);
        int64_t n = osp_numel(params[i]);
#pragma omp parallel for if (n > 65536)
        for (int64_t j = 0; j < n; j++)
            s[j] -= w * (s[j] - p[j]);
    }
}

void osp_ema_free(osp_ema *e)
{
    for (size_t i = 0; e->shadow && i < e->n; i++)
        osp_release(e->shadow[i]);
    free(e->shadow);
    e->shadow = NULL;
    e->n = 0;
}
