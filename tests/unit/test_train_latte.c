/* test_train_latte.c — LatteT2V through the training path (train/dit_step.h)
 * on fixtures/latte/tiny_a: the joint image-video training case (n_img = 2)
 * forward on the tape against the reference, every trainable parameter
 * receiving a finite gradient, a whole-model finite-difference check of
 * the joint forward (the latent and parameters from every part of the
 * network), and a micro-step's accumulation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "fixture.h"
#include "gradcheck.h"
#include "io/safetensors.h"
#include "models/latte.h"
#include "nn/params.h"
#include "test.h"
#include "train/dit_step.h"
#include "train/tape.h"

#define TOL_OUT 1e-4 /* fixtures/latte README */

static osp_latte *load_tiny(void)
{
    osp_latte *m = osp_latte_load(fixture_path("latte/tiny_a"), OSP_DEVICE_CPU, false);
    if (!m)
        printf("#   loading latte/tiny_a: %s\n", osp_error_message());
    return m;
}

static bool finite_tensor(const osp_tensor *t)
{
    for (int64_t i = 0; t && i < osp_numel(t); i++)
        if (!isfinite(osp_f32(t)[i]))
            return false;
    return t != NULL;
}

TEST(joint_images_training_path)
{
    osp_latte *m = load_tiny();
    if (!m) {
        CHECK(false);
        return;
    }
    const char *in = "latte/tiny_a/joint_images_in.safetensors";
    const char *out = "latte/tiny_a/joint_images_out.safetensors";
    osp_safetensors *st = osp_safetensors_open(fixture_path(in));
    const char *n_img_s = st ? osp_safetensors_metadata(st, "use_image_num") : NULL;
    int n_img = n_img_s ? atoi(n_img_s) : -1;
    osp_tensor *tt = st ? osp_tensor_to_dtype(osp_safetensors_get(st, "timestep"), OSP_I64) : NULL;
    osp_safetensors_close(st);
    osp_dit_params params;
    CHECK(n_img > 0 && tt && osp_dit_params_init(m, &params) == OSP_OK);
    if (n_img <= 0 || !tt) {
        osp_latte_free(m);
        return;
    }
    osp_tensor *y = osp_dit_forward(m, fixture_tensor(in, "hidden_states"), osp_data(tt),
                                    fixture_tensor(in, "encoder_hidden_states"),
                                    fixture_tensor(in, "encoder_attention_mask"), n_img);
    osp_tensor *want = fixture_tensor(out, "sample");
    CHECK(y && y->requires_grad && osp_tape_size() > 0);
    double err = y && want ? test_max_abs_diff(y, want) : INFINITY;
    printf("#   joint_images on the tape: max abs error %.3g (tolerance %g)\n", err, TOL_OUT);
    CHECK(err <= TOL_OUT);
    /* backward reaches every trainable parameter, and only those */
    CHECK(y && osp_backward(y, test_random(y->ndim, y->shape, -1, 1)) == OSP_OK);
    CHECK(osp_tape_size() == 0);
    size_t with_grad = 0;
    for (size_t i = 0; i < params.n; i++) {
        bool ok = finite_tensor(params.tensors[i]->grad);
        if (!ok)
            printf("#   %s: no finite gradient\n", params.names[i]);
        with_grad += ok;
    }
    printf("#   %zu of %zu trainable tensors got finite gradients\n", with_grad, params.n);
    CHECK(with_grad == params.n && params.n + 1 == osp_latte_params(m)->n);
    osp_tensor *buffer = osp_params_find(osp_latte_params(m), "caption_projection.y_embedding");
    CHECK(buffer && !buffer->requires_grad && !buffer->grad);
    osp_dit_params_zero_grad(&params);
    osp_dit_params_free(&params);
    osp_latte_free(m);
}

/* ---- whole-model finite differences, joint layout ---- */

typedef struct joint_ctx {
    osp_latte *m;
    osp_tensor *mask;
    int64_t t[1];
} joint_ctx;

/* inputs: x, context, then parameters (used in place by the model) */
static osp_tensor *joint_fn(osp_tensor *const *in, void *ctx)
{
    joint_ctx *c = ctx;
    return osp_dit_forward(c->m, in[0], c->t, in[1], c->mask, 1);
}

