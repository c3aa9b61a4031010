/* noise_schedule.c — the training noise schedule every scheduler shares
 * (spec/sampling.md §2): num_train_timesteps 1000, beta_schedule "linear",
 * beta_start 0.0001, beta_end 0.02, no trained betas, no zero-SNR rescale.
 *
 * The float32 tables are reproduced bit for bit (the fixtures carry them):
 *   betas           torch.linspace(0.0001, 0.02, 1000, dtype=float32) as
 *                   the CPU kernel computes it (below);
 *   alphas_cumprod  torch.cumprod(1 - betas): the running product in
 *                   double, each entry rounded to float32;
 *   sigmas          ((1 - ā) / ā) ** 0.5 in float32 tensor arithmetic. */
#include <math.h>

#include "sched.h"

#define BETA_START 0.0001
#define BETA_END 0.02

/* torch.linspace(start, end, n) in float32 as PyTorch's AVX2 CPU kernel
 * computes it. step = (end - start) / (n - 1) in float. The first half
 * counts up from start, the second half down from end, with the products
 * fused into the additions (the kernel is compiled with FMA). Blocks of 16
 * are two 8-lane vectors: each lane k adds k * step to the vector's first
 * value, fused for k = 1..6 but not for lane 7 (that is how the compiled
 * kernel rounds; it gives the reference table exactly, checked against
 * fixtures/sched/timesteps.safetensors); the tail past the last whole block
 * goes element by element. Computing in double instead would be off by one
 * ulp in 375 of the 1000 betas. */
static float linspace_head(float start, float end, float step, int n, int i)
{
    if (i < n / 2)
        return fmaf(step, (float)i, start);
    return fmaf(-step, (float)(n - i - 1), end);
}

/* One 8-lane vector starting at element i. */
static void linspace_vector(float start, float end, float step, int n, int i, float *out)
{
    const int lanes = 8;
    float base = linspace_head(start, end, step, n, i);
    out[i] = base;
    for (int k = 1; k < lanes - 1; k++)
        out[i + k] = fmaf((float)k, step, base);
    float last = (float)(lanes - 1) * step; /* rounded on its own */
    out[i + lanes - 1] = base + last;
}

static void torch_linspace_f32(float start, float end, int n, float *out)
{
    float step = (end - start) / (float)(n - 1);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        linspace_vector(start, end, step, n, i, out);
        linspace_vector(start, end, step, n, i + 8, out);
    }
    for (; i < n; i++)
        out[i] = linspace_head(start, end, step, n, i);
}

void osp_noise_schedule_init(osp_noise_schedule *ns)
{
    torch_linspace_f32((float)BETA_START, (float)BETA_END, OSP_SCHED_TRAIN_STEPS, ns->betas);
    double prod = 1.0;
    for (int i = 0; i < OSP_SCHED_TRAIN_STEPS; i++) {
        float alpha = 1.0f - ns->betas[i];
        prod *= alpha;
        float a = (float)prod;
        ns->alphas_cumprod[i] = a;
        float ratio = (1.0f - a) / a;
        ns->sigmas[i] = sqrtf(ratio);
    }
}
