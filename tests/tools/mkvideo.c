/* mkvideo — writes a test clip through libosp's FFmpeg writer, so the VAE
 * suites get real encoded media (lossy codecs, several containers, odd
 * sizes) without an ffmpeg program: a moving pattern like ffmpeg's testsrc
 * (colour bars scrolling left, a vertical ramp, a white square moving
 * diagonally).
 *
 *   mkvideo FILE FRAMES WIDTH HEIGHT [CODEC [FPS]]
 *
 * CODEC: an FFmpeg encoder name, or "default" (the container's choice, as
 * osp-decode makes it); FPS defaults to 24. Exit 0, or 1 with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/video.h"

static void pattern(uint8_t *rgb, int w, int h, int t)
{
    static const uint8_t bars[8][3] = {{255, 255, 255}, {255, 255, 0}, {0, 255, 255},
                                       {0, 255, 0},     {255, 0, 255}, {255, 0, 0},
                                       {0, 0, 255},     {0, 0, 0}};
    int box = (w < h ? w : h) / 4, bx = (3 * t) % (w - box + 1), by = (2 * t) % (h - box + 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + 3 * ((size_t)y * w + x);
            const uint8_t *bar = bars[((x + 4 * t) * 8 / w) % 8];
            int ramp = 255 * y / (h > 1 ? h - 1 : 1);
            bool inside = x >= bx && x < bx + box && y >= by && y < by + box;
            for (int c = 0; c < 3; c++)
                p[c] = inside ? 255 : (uint8_t)((3 * bar[c] + ramp) / 4);
        }
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: mkvideo FILE FRAMES WIDTH HEIGHT [CODEC [FPS]]\n");
        return 1;
    }
    int frames = atoi(argv[2]), w = atoi(argv[3]), h = atoi(argv[4]);
    const char *codec = argc > 5 && strcmp(argv[5], "default") != 0 ? argv[5] : NULL;
    double fps = argc > 6 ? atof(argv[6]) : 24.0;
    if (frames < 1 || w < 2 || h < 2 || w > 4096 || h > 4096 || !(fps > 0)) {
        fprintf(stderr, "mkvideo: bad FRAMES, WIDTH, HEIGHT or FPS\n");
        return 1;
    }
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb) {
        fprintf(stderr, "mkvideo: out of memory\n");
        return 1;
    }
    osp_video_writer *vw = osp_video_writer_open(argv[1], w, h, fps, codec, 18);
    osp_status st = vw ? OSP_OK : osp_error_code();
    for (int t = 0; st == OSP_OK && t < frames; t++) {
        pattern(rgb, w, h, t);
        st = osp_video_write_frame(vw, rgb);
    }
    if (st == OSP_OK)
        st = osp_video_writer_commit(vw);
    osp_video_writer_close(vw);
    free(rgb);
    if (st != OSP_OK) {
        fprintf(stderr, "mkvideo: %s\n", osp_error_message());
        return 1;
    }
    return 0;
}
