/* cpu_interp.c — nearest and (bi/tri)linear interpolation of [N, C, *S]
 * tensors to a given output size, and its backward, as PyTorch computes
 * them when given an output size (float32 source coordinates):
 *   nearest:            src = min(floor(dst · in/out), in - 1)
 *   linear, corners:    src = dst · (in - 1)/(out - 1)       (0 when out = 1)
 *   linear, no corners: src = max((dst + 0.5) · in/out - 0.5, 0)
 * then i0 = min(floor(src), in - 1), i1 = i0 + (i0 < in - 1), λ = src - i0,
 * value = (1 - λ)·x[i0] + λ·x[i1] per axis, nested outermost axis first.
 * 1-D and 2-D run as 3-D with unit leading dims; an axis whose size does not
 * change is an exact identity and gets one tap. */
#include "cpu_kernels.h"

#include <math.h>
#include <stdlib.h>

/* Per output index o of one axis: taps source indices idx[t][o] with
 * weights wt[t][o]. */
typedef struct axis_map {
    int64_t in, out;
    int taps;
    int64_t *idx[2];
    float *wt[2];
} axis_map;

typedef struct interp_geom {
    int64_t planes;
    axis_map ax[3];
    int64_t in_size, out_size;
    bool nearest;
    void *mem; /* one allocation behind every idx and wt */
} interp_geom;

static void axis_fill(axis_map *a, bool nearest, bool align_corners)
{
    int64_t in = a->in, out = a->out;
    if (nearest) {
        float scale = (float)in / (float)out;
        for (int64_t o = 0; o < out; o++) {
            int64_t i = (int64_t)floorf((float)o * scale);
            a->idx[0][o] = i < in - 1 ? i : in - 1;
            a->wt[0][o] = 1.0f;
        }
        a->taps = 1;
        return;
    }
    float scale = align_corners ? (out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f)
                                : (float)in / (float)out;
    for (int64_t o = 0; o < out; o++) {
        float src = align_corners ? scale * (float)o : scale * ((float)o + 0.5f) - 0.5f;
        if (src < 0)
            src = 0;
        int64_t i = (int64_t)floorf(src);
        if (i > in - 1)
            i = in - 1;
        float l = src - (float)i;
        l = l < 0 ? 0 : l > 1 ? 1 : l;
        a->idx[0][o] = i;
        a->idx[1][o] = i + (i < in - 1 ? 1 : 0);
        a->wt[0][o] = 1.0f - l;
        a->wt[1][o] = l;
    }
    a->taps = in == out ? 1 : 2;
}

/* x [N, C, *in] and y [N, C, *out]; fills the axis maps. */
static osp_status geom_init(interp_geom *g, const osp_tensor *x, const osp_tensor *y,
                            const osp_node *n)
{
    int nsp = x->ndim - 2, lead = 3 - nsp;
    g->planes = x->shape[0] * x->shape[1];
    g->nearest = n->p.interp.mode == OSP_INTERP_NEAREST;
    g->in_size = g->out_size = 1;
    int64_t total = 0;
    for (int d = 0; d < 3; d++) {
        g->ax[d].in = d >= lead ? x->shape[2 + d - lead] : 1;
        g->ax[d].out = d >= lead ? y->shape[2 + d - lead] : 1;
        g->in_size *= g->ax[d].in;
        g->out_size *= g->ax[d].out;
        total += g->ax[d].out;
    }
    size_t per = 2 * sizeof(int64_t) + 2 * sizeof(float);
    g->mem = malloc((size_t)total * per);
    if (!g->mem)
        return osp_error_nomem("interpolation tables", (unsigned long long)total * per);
    int64_t *ip = g->mem;
    float *fp = (float *)(ip + 2 * total);
    for (int d = 0; d < 3; d++) {
        axis_map *a = &g->ax[d];
        for (int t = 0; t < 2; t++) {
            a->idx[t] = ip;
            a->wt[t] = fp;
            ip += a->out;
            fp += a->out;
        }
        axis_fill(a, g->nearest, n->p.interp.align_corners);
    }
    return OSP_OK;
}

/* in: x [N, C, *in]   out: y [N, C, *out] */
osp_status cpu_interpolate(const osp_node *n)
{
    interp_geom g;
    if (geom_init(&g, n->in[0], n->out[0], n) != OSP_OK)
        return osp_error_code();
    const float *x = osp_f32(n->in[0]);
    float *y = osp_f32(n->out[0]);
    const axis_map *at = &g.ax[0], *ah = &g.ax[1], *aw = &g.ax[2];
    bool gather = at->taps == 1 && ah->taps == 1 && aw->taps == 1;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < g.planes; p++) {
        const float *xp = x + p * g.in_size;
        float *yrow = y + p * g.out_size;
        for (int64_t ot = 0; ot < at->out; ot++) {
            for (int64_t oh = 0; oh < ah->out; oh++, yrow += aw->out) {
                if (gather) { /* every weight is 1: a plain gather (nearest) */
                    const float *xrow = xp + (at->idx[0][ot] * ah->in + ah->idx[0][oh]) * aw->in;
                    for (int64_t ow = 0; ow < aw->out; ow++)
                        yrow[ow] = xrow[aw->idx[0][ow]];
                    continue;
                }
                for (int64_t ow = 0; ow < aw->out; ow++) {
                    float vt = 0;
                    for (int a = 0; a < at->taps; a++) {
                        float vh = 0;
                        for (int b = 0; b < ah->taps; b++) {
                            const float *xrow =
                                xp + (at->idx[a][ot] * ah->in + ah->idx[b][oh]) * aw->in;
                            float vw = 0;
                            for (int c = 0; c < aw->taps; c++)
                                vw += xrow[aw->idx[c][ow]] * aw->wt[c][ow];
                            vh += vw * ah->wt[b][oh];
                        }
                        vt += vh * at->wt[a][ot];
                    }
                    yrow[ow] = vt;
                }
            }
        }
    }
    free(g.mem);
    return OSP_OK;
}

/* in: gy [N, C, *out]   out: gx [N, C, *in]: every gy element is added to
 * the x elements it was interpolated from, with the same weights. */
osp_status cpu_interpolate_backward(const osp_node *n)
{
    interp_geom g;
    if (geom_init(&g, n->out[0], n->in[0], n) != OSP_OK)
        return osp_error_code();
    const float *gy = osp_f32(n->in[0]);
    float *gx = osp_f32(n->out[0]);
    const axis_map *at = &g.ax[0], *ah = &g.ax[1], *aw = &g.ax[2];
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < g.planes; p++) {
        float *gxp = gx + p * g.in_size;
        const float *gyrow = gy + p * g.out_size;
        for (int64_t i = 0; i < g.in_size; i++)
            gxp[i] = 0;
        for (int64_t ot = 0; ot < at->out; ot++) {
            for (int64_t oh = 0; oh < ah->out; oh++, gyrow += aw->out) {
                for (int64_t ow = 0; ow < aw->out; ow++) {
                    for (int a = 0; a < at->taps; a++) {
                        for (int b = 0; b < ah->taps; b++) {
                            float *xrow =
                                gxp + (at->idx[a][ot] * ah->in + ah->idx[b][oh]) * aw->in;
                            float wth = at->wt[a][ot] * ah->wt[b][oh];
                            for (int c = 0; c < aw->taps; c++)
                                xrow[aw->idx[c][ow]] += wth * aw->wt[c][ow] * gyrow[ow];
                        }
                    }
                }
            }
        }
    }
    free(g.mem);
    return OSP_OK;
}
