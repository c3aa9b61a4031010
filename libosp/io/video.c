/* video.c — FFmpeg-backed video reader and writer (see video.h). */
#include "video.h"
#include "atomic_file.h"
#include "core/log.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <stdlib.h>
#include <string.h>

/* FFmpeg's own messages would add lines to osp's one-line errors; they
 * show only with -v. */
static void set_ffmpeg_log_level(void)
{
    av_log_set_level(osp_log_get_level() >= OSP_LOG_DEBUG ? AV_LOG_WARNING : AV_LOG_QUIET);
}

static osp_status av_fail(int err, const char *what, const char *path)
{
    char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(err, buf, sizeof buf);
    return osp_error(err == AVERROR(ENOMEM) ? OSP_ERR_NOMEM
                     : err == AVERROR(ENOENT) || err == AVERROR(EACCES) ? OSP_ERR_IO
                                                                         : OSP_ERR_DATA,
                     "%s: %s: %s", path, what, buf);
}

/* ---------------- reader ---------------- */

struct osp_video_reader {
    char *path;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;
    int stream;
    bool flushed, eof;
    osp_video_info info;
};

void osp_video_close(osp_video_reader *r)
{
    if (!r)
        return;
    sws_freeContext(r->sws);
    av_packet_free(&r->pkt);
    av_frame_free(&r->frame);
    avcodec_free_context(&r->dec);
    avformat_close_input(&r->fmt);
    free(r->path);
    free(r);
}

osp_video_reader *osp_video_open(const char *path)
{
    set_ffmpeg_log_level();
    osp_video_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        osp_error_nomem("video reader", sizeof *r);
        return NULL;
    }
    int err = avformat_open_input(&r->fmt, path, NULL, NULL);
    if (err < 0) {
        av_fail(err, "cannot open", path);
        goto fail;
    }
    if ((err = avformat_find_stream_info(r->fmt, NULL)) < 0) {
        av_fail(err, "cannot read stream info", path);
        goto fail;
    }
    const AVCodec *codec = NULL;
    r->stream = av_find_best_stream(r->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (r->stream < 0 || !codec) {
        osp_error(OSP_ERR_DATA, "%s: no decodable video stream", path);
        goto fail;
    }
    AVStream *st = r->fmt->streams[r->stream];
    r->dec = avcodec_alloc_context3(codec);
    if (!r->dec || avcodec_parameters_to_context(r->dec, st->codecpar) < 0) {
        osp_error(OSP_ERR_NOMEM, "%s: cannot set up the decoder", path);
        goto fail;
    }
    r->dec->thread_count = 0; /* FFmpeg picks */
    if ((err = avcodec_open2(r->dec, codec, NULL)) < 0) {
        av_fail(err, "cannot open the decoder", path);
        goto fail;
    }
    if (r->dec->width <= 0 || r->dec->height <= 0 || r->dec->width > 16384 ||
        r->dec->height > 16384) {
        osp_error(OSP_ERR_DATA, "%s: unsupported frame size %dx%d", path, r->dec->width,
                  r->dec->height);
        goto fail;
    }
    r->frame = av_frame_alloc();
    r->pkt = av_packet_alloc();
    if (!r->frame || !r->pkt) {
        osp_error_nomem("video frame", 0);
        goto fail;
    }
    r->info.width = r->dec->width;
    r->info.height = r->dec->height;
    /* r_frame_rate is the stream's base rate; the average is skewed for
     * short clips by how the last frame's duration is counted. */
    AVRational rate = st->r_frame_rate.num ? st->r_frame_rate : st->avg_frame_rate;
    r->info.fps = rate.den ? av_q2d(rate) : 0.0;
    r->info.frames = st->nb_frames > 0 ? st->nb_frames : 0;
    return r;
fail:
    osp_video_close(r);
    return NULL;
}

const osp_video_info *osp_video_reader_info(const osp_video_reader *r) { return &r->info; }

