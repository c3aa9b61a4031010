/* test_vae_step.c — the generator half of a CausalVideoVAE training step
 * (train/vae_step.h) against PyTorch (tests/data/vae_step/make.py: the
 * fixture VAE in bench/torch_vae.py, autograd): the loss terms, the
 * adaptive weight d_weight and the gradients of L_G, with a stand-in
 * perceptual term (per-frame mean squared error) and a stand-in
 * adversarial term (-mean(X̂·C), a linear "discriminator"). */
#include "backend/ops.h"
#include "fixture.h"
#include "io/safetensors.h"
#include "nn/params.h"
#include "test.h"
#include "train/tape.h"
#include "train/vae_step.h"

#include <math.h>
#include <stdio.h>

#define EXPECTED "tests/data/vae_step/expected.safetensors"

static const char *const checked[] = {
    "encoder.conv_in.conv.weight", "encoder.norm_out.weight",  "quant_conv.conv.bias",
    "decoder.conv_out.conv.weight", "decoder.norm_out.bias",
    "decoder.mid.block_1.conv1.conv.weight",
};

static osp_tensor *mean_all(osp_tensor *t)
{
    int axes[OSP_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++)
        axes[i] = i;
    return osp_mean(t, t->ndim, axes, false);
}

/* P: the per-frame mean of (X - X̂)² over (c, h, w), [M]. */
static osp_tensor *perceptual(void *ctx, osp_tensor *x, osp_tensor *xr)
{
    (void)ctx;
    return osp_mean(osp_square(osp_sub(x, xr)), 3, (const int[]){1, 2, 3}, false);
}

/* -mean(X̂·C) */
static osp_tensor *adversarial(void *ctx, osp_tensor *xr)
{
    return osp_scale_shift(mean_all(osp_mul(xr, ctx)), -1.0f, 0.0f);
}

static bool near(const char *what, double got, osp_tensor *want, double rel)
{
    double w = want ? (double)osp_f32(want)[0] : 0.0 / 0.0;
    bool ok = fabs(got - w) <= rel * fmax(1.0, fabs(w));
    printf("#   %s: %.9g vs %.9g%s\n", what, got, w, ok ? "" : "  MISMATCH");
    return ok;
}

static osp_tensor *get(osp_safetensors *st, const char *name)
{
    osp_tensor *t = st ? osp_tensor_to_dtype(osp_safetensors_get(st, name), OSP_F32) : NULL;
    if (!t)
        printf("#   %s: %s\n", name, osp_error_message());
    return t;
}

TEST(generator_step_matches_pytorch)
{
    osp_vae *v = osp_vae_load(fixture_path("vae/model"), OSP_DEVICE_CPU);
    osp_safetensors *st = osp_safetensors_open(EXPECTED);
    CHECK(v && st);
    if (!v || !st)
        goto done;
    osp_params *p = osp_vae_params(v);
    for (size_t i = 0; i < p->n; i++)
        osp_requires_grad(p->tensors[i]);
    osp_vae_gen_opts o = {
        .kl_weight = 1e-6, .perceptual_weight = 0.7, .disc_weight = 0.5, .adversarial_on = true,
        .perceptual = perceptual, .adversarial = adversarial, .adversarial_ctx = get(st, "c"),
    };
    osp_vae_gen_terms t;
    osp_tensor *xr = NULL;
    CHECK(osp_vae_generator_backward(v, get(st, "x"), get(st, "eps"), &o, &xr, &t) == OSP_OK);
    CHECK(xr && xr->ndim == 4 && xr->shape[0] == 10 && !xr->requires_grad);
    CHECK(near("nll_loss", t.nll_loss, get(st, "nll_loss"), 1e-5));
    CHECK(near("kl_loss", t.kl_loss, get(st, "kl_loss"), 1e-5));
    CHECK(near("g_loss", t.g_loss, get(st, "g_loss"), 1e-4));
    CHECK(near("d_weight", t.d_weight, get(st, "d_weight"), 1e-4));
    CHECK(near("total", t.total, get(st, "total"), 1e-5));
    for (size_t i = 0; i < sizeof checked / sizeof *checked; i++) {
        char key[128];
        snprintf(key, sizeof key, "grad.%s", checked[i]);
        osp_tensor *w = osp_params_find(p, checked[i]);
        CHECK(w && w->grad);
        if (w && w->grad)
            CHECK(fixture_close(key, w->grad, get(st, key), 2e-4));
    }
    /* with the adversarial term off, d_weight is still computed and the
     * gradients are those of nll + kw·kl alone */
    for (size_t i = 0; i < p->n; i++)
        osp_zero_grad(p->tensors[i]);
    o.adversarial_on = false;
    CHECK(osp_vae_generator_backward(v, get(st, "x"), get(st, "eps"), &o, NULL, &t) == OSP_OK);
    CHECK(near("d_weight (off)", t.d_weight, get(st, "d_weight"), 1e-4));
    CHECK(near("total (off)", t.total + 0.0,
               osp_scale_shift(osp_add(get(st, "nll_loss"),
                                       osp_scale_shift(get(st, "kl_loss"), 1e-6f, 0.0f)),
                               1.0f, 0.0f),
               1e-5));
    for (size_t i = 0; i < p->n; i++) {
        p->tensors[i]->requires_grad = false;
        osp_zero_grad(p->tensors[i]);
    }
done:
    osp_safetensors_close(st);
    osp_vae_free(v);
}

int main(void)
{
    RUN(generator_step_matches_pytorch);
    return test_summary();
}
