/* mkevalinput — writes osp-eval's bats inputs from the eval fixture videos
 * (fixtures/eval/videos.safetensors: `real`, `generated` u8 [B, T, H, W, 3])
 * and broken weight files, through libosp's own writers.
 *
 *   mkevalinput png VIDEOS KEY B DIR [HxW] video B of KEY as DIR/000.png ...
 *                                          (or their top-left HxW corner)
 *   mkevalinput video VIDEOS KEY B FILE    video B as a lossless FFV1 file
 *   mkevalinput stream VIDEOS KEY FILE u8|f32
 *                                          all of KEY as a `video` stream
 *                                          [B, 3, T, H, W] (f32: u8/255*2-1)
 *   mkevalinput drop WEIGHTS NAME FILE     WEIGHTS without tensor NAME
 *   mkevalinput reshape WEIGHTS NAME FILE  WEIGHTS with NAME flattened to 1-D
 *   mkevalinput flat FILE HxW V N          a PNG of HxW pixels, every byte V
 *                                          but the first N, which are V+1
 *   mkevalinput values SAFETENSORS KEY     KEY's values, one a line, as the
 *                                          shortest round-trip decimals
 *                                          (NaN as null, as JSON has it)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/png_io.h"
#include "io/safetensors.h"
#include "io/stream.h"
#include "io/video.h"

static int fail(void)
{
    fprintf(stderr, "mkevalinput: %s\n", osp_error_message());
    return 1;
}

static osp_tensor *load(const char *path, const char *key)
{
    osp_safetensors *st = osp_safetensors_open(path);
    osp_tensor *t = st ? osp_tensor_contiguous(osp_safetensors_get(st, key)) : NULL;
    osp_safetensors_close(st);
    return t;
}

/* Frame t of video b of a [B, T, H, W, 3] tensor. */
static const uint8_t *frame(const osp_tensor *v, int64_t b, int64_t t)
{
    int64_t size = v->shape[2] * v->shape[3] * 3;
    return (const uint8_t *)osp_data(v) + (b * v->shape[1] + t) * size;
}

static int write_png(const osp_tensor *v, int64_t b, const char *dir, const char *size)
{
    int H = (int)v->shape[2], W = (int)v->shape[3], h = H, w = W;
    if (size && (sscanf(size, "%dx%d", &h, &w) != 2 || h < 1 || w < 1 || h > H || w > W))
        return 2;
    uint8_t *corner = malloc((size_t)h * (size_t)w * 3);
    mkdir(dir, 0755);
    osp_status st = corner ? OSP_OK : osp_error_nomem("frame", (size_t)h * (size_t)w * 3);
    for (int64_t t = 0; t < v->shape[1] && !st; t++) {
        for (int y = 0; y < h; y++)
            memcpy(corner + (size_t)y * (size_t)w * 3, frame(v, b, t) + (size_t)y * (size_t)W * 3,
                   (size_t)w * 3);
        char path[4096];
        snprintf(path, sizeof path, "%s/%03lld.png", dir, (long long)t);
        st = osp_png_write(path, w, h, corner);
    }
    free(corner);
    return st ? fail() : 0;
}

static int write_video(const osp_tensor *v, int64_t b, const char *path)
{
    osp_video_writer *w =
        osp_video_writer_open(path, (int)v->shape[3], (int)v->shape[2], 10.0, "ffv1", 0);
    osp_status st = w ? OSP_OK : osp_error_code();
    for (int64_t t = 0; t < v->shape[1] && !st; t++)
        st = osp_video_write_frame(w, frame(v, b, t));
    if (!st)
        st = osp_video_writer_commit(w);
    osp_video_writer_close(w);
    return st ? fail() : 0;
}

static int write_stream(const osp_tensor *v, const char *path, const char *dtype)
{
    int64_t B = v->shape[0], T = v->shape[1], H = v->shape[2], W = v->shape[3];
    int64_t shape[5] = {B, 3, T, H, W}, plane = H * W;
    bool f32 = strcmp(dtype, "f32") == 0;
    osp_tensor *out = osp_tensor_new(f32 ? OSP_F32 : OSP_U8, 5, shape, OSP_DEVICE_CPU);
    if (!out)
        return fail();
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t i = 0; i < plane; i++)
                for (int64_t c = 0; c < 3; c++) {
                    uint8_t u = frame(v, b, t)[3 * i + c];
                    int64_t o = ((b * 3 + c) * T + t) * plane + i;
                    if (f32)
                        osp_f32(out)[o] = (float)u / 255.0f * 2.0f - 1.0f;
                    else
                        ((uint8_t *)osp_data(out))[o] = u;
                }
    osp_stream_writer *w = osp_stream_open_write(path);
    osp_status st = w ? osp_stream_write(w, "video", out, NULL) : osp_error_code();
    if (!st)
        st = osp_stream_commit(w);
    osp_stream_close_write(w);
    return st ? fail() : 0;
}

