/* pwcnet.c — see pwcnet.h. */
#include "pwcnet.h"
#include "weights.h"
#include "backend/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEVELS 6
#define DENSE 5          /* dense convs per decoder */
#define REFINER 7        /* refiner convs */
#define CORR_CHANNELS 81 /* (2 * 4 + 1)^2 */
#define SLOPE 0.1f       /* LeakyReLU negative slope */

static const char *const level_name[LEVELS + 1] = {NULL, "One", "Two", "Thr", "Fou", "Fiv", "Six"};
static const int64_t refiner_dilation[REFINER] = {1, 2, 4, 8, 16, 1, 1};

typedef struct pwc_conv {
    osp_tensor *w, *b; /* owned by the params */
} pwc_conv;

typedef struct pwc_decoder {
    pwc_conv upflow, upfeat; /* transposed 4x4 stride-2 convs (levels 5..2) */
    pwc_conv dense[DENSE], flow;
} pwc_decoder;

struct osp_pwcnet {
    osp_params params; /* reading from the model folder (metrics_params_open) */
    pwc_conv extractor[LEVELS + 1][3]; /* levels 1..6 */
    pwc_decoder decoder[LEVELS + 1];   /* levels 2..6 */
    pwc_conv refiner[REFINER];
    int64_t feat_width[LEVELS + 1];    /* extractor widths E_k */
    osp_device device;
};

/* The checkpoint's spelling of a name: each "net" that starts a path
 * component becomes "module". */
static void module_spelling(const char *name, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = name; *p && o + 1 < len;) {
        if ((p == name || p[-1] == '.') && strncmp(p, "net", 3) == 0) {
            o += (size_t)snprintf(out + o, len - o, "module");
            p += 3;
        } else {
            out[o++] = *p++;
        }
    }
    out[o < len ? o : len - 1] = '\0';
}

/* Loads conv `prefix` with input width `in` and kernel k; the output width
 * is read from the weight (or forced to `out` when out > 0). */
static osp_status load_conv(osp_pwcnet *m, pwc_conv *c, const char *prefix, int64_t in,
                            int64_t out, int64_t k, bool transposed)
{
    char alt[128];
    module_spelling(prefix, alt, sizeof alt);
    return metrics_load_conv(&m->params, prefix, alt, transposed, in, out, k, &c->w, &c->b);
}

static int64_t out_width(const pwc_conv *c) { return c->w->shape[0]; }

static osp_status load_extractor(osp_pwcnet *m)
{
    int64_t in = 3;
    for (int k = 1; k <= LEVELS; k++) {
        char prefix[64];
        for (int j = 0; j < 3; j++) {
            snprintf(prefix, sizeof prefix, "netExtractor.net%s.%d", level_name[k], 2 * j);
            if (load_conv(m, &m->extractor[k][j], prefix, in, j ? in : 0, 3, false))
                return osp_error_code();
            in = out_width(&m->extractor[k][j]);
        }
        m->feat_width[k] = in;
    }
    return OSP_OK;
}

/* Level L's decoder; *feat (in: the width of level L+1's features, out:
 * this level's). */
static osp_status load_decoder(osp_pwcnet *m, int L, int64_t *feat)
{
    pwc_decoder *d = &m->decoder[L];
    const char *name = level_name[L];
    char prefix[64];
    int64_t width = CORR_CHANNELS;
    if (L < LEVELS) {
        snprintf(prefix, sizeof prefix, "net%s.netUpflow", name);
        if (load_conv(m, &d->upflow, prefix, 2, 2, 4, true))
            return osp_error_code();
        snprintf(prefix, sizeof prefix, "net%s.netUpfeat", name);
        if (load_conv(m, &d->upfeat, prefix, *feat, 2, 4, true))
            return osp_error_code();
        width += m->feat_width[L] + 4; /* + first-frame features, up_flow, up_feat */
    }
    for (int j = 0; j < DENSE; j++) {
        snprintf(prefix, sizeof prefix, "net%s.net%s.0", name, level_name[j + 1]);
        if (load_conv(m, &d->dense[j], prefix, width, 0, 3, false))
            return osp_error_code();
        width += out_width(&d->dense[j]);
    }
    snprintf(prefix, sizeof prefix, "net%s.netSix.0", name);
    if (load_conv(m, &d->flow, prefix, width, 2, 3, false))
        return osp_error_code();
    *feat = width;
    return OSP_OK;
}

