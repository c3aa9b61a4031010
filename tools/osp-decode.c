/* osp-decode — decodes `latent` tensors with the CausalVideoVAE into video:
 * a stream with `video`, PNG images, or a video file written by FFmpeg. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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
               "or numbered frames when the name holds %d or %04d; other: a video file\n"
               "(mp4, mkv...); frames go out as chunks finish.\n"
               "Several clips (batch > 1) go to NAME-0.EXT, NAME-1.EXT, ...",
    .example = "osp-decode -m vae clip.latent -o clip.mp4\n"
               "osp-encode -m vae in.mp4 | osp-decode -m vae -o 'frame-%04d.png'",
    .options = options,
    .min_args = 0,
    .max_args = 1,
    .stdin_input = true,
};

/* Where the frame-number pattern (%d or %0Nd, N < 10) starts in path, and
 * its length and width; NULL when there is none. */
static const char *frame_pattern(const char *path, int *len, int *width)
{
    for (const char *p = strchr(path, '%'); p; p = strchr(p + 1, '%')) {
        if (p[1] == 'd' || (p[1] == '0' && p[2] >= '1' && p[2] <= '9' && p[3] == 'd')) {
            *len = p[1] == 'd' ? 2 : 4;
            *width = p[1] == 'd' ? 0 : p[2] - '0';
            return p;
        }
    }
    return NULL;
}

typedef enum out_kind { OUT_STREAM, OUT_PNG, OUT_PNG_SEQUENCE, OUT_VIDEO } out_kind;

