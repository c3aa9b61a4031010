/* sched_impl.h — what the scheduler files share (not part of the public
 * interface, see sched.h).
 *
 * sched.c owns the generic half: creation by name, the timestep table,
 * argument and step-order checks, state lifetime. Each scheduler file fills
 * one sched_kind: how to lay out the timesteps for N steps and how to take
 * one step. */
#ifndef OSP_SCHED_IMPL_H
#define OSP_SCHED_IMPL_H

#include "backend/ops.h"
#include "sched.h"

/* Tensors a scheduler keeps between steps (PNDM: history + RK sum + the
 * sample at the start of an RK group; DPM++: the previous data prediction). */
#define SCHED_MAX_STATE 6

typedef struct sched_kind {
    const char *name;
    int min_steps;
    osp_dtype timestep_dtype;
    bool has_sigmas; /* keeps a table of count + 1 noise levels */
    /* Fills s->timesteps[0..count) (room for n + 9), s->count, and with
     * has_sigmas s->sigmas[0..count] (room for n + 1); may change
     * s->init_noise_sigma (preset to 1). s->n is already set. */
    void (*layout)(osp_sched *s);
    /* NULL: the model input is the sample itself. */
    osp_tensor *(*scale_model_input)(osp_sched *s, osp_tensor *x);
    /* Step s->index (arguments already checked); may replace s->state. */
    osp_tensor *(*step)(osp_sched *s, osp_tensor *eps, osp_tensor *x, osp_tensor *noise);
    bool (*needs_noise)(const osp_sched *s); /* NULL: never */
} sched_kind;

struct osp_sched {
    const sched_kind *kind;
    osp_noise_schedule ns;
    int n;             /* inference steps (0 before set_timesteps) */
    int count;         /* timestep entries = model calls */
    double *timesteps; /* count */
    float *sigmas;     /* count + 1, or NULL */
    float init_noise_sigma;
    int index;         /* steps taken */
    osp_tensor *state[SCHED_MAX_STATE]; /* owned references or NULL */
    int n_history;     /* PNDM: model outputs held in state[0..n_history) */
};

extern const sched_kind sched_pndm, sched_ddim, sched_ddpm, sched_euler, sched_dpmpp;

/* Replaces state slot i with t (retained; the old one released). */
void sched_keep(osp_sched *s, int i, osp_tensor *t);

/* "leading" spacing: entry j (0 <= j < n) = j * (1000 / n), ascending. */
int sched_leading(int n, int j);
/* DDIM/DDPM layout: the n leading entries, descending. */
void sched_layout_leading(osp_sched *s);
/* ā[t_prev], or `final` when t_prev < 0 (the step past t = 0). */
float sched_alpha_prev(const osp_sched *s, int t_prev, float final);

/* Elementwise helpers (float32 in the reference's rounding: c * x is one
 * rounding, x / c a true division). NULL-safe like all ops. */
osp_tensor *sched_mul(osp_tensor *x, float c);
osp_tensor *sched_div(osp_tensor *x, float c);
/* a * x + b * y, each product rounded, then the sum. */
osp_tensor *sched_lincomb(float a, osp_tensor *x, float b, osp_tensor *y);

#endif
