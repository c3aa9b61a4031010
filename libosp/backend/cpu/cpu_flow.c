/* cpu_flow.c — the optical-flow ops on the CPU: PWC-Net's correlation
 * (cost volume) and PyTorch's bilinear grid_sample with zeros padding
 * (plus PWC-Net's validity mask). */
#include "cpu_kernels.h"

#include <math.h>

/* in: a, b [N, C, H, W]   out: [N, (2d+1)^2, H, W]. One task per (batch,
 * displacement) plane; the plane accumulates over channels in float32 over
 * the rows and columns where the displaced position lies inside b (the
 * rest of b is zero padding), then is divided by C. */
osp_status cpu_correlation(const osp_node *n)
{
    const osp_tensor *ta = n->in[0];
    int64_t N = ta->shape[0], C = ta->shape[1], H = ta->shape[2], W = ta->shape[3];
    int64_t d = n->p.corr.max_displacement, side = 2 * d + 1, HW = H * W;
    const float *a = osp_f32(ta), *b = osp_f32(n->in[1]);
    float *out = osp_f32(n->out[0]);
    float inv_c = 1.0f / (float)C;
#pragma omp parallel for schedule(static)
    for (int64_t task = 0; task < N * side * side; task++) {
        int64_t bn = task / (side * side), k = task % (side * side);
        int64_t dy = k / side - d, dx = k % side - d;
        float *o = out + task * HW;
        for (int64_t i = 0; i < HW; i++)
            o[i] = 0;
        int64_t y0 = dy < 0 ? -dy : 0, y1 = dy > 0 ? H - dy : H;
        int64_t x0 = dx < 0 ? -dx : 0, x1 = dx > 0 ? W - dx : W;
        for (int64_t c = 0; c < C; c++) {
            const float *ap = a + (bn * C + c) * HW, *bp = b + (bn * C + c) * HW;
            for (int64_t y = y0; y < y1; y++)
                for (int64_t x = x0; x < x1; x++)
                    o[y * W + x] += ap[y * W + x] * bp[(y + dy) * W + x + dx];
        }
        for (int64_t i = 0; i < HW; i++)
            o[i] *= inv_c;
    }
    return OSP_OK;
}

/* PyTorch's grid_sampler_unnormalize: a normalised coordinate in [-1, 1]
 * to a pixel position along an axis of `size` pixels. */
static float unnormalize(float g, int64_t size, bool align_corners)
{
    return align_corners ? (g + 1.0f) / 2.0f * (float)(size - 1)
                         : ((g + 1.0f) * (float)size - 1.0f) / 2.0f;
}

/* in: x [N, C, H, W], grid [N, Ho, Wo, 2]   out: [N, C, Ho, Wo]. Corners
 * outside the frame contribute zero; their weights are left out of the
 * validity sum that the mask tests. */
osp_status cpu_grid_sample(const osp_node *n)
{
    const osp_tensor *tx = n->in[0], *tg = n->in[1];
    int64_t N = tx->shape[0], C = tx->shape[1], H = tx->shape[2], W = tx->shape[3];
    int64_t Ho = tg->shape[1], Wo = tg->shape[2];
    bool corners = n->p.grid_sample.align_corners;
    float threshold = n->p.grid_sample.mask_threshold;
    const float *x = osp_f32(tx), *grid = osp_f32(tg);
    float *out = osp_f32(n->out[0]);
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < N * Ho; row++) {
        int64_t bn = row / Ho, yo = row % Ho;
        const float *xb = x + bn * C * H * W;
        for (int64_t xo = 0; xo < Wo; xo++) {
            const float *g = grid + (row * Wo + xo) * 2;
            float px = unnormalize(g[0], W, corners), py = unnormalize(g[1], H, corners);
            int64_t idx[4] = {0};
            float wt[4] = {0};
            int taps = 0;
            float valid = 0;
            /* Beyond (-1, size) no corner is inside (this also skips NaN
             * and positions too large to floor into an integer). */
            if (px > -1.0f && px < (float)W && py > -1.0f && py < (float)H) {
                float fx = floorf(px), fy = floorf(py);
                int64_t ix = (int64_t)fx, iy = (int64_t)fy;
                float ex = px - fx, ey = py - fy; /* weights of the far corners */
                const int64_t cx[4] = {ix, ix + 1, ix, ix + 1}, cy[4] = {iy, iy, iy + 1, iy + 1};
                const float cw[4] = {(1 - ex) * (1 - ey), ex * (1 - ey), (1 - ex) * ey, ex * ey};
                for (int k = 0; k < 4; k++) {
                    if (cx[k] < 0 || cx[k] >= W || cy[k] < 0 || cy[k] >= H)
                        continue;
                    idx[taps] = cy[k] * W + cx[k];
                    wt[taps++] = cw[k];
                    valid += cw[k];
                }
            }
            bool keep = threshold <= 0 || valid > threshold;
            for (int64_t c = 0; c < C; c++) {
                const float *xc = xb + c * H * W;
                float v = 0;
                for (int k = 0; k < taps; k++)
                    v += xc[idx[k]] * wt[k];
                out[((bn * C + c) * Ho + yo) * Wo + xo] = keep ? v : 0.0f;
            }
        }
    }
    return OSP_OK;
}