static out_kind output_kind(const char *path)
{
    if (!path)
        return OUT_STREAM;
    const char *dot = strrchr(path, '.');
    if (dot && strcasecmp(dot, ".msgpack") == 0)
        return OUT_STREAM;
    int len, width;
    if (dot && strcasecmp(dot, ".png") == 0)
        return frame_pattern(path, &len, &width) ? OUT_PNG_SEQUENCE : OUT_PNG;
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

/* Decoded frames going to files as they arrive (chunk by chunk when the
 * decode is chunked): one video writer per clip of the batch, or PNGs.
 * PNGs written before a failure are removed again. */
typedef struct file_sink {
    out_kind kind;
    const char *path;
    double fps;
    int64_t first_clip; /* clips written for earlier latents */
    bool several;       /* names get "-<clip>" */
    int64_t batch;
    osp_video_writer **writers;
    uint8_t *rgb;
    char **pngs;
    size_t n_pngs, cap_pngs;
} file_sink;

/* Frame t of clip b as a PNG name: "-<clip>" when there are several, the
 * pattern (the only substitution; the name comes from the user) = t. */
static osp_status png_name(file_sink *s, int64_t b, int64_t t, char **out)
{
    char clip[4096], name[4096];
    clip_path(clip, sizeof clip, s->path, s->first_clip + b, s->several);
    int len, width;
    const char *at = frame_pattern(clip, &len, &width);
    if (at)
        snprintf(name, sizeof name, "%.*s%0*lld%s", (int)(at - clip), clip, width, (long long)t,
                 at + len);
    else
        snprintf(name, sizeof name, "%s", clip);
    if (s->n_pngs == s->cap_pngs) {
        size_t cap = s->cap_pngs ? 2 * s->cap_pngs : 64;
        char **grown = realloc(s->pngs, cap * sizeof *grown);
        if (!grown)
            return osp_error_nomem("PNG names", (unsigned long long)cap * sizeof *grown);
        s->pngs = grown;
        s->cap_pngs = cap;
    }
    *out = strdup(name);
    return *out ? OSP_OK : osp_error_nomem("PNG name", strlen(name));
}

static osp_status sink_open(file_sink *s, int64_t batch, int h, int w)
{
    s->batch = batch;
    s->rgb = malloc((size_t)h * (size_t)w * 3);
    if (!s->rgb)
        return osp_error_nomem("frame", (unsigned long long)h * (unsigned long long)w * 3);
    if (s->kind != OUT_VIDEO)
        return OSP_OK;
    s->writers = calloc((size_t)batch, sizeof *s->writers);
    if (!s->writers)
        return osp_error_nomem("video writers", (unsigned long long)batch * sizeof *s->writers);
    for (int64_t b = 0; b < batch; b++) {
        char name[4096];
        clip_path(name, sizeof name, s->path, s->first_clip + b, s->several);
        if (!(s->writers[b] = osp_video_writer_open(name, w, h, s->fps, opt_codec, (int)opt_crf)))
            return osp_error_code();
    }
    return OSP_OK;
}

/* osp_vae_frames_fn: frames [first, first + n) of every clip. */
static osp_status sink_frames(void *ctx, osp_tensor *frames, int64_t first)
{
    file_sink *s = ctx;
    osp_tensor *video = osp_to_device(frames, OSP_DEVICE_CPU);
    if (!video)
        return osp_error_code();
    int h = (int)video->shape[3], w = (int)video->shape[4];
    osp_status st = s->rgb ? OSP_OK : sink_open(s, video->shape[0], h, w);
    for (int64_t b = 0; st == OSP_OK && b < s->batch; b++)
        for (int64_t t = 0; st == OSP_OK && t < video->shape[2]; t++) {
            if ((st = osp_video_frame_rgb(video, b, t, s->rgb)))
                break;
            if (s->kind == OUT_VIDEO) {
                st = osp_video_write_frame(s->writers[b], s->rgb);
                continue;
            }
            char *name;
            if ((st = png_name(s, b, first + t, &name)) == OSP_OK) {
                s->pngs[s->n_pngs++] = name;
                st = osp_png_write(name, w, h, s->rgb);
            }
        }
    return st;
}

/* Commits the videos when st is OK; removes PNGs when it is not. */
static osp_status sink_close(file_sink *s, osp_status st)
{
    for (int64_t b = 0; s->writers && b < s->batch; b++) {
        if (st == OSP_OK)
            st = osp_video_writer_commit(s->writers[b]);
        osp_video_writer_close(s->writers[b]);
    }
    for (size_t i = 0; i < s->n_pngs; i++) {
        if (st != OSP_OK)
            unlink(s->pngs[i]);
        free(s->pngs[i]);
    }
    free(s->pngs);
    free(s->writers);
    free(s->rgb);
    return st;
}

/* z = latent / scale (meta `scale`, else 0.18215) on the chosen device. */
static osp_tensor *unscaled_latent(const osp_named_tensor *nt, const cli_common *common)
{
    const osp_meta_value *scale = osp_meta_get(&nt->meta, "scale");
    double s = scale && scale->kind == OSP_META_FLOAT ? scale->f : OSP_VAE_LATENT_SCALE;
    if (!(s > 0))
        return osp_error(OSP_ERR_DATA, "latent meta `scale` must be positive"), NULL;
    return osp_scale_shift(osp_to_device(nt->tensor, common->device), (float)(1.0 / s), 0.0f);
}

/* Decodes one latent into files; frames are written as chunks finish. */
static osp_status decode_to_files(osp_vae *vae, const osp_named_tensor *nt,
                                  const cli_common *common, out_kind kind, double fps,
                                  int64_t *clips_written)
{
    const osp_tensor *l = nt->tensor;
    bool one_frame = l->ndim == 5 && l->shape[0] == 1 && l->shape[2] == 1;
    if (kind == OUT_PNG && (!one_frame || *clips_written))
        return osp_error(OSP_ERR_USAGE, "%s: the decoded frames do not fit one PNG; put %%d "
                         "in the name for numbered frames", common->output);
    file_sink s = {.kind = kind, .path = common->output, .fps = fps,
                   .first_clip = *clips_written,
                   .several = *clips_written > 0 || (l->ndim == 5 && l->shape[0] > 1)};
    osp_vae_chunking chunking = vae_cli_chunking(vae, true, nt->tensor, &vae_tiling, common->device);
    osp_tensor *z = unscaled_latent(nt, common);
    osp_status st = z ? osp_vae_decode_each(vae, z, &vae_tiling, &chunking, sink_frames, &s)
                      : osp_error_code();
    st = sink_close(&s, st);
    if (st == OSP_OK)
        *clips_written += s.batch;
    return st;
}

static osp_tensor *decode_latent(osp_vae *vae, const osp_named_tensor *nt,
                                 const cli_common *common)
{
    osp_vae_chunking chunking = vae_cli_chunking(vae, true, nt->tensor, &vae_tiling, common->device);
    osp_tensor *z = unscaled_latent(nt, common);
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
            double fps = stream_fps(&nt.meta);
            osp_meta_set_float(&nt.meta, "fps", fps);
            if (kind != OUT_STREAM) {
                st = decode_to_files(vae, &nt, &common, kind, fps, &clips);
            } else {
                osp_tensor *video = decode_latent(vae, &nt, &common);
                st = video ? osp_stream_write(w, "video", video, &nt.meta) : osp_error_code();
            }
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