/* A copy of a safetensors file with one tensor dropped or flattened. */
static int write_broken(const char *in, const char *name, const char *path, bool drop)
{
    osp_safetensors *st = osp_safetensors_open(in);
    if (!st)
        return fail();
    size_t n = osp_safetensors_count(st), k = 0;
    const char **names = calloc(n, sizeof *names);
    osp_tensor **tensors = calloc(n, sizeof *tensors);
    for (size_t i = 0; names && tensors && i < n; i++) {
        const osp_st_entry *e = osp_safetensors_entry(st, i);
        osp_tensor *t = osp_tensor_contiguous(osp_safetensors_get(st, e->name));
        if (strcmp(e->name, name) == 0) {
            if (drop)
                continue;
            t = osp_view_reshape(t, 1, (int64_t[]){-1});
        }
        names[k] = e->name;
        tensors[k++] = t;
    }
    osp_status s = names && tensors
                       ? osp_safetensors_write(path, (int)k, names, tensors, NULL)
                       : osp_error_nomem("tensor list", n);
    free(names);
    free(tensors);
    osp_safetensors_close(st);
    return s ? fail() : 0;
}

static int write_flat(const char *path, const char *size, int value, long long n)
{
    int h, w;
    if (sscanf(size, "%dx%d", &h, &w) != 2 || h < 1 || w < 1 || h > 4096 || w > 4096 ||
        value < 0 || value > 254 || n < 0 || n > 3LL * h * w)
        return 2;
    size_t bytes = (size_t)h * (size_t)w * 3;
    uint8_t *rgb = malloc(bytes);
    if (!rgb)
        return 1;
    memset(rgb, value, bytes);
    for (long long i = 0; i < n; i++)
        rgb[i]++;
    osp_status st = osp_png_write(path, w, h, rgb);
    free(rgb);
    return st ? fail() : 0;
}

static int print_values(const char *path, const char *key)
{
    osp_tensor *t = osp_tensor_to_dtype(load(path, key), OSP_F64);
    if (!t)
        return fail();
    const double *v = osp_data(t);
    for (int64_t i = 0; i < osp_numel(t); i++) {
        char buf[32];
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v[i]);
            if (strtod(buf, NULL) == v[i])
                break;
        }
        puts(isnan(v[i]) ? "null" : buf);
    }
    return 0;
}

int main(int argc, char **argv)
{
    osp_pool_push();
    const char *cmd = argc > 1 ? argv[1] : "";
    if (strcmp(cmd, "png") == 0 && (argc == 6 || argc == 7)) {
        osp_tensor *v = load(argv[2], argv[3]);
        return v ? write_png(v, atoll(argv[4]), argv[5], argc == 7 ? argv[6] : NULL) : fail();
    }
    if (strcmp(cmd, "video") == 0 && argc == 6) {
        osp_tensor *v = load(argv[2], argv[3]);
        return v ? write_video(v, atoll(argv[4]), argv[5]) : fail();
    }
    if (strcmp(cmd, "stream") == 0 && argc == 6) {
        osp_tensor *v = load(argv[2], argv[3]);
        return v ? write_stream(v, argv[4], argv[5]) : fail();
    }
    if ((strcmp(cmd, "drop") == 0 || strcmp(cmd, "reshape") == 0) && argc == 5)
        return write_broken(argv[2], argv[3], argv[4], strcmp(cmd, "drop") == 0);
    if (strcmp(cmd, "flat") == 0 && argc == 6)
        return write_flat(argv[2], argv[3], atoi(argv[4]), atoll(argv[5]));
    if (strcmp(cmd, "values") == 0 && argc == 4)
        return print_values(argv[2], argv[3]);
    fprintf(stderr, "usage: mkevalinput png VIDEOS KEY B DIR [HxW] | video VIDEOS KEY B OUT | "
                    "stream VIDEOS KEY OUT u8|f32 | drop|reshape WEIGHTS NAME OUT | "
                    "flat OUT.png HxW V N | values SAFETENSORS KEY\n");
    return 2;
}