static const char *const CHECKED[] = {
    "pos_embed.proj.weight",
    "adaln_single.linear.weight",
    "caption_projection.linear_1.weight",
    "transformer_blocks.0.attn1.to_q.weight",
    "transformer_blocks.1.attn2.to_k.weight",
    "temporal_transformer_blocks.0.attn1.to_v.weight",
    "temporal_transformer_blocks.1.ff.net.2.weight",
    "scale_shift_table",
    "proj_out.weight",
};
enum { N_CHECKED = sizeof CHECKED / sizeof *CHECKED };

TEST(whole_model_gradcheck_joint)
{
    osp_latte *m = load_tiny();
    if (!m) {
        CHECK(false);
        return;
    }
    const uint8_t keep[6] = {1, 1, 0, 1, 0, 0};
    joint_ctx c = {.m = m, .t = {640},
                   .mask = osp_tensor_from_data(OSP_U8, 3, (int64_t[]){1, 2, 3}, keep)};
    /* 5 video frames + 1 image of 2x2 pixels (one token per frame) */
    osp_tensor *in[2 + N_CHECKED] = {
        osp_requires_grad(test_random(5, (int64_t[]){1, 4, 6, 2, 2}, -1, 1)),
        osp_requires_grad(test_random(4, (int64_t[]){1, 2, 3, 32}, -1, 1)),
    };
    for (int i = 0; i < N_CHECKED; i++) {
        in[2 + i] = osp_params_find(osp_latte_params(m), CHECKED[i]);
        CHECK(in[2 + i] != NULL);
        if (!in[2 + i]) {
            osp_latte_free(m);
            return;
        }
        osp_requires_grad(in[2 + i]);
    }
    gradcheck_opts opts = {.eps = 1e-2, .atol = 2e-3, .rtol = 2e-2};
    CHECK(gradcheck("latte joint forward", joint_fn, 2 + N_CHECKED, in, &c, &opts));
    for (int i = 0; i < N_CHECKED; i++)
        in[2 + i]->requires_grad = false;
    osp_latte_free(m);
}

/* ---- a micro-step ---- */

/* Two half-scaled micro-steps on the same batch accumulate exactly the
 * gradient of one full step; the loss is finite and positive. */
TEST(micro_step_accumulates)
{
    osp_latte *m = load_tiny();
    if (!m) {
        CHECK(false);
        return;
    }
    static osp_diffusion d;
    osp_diffusion_init(&d);
    osp_dit_params params;
    CHECK(osp_dit_params_init(m, &params) == OSP_OK);
    int64_t t[2] = {0, 731};
    osp_dit_batch b = {
        .x0 = test_random(5, (int64_t[]){2, 4, 6, 4, 4}, -1, 1),
        .noise = test_random(5, (int64_t[]){2, 4, 6, 4, 4}, -2, 2),
        .context = test_random(4, (int64_t[]){2, 2, 5, 32}, -1, 1),
        .t = t, .n_img = 1,
    };
    osp_diffusion_terms full = {0}, half = {0};
    CHECK(osp_dit_micro_step(m, &d, &b, 1.0, &full) == OSP_OK);
    osp_tensor *w = params.tensors[params.n - 1];
    osp_tensor *g_full = osp_tensor_clone(w->grad);
    osp_dit_params_zero_grad(&params);
    CHECK(osp_dit_micro_step(m, &d, &b, 0.5, &half) == OSP_OK);
    CHECK(osp_dit_micro_step(m, &d, &b, 0.5, &half) == OSP_OK);
    CHECK(g_full && w->grad && test_max_abs_diff(w->grad, g_full) <= 1e-6);
    CHECK(isfinite(full.loss_mean) && full.loss_mean > 0 && half.loss_mean == full.loss_mean);
    printf("#   loss %.6g\n", full.loss_mean);
    /* a latent that does not fit the model is refused, naming it */
    b.x0 = b.noise = test_random(5, (int64_t[]){2, 4, 4, 4, 4}, -1, 1);
    CHECK(osp_dit_micro_step(m, &d, &b, 1.0, &full) == OSP_ERR_DATA);
    CHECK(osp_tape_size() == 0);
    osp_dit_params_zero_grad(&params);
    osp_dit_params_free(&params);
    osp_latte_free(m);
}

int main(void)
{
    RUN(joint_images_training_path);
    RUN(whole_model_gradcheck_joint);
    RUN(micro_step_accumulates);
    return test_summary();
}
