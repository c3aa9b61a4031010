/* clip_transform.c — see clip_transform.h. The resize follows PyTorch's
 * separable antialiased filter for float input, in float arithmetic where
 * the reference uses it. */
#include "clip_transform.h"

#include <math.h>
#include <stdlib.h>

#include "backend/ops.h"
#include "core/checked.h"

void osp_linspace_int(int64_t first, int64_t last, int count, int64_t *out)
{
    double step = count > 1 ? (double)(last - first) / (count - 1) : 0.0;
    for (int k = 0; k < count; k++)
        out[k] = (int64_t)floor(k * step + (double)first);
    if (count > 1)
        out[count - 1] = last;
}

int64_t osp_frame_last_start(int64_t n, int frames, int rate)
{
    int64_t last = n - (int64_t)frames * rate - 1;
    return last > 0 ? last : 0;
}

osp_status osp_frame_indices(int64_t n, int frames, int rate, int64_t begin, int64_t *idx)
{
    if (n < 1 || frames < 1 || rate < 1)
        return osp_error(OSP_ERR_DATA, "frame sampling: %lld frames, F = %d, rate %d",
                         (long long)n, frames, rate);
    if (begin < 0 || begin > osp_frame_last_start(n, frames, rate))
        return osp_error(OSP_ERR_DATA, "frame sampling: start %lld outside [0, %lld]",
                         (long long)begin, (long long)osp_frame_last_start(n, frames, rate));
    int64_t end = begin + (int64_t)frames * rate;
    if (end > n)
        end = n;
    osp_linspace_int(begin, end - 1, frames, idx);
    return OSP_OK;
}

osp_status osp_image_frame_indices(int frames, int images, int64_t *idx)
{
    if (images < 1 || images > frames)
        return osp_error(OSP_ERR_DATA, "%d image frames need 1 <= N <= F = %d", images, frames);
    osp_linspace_int(0, frames - 1, images, idx);
    return OSP_OK;
}

/* ---- antialiased bilinear resize, one axis ---- */

typedef struct aa_taps {
    int64_t *lo, *count; /* per output index */
    float *w;            /* [n_out][max_count] */
    int64_t max_count;
} aa_taps;

static void taps_free(aa_taps *t)
{
    free(t->lo);
    free(t->count);
    free(t->w);
}

static osp_status taps_make(aa_taps *t, int64_t n_in, int64_t n_out)
{
    float scale = n_out > 1 ? (float)(n_in - 1) / (float)(n_out - 1) : 0.0f;
    float support = scale >= 1.0f ? scale : 1.0f; /* interp_size/2 = 1 */
    float inv = scale >= 1.0f ? 1.0f / scale : 1.0f;
    t->max_count = (int64_t)ceilf(support) * 2 + 1;
    t->lo = calloc((size_t)n_out, sizeof *t->lo);
    t->count = calloc((size_t)n_out, sizeof *t->count);
    t->w = calloc((size_t)(n_out * t->max_count), sizeof *t->w);
    if (!t->lo || !t->count || !t->w) {
        taps_free(t);
        return osp_error_nomem("resize weights", (unsigned long long)(n_out * t->max_count * 4));
    }
    for (int64_t i = 0; i < n_out; i++) {
        float center = (float)(scale * (i + 0.5));
        int64_t lo = (int64_t)(center - support + 0.5), hi = (int64_t)(center + support + 0.5);
        lo = lo > 0 ? lo : 0;
        hi = hi < n_in ? hi : n_in;
        int64_t count = hi - lo;
        if (count > t->max_count)
            count = t->max_count;
        float *w = t->w + i * t->max_count, total = 0.0f;
        for (int64_t j = 0; j < count; j++) {
            float x = (float)(((float)(j + lo) - center + 0.5) * inv);
            x = fabsf(x);
            w[j] = x < 1.0f ? 1.0f - x : 0.0f;
            total += w[j];
        }
        if (total != 0.0f)
            for (int64_t j = 0; j < count; j++)
                w[j] /= total;
        t->lo[i] = lo;
        t->count[i] = count;
    }
    return OSP_OK;
}

/* dst[r][i] = Σ_j w_ij src[r][lo_i + j] over `rows` rows, strided: element
 * k of row r sits at r*row_stride + k*elem_stride. */
