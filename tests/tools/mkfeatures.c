/* mkfeatures — writes a synthetic dataset of prepared features for
 * osp-train dit (the layout of libosp/train/dit_data.h): clip k is a
 * coloured square moving across an 8x8 latent grid, rendered straight into
 * the VAE posterior mean (logvar -8: an almost fixed latent), with a text
 * embedding that names its colour and direction.
 *
 *   mkfeatures DIR CLIPS CAPTION_CHANNELS IMAGES [FRAMES SIZE] [latent]
 *
 * DIR/clip-NNN.msgpack: `moments` [1, 8, FRAMES + IMAGES, SIZE, SIZE]
 * (default 5 frames of 8x8; meta image_frames = IMAGES, the images being
 * frames of the same motion), or
 * `latent` [1, 4, ...] with the word `latent`; `embedding` [1, 6, D] and
 * `mask` u8 [1, 6] (two padding tokens). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/stream.h"
#include "train/clip_transform.h"

enum { C = 4, SQUARE = 3, TOKENS = 6, MAX_FRAMES = 64, MAX_SIZE = 64 };

static int FRAMES = 5, SIZE = 8;

static const float colours[4][C] = {
    {1, -1, 0.5f, 0}, {-1, 1, 0, 0.5f}, {0.5f, 0.5f, -1, 1}, {0, -0.5f, 1, -1},
};
static const int dirs[4][2] = {{1, 0}, {0, 1}, {-1, 0}, {0, -1}};

/* frame f of clip k into dst [C][SIZE][SIZE] (pixels of the latent) */
static void render(int k, int f, float *dst)
{
    const float *col = colours[k % 4];
    const int *d = dirs[(k / 4) % 4];
    int x0 = (k * 3 + d[0] * f + 2 * SIZE) % SIZE, y0 = (k * 5 + d[1] * f + 2 * SIZE) % SIZE;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < SIZE; y++)
            for (int x = 0; x < SIZE; x++) {
                int in = (x - x0 + SIZE) % SIZE < SQUARE && (y - y0 + SIZE) % SIZE < SQUARE;
                dst[(c * SIZE + y) * SIZE + x] = in ? col[c] : -0.2f * col[c];
            }
}

static int fail(void)
{
    fprintf(stderr, "mkfeatures: %s\n", osp_error_message());
    return 1;
}

int main(int argc, char **argv)
{
    bool latent = argc > 5 && strcmp(argv[argc - 1], "latent") == 0;
    int nargs = argc - latent;
    int clips = nargs >= 5 ? atoi(argv[2]) : 0, width = nargs >= 5 ? atoi(argv[3]) : 0;
    int images = nargs >= 5 ? atoi(argv[4]) : -1;
    if (nargs == 7) {
        FRAMES = atoi(argv[5]);
        SIZE = atoi(argv[6]);
    }
    if ((nargs != 5 && nargs != 7) || clips < 1 || width < 8 || FRAMES < 1 ||
        FRAMES > MAX_FRAMES || SIZE < SQUARE || SIZE > MAX_SIZE || images < 0 ||
        images > FRAMES) {
        fprintf(stderr, "usage: mkfeatures DIR CLIPS CAPTION_CHANNELS(>=8) IMAGES [FRAMES "
                        "SIZE] [latent]\n");
        return 2;
    }
    mkdir(argv[1], 0755);
    int T = FRAMES + images;
    int64_t channels = latent ? C : 2 * C;
    osp_pool_push();
    for (int k = 0; k < clips; k++) {
        osp_tensor *x = osp_tensor_zeros(OSP_F32, 5, (int64_t[]){1, channels, T, SIZE, SIZE},
                                         OSP_DEVICE_CPU);
        osp_tensor *emb = osp_tensor_zeros(OSP_F32, 3, (int64_t[]){1, TOKENS, width},
                                           OSP_DEVICE_CPU);
        uint8_t keep[TOKENS] = {1, 1, 1, 1, 0, 0};
        osp_tensor *mask = osp_tensor_from_data(OSP_U8, 2, (int64_t[]){1, TOKENS}, keep);
        if (!x || !emb || !mask)
            return fail();
        int64_t frame_of[2 * MAX_FRAMES];
        for (int f = 0; f < FRAMES; f++)
            frame_of[f] = f;
        if (images && osp_image_frame_indices(FRAMES, images, frame_of + FRAMES))
            return fail();
        float *px = osp_f32(x), frame[C * MAX_SIZE * MAX_SIZE];
        for (int f = 0; f < T; f++) {
            render(k, (int)frame_of[f], frame);
            for (int64_t c = 0; c < channels; c++)
                for (int64_t j = 0; j < SIZE * SIZE; j++) {
                    float v = c < C ? (latent ? frame[c * SIZE * SIZE + j]
                                              : frame[c * SIZE * SIZE + j] / 0.18215f)
                                    : -8.0f; /* logvar */
                    px[((c * T) + f) * SIZE * SIZE + j] = v;
                }
        }
        float *pe = osp_f32(emb);
        for (int t = 0; t < TOKENS; t++)
            for (int j = 0; j < width; j++)
                pe[t * width + j] = 0.1f * (float)(((t * 7 + j * 13 + k) % 11) - 5) / 5.0f;
        pe[0 * width + k % 4] = 1.0f;           /* colour word */
        pe[1 * width + 4 + (k / 4) % 4] = 1.0f; /* direction word */
        char path[4096];
        snprintf(path, sizeof path, "%s/clip-%03d.msgpack", argv[1], k);
        osp_meta meta;
        osp_meta_init(&meta);
        if (osp_meta_set_int(&meta, "image_frames", images))
            return fail();
        osp_stream_writer *w = osp_stream_open_write(path);
        if (!w || osp_stream_write(w, latent ? "latent" : "moments", x, images ? &meta : NULL) ||
            osp_stream_write(w, "embedding", emb, NULL) ||
            osp_stream_write(w, "mask", mask, NULL) || osp_stream_commit(w))
            return fail();
        osp_stream_close_write(w);
        osp_meta_free(&meta);
    }
    osp_pool_pop();
    return 0;
}
