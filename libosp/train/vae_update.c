/* vae_update.c — see vae_update.h. */
#include "vae_update.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "train/tape.h"
#include "train/train_loop.h"
#include "train/vae_step.h"

void osp_vae_trainer_set_grad(osp_tensor *const *t, size_t n, bool on)
{
    for (size_t i = 0; i < n; i++) {
        osp_zero_grad(t[i]);
        t[i]->requires_grad = on;
    }
}

static osp_tensor *perceptual_term(void *ctx, osp_tensor *x, osp_tensor *xr)
{
    return osp_lpips_loss(ctx, x, xr);
}

static osp_tensor *adversarial_term(void *ctx, osp_tensor *xr)
{
    return osp_patchgan_g_loss(osp_patchgan_forward(ctx, xr));
}

static double mean_value(osp_tensor *t)
{
    osp_tensor *m = t ? osp_mean(t, t->ndim, (const int[]){0, 1, 2, 3}, false) : NULL;
    osp_tensor *h = m ? osp_to_device(m, OSP_DEVICE_CPU) : NULL;
    return h ? (double)osp_f32(h)[0] : NAN;
}

/* Averages each gradient over the ranks, clips, steps `opt` (and with
 * `zero`, shares what each rank updated), clears. */
static osp_status update(const osp_vae_trainer *t, osp_adamw *opt, const osp_zero *zero,
                         osp_tensor *const *params, size_t n, double *norm)
{
    osp_tensor **grads = NULL;
    osp_status st = osp_train_reduce_grads(t->dist, params, n, t->max_grad_norm, &grads, norm);
    st = st ? st : osp_adamw_step(opt, params, grads, opt->h.lr);
    st = st || !zero ? st : osp_zero_share(zero);
    free(grads);
    for (size_t i = 0; i < n; i++)
        osp_zero_grad(params[i]);
    return st;
}

/* The discriminator's half of batch k: D on the real frames, then on the
 * reconstruction (two sets of batch statistics), the hinge loss, its
 * backward only once it is on (2k + 1 >= disc_start). */
static osp_status disc_step(osp_vae_trainer *t, int64_t k, osp_tensor *x, osp_tensor *xr,
                            osp_vae_batch_stats *s)
{
    bool on = 2 * k + 1 >= t->disc_start;
    bool was = osp_grad_set_enabled(on);
    osp_tensor *real = osp_patchgan_forward(t->disc, osp_video_frames(x));
    osp_tensor *fake = osp_patchgan_forward(t->disc, xr);
    osp_tensor *loss = osp_patchgan_d_loss(real, fake);
    osp_grad_set_enabled(false);
    osp_status st = loss ? OSP_OK : osp_error_code();
    s->logits_real = mean_value(real);
    s->logits_fake = mean_value(fake);
    osp_tensor *host_loss = on && loss ? osp_to_device(loss, OSP_DEVICE_CPU) : NULL;
    s->disc_loss = host_loss ? (double)osp_f32(host_loss)[0] : 0.0;
    if (!st && on)
        st = osp_backward(loss, NULL);
    if (st)
        osp_tape_clear();
    osp_grad_set_enabled(was);
    return st ? st : update(t, t->opt_disc, NULL, t->disc_tensors, t->n_disc,
                            &s->disc_grad_norm);
}

osp_status osp_vae_train_batch(osp_vae_trainer *t, int64_t k, osp_tensor *x, osp_tensor *eps,
                               osp_vae_batch_stats *s)
{
    memset(s, 0, sizeof *s);
    osp_vae_gen_opts g = {
        .kl_weight = t->kl_weight, .perceptual_weight = t->perceptual_weight,
        .disc_weight = t->disc_weight, .adversarial_on = 2 * k >= t->disc_start,
        .perceptual = t->lpips ? perceptual_term : NULL, .perceptual_ctx = t->lpips,
        .adversarial = adversarial_term, .adversarial_ctx = t->disc,
    };
    osp_vae_gen_terms terms = {0};
    osp_tensor *xr = NULL;
    /* the generator step only needs D's gradient against x̂ */
    osp_vae_trainer_set_grad(t->disc_tensors, t->n_disc, false);
    osp_status st = osp_vae_generator_backward(t->vae, x, eps, &g, &xr, &terms);
    osp_vae_trainer_set_grad(t->disc_tensors, t->n_disc, true);
    s->loss = terms.total;
    s->nll = terms.nll_loss;
    s->kl = terms.kl_loss;
    s->g_loss = terms.g_loss;
    s->d_weight = terms.d_weight;
    const osp_params *p = t->vae_params;
    if (!st && !isfinite(terms.total))
        st = osp_error(OSP_ERR_RUNTIME, "step %lld: the loss is not finite", (long long)(k + 1));
    st = st ? st : update(t, t->opt, t->zero, p->tensors, p->n, &s->grad_norm);
    st = st ? st : disc_step(t, k, x, xr, s);
    if (!st && osp_dist_mean_f64(t->dist, &s->loss, 8)) /* loss .. logits_fake */
        st = osp_error_code();
    return st;
}
