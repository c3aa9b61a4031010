/* video.h — reading and writing video files through the FFmpeg libraries
 * (libavformat/libavcodec/libswscale; no ffmpeg process is started).
 *
 * Frames are RGB24, row-major [H][W][3]. The reader streams: it decodes one
 * frame at a time, so a tool holds only the frames it keeps. The writer
 * encodes each frame as it is given, into a temporary file renamed by
 * osp_video_writer_commit (closing without commit removes it). */
#ifndef OSP_VIDEO_H
#define OSP_VIDEO_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

typedef struct osp_video_info {
    int width, height;
    double fps;         /* average frame rate; 0 when unknown */
    int64_t frames;     /* frame count from the container; 0 when unknown */
} osp_video_info;

typedef struct osp_video_reader osp_video_reader;

osp_video_reader *osp_video_open(const char *path);
const osp_video_info *osp_video_reader_info(const osp_video_reader *r);
/* Decodes the next frame into rgb (width*height*3 bytes). *got = false at
 * the end of the stream. */
osp_status osp_video_read_frame(osp_video_reader *r, uint8_t *rgb, bool *got);
void osp_video_close(osp_video_reader *r);

typedef struct osp_video_writer osp_video_writer;

/* Container from the file extension (mp4, mkv, mov, avi, webm, ...).
 * codec: NULL for the default (H.264 via libx264 at CRF quality `crf`
 * where the container takes it, else the container's default), or an
 * FFmpeg encoder name ("ffv1", "mpeg4", "libx264rgb", ...). */
osp_video_writer *osp_video_writer_open(const char *path, int width, int height, double fps,
                                        const char *codec, int crf);
osp_status osp_video_write_frame(osp_video_writer *w, const uint8_t *rgb);
/* Flushes the encoder, finishes the file and renames it into place. */
osp_status osp_video_writer_commit(osp_video_writer *w);
/* Frees; removes the temporary file when not committed. */
void osp_video_writer_close(osp_video_writer *w);

#endif