/* Converts the decoded frame to RGB24 with the colour matrix and range the
 * stream declares. */
static osp_status to_rgb(osp_video_reader *r, uint8_t *rgb)
{
    AVFrame *f = r->frame;
    if (f->width != r->info.width || f->height != r->info.height)
        return osp_error(OSP_ERR_DATA, "%s: frame size changes mid-stream (%dx%d -> %dx%d)",
                         r->path, r->info.width, r->info.height, f->width, f->height);
    r->sws = sws_getCachedContext(r->sws, f->width, f->height, f->format, f->width, f->height,
                                  AV_PIX_FMT_RGB24,
                                  SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL,
                                  NULL, NULL);
    if (!r->sws)
        return osp_error(OSP_ERR_DATA, "%s: cannot convert pixel format %s to RGB", r->path,
                         av_get_pix_fmt_name(f->format));
    int cs = f->colorspace == AVCOL_SPC_BT709 ? SWS_CS_ITU709 : SWS_CS_DEFAULT;
    const int *coef = sws_getCoefficients(cs);
    int src_full = f->color_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(r->sws, coef, src_full, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                             1 << 16, 1 << 16);
    uint8_t *dst[4] = {rgb};
    int stride[4] = {3 * f->width};
    sws_scale(r->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, stride);
    return OSP_OK;
}

osp_status osp_video_read_frame(osp_video_reader *r, uint8_t *rgb, bool *got)
{
    *got = false;
    for (;;) {
        int err = avcodec_receive_frame(r->dec, r->frame);
        if (err == 0) {
            osp_status st = to_rgb(r, rgb);
            av_frame_unref(r->frame);
            *got = st == OSP_OK;
            return st;
        }
        if (err == AVERROR_EOF)
            return OSP_OK;
        if (err != AVERROR(EAGAIN))
            return av_fail(err, "decoding failed", r->path);
        if (r->flushed)
            return OSP_OK;
        /* Feed the next packet of our stream, or flush at end of file. */
        err = av_read_frame(r->fmt, r->pkt);
        if (err == AVERROR_EOF) {
            r->flushed = true;
            err = avcodec_send_packet(r->dec, NULL);
        } else if (err < 0) {
            return av_fail(err, "reading failed", r->path);
        } else {
            if (r->pkt->stream_index == r->stream)
                err = avcodec_send_packet(r->dec, r->pkt);
            av_packet_unref(r->pkt);
        }
        if (err < 0 && err != AVERROR(EAGAIN) && err != AVERROR_EOF)
            return av_fail(err, "decoding failed", r->path);
    }
}

/* ---------------- writer ---------------- */

struct osp_video_writer {
    osp_atomic_file file;
    AVFormatContext *fmt;
    AVCodecContext *enc;
    AVStream *stream;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;
    uint8_t *rgb; /* a padded copy of the caller's frame: sws_scale reads past the end */
    int64_t next_pts;
    bool header_written, committed;
};

static bool is_lossless_codec(const char *name)
{
    static const char *const lossless[] = {"ffv1", "libx264rgb", "png", "qtrle", "huffyuv"};
    for (size_t i = 0; i < sizeof lossless / sizeof *lossless; i++)
        if (strcmp(name, lossless[i]) == 0)
            return true;
    return false;
}

/* Lossless codecs keep RGB when they can; others use 4:2:0 when the frame
 * size allows it, else 4:4:4, else whatever the encoder offers first. */
