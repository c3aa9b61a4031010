/* test_causalvae.c — the CausalVideoVAE against fixtures/vae (outputs of
 * the reference code): encode, posterior, latent, decode, the middle
 * attention quirk, tiling, float16 weights, and bad model folders. */
#include "fixture.h"
#include "models/causalvae.h"
#include "models/causalvae_blocks.h"
#include "backend/ops.h"
#include "gradcheck.h"
#include "nn/params.h"
#include "test.h"
#include "train/tape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL_MOMENTS 1e-4
#define TOL_DECODED 2e-4

static osp_vae *load(const char *rel)
{
    osp_vae *v = osp_vae_load(fixture_path(rel), OSP_DEVICE_CPU);
    if (!v)
        printf("#   loading %s: %s\n", rel, osp_error_message());
    return v;
}

/* Encode + posterior + decode(mean) for one fixture case folder. */
static void check_case(osp_vae *v, const char *dir, const osp_vae_tiling *tiling)
{
    char in[256], ex[256];
    snprintf(in, sizeof in, "%s/input.safetensors", dir);
    snprintf(ex, sizeof ex, "%s/expected.safetensors", dir);
    osp_tensor *video = fixture_tensor(in, "video");
    osp_tensor *moments = osp_vae_encode(v, video, tiling);
    CHECK(fixture_close("moments", moments, fixture_tensor(ex, "moments"), TOL_MOMENTS));
    osp_tensor *mean = NULL, *logvar = NULL;
    CHECK(osp_vae_posterior(moments, &mean, &logvar) == OSP_OK);
    CHECK(fixture_close("mean", mean, fixture_tensor(ex, "mean"), TOL_MOMENTS));
    CHECK(fixture_close("logvar", logvar, fixture_tensor(ex, "logvar"), TOL_MOMENTS));
    osp_tensor *decoded = osp_vae_decode(v, fixture_tensor(ex, "mean"), tiling);
    CHECK(fixture_close("decoded", decoded, fixture_tensor(ex, "decoded"), TOL_DECODED));
}

TEST(video_9_frames)
{
    osp_vae *v = load("vae/model");
    CHECK(v != NULL);
    if (!v)
        return;
    check_case(v, "vae/video", NULL);
    /* The latent the diffusion model sees, from the fixture's noise. */
    const char *ex = "vae/video/expected.safetensors";
    osp_tensor *z = osp_vae_sample(fixture_tensor(ex, "mean"), fixture_tensor(ex, "logvar"),
                                   fixture_tensor("vae/video/input.safetensors", "noise"));
    CHECK(fixture_close("latent", osp_scale_shift(z, (float)OSP_VAE_LATENT_SCALE, 0),
                        fixture_tensor(ex, "latent"), TOL_MOMENTS));
    osp_vae_free(v);
}

TEST(image_batch_of_two)
{
    osp_vae *v = load("vae/model");
    if (v)
        check_case(v, "vae/image", NULL);
    CHECK(v != NULL);
    osp_vae_free(v);
}

TEST(tiled_encode_and_decode)
{
    osp_vae *v = load("vae/model");
    CHECK(v != NULL);
    if (!v)
        return;
    osp_vae_tiling t = {true, 32, 4, 0.25};
    check_case(v, "vae/tiled", &t);
    /* Untiled on the same input differs (tiling is not exact). */
    osp_tensor *video = fixture_tensor("vae/tiled/input.safetensors", "video");
    CHECK(fixture_close("untiled moments", osp_vae_encode(v, video, NULL),
                        fixture_tensor("vae/tiled/expected.safetensors", "moments_untiled"),
                        TOL_MOMENTS));
    osp_vae_free(v);
}

/* Runs one middle attention block of a fixture model on its recorded input. */
static void check_attention_block(const char *model, const char *prefix, const char *ex,
                                  int64_t channels)
{
    osp_model_dir *dir = osp_model_open(fixture_path(model));
    osp_params p;
    osp_params_init(&p, dir, OSP_DEVICE_CPU);
    vae_attn a;
    char in_key[128], out_key[128];
    snprintf(in_key, sizeof in_key, "dbg.%s.in", prefix);
    snprintf(out_key, sizeof out_key, "dbg.%s.out", prefix);
    CHECK(dir && vae_attn_load(&a, &p, prefix, channels) == OSP_OK);
    if (dir && p.n)
        CHECK(fixture_close(prefix, vae_attn_forward(&a, fixture_tensor(ex, in_key)),
                            fixture_tensor(ex, out_key), TOL_MOMENTS));
    osp_params_free(&p);
    osp_model_close(dir);
}

