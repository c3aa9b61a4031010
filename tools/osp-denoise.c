/* osp-denoise — text embeddings to video latents with the LatteT2V
 * transformer: classifier-free-guided sampling over a diffusers scheduler
 * (spec/sampling.md), or one transformer call with --predict. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "backend/ops_random.h"
#include "common/cli.h"
#include "core/checked.h"
#include "core/log.h"
#include "core/progress.h"
#include "io/stream.h"
#include "models/causalvae.h"
#include "models/latte.h"

/* The CausalVideoVAE 4x8x8 the release pairs with the transformer. */
#define VAE_TIME 4
#define VAE_SPACE 8

static const char *opt_model, *opt_scheduler = "pndm", *opt_noise, *opt_latent;
static int64_t opt_steps = 250, opt_seed, opt_frames, opt_height, opt_width;
static double opt_guidance = 7.5, opt_timestep = -1;
static bool opt_predict;

static const cli_option options[] = {
    {.name = "model", .short_name = 'm', .kind = CLI_STRING, .metavar = "DIR", .s = &opt_model,
     .help = "Latte folder (config.json + diffusion_pytorch_model.*)"},
    {.name = "scheduler", .kind = CLI_CHOICE, .metavar = "NAME",
     .choices = "pndm|ddim|ddpm|euler|dpmpp", .s = &opt_scheduler, .help = "sampler"},
    {.name = "steps", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1000, .i = &opt_steps,
     .help = "inference steps (default 250; pndm needs >= 4)"},
    {.name = "guidance", .kind = CLI_NUMBER, .metavar = "G", .min = 0, .max = 1000,
     .f = &opt_guidance, .help = "guidance scale, <= 1 turns it off (default 7.5)"},
    {.name = "seed", .kind = CLI_INT, .metavar = "N", .min = 0, .max = 9.2e18, .i = &opt_seed,
     .help = "seed of the Philox noise (default 0)"},
    {.name = "frames", .kind = CLI_INT, .metavar = "F", .min = 1, .max = 1e6, .i = &opt_frames,
     .help = "frames, 1+4k; 1 = an image (default: the model's)"},
    {.name = "height", .kind = CLI_INT, .metavar = "PX", .min = 1, .max = 1e6, .i = &opt_height,
     .help = "frame height in pixels (default: the model's)"},
    {.name = "width", .kind = CLI_INT, .metavar = "PX", .min = 1, .max = 1e6, .i = &opt_width,
     .help = "frame width in pixels (default: the model's)"},
    {.name = "noise", .kind = CLI_STRING, .metavar = "FILE", .s = &opt_noise,
     .help = "stream holding the initial N(0,1) `noise` (not --seed)"},
    {.name = "predict", .kind = CLI_FLAG, .flag = &opt_predict,
     .help = "one transformer call on `latent`: emits `prediction`"},
    {.name = "timestep", .kind = CLI_NUMBER, .metavar = "T", .min = 0, .max = 1000,
     .f = &opt_timestep, .help = "--predict: the timestep of every sample"},
    {.name = "latent", .kind = CLI_STRING, .metavar = "FILE", .s = &opt_latent,
     .help = "--predict: stream holding `latent` (and `timestep`)"},
    {0},
};

static const cli_tool tool = {
    .name = "osp-denoise",
    .summary = "Sample video latents from text embeddings with LatteT2V.",
    .args = "[INPUT]",
    .details = "INPUT: a stream with `embedding`, `mask`, `null_embedding` (osp-textenc's).\n"
               "Emits `latent` [B,4,(F-1)/4+1,H/8,W/8]; other tensors pass through.",
    .example = "osp-textenc -m t5 \"a red fox in snow\" | osp-denoise -m latte -o fox.latent\n"
               "osp-denoise -m latte --predict --latent noisy.msgpack text.msgpack",
    .options = options,
    .min_args = 0,
    .max_args = 1,
    .stdin_input = true,
};

/* ---- the input tensors ---- */

enum { T_EMBEDDING, T_MASK, T_NULL_EMBEDDING, T_NULL_MASK, T_NOISE, T_LATENT, T_TIMESTEP, T_COUNT };
static const char *const tensor_names[T_COUNT] = {
    "embedding", "mask", "null_embedding", "null_mask", "noise", "latent", "timestep",
};

typedef struct inputs {
    osp_named_tensor t[T_COUNT]; /* name NULL: absent */
    /* the tensors of INPUT the tool does not consume, written out (ahead of
     * the result) only once the run has succeeded */
    osp_named_tensor *others;
    size_t n_others;
} inputs;

