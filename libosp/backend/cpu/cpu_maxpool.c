/* cpu_maxpool.c — max pooling over 1-3 spatial dims and its backward, as
 * PyTorch's CPU kernels compute them: a window's value is its first maximum
 * in scan order, except that a NaN replaces whatever was found before it
 * (so NaN propagates). Padding is outside every window's scan (it can never
 * win). The backward routes each gy element to the element its window
 * picked, recomputed from x. 1-D and 2-D run as 3-D with unit leading
 * dims; threads split the N·C planes. */
#include "cpu_kernels.h"

#include <math.h>

typedef struct maxpool_geom {
    int64_t planes;
    int64_t in[3], out[3], k[3], s[3], p[3];
    int64_t in_size, out_size;
} maxpool_geom;

/* x [N, C, *in], y [N, C, *out]. */
static void geom_init(maxpool_geom *g, const osp_tensor *x, const osp_tensor *y,
                      const osp_window *win)
{
    int nsp = x->ndim - 2, lead = 3 - nsp;
    g->planes = x->shape[0] * x->shape[1];
    g->in_size = g->out_size = 1;
    for (int d = 0; d < 3; d++) {
        int j = d - lead;
        g->in[d] = j >= 0 ? x->shape[2 + j] : 1;
        g->out[d] = j >= 0 ? y->shape[2 + j] : 1;
        g->k[d] = j >= 0 ? win->kernel[j] : 1;
        g->s[d] = j >= 0 ? win->stride[j] : 1;
        g->p[d] = j >= 0 ? win->pad[j] : 0;
        g->in_size *= g->in[d];
        g->out_size *= g->out[d];
    }
}

/* The input range [*lo, *hi) of window o along dim d, clipped to the input
 * (never empty: the frontend keeps pad <= kernel/2). */
static void window(const maxpool_geom *g, int d, int64_t o, int64_t *lo, int64_t *hi)
{
    int64_t start = o * g->s[d] - g->p[d];
    *lo = start > 0 ? start : 0;
    *hi = start + g->k[d] < g->in[d] ? start + g->k[d] : g->in[d];
}

/* Offset within plane xp of the element window (ot, oh, ow) picks. */
static int64_t pick(const maxpool_geom *g, const float *xp, int64_t ot, int64_t oh, int64_t ow)
{
    int64_t t0, t1, h0, h1, w0, w1;
    window(g, 0, ot, &t0, &t1);
    window(g, 1, oh, &h0, &h1);
    window(g, 2, ow, &w0, &w1);
    int64_t best = (t0 * g->in[1] + h0) * g->in[2] + w0;
    float best_v = xp[best];
    for (int64_t t = t0; t < t1; t++)
        for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) {
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
    maxpool_geom g;
    geom_init(&g, n->in[0], n->out[0], &n->p.pool);
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
    maxpool_geom g;
    geom_init(&g, n->in[1], n->in[0], &n->p.pool);
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
