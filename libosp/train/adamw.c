/* adamw.c — see adamw.h. */
#include "adamw.h"

#include "backend/ops.h"

#include <math.h>
#include <stdlib.h>

osp_adamw_hparams osp_adamw_defaults(void)
{
    return (osp_adamw_hparams){.lr = 2e-5, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                               .weight_decay = 1e-2};
}

static bool contiguous_f32(const osp_tensor *t)
{
    return t && t->dtype == OSP_F32 && osp_is_contiguous(t);
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
        if (!contiguous_f32(params[i])) {
            osp_adamw_free(o);
            return osp_error(OSP_ERR_RUNTIME, "AdamW: parameter %zu is not a contiguous float32 "
                                              "tensor", i);
        }
        if (held && !held[i])
            continue;
        /* owned by the optimizer, not by a pool */
        o->exp_avg[i] = osp_pool_take(osp_full_like(params[i], 0.0));
        o->exp_avg_sq[i] = osp_pool_take(osp_full_like(params[i], 0.0));
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

osp_status osp_adamw_step(osp_adamw *o, osp_tensor *const *params, osp_tensor *const *grads,
                          double lr)
{
    for (size_t i = 0; i < o->n; i++) {
        bool held = o->exp_avg[i] != NULL;
        if ((held && (!contiguous_f32(params[i]) || osp_numel(params[i]) != osp_numel(o->exp_avg[i]))) ||
            (grads[i] && (!contiguous_f32(grads[i]) || !osp_same_shape(grads[i], params[i]))))
            return osp_error(OSP_ERR_RUNTIME, "AdamW: parameter %zu or its gradient does not "
                                              "match the optimizer state", i);
    }
    int64_t k = ++o->step;
    const osp_adamw_hparams *h = &o->h;
    double bc1 = 1.0 - pow(h->beta1, (double)k), bc2 = 1.0 - pow(h->beta2, (double)k);
    osp_adamw_scalars c = {
        .decay = (float)(1.0 - lr * h->weight_decay), .w1 = (float)(1.0 - h->beta1),
        .b2 = (float)h->beta2, .w2 = (float)(1.0 - h->beta2), .step_size = (float)(-(lr / bc1)),
        .bc2_sqrt = (float)sqrt(bc2), .eps = (float)h->eps,
    };
    for (size_t i = 0; i < o->n; i++)
        if (o->exp_avg[i] && osp_adamw_inplace(params[i], o->exp_avg[i], o->exp_avg_sq[i], grads[i], &c))
            return osp_error_code();
    return OSP_OK;
}

/* Σ g² as a [1] tensor where g lies: float32 from sums in double (the
 * reduce op's). Large tensors are summed by rows first, so that a device
 * reduces them in parallel. Its temporaries are freed at once. */
static osp_tensor *sum_squares(osp_tensor *g)
{
    osp_pool_push();
    int64_t n = osp_numel(g), row = 4096;
    osp_tensor *sq = osp_square(g);
    if (n > row && n % row == 0)
        sq = osp_sum(osp_reshape(sq, 2, (int64_t[]){n / row, row}), 1, (int[]){1}, false);
    return osp_pool_pop_keep(osp_reshape(osp_sum(sq, 0, NULL, false), 1, (int64_t[]){1}));
}

/* Σ over the gradients of Σ g², in double from each tensor's float32 sum:
 * the per-tensor sums come to the host together, in one copy. */
static osp_status total_squares(osp_tensor *const *grads, size_t n, double *total)
{
    *total = 0.0;
    osp_tensor **sums = malloc((n ? n : 1) * sizeof *sums);
    if (!sums)
        return osp_error_nomem("gradient norms", n * sizeof *sums);
    osp_pool_push();
    int k = 0;
    osp_status st = OSP_OK;
    for (size_t i = 0; !st && i < n; i++)
        if (grads[i] && !(sums[k++] = sum_squares(grads[i])))
            st = osp_error_code();
    osp_tensor *host = !st && k ? osp_to_device(osp_concat(k, sums, 0), OSP_DEVICE_CPU) : NULL;
    if (!st && k && !host)
        st = osp_error_code();
    for (int j = 0; host && j < k; j++)
        *total += (double)osp_f32(host)[j];
    osp_pool_pop();
    free(sums);
    return st;
}

/* g ← g·coef, where g lies. */
static osp_status scale_in_place(osp_tensor *g, float coef)
{
    osp_pool_push();
    osp_status st = osp_copy_into(g, osp_scale_shift(g, coef, 0.0f));
    osp_pool_pop();
    return st;
}

osp_status osp_clip_grad_norm(osp_tensor *const *grads, size_t n, double max_norm,
                              double *norm)
{
    double sum;
    if (total_squares(grads, n, &sum))
        return osp_error_code();
    float total = (float)sqrt(sum);
    *norm = total;
    float coef = (float)max_norm / (total + 1e-6f);
    for (size_t i = 0; max_norm > 0 && coef < 1.0f && i < n; i++)
        if (grads[i] && scale_in_place(grads[i], coef))
            return osp_error_code();
    return OSP_OK;
}
