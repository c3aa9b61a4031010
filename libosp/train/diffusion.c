/* diffusion.c — the training schedule and the hybrid loss (see diffusion.h;
 * spec/training.md §2.1-2.2). Float32 arithmetic follows the reference's
 * tensor expressions term by term; means accumulate in double. */
#include "diffusion.h"

#include <math.h>
#include <string.h>

#include "backend/ops.h"

#define BETA_START 1e-4
#define BETA_END 0.02
#define BIN_HALF_WIDTH (1.0f / 255.0f) /* the decoder NLL's 8-bit bins */
#define GELU_K 0.7978845608028654f     /* sqrt(2 / pi), rounded to float */
#define GELU_C 0.044715f

void osp_diffusion_init(osp_diffusion *d)
{
    enum { N = OSP_DIFFUSION_STEPS };
    /* numpy linspace in float64, then the respacing wrapper re-derives the
     * betas from the cumulative product (all steps kept). */
    double step = (BETA_END - BETA_START) / (N - 1), prod = 1.0, prev = 1.0;
    for (int i = 0; i < N; i++) {
        double beta0 = i == N - 1 ? BETA_END : i * step + BETA_START;
        prod *= 1.0 - beta0;
        d->betas[i] = 1.0 - prod / prev;
        prev = prod;
    }
    prod = 1.0;
    for (int i = 0; i < N; i++) {
        double beta = d->betas[i], ac_prev = prod;
        prod *= 1.0 - beta;
        d->alphas_cumprod[i] = prod;
        d->alphas_cumprod_prev[i] = ac_prev;
        d->log_betas[i] = log(beta);
        d->sqrt_alphas_cumprod[i] = sqrt(prod);
        d->sqrt_one_minus_alphas_cumprod[i] = sqrt(1.0 - prod);
        d->sqrt_recip_alphas_cumprod[i] = sqrt(1.0 / prod);
        d->sqrt_recipm1_alphas_cumprod[i] = sqrt(1.0 / prod - 1.0);
        d->posterior_variance[i] = beta * (1.0 - ac_prev) / (1.0 - prod);
        d->posterior_mean_coef1[i] = beta * sqrt(ac_prev) / (1.0 - prod);
        d->posterior_mean_coef2[i] = (1.0 - ac_prev) * sqrt(1.0 - beta) / (1.0 - prod);
    }
    for (int i = 0; i < N; i++)
        d->posterior_log_variance_clipped[i] =
            log(d->posterior_variance[i == 0 ? 1 : i]); /* β̃_0 = 0: use β̃_1 */
}

/* ---- shape checks ---- */

static osp_status check_t(const int64_t *t, int64_t B)
{
    for (int64_t b = 0; b < B; b++)
        if (t[b] < 0 || t[b] >= OSP_DIFFUSION_STEPS)
            return osp_error(OSP_ERR_DATA, "timestep %lld of sample %lld is outside [0, %d]",
                             (long long)t[b], (long long)b, OSP_DIFFUSION_STEPS - 1);
    return OSP_OK;
}

static osp_status check_f32(const osp_tensor *x, const char *what)
{
    if (!x)
        return osp_error_code() ? osp_error_code()
                                : osp_error(OSP_ERR_RUNTIME, "diffusion loss: no %s", what);
    if (x->dtype != OSP_F32 || x->storage->device != OSP_DEVICE_CPU || x->ndim < 2)
        return osp_error(OSP_ERR_DATA, "diffusion loss: %s must be a float32 host tensor "
                                       "[B, C, ...]", what);
    return OSP_OK;
}

/* out must be like x0 with `factor` times its channels. */
static osp_status check_like(const osp_tensor *x0, const osp_tensor *out, int64_t factor,
                             const char *what)
{
    bool ok = out->ndim == x0->ndim && out->shape[1] == factor * x0->shape[1];
    for (int i = 0; ok && i < x0->ndim; i++)
        ok = i == 1 || out->shape[i] == x0->shape[i];
    char a[96], b[96];
    if (!ok)
        return osp_error(OSP_ERR_DATA, "diffusion loss: %s has shape %s, expected the shape of "
                         "x0 %s%s", what, osp_shape_str(out, a, sizeof a),
                         osp_shape_str(x0, b, sizeof b), factor == 2 ? " with twice the channels"
                                                                     : "");
    return OSP_OK;
}

