/* vae_step.h — the generator half of a CausalVideoVAE training step
 * (spec/training.md §3.2, optimizer_idx 0), the part of `osp-train vae`
 * that touches the VAE's gradients:
 *
 *   posterior = encode(x); z = mean + exp(logvar/2)·eps; x̂ = decode(z)
 *   X, X̂ = the frames of x, x̂ ([B·F, 3, H, W]), M = B·F
 *   nll_loss = Σ (|X − X̂| + pw·P(X, X̂)_frame) / M      (P: the perceptual loss)
 *   kl_loss  = Σ 0.5·(mean² + exp(logvar) − 1 − logvar) / B
 *   g_loss   = the adversarial loss of X̂ (−mean D(X̂) in the reference)
 *   d_weight = dw · clamp(‖∂nll_loss/∂W‖ / (‖∂g_loss/∂W‖ + 1e−4), 0, 1e4),
 *              W = decoder.conv_out.conv.weight, computed even when off
 *   L_G      = nll_loss + kw·kl_loss + d_weight·f·g_loss
 *
 * and backpropagates L_G into the VAE's parameters. How: the loss terms
 * that read x̂ are differentiated on nested tapes with x̂ as a leaf, giving
 * ∂nll/∂x̂ and ∂g/∂x̂; their gradients against W come from the decoder's
 * head alone (re-run on a nested tape), so d_weight needs no second pass
 * through the whole model; then one backward of Σ x̂·(∂nll/∂x̂ +
 * d_weight·f·∂g/∂x̂) + kw·kl_loss through the recorded forward gives
 * exactly ∇L_G. The perceptual and adversarial terms are callbacks, so the
 * frozen LPIPS network and the discriminator stay outside. */
#ifndef OSP_TRAIN_VAE_STEP_H
#define OSP_TRAIN_VAE_STEP_H

#include <stdbool.h>

#include "models/causalvae.h"

/* P(X, X̂): one value per frame, [M] (frames [M, 3, H, W] in [-1, 1]). */
typedef osp_tensor *(*osp_vae_perceptual_fn)(void *ctx, osp_tensor *x, osp_tensor *xr);
/* The adversarial loss of the frames X̂, a scalar [1] (or [] ). */
typedef osp_tensor *(*osp_vae_adversarial_fn)(void *ctx, osp_tensor *xr);

typedef struct osp_vae_gen_opts {
    double kl_weight;         /* kw, 1e-6 in the reference */
    double perceptual_weight; /* pw, 1.0 */
    double disc_weight;       /* dw, 0.5 */
    bool adversarial_on;      /* f: global_step >= disc_start */
    osp_vae_perceptual_fn perceptual; /* NULL: no perceptual term */
    void *perceptual_ctx;
    osp_vae_adversarial_fn adversarial; /* NULL: no adversarial term, d_weight 0 */
    void *adversarial_ctx;
} osp_vae_gen_opts;

typedef struct osp_vae_gen_terms {
    double nll_loss, kl_loss, g_loss, d_weight, total;
} osp_vae_gen_terms;

/* x [B, 3, F, H, W] in [-1, 1] and the posterior noise eps (the latent's
 * shape). The VAE's parameters must require grad and have no gradient yet;
 * they hold ∇L_G afterwards. *xr_frames (may be NULL) receives X̂ without
 * gradient, [M, 3, H, W] (current pool), for the discriminator's step. The
 * adversarial callback's parameters collect gradients too: zero them
 * before the discriminator's own backward. */
osp_status osp_vae_generator_backward(osp_vae *vae, osp_tensor *x, osp_tensor *eps,
                                      const osp_vae_gen_opts *o, osp_tensor **xr_frames,
                                      osp_vae_gen_terms *terms);

/* [B, C, F, H, W] -> [B·F, C, H, W] (contiguous). */
osp_tensor *osp_video_frames(osp_tensor *v);

#endif
