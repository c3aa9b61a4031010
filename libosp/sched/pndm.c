/* pndm.c — PNDMScheduler of diffusers v0.24.0 as Open-Sora-Plan v1.0.0
 * builds it (no arguments), its default sampler (spec/sampling.md §3.1).
 *
 * Configuration: num_train_timesteps 1000, betas "linear" 0.0001..0.02,
 * prediction_type "epsilon", skip_prk_steps False (the 4th-order
 * Runge-Kutta warm-up runs: 12 model calls for the first 3 intervals),
 * set_alpha_to_one False (the step past t = 0 lands on ā[0] = 0.9999),
 * timestep_spacing "leading", steps_offset 0, init_noise_sigma 1, model
 * input unscaled. Needs N >= 4 steps.
 *
 * Timesteps (r = 1000 / N, r2 = r / 2, base_j = j r; a < b < c < d the last
 * four bases): PRK  d, c+r2, c+r2, c, c, b+r2, b+r2, b, b, a+r2, a+r2, a
 *               PLMS base_{N-4}, ..., base_1, 0
 * i.e. N + 9 entries; N = 10: 900 850 850 800 800 750 750 700 700 650 650
 * 600 600 500 400 300 200 100 0. */
#include <math.h>

#include "sched_impl.h"

#define PRK_STEPS 12
#define HISTORY 4

/* State slots: the model-output history E (oldest first) in 0..3, then: */
enum { ACC = HISTORY, X_BASE };

static void pndm_layout(osp_sched *s)
{
    int n = s->n, r2 = OSP_SCHED_TRAIN_STEPS / n / 2;
    /* diffusers: the last four bases, each followed by base + r2 (not the
     * last), every value doubled, the outer two dropped, reversed. */
    int up[7];
    for (int j = 0; j < 4; j++) {
        up[2 * j] = sched_leading(n, n - 4 + j);
        if (j < 3)
            up[2 * j + 1] = up[2 * j] + r2;
    }
    int k = 0;
    for (int q = 0; q < PRK_STEPS; q++)
        s->timesteps[k++] = up[(PRK_STEPS - q) / 2];
    for (int j = n - 4; j >= 0; j--)
        s->timesteps[k++] = sched_leading(n, j);
    s->count = k;
}

/* The PNDM transfer from t_from to t_to with noise estimate e:
 * √(ap/a)·x − (ap − a)·e / (a·√bp + √(a·b·ap)). */
static osp_tensor *transfer(const osp_sched *s, osp_tensor *x, int t_from, int t_to, osp_tensor *e)
{
    const float *ac = s->ns.alphas_cumprod;
    float a = ac[t_from], ap = sched_alpha_prev(s, t_to, ac[0]);
    float b = 1.0f - a, bp = 1.0f - ap;
    float x_coeff = sqrtf(ap / a);
    float den = a * sqrtf(bp) + sqrtf(a * b * ap);
    return osp_sub(sched_mul(x, x_coeff), sched_div(sched_mul(e, ap - a), den));
}

/* Appends e to the history, dropping the oldest beyond HISTORY. */
static void remember(osp_sched *s, osp_tensor *e)
{
    if (s->n_history == HISTORY) {
        osp_release(s->state[0]);
        for (int i = 1; i < HISTORY; i++)
            s->state[i - 1] = s->state[i];
        s->state[HISTORY - 1] = NULL;
        s->n_history--;
    }
    s->state[s->n_history++] = osp_retain(e);
}

/* Runge-Kutta warm-up, calls k = 0..11: each group of four evaluates e at
 * t, t - r/2 (twice) and t - r, always stepping from the sample at the
 * start of the group; the fourth call applies (e1 + 2 e2 + 2 e3 + e4) / 6. */
static osp_tensor *prk_step(osp_sched *s, osp_tensor *e, osp_tensor *x)
{
    int k = s->index, t = (int)s->timesteps[k];
    int r2 = OSP_SCHED_TRAIN_STEPS / s->n / 2;
    int t_to = t - (k % 2 ? 0 : r2);
    int t_from = (int)s->timesteps[k / 4 * 4];
    const float sixth = (float)(1.0 / 6.0), third = (float)(1.0 / 3.0);
    osp_tensor *e_use = e;
    switch (k % 4) {
    case 0:
        sched_keep(s, ACC, sched_mul(e, sixth));
        remember(s, e);
        sched_keep(s, X_BASE, x);
        break;
    case 1:
    case 2:
        sched_keep(s, ACC, osp_add(s->state[ACC], sched_mul(e, third)));
        break;
    default:
        e_use = osp_add(s->state[ACC], sched_mul(e, sixth));
        sched_keep(s, ACC, NULL);
        break;
    }
    if (!e_use || (k % 4 != 3 && !s->state[ACC]))
        return NULL;
    return transfer(s, s->state[X_BASE], t_from, t_to, e_use);
}

/* Linear multistep (4th order): e' = (55 E3 − 59 E2 + 37 E1 − 9 E0) / 24
 * over the last four model outputs, E3 = e. */
static osp_tensor *plms_step(osp_sched *s, osp_tensor *e, osp_tensor *x)
{
    int t = (int)s->timesteps[s->index];
    remember(s, e);
    osp_tensor *const *E = s->state;
    osp_tensor *sum = osp_sub(sched_mul(E[3], 55.0f), sched_mul(E[2], 59.0f));
    sum = osp_add(sum, sched_mul(E[1], 37.0f));
    sum = osp_sub(sum, sched_mul(E[0], 9.0f));
    osp_tensor *e_use = sched_mul(sum, (float)(1.0 / 24.0));
    return transfer(s, x, t, t - OSP_SCHED_TRAIN_STEPS / s->n, e_use);
}

static osp_tensor *pndm_step(osp_sched *s, osp_tensor *e, osp_tensor *x, osp_tensor *noise)
{
    (void)noise;
    return s->index < PRK_STEPS ? prk_step(s, e, x) : plms_step(s, e, x);
}

const sched_kind sched_pndm = {
    .name = "pndm",
    .min_steps = 4,
    .timestep_dtype = OSP_I64,
    .layout = pndm_layout,
    .step = pndm_step,
};
