/* cpu_optim.c — the in-place optimizer updates: AdamW and EMA (op.h). */
#include "cpu_kernels.h"

#include <math.h>

#include "core/simd.h"

#define SLICE 4096

/* One slice of a tensor, in torch's operation order (ISO C mode contracts
 * nothing into FMAs, so the vector code rounds like the scalar one).
 * torch.lerp switches formula at weight 0.5: two loops, so that neither
 * has a branch. */
ROW_CLONES static void adamw_row(float *p, float *m, float *v, const float *g, int64_t n,
                                 const osp_adamw_scalars *c)
{
    float decay = c->decay, w1 = c->w1, b2 = c->b2, w2 = c->w2;
    float step_size = c->step_size, bc2_sqrt = c->bc2_sqrt, eps = c->eps;
    if (w1 < 0.5f) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float gj = g[j];
            m[j] = m[j] + w1 * (gj - m[j]);
            v[j] = v[j] * b2 + w2 * gj * gj;
            p[j] = p[j] * decay + step_size * m[j] / (sqrtf(v[j]) / bc2_sqrt + eps);
        }
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float gj = g[j];
            m[j] = gj - (gj - m[j]) * (1.0f - w1);
            v[j] = v[j] * b2 + w2 * gj * gj;
            p[j] = p[j] * decay + step_size * m[j] / (sqrtf(v[j]) / bc2_sqrt + eps);
        }
    }
}

osp_status cpu_adamw(const osp_node *n)
{
    float *p = osp_f32(n->in[0]), *m = osp_f32(n->in[1]), *v = osp_f32(n->in[2]);
    const float *g = n->in[3] ? osp_f32(n->in[3]) : NULL;
    int64_t total = osp_numel(n->in[0]);
    static const float zeros[SLICE]; /* a missing gradient, a slice at a time */
#pragma omp parallel for schedule(static) if (total > 65536)
    for (int64_t j = 0; j < total; j += SLICE)
        adamw_row(p + j, m + j, v + j, g ? g + j : zeros, total - j < SLICE ? total - j : SLICE,
                  &n->p.adamw);
    return OSP_OK;
}

osp_status cpu_ema(const osp_node *n)
{
    float *s = osp_f32(n->in[0]);
    const float *p = osp_f32(n->in[1]);
    float w = n->p.ema.weight;
    int64_t total = osp_numel(n->in[0]);
#pragma omp parallel for if (total > 65536)
    for (int64_t j = 0; j < total; j++)
        s[j] -= w * (s[j] - p[j]);
    return OSP_OK;
}
