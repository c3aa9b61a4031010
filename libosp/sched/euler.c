/* euler.c — EulerDiscreteScheduler of diffusers v0.24.0 as Open-Sora-Plan
 * v1.0.0 builds it (no arguments) and steps it (generator None)
 * (spec/sampling.md §3.4).
 *
 * Configuration: num_train_timesteps 1000, betas "linear" 0.0001..0.02,
 * prediction_type "epsilon", interpolation_type "linear", no Karras sigmas,
 * timestep_spacing "linspace", timestep_type "discrete", steps_offset 0,
 * s_churn 0 (so γ = 0, σ̂ = σ and no noise enters; the reference's draw is
 * multiplied by zero and is skipped here).
 *
 * Timesteps: float32 linspace(0, 999, N) reversed (fractional);
 * σ_i = the training noise levels interpolated linearly at t_i, σ_N = 0;
 * init_noise_sigma = max σ = σ_0 = 157.40726; the model sees
 * x / √(σ_i² + 1) with timestep t_i. */
#include <math.h>

#include "sched_impl.h"

/* numpy.interp of the training σ at position t (0 <= t <= 999), in double
 * from the float32 table, rounded to float32. */
static float sigma_at(const osp_sched *s, double t)
{
    const float *sig = s->ns.sigmas;
    int j = (int)floor(t);
    if (j >= OSP_SCHED_TRAIN_STEPS - 1)
        return sig[OSP_SCHED_TRAIN_STEPS - 1];
    if (t == j)
        return sig[j];
    double slope = (double)sig[j + 1] - (double)sig[j];
    return (float)(slope * (t - j) + sig[j]);
}

static void euler_layout(osp_sched *s)
{
    int n = s->n;
    /* numpy linspace: j * (999 / (n − 1)) in double, the last one exactly
     * 999; a single step is t = 0. Stored as float32. */
    double step = n > 1 ? (OSP_SCHED_TRAIN_STEPS - 1.0) / (n - 1) : 0.0;
    for (int i = 0; i < n; i++) {
        int j = n - 1 - i;
        double t = (n > 1 && j == n - 1) ? OSP_SCHED_TRAIN_STEPS - 1.0 : j * step;
        s->timesteps[i] = (float)t;
    }
    s->count = n;
    float max = 0.0f;
    for (int i = 0; i < n; i++) {
        s->sigmas[i] = sigma_at(s, s->timesteps[i]);
        max = fmaxf(max, s->sigmas[i]);
    }
    s->sigmas[n] = 0.0f;
    s->init_noise_sigma = max;
}

static osp_tensor *euler_scale(osp_sched *s, osp_tensor *x)
{
    float sigma = s->sigmas[s->index];
    return sched_div(x, sqrtf(sigma * sigma + 1.0f));
}

/* x0 = x − σ·e; d = (x − x0) / σ; x' = x + d·(σ_next − σ). */
static osp_tensor *euler_step(osp_sched *s, osp_tensor *e, osp_tensor *x, osp_tensor *noise)
{
    (void)noise;
    float sigma = s->sigmas[s->index], dt = s->sigmas[s->index + 1] - sigma;
    osp_tensor *x0 = osp_sub(x, sched_mul(e, sigma));
    osp_tensor *d = sched_div(osp_sub(x, x0), sigma);
    return osp_add(x, sched_mul(d, dt));
}

const sched_kind sched_euler = {
    .name = "euler",
    .min_steps = 1,
    .timestep_dtype = OSP_F32,
    .has_sigmas = true,
    .layout = euler_layout,
    .scale_model_input = euler_scale,
    .step = euler_step,
};
