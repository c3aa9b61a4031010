/* vae_step.c — see vae_step.h. */
#include "vae_step.h"

#include <math.h>

#include "backend/ops.h"
#include "nn/params.h"
#include "train/tape.h"

#define CONV_OUT_WEIGHT "decoder.conv_out.conv.weight"

osp_tensor *osp_video_frames(osp_tensor *v)
{
    if (!v)
        return NULL;
    if (v->ndim != 5) {
        osp_error(OSP_ERR_RUNTIME, "video frames: expected [B, C, F, H, W]");
        return NULL;
    }
    const int64_t shape[4] = {v->shape[0] * v->shape[2], v->shape[1], v->shape[3], v->shape[4]};
    return osp_reshape(osp_contiguous(osp_permute(v, (const int[]){0, 2, 1, 3, 4})), 4, shape);
}

static osp_tensor *sum_all(osp_tensor *t)
{
    if (!t)
        return NULL;
    int axes[OSP_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++)
        axes[i] = i;
    return osp_sum(t, t->ndim, axes, false);
}

static double scalar(osp_tensor *t)
{
    osp_tensor *h = t ? osp_to_device(t, OSP_DEVICE_CPU) : NULL;
    return h && osp_numel(h) == 1 ? (double)osp_f32(h)[0] : NAN;
}

/* t again as a leaf of a new graph (same storage), wanting a gradient. */
static osp_tensor *leaf(osp_tensor *t)
{
    bool was = osp_grad_set_enabled(false);
    osp_tensor *a = t ? osp_reshape(t, t->ndim, t->shape) : NULL;
    osp_grad_set_enabled(was);
    return a ? osp_requires_grad(a) : NULL;
}

/* The value of loss(ctx, leaf) and its gradient with respect to the leaf,
 * on a nested tape (the outer recording is left as it was). */
typedef osp_tensor *(*loss_fn)(void *ctx, osp_tensor *leaf);

static osp_status nested_grad(loss_fn fn, void *ctx, osp_tensor *at, double *value,
                              osp_tensor **grad)
{
    osp_tensor *a = leaf(at);
    if (!a)
        return osp_error_code();
    osp_tape_saved outer;
    osp_tape_suspend(&outer);
    bool was = osp_grad_set_enabled(true);
    osp_tensor *loss = fn(ctx, a);
    osp_grad_set_enabled(false);
    *value = scalar(loss);
    osp_status st = loss ? osp_backward(loss, NULL) : osp_error_code();
    osp_tape_resume(&outer);
    osp_grad_set_enabled(was);
    *grad = a->grad; /* lives with a, in the current pool */
    if (!st && !*grad)
        *grad = osp_full_like(at, 0.0);
    return st;
}

typedef struct nll_ctx {
    const osp_vae_gen_opts *o;
    osp_tensor *frames; /* X */
} nll_ctx;

/* nll_loss of X̂ = frames of the leaf (logvar_loss is 0 and never trained:
 * rec / exp(0) + 0 = rec). */
static osp_tensor *nll_loss(void *ctx, osp_tensor *xr)
{
    const nll_ctx *c = ctx;
    osp_tensor *xr_frames = osp_video_frames(xr);
    osp_tensor *rec = osp_abs(osp_sub(c->frames, xr_frames));
    if (rec && c->o->perceptual && c->o->perceptual_weight != 0) {
        int64_t M = rec->shape[0];
        osp_tensor *p = c->o->perceptual(c->o->perceptual_ctx, c->frames, xr_frames);
        p = p ? osp_reshape(p, 4, (const int64_t[]){M, 1, 1, 1}) : NULL;
        rec = osp_add(rec, osp_scale_shift(p, (float)c->o->perceptual_weight, 0.0f));
    }
    return rec ? osp_scale_shift(sum_all(rec), 1.0f / (float)rec->shape[0], 0.0f) : NULL;
}

static osp_tensor *adversarial_loss(void *ctx, osp_tensor *xr)
{
    const osp_vae_gen_opts *o = ctx;
    return o->adversarial(o->adversarial_ctx, osp_video_frames(xr));
}

typedef struct head_ctx {
    osp_vae *vae;
    osp_tensor *dloss_dxr;
} head_ctx;

/* Σ head(h)·g: its gradient against W is that of the loss whose
 * gradient against x̂ is g. */
static osp_tensor *head_dot(void *ctx, osp_tensor *h)
{
    const head_ctx *c = ctx;
    return sum_all(osp_mul(osp_vae_decoder_head(c->vae, h), c->dloss_dxr));
}

