/* cpu_pool.c — average pooling over 1-3 spatial dims and its backward.
 * Zero padding counts in the average (PyTorch's count_include_pad=True):
 * every window divides by the full kernel volume, and the padding it
 * covers (clipped off its box) adds zero. Threads split the N·C planes. */
#include "cpu_kernels.h"
#include "cpu_pool_geom.h"

static float kernel_volume(const cpu_pool_geom *g)
{
    return (float)(g->k[0] * g->k[1] * g->k[2]);
}

/* in: x   out: y */
osp_status cpu_avg_pool(const osp_node *n)
{
    cpu_pool_geom g;
    cpu_pool_geom_init(&g, n->in[0], n->out[0], &n->p.pool);
    float volume = kernel_volume(&g);
    const float *x = osp_f32(n->in[0]);
    float *y = osp_f32(n->out[0]);
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *xp = x + pl * g.in_size;
        float *yp = y + pl * g.out_size;
        for (int64_t ot = 0; ot < g.out[0]; ot++)
            for (int64_t oh = 0; oh < g.out[1]; oh++)
                for (int64_t ow = 0; ow < g.out[2]; ow++) {
                    int64_t lo[3], hi[3];
                    cpu_pool_box(&g, ot, oh, ow, lo, hi);
                    float sum = 0;
                    for (int64_t t = lo[0]; t < hi[0]; t++)
                        for (int64_t h = lo[1]; h < hi[1]; h++)
                            for (int64_t w = lo[2]; w < hi[2]; w++)
                                sum += xp[(t * g.in[1] + h) * g.in[2] + w];
                    *yp++ = sum / volume;
                }
    }
    return OSP_OK;
}

/* in: gy   out: gx: each gy element, divided by the kernel volume, is added
 * to every input element of its window. */
osp_status cpu_avg_pool_backward(const osp_node *n)
{
    cpu_pool_geom g;
    cpu_pool_geom_init(&g, n->out[0], n->in[0], &n->p.pool);
    float volume = kernel_volume(&g);
    const float *gy = osp_f32(n->in[0]);
    float *gx = osp_f32(n->out[0]);
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        float *gxp = gx + pl * g.in_size;
        const float *gyp = gy + pl * g.out_size;
        for (int64_t i = 0; i < g.in_size; i++)
            gxp[i] = 0;
        for (int64_t ot = 0; ot < g.out[0]; ot++)
            for (int64_t oh = 0; oh < g.out[1]; oh++)
                for (int64_t ow = 0; ow < g.out[2]; ow++) {
                    int64_t lo[3], hi[3];
                    cpu_pool_box(&g, ot, oh, ow, lo, hi);
                    float v = *gyp++ / volume;
                    for (int64_t t = lo[0]; t < hi[0]; t++)
                        for (int64_t h = lo[1]; h < hi[1]; h++)
                            for (int64_t w = lo[2]; w < hi[2]; w++)
                                gxp[(t * g.in[1] + h) * g.in[2] + w] += v;
                }
    }
    return OSP_OK;
}
