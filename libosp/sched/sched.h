/* sched.h — the diffusion samplers of osp-denoise: the five diffusers
 * v0.24.0 schedulers that Open-Sora-Plan v1.0.0 constructs with no
 * arguments (spec/sampling.md §2-§3), behind one interface.
 *
 *   name    diffusers class               timesteps for N steps   model calls
 *   pndm    PNDMScheduler (PRK warm-up)   "leading"               N + 9
 *   ddim    DDIMScheduler (eta 0)         "leading"               N
 *   ddpm    DDPMScheduler                 "leading"               N
 *   euler   EulerDiscreteScheduler        "linspace" (fractional) N
 *   dpmpp   DPMSolverMultistepScheduler   "linspace"              N
 *
 * Each file (pndm.c, ddim.c, ...) lists its exact configuration at the top.
 *
 * Use (the sampling loop of spec/sampling.md §1.3):
 *
 *   osp_sched *s = osp_sched_create("pndm");
 *   osp_sched_set_timesteps(s, 250);
 *   x = noise * osp_sched_init_noise_sigma(s);
 *   for (int i = 0; i < osp_sched_count(s); i++) {
 *       double t = osp_sched_timestep(s, i);
 *       in  = osp_sched_scale_model_input(s, x, t);      (identity except euler)
 *       eps = model(in, t);
 *       z   = osp_sched_step_needs_noise(s) ? fresh N(0, 1) : NULL;
 *       x   = osp_sched_step(s, eps, t, x, z);
 *   }
 *   osp_sched_free(s);
 *
 * The schedulers are stateful (PNDM's history and Runge-Kutta sum, DPM++'s
 * previous data prediction, Euler's and DPM++'s step index), so steps must
 * come in timestep order: osp_sched_step and osp_sched_scale_model_input
 * check that `t` is the timestep of the current step and fail otherwise.
 * Tensors: any shape and device; eps, x (and noise) must agree in shape.
 * Arithmetic runs through ops (backend/ops.h) in float32, in the reference's
 * order; scalar coefficients are float32 as in the reference. Results belong
 * to the current autorelease pool; the scheduler keeps its own references
 * to the state it needs. */
#ifndef OSP_SCHED_H
#define OSP_SCHED_H

#include <stdbool.h>

#include "core/tensor.h"

/* ---- the shared noise schedule (spec/sampling.md §2) ---- */

#define OSP_SCHED_TRAIN_STEPS 1000

/* betas "linear" 0.0001..0.02 over 1000 steps, exactly the float32 tables
 * diffusers builds (torch.linspace on the CPU, then a cumulative product
 * accumulated in double), and the noise levels of Euler and DPM++. */
typedef struct osp_noise_schedule {
    float betas[OSP_SCHED_TRAIN_STEPS];
    float alphas_cumprod[OSP_SCHED_TRAIN_STEPS];
    float sigmas[OSP_SCHED_TRAIN_STEPS]; /* sqrt((1 - ā) / ā), float32 */
} osp_noise_schedule;

void osp_noise_schedule_init(osp_noise_schedule *ns);

/* ---- schedulers ---- */

typedef struct osp_sched osp_sched;

/* The names osp_sched_create accepts, NULL-terminated. */
extern const char *const osp_sched_names[];

/* A scheduler with the reference's default configuration; the name is
 * matched ignoring case. NULL with OSP_ERR_USAGE for an unknown name,
 * OSP_ERR_NOMEM on allocation failure. Call set_timesteps before use. */
osp_sched *osp_sched_create(const char *name);
void osp_sched_free(osp_sched *s); /* NULL-safe */
const char *osp_sched_name(const osp_sched *s);
const osp_noise_schedule *osp_sched_noise_schedule(const osp_sched *s);

/* Valid step counts: min_steps..OSP_SCHED_TRAIN_STEPS (PNDM needs 4). */
int osp_sched_min_steps(const osp_sched *s);

/* Prepares N inference steps and clears all state (OSP_ERR_USAGE for N out
 * of range). */
osp_status osp_sched_set_timesteps(osp_sched *s, int n);
/* Back to the first step of the current timesteps, state cleared. */
void osp_sched_reset(osp_sched *s);

/* Number of entries = model calls (N + 9 for PNDM, else N). */
int osp_sched_count(const osp_sched *s);
/* Entry i (0 <= i < count), in the order the loop visits them. Integer
 * values for all schedulers but euler (float32 values); both are exact in
 * double. */
double osp_sched_timestep(const osp_sched *s, int i);
/* The dtype the reference hands to the model: OSP_I64, or OSP_F32 (euler). */
osp_dtype osp_sched_timestep_dtype(const osp_sched *s);
/* count + 1 noise levels σ (euler, dpmpp), or NULL for the others. */
const float *osp_sched_sigmas(const osp_sched *s);
/* Factor for the initial N(0, 1) latents: 1, or the largest σ (euler). */
float osp_sched_init_noise_sigma(const osp_sched *s);
/* Steps taken since set_timesteps/reset. */
int osp_sched_index(const osp_sched *s);

/* What the model sees at timestep t: x / sqrt(σ² + 1) for euler (a new
 * tensor in the current pool), x itself for the others (like an identity
 * op, no new reference). */
osp_tensor *osp_sched_scale_model_input(osp_sched *s, osp_tensor *x, double t);
/* True when the next step consumes a noise tensor (ddpm while t > 0). */
bool osp_sched_step_needs_noise(const osp_sched *s);
/* One step: the sample at the next timestep from the model output eps at
 * timestep t and the current sample x. noise: N(0, 1) of x's shape when
 * osp_sched_step_needs_noise() said so, otherwise ignored (may be NULL).
 * The scheduler may keep references to eps and x (treat them as read-only
 * afterwards). After a failed step (NULL + osp error) call osp_sched_reset
 * before stepping again. */
osp_tensor *osp_sched_step(osp_sched *s, osp_tensor *eps, double t, osp_tensor *x,
                           osp_tensor *noise);

#endif
