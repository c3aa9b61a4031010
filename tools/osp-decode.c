/* osp-decode — decodes `latent` tensors with the CausalVideoVAE into video:
 * a stream with `video`, PNG images, or a video file written by FFmpeg. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/ops.h"
#include "common/vae_cli.h"
#include "core/log.h"
#include "io/clip.h"
#include "io/png_io.h"
#include "io/stream.h"
#include "io/video.h"

static double opt_fps;
static const char *opt_codec;
static int64_t opt_crf = 18;

static osp_vae_tiling vae_tiling; /* from the options, checked before any work */

static const cli_option options[] = {
    VAE_CLI_OPTIONS,
    {.name = "fps", .kind = CLI_NUMBER, .metavar = "F", .min = 0.01, .max = 1000, .f = &opt_fps,
     .help = "video frame rate (default: the stream's, else 24)"},
    {.name = "codec", .kind = CLI_STRING, .metavar = "NAME", .s = &opt_codec,
     .help = "FFmpeg video encoder (default libx264)"},
    {.name = "crf", .kind = CLI_INT, .metavar = "N", .min = 0, .max = 51, .i = &opt_crf,
     .help = "libx264 quality, 0 = lossless (default 18)"},
    {0},
};

static const cli_tool tool = {
    .name = "osp-decode",
    .summary = "Decode CausalVideoVAE latents into video frames.",
    .args = "[INPUT]",
    .details = "INPUT: a stream holding `latent` (- or none = stdin). -o picks the output:\n"
               "none, - or .msgpack: a stream with `video` f32 in [-1,1]; .png: one image,\n"
               "or numbered frames when the name holds %d; other: a video file (mp4, mkv...).\n"
               "Several clips (batch > 1) go to NAME-0.EXT, NAME-1.EXT, ...",
    .example = "osp-decode -m vae clip.latent -o clip.mp4\n"
               "osp-encode -m vae in.mp4 | osp-decode -m vae -o 'frame-%d.png'",
    .options = options,
    .min_args = 0,
    .max_args = 1,
    .stdin_input = true,
};

typedef enum out_kind { OUT_STREAM, OUT_PNG, OUT_PNG_SEQUENCE, OUT_VIDEO } out_kind;

static out_kind output_kind(const char *path)
{
    if (!path)
        return OUT_STREAM;
    const char *dot = strrchr(path, '.');
    if (dot && strcasecmp(dot, ".msgpack") == 0)
        return OUT_STREAM;
    if (dot && strcasecmp(dot, ".png") == 0)
        return strstr(path, "%d") ? OUT_PNG_SEQUENCE : OUT_PNG;
    return OUT_VIDEO;
}

/* path with "-<index>" before the extension when there are several clips. */
static void clip_path(char *buf, size_t len, const char *path, int64_t index, bool several)
{
    const char *dot = strrchr(path, '.');
    if (!several || !dot)
        snprintf(buf, len, "%s", path);
    else
        snprintf(buf, len, "%.*s-%lld%s", (int)(dot - path), path, (long long)index, dot);
}

static osp_status write_png_frames(const osp_tensor *video, int64_t b, const char *path,
                                   uint8_t *rgb)
{
    int64_t T = video->shape[2];
    int h = (int)video->shape[3], w = (int)video->shape[4];
    for (int64_t t = 0; t < T; t++) {
        char name[4096];
        /* The pattern comes from the user; only %d is substituted. */
        const char *at = strstr(path, "%d");
        if (at)
            snprintf(name, sizeof name, "%.*s%lld%s", (int)(at - path), path, (long long)t,
                     at + 2);
        else
            snprintf(name, sizeof name, "%s", path);
        if (osp_video_frame_rgb(video, b, t, rgb) || osp_png_write(name, w, h, rgb))
            return osp_error_code();
    }
    return OSP_OK;
}

static osp_status write_video_file(const osp_tensor *video, int64_t b, const char *path,
                                   double fps, uint8_t *rgb)
{
    int h = (int)video->shape[3], w = (int)video->shape[4];
    osp_video_writer *vw = osp_video_writer_open(path, w, h, fps, opt_codec, (int)opt_crf);
    if (!vw)
        return osp_error_code();
    osp_status st = OSP_OK;
    for (int64_t t = 0; st == OSP_OK && t < video->shape[2]; t++)
        if ((st = osp_video_frame_rgb(video, b, t, rgb)) == OSP_OK)
            st = osp_video_write_frame(vw, rgb);
    if (st == OSP_OK)
        st = osp_video_writer_commit(vw);
    osp_video_writer_close(vw);
    return st;
}