static void inputs_free(inputs *in)
{
    for (int i = 0; i < T_COUNT; i++)
        osp_named_tensor_free(&in->t[i]);
    for (size_t i = 0; i < in->n_others; i++)
        osp_named_tensor_free(&in->others[i]);
    free(in->others);
}

static osp_status keep_other(inputs *in, osp_named_tensor *nt)
{
    osp_named_tensor *grown = realloc(in->others, (in->n_others + 1) * sizeof *grown);
    if (!grown)
        return osp_error_nomem("stream tensors", (in->n_others + 1) * sizeof *grown);
    in->others = grown;
    in->others[in->n_others++] = *nt;
    *nt = (osp_named_tensor){0};
    return OSP_OK;
}

static osp_status write_others(const inputs *in, osp_stream_writer *w)
{
    osp_status st = OSP_OK;
    for (size_t i = 0; !st && i < in->n_others; i++)
        st = osp_stream_write(w, in->others[i].name, in->others[i].tensor, &in->others[i].meta);
    return st;
}

static osp_tensor *input(const inputs *in, int which) { return in->t[which].tensor; }

/* Reads a stream: tensors named in `wanted` (a bit per T_*) are taken,
 * others are kept for passing through (pass_on) or dropped. */
static osp_status read_stream(const char *path, unsigned wanted, inputs *in, bool pass_on)
{
    const char *label = path ? path : "stdin";
    osp_stream_reader *r = osp_stream_open_read(path);
    osp_status st = r ? OSP_OK : osp_error_code();
    while (st == OSP_OK) {
        osp_named_tensor nt = {0};
        bool got;
        if ((st = osp_stream_read(r, &nt, &got)) || !got)
            break;
        int which = -1;
        for (int i = 0; i < T_COUNT; i++)
            if ((wanted >> i & 1) && strcmp(nt.name, tensor_names[i]) == 0)
                which = i;
        if (which >= 0 && in->t[which].name)
            st = osp_error(OSP_ERR_DATA, "%s: a second `%s` tensor (one set per stream)", label,
                           nt.name);
        else if (which >= 0)
            in->t[which] = nt, nt = (osp_named_tensor){0};
        else if (pass_on)
            st = keep_other(in, &nt);
        osp_named_tensor_free(&nt);
    }
    osp_stream_close_read(r);
    return st;
}

/* Float tensors must be finite (a NaN would silently spread everywhere). */
static osp_status check_finite(const inputs *in)
{
    for (int i = 0; i < T_COUNT; i++) {
        osp_tensor *t = input(in, i);
        if (!t || !osp_dtype_is_float(t->dtype))
            continue;
        osp_pool_push();
        osp_tensor *f = osp_tensor_to_dtype(t, OSP_F32);
        int64_t bad = -1;
        for (int64_t j = 0; f && bad < 0 && j < osp_numel(f); j++)
            if (!isfinite(osp_f32(f)[j]))
                bad = j;
        osp_pool_pop();
        if (!f)
            return osp_error_code();
        if (bad >= 0)
            return osp_error(OSP_ERR_DATA, "`%s` holds a non-finite value (element %lld)",
                             tensor_names[i], (long long)bad);
    }
    return OSP_OK;
}

static osp_tensor *on_device(osp_tensor *t, const cli_common *common)
{
    return t ? osp_to_device(t, common->device) : NULL;
}

/* ---- --predict ---- */

static osp_status predict(osp_latte *m, inputs *in, osp_stream_writer *w,
                          const cli_common *common)
{
    osp_tensor *latent = input(in, T_LATENT), *ts = input(in, T_TIMESTEP);
    if (!latent)
        return osp_error(OSP_ERR_DATA, "--predict needs a `latent` tensor (in INPUT or --latent)");
    if (!input(in, T_EMBEDDING))
        return osp_error(OSP_ERR_DATA, "--predict needs an `embedding` tensor");
    if (opt_timestep >= 0) {
        int64_t B = latent->ndim ? latent->shape[0] : 0;
        ts = osp_full(OSP_F32, 1, &B, OSP_DEVICE_CPU, opt_timestep);
    } else if (!ts) {
        return osp_error(OSP_ERR_DATA, "--predict needs a `timestep` tensor or --timestep T");
    }
    const osp_latte_config *cfg = osp_latte_get_config(m);
    osp_latte_input fin = {
        .x = on_device(latent, common),
        .timestep = on_device(ts, common),
        .context = on_device(input(in, T_EMBEDDING), common),
        .mask = on_device(input(in, T_MASK), common),
        /* T' = 1 is image mode, as sampling runs it */
        .temporal = latent->ndim != 5 || latent->shape[2] != 1 || cfg->video_length == 1,
    };
    osp_tensor *y = osp_to_device(osp_latte_forward(m, &fin), OSP_DEVICE_CPU);
    if (!y || write_others(in, w))
        return osp_error_code();
    return osp_stream_write(w, "prediction", y, NULL);
}

