/* lpips.c — see lpips.h. */
#include "lpips.h"
#include "metrics_util.h"
#include "weights.h"
#include "backend/ops.h"

#include <stdio.h>
#include <stdlib.h>

/* One conv of a trunk's torchvision `features` stack: its index, kernel,
 * stride and padding, whether the trunk's max-pool precedes it and whether
 * its ReLU output is one of the five taps. Every conv is followed by a
 * ReLU. */
typedef struct {
    int index, kernel, stride, pad;
    bool pool_before, tap;
} trunk_conv;

#define MAX_CONVS 13

typedef struct {
    const char *name;
    const trunk_conv *conv;
    int n_convs;
    int pool_kernel; /* the max-pools' window; their stride is 2 */
    int min_side;
    bool from_unit;  /* frames in [0, 1] (2x - 1 first), else in [-1, 1] */
} trunk;

/* AlexNet (spec/eval.md 4.2): every conv tapped, 3x3 stride-2 pools. */
static const trunk_conv alex_convs[] = {
    {0, 11, 4, 2, false, true}, {3, 5, 1, 2, true, true}, {6, 3, 1, 1, true, true},
    {8, 3, 1, 1, false, true},  {10, 3, 1, 1, false, true},
};
static const trunk alexnet = {"AlexNet", alex_convs, 5, 3, OSP_LPIPS_MIN_SIDE, true};

/* VGG16 (spec/training.md 3.2): 3x3 convs with padding 1 in five blocks,
 * 2x2 stride-2 pools between them, the last ReLU of each block tapped. */
static const trunk_conv vgg_convs[MAX_CONVS] = {
    {0, 3, 1, 1, false, false},  {2, 3, 1, 1, false, true},
    {5, 3, 1, 1, true, false},   {7, 3, 1, 1, false, true},
    {10, 3, 1, 1, true, false},  {12, 3, 1, 1, false, false}, {14, 3, 1, 1, false, true},
    {17, 3, 1, 1, true, false},  {19, 3, 1, 1, false, false}, {21, 3, 1, 1, false, true},
    {24, 3, 1, 1, true, false},  {26, 3, 1, 1, false, false}, {28, 3, 1, 1, false, true},
};
static const trunk vgg16 = {"VGG16", vgg_convs, MAX_CONVS, 2, OSP_LPIPS_VGG_MIN_SIDE, false};

/* lpips' ScalingLayer constants (R, G, B). */
static const float scaling_shift[3] = {-0.030f, -0.088f, -0.188f};
static const float scaling_scale[3] = {0.458f, 0.448f, 0.450f};

struct osp_lpips {
    osp_params params; /* reading from the model folder (metrics_params_open) */
    const trunk *net;
    osp_tensor *w[MAX_CONVS], *b[MAX_CONVS], *lin[OSP_LPIPS_TAPS]; /* in params */
    osp_tensor *shift, *scale; /* [1, 3, 1, 1] on the device (owned references) */
    osp_device device;
};

/* VGG16 stores a conv at index 2, where AlexNet has a max-pool. */
static const trunk *trunk_of(const osp_model_dir *dir)
{
    return osp_model_find(dir, "features.2.weight") || osp_model_find(dir, "net.slice1.2.weight")
               ? &vgg16
               : &alexnet;
}

/* Each conv's input width is the previous one's output width (3 for the
 * first); the output widths come from the stored shapes. The LPIPS
 * module's slice k + 1 holds the convs up to tap k. */
static osp_status load_weights(osp_lpips *m)
{
    int64_t in = 3;
    for (int i = 0, k = 0; i < m->net->n_convs; i++) {
        const trunk_conv *c = &m->net->conv[i];
        char prefix[32], alt[32], lin[48], lin_alt[48];
        snprintf(prefix, sizeof prefix, "features.%d", c->index);
        snprintf(alt, sizeof alt, "net.slice%d.%d", k + 1, c->index);
        if (metrics_load_conv(&m->params, prefix, alt, false, in, 0, c->kernel, &m->w[i],
                              &m->b[i]))
            return osp_error_code();
        in = m->w[i]->shape[0];
        if (!c->tap)
            continue;
        int64_t lin_shape[4] = {1, in, 1, 1};
        snprintf(lin, sizeof lin, "lin%d.model.1.weight", k);
        snprintf(lin_alt, sizeof lin_alt, "lins.%d.model.1.weight", k);
        m->lin[k] = osp_params_load(&m->params, 4, lin_shape, "%s",
                                    metrics_weight_name(m->params.src, lin, lin_alt));
        if (!m->lin[k++])
            return osp_error_code();
    }
    return OSP_OK;
}

