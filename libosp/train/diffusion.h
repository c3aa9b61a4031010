/* diffusion.h — the Latte training objective (spec/training.md §2.1-2.2):
 * the 1000-step linear-beta schedule in float64 and the hybrid loss of a
 * learned-range-variance ε-prediction model, MSE on ε plus the VLB term
 * (KL for t > 0, the discretised-Gaussian decoder NLL at t = 0), with
 * the stop-gradient on ε̂ inside the VLB term.
 *
 * The loss is evaluated on the host in float32 exactly as the reference
 * does (every per-timestep coefficient looked up in float64 and cast to
 * float32), and its gradient with respect to the model output is written
 * out by hand, so a trainer runs the model forward on the tape, calls
 * osp_diffusion_loss, and back-propagates the returned gradient as the
 * seed of osp_backward(model_output, grad). */
#ifndef OSP_TRAIN_DIFFUSION_H
#define OSP_TRAIN_DIFFUSION_H

#include "core/tensor.h"

#define OSP_DIFFUSION_STEPS 1000

/* Every table the reference holds, float64, OSP_DIFFUSION_STEPS entries. */
typedef struct osp_diffusion {
    double betas[OSP_DIFFUSION_STEPS], log_betas[OSP_DIFFUSION_STEPS];
    double alphas_cumprod[OSP_DIFFUSION_STEPS], alphas_cumprod_prev[OSP_DIFFUSION_STEPS];
    double sqrt_alphas_cumprod[OSP_DIFFUSION_STEPS];
    double sqrt_one_minus_alphas_cumprod[OSP_DIFFUSION_STEPS];
    double sqrt_recip_alphas_cumprod[OSP_DIFFUSION_STEPS];
    double sqrt_recipm1_alphas_cumprod[OSP_DIFFUSION_STEPS];
    double posterior_variance[OSP_DIFFUSION_STEPS];
    double posterior_log_variance_clipped[OSP_DIFFUSION_STEPS];
    double posterior_mean_coef1[OSP_DIFFUSION_STEPS], posterior_mean_coef2[OSP_DIFFUSION_STEPS];
} osp_diffusion;

/* The schedule of create_diffusion_T(timestep_respacing="") (§2.1). */
void osp_diffusion_init(osp_diffusion *d);

/* x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε per sample b (t[b]). x0, noise [B, ...] f32
 * host, t [B] int64 in [0, 999]. Returns a new f32 tensor (pool). */
osp_tensor *osp_diffusion_q_sample(const osp_diffusion *d, osp_tensor *x0, osp_tensor *noise,
                                   const int64_t *t);

/* Per-sample terms and, optionally, the intermediate tensors of §2.2. */
typedef struct osp_diffusion_terms {
    double *mse, *vb, *loss; /* [B] each, caller-owned, or NULL */
    double loss_mean;        /* mean over the batch of mse + vb */
    /* Optional [B, C, ...] f32 host outputs (caller-allocated, or NULL):
     * the p(x_{t-1}|x_t) and q(x_{t-1}|x_t, x0) parameters. */
    osp_tensor *pred_xstart, *model_mean, *model_log_variance, *true_mean, *true_log_variance;
} osp_diffusion_terms;

/* The hybrid loss for x0, noise [B, C, ...], the model output [B, 2C, ...]
 * (channels 0..C-1 ε̂, C..2C-1 the raw variance v) at x_t = q_sample(x0, ε,
 * t). grad (optional, f32 [B, 2C, ...]) receives d loss_mean / d output,
 * times `grad_scale` (1/accumulation steps, or 1). Checks shapes and t
 * (OSP_ERR_DATA naming the tensor). */
osp_status osp_diffusion_loss(const osp_diffusion *d, osp_tensor *x0, osp_tensor *noise,
                              const int64_t *t, osp_tensor *model_output,
                              osp_diffusion_terms *terms, osp_tensor *grad, double grad_scale);

#endif
