/* clip.c — loading clips from video files and PNGs, frame selection, and
 * the pixel conversions and resizing the reference scripts apply. */
#include "clip.h"
#include "png_io.h"
#include "video.h"
#include "core/checked.h"

#include <dirent.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

void osp_clip_free(osp_clip *c)
{
    free(c->rgb);
    memset(c, 0, sizeof *c);
}

void osp_clip_truncate(osp_clip *c, int64_t n)
{
    if (n < c->frames)
        c->frames = n;
}

static size_t frame_bytes(const osp_clip *c)
{
    return (size_t)c->width * (size_t)c->height * 3;
}

/* Appends one frame, growing the buffer geometrically. */
static osp_status append_frame(osp_clip *c, const uint8_t *rgb, int64_t *cap)
{
    if (c->frames == *cap) {
        int64_t ncap = *cap ? 2 * *cap : 16;
        size_t bytes;
        if (!osp_mul_size(frame_bytes(c), (size_t)ncap, &bytes))
            return osp_error(OSP_ERR_DATA, "clip is too large");
        uint8_t *p = realloc(c->rgb, bytes);
        if (!p)
            return osp_error_nomem("video frames", bytes);
        c->rgb = p;
        *cap = ncap;
    }
    memcpy(c->rgb + (size_t)c->frames * frame_bytes(c), rgb, frame_bytes(c));
    c->frames++;
    return OSP_OK;
}

static bool wanted(const osp_frame_select *s, int64_t i, int64_t kept)
{
    return i >= s->start && (i - s->start) % s->stride == 0 &&
           (s->max_frames == 0 || kept < s->max_frames);
}

static bool done_selecting(const osp_frame_select *s, int64_t kept)
{
    return s->max_frames && kept >= s->max_frames;
}