static osp_status load_refiner(osp_pwcnet *m, int64_t in)
{
    for (int j = 0; j < REFINER; j++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "netRefiner.netMain.%d", 2 * j);
        if (load_conv(m, &m->refiner[j], prefix, in, j == REFINER - 1 ? 2 : 0, 3, false))
            return osp_error_code();
        in = out_width(&m->refiner[j]);
    }
    return OSP_OK;
}

osp_pwcnet *osp_pwcnet_load(const char *path, osp_device device)
{
    osp_pwcnet *m = calloc(1, sizeof *m);
    if (!m) {
        osp_error_nomem("PWC-Net", sizeof *m);
        return NULL;
    }
    m->device = device;
    osp_status st = metrics_params_open(&m->params, path, device);
    if (!st)
        st = load_extractor(m);
    int64_t feat = 0;
    for (int L = LEVELS; L >= 2 && !st; L--)
        st = load_decoder(m, L, &feat);
    if (!st)
        st = load_refiner(m, feat);
    if (st) {
        osp_pwcnet_free(m);
        return NULL;
    }
    return m;
}

void osp_pwcnet_free(osp_pwcnet *m)
{
    if (!m)
        return;
    metrics_params_close(&m->params);
    free(m);
}

/* ---- forward ---- */

static osp_tensor *conv(const pwc_conv *c, osp_tensor *x, int64_t stride, int64_t dilation)
{
    osp_window win = osp_window_default(2);
    win.stride[0] = win.stride[1] = stride;
    win.pad[0] = win.pad[1] = dilation; /* 3x3 kernels: "same" padding */
    win.dilation[0] = win.dilation[1] = dilation;
    return osp_conv(x, c->w, c->b, &win);
}

static osp_tensor *lrelu(osp_tensor *x) { return osp_leaky_relu(x, SLOPE); }

/* 4x4 stride-2 pad-1 transposed conv: exactly doubles the size. */
static osp_tensor *upsample(const pwc_conv *c, osp_tensor *x)
{
    osp_window win = osp_window_default(2);
    win.stride[0] = win.stride[1] = 2;
    win.pad[0] = win.pad[1] = 1;
    return osp_conv_transpose(x, c->w, c->b, &win, NULL);
}

/* The feature pyramid of one frame: f[1..6]. */
static osp_status extract(const osp_pwcnet *m, osp_tensor *x, osp_tensor *f[LEVELS + 1])
{
    for (int k = 1; k <= LEVELS; k++) {
        x = lrelu(conv(&m->extractor[k][0], x, 2, 1));
        x = lrelu(conv(&m->extractor[k][1], x, 1, 1));
        f[k] = x = lrelu(conv(&m->extractor[k][2], x, 1, 1));
    }
    return x ? OSP_OK : osp_error_code();
}

/* Torch's float32 linspace(start, end, n), which the reference builds its
 * pixel-centre grid with: the first half counts up from start, the second
 * down from end. */
static float linspace_at(float start, float end, int64_t n, int64_t i)
{
    float step = n > 1 ? (end - start) / (float)(n - 1) : 0.0f;
    return i < n / 2 ? start + step * (float)i : end - step * (float)(n - 1 - i);
}

