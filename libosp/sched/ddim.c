/* ddim.c — DDIMScheduler of diffusers v0.24.0 as Open-Sora-Plan v1.0.0
 * builds it (no arguments) and its pipeline steps it (eta 0, no generator)
 * (spec/sampling.md §3.2).
 *
 * Configuration: num_train_timesteps 1000, betas "linear" 0.0001..0.02,
 * prediction_type "epsilon", clip_sample True (range 1.0), no
 * thresholding, set_alpha_to_one True (the step past t = 0 lands on
 * ā = 1), timestep_spacing "leading", steps_offset 0, no zero-SNR rescale,
 * eta 0 (deterministic; no noise is ever drawn), init_noise_sigma 1, model
 * input unscaled.
 *
 * Timesteps: r = 1000 / N, (N−1)r, (N−2)r, ..., r, 0. */
#include <math.h>

#include "sched_impl.h"

/* x0 = clamp((x − √(1−a)·e) / √a, −1, 1); x' = √ap·x0 + √(1 − ap)·e. */
static osp_tensor *ddim_step(osp_sched *s, osp_tensor *e, osp_tensor *x, osp_tensor *noise)
{
    (void)noise;
    int t = (int)s->timesteps[s->index];
    int t_prev = t - OSP_SCHED_TRAIN_STEPS / s->n;
    float a = s->ns.alphas_cumprod[t], ap = sched_alpha_prev(s, t_prev, 1.0f);
    float b = 1.0f - a;
    osp_tensor *x0 = sched_div(osp_sub(x, sched_mul(e, sqrtf(b))), sqrtf(a));
    x0 = osp_clamp(x0, -1.0f, 1.0f);
    /* eta = 0: σ = eta·√var is 0, so the direction is √(1 − ap − σ²)·e
     * with the model output unclipped, and no noise is added. */
    return sched_lincomb(sqrtf(ap), x0, sqrtf(1.0f - ap), e);
}

const sched_kind sched_ddim = {
    .name = "ddim",
    .min_steps = 1,
    .timestep_dtype = OSP_I64,
    .layout = sched_layout_leading,
    .step = ddim_step,
};