osp_tensor *osp_diffusion_q_sample(const osp_diffusion *d, osp_tensor *x0, osp_tensor *noise,
                                   const int64_t *t)
{
    if (check_f32(x0, "x0") || check_f32(noise, "noise") || check_like(x0, noise, 1, "noise") ||
        check_t(t, x0->shape[0]))
        return NULL;
    x0 = osp_contiguous(x0);
    noise = osp_contiguous(noise);
    osp_tensor *xt = osp_tensor_new(OSP_F32, x0->ndim, x0->shape, OSP_DEVICE_CPU);
    if (!x0 || !noise || !xt)
        return NULL;
    int64_t B = x0->shape[0], n = osp_numel(x0) / B;
    const float *px = osp_f32(x0), *pe = osp_f32(noise);
    float *po = osp_f32(xt);
    for (int64_t b = 0; b < B; b++) {
        float c1 = (float)d->sqrt_alphas_cumprod[t[b]];
        float c2 = (float)d->sqrt_one_minus_alphas_cumprod[t[b]];
        for (int64_t i = b * n; i < (b + 1) * n; i++)
            po[i] = c1 * px[i] + c2 * pe[i];
    }
    return xt;
}

/* ---- the loss ---- */

/* The reference's tanh approximation of the normal CDF; *th keeps the
 * tanh (its derivative needs it). */
static float approx_cdf(float z, float *th)
{
    *th = tanhf(GELU_K * (z + GELU_C * (z * z * z)));
    return 0.5f * (1.0f + *th);
}

static double approx_pdf(float z, float th)
{
    return 0.5 * (1.0 - (double)th * th) * GELU_K * (1.0 + 3.0 * GELU_C * (double)z * z);
}

/* Decoder NLL of one element: returns -log p, sets *dlogp_dL2. */
static float decoder_nll(float x, float mean, float L2, double *dlogp_dL2)
{
    float s = expf(-(0.5f * L2)), d = x - mean;
    float up = s * (d + BIN_HALF_WIDTH), um = s * (d - BIN_HALF_WIDTH), tp, tm;
    float cp = approx_cdf(up, &tp), cm = approx_cdf(um, &tm);
    double dcp = approx_pdf(up, tp) * (d + BIN_HALF_WIDTH); /* d cp / d s */
    double dcm = approx_pdf(um, tm) * (d - BIN_HALF_WIDTH);
    float arg;
    double dlogp_ds;
    if (x < -0.999f) {
        arg = cp;
        dlogp_ds = dcp / cp;
    } else if (x > 0.999f) {
        arg = 1.0f - cm;
        dlogp_ds = -dcm / arg;
    } else {
        arg = cp - cm;
        dlogp_ds = (dcp - dcm) / arg;
    }
    if (arg < 1e-12f) { /* the clamp: log(1e-12), no gradient */
        arg = 1e-12f;
        dlogp_ds = 0.0;
    }
    *dlogp_dL2 = dlogp_ds * (-0.5 * s);
    return -logf(arg);
}

static float *opt_data(osp_tensor *t) { return t ? osp_f32(t) : NULL; }

/* The optional outputs must be contiguous f32 host tensors shaped like x0. */
static osp_status check_outputs(const osp_diffusion_terms *terms, const osp_tensor *x0)
{
    const osp_tensor *outs[] = {terms->pred_xstart, terms->model_mean, terms->model_log_variance,
                                terms->true_mean, terms->true_log_variance};
    for (size_t i = 0; i < sizeof outs / sizeof *outs; i++)
        if (outs[i] && (check_f32(outs[i], "an output") || !osp_is_contiguous(outs[i]) ||
                        !osp_same_shape(outs[i], x0)))
            return osp_error(OSP_ERR_RUNTIME, "diffusion loss: an output tensor is not a "
                                              "contiguous float32 tensor shaped like x0");
    return OSP_OK;
}

static void put(float *p, int64_t i, float v)
{
    if (p)
        p[i] = v;
}

