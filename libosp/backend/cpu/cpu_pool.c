/* cpu_pool.c — average pooling over 1-3 spatial dims and its backward.
 * Zero padding counts in the average (PyTorch's count_include_pad=True):
 * every window divides by the full kernel volume. 1-D and 2-D run as 3-D
 * with unit leading dims; threads split the N·C planes. */
#include "cpu_kernels.h"

typedef struct pool_geom {
    int64_t planes;
    int64_t in[3], out[3], k[3], s[3], p[3];
    int64_t in_size, out_size;
    float volume; /* k[0]·k[1]·k[2] */
} pool_geom;

/* x [N, C, *in], y [N, C, *out]. */
static void geom_init(pool_geom *g, const osp_tensor *x, const osp_tensor *y,
                      const osp_window *win)
{
    int nsp = x->ndim - 2, lead = 3 - nsp;
    g->planes = x->shape[0] * x->shape[1];
    g->in_size = g->out_size = 1;
    int64_t volume = 1;
    for (int d = 0; d < 3; d++) {
        int j = d - lead;
        g->in[d] = j >= 0 ? x->shape[2 + j] : 1;
        g->out[d] = j >= 0 ? y->shape[2 + j] : 1;
        g->k[d] = j >= 0 ? win->kernel[j] : 1;
        g->s[d] = j >= 0 ? win->stride[j] : 1;
        g->p[d] = j >= 0 ? win->pad[j] : 0;
        g->in_size *= g->in[d];
        g->out_size *= g->out[d];
        volume *= g->k[d];
    }
    g->volume = (float)volume;
}

/* The input range [*lo, *hi) of window o along dim d, clipped to the input
 * (the clipped part is padding, which adds zero). */
static void window(const pool_geom *g, int d, int64_t o, int64_t *lo, int64_t *hi)
{
    int64_t start = o * g->s[d] - g->p[d];
    *lo = start > 0 ? start : 0;
    *hi = start + g->k[d] < g->in[d] ? start + g->k[d] : g->in[d];
}

/* in: x   out: y */
osp_status cpu_avg_pool(const osp_node *n)
{
    pool_geom g;
    geom_init(&g, n->in[0], n->out[0], &n->p.pool);
    const float *x = osp_f32(n->in[0]);
    float *y = osp_f32(n->out[0]);
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *xp = x + pl * g.in_size;
        float *yp = y + pl * g.out_size;
        for (int64_t ot = 0; ot < g.out[0]; ot++) {
            int64_t t0, t1;
            window(&g, 0, ot, &t0, &t1);
            for (int64_t oh = 0; oh < g.out[1]; oh++) {
                int64_t h0, h1;
                window(&g, 1, oh, &h0, &h1);
                for (int64_t ow = 0; ow < g.out[2]; ow++) {
                    int64_t w0, w1;
                    window(&g, 2, ow, &w0, &w1);
                    float sum = 0;
                    for (int64_t t = t0; t < t1; t++)
                        for (int64_t h = h0; h < h1; h++)
                            for (int64_t w = w0; w < w1; w++)
                                sum += xp[(t * g.in[1] + h) * g.in[2] + w];
                    *yp++ = sum / g.volume;
                }
            }
        }
    }
    return OSP_OK;
}

/* in: gy   out: gx: each gy element, divided by the kernel volume, is added
 * to every input element of its window. */
osp_status cpu_avg_pool_backward(const osp_node *n)
{
    pool_geom g;
    geom_init(&g, n->out[0], n->in[0], &n->p.pool);
    const float *gy = osp_f32(n->in[0]);
    float *gx = osp_f32(n->out[0]);
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        float *gxp = gx + pl * g.in_size;
        const float *gyp = gy + pl * g.out_size;
        for (int64_t i = 0; i < g.in_size; i++)
            gxp[i] = 0;
        for (int64_t ot = 0; ot < g.out[0]; ot++) {
            int64_t t0, t1;
            window(&g, 0, ot, &t0, &t1);
            for (int64_t oh = 0; oh < g.out[1]; oh++) {
                int64_t h0, h1;
                window(&g, 1, oh, &h0, &h1);
                for (int64_t ow = 0; ow < g.out[2]; ow++) {
                    int64_t w0, w1;
                    window(&g, 2, ow, &w0, &w1);
                    float v = *gyp++ / g.volume;
                    for (int64_t t = t0; t < t1; t++)
                        for (int64_t h = h0; h < h1; h++)
                            for (int64_t w = w0; w < w1; w++)
                                gxp[(t * g.in[1] + h) * g.in[2] + w] += v;
                }
            }
        }
    }
    return OSP_OK;
}
