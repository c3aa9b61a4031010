/* osp-encode — encodes video (a file FFmpeg reads, PNGs, or a stream with
 * `video`) with the CausalVideoVAE into a `latent` stream (posterior sample
 * x 0.18215, or the mean), or the raw `moments`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "backend/ops_random.h"
#include "common/vae_cli.h"
#include "core/log.h"
#include "io/clip.h"
#include "io/stream.h"

static const char *opt_mode = "sample";
static int64_t opt_seed, opt_frames, opt_start, opt_stride = 1;
static bool opt_moments;
static const char *opt_size;

static osp_vae_tiling vae_tiling; /* from the options, checked before any work */

static const cli_option options[] = {
    VAE_CLI_OPTIONS,
    {.name = "mode", .kind = CLI_CHOICE, .metavar = "M", .choices = "sample|mean", .s = &opt_mode,
     .help = "posterior sample or mean"},
    {.name = "seed", .kind = CLI_INT, .metavar = "N", .min = 0, .max = 9.2e18, .i = &opt_seed,
     .help = "seed of the posterior noise (default 0)"},
    {.name = "moments", .kind = CLI_FLAG, .flag = &opt_moments,
     .help = "emit the posterior moments instead of a latent"},
    {.name = "frames", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1e9, .i = &opt_frames,
     .help = "frames to encode, 1+4k (default: as many as fit)"},
    {.name = "start", .kind = CLI_INT, .metavar = "I", .min = 0, .max = 1e12, .i = &opt_start,
     .help = "first source frame (default 0)"},
    {.name = "stride", .kind = CLI_INT, .metavar = "K", .min = 1, .max = 1e6, .i = &opt_stride,
     .help = "take every K-th source frame (default 1)"},
    {.name = "size", .kind = CLI_STRING, .metavar = "HxW", .s = &opt_size,
     .help = "resize the short side and centre-crop to HxW"},
    {0},
};

static const cli_tool tool = {
    .name = "osp-encode",
    .summary = "Encode video or images into CausalVideoVAE latents.",
    .args = "[INPUT]",
    .example = "osp-encode -m vae clip.mp4 --frames 17 --size 256x256 -o clip.latent\n"
               "osp-encode -m vae frames/ --moments | osp-info",
    .options = options,
    .min_args = 0,
    .max_args = 1,
    .stdin_input = true,
};

static void parse_size(int64_t *h, int64_t *w)
{
    char tail;
    long long hh, ww;
    if (sscanf(opt_size, "%lldx%lld%c", &hh, &ww, &tail) != 2 || hh < 1 || ww < 1 ||
        hh > 65536 || ww > 65536)
        cli_usage_error("--size: expected HxW such as 256x256, got '%s'", opt_size);
    *h = hh;
    *w = ww;
}

/* Keeps --frames frames when valid, else the largest 1 + f*k available. */
static osp_tensor *choose_frames(osp_tensor *video, int time_factor, const char *input)
{
    int64_t have = video->shape[2], keep = 1 + (have - 1) / time_factor * time_factor;
    if (opt_frames) {
        if ((opt_frames - 1) % time_factor) {
            osp_error(OSP_ERR_USAGE, "--frames %lld: the VAE needs 1 + %dk frames (1, %d, %d, "
                      "...)", (long long)opt_frames, time_factor, 1 + time_factor,
                      1 + 2 * time_factor);
            return NULL;
        }
        if (have < opt_frames) {
            osp_error(OSP_ERR_DATA, "%s: only %lld frames selected, --frames %lld asked; valid "
                      "here: 1..%lld in steps of %d", input, (long long)have,
                      (long long)opt_frames, (long long)keep, time_factor);
            return NULL;
        }
        keep = opt_frames;
    }
    return keep == have ? video : osp_contiguous(osp_slice(video, 2, 0, keep, 1));
}

/* Frame count, --size and the size check, for clips and stream videos. */
static osp_tensor *prepare_video(osp_tensor *video, const osp_vae_config *cfg, const char *input)
{
    if (!video)
        return NULL;
    char buf[96];
    if (video->ndim != 5 || video->shape[1] != 3 || osp_numel(video) == 0) {
        osp_error(OSP_ERR_DATA, "%s: `video` must be [B, 3, T, H, W], got %s", input,
                  osp_shape_str(video, buf, sizeof buf));
        return NULL;
    }
    video = choose_frames(video, osp_vae_time_factor(cfg), input);
    if (video && opt_size) {
        int64_t h, w, rh, rw;
        parse_size(&h, &w);
        osp_short_side_size(video->shape[3], video->shape[4], h, w, &rh, &rw);
        /* rec_video_vae.py: antialiased bilinear, align_corners=True */
        video = osp_video_center_crop(osp_video_resize_antialias(osp_contiguous(video), rh, rw,
                                                                 true), h, w);
    }
    int space = osp_vae_space_factor(cfg);
    if (video && (video->shape[3] % space || video->shape[4] % space)) {
        osp_error(OSP_ERR_DATA, "%s: frames of %lldx%lld are not multiples of %d; use --size "
                  "HxW", input, (long long)video->shape[3], (long long)video->shape[4], space);
        return NULL;
    }
    return video;
}