/* ‖∂L/∂W‖ for the loss whose gradient against x̂ = head(h) is g. */
static osp_status head_weight_norm(osp_vae *vae, osp_tensor *h, osp_tensor *g, double *norm)
{
    osp_params *p = osp_vae_params(vae);
    osp_tensor *w = osp_params_find(p, CONV_OUT_WEIGHT);
    if (!w)
        return osp_error(OSP_ERR_DATA, "the VAE has no %s", CONV_OUT_WEIGHT);
    head_ctx c = {vae, g};
    double unused;
    osp_tensor *gh = NULL;
    osp_status st = nested_grad(head_dot, &c, h, &unused, &gh);
    osp_tensor *sq = !st && w->grad ? sum_all(osp_square(w->grad)) : NULL;
    if (!st && w->grad && !sq)
        st = osp_error_code();
    *norm = sq ? sqrt(scalar(sq)) : 0.0;
    for (size_t i = 0; i < p->n; i++) /* the head's parameters: not part of ∇L_G */
        osp_zero_grad(p->tensors[i]);
    return st;
}

osp_status osp_vae_generator_backward(osp_vae *vae, osp_tensor *x, osp_tensor *eps,
                                      const osp_vae_gen_opts *o, osp_tensor **xr_frames,
                                      osp_vae_gen_terms *t)
{
    *t = (osp_vae_gen_terms){0};
    osp_pool_push();
    bool was = osp_grad_set_enabled(true);
    osp_tensor *mean = NULL, *logvar = NULL;
    osp_status st = osp_vae_posterior(osp_vae_encoder_forward(vae, x), &mean, &logvar);
    osp_tensor *h = st ? NULL : osp_vae_decoder_body(vae, osp_vae_sample(mean, logvar, eps));
    osp_tensor *xr = osp_vae_decoder_head(vae, h);
    osp_grad_set_enabled(false);
    if (!st && !xr)
        st = osp_error_code();

    nll_ctx nc = {o, st ? NULL : osp_video_frames(x)};
    osp_tensor *g_nll = NULL, *g_adv = NULL;
    st = st ? st : nested_grad(nll_loss, &nc, xr, &t->nll_loss, &g_nll);
    double norm_nll = 0.0, norm_adv = 0.0;
    if (!st && o->adversarial) {
        st = nested_grad(adversarial_loss, (void *)o, xr, &t->g_loss, &g_adv);
        st = st ? st : head_weight_norm(vae, h, g_nll, &norm_nll);
        st = st ? st : head_weight_norm(vae, h, g_adv, &norm_adv);
        double ratio = norm_nll / (norm_adv + 1e-4);
        t->d_weight = o->disc_weight * fmin(fmax(ratio, 0.0), 1e4);
    }
    /* kl_loss on the recorded graph, and Σ x̂·∂L/∂x̂ for the terms of x̂ */
    osp_tensor *dldx = g_nll;
    if (!st && g_adv && o->adversarial_on)
        dldx = osp_add(g_nll, osp_scale_shift(g_adv, (float)t->d_weight, 0.0f));
    osp_grad_set_enabled(true);
    osp_tensor *kl = NULL, *surrogate = NULL;
    if (!st) {
        osp_tensor *terms = osp_sub(osp_add(osp_square(mean), osp_exp(logvar)),
                                    osp_scale_shift(logvar, 1.0f, 1.0f));
        kl = osp_scale_shift(sum_all(terms), 0.5f / (float)x->shape[0], 0.0f);
        surrogate = osp_add(sum_all(osp_mul(xr, dldx)),
                            osp_scale_shift(kl, (float)o->kl_weight, 0.0f));
    }
    osp_grad_set_enabled(false);
    if (!st && !surrogate)
        st = osp_error_code();
    t->kl_loss = st ? 0.0 : scalar(kl);
    st = st ? st : osp_backward(surrogate, NULL);
    if (st)
        osp_tape_clear();
    t->total = t->nll_loss + o->kl_weight * t->kl_loss +
               (o->adversarial_on ? t->d_weight * t->g_loss : 0.0);
    osp_grad_set_enabled(was);
    osp_tensor *out = !st && xr_frames ? osp_video_frames(xr) : NULL;
    if (xr_frames)
        *xr_frames = osp_pool_pop_keep(out);
    else
        osp_pool_pop();
    return st;
}
