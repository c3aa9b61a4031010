/* ddpm.c — DDPMScheduler of diffusers v0.24.0 as Open-Sora-Plan v1.0.0
 * builds it (no arguments) (spec/sampling.md §3.3).
 *
 * Configuration: num_train_timesteps 1000, betas "linear" 0.0001..0.02,
 * prediction_type "epsilon", variance_type "fixed_small", clip_sample True
 * (range 1.0), no thresholding, timestep_spacing "leading", steps_offset 0,
 * init_noise_sigma 1, model input unscaled. The step past t = 0 lands on
 * ā = 1. Every step with t > 0 adds √var·z for a fresh z ~ N(0, I) that the
 * caller supplies (osp_sched_step_needs_noise); the last step (t = 0) adds
 * none.
 *
 * Timesteps: r = 1000 / N, (N−1)r, (N−2)r, ..., r, 0. */
#include <math.h>

#include "sched_impl.h"

static bool ddpm_needs_noise(const osp_sched *s) { return s->timesteps[s->index] > 0; }

/* x0 = clamp((x − √b·e) / √a, −1, 1)
 * x' = (√ap·β / b)·x0 + (√α·bp / b)·x  [+ √max(bp/b·β, 1e-20)·z if t > 0]
 * with b = 1 − a, bp = 1 − ap, α = a / ap, β = 1 − α. */
static osp_tensor *ddpm_step(osp_sched *s, osp_tensor *e, osp_tensor *x, osp_tensor *noise)
{
    int t = (int)s->timesteps[s->index];
    int t_prev = t - OSP_SCHED_TRAIN_STEPS / s->n;
    float a = s->ns.alphas_cumprod[t], ap = sched_alpha_prev(s, t_prev, 1.0f);
    float b = 1.0f - a, bp = 1.0f - ap;
    float alpha = a / ap, beta = 1.0f - alpha;
    osp_tensor *x0 = sched_div(osp_sub(x, sched_mul(e, sqrtf(b))), sqrtf(a));
    x0 = osp_clamp(x0, -1.0f, 1.0f);
    float x0_coeff = sqrtf(ap) * beta / b;
    float x_coeff = sqrtf(alpha) * bp / b;
    osp_tensor *mean = sched_lincomb(x0_coeff, x0, x_coeff, x);
    if (!ddpm_needs_noise(s))
        return mean;
    float var = fmaxf(bp / b * beta, 1e-20f);
    return osp_add(mean, sched_mul(noise, sqrtf(var)));
}

const sched_kind sched_ddpm = {
    .name = "ddpm",
    .min_steps = 1,
    .timestep_dtype = OSP_I64,
    .layout = sched_layout_leading,
    .step = ddpm_step,
    .needs_noise = ddpm_needs_noise,
};
