/* lpips.c — see lpips.h. */
#include "lpips.h"
#include "metrics_util.h"
#include "weights.h"
#include "backend/ops.h"

#include <stdio.h>
#include <stdlib.h>

/* torchvision AlexNet `features` indices of the five tapped convs, their
 * kernel sizes, strides and paddings, and whether a 3x3 stride-2 max-pool
 * precedes them (spec/eval.md 4.2). Every conv is followed by a ReLU. */
static const struct {
    int index, kernel, stride, pad;
    bool pool_before;
} alex[OSP_LPIPS_TAPS] = {
    {0, 11, 4, 2, false}, {3, 5, 1, 2, true}, {6, 3, 1, 1, true},
    {8, 3, 1, 1, false},  {10, 3, 1, 1, false},
};

/* lpips' ScalingLayer constants (R, G, B). */
static const float scaling_shift[3] = {-0.030f, -0.088f, -0.188f};
static const float scaling_scale[3] = {0.458f, 0.448f, 0.450f};

struct osp_lpips {
    osp_params params; /* reading from the model folder (metrics_params_open) */
    osp_tensor *w[OSP_LPIPS_TAPS], *b[OSP_LPIPS_TAPS], *lin[OSP_LPIPS_TAPS]; /* in params */
    osp_tensor *shift, *scale; /* [1, 3, 1, 1] on the device (owned references) */
    osp_device device;
};

/* Each conv's input width is the previous one's output width (3 for the
 * first); the output widths come from the stored shapes. */
static osp_status load_weights(osp_lpips *m)
{
    int64_t in = 3;
    for (int k = 0; k < OSP_LPIPS_TAPS; k++) {
        char prefix[32], alt[32], lin[48], lin_alt[48];
        snprintf(prefix, sizeof prefix, "features.%d", alex[k].index);
        snprintf(alt, sizeof alt, "net.slice%d.%d", k + 1, alex[k].index);
        snprintf(lin, sizeof lin, "lin%d.model.1.weight", k);
        snprintf(lin_alt, sizeof lin_alt, "lins.%d.model.1.weight", k);
        if (metrics_load_conv(&m->params, prefix, alt, false, in, 0, alex[k].kernel, &m->w[k],
                              &m->b[k]))
            return osp_error_code();
        int64_t out = m->w[k]->shape[0], lin_shape[4] = {1, out, 1, 1};
        m->lin[k] = osp_params_load(&m->params, 4, lin_shape, "%s",
                                    metrics_weight_name(m->params.src, lin, lin_alt));
        if (!m->lin[k])
            return osp_error_code();
        in = out;
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
    if (!st)
        st = load_weights(m);
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

/* Frames in [0, 1] -> the trunk's input: 2x - 1, then (v - shift) / scale
 * per channel (grey frames repeated to three channels first). */
static osp_tensor *scaled_input(const osp_lpips *m, osp_tensor *x)
{
    x = osp_to_device(x, m->device);
    if (x && x->shape[1] == 1)
        x = osp_expand(x, 4, (int64_t[]){x->shape[0], 3, x->shape[2], x->shape[3]});
    return osp_div(osp_sub(osp_scale_shift(x, 2.0f, -1.0f), m->shift), m->scale);
}

/* The five tapped ReLU outputs of AlexNet's feature stack. */
static osp_status alex_taps(const osp_lpips *m, osp_tensor *x, osp_tensor *taps[OSP_LPIPS_TAPS])
{
    osp_window pool = osp_window_default(2);
    pool.kernel[0] = pool.kernel[1] = 3;
    pool.stride[0] = pool.stride[1] = 2;
    osp_tensor *h = x;
    for (int k = 0; k < OSP_LPIPS_TAPS; k++) {
        if (alex[k].pool_before)
            h = osp_max_pool(h, &pool);
        osp_window win = osp_window_default(2);
        win.stride[0] = win.stride[1] = alex[k].stride;
        win.pad[0] = win.pad[1] = alex[k].pad;
        taps[k] = h = osp_relu(osp_conv(h, m->w[k], m->b[k], &win));
    }
    return h ? OSP_OK : osp_error_code();
}

/* f / (sqrt(sum over channels of f^2) + 1e-10), lpips.normalize_tensor. */
static osp_tensor *unit_normalize(osp_tensor *f)
{
    osp_tensor *norm = osp_sqrt(osp_sum(osp_square(f), 1, (int[]){1}, true));
    return osp_div(f, osp_scale_shift(norm, 1.0f, 1e-10f));
}

static osp_status check_frames(osp_tensor *x, osp_tensor *y)
{
    char sx[96], sy[96];
    if (!x || !y)
        return osp_error_code() ? osp_error_code() : osp_error(OSP_ERR_RUNTIME, "lpips: no frames");
    if (x->ndim != 4 || !osp_same_shape(x, y) || (x->shape[1] != 1 && x->shape[1] != 3))
        return osp_error(OSP_ERR_DATA, "lpips: frames %s and %s must both be [N, 3 or 1, H, W]",
                         osp_shape_str(x, sx, sizeof sx), osp_shape_str(y, sy, sizeof sy));
    if (x->shape[2] < OSP_LPIPS_MIN_SIDE || x->shape[3] < OSP_LPIPS_MIN_SIDE)
        return osp_error(OSP_ERR_DATA, "lpips: frames of %lldx%lld are too small for AlexNet "
                         "(at least %dx%d)", (long long)x->shape[2], (long long)x->shape[3],
                         OSP_LPIPS_MIN_SIDE, OSP_LPIPS_MIN_SIDE);
    return OSP_OK;
}

osp_status osp_lpips_maps(osp_lpips *m, osp_tensor *x, osp_tensor *y,
                          osp_tensor *maps[OSP_LPIPS_TAPS])
{
    if (check_frames(x, y))
        return osp_error_code();
    osp_tensor *fx[OSP_LPIPS_TAPS], *fy[OSP_LPIPS_TAPS];
    if (alex_taps(m, scaled_input(m, x), fx) || alex_taps(m, scaled_input(m, y), fy))
        return osp_error_code();
    osp_window one = osp_window_default(2);
    for (int k = 0; k < OSP_LPIPS_TAPS; k++) {
        osp_tensor *d = osp_square(osp_sub(unit_normalize(fx[k]), unit_normalize(fy[k])));
        if (!(maps[k] = osp_conv(d, m->lin[k], NULL, &one)))
            return osp_error_code();
    }
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
