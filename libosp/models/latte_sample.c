/* latte_sample.c — text context, classifier-free guidance and the
 * denoising loop of VideoGenPipeline (spec/sampling.md §1.2-§1.3). */
#include "latte_impl.h"

#include <math.h>

/* Number of real tokens of mask row b (entries > 0). */
static osp_status real_tokens(osp_tensor *mask, int64_t b, int64_t *keep)
{
    osp_tensor *m = osp_tensor_to_dtype(osp_to_device(mask, OSP_DEVICE_CPU), OSP_F32);
    if (!m)
        return osp_error_code();
    int64_t L = mask->shape[1], n = 0;
    const float *row = osp_f32(m) + b * L;
    for (int64_t j = 0; j < L; j++)
        n += row[j] > 0.5f;
    *keep = n;
    return OSP_OK;
}

osp_status osp_latte_prompt_context(osp_tensor *embedding, osp_tensor *mask,
                                    osp_tensor *null_embedding, int64_t b, osp_tensor **cond,
                                    osp_tensor **uncond)
{
    char s1[96], s2[96];
    *cond = *uncond = NULL;
    if (!embedding)
        return osp_error_code() ? osp_error_code() : osp_error(OSP_ERR_DATA, "no embedding");
    if (embedding->ndim != 3 || b < 0 || b >= embedding->shape[0])
        return osp_error(OSP_ERR_DATA, "embedding must be [B, L, D] with prompt %lld, got %s",
                         (long long)b, osp_shape_str(embedding, s1, sizeof s1));
    int64_t L = embedding->shape[1], D = embedding->shape[2], keep = L;
    if (mask) {
        if (mask->ndim != 2 || mask->shape[0] != embedding->shape[0] || mask->shape[1] != L)
            return osp_error(OSP_ERR_DATA, "mask %s does not fit embedding %s",
                             osp_shape_str(mask, s1, sizeof s1),
                             osp_shape_str(embedding, s2, sizeof s2));
        if (real_tokens(mask, b, &keep))
            return osp_error_code();
        if (keep == 0)
            return osp_error(OSP_ERR_DATA, "prompt %lld has no real token in its mask",
                             (long long)b);
    }
    *cond = osp_slice(osp_slice(embedding, 0, b, b + 1, 1), 1, 0, keep, 1);
    if (null_embedding) {
        if (null_embedding->ndim != 3 || null_embedding->shape[0] != 1 ||
            null_embedding->shape[2] != D || null_embedding->shape[1] < keep)
            return osp_error(OSP_ERR_DATA, "null_embedding must be [1, >= %lld, %lld] to match "
                             "prompt %lld, got %s", (long long)keep, (long long)D, (long long)b,
                             osp_shape_str(null_embedding, s1, sizeof s1));
        *uncond = osp_slice(null_embedding, 1, 0, keep, 1);
    }
    return *cond && (!null_embedding || *uncond) ? OSP_OK : osp_error_code();
}

/* [value, value, ...] (n entries) of the scheduler's timestep dtype. */
static osp_tensor *timesteps(double t, int64_t n, osp_dtype dtype, osp_device device)
{
    osp_tensor *ts = osp_tensor_new(dtype, 1, &n, OSP_DEVICE_CPU);
    if (!ts)
        return NULL;
    for (int64_t i = 0; i < n; i++) {
        if (dtype == OSP_I64)
            ((int64_t *)osp_data(ts))[i] = (int64_t)t;
        else
            osp_f32(ts)[i] = (float)t;
    }
    return osp_to_device(ts, device);
}

osp_tensor *osp_latte_guided_eps(osp_latte *m, osp_tensor *x, double t, osp_dtype t_dtype,
                                 osp_tensor *cond, osp_tensor *uncond, double guidance)
{
    bool guided = guidance > 1.0;
    if (!x || !cond || (guided && !uncond)) {
        if (!osp_error_code())
            osp_error(OSP_ERR_DATA, "guidance %g needs the null (negative) text embedding",
                      guidance);
        return NULL;
    }
    if (t_dtype != OSP_I64 && t_dtype != OSP_F32) {
        osp_error(OSP_ERR_RUNTIME, "timestep dtype %s", osp_dtype_name(t_dtype));
        return NULL;
    }
    const osp_latte_config *cfg = osp_latte_get_config(m);
    int64_t C = cfg->in_channels;
    if (cfg->out_channels != C && cfg->out_channels != 2 * C) {
        osp_error(OSP_ERR_DATA, "out_channels %d is neither in_channels nor twice it: no noise "
                  "prediction to split off", cfg->out_channels);
        return NULL;
    }
    osp_pool_push();
    osp_tensor *xs[2] = {x, x}, *ctx[2] = {uncond, cond};
    /* image mode (temporal blocks off) for one latent frame, as --force_images */
    osp_latte_input in = {
        .x = guided ? osp_concat(2, xs, 0) : x,
        .timestep = timesteps(t, guided ? 2 : 1, t_dtype, x->storage->device),
        .context = guided ? osp_concat(2, ctx, 0) : cond,
        .temporal = x->ndim != 5 || x->shape[2] != 1 || cfg->video_length == 1,
    };
    osp_tensor *out = in.x && in.timestep && in.context ? osp_latte_forward(m, &in) : NULL;
    if (out && guided) {
        osp_tensor *u = osp_slice(out, 0, 0, 1, 1), *c = osp_slice(out, 0, 1, 2, 1);
        out = osp_add(u, osp_scale_shift(osp_sub(c, u), (float)guidance, 0.0f));
    }
    /* learned sigma: the noise prediction is the first half of the channels */
    return osp_pool_pop_keep(osp_contiguous(osp_slice(out, 1, 0, C, 1)));
}

osp_tensor *osp_latte_sample(osp_latte *m, const osp_latte_sampling *s, osp_tensor *noise,
                             osp_tensor *cond, osp_tensor *uncond)
{
    if (!noise || !cond)
        return NULL;
    osp_sched *sched = s->sched;
    osp_sched_reset(sched);
    osp_dtype t_dtype = osp_sched_timestep_dtype(sched);
    /* x is an owned reference, so each step's temporaries go with its pool */
    osp_tensor *x = osp_retain(osp_scale_shift(noise, osp_sched_init_noise_sigma(sched), 0.0f));
    for (int i = 0; x && i < osp_sched_count(sched); i++) {
        osp_pool_push();
        double t = osp_sched_timestep(sched, i);
        osp_tensor *in = osp_sched_scale_model_input(sched, x, t);
        osp_tensor *eps = osp_latte_guided_eps(m, in, t, t_dtype, cond, uncond, s->guidance);
        /* (without a noise source, a step that needs one fails in the scheduler) */
        osp_tensor *z = NULL;
        if (eps && s->step_noise && osp_sched_step_needs_noise(sched) &&
            !(z = s->step_noise(s->step_noise_ctx, i, x)))
            eps = NULL; /* keeps the noise source's error */
        osp_tensor *next = osp_retain(osp_sched_step(sched, eps, t, x, z));
        if (next && s->on_step)
            s->on_step(s->on_step_ctx, i, next);
        osp_pool_pop();
        osp_release(x);
        x = next;
    }
    return osp_autorelease(x);
}
