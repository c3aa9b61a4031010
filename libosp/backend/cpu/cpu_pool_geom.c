/* cpu_pool_geom.c — see cpu_pool_geom.h. */
#include "cpu_pool_geom.h"

void cpu_pool_geom_init(cpu_pool_geom *g, const osp_tensor *x, const osp_tensor *y,
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

void cpu_pool_box(const cpu_pool_geom *g, int64_t ot, int64_t oh, int64_t ow, int64_t lo[3],
                  int64_t hi[3])
{
    const int64_t o[3] = {ot, oh, ow};
    for (int d = 0; d < 3; d++) {
        int64_t start = o[d] * g->s[d] - g->p[d];
        lo[d] = start > 0 ? start : 0;
        hi[d] = start + g->k[d] < g->in[d] ? start + g->k[d] : g->in[d];
    }
}
