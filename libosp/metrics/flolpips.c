/* flolpips.c — see flolpips.h. */
#include "flolpips.h"
#include "metrics_util.h"
#include "backend/ops.h"

/* Frame pairs per network call: bounds the activations PWC-Net holds
 * (its level-2 features are ~565 channels at a quarter of the frame). */
#define PAIR_CHUNK 4

osp_tensor *osp_flolpips_weighted_mean(osp_tensor *lin_map, osp_tensor *flow_diff)
{
    if (!lin_map || !flow_diff)
        return NULL;
    char sl[96], sf[96];
    if (lin_map->ndim != 4 || lin_map->shape[1] != 1 || flow_diff->ndim != 4 ||
        flow_diff->shape[1] != 2 || flow_diff->shape[0] != lin_map->shape[0]) {
        osp_error(OSP_ERR_RUNTIME, "flolpips: lin map %s and flow difference %s must be "
                  "[N, 1, h, w] and [N, 2, H, W]", osp_shape_str(lin_map, sl, sizeof sl),
                  osp_shape_str(flow_diff, sf, sizeof sf));
        return NULL;
    }
    const int chan[1] = {1}, space[2] = {2, 3};
    osp_tensor *e = osp_interpolate(flow_diff, 2, lin_map->shape + 2, OSP_INTERP_LINEAR, false);
    osp_tensor *mag = osp_sqrt(osp_sum(osp_square(e), 1, chan, true));
    osp_tensor *weight = osp_div(mag, osp_sum(mag, 2, space, true));
    return osp_sum(osp_mul(lin_map, weight), 2, space, true);
}

/* Frames [t0, t1) of a [T, 3, H, W] video. */
static osp_tensor *frames(osp_tensor *v, int64_t t0, int64_t t1)
{
    return osp_slice(v, 0, t0, t1, 1);
}

/* FloLPIPS of pairs (t, t+1) for t in [t0, t1). */
static osp_status chunk(osp_lpips *lpips, osp_pwcnet *pwc, osp_tensor *real, osp_tensor *gen,
                        int64_t t0, int64_t t1, double *out)
{
    osp_tensor *flow_real =
        osp_pwcnet_flow(pwc, frames(real, t0, t1), frames(real, t0 + 1, t1 + 1));
    osp_tensor *flow_gen = osp_pwcnet_flow(pwc, frames(gen, t0, t1), frames(gen, t0 + 1, t1 + 1));
    osp_tensor *diff = osp_sub(flow_gen, flow_real);
    osp_tensor *maps[OSP_LPIPS_TAPS];
    if (!diff || osp_lpips_maps(lpips, frames(gen, t0, t1), frames(real, t0, t1), maps))
        return osp_error_code();
    osp_tensor *total = NULL;
    for (int k = 0; k < OSP_LPIPS_TAPS; k++) {
        osp_tensor *s = osp_flolpips_weighted_mean(maps[k], diff);
        total = k ? osp_add(total, s) : s;
    }
    return metrics_to_host(total, t1 - t0, out);
}

osp_status osp_flolpips(osp_lpips *lpips, osp_pwcnet *pwc, osp_tensor *real,
                        osp_tensor *generated, double *out)
{
    char sr[96], sg[96];
    if (!real || !generated)
        return osp_error(OSP_ERR_RUNTIME, "flolpips: no frames");
    if (real->ndim != 4 || real->shape[1] != 3 || !osp_same_shape(real, generated) ||
        real->shape[0] < 2)
        return osp_error(OSP_ERR_DATA, "flolpips: videos %s and %s must both be [T, 3, H, W] "
                         "with T >= 2", osp_shape_str(real, sr, sizeof sr),
                         osp_shape_str(generated, sg, sizeof sg));
    int64_t pairs = real->shape[0] - 1;
    osp_status st = OSP_OK;
    for (int64_t t0 = 0; t0 < pairs && !st; t0 += PAIR_CHUNK) {
        int64_t t1 = t0 + PAIR_CHUNK < pairs ? t0 + PAIR_CHUNK : pairs;
        osp_pool_push();
        st = chunk(lpips, pwc, real, generated, t0, t1, out + t0);
        osp_pool_pop();
    }
    return st;
}