static osp_status load_video(const char *path, const osp_frame_select *sel, osp_clip *c)
{
    osp_video_reader *r = osp_video_open(path);
    if (!r)
        return osp_error_code();
    const osp_video_info *info = osp_video_reader_info(r);
    c->width = info->width;
    c->height = info->height;
    c->fps = info->fps;
    uint8_t *frame = malloc(frame_bytes(c));
    osp_status st = frame ? OSP_OK : osp_error_nomem("video frame", frame_bytes(c));
    int64_t cap = 0, i = 0;
    for (; st == OSP_OK && !done_selecting(sel, c->frames); i++) {
        bool got;
        st = osp_video_read_frame(r, frame, &got);
        if (st || !got)
            break;
        if (wanted(sel, i, c->frames))
            st = append_frame(c, frame, &cap);
    }
    c->source_frames = i;
    free(frame);
    osp_video_close(r);
    return st;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_png_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

/* The *.png files of a folder, sorted by name. */
static osp_status list_folder(const char *dir, char ***names, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return osp_error(OSP_ERR_IO, "%s: cannot open folder", dir);
    size_t n = 0, cap = 0;
    char **list = NULL;
    osp_status st = OSP_OK;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || !has_png_suffix(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                st = osp_error_nomem("file list", cap * sizeof *list);
                break;
            }
            list = grown;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(list[n] = malloc(len))) {
            st = osp_error_nomem("file name", len);
            break;
        }
        snprintf(list[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (n)
        qsort(list, n, sizeof *list, compare_names);
    *names = list;
    *count = n;
    return st;
}

static osp_status load_pngs(char *const *names, size_t count, const char *label,
                            const osp_frame_select *sel, osp_clip *c)
{
    if (count == 0)
        return osp_error(OSP_ERR_DATA, "%s: no PNG files", label);
    int64_t cap = 0;
    c->source_frames = (int64_t)count;
    for (size_t i = 0; i < count && !done_selecting(sel, c->frames); i++) {
        if (!wanted(sel, (int64_t)i, c->frames))
            continue;
        int w, h;
        uint8_t *rgb;
        if (osp_png_read(names[i], &w, &h, &rgb))
            return osp_error_code();
        osp_status st = OSP_OK;
        if (c->frames == 0) {
            c->width = w;
            c->height = h;
        } else if (w != c->width || h != c->height) {
            st = osp_error(OSP_ERR_DATA, "%s: %dx%d differs from the first frame's %dx%d",
                           names[i], w, h, c->width, c->height);
        }
        if (st == OSP_OK)
            st = append_frame(c, rgb, &cap);
        free(rgb);
        if (st)
            return st;
    }
    return OSP_OK;
}

osp_status osp_clip_load(const char *path, const osp_frame_select *sel_in, osp_clip *c)
{
    memset(c, 0, sizeof *c);
    osp_frame_select sel = *sel_in;
    if (sel.stride < 1 || sel.start < 0 || sel.max_frames < 0)
        return osp_error(OSP_ERR_USAGE, "invalid frame selection (start %lld, stride %lld)",
                         (long long)sel.start, (long long)sel.stride);
    struct stat sb;
    osp_status st;
    char **names = NULL;
    size_t count = 0;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        st = list_folder(path, &names, &count);
        if (st == OSP_OK)
            st = load_pngs(names, count, path, &sel, c);
    } else if (strpbrk(path, "*?[") && stat(path, &sb) != 0) {
        glob_t g;
        int rc = glob(path, GLOB_ERR, NULL, &g);
        st = rc == 0 ? load_pngs(g.gl_pathv, g.gl_pathc, path, &sel, c)
                     : osp_error(OSP_ERR_IO, "%s: no file matches", path);
        if (rc == 0)
            globfree(&g);
    } else if (has_png_suffix(path)) {
        char *one[] = {(char *)path};
        st = load_pngs(one, 1, path, &sel, c);
    } else {
        st = load_video(path, &sel, c);
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    if (st == OSP_OK && c->frames == 0)
        st = osp_error(OSP_ERR_DATA, "%s: no frames selected (the source has %lld)", path,
                       (long long)c->source_frames);
    if (st)
        osp_clip_free(c);
    return st;
}

osp_tensor *osp_clip_to_video(const osp_clip *c)
{
    int64_t shape[] = {1, 3, c->frames, c->height, c->width};
    osp_tensor *v = osp_tensor_new(OSP_F32, 5, shape, OSP_DEVICE_CPU);
    if (!v)
        return NULL;
    float *out = osp_f32(v);
    int64_t plane = (int64_t)c->height * c->width, T = c->frames;
    for (int64_t t = 0; t < T; t++) {
        const uint8_t *src = c->rgb + (size_t)t * (size_t)plane * 3;
        for (int64_t i = 0; i < plane; i++)
            for (int ch = 0; ch < 3; ch++)
                out[(ch * T + t) * plane + i] = (float)src[3 * i + ch] / 255.0f * 2.0f - 1.0f;
    }
    return v;
}

osp_status osp_video_frame_rgb(const osp_tensor *v, int64_t b, int64_t t, uint8_t *rgb)
{
    if (v->ndim != 5 || v->shape[1] != 3 || b >= v->shape[0] || t >= v->shape[2] ||
        !osp_is_contiguous(v) || (v->dtype != OSP_F32 && v->dtype != OSP_U8))
        return osp_error(OSP_ERR_DATA, "video must be a contiguous [B, 3, T, H, W] f32 or u8 "
                                       "tensor");
    int64_t T = v->shape[2], plane = v->shape[3] * v->shape[4];
    for (int ch = 0; ch < 3; ch++) {
        int64_t base = ((b * 3 + ch) * T + t) * plane;
        for (int64_t i = 0; i < plane; i++) {
            if (v->dtype == OSP_U8) {
                rgb[3 * i + ch] = ((const uint8_t *)osp_data(v))[base + i];
                continue;
            }
            float y = osp_f32(v)[base + i] / 2.0f + 0.5f;
            y = y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y; /* NaN stays NaN: */
            rgb[3 * i + ch] = y == y ? (uint8_t)(y * 255.0f) : 0;
        }
    }
    return OSP_OK;
}

/* Antialiased linear weights of one axis (n -> m), normalised per output. */
typedef struct aa_axis {
    int64_t *lo, *count;
    double *w; /* m rows of `support_max` weights */
    int64_t stride;
} aa_axis;

static osp_status aa_axis_init(aa_axis *a, int64_t n, int64_t m, bool align_corners)
{
    double scale = align_corners ? (m > 1 ? (double)(n - 1) / (double)(m - 1) : 0.0)
                                 : (double)n / (double)m;
    double support = scale >= 1.0 ? scale : 1.0, inv = scale >= 1.0 ? 1.0 / scale : 1.0;
    a->stride = (int64_t)ceil(support) * 2 + 1;
    a->lo = calloc((size_t)m, sizeof *a->lo);
    a->count = calloc((size_t)m, sizeof *a->count);
    a->w = calloc((size_t)(m * a->stride), sizeof *a->w);
    if (!a->lo || !a->count || !a->w)
        return osp_error_nomem("resize weights", (unsigned long long)(m * a->stride));
    for (int64_t i = 0; i < m; i++) {
        double center = scale * ((double)i + 0.5);
        int64_t lo = (int64_t)(center - support + 0.5), hi = (int64_t)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > n) hi = n;
        if (hi - lo > a->stride) hi = lo + a->stride;
        double sum = 0;
        for (int64_t j = lo; j < hi; j++) {
            double w = 1.0 - fabs(((double)j - center + 0.5) * inv);
            a->w[i * a->stride + (j - lo)] = w > 0 ? w : 0;
            sum += w > 0 ? w : 0;
        }
        for (int64_t j = lo; j < hi && sum > 0; j++)
            a->w[i * a->stride + (j - lo)] /= sum;
        a->lo[i] = lo;
        a->count[i] = hi - lo;
    }
    return OSP_OK;
}

static void aa_axis_free(aa_axis *a)
{
    free(a->lo);
    free(a->count);
    free(a->w);
}

osp_tensor *osp_video_resize_antialias(osp_tensor *video, int64_t H2, int64_t W2,
                                       bool align_corners)
{
    if (!video)
        return NULL;
    if (video->ndim != 5 || video->dtype != OSP_F32 || !osp_is_contiguous(video) || H2 < 1 ||
        W2 < 1) {
        osp_error(OSP_ERR_RUNTIME, "resize: expected a contiguous f32 [B,C,T,H,W] video");
        return NULL;
    }
    int64_t planes = video->shape[0] * video->shape[1] * video->shape[2];
    int64_t H = video->shape[3], W = video->shape[4];
    int64_t shape[] = {video->shape[0], video->shape[1], video->shape[2], H2, W2};
    osp_tensor *out = osp_tensor_new(OSP_F32, 5, shape, OSP_DEVICE_CPU);
    aa_axis ax = {0}, ay = {0};
    if (!out || aa_axis_init(&ax, W, W2, align_corners) ||
        aa_axis_init(&ay, H, H2, align_corners)) {
        aa_axis_free(&ax);
        aa_axis_free(&ay);
        return NULL;
    }
    osp_status st = OSP_OK;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        const float *src = osp_f32(video) + p * H * W;
        float *dst = osp_f32(out) + p * H2 * W2;
        double *rows = malloc((size_t)(H * W2) * sizeof *rows); /* width pass first */
        if (!rows) {
#pragma omp critical
            st = OSP_ERR_NOMEM;
            continue;
        }
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W2; x++) {
                double s = 0;
                for (int64_t k = 0; k < ax.count[x]; k++)
                    s += ax.w[x * ax.stride + k] * src[y * W + ax.lo[x] + k];
                rows[y * W2 + x] = s;
            }
        for (int64_t y = 0; y < H2; y++)
            for (int64_t x = 0; x < W2; x++) {
                double s = 0;
                for (int64_t k = 0; k < ay.count[y]; k++)
                    s += ay.w[y * ay.stride + k] * rows[(ay.lo[y] + k) * W2 + x];
                dst[y * W2 + x] = (float)s;
            }
        free(rows);
    }
    aa_axis_free(&ax);
    aa_axis_free(&ay);
    if (st) {
        osp_error_nomem("resize buffer", (unsigned long long)(H * W2) * sizeof(double));
        return NULL;
    }
    return out;
}