static enum AVPixelFormat pick_pix_fmt(const AVCodec *c, int w, int h)
{
    static const enum AVPixelFormat rgb_first[] = {AV_PIX_FMT_RGB24, AV_PIX_FMT_BGR24,
                                                   AV_PIX_FMT_GBRP, AV_PIX_FMT_BGR0,
                                                   AV_PIX_FMT_NONE};
    enum AVPixelFormat yuv_first[] = {(w % 2 || h % 2) ? AV_PIX_FMT_YUV444P : AV_PIX_FMT_YUV420P,
                                      AV_PIX_FMT_YUV444P, AV_PIX_FMT_NONE};
    const enum AVPixelFormat *want = is_lossless_codec(c->name) ? rgb_first : yuv_first;
    if (!c->pix_fmts)
        return want[0];
    for (const enum AVPixelFormat *p = want; *p != AV_PIX_FMT_NONE; p++)
        for (const enum AVPixelFormat *q = c->pix_fmts; *q != AV_PIX_FMT_NONE; q++)
            if (*p == *q)
                return *p;
    return c->pix_fmts[0];
}

static const AVCodec *pick_encoder(const AVOutputFormat *of, const char *name)
{
    if (name)
        return avcodec_find_encoder_by_name(name);
    const AVCodec *x264 = avcodec_find_encoder_by_name("libx264");
    if (x264 && avformat_query_codec(of, AV_CODEC_ID_H264, FF_COMPLIANCE_NORMAL) == 1)
        return x264;
    return avcodec_find_encoder(of->video_codec);
}

void osp_video_writer_close(osp_video_writer *w)
{
    if (!w)
        return;
    if (w->fmt && w->fmt->pb)
        avio_closep(&w->fmt->pb);
    avformat_free_context(w->fmt);
    avcodec_free_context(&w->enc);
    av_frame_free(&w->frame);
    av_packet_free(&w->pkt);
    sws_freeContext(w->sws);
    av_free(w->rgb);
    osp_atomic_abort(&w->file);
    free(w);
}

osp_video_writer *osp_video_writer_open(const char *path, int width, int height, double fps,
                                        const char *codec_name, int crf)
{
    set_ffmpeg_log_level();
    if (width <= 0 || height <= 0 || !(fps > 0) || fps > 1000) {
        osp_error(OSP_ERR_USAGE, "%s: invalid video size %dx%d or frame rate %g", path, width,
                  height, fps);
        return NULL;
    }
    osp_video_writer *w = calloc(1, sizeof *w);
    if (!w) {
        osp_error_nomem("video writer", sizeof *w);
        return NULL;
    }
    w->file.fd = -1;
    int err = avformat_alloc_output_context2(&w->fmt, NULL, NULL, path);
    if (err < 0 || !w->fmt) {
        osp_error(OSP_ERR_USAGE, "%s: no video container for this file name", path);
        goto fail;
    }
    const AVCodec *codec = pick_encoder(w->fmt->oformat, codec_name);
    if (!codec) {
        osp_error(OSP_ERR_USAGE, "%s: video encoder %s is not available", path,
                  codec_name ? codec_name : "(default)");
        goto fail;
    }
    w->stream = avformat_new_stream(w->fmt, NULL);
    w->enc = avcodec_alloc_context3(codec);
    w->frame = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (!w->stream || !w->enc || !w->frame || !w->pkt) {
        osp_error_nomem("video encoder", 0);
        goto fail;
    }
    AVRational rate = av_d2q(fps, 100000);
    w->enc->width = width;
    w->enc->height = height;
    w->enc->time_base = av_inv_q(rate);
    w->enc->framerate = rate;
    w->enc->pix_fmt = pick_pix_fmt(codec, width, height);
    w->enc->gop_size = 12;
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        w->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (strcmp(codec->name, "libx264") == 0)
        av_opt_set_int(w->enc->priv_data, "crf", crf, 0);
    /* libx265 logs to stderr itself. Its CU-tree rate control corrupts the
     * heap on some frames under 64 pixels (Debian 12's x265 3.5 aborts at
     * 40x16, 40x24, 48x16, 48x24; the ffmpeg program too), so it is off
     * there: a small quality cost on frames that small, no crash. */
    if (strcmp(codec->name, "libx265") == 0)
        av_opt_set(w->enc->priv_data, "x265-params",
                   width < 64 || height < 64 ? "log-level=error:cutree=0" : "log-level=error",
                   0);
    if ((err = avcodec_open2(w->enc, codec, NULL)) < 0) {
        av_fail(err, "cannot open the video encoder", path);
        goto fail;
    }
    if ((err = avcodec_parameters_from_context(w->stream->codecpar, w->enc)) < 0) {
        av_fail(err, "cannot configure the stream", path);
        goto fail;
    }
    w->stream->time_base = w->enc->time_base;
    w->frame->format = w->enc->pix_fmt;
    w->frame->width = width;
    w->frame->height = height;
    if ((err = av_frame_get_buffer(w->frame, 0)) < 0) {
        av_fail(err, "cannot allocate a frame", path);
        goto fail;
    }
    w->sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, w->enc->pix_fmt,
                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL,
                            NULL);
    if (!w->sws) {
        osp_error(OSP_ERR_RUNTIME, "%s: cannot convert RGB to %s", path,
                  av_get_pix_fmt_name(w->enc->pix_fmt));
        goto fail;
    }
    if (!(w->rgb = av_mallocz((size_t)width * (size_t)height * 3 + 64))) {
        osp_error_nomem("video frame", (unsigned long long)width * height * 3);
        goto fail;
    }
    if (osp_atomic_open(&w->file, path))
        goto fail;
    if ((err = avio_open(&w->fmt->pb, w->file.tmp_path, AVIO_FLAG_WRITE)) < 0) {
        av_fail(err, "cannot open for writing", path);
        goto fail;
    }
    if ((err = avformat_write_header(w->fmt, NULL)) < 0) {
        av_fail(err, "cannot write the header", path);
        goto fail;
    }
    w->header_written = true;
    return w;
