/* cpu_maxpool.c — max pooling over 1-3 spatial dims and its backward, as
 * PyTorch's CPU kernels compute them: a window's value is its first maximum
 * in scan order, except that a NaN replaces whatever was found before it
 * (so NaN propagates). Padding is outside every window's scan (it can never
 * win). The backward routes each gy element to the element its window
 * picked, recomputed from x. A window's box is never empty (the frontend
 * keeps pad <= kernel/2). Threads split the N·C planes. */
#include "cpu_kernels.h"
#include "cpu_pool_geom.h"

#include <math.h>

/* Offset within plane xp of the element window (ot, oh, ow) picks. */
static int64_t pick(const cpu_pool_geom *g, const float *xp, int64_t ot, int64_t oh, int64_t ow)
{
    int64_t lo[3], hi[3];
    cpu_pool_box(g, ot, oh, ow, lo, hi);
    int64_t best = (lo[0] * g->in[1] + lo[1]) * g->in[2] + lo[2];
    float best_v = xp[best];
    for (int64_t t = lo[0]; t < hi[0]; t++)
        for (int64_t h = lo[1]; h < hi[1]; h++)
            for (int64_t w = lo[2]; w < hi[2]; w++) {
                int64_t i = (t * g->in[1] + h) * g->in[2] + w;
                float v = xp[i];
                if (v > best_v || isnan(v)) {
                    best_v = v;
                    best = i;
                }
            }
    return best;
}

/* in: x   out: y */
osp_status cpu_max_pool(const osp_node *n)
{
    cpu_pool_geom g;
    cpu_pool_geom_init(&g, n->in[0], n->out[0], &n->p.pool);
    const float *x = osp_f32(n->in[0]);
    float *y = osp_f32(n->out[0]);
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *xp = x + pl * g.in_size;
        float *yp = y + pl * g.out_size;
        for (int64_t ot = 0; ot < g.out[0]; ot++)
            for (int64_t oh = 0; oh < g.out[1]; oh++)
                for (int64_t ow = 0; ow < g.out[2]; ow++)
                    *yp++ = xp[pick(&g, xp, ot, oh, ow)];
    }
    return OSP_OK;
}

/* in: gy, x   out: gx */
osp_status cpu_max_pool_backward(const osp_node *n)
{
    cpu_pool_geom g;
    cpu_pool_geom_init(&g, n->in[1], n->in[0], &n->p.pool);
    const float *gy = osp_f32(n->in[0]), *x = osp_f32(n->in[1]);
    float *gx = osp_f32(n->out[0]);
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *xp = x + pl * g.in_size, *gyp = gy + pl * g.out_size;
        float *gxp = gx + pl * g.in_size;
        for (int64_t i = 0; i < g.in_size; i++)
            gxp[i] = 0;
        for (int64_t ot = 0; ot < g.out[0]; ot++)
            for (int64_t oh = 0; oh < g.out[1]; oh++)
                for (int64_t ow = 0; ow < g.out[2]; ow++)
                    gxp[pick(&g, xp, ot, oh, ow)] += *gyp++;
    }
    return OSP_OK;
}