/* Writes each clip of `video` to files named after `path`. */
static osp_status write_files(const osp_tensor *video, const char *path, out_kind kind,
                              double fps, int64_t *clips_written)
{
    int64_t B = video->shape[0], T = video->shape[2];
    if (kind == OUT_PNG && (B > 1 || T > 1 || *clips_written))
        return osp_error(OSP_ERR_USAGE, "%s: %lld frames do not fit one PNG; put %%d in the "
                         "name for numbered frames", path, (long long)(B * T));
    uint8_t *rgb = malloc((size_t)(video->shape[3] * video->shape[4] * 3));
    if (!rgb)
        return osp_error_nomem("frame", (unsigned long long)(video->shape[3] * video->shape[4] * 3));
    osp_status st = OSP_OK;
    bool several = B > 1 || *clips_written > 0;
    for (int64_t b = 0; st == OSP_OK && b < B; b++) {
        char name[4096];
        clip_path(name, sizeof name, path, *clips_written, several);
        st = kind == OUT_VIDEO ? write_video_file(video, b, name, fps, rgb)
                               : write_png_frames(video, b, name, rgb);
        ++*clips_written;
    }
    free(rgb);
    return st;
}

static osp_tensor *decode_latent(osp_vae *vae, const osp_named_tensor *nt,
                                 const cli_common *common)
{
    const osp_meta_value *scale = osp_meta_get(&nt->meta, "scale");
    double s = scale && scale->kind == OSP_META_FLOAT ? scale->f : OSP_VAE_LATENT_SCALE;
    if (!(s > 0))
        return osp_error(OSP_ERR_DATA, "latent meta `scale` must be positive"), NULL;
    osp_vae_chunking chunking = vae_cli_chunking(vae, true, nt->tensor, &vae_tiling);
    osp_tensor *z = osp_scale_shift(osp_to_device(nt->tensor, common->device),
                                    (float)(1.0 / s), 0.0f);
    return osp_to_device(osp_vae_decode_chunked(vae, z, &vae_tiling, &chunking), OSP_DEVICE_CPU);
}

static double stream_fps(const osp_meta *meta)
{
    if (opt_fps > 0)
        return opt_fps;
    const osp_meta_value *v = osp_meta_get(meta, "fps");
    if (v && v->kind == OSP_META_FLOAT && v->f > 0)
        return v->f;
    if (v && v->kind == OSP_META_INT && v->i > 0)
        return (double)v->i;
    return 24.0; /* sample_t2v.py's default */
}

int main(int argc, char **argv)
{
    cli_common common;
    cli_parse(&tool, argc, argv, &common);
    const char *input = common.argc ? common.argv[0] : NULL;
    out_kind kind = output_kind(common.output);
    osp_vae *vae = vae_cli_load(&common);
    if (vae)
        vae_tiling = vae_cli_tiling(vae);
    osp_stream_reader *r = vae ? osp_stream_open_read(input) : NULL;
    osp_stream_writer *w = r && kind == OUT_STREAM ? osp_stream_open_write(common.output) : NULL;
    osp_status st = r && (w || kind != OUT_STREAM) ? OSP_OK : osp_error_code();
    int64_t latents = 0, clips = 0;
    while (st == OSP_OK) {
        osp_named_tensor nt = {0};
        bool got;
        if ((st = osp_stream_read(r, &nt, &got)) || !got)
            break;
        osp_pool_push();
        if (strcmp(nt.name, "latent") == 0) {
            latents++;
            osp_tensor *video = decode_latent(vae, &nt, &common);
            double fps = stream_fps(&nt.meta);
            osp_meta_set_float(&nt.meta, "fps", fps);
            if (!video)
                st = osp_error_code();
            else if (kind == OUT_STREAM)
                st = osp_stream_write(w, "video", video, &nt.meta);
            else
                st = write_files(video, common.output, kind, fps, &clips);
        } else if (kind == OUT_STREAM) {
            st = osp_stream_write(w, nt.name, nt.tensor, &nt.meta);
        }
        osp_pool_pop();
        osp_named_tensor_free(&nt);
    }
    if (st == OSP_OK && latents == 0)
        st = osp_error(OSP_ERR_DATA, "%s: the stream holds no `latent` tensor",
                       input ? input : "stdin");
    if (st == OSP_OK && w)
        st = osp_stream_commit(w);
    osp_stream_close_write(w);
    osp_stream_close_read(r);
    osp_vae_free(vae);
    return st == OSP_OK ? 0 : osp_log_failure();
}