static osp_tensor *channel_constant(const float *v, osp_device device)
{
    int64_t shape[4] = {1, 3, 1, 1};
    return osp_to_device(osp_tensor_from_data(OSP_F32, 4, shape, v), device);
}

osp_lpips *osp_lpips_load(const char *path, osp_device device)
{
    osp_lpips *m = calloc(1, sizeof *m);
    if (!m) {
        osp_error_nomem("LPIPS", sizeof *m);
        return NULL;
    }
    m->device = device;
    osp_pool_push();
    osp_status st = metrics_params_open(&m->params, path, device);
    if (!st) {
        m->net = trunk_of(m->params.src);
        st = load_weights(m);
    }
    if (!st) {
        m->shift = osp_retain(channel_constant(scaling_shift, device));
        m->scale = osp_retain(channel_constant(scaling_scale, device));
        st = m->shift && m->scale ? OSP_OK : osp_error_code();
    }
    osp_pool_pop();
    if (st) {
        osp_lpips_free(m);
        return NULL;
    }
    return m;
}

void osp_lpips_free(osp_lpips *m)
{
    if (!m)
        return;
    osp_release(m->shift);
    osp_release(m->scale);
    metrics_params_close(&m->params);
    free(m);
}

osp_device osp_lpips_device(const osp_lpips *m) { return m->device; }

/* Frames -> the trunk's input: (v - shift) / scale per channel, after
 * 2x - 1 for AlexNet's frames in [0, 1] (grey frames repeated to three
 * channels first). */
static osp_tensor *scaled_input(const osp_lpips *m, osp_tensor *x)
{
    x = osp_to_device(x, m->device);
    if (x && x->shape[1] == 1)
        x = osp_expand(x, 4, (int64_t[]){x->shape[0], 3, x->shape[2], x->shape[3]});
    if (m->net->from_unit)
        x = osp_scale_shift(x, 2.0f, -1.0f);
    return osp_div(osp_sub(x, m->shift), m->scale);
}

/* The five tapped ReLU outputs of the trunk's feature stack. */
static osp_status trunk_taps(const osp_lpips *m, osp_tensor *x, osp_tensor *taps[OSP_LPIPS_TAPS])
{
    osp_window pool = osp_window_default(2);
    pool.kernel[0] = pool.kernel[1] = m->net->pool_kernel;
    pool.stride[0] = pool.stride[1] = 2;
    osp_tensor *h = x;
    for (int i = 0, k = 0; i < m->net->n_convs; i++) {
        const trunk_conv *c = &m->net->conv[i];
        if (c->pool_before)
            h = osp_max_pool(h, &pool);
        osp_window win = osp_window_default(2);
        win.stride[0] = win.stride[1] = c->stride;
        win.pad[0] = win.pad[1] = c->pad;
        h = osp_relu(osp_conv(h, m->w[i], m->b[i], &win));
        if (c->tap)
            taps[k++] = h;
    }
    return h ? OSP_OK : osp_error_code();
}

/* Added to the squared norm on the training path: where every channel of
 * a tap is 0 (all its ReLUs off) sqrt's derivative is infinite, and
 * PyTorch's ReLU backward (a select) drops the NaN that gives, while the
 * op table's (a product) would pass it on. The floor keeps it finite and
 * changes no value where the norm exceeds ~1e-6. */
#define NORM_FLOOR 1e-20f

/* f / (sqrt(sum over channels of f^2) + 1e-10), lpips.normalize_tensor. */
static osp_tensor *unit_normalize(osp_tensor *f, bool floored)
{
    osp_tensor *sq = osp_sum(osp_square(f), 1, (int[]){1}, true);
    if (floored)
        sq = osp_scale_shift(sq, 1.0f, NORM_FLOOR);
    return osp_div(f, osp_scale_shift(osp_sqrt(sq), 1.0f, 1e-10f));
}

/* Tap k's lin-weighted squared feature difference, [N, 1, h_k, w_k]. */
static osp_tensor *tap_map(const osp_lpips *m, int k, osp_tensor *fx, osp_tensor *fy,
                           bool floored)
{
    osp_window one = osp_window_default(2);
    osp_tensor *d = osp_square(osp_sub(unit_normalize(fx, floored), unit_normalize(fy, floored)));
    return osp_conv(d, m->lin[k], NULL, &one);
}