osp_tensor *osp_pwcnet_backwarp(osp_tensor *x, osp_tensor *flow)
{
    if (!x || !flow)
        return NULL;
    char sx[96], sf[96];
    if (x->ndim != 4 || flow->ndim != 4 || flow->shape[0] != x->shape[0] || flow->shape[1] != 2 ||
        flow->shape[2] != x->shape[2] || flow->shape[3] != x->shape[3] || x->shape[2] < 2 ||
        x->shape[3] < 2) {
        osp_error(OSP_ERR_RUNTIME, "backwarp: flow %s must be [N, 2, h, w] for x %s (h, w >= 2)",
                  osp_shape_str(flow, sf, sizeof sf), osp_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    int64_t h = x->shape[2], w = x->shape[3];
    osp_tensor *base = osp_tensor_f32(4, (int64_t[]){1, h, w, 2});
    if (!base)
        return NULL;
    float *g = osp_f32(base);
    float x0 = (float)(-1.0 + 1.0 / (double)w), x1 = (float)(1.0 - 1.0 / (double)w);
    float y0 = (float)(-1.0 + 1.0 / (double)h), y1 = (float)(1.0 - 1.0 / (double)h);
    for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < w; j++) {
            g[(i * w + j) * 2] = linspace_at(x0, x1, w, j);
            g[(i * w + j) * 2 + 1] = linspace_at(y0, y1, h, i);
        }
    float half[2] = {(float)(((double)w - 1.0) / 2.0), (float)(((double)h - 1.0) / 2.0)};
    osp_device dev = x->storage->device;
    osp_tensor *norm =
        osp_to_device(osp_tensor_from_data(OSP_F32, 4, (int64_t[]){1, 2, 1, 1}, half), dev);
    osp_tensor *offset = osp_permute(osp_div(flow, norm), (int[]){0, 2, 3, 1});
    osp_tensor *grid = osp_add(osp_to_device(base, dev), offset);
    return osp_grid_sample(x, grid, false, 0.999f);
}

/* One decoder level; *flow and *feat: in, level L+1's (NULL at level 6);
 * out, this level's. */
static osp_status decode(const osp_pwcnet *m, int L, osp_tensor *first, osp_tensor *second,
                         osp_tensor **flow, osp_tensor **feat)
{
    const pwc_decoder *d = &m->decoder[L];
    osp_tensor *x;
    if (L == LEVELS) {
        x = lrelu(osp_correlation(first, second, 4));
    } else {
        osp_tensor *up_flow = upsample(&d->upflow, *flow), *up_feat = upsample(&d->upfeat, *feat);
        float scale = 20.0f / (float)(1 << L); /* the flow in level-L pixels */
        osp_tensor *warped = osp_pwcnet_backwarp(second, osp_scale_shift(up_flow, scale, 0.0f));
        osp_tensor *parts[4] = {lrelu(osp_correlation(first, warped, 4)), first, up_flow, up_feat};
        x = osp_concat(4, parts, 1);
    }
    for (int j = 0; j < DENSE; j++) {
        osp_tensor *parts[2] = {lrelu(conv(&d->dense[j], x, 1, 1)), x};
        x = osp_concat(2, parts, 1);
    }
    *feat = x;
    *flow = conv(&d->flow, x, 1, 1);
    return *flow ? OSP_OK : osp_error_code();
}

static osp_status check_frames(osp_tensor *first, osp_tensor *second)
{
    char s1[96], s2[96];
    if (!first || !second)
        return osp_error_code() ? osp_error_code()
                                : osp_error(OSP_ERR_RUNTIME, "pwcnet: no frames");
    if (first->ndim != 4 || first->shape[1] != 3 || !osp_same_shape(first, second) ||
        first->shape[0] < 1 || first->shape[2] < 1 || first->shape[3] < 1)
        return osp_error(OSP_ERR_DATA, "pwcnet: frames %s and %s must both be [N, 3, H, W]",
                         osp_shape_str(first, s1, sizeof s1), osp_shape_str(second, s2, sizeof s2));
    return OSP_OK;
}

osp_tensor *osp_pwcnet_flow(osp_pwcnet *m, osp_tensor *first, osp_tensor *second)
{
    if (check_frames(first, second))
        return NULL;
    int64_t H = first->shape[2], W = first->shape[3];
    int64_t padded[2] = {(H + 63) / 64 * 64, (W + 63) / 64 * 64};
    osp_pool_push();
    first = osp_to_device(first, m->device);
    second = osp_to_device(second, m->device);
    if (padded[0] != H || padded[1] != W) {
        first = osp_interpolate(first, 2, padded, OSP_INTERP_LINEAR, false);
        second = osp_interpolate(second, 2, padded, OSP_INTERP_LINEAR, false);
    }
    osp_tensor *f[LEVELS + 1], *s[LEVELS + 1], *flow = NULL, *feat = NULL;
    osp_status st = extract(m, first, f);
    if (!st)
        st = extract(m, second, s);
    for (int L = LEVELS; L >= 2 && !st; L--)
        st = decode(m, L, f[L], s[L], &flow, &feat);
    osp_tensor *out = NULL;
    if (!st) {
        osp_tensor *r = feat;
        for (int j = 0; j < REFINER; j++) {
            r = conv(&m->refiner[j], r, 1, refiner_dilation[j]);
            r = j < REFINER - 1 ? lrelu(r) : r;
        }
        int64_t size[2] = {H, W};
        flow = osp_scale_shift(osp_interpolate(osp_add(flow, r), 2, size, OSP_INTERP_LINEAR,
                                               false), 20.0f, 0.0f);
        /* back to pixels of the H x W frame */
        float ratio[2] = {(float)((double)W / (double)padded[1]),
                          (float)((double)H / (double)padded[0])};
        osp_tensor *scale = osp_to_device(
            osp_tensor_from_data(OSP_F32, 4, (int64_t[]){1, 2, 1, 1}, ratio), m->device);
        out = osp_mul(flow, scale);
    }
    return osp_pool_pop_keep(out);
}