/* ---- sampling ---- */

/* Latent frames, height and width from the options, else from the noise,
 * else the model's trained size. */
static void latent_size(const osp_latte_config *cfg, const osp_tensor *noise, int64_t size[3])
{
    int64_t stride = (int64_t)VAE_SPACE * cfg->patch_size;
    if (noise && noise->ndim == 5) {
        size[0] = noise->shape[2];
        size[1] = noise->shape[3];
        size[2] = noise->shape[4];
    } else {
        size[0] = cfg->video_length;
        size[1] = size[2] = cfg->sample_size;
    }
    if (opt_frames) {
        if ((opt_frames - 1) % VAE_TIME)
            cli_usage_error("--frames: %lld is not 1+4k (the VAE keeps frame 0 and compresses "
                            "4 frames into one)", (long long)opt_frames);
        size[0] = (opt_frames - 1) / VAE_TIME + 1;
    }
    const int64_t *px[2] = {&opt_height, &opt_width};
    const char *names[2] = {"height", "width"};
    for (int i = 0; i < 2; i++) {
        if (!*px[i])
            continue;
        if (*px[i] % stride)
            cli_usage_error("--%s: %lld is not a multiple of %lld (VAE %d x patch %d)", names[i],
                            (long long)*px[i], (long long)stride, VAE_SPACE, cfg->patch_size);
        size[1 + i] = *px[i] / VAE_SPACE;
    }
    /* (a noise tensor of another length fails in the model, as bad data) */
    if (opt_frames && size[0] != 1 && size[0] != cfg->video_length)
        cli_usage_error("--frames: this model makes %lld frames (%d latent frames), or 1 "
                        "(an image)", (long long)(cfg->video_length - 1) * VAE_TIME + 1,
                        cfg->video_length);
}

typedef struct step_ctx {
    osp_progress bar;
    int64_t numel; /* elements of one prompt's latent */
    int64_t first; /* this prompt's first step-noise latent in the seed's stream */
} step_ctx;

/* DDPM's noise for a step: latent number first + step of the seed's
 * stream, counted in latents (the initial noise of all prompts comes
 * first). */
static osp_tensor *philox_step_noise(void *ctx, int step, const osp_tensor *like)
{
    const step_ctx *c = ctx;
    return osp_randn(like->ndim, like->shape, like->storage->device, (uint64_t)opt_seed,
                     (uint64_t)((c->first + step) * c->numel));
}

static void advance_bar(void *ctx, int step, osp_tensor *latents)
{
    (void)step, (void)latents;
    osp_progress_step(&((step_ctx *)ctx)->bar, 1);
}