osp_status osp_diffusion_loss(const osp_diffusion *d, osp_tensor *x0, osp_tensor *noise,
                              const int64_t *t, osp_tensor *model_output,
                              osp_diffusion_terms *terms, osp_tensor *grad, double grad_scale)
{
    if (check_f32(model_output, "model output") || check_f32(x0, "x0") ||
        check_like(x0, model_output, 2, "the model output"))
        return osp_error_code();
    if (grad && (check_f32(grad, "gradient") || check_like(x0, grad, 2, "the gradient") ||
                 !osp_is_contiguous(grad)))
        return osp_error_code() ? osp_error_code()
                                : osp_error(OSP_ERR_RUNTIME, "diffusion loss: strided gradient");
    if (check_outputs(terms, x0))
        return osp_error_code();
    osp_pool_push();
    osp_tensor *xt = osp_diffusion_q_sample(d, x0, noise, t);
    x0 = osp_contiguous(x0);
    noise = osp_contiguous(noise);
    osp_tensor *out = osp_contiguous(model_output);
    if (!xt || !x0 || !noise || !out) {
        osp_pool_pop();
        return osp_error_code();
    }
    int64_t B = x0->shape[0], n = osp_numel(x0) / B;
    const float *px = osp_f32(x0), *pe = osp_f32(noise), *pt = osp_f32(xt), *po = osp_f32(out);
    float *g = grad ? osp_f32(grad) : NULL;
    float *o_px0 = opt_data(terms->pred_xstart), *o_mm = opt_data(terms->model_mean);
    float *o_mlv = opt_data(terms->model_log_variance), *o_tm = opt_data(terms->true_mean);
    float *o_tlv = opt_data(terms->true_log_variance);
    double total = 0.0;
    for (int64_t b = 0; b < B; b++) {
        int64_t s = t[b];
        float k1 = (float)d->posterior_mean_coef1[s], k2 = (float)d->posterior_mean_coef2[s];
        float L1 = (float)d->posterior_log_variance_clipped[s];
        float r1 = (float)d->sqrt_recip_alphas_cumprod[s];
        float r2 = (float)d->sqrt_recipm1_alphas_cumprod[s];
        float max_log = (float)d->log_betas[s];
        const float *eps_hat = po + b * 2 * n, *v = eps_hat + n;
        double g_b = grad_scale / (double)B; /* d loss_mean / d loss_b */
        double g_vb = g_b / ((double)n * M_LN2), dL2_dv = 0.5 * ((double)max_log - L1);
        double sq = 0.0, vb = 0.0;
        for (int64_t j = 0; j < n; j++) {
            int64_t i = b * n + j;
            float diff = pe[i] - eps_hat[j];
            sq += (double)(diff * diff);
            float mu1 = k1 * px[i] + k2 * pt[i];
            float x0_hat = r1 * pt[i] - r2 * eps_hat[j];
            float mu2 = k1 * x0_hat + k2 * pt[i];
            float frac = (v[j] + 1.0f) / 2.0f;
            float L2 = frac * max_log + (1.0f - frac) * L1;
            double dvb_dL2;
            if (s > 0) {
                float dm = mu1 - mu2;
                float kl = 0.5f * (-1.0f + L2 - L1 + expf(L1 - L2) + dm * dm * expf(-L2));
                vb += kl;
                dvb_dL2 = 0.5 * (1.0 - exp((double)L1 - L2) - (double)dm * dm * exp(-(double)L2));
            } else {
                double dlogp;
                vb += decoder_nll(px[i], mu2, L2, &dlogp);
                dvb_dL2 = -dlogp;
            }
            if (g) {
                g[b * 2 * n + j] = (float)(-2.0 * diff * g_b / (double)n);
                g[b * 2 * n + n + j] = (float)(g_vb * dvb_dL2 * dL2_dv);
            }
            put(o_px0, i, x0_hat);
            put(o_mm, i, mu2);
            put(o_mlv, i, L2);
            put(o_tm, i, mu1);
            put(o_tlv, i, L1);
        }
        float mse = (float)(sq / (double)n), vbf = (float)(vb / (double)n) / (float)M_LN2;
        float loss = mse + vbf;
        if (terms->mse)
            terms->mse[b] = mse;
        if (terms->vb)
            terms->vb[b] = vbf;
        if (terms->loss)
            terms->loss[b] = loss;
        total += loss;
    }
    terms->loss_mean = total / (double)B;
    osp_pool_pop();
    return OSP_OK;
}