osp_tensor *osp_video_center_crop(osp_tensor *video, int64_t h, int64_t w)
{
    if (!video)
        return NULL;
    int64_t H = video->shape[3], W = video->shape[4];
    if (video->ndim != 5 || h > H || w > W || h < 1 || w < 1) {
        osp_error(OSP_ERR_USAGE, "cannot crop %lldx%lld out of %lldx%lld frames", (long long)h,
                  (long long)w, (long long)H, (long long)W);
        return NULL;
    }
    int64_t top = (int64_t)nearbyint((double)(H - h) / 2.0);
    int64_t left = (int64_t)nearbyint((double)(W - w) / 2.0);
    osp_tensor *v = osp_view_slice(osp_view_slice(video, 3, top, top + h, 1), 4, left, left + w, 1);
    return osp_tensor_contiguous(v);
}

void osp_short_side_size(int64_t h, int64_t w, int64_t th, int64_t tw, int64_t *oh, int64_t *ow)
{
    /* rec_video_vae.py: the short side becomes `res`, the long side
     * int(res * long / short) in double; res grows until both targets fit. */
    for (int64_t res = w <= h ? tw : th;; res++) {
        if (w <= h) {
            *ow = res;
            *oh = (int64_t)((double)res / ((double)w / (double)h));
        } else {
            *oh = res;
            *ow = (int64_t)((double)res * ((double)w / (double)h));
        }
        if (*oh >= th && *ow >= tw)
            return;
    }
}
