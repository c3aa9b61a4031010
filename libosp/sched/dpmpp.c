/* dpmpp.c — DPMSolverMultistepScheduler (DPM-Solver++ 2M) of diffusers
 * v0.24.0 as Open-Sora-Plan v1.0.0 builds it (no arguments)
 * (spec/sampling.md §3.5).
 *
 * Configuration: num_train_timesteps 1000, betas "linear" 0.0001..0.02,
 * prediction_type "epsilon", algorithm_type "dpmsolver++", solver_order 2,
 * solver_type "midpoint", lower_order_final True (the last step is first
 * order when N < 15), euler_at_final False, no Karras / Lu sigmas,
 * lambda_min_clipped −∞, no thresholding, timestep_spacing "linspace",
 * steps_offset 0, init_noise_sigma 1, model input unscaled.
 *
 * Timesteps: round-half-even(linspace(0, 999, N + 1)) reversed, without
 * the final 0 (N integers). σ_i = training σ at t_i; the final σ_N is the
 * training σ at t = 0 (0.010001330), as in 0.24.0 — 0.27.2 would end at 0
 * (spec/sampling.md §5).
 *
 * Rounding: every fixture step is bit-exact except a few where the
 * reference's float32 exp(−h) (PyTorch's vectorised exp) and libm's
 * expf differ by one ulp; the step then differs by ≤ 1e-7 relative. */
#include <math.h>

#include "sched_impl.h"

enum { X0_PREV };

static void dpmpp_layout(osp_sched *s)
{
    int n = s->n;
    double step = (OSP_SCHED_TRAIN_STEPS - 1.0) / n;
    for (int i = 0; i < n; i++) {
        int j = n - i;
        double t = j == n ? OSP_SCHED_TRAIN_STEPS - 1.0 : j * step;
        s->timesteps[i] = rint(t); /* round half to even, like numpy */
        s->sigmas[i] = s->ns.sigmas[(int)s->timesteps[i]];
    }
    s->sigmas[n] = s->ns.sigmas[0];
    s->count = n;
}

/* α(σ) = 1 / √(σ² + 1), s(σ) = σ·α(σ), λ = ln α − ln s, all float32. */
typedef struct level {
    float alpha, sigma, lambda;
} level;

static level level_of(float sig)
{
    level l;
    l.alpha = 1.0f / sqrtf(sig * sig + 1.0f);
    l.sigma = sig * l.alpha;
    l.lambda = logf(l.alpha) - logf(l.sigma);
    return l;
}

/* With h = λ_next − λ_i and B = α_next·(e^−h − 1):
 *   first order   x' = (s_next / s_i)·x − B·x0
 *   second order  x' = (s_next / s_i)·x − B·x0 − (B / 2)·(x0 − x0_prev)·h / h0
 * where x0 = (x − s_i·e) / α_i is the data prediction and h0 = λ_i − λ_{i−1}. */
static osp_tensor *dpmpp_step(osp_sched *s, osp_tensor *e, osp_tensor *x, osp_tensor *noise)
{
    (void)noise;
    int i = s->index;
    level cur = level_of(s->sigmas[i]), next = level_of(s->sigmas[i + 1]);
    osp_tensor *x0 = sched_div(osp_sub(x, sched_mul(e, cur.sigma)), cur.alpha);
    float h = next.lambda - cur.lambda;
    float B = next.alpha * (expf(-h) - 1.0f);
    osp_tensor *out = sched_lincomb(next.sigma / cur.sigma, x, -B, x0);
    bool first_order = i == 0 || (i == s->count - 1 && s->count < 15);
    if (!first_order) {
        float h0 = cur.lambda - level_of(s->sigmas[i - 1]).lambda;
        float r0 = h0 / h;
        osp_tensor *D1 = sched_mul(osp_sub(x0, s->state[X0_PREV]), 1.0f / r0);
        out = osp_sub(out, sched_mul(D1, 0.5f * B));
    }
    if (!out)
        return NULL;
    sched_keep(s, X0_PREV, x0);
    return out;
}

const sched_kind sched_dpmpp = {
    .name = "dpmpp",
    .min_steps = 1,
    .timestep_dtype = OSP_I64,
    .has_sigmas = true,
    .layout = dpmpp_layout,
    .step = dpmpp_step,
};
