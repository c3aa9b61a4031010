/* adamw.c — see adamw.h. */
#include "adamw.h"

#include "core/simd.h"

#include <math.h>
#include <stdlib.h>

osp_adamw_hparams osp_adamw_defaults(void)
{
    return (osp_adamw_hparams){.lr = 2e-5, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                               .weight_decay = 1e-2};
}

static bool host_f32(const osp_tensor *t)
{
    return t && t->dtype == OSP_F32 && t->storage->device == OSP_DEVICE_CPU &&
           osp_is_contiguous(t);
}

osp_status osp_adamw_init(osp_adamw *o, const osp_adamw_hparams *h, size_t n,
                          osp_tensor *const *params)
{
    return osp_adamw_init_held(o, h, n, params, NULL);
}

osp_status osp_adamw_init_held(osp_adamw *o, const osp_adamw_hparams *h, size_t n,
                               osp_tensor *const *params, const bool *held)
{
    *o = (osp_adamw){.h = *h, .n = n};
    o->exp_avg = calloc(n ? n : 1, sizeof *o->exp_avg);
    o->exp_avg_sq = calloc(n ? n : 1, sizeof *o->exp_avg_sq);
    if (!o->exp_avg || !o->exp_avg_sq) {
        osp_adamw_free(o);
        return osp_error_nomem("AdamW state", 2 * n * sizeof(void *));
    }
    for (size_t i = 0; i < n; i++) {
        if (!host_f32(params[i])) {
            osp_adamw_free(o);
            return osp_error(OSP_ERR_RUNTIME, "AdamW: parameter %zu is not a contiguous float32 "
                                              "host tensor", i);
        }
        if (held && !held[i])
            continue;
        /* owned by the optimizer, not by a pool */
        o->exp_avg[i] = osp_pool_take(osp_tensor_zeros(OSP_F32, params[i]->ndim,
                                                       params[i]->shape, OSP_DEVICE_CPU));
        o->exp_avg_sq[i] = osp_pool_take(osp_tensor_zeros(OSP_F32, params[i]->ndim,
                                                          params[i]->shape, OSP_DEVICE_CPU));
        if (!o->exp_avg[i] || !o->exp_avg_sq[i]) {
            osp_adamw_free(o);
            return osp_error_code();
        }
    }
    return OSP_OK;
}

void osp_adamw_free(osp_adamw *o)
{
    for (size_t i = 0; i < o->n; i++) {
        if (o->exp_avg)
            osp_release(o->exp_avg[i]);
        if (o->exp_avg_sq)
            osp_release(o->exp_avg_sq[i]);
    }
    free(o->exp_avg);
    free(o->exp_avg_sq);
    o->exp_avg = o->exp_avg_sq = NULL;
    o->n = 0;
}

/* The per-step scalars, computed in double and applied in float32. */
typedef struct adamw_scalars {
    float decay, w1, b2, w2, step_size, bc2_sqrt, eps;
} adamw_scalars;

/* One slice of a tensor, in the reference's operation order (ISO C mode
 * contracts nothing into FMAs, so the vector code rounds like the scalar
 * one). torch.lerp switches formula at weight 0.5: two loops, so that
 * neither has a branch. */
ROW_CLONES static void adamw_row(float *p, float *m, float *v, const float *g, int64_t n,
                                 const adamw_scalars *c)
{
    float decay = c->decay, w1 = c->w1, b2 = c->b2, w2 = c->w2;
    float step_size = c->step_size, bc2_sqrt = c->bc2_sqrt, eps = c->eps;
    if (w1 < 0.5f) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float gj = g[j];
            m[j] = m[j] + w1 * (gj - m[j]);
            v[j] = v[j] * b2 + w2 * gj * gj;
            p[j] = p[j] * decay + step_size * m[j] / (sqrtf(v[j]) / bc2_sqrt + eps);
        }
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float gj = g[j];
            m[j] = gj - (gj - m[j]) * (1.0f - w1);
            v[j] = v[j] * b2 + w2 * gj * gj;
            p[j] = p[j] * decay + step_size * m[j] / (sqrtf(v[j]) / bc2_sqrt + eps);
        }
    }
}

#define ADAMW_SLICE 4096

osp_status osp_adamw_step(osp_adamw *o, osp_tensor *const *params, osp_tensor *const *grads,
                          double lr)
{
    for (size_t i = 0; i < o->n; i++) {
        bool held = o->exp_avg[i] != NULL;
        if ((held && (!host_f32(params[i]) || osp_numel(params[i]) != osp_numel(o->exp_avg[i]))) ||
            (grads[i] && (!host_f32(grads[i]) || !osp_same_shape(grads[i], params[i]))))
            return osp_error(OSP_ERR_RUNTIME, "AdamW: parameter %zu or its gradient does not "
                                              "match the optimizer state", i);
    }
    int64_t k = ++o->step;
    const osp_adamw_hparams *h = &o->h;
    double bc1 = 1.0 - pow(h->beta1, (double)k), bc2 = 1.0 - pow(h->beta2, (double)k);
    adamw_scalars c = {
        .decay = (float)(1.0 - lr * h->weight_decay), .w1 = (float)(1.0 - h->beta1),
        .b2 = (float)h->beta2, .w2 = (float)(1.0 - h->beta2), .step_size = (float)(-(lr / bc1)),
        .bc2_sqrt = (float)sqrt(bc2), .eps = (float)h->eps,
    };
    /* a missing gradient counts as zeros, a slice at a time */
    static const float zeros[ADAMW_SLICE];
    for (size_t i = 0; i < o->n; i++) {
        if (!o->exp_avg[i])
            continue; /* another rank's */
        float *p = osp_f32(params[i]), *m = osp_f32(o->exp_avg[i]), *v = osp_f32(o->exp_avg_sq[i]);
        const float *g = grads[i] ? osp_f32(grads[i]) : NULL;
        int64_t n = osp_numel(params[i]);
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t j = 0; j < n; j += ADAMW_SLICE)
            adamw_row(p + j, m + j, v + j, g ? g + j : zeros,
                      n - j < ADAMW_SLICE ? n - j : ADAMW_SLICE, &c);
    }
    return OSP_OK;
}

double osp_clip_grad_norm(osp_tensor *const *grads, size_t n, double max_norm)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!grads[i])
            continue;
        const float *g = osp_f32(grads[i]);
        double s = 0.0;
        for (int64_t j = 0; j < osp_numel(grads[i]); j++)
            s += (double)g[j] * g[j];
        sum += s;
    }
    float total = (float)sqrt(sum);
    if (max_norm > 0) {
        float coef = (float)max_norm / (total + 1e-6f);
        if (coef < 1.0f)
            for (size_t i = 0; i < n; i++) {
                if (!grads[i])
                    continue;
                float *g = osp_f32(grads[i]);
                for (int64_t j = 0; j < osp_numel(grads[i]); j++)
                    g[j] *= coef;
            }
    }
    return total;
}