TEST(attention_regrouping_quirk)
{
    check_attention_block("vae/model", "encoder.mid.attn_1", "vae/video/expected.safetensors", 32);
    check_attention_block("vae/model", "decoder.mid.attn_1", "vae/video/expected.safetensors", 32);
    check_attention_block("vae/wide/model", "encoder.mid.attn_1",
                          "vae/wide/video/expected.safetensors", 64);
}

TEST(wide_model_with_f16_weights)
{
    osp_vae *v = load("vae/wide/model");
    CHECK(v != NULL);
    if (!v)
        return;
    check_case(v, "vae/wide/video", NULL);
    check_case(v, "vae/wide/image", NULL);
    osp_vae_free(v);
}

/* Writes a model folder whose config.json is `config` next to the fixture
 * weights (symlinked); returns the folder path. */
static const char *fake_model(const char *config)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/osp-vae-test-XXXXXX");
    if (!mkdtemp(dir))
        return NULL;
    char path[256], target[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs(config, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    const char *src = fixture_path("vae/model/diffusion_pytorch_model.safetensors");
    if (src[0] == '/')
        snprintf(target, sizeof target, "%s", src);
    else if (getcwd(target, sizeof target))
        snprintf(target + strlen(target), sizeof target - strlen(target), "/%s", src);
    return symlink(target, path) == 0 ? dir : NULL;
}

static void remove_fake(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* The fixture's config.json with `from` replaced by `to` (malloc'd). */
static char *edited_config(const char *from, const char *to)
{
    FILE *f = fopen(fixture_path("vae/model/config.json"), "rb");
    if (!f)
        return NULL;
    static char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *at = strstr(text, from);
    if (!at)
        return NULL;
    char *out = malloc(n + strlen(to) + 1);
    if (out)
        sprintf(out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

TEST(bad_configs_are_rejected_clearly)
{
    static const char *const edits[][3] = {
        {"\"hidden_size\": 32", "\"hidden_size\": 64", "encoder.conv_in.conv.weight"},
        {"\"encoder_attention\": \"AttnBlock3D\"", "\"encoder_attention\": \"AttnBlock3DFix\"",
         "AttnBlock3DFix"},
        {"\"encoder_spatial_downsample\": [\n    \"SpatialDownsample2x\",",
         "\"encoder_spatial_downsample\": [", "3 entries for 4 levels"},
        {"\"num_res_blocks\": 1", "\"num_res_blocks\": 2", "block.1"},
        {"\"encoder_temporal_downsample\": [\n    \"TimeDownsample2x\",\n    \"TimeDownsample2x\",\n    \"\",\n    \"\"",
         "\"encoder_temporal_downsample\": [\"TimeDownsample2x\", \"\", \"\", \"TimeDownsample2x\"",
         "last encoder level"},
        {"\"hidden_size\": 32", "\"hidden_size\": ", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        char *config = edited_config(edits[i][0], edits[i][1]);
        CHECK(config != NULL);
        const char *dir = config ? fake_model(config) : NULL;
        free(config);
        CHECK(dir != NULL);
        if (!dir)
            continue;
        osp_error_clear();
        osp_vae *v = osp_vae_load(dir, OSP_DEVICE_CPU);
        CHECK(v == NULL && osp_error_code() == OSP_ERR_DATA);
        CHECK(strstr(osp_error_message(), edits[i][2]) != NULL);
        printf("#   edit %zu: %s\n", i, osp_error_message());
        osp_vae_free(v);
        remove_fake(dir);
    }
    CHECK(osp_vae_load("/nonexistent/vae", OSP_DEVICE_CPU) == NULL);
}

TEST(bad_inputs_are_rejected)
{
    osp_vae *v = load("vae/model");
    if (!v)
        return;
    int64_t wrong_channels[] = {1, 4, 1, 16, 16}, tiny[] = {1, 3, 1, 4, 4};
    CHECK(osp_vae_encode(v, test_random(5, wrong_channels, -1, 1), NULL) == NULL);
    CHECK(osp_vae_encode(v, test_random(5, tiny, -1, 1), NULL) == NULL);
    int64_t latent_bad[] = {1, 3, 1, 2, 2};
    CHECK(osp_vae_decode(v, test_random(5, latent_bad, -1, 1), NULL) == NULL);
    osp_vae_free(v);
}

/* A smooth moving pattern with a little noise, [1, 3, T, 32, 32]. */
static osp_tensor *synthetic_clip(int64_t T)
{
    int64_t shape[] = {1, 3, T, 32, 32};
    osp_tensor *v = test_random(5, shape, -0.1f, 0.1f);
    float *p = osp_f32(v);
    for (int64_t c = 0; c < 3; c++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t y = 0; y < 32; y++)
                for (int64_t x = 0; x < 32; x++)
                    p[((c * T + t) * 32 + y) * 32 + x] +=
                        0.8f * sinf(0.3f * (float)(x + 2 * t) + 0.7f * (float)c) *
                        cosf(0.2f * (float)(y - t));
    return v;
}

/* x[:, :, a:b] as a contiguous tensor. */
static osp_tensor *frames(osp_tensor *x, int64_t a, int64_t b)
{
    return osp_contiguous(osp_slice(x, 2, a, b, 1));
}

TEST(temporal_chunking)
{
    osp_vae *v = load("vae/model");
    if (!v)
        return;
    osp_tensor *clip = synthetic_clip(33);
    osp_tensor *whole = osp_vae_encode(v, clip, NULL);
    /* A chunk as long as the clip is the plain encode. */
    osp_vae_chunking all = {33, 1};
    CHECK(test_max_abs_diff(osp_vae_encode_chunked(v, clip, NULL, &all), whole) == 0);

    /* 33 frames in chunks of 17 overlapping by one latent: chunks start at
     * latents 0, 3 and 4 (the last moved back to end at latent 8). Latents
     * 0-3 come from the first chunk alone, latent 8 from the last alone. */
    osp_vae_chunking c17 = {17, 1};
    osp_tensor *chunked = osp_vae_encode_chunked(v, clip, NULL, &c17);
    CHECK(chunked && osp_same_shape(chunked, whole));
    if (chunked) {
        osp_tensor *first = osp_vae_encode(v, frames(clip, 0, 17), NULL);
        osp_tensor *last = osp_vae_encode(v, frames(clip, 16, 33), NULL);
        CHECK(test_max_abs_diff(frames(chunked, 0, 4), frames(first, 0, 4)) == 0);
        CHECK(test_max_abs_diff(frames(chunked, 8, 9), frames(last, 4, 5)) == 0);
    }
    /* How far chunking moves the result. With these random weights even a
     * prefix encoded alone differs a lot (GroupNorm and the attention's
     * channel/frame regrouping see the whole clip), so this is recorded,
     * not bounded. */
    printf("#   9-frame prefix alone vs the same latents of the whole: relative %.4f\n",
           test_rel_error(osp_vae_encode(v, frames(clip, 0, 9), NULL), frames(whole, 0, 3)));
    static const osp_vae_chunking cases[] = {{9, 1}, {17, 1}, {17, 2}, {25, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        osp_tensor *c = osp_vae_encode_chunked(v, clip, NULL, &cases[i]);
        CHECK(c && osp_same_shape(c, whole));
        if (c)
            printf("#   encode chunks of %lld, overlap %lld: relative error %.4f\n",
                   (long long)cases[i].frames, (long long)cases[i].overlap,
                   test_rel_error(c, whole));
    }

    osp_tensor *mean = NULL, *logvar = NULL;
    CHECK(osp_vae_posterior(whole, &mean, &logvar) == OSP_OK);
    osp_tensor *decoded = osp_vae_decode(v, mean, NULL);
    /* 9 latents in chunks of 5 overlapping by 1: starts 0, 3, 4; frames
     * 0-12 come from the first chunk alone, frames 29-32 from the last. */
    osp_vae_chunking d5 = {5, 1};
    osp_tensor *dc = osp_vae_decode_chunked(v, mean, NULL, &d5);
    CHECK(dc && osp_same_shape(dc, decoded));
    if (dc) {
        osp_tensor *first = osp_vae_decode(v, frames(mean, 0, 5), NULL);
        osp_tensor *last = osp_vae_decode(v, frames(mean, 4, 9), NULL);
        CHECK(test_max_abs_diff(frames(dc, 0, 13), frames(first, 0, 13)) == 0);
        CHECK(test_max_abs_diff(frames(dc, 29, 33), frames(last, 13, 17)) == 0);
    }
    static const osp_vae_chunking dcases[] = {{3, 1}, {5, 1}, {5, 2}, {7, 3}};
    for (size_t i = 0; i < sizeof dcases / sizeof *dcases; i++) {
        osp_tensor *c = osp_vae_decode_chunked(v, mean, NULL, &dcases[i]);
        CHECK(c && osp_same_shape(c, decoded));
        if (c)
            printf("#   decode chunks of %lld latents, overlap %lld: relative error %.4f\n",
                   (long long)dcases[i].frames, (long long)dcases[i].overlap,
                   test_rel_error(c, decoded));
    }
    osp_vae_chunking bad = {5, 1}, bad_decode = {2, 1};
    CHECK(osp_vae_encode_chunked(v, clip, NULL, &bad) == NULL); /* needs >= 9 for overlap 1 */
    CHECK(osp_vae_decode_chunked(v, mean, NULL, &bad_decode) == NULL);
    osp_vae_free(v);
}

/* Records what osp_vae_decode_each hands out, and assembles it. */
typedef struct pieces {
    int calls, fail_at;
    int64_t first[16], len[16];
    osp_tensor *all; /* [1, 3, 33, 32, 32] */
} pieces;

static osp_status record(void *ctx, osp_tensor *frames, int64_t first)
{
    pieces *p = ctx;
    if (p->calls == p->fail_at)
        return osp_error(OSP_ERR_IO, "sink refused piece %d", p->calls);
    if (p->calls < 16) {
        p->first[p->calls] = first;
        p->len[p->calls] = frames->shape[2];
    }
    p->calls++;
    osp_tensor *dst = osp_view_slice(p->all, 2, first, first + frames->shape[2], 1);
    osp_tensor *src = osp_contiguous(frames);
    for (int64_t c = 0; c < 3; c++)
        for (int64_t t = 0; t < frames->shape[2]; t++)
            for (int64_t i = 0; i < 32 * 32; i++)
                osp_f32(p->all)[dst->offset + (c * 33 + t) * 32 * 32 + i] =
                    osp_f32(src)[(c * frames->shape[2] + t) * 32 * 32 + i];
    return OSP_OK;
}

TEST(decode_each_hands_out_finished_frames)
{
    osp_vae *v = load("vae/model");
    if (!v)
        return;
    osp_tensor *mean = NULL, *logvar = NULL;
    CHECK(osp_vae_posterior(osp_vae_encode(v, synthetic_clip(33), NULL), &mean, &logvar) == 0);
    int64_t shape[] = {1, 3, 33, 32, 32};
    /* 9 latents in chunks of 5 sharing 1: chunks at latents 0, 3, 4, i.e.
     * frames 0, 12, 16; frames 0-11 are final once the second chunk is
     * decoded, 12-15 once the third is, the rest at the end. */
    osp_vae_chunking d5 = {5, 1};
    pieces p = {.fail_at = -1, .all = osp_tensor_zeros(OSP_F32, 5, shape, OSP_DEVICE_CPU)};
    CHECK(osp_vae_decode_each(v, mean, NULL, &d5, record, &p) == OSP_OK);
    CHECK(p.calls == 3);
    CHECK(p.first[0] == 0 && p.len[0] == 12 && p.first[1] == 12 && p.len[1] == 4 &&
          p.first[2] == 16 && p.len[2] == 17);
    CHECK(test_max_abs_diff(p.all, osp_vae_decode_chunked(v, mean, NULL, &d5)) == 0);
    /* Unchunked: the whole clip in one call, equal to the plain decode. */
    pieces one = {.fail_at = -1, .all = osp_tensor_zeros(OSP_F32, 5, shape, OSP_DEVICE_CPU)};
    CHECK(osp_vae_decode_each(v, mean, NULL, NULL, record, &one) == OSP_OK);
    CHECK(one.calls == 1 && one.len[0] == 33);
    CHECK(test_max_abs_diff(one.all, osp_vae_decode(v, mean, NULL)) == 0);
    /* A sink error stops the decode and comes back unchanged. */
    pieces refuse = {.fail_at = 1, .all = osp_tensor_zeros(OSP_F32, 5, shape, OSP_DEVICE_CPU)};
    CHECK(osp_vae_decode_each(v, mean, NULL, &d5, record, &refuse) == OSP_ERR_IO);
    CHECK(refuse.calls == 1);
    osp_vae_free(v);
}


/* The encoder and the decoder train through the tape: gradients of the
 * input and of parameters (a GroupNorm scale, a bias) against finite
 * differences, on an 8x8 five-frame clip (a one-cell latent) so the checks
 * stay quick. The path covers the causal padding, the residual blocks, the
 * middle attention, the temporal and spatial down/upsampling. */
typedef struct vae_grad_ctx {
    osp_vae *v;
} vae_grad_ctx;

static osp_tensor *encode_fn(osp_tensor *const *in, void *ctx)
{
    return osp_vae_encoder_forward(((vae_grad_ctx *)ctx)->v, in[0]);
}

static osp_tensor *decode_fn(osp_tensor *const *in, void *ctx)
{
    return osp_vae_decoder_forward(((vae_grad_ctx *)ctx)->v, in[0]);
}

static osp_tensor *param(osp_vae *v, const char *name)
{
    osp_tensor *p = osp_params_find(osp_vae_params(v), name);
    if (!p)
        printf("#   no parameter %s\n", name);
    return p ? osp_requires_grad(p) : NULL;
}

/* The parameters belong to the model: leave them as they were. */
static void release(osp_tensor *p)
{
    if (p) {
        p->requires_grad = false;
        osp_zero_grad(p);
    }
}

TEST(gradients_through_the_tape)
{
    osp_vae *v = load("vae/model");
    if (!v)
        return;
    vae_grad_ctx g = {v};
    /* A small step: with one-cell latents the GroupNorm groups hold a few
     * values, so the random-weight model bends sharply and wider steps
     * measure the curvature, not the slope. */
    gradcheck_opts opts = {.eps = 1e-4, .atol = 2e-3, .rtol = 2e-2};
    osp_tensor *enc[3] = {
        osp_requires_grad(test_random(5, (int64_t[]){1, 3, 5, 8, 8}, -1, 1)),
        param(v, "encoder.norm_out.weight"),
        param(v, "quant_conv.conv.bias"),
    };
    CHECK(enc[1] && enc[2]);
    if (enc[1] && enc[2])
        CHECK(gradcheck("vae encoder", encode_fn, 3, enc, &g, &opts));
    osp_tensor *dec[3] = {
        osp_requires_grad(test_random(5, (int64_t[]){1, 4, 2, 1, 1}, -1, 1)),
        param(v, "decoder.norm_out.weight"),
        param(v, "decoder.conv_out.conv.bias"),
    };
    CHECK(dec[1] && dec[2]);
    if (dec[1] && dec[2])
        CHECK(gradcheck("vae decoder", decode_fn, 3, dec, &g, &opts));
    for (int i = 1; i < 3; i++) {
        release(enc[i]);
        release(dec[i]);
    }
    osp_vae_free(v);
}

int main(void)
{
    RUN(video_9_frames);
    RUN(image_batch_of_two);
    RUN(tiled_encode_and_decode);
    RUN(attention_regrouping_quirk);
    RUN(wide_model_with_f16_weights);
    RUN(bad_configs_are_rejected_clearly);
    RUN(bad_inputs_are_rejected);
    RUN(temporal_chunking);
    RUN(decode_each_hands_out_finished_frames);
    RUN(gradients_through_the_tape);
    return test_summary();
}
