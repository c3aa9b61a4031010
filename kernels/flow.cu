/* flow.cu — PWC-Net's correlation (cost volume) and PyTorch's bilinear
 * grid_sample with zeros padding and the backwarp validity mask (CPU
 * reference: cpu_flow.c). One output element per thread. */
#include "common.cuh"

/* out[n, (dy+d)(2d+1) + dx+d, y, x] = (1/C) Σ_c a[n,c,y,x]·b[n,c,y+dy,x+dx]
 * (b = 0 outside the frame). */
__global__ void correlation_kernel(const float *a, const float *b, float *out, int64_t N,
                                   int64_t C, int64_t H, int64_t W, int d)
{
    int64_t side = 2 * d + 1, HW = H * W;
    CU_FOR(i, N * side * side * HW) {
        int64_t task = i / HW, pos = i % HW, y = pos / W, x = pos % W;
        int64_t bn = task / (side * side), k = task % (side * side);
        int64_t dy = k / side - d, dx = k % side - d, yy = y + dy, xx = x + dx;
        float acc = 0;
        if (yy >= 0 && yy < H && xx >= 0 && xx < W)
            for (int64_t c = 0; c < C; c++)
                acc += a[(bn * C + c) * HW + pos] * b[(bn * C + c) * HW + yy * W + xx];
        out[i] = acc * (1.0f / (float)C);
    }
}

extern "C" osp_status cuda_correlation(const osp_node *n)
{
    const osp_tensor *ta = n->in[0];
    int64_t N = ta->shape[0], C = ta->shape[1], H = ta->shape[2], W = ta->shape[3];
    int d = n->p.corr.max_displacement;
    int64_t total = osp_numel(n->out[0]);
    if (total == 0)
        return OSP_OK;
    correlation_kernel<<<cu_grid(total), CU_THREADS, 0, cu_stream()>>>(
        cu_f32(ta), cu_f32(n->in[1]), cu_f32(n->out[0]), N, C, H, W, d);
    return CU_LAUNCHED(n, "correlation kernel");
}

__device__ inline float unnormalize(float g, int64_t size, bool align_corners)
{
    return align_corners ? (g + 1.0f) / 2.0f * (float)(size - 1)
                         : ((g + 1.0f) * (float)size - 1.0f) / 2.0f;
}

__global__ void grid_sample_kernel(const float *x, const float *grid, float *out, int64_t N,
                                   int64_t C, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                                   bool corners, float threshold)
{
    CU_FOR(i, N * C * Ho * Wo) {
        int64_t xo = i % Wo, yo = i / Wo % Ho, c = i / (Wo * Ho) % C, bn = i / (Wo * Ho * C);
        const float *g = grid + ((bn * Ho + yo) * Wo + xo) * 2;
        float px = unnormalize(g[0], W, corners), py = unnormalize(g[1], H, corners);
        float v = 0, valid = 0;
        if (px > -1.0f && px < (float)W && py > -1.0f && py < (float)H) {
            float fx = floorf(px), fy = floorf(py);
            int64_t ix = (int64_t)fx, iy = (int64_t)fy;
            float ex = px - fx, ey = py - fy;
            const int64_t cx[4] = {ix, ix + 1, ix, ix + 1}, cy[4] = {iy, iy, iy + 1, iy + 1};
            const float cw[4] = {(1 - ex) * (1 - ey), ex * (1 - ey), (1 - ex) * ey, ex * ey};
            const float *xc = x + (bn * C + c) * H * W;
            for (int k = 0; k < 4; k++) {
                if (cx[k] < 0 || cx[k] >= W || cy[k] < 0 || cy[k] >= H)
                    continue;
                v += xc[cy[k] * W + cx[k]] * cw[k];
                valid += cw[k];
            }
        }
        out[i] = (threshold <= 0 || valid > threshold) ? v : 0.0f;
    }
}

extern "C" osp_status cuda_grid_sample(const osp_node *n)
{
    const osp_tensor *tx = n->in[0], *tg = n->in[1];
    int64_t total = osp_numel(n->out[0]);
    if (total == 0)
        return OSP_OK;
    grid_sample_kernel<<<cu_grid(total), CU_THREADS, 0, cu_stream()>>>(
        cu_f32(tx), cu_f32(tg), cu_f32(n->out[0]), tx->shape[0], tx->shape[1], tx->shape[2],
        tx->shape[3], tg->shape[1], tg->shape[2], n->p.grid_sample.align_corners,
        n->p.grid_sample.mask_threshold);
    return CU_LAUNCHED(n, "grid sample kernel");
}