/* OSP_OK when m has the trunk `want` and x, y are frames it takes:
 * [N, 3, H, W] (or [N, 1, H, W] with `grey`) of sides >= its minimum. */
static osp_status check_frames(const osp_lpips *m, const trunk *want, osp_tensor *x,
                               osp_tensor *y, bool grey)
{
    char sx[96], sy[96];
    if (m->net != want)
        return osp_error(OSP_ERR_DATA, "lpips: %s holds %s weights; %s needs %s",
                         osp_model_path(m->params.src), m->net->name,
                         want == &vgg16 ? "the perceptual loss" : "the evaluation LPIPS",
                         want->name);
    if (!x || !y)
        return osp_error_code() ? osp_error_code() : osp_error(OSP_ERR_RUNTIME, "lpips: no frames");
    if (x->ndim != 4 || !osp_same_shape(x, y) || (x->shape[1] != 3 && !(grey && x->shape[1] == 1)))
        return osp_error(OSP_ERR_DATA, "lpips: frames %s and %s must both be [N, %s, H, W]",
                         osp_shape_str(x, sx, sizeof sx), osp_shape_str(y, sy, sizeof sy),
                         grey ? "3 or 1" : "3");
    if (x->shape[2] < want->min_side || x->shape[3] < want->min_side)
        return osp_error(OSP_ERR_DATA, "lpips: frames of %lldx%lld are too small for %s "
                         "(at least %dx%d)", (long long)x->shape[2], (long long)x->shape[3],
                         want->name, want->min_side, want->min_side);
    return OSP_OK;
}

osp_status osp_lpips_maps(osp_lpips *m, osp_tensor *x, osp_tensor *y,
                          osp_tensor *maps[OSP_LPIPS_TAPS])
{
    if (check_frames(m, &alexnet, x, y, true))
        return osp_error_code();
    osp_tensor *fx[OSP_LPIPS_TAPS], *fy[OSP_LPIPS_TAPS];
    if (trunk_taps(m, scaled_input(m, x), fx) || trunk_taps(m, scaled_input(m, y), fy))
        return osp_error_code();
    for (int k = 0; k < OSP_LPIPS_TAPS; k++)
        if (!(maps[k] = tap_map(m, k, fx[k], fy[k], false)))
            return osp_error_code();
    return OSP_OK;
}

osp_status osp_lpips_frames(osp_lpips *m, osp_tensor *x, osp_tensor *y, double *values,
                            double *layers)
{
    osp_pool_push();
    osp_tensor *maps[OSP_LPIPS_TAPS];
    osp_status st = osp_lpips_maps(m, x, y, maps);
    int64_t N = st ? 0 : x->shape[0], size[2] = {st ? 0 : x->shape[2], st ? 0 : x->shape[3]};
    const int axes[3] = {1, 2, 3};
    osp_tensor *total = NULL;
    for (int k = 0; k < OSP_LPIPS_TAPS && !st; k++) {
        /* spatial=True: upsample each map to the frame, then average */
        osp_tensor *up = osp_interpolate(maps[k], 2, size, OSP_INTERP_LINEAR, false);
        total = k ? osp_add(total, up) : up;
        if (layers && !st) {
            double share[N];
            st = metrics_to_host(osp_mean(up, 3, axes, false), N, share);
            for (int64_t n = 0; n < N && !st; n++)
                layers[n * OSP_LPIPS_TAPS + k] = share[n];
        }
    }
    if (!st)
        st = metrics_to_host(osp_mean(total, 3, axes, false), N, values);
    osp_pool_pop();
    return st;
}

osp_tensor *osp_lpips_loss(osp_lpips *m, osp_tensor *x, osp_tensor *y)
{
    if (check_frames(m, &vgg16, x, y, false))
        return NULL;
    osp_tensor *fx[OSP_LPIPS_TAPS], *fy[OSP_LPIPS_TAPS], *total = NULL;
    if (trunk_taps(m, scaled_input(m, x), fx) || trunk_taps(m, scaled_input(m, y), fy))
        return NULL;
    for (int k = 0; k < OSP_LPIPS_TAPS; k++) {
        /* spatial=False: each map's mean over (h, w) */
        osp_tensor *mean = osp_mean(tap_map(m, k, fx[k], fy[k], true), 3,
                                    (const int[]){1, 2, 3}, false);
        total = k ? osp_add(total, mean) : mean;
    }
    return total;
}
