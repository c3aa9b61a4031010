/* sched.c — scheduler registry and the checks every scheduler shares
 * (sched.h). The math of each scheduler is in its own file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sched_impl.h"

const char *const osp_sched_names[] = {"pndm", "ddim", "ddpm", "euler", "dpmpp", NULL};

static const sched_kind *const kinds[] = {&sched_pndm, &sched_ddim, &sched_ddpm, &sched_euler,
                                          &sched_dpmpp};

osp_sched *osp_sched_create(const char *name)
{
    const sched_kind *kind = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (name && strcasecmp(name, kinds[i]->name) == 0)
            kind = kinds[i];
    if (!kind) {
        osp_error(OSP_ERR_USAGE, "unknown scheduler '%s' (expected pndm, ddim, ddpm, euler or dpmpp)",
                  name ? name : "(null)");
        return NULL;
    }
    osp_sched *s = calloc(1, sizeof *s);
    if (!s) {
        osp_error_nomem("scheduler", sizeof *s);
        return NULL;
    }
    s->kind = kind;
    s->init_noise_sigma = 1.0f;
    osp_noise_schedule_init(&s->ns);
    return s;
}

static void release_state(osp_sched *s)
{
    for (int i = 0; i < SCHED_MAX_STATE; i++) {
        osp_release(s->state[i]);
        s->state[i] = NULL;
    }
    s->n_history = 0;
}

void osp_sched_free(osp_sched *s)
{
    if (!s)
        return;
    release_state(s);
    free(s->timesteps);
    free(s->sigmas);
    free(s);
}

const char *osp_sched_name(const osp_sched *s) { return s->kind->name; }
const osp_noise_schedule *osp_sched_noise_schedule(const osp_sched *s) { return &s->ns; }
int osp_sched_min_steps(const osp_sched *s) { return s->kind->min_steps; }
int osp_sched_count(const osp_sched *s) { return s->count; }
osp_dtype osp_sched_timestep_dtype(const osp_sched *s) { return s->kind->timestep_dtype; }
const float *osp_sched_sigmas(const osp_sched *s) { return s->sigmas; }
float osp_sched_init_noise_sigma(const osp_sched *s) { return s->init_noise_sigma; }
int osp_sched_index(const osp_sched *s) { return s->index; }

double osp_sched_timestep(const osp_sched *s, int i)
{
    return i >= 0 && i < s->count ? s->timesteps[i] : NAN;
}

osp_status osp_sched_set_timesteps(osp_sched *s, int n)
{
    if (n < s->kind->min_steps || n > OSP_SCHED_TRAIN_STEPS)
        return osp_error(OSP_ERR_USAGE, "%s scheduler: %d steps (expected %d to %d)", s->kind->name,
                         n, s->kind->min_steps, OSP_SCHED_TRAIN_STEPS);
    /* PNDM's 9 extra warm-up entries are the most any layout adds. */
    double *ts = malloc(sizeof *ts * (size_t)(n + 9));
    float *sig = s->kind->has_sigmas ? malloc(sizeof *sig * (size_t)(n + 1)) : NULL;
    if (!ts || (s->kind->has_sigmas && !sig)) {
        free(ts);
        free(sig);
        return osp_error_nomem("scheduler timesteps", sizeof *ts * (size_t)(n + 9));
    }
    free(s->timesteps);
    free(s->sigmas);
    s->timesteps = ts;
    s->sigmas = sig;
    s->n = n;
    s->count = 0;
    s->init_noise_sigma = 1.0f;
    s->kind->layout(s);
    osp_sched_reset(s);
    return OSP_OK;
}

void osp_sched_reset(osp_sched *s)
{
    release_state(s);
    s->index = 0;
}