static osp_status sample(osp_latte *m, osp_sched *s, inputs *in, osp_stream_writer *w,
                         const cli_common *common)
{
    const osp_latte_config *cfg = osp_latte_get_config(m);
    osp_tensor *emb = input(in, T_EMBEDDING), *null = input(in, T_NULL_EMBEDDING);
    osp_tensor *noise = input(in, T_NOISE);
    char buf[96];
    if (!emb)
        return osp_error(OSP_ERR_DATA, "the input holds no `embedding` (pipe osp-textenc into "
                         "osp-denoise)");
    if (emb->ndim != 3 || emb->shape[0] < 1 || emb->shape[2] != cfg->caption_channels)
        return osp_error(OSP_ERR_DATA, "`embedding` %s does not fit the model: expected [B, L, "
                         "%d] (its caption_channels)", osp_shape_str(emb, buf, sizeof buf),
                         cfg->caption_channels);
    if (opt_guidance > 1 && !null)
        return osp_error(OSP_ERR_DATA, "guidance %g needs `null_embedding`: drop --no-negative "
                         "from osp-textenc, or set --guidance 1", opt_guidance);
    int64_t B = emb->shape[0], size[3];
    latent_size(cfg, noise, size);
    int64_t shape[5] = {B, cfg->in_channels, size[0], size[1], size[2]};
    step_ctx ctx = {0};
    if (!osp_shape_numel(shape + 1, 4, &ctx.numel))
        return osp_error(OSP_ERR_DATA, "latent size overflows");
    if (noise && (noise->ndim != 5 || memcmp(noise->shape, shape, sizeof shape)))
        return osp_error(OSP_ERR_DATA, "`noise` %s does not match the latent [%lld, %lld, %lld, "
                         "%lld, %lld]", osp_shape_str(noise, buf, sizeof buf),
                         (long long)shape[0], (long long)shape[1], (long long)shape[2],
                         (long long)shape[3], (long long)shape[4]);
    noise = noise ? on_device(noise, common)
                  : osp_randn(5, shape, common->device, (uint64_t)opt_seed, 0);
    osp_latte_sampling cfg_s = {.sched = s, .guidance = opt_guidance,
                                .step_noise = philox_step_noise, .step_noise_ctx = &ctx,
                                .on_step = advance_bar, .on_step_ctx = &ctx};
    osp_tensor *emb_dev = on_device(emb, common);
    osp_tensor *null_dev = opt_guidance > 1 ? on_device(null, common) : NULL;
    osp_tensor **latents = calloc((size_t)B, sizeof *latents);
    if (!latents)
        return osp_error_nomem("latents", (unsigned long long)B * sizeof *latents);
    osp_progress_start(&ctx.bar, "denoise", B * osp_sched_count(s));
    osp_status st = OSP_OK;
    for (int64_t b = 0; st == OSP_OK && b < B; b++) {
        osp_tensor *cond, *uncond;
        ctx.first = B + b * osp_sched_count(s);
        st = osp_latte_prompt_context(emb_dev, input(in, T_MASK), null_dev, b, &cond, &uncond);
        if (!st && !(latents[b] = osp_latte_sample(m, &cfg_s, osp_slice(noise, 0, b, b + 1, 1),
                                                   cond, uncond)))
            st = osp_error_code();
    }
    osp_progress_end(&ctx.bar);
    osp_tensor *out = st ? NULL : osp_to_device(osp_concat((int)B, latents, 0), OSP_DEVICE_CPU);
    free(latents);
    if (!out)
        return osp_error_code();
    osp_meta meta;
    if (osp_meta_copy(&meta, &in->t[T_EMBEDDING].meta))
        return osp_error_code();
    if (!(st = osp_meta_set_float(&meta, "scale", OSP_VAE_LATENT_SCALE)) &&
        !(st = osp_meta_set_str(&meta, "scheduler", osp_sched_name(s))) &&
        !(st = osp_meta_set_int(&meta, "steps", opt_steps)) &&
        !(st = osp_meta_set_float(&meta, "guidance", opt_guidance)) &&
        !(st = osp_meta_set_int(&meta, "seed", opt_seed)) && !(st = write_others(in, w)))
        st = osp_stream_write(w, "latent", out, &meta);
    osp_meta_free(&meta);
    return st;
}

int main(int argc, char **argv)
{
    cli_common common;
    cli_parse(&tool, argc, argv, &common);
    const char *input_path = common.argc ? common.argv[0] : NULL;
    if (!opt_model)
        cli_usage_error("-m/--model DIR is required (the Latte transformer folder)");
    if (!opt_predict && (opt_timestep >= 0 || opt_latent))
        cli_usage_error("--timestep and --latent belong to --predict");
    osp_sched *s = NULL;
    if (!opt_predict) {
        s = osp_sched_create(opt_scheduler);
        if (!s || osp_sched_set_timesteps(s, (int)opt_steps))
            cli_usage_error("--steps: %s", osp_error_message());
    }
    inputs in = {0};
    unsigned wanted = opt_predict ? 1u << T_EMBEDDING | 1u << T_MASK | 1u << T_LATENT |
                                        1u << T_TIMESTEP
                                  : 1u << T_EMBEDDING | 1u << T_MASK | 1u << T_NULL_EMBEDDING |
                                        1u << T_NULL_MASK | 1u << T_NOISE;
    osp_latte *m = osp_latte_load(opt_model, common.device, true);
    osp_stream_writer *w = m ? osp_stream_open_write(common.output) : NULL;
    osp_status st = w ? OSP_OK : osp_error_code();
    if (!st && opt_latent)
        st = read_stream(opt_latent, 1u << T_LATENT | 1u << T_TIMESTEP, &in, false);
    if (!st && opt_noise)
        st = read_stream(opt_noise, 1u << T_NOISE, &in, false);
    if (!st && opt_noise && !input(&in, T_NOISE))
        st = osp_error(OSP_ERR_DATA, "%s holds no `noise` tensor", opt_noise);
    if (!st)
        st = read_stream(input_path, wanted, &in, true);
    if (!st)
        st = check_finite(&in);
    if (!st) {
        osp_pool_push();
        st = opt_predict ? predict(m, &in, w, &common) : sample(m, s, &in, w, &common);
        osp_pool_pop();
    }
    if (!st)
        st = osp_stream_commit(w);
    osp_stream_close_write(w);
    inputs_free(&in);
    osp_sched_free(s);
    osp_latte_free(m);
    return st == OSP_OK ? 0 : osp_log_failure();
}