static void resize_axis(const aa_taps *t, const float *src, float *dst, int64_t rows,
                        int64_t n_out, int64_t src_row, int64_t src_elem, int64_t dst_row,
                        int64_t dst_elem)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n_out; i++) {
            const float *w = t->w + i * t->max_count;
            float acc = 0.0f;
            for (int64_t j = 0; j < t->count[i]; j++)
                acc += w[j] * src[r * src_row + (t->lo[i] + j) * src_elem];
            dst[r * dst_row + i * dst_elem] = acc;
        }
}

osp_tensor *osp_clip_crop_resize(osp_tensor *video, int64_t size)
{
    if (!video)
        return NULL;
    if (video->dtype != OSP_U8 || video->ndim != 4 || video->shape[1] != 3 ||
        video->shape[0] < 1 || video->shape[2] < 1 || video->shape[3] < 1 || size < 1) {
        char buf[96];
        osp_error(OSP_ERR_DATA, "clip transform: expected a u8 video [T, 3, H, W] and a size "
                                ">= 1, got %s", osp_shape_str(video, buf, sizeof buf));
        return NULL;
    }
    osp_tensor *v = osp_contiguous(video);
    int64_t T = v ? v->shape[0] : 0, H = video->shape[2], W = video->shape[3];
    int64_t n = H < W ? H : W;
    int64_t top = H > W ? (int64_t)nearbyint((H - W) / 2.0) : 0;
    int64_t left = W > H ? (int64_t)nearbyint((W - H) / 2.0) : 0;
    int64_t planes = T * 3;
    osp_tensor *out = osp_tensor_new(OSP_F32, 4, (int64_t[]){T, 3, size, size}, OSP_DEVICE_CPU);
    float *sq = NULL, *mid = NULL;
    int64_t sq_n = 0, mid_n = 0;
    aa_taps taps = {0};
    if (!v || !out)
        return NULL;
    /* calloc: at -O1 (check-asan) gcc cannot see that the loop below fills sq */
    if (!osp_shape_numel((int64_t[]){planes, n, n}, 3, &sq_n) ||
        !osp_shape_numel((int64_t[]){planes, n, size}, 3, &mid_n) ||
        !(sq = calloc((size_t)sq_n, sizeof *sq)) || !(mid = malloc((size_t)mid_n * sizeof *mid))) {
        free(sq);
        osp_error_nomem("clip transform", (unsigned long long)mid_n * sizeof *mid);
        return NULL;
    }
    if (taps_make(&taps, n, size)) {
        free(sq);
        free(mid);
        return NULL;
    }
    const uint8_t *src = osp_data(v);
    for (int64_t p = 0; p < planes; p++)
        for (int64_t y = 0; y < n; y++)
            for (int64_t x = 0; x < n; x++)
                sq[(p * n + y) * n + x] = src[(p * H + top + y) * W + left + x] / 255.0f;
    float *dst = osp_f32(out);
    if (n == size) {
        for (int64_t i = 0; i < sq_n; i++)
            dst[i] = sq[i];
    } else {
        /* width: rows are (plane, y); then height: per plane, columns x */
        resize_axis(&taps, sq, mid, planes * n, size, n, 1, size, 1);
        for (int64_t p = 0; p < planes; p++)
            resize_axis(&taps, mid + p * n * size, dst + p * size * size, size, size, 1, size, 1,
                        size);
    }
    taps_free(&taps);
    free(sq);
    free(mid);
    return out;
}

osp_tensor *osp_clip_transform(osp_tensor *video, int64_t size, bool flip)
{
    osp_tensor *x = osp_clip_crop_resize(video, size);
    if (!x)
        return NULL;
    float *p = osp_f32(x);
    int64_t rows = osp_numel(x) / size;
    for (int64_t r = 0; r < rows; r++) {
        float *row = p + r * size;
        if (flip)
            for (int64_t i = 0, j = size - 1; i < j; i++, j--) {
                float tmp = row[i];
                row[i] = row[j];
                row[j] = tmp;
            }
        for (int64_t i = 0; i < size; i++)
            row[i] = 2.0f * row[i] - 1.0f;
    }
    return x;
}