/* The step about to be taken must exist and be at timestep t. */
static osp_status check_current(const osp_sched *s, const char *what, double t)
{
    if (s->count == 0)
        return osp_error(OSP_ERR_RUNTIME, "%s scheduler: %s before set_timesteps",
                         s->kind->name, what);
    if (s->index >= s->count)
        return osp_error(OSP_ERR_RUNTIME, "%s scheduler: %s after the last of %d steps",
                         s->kind->name, what, s->count);
    if (t != s->timesteps[s->index])
        return osp_error(OSP_ERR_RUNTIME,
                         "%s scheduler: %s at timestep %g, but step %d of %d is at timestep %g",
                         s->kind->name, what, t, s->index + 1, s->count, s->timesteps[s->index]);
    return OSP_OK;
}

osp_tensor *osp_sched_scale_model_input(osp_sched *s, osp_tensor *x, double t)
{
    if (!x)
        return NULL;
    if (check_current(s, "scale_model_input", t))
        return NULL;
    if (!s->kind->scale_model_input)
        return x;
    return s->kind->scale_model_input(s, x);
}

bool osp_sched_step_needs_noise(const osp_sched *s)
{
    return s->kind->needs_noise && s->index < s->count && s->kind->needs_noise(s);
}

osp_tensor *osp_sched_step(osp_sched *s, osp_tensor *eps, double t, osp_tensor *x,
                           osp_tensor *noise)
{
    if (!eps || !x)
        return NULL;
    if (check_current(s, "step", t))
        return NULL;
    char a[64], b[64];
    if (!osp_dtype_is_float(eps->dtype) || !osp_dtype_is_float(x->dtype)) {
        osp_error(OSP_ERR_DATA, "%s scheduler: model output (%s) and sample (%s) must be float",
                  s->kind->name, osp_dtype_name(eps->dtype), osp_dtype_name(x->dtype));
        return NULL;
    }
    if (!osp_same_shape(eps, x)) {
        osp_error(OSP_ERR_DATA, "%s scheduler: model output %s and sample %s differ in shape",
                  s->kind->name, osp_shape_str(eps, a, sizeof a), osp_shape_str(x, b, sizeof b));
        return NULL;
    }
    bool needs_noise = osp_sched_step_needs_noise(s);
    if (needs_noise && !noise) {
        osp_error(OSP_ERR_RUNTIME, "%s scheduler: step %d at timestep %g needs a noise tensor",
                  s->kind->name, s->index + 1, t);
        return NULL;
    }
    if (needs_noise && !osp_same_shape(noise, x)) {
        osp_error(OSP_ERR_DATA, "%s scheduler: noise %s and sample %s differ in shape",
                  s->kind->name, osp_shape_str(noise, a, sizeof a), osp_shape_str(x, b, sizeof b));
        return NULL;
    }
    osp_tensor *out = s->kind->step(s, eps, x, needs_noise ? noise : NULL);
    if (out)
        s->index++;
    return out;
}

/* ---- helpers for the scheduler files ---- */

void sched_keep(osp_sched *s, int i, osp_tensor *t)
{
    osp_retain(t);
    osp_release(s->state[i]);
    s->state[i] = t;
}

int sched_leading(int n, int j) { return j * (OSP_SCHED_TRAIN_STEPS / n); }

void sched_layout_leading(osp_sched *s)
{
    for (int i = 0; i < s->n; i++)
        s->timesteps[i] = sched_leading(s->n, s->n - 1 - i);
    s->count = s->n;
}

float sched_alpha_prev(const osp_sched *s, int t_prev, float final)
{
    return t_prev >= 0 ? s->ns.alphas_cumprod[t_prev] : final;
}

osp_tensor *sched_mul(osp_tensor *x, float c) { return osp_scale_shift(x, c, 0.0f); }

osp_tensor *sched_div(osp_tensor *x, float c)
{
    if (!x)
        return NULL;
    return osp_div(x, osp_full(OSP_F32, 0, NULL, x->storage->device, c));
}

osp_tensor *sched_lincomb(float a, osp_tensor *x, float b, osp_tensor *y)
{
    return osp_add(sched_mul(x, a), sched_mul(y, b));
}
