/* cpu_pad.c — constant and replicate padding of an N-D tensor, and its
 * backward (the sum of every output element that came from an input one).
 *
 * Both walk rows along the last dimension; a row of the larger tensor
 * reads (pad) or a row of the smaller one gathers (backward), so threads
 * never write the same element. */
#include "cpu_kernels.h"

#include <string.h>

typedef struct pad_geom {
    int ndim;                              /* >= 1; a 0-D tensor is [1] */
    int64_t in[OSP_MAX_DIMS], out[OSP_MAX_DIMS];
    int64_t before[OSP_MAX_DIMS];
    bool replicate;
    float value;
} pad_geom;

static void geom_init(pad_geom *g, const osp_tensor *x, const osp_node *n)
{
    g->ndim = x->ndim ? x->ndim : 1;
    for (int d = 0; d < g->ndim; d++) {
        g->in[d] = x->ndim ? x->shape[d] : 1;
        g->before[d] = x->ndim ? n->p.pad.before[d] : 0;
        g->out[d] = g->in[d] + g->before[d] + (x->ndim ? n->p.pad.after[d] : 0);
    }
    g->replicate = n->p.pad.mode == OSP_PAD_REPLICATE;
    g->value = n->p.pad.value;
}

static int64_t rows_of(const int64_t *shape, int ndim)
{
    int64_t r = 1;
    for (int d = 0; d < ndim - 1; d++)
        r *= shape[d];
    return r;
}

/* Index of the input row that output row `orow` reads, or -1 when it lies
 * in a constant border. */
static int64_t source_row(const pad_geom *g, int64_t orow)
{
    int64_t irow = 0, stride = 1;
    for (int d = g->ndim - 2; d >= 0; d--) {
        int64_t i = orow % g->out[d] - g->before[d];
        orow /= g->out[d];
        if (i < 0 || i >= g->in[d]) {
            if (!g->replicate)
                return -1;
            i = i < 0 ? 0 : g->in[d] - 1;
        }
        irow += i * stride;
        stride *= g->in[d];
    }
    return irow;
}

/* in: x   out: y */
osp_status cpu_pad(const osp_node *n)
{
    pad_geom g;
    geom_init(&g, n->in[0], n);
    const float *x = osp_f32(n->in[0]);
    float *y = osp_f32(n->out[0]);
    int last = g.ndim - 1;
    int64_t win = g.in[last], wout = g.out[last], b = g.before[last];
    int64_t orows = rows_of(g.out, g.ndim);
#pragma omp parallel for schedule(static)
    for (int64_t orow = 0; orow < orows; orow++) {
        float *dst = y + orow * wout;
        int64_t irow = win ? source_row(&g, orow) : -1;
        if (irow < 0) {
            for (int64_t j = 0; j < wout; j++)
                dst[j] = g.value;
            continue;
        }
        const float *src = x + irow * win;
        float lo = g.replicate ? src[0] : g.value, hi = g.replicate ? src[win - 1] : g.value;
        for (int64_t j = 0; j < b; j++)
            dst[j] = lo;
        memcpy(dst + b, src, (size_t)win * sizeof *dst);
        for (int64_t j = b + win; j < wout; j++)
            dst[j] = hi;
    }
    return OSP_OK;
}

/* The output indices [*lo, *hi) along dim d that came from input index i:
 * its own position, plus the whole border beside it for an edge element
 * under replicate padding. */
static void sources(const pad_geom *g, int d, int64_t i, int64_t *lo, int64_t *hi)
{
    *lo = i + g->before[d];
    *hi = *lo + 1;
    if (g->replicate && i == 0)
        *lo = 0;
    if (g->replicate && i == g->in[d] - 1)
        *hi = g->out[d];
}

/* in: gy (padded shape)   out: gx (x's shape) */
osp_status cpu_pad_backward(const osp_node *n)
{
    pad_geom g;
    geom_init(&g, n->out[0], n);
    const float *gy = osp_f32(n->in[0]);
    float *gx = osp_f32(n->out[0]);
    int last = g.ndim - 1;
    int64_t win = g.in[last], wout = g.out[last], b = g.before[last];
    int64_t xrows = rows_of(g.in, g.ndim);
#pragma omp parallel for schedule(static)
    for (int64_t xrow = 0; xrow < xrows; xrow++) {
        /* The box of gy rows [lo[d], hi[d]) over the leading dims that this
         * row of gx gathers from, walked with the odometer `at`. */
        int64_t lo[OSP_MAX_DIMS], hi[OSP_MAX_DIMS], at[OSP_MAX_DIMS];
        int64_t rest = xrow;
        for (int d = last - 1; d >= 0; d--) {
            sources(&g, d, rest % g.in[d], &lo[d], &hi[d]);
            rest /= g.in[d];
            at[d] = lo[d];
        }
        float *dst = gx + xrow * win;
        for (int64_t j = 0; j < win; j++)
            dst[j] = 0;
        for (;;) {
            int64_t yrow = 0;
            for (int d = 0; d < last; d++)
                yrow = yrow * g.out[d] + at[d];
            const float *src = gy + yrow * wout;
            for (int64_t j = 0; j < win; j++)
                dst[j] += src[b + j];
            for (int64_t k = 0; g.replicate && k < b; k++)
                dst[0] += src[k];
            for (int64_t k = b + win; g.replicate && k < wout; k++)
                dst[win - 1] += src[k];
            int d = last - 1;
            while (d >= 0 && ++at[d] == hi[d]) {
                at[d] = lo[d];
                d--;
            }
            if (d < 0)
                break;
        }
    }
    return OSP_OK;
}
