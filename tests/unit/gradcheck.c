/* gradcheck.c — see gradcheck.h. */
#include "gradcheck.h"
#include "test.h"
#include "train/tape.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* L = sum(fn(x) * R) in double; NAN when fn fails. */
static double objective(gradcheck_fn fn, osp_tensor *const *inputs, void *ctx,
                        const osp_tensor *r)
{
    osp_pool_push();
    double sum = NAN;
    osp_tensor *y = fn(inputs, ctx);
    if (y && osp_numel(y) == osp_numel(r)) {
        osp_tensor *yc = osp_tensor_to_dtype(y, OSP_F32);
        const float *py = osp_f32(yc), *pr = osp_f32(r);
        sum = 0;
        for (int64_t i = 0; i < osp_numel(r); i++)
            sum += (double)py[i] * pr[i];
    }
    osp_pool_pop();
    return sum;
}

bool gradcheck(const char *label, gradcheck_fn fn, int n_inputs, osp_tensor *const *inputs,
               void *ctx, const gradcheck_opts *opts)
{
    gradcheck_opts o = {1e-3, 1e-3, 1e-2};
    if (opts)
        o = *opts;
    bool ok = true;
    osp_pool_push();

    /* Analytic gradients with a random cotangent R. */
    for (int i = 0; i < n_inputs; i++)
        osp_zero_grad(inputs[i]);
    bool was = osp_grad_set_enabled(true);
    osp_tensor *y = fn(inputs, ctx);
    osp_tensor *r = y ? test_random(y->ndim, y->shape, -1.0f, 1.0f) : NULL;
    osp_status st = r ? osp_backward(y, r) : OSP_ERR_RUNTIME;
    osp_grad_set_enabled(was);
    if (st != OSP_OK) {
        printf("#   %s: forward/backward failed: %s\n", label, osp_error_message());
        osp_tape_clear();
        osp_pool_pop();
        return false;
    }

    for (int i = 0; i < n_inputs && ok; i++) {
        osp_tensor *x = inputs[i];
        if (!x->requires_grad)
            continue;
        if (!x->grad) {
            printf("#   %s: input %d got no gradient\n", label, i);
            ok = false;
            break;
        }
        const float *g = osp_f32(x->grad);
        float *px = osp_f32(x);
        int64_t n = osp_numel(x), step = n > 256 ? n / 256 : 1;
        double worst = 0;
        int64_t worst_at = -1;
        double worst_a = 0, worst_n = 0;
        for (int64_t j = 0; j < n; j += step) {
            float orig = px[j];
            double h = o.eps * fmax(1.0, fabs(orig));
            px[j] = (float)(orig + h);
            double hp = (double)px[j] - orig; /* the step actually taken */
            double lp = objective(fn, inputs, ctx, r);
            px[j] = (float)(orig - h);
            double hm = orig - (double)px[j];
            double lm = objective(fn, inputs, ctx, r);
            px[j] = orig;
            double numeric = (lp - lm) / (hp + hm);
            double analytic = g[j];
            double excess = fabs(analytic - numeric) -
                            (o.atol + o.rtol * fmax(fabs(analytic), fabs(numeric)));
            if (!(excess <= worst)) {
                worst = isnan(excess) ? INFINITY : excess;
                worst_at = j;
                worst_a = analytic;
                worst_n = numeric;
            }
        }
        if (worst_at >= 0) {
            printf("#   %s: input %d element %lld: analytic %.6g vs numeric %.6g\n", label, i,
                   (long long)worst_at, worst_a, worst_n);
            ok = false;
        }
    }
    for (int i = 0; i < n_inputs; i++)
        osp_zero_grad(inputs[i]);
    osp_pool_pop();
    return ok;
}