/* All frames --start/--stride select, as a [-1, 1] video tensor. */
static osp_tensor *load_clip_video(const char *input, osp_meta *meta)
{
    osp_frame_select sel = {opt_start, opt_stride, 0};
    osp_clip clip;
    if (osp_clip_load(input, &sel, &clip))
        return NULL;
    osp_meta_set_int(meta, "source_frames", clip.source_frames);
    osp_meta_set_int(meta, "source_width", clip.width);
    osp_meta_set_int(meta, "source_height", clip.height);
    if (clip.fps > 0)
        osp_meta_set_float(meta, "fps", clip.fps / (double)opt_stride);
    osp_tensor *video = osp_clip_to_video(&clip);
    osp_clip_free(&clip);
    return video;
}

/* --start/--stride applied to a stream's video. */
static osp_tensor *select_stream_frames(osp_tensor *video)
{
    if (!video || (opt_start == 0 && opt_stride == 1) || video->ndim != 5)
        return video;
    if (opt_start >= video->shape[2]) {
        osp_error(OSP_ERR_DATA, "--start %lld: the video has %lld frames", (long long)opt_start,
                  (long long)video->shape[2]);
        return NULL;
    }
    return osp_slice(video, 2, opt_start, video->shape[2], opt_stride);
}

static osp_tensor *u8_to_unit_range(osp_tensor *video)
{
    if (!video || video->dtype != OSP_U8)
        return video;
    return osp_scale_shift(osp_cast(video, OSP_F32), 2.0f / 255.0f, -1.0f);
}

/* moments -> the tensor to emit, per --moments / --mode. */
static osp_tensor *latent_from_moments(osp_tensor *moments, const char **name)
{
    if (opt_moments) {
        *name = "moments";
        return moments;
    }
    *name = "latent";
    osp_tensor *mean = NULL, *logvar = NULL;
    if (osp_vae_posterior(moments, &mean, &logvar))
        return NULL;
    osp_tensor *z = mean;
    if (strcmp(opt_mode, "sample") == 0) {
        osp_tensor *noise = osp_randn(mean->ndim, mean->shape, mean->storage->device,
                                      (uint64_t)opt_seed, 0);
        z = osp_vae_sample(mean, logvar, noise);
    }
    return osp_scale_shift(z, (float)OSP_VAE_LATENT_SCALE, 0.0f);
}

static osp_status encode_and_write(osp_vae *vae, osp_tensor *video, osp_meta *meta,
                                   osp_stream_writer *w, const cli_common *common,
                                   const char *input)
{
    video = prepare_video(video, osp_vae_get_config(vae), input);
    if (!video)
        return osp_error_code();
    osp_vae_chunking chunking = vae_cli_chunking(vae, false, video, &vae_tiling, common->device);
    osp_tensor *moments = osp_vae_encode_chunked(vae, osp_to_device(video, common->device), &vae_tiling,
                                                  &chunking);
    const char *name;
    osp_tensor *out = osp_to_device(latent_from_moments(moments, &name), OSP_DEVICE_CPU);
    if (!out)
        return osp_error_code();
    if (!opt_moments)
        osp_meta_set_float(meta, "scale", OSP_VAE_LATENT_SCALE);
    if (!opt_moments && strcmp(opt_mode, "sample") == 0)
        osp_meta_set_int(meta, "seed", opt_seed);
    return osp_stream_write(w, name, out, meta);
}

/* Stream input: encode every `video`, pass everything else through. */
static osp_status encode_stream(osp_vae *vae, const char *input, osp_stream_writer *w,
                                const cli_common *common)
{
    osp_stream_reader *r = osp_stream_open_read(input);
    if (!r)
        return osp_error_code();
    osp_status st = OSP_OK;
    int videos = 0;
    for (;;) {
        osp_named_tensor nt = {0};
        bool got;
        if ((st = osp_stream_read(r, &nt, &got)) || !got)
            break;
        osp_pool_push();
        if (strcmp(nt.name, "video") == 0) {
            videos++;
            osp_tensor *video = select_stream_frames(u8_to_unit_range(nt.tensor));
            st = video ? encode_and_write(vae, video, &nt.meta, w, common, input ? input : "stdin")
                       : osp_error_code();
        } else {
            st = osp_stream_write(w, nt.name, nt.tensor, &nt.meta);
        }
        osp_pool_pop();
        osp_named_tensor_free(&nt);
        if (st)
            break;
    }
    osp_stream_close_read(r);
    if (st == OSP_OK && videos == 0)
        st = osp_error(OSP_ERR_DATA, "%s: the stream holds no `video` tensor",
                       input ? input : "stdin");
    return st;
}

int main(int argc, char **argv)
{
    cli_common common;
    cli_parse(&tool, argc, argv, &common);
    const char *input = common.argc ? common.argv[0] : NULL;
    osp_vae *vae = vae_cli_load(&common);
    if (vae)
        vae_tiling = vae_cli_tiling(vae);
    osp_stream_writer *w = vae ? osp_stream_open_write(common.output) : NULL;
    osp_status st = w ? OSP_OK : osp_error_code();
    osp_pool_push();
    if (st == OSP_OK && osp_stream_sniff(input)) {
        st = encode_stream(vae, input, w, &common);
    } else if (st == OSP_OK) {
        osp_meta meta;
        osp_meta_init(&meta);
        osp_meta_set_str(&meta, "source", input);
        osp_tensor *video = load_clip_video(input, &meta);
        st = video ? encode_and_write(vae, video, &meta, w, &common, input) : osp_error_code();
        osp_meta_free(&meta);
    }
    osp_pool_pop();
    if (st == OSP_OK)
        st = osp_stream_commit(w);
    osp_stream_close_write(w);
    osp_vae_free(vae);
    return st == OSP_OK ? 0 : osp_log_failure();
}
