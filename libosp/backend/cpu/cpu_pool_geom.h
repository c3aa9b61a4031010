/* cpu_pool_geom.h — the window geometry of the CPU pooling kernels
 * (cpu_pool.c, cpu_maxpool.c). 1-D and 2-D pooling run as 3-D with unit
 * leading dims; a tensor [N, C, *spatial] is N·C planes. */
#ifndef OSP_CPU_POOL_GEOM_H
#define OSP_CPU_POOL_GEOM_H

#include "backend/op.h"

typedef struct cpu_pool_geom {
    int64_t planes;
    int64_t in[3], out[3], k[3], s[3], p[3]; /* (t, h, w) */
    int64_t in_size, out_size;               /* elements of one plane */
} cpu_pool_geom;

/* x [N, C, *in] pooled by win into y [N, C, *out]. */
void cpu_pool_geom_init(cpu_pool_geom *g, const osp_tensor *x, const osp_tensor *y,
                        const osp_window *win);

/* The input box of output element (ot, oh, ow): [lo[d], hi[d]) along
 * d = t, h, w, clipped to the input (what is clipped off is padding). */
void cpu_pool_box(const cpu_pool_geom *g, int64_t ot, int64_t oh, int64_t ow, int64_t lo[3],
                  int64_t hi[3]);

#endif