fail:
    osp_video_writer_close(w);
    return NULL;
}

/* Sends a frame (NULL = flush) and writes every packet that comes out. */
static osp_status encode(osp_video_writer *w, AVFrame *frame)
{
    int err = avcodec_send_frame(w->enc, frame);
    if (err < 0)
        return av_fail(err, "encoding failed", w->file.path);
    for (;;) {
        err = avcodec_receive_packet(w->enc, w->pkt);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
            return OSP_OK;
        if (err < 0)
            return av_fail(err, "encoding failed", w->file.path);
        if (w->pkt->duration <= 0) /* one frame; else MP4 gives a lone frame no time */
            w->pkt->duration = 1;
        av_packet_rescale_ts(w->pkt, w->enc->time_base, w->stream->time_base);
        w->pkt->stream_index = w->stream->index;
        err = av_interleaved_write_frame(w->fmt, w->pkt);
        if (err < 0)
            return av_fail(err, "writing failed", w->file.path);
    }
}

osp_status osp_video_write_frame(osp_video_writer *w, const uint8_t *rgb)
{
    int err = av_frame_make_writable(w->frame);
    if (err < 0)
        return av_fail(err, "frame buffer", w->file.path);
    size_t bytes = (size_t)w->enc->width * (size_t)w->enc->height * 3;
    memcpy(w->rgb, rgb, bytes);
    const uint8_t *src[4] = {w->rgb};
    int stride[4] = {3 * w->enc->width};
    sws_scale(w->sws, src, stride, 0, w->enc->height, w->frame->data, w->frame->linesize);
    w->frame->pts = w->next_pts++;
    return encode(w, w->frame);
}

osp_status osp_video_writer_commit(osp_video_writer *w)
{
    osp_status st = encode(w, NULL);
    if (st)
        return st;
    int err = av_write_trailer(w->fmt);
    if (err < 0)
        return av_fail(err, "cannot finish the file", w->file.path);
    if ((err = avio_closep(&w->fmt->pb)) < 0)
        return av_fail(err, "cannot close the file", w->file.path);
    return osp_atomic_commit(&w->file);
}
