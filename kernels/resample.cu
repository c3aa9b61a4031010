/* resample.cu — nearest/(bi,tri)linear interpolation, average and max
 * pooling over 1-3 spatial dims, and their backward (CPU reference:
 * cpu_interp.c, cpu_pool.c, cpu_maxpool.c). 1-D and 2-D run as 3-D with
 * unit leading dims. Forward kernels compute one output element per
 * thread; the interpolation backward gathers over inverted tables
 * (cu_interp.h) and the average-pool backward over covering windows, both
 * in a fixed order; the max-pool backward scatters with atomicAdd (its
 * sums are not in a fixed order where windows overlap). */
#include "common.cuh"

#include "backend/cuda/cu_interp.h"

#include <stdlib.h>

/* ---- interpolation ---- */

/* Per output index of one axis: two source indices and weights. The
 * tables of the three axes sit in one device buffer. */
struct interp_axes {
    int64_t in[3], out[3];
    int taps[3];
    const int64_t *idx[3]; /* [2][out] each */
    const float *wt[3];
    cu_axis_inverse inv[3]; /* the backward's inverted tables */
    int64_t planes, in_size, out_size;
};

/* The CPU's axis_fill, verbatim in its arithmetic. */
static int axis_fill(int64_t in, int64_t out, bool nearest, bool align_corners, int64_t *idx,
                     float *wt)
{
    if (nearest) {
        float scale = (float)in / (float)out;
        for (int64_t o = 0; o < out; o++) {
            int64_t i = (int64_t)floorf((float)o * scale);
            idx[o] = i < in - 1 ? i : in - 1;
            idx[out + o] = idx[o];
            wt[o] = 1.0f;
            wt[out + o] = 0.0f;
        }
        return 1;
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
        idx[o] = i;
        idx[out + o] = i + (i < in - 1 ? 1 : 0);
        wt[o] = 1.0f - l;
        wt[out + o] = l;
    }
    return in == out ? 1 : 2;
}

/* Builds the tables of x -> y on the host (with `inverse`, also each
 * axis's inverted tables) and uploads them; *buf holds them until
 * released. */
static osp_status interp_setup(const osp_node *n, const osp_tensor *x, const osp_tensor *y,
                               bool inverse, interp_axes *g, osp_storage **buf)
{
    cu_geom3 geo = cu_geom3_of(x, y, NULL);
    g->planes = geo.planes;
    g->in_size = geo.in_size;
    g->out_size = geo.out_size;
    int64_t total = 0, starts = 0;
    for (int d = 0; d < 3; d++) {
        g->in[d] = geo.in[d];
        g->out[d] = geo.out[d];
        total += geo.out[d];
        starts += geo.in[d] + 1;
    }
    /* forward tables: 2·total indices, then 2·total weights; inverted:
     * start lists, 2·total outputs, then 2·total weights */
    size_t forward = (size_t)total * 2 * (sizeof(int64_t) + sizeof(float));
    size_t bytes = forward + (inverse ? (size_t)(starts + 2 * total) * sizeof(int64_t) +
                                            (size_t)total * 2 * sizeof(float)
                                      : 0);
    char *host = (char *)malloc(bytes);
    if (!host)
        return osp_error_nomem("interpolation tables", bytes);
    *buf = cu_scratch(bytes);
    if (!*buf) {
        free(host);
        return osp_error_code();
    }
    int64_t *ip = (int64_t *)host;
    float *fp = (float *)(ip + 2 * total);
    char *dev = (char *)(*buf)->data;
    for (int d = 0; d < 3; d++) {
        g->taps[d] = axis_fill(g->in[d], g->out[d], n->p.interp.mode == OSP_INTERP_NEAREST,
                               n->p.interp.align_corners, ip, fp);
        g->idx[d] = (const int64_t *)(dev + ((char *)ip - host));
        g->wt[d] = (const float *)(dev + ((char *)fp - host));
        ip += 2 * g->out[d];
        fp += 2 * g->out[d];
    }
    int64_t *sp = (int64_t *)(host + forward), *op = sp + starts;
    float *wp = (float *)(op + 2 * total);
    const int64_t *idx = (const int64_t *)host;
    const float *wt = (const float *)(idx + 2 * total);
    for (int d = 0; inverse && d < 3; d++) {
        cu_invert_axis(g->in[d], g->out[d], g->taps[d], idx, wt, sp, op, wp);
        g->inv[d] = (cu_axis_inverse){(const int64_t *)(dev + ((char *)sp - host)),
                                      (const int64_t *)(dev + ((char *)op - host)),
                                      (const float *)(dev + ((char *)wp - host))};
        idx += 2 * g->out[d];
        wt += 2 * g->out[d];
        sp += g->in[d] + 1;
        op += g->taps[d] * g->out[d];
        wp += g->taps[d] * g->out[d];
    }
    /* Pageable source: the call returns once the bytes are staged. */
    osp_status st = cu_check(n, cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice,
                                                cu_stream()), "interpolation tables");
    free(host);
    if (st) {
        osp_storage_release(*buf);
        *buf = NULL;
    }
    return st;
}

__global__ void interp_kernel(const float *x, float *y, interp_axes g)
{
    CU_FOR(i, g.planes * g.out_size) {
        int64_t p = i / g.out_size, r = i % g.out_size;
        int64_t ow = r % g.out[2], oh = r / g.out[2] % g.out[1], ot = r / (g.out[2] * g.out[1]);
        const float *xp = x + p * g.in_size;
        float vt = 0;
        for (int a = 0; a < g.taps[0]; a++) {
            float vh = 0;
            for (int b = 0; b < g.taps[1]; b++) {
                const float *xrow =
                    xp + (g.idx[0][a * g.out[0] + ot] * g.in[1] + g.idx[1][b * g.out[1] + oh]) *
                             g.in[2];
                float vw = 0;
                for (int c = 0; c < g.taps[2]; c++)
                    vw += xrow[g.idx[2][c * g.out[2] + ow]] * g.wt[2][c * g.out[2] + ow];
                vh += vw * g.wt[1][b * g.out[1] + oh];
            }
            vt += vh * g.wt[0][a * g.out[0] + ot];
        }
        y[i] = vt;
    }
}

__global__ void interp_backward_kernel(const float *gy, float *gx, interp_axes g)
{
    /* g describes gx -> gy (in = gx's extents, out = gy's); one thread
     * per element of gx */
    CU_FOR(i, g.planes * g.in_size) {
        int64_t p = i / g.in_size, r = i % g.in_size;
        int64_t iw = r % g.in[2], ih = r / g.in[2] % g.in[1], it = r / (g.in[2] * g.in[1]);
        gx[i] = cu_interp_grad_at(gy + p * g.out_size, g.out, g.inv[0], g.inv[1], g.inv[2], it,
                                  ih, iw);
    }
}

extern "C" osp_status cuda_interpolate(const osp_node *n)
{
    interp_axes g;
    osp_storage *buf;
    if (interp_setup(n, n->in[0], n->out[0], false, &g, &buf))
        return osp_error_code();
    int64_t total = g.planes * g.out_size;
    osp_status st = OSP_OK;
    if (total) {
        interp_kernel<<<cu_grid(total), CU_THREADS, 0, cu_stream()>>>(cu_f32(n->in[0]),
                                                                      cu_f32(n->out[0]), g);
        st = CU_LAUNCHED(n, "interpolation kernel");
    }
    osp_storage_release(buf);
    return st;
}

extern "C" osp_status cuda_interpolate_backward(const osp_node *n)
{
    interp_axes g;
    osp_storage *buf;
    if (interp_setup(n, n->out[0], n->in[0], true, &g, &buf))
        return osp_error_code();
    osp_status st = OSP_OK;
    int64_t total = g.planes * g.in_size;
    if (total) {
        interp_backward_kernel<<<cu_grid(total), CU_THREADS, 0, cu_stream()>>>(
            cu_f32(n->in[0]), cu_f32(n->out[0]), g);
        st = CU_LAUNCHED(n, "interpolation backward kernel");
    }
    osp_storage_release(buf);
    return st;
}

/* ---- pooling ---- */

/* The input range [*lo, *hi) of window o along dim d, clipped. */
__device__ inline void window(const cu_geom3 &g, int d, int64_t o, int64_t *lo, int64_t *hi)
{
    int64_t start = o * g.s[d] - g.p[d];
    *lo = start > 0 ? start : 0;
    *hi = start + g.k[d] < g.in[d] ? start + g.k[d] : g.in[d];
}

__device__ inline void out_coords(const cu_geom3 &g, int64_t r, int64_t *ot, int64_t *oh,
                                  int64_t *ow)
{
    *ow = r % g.out[2];
    *oh = r / g.out[2] % g.out[1];
    *ot = r / (g.out[2] * g.out[1]);
}

__global__ void avg_pool_kernel(const float *x, float *y, cu_geom3 g, float volume)
{
    CU_FOR(i, g.planes * g.out_size) {
        int64_t ot, oh, ow, t0, t1, h0, h1, w0, w1;
        out_coords(g, i % g.out_size, &ot, &oh, &ow);
        window(g, 0, ot, &t0, &t1);
        window(g, 1, oh, &h0, &h1);
        window(g, 2, ow, &w0, &w1);
        const float *xp = x + i / g.out_size * g.in_size;
        float sum = 0;
        for (int64_t t = t0; t < t1; t++)
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++)
                    sum += xp[(t * g.in[1] + h) * g.in[2] + w];
        y[i] = sum / volume;
    }
}

/* The windows [*lo, *hi) along dim d whose range covers input index i. */
__device__ inline void covering(const cu_geom3 &g, int d, int64_t i, int64_t *lo, int64_t *hi)
{
    int64_t a = i + g.p[d] - g.k[d] + 1; /* o·s >= a */
    int64_t first = a > 0 ? (a + g.s[d] - 1) / g.s[d] : 0;
    int64_t last = (i + g.p[d]) / g.s[d]; /* o·s <= i + p */
    *lo = first;
    *hi = last + 1 < g.out[d] ? last + 1 : g.out[d];
}

__global__ void avg_pool_backward_kernel(const float *gy, float *gx, cu_geom3 g, float volume)
{
    /* g describes x -> y (in = gx's extents). */
    CU_FOR(i, g.planes * g.in_size) {
        int64_t r = i % g.in_size;
        int64_t iw = r % g.in[2], ih = r / g.in[2] % g.in[1], it = r / (g.in[2] * g.in[1]);
        int64_t t0, t1, h0, h1, w0, w1;
        covering(g, 0, it, &t0, &t1);
        covering(g, 1, ih, &h0, &h1);
        covering(g, 2, iw, &w0, &w1);
        const float *gyp = gy + i / g.in_size * g.out_size;
        float sum = 0;
        for (int64_t t = t0; t < t1; t++)
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++)
                    sum += gyp[(t * g.out[1] + h) * g.out[2] + w] / volume;
        gx[i] = sum;
    }
}

static float volume_of(const cu_geom3 &g) { return (float)(g.k[0] * g.k[1] * g.k[2]); }

extern "C" osp_status cuda_avg_pool(const osp_node *n)
{
    cu_geom3 g = cu_geom3_of(n->in[0], n->out[0], &n->p.pool);
    if (g.planes * g.out_size == 0)
        return OSP_OK;
    avg_pool_kernel<<<cu_grid(g.planes * g.out_size), CU_THREADS, 0, cu_stream()>>>(
        cu_f32(n->in[0]), cu_f32(n->out[0]), g, volume_of(g));
    return CU_LAUNCHED(n, "average pooling kernel");
}

extern "C" osp_status cuda_avg_pool_backward(const osp_node *n)
{
    cu_geom3 g = cu_geom3_of(n->out[0], n->in[0], &n->p.pool);
    if (g.planes * g.in_size == 0)
        return OSP_OK;
    avg_pool_backward_kernel<<<cu_grid(g.planes * g.in_size), CU_THREADS, 0, cu_stream()>>>(
        cu_f32(n->in[0]), cu_f32(n->out[0]), g, volume_of(g));
    return CU_LAUNCHED(n, "average pooling backward kernel");
}

/* Offset within plane xp of the element window (ot, oh, ow) picks: the
 * first maximum in scan order, a NaN replacing whatever came before. */
__device__ inline int64_t pick(const cu_geom3 &g, const float *xp, int64_t ot, int64_t oh,
                               int64_t ow)
{
    int64_t t0, t1, h0, h1, w0, w1;
    window(g, 0, ot, &t0, &t1);
    window(g, 1, oh, &h0, &h1);
    window(g, 2, ow, &w0, &w1);
    int64_t best = (t0 * g.in[1] + h0) * g.in[2] + w0;
    float best_v = xp[best];
    for (int64_t t = t0; t < t1; t++)
        for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) {
                int64_t i = (t * g.in[1] + h) * g.in[2] + w;
                float v = xp[i];
                if (v > best_v || isnan(v)) {
                    best_v = v;
                    best = i;
                }
            }
    return best;
}

__global__ void max_pool_kernel(const float *x, float *y, cu_geom3 g)
{
    CU_FOR(i, g.planes * g.out_size) {
        int64_t ot, oh, ow;
        out_coords(g, i % g.out_size, &ot, &oh, &ow);
        const float *xp = x + i / g.out_size * g.in_size;
        y[i] = xp[pick(g, xp, ot, oh, ow)];
    }
}

__global__ void max_pool_backward_kernel(const float *gy, const float *x, float *gx, cu_geom3 g)
{
    CU_FOR(i, g.planes * g.out_size) {
        int64_t ot, oh, ow, base = i / g.out_size * g.in_size;
        out_coords(g, i % g.out_size, &ot, &oh, &ow);
        atomicAdd(gx + base + pick(g, x + base, ot, oh, ow), gy[i]);
    }
}

extern "C" osp_status cuda_max_pool(const osp_node *n)
{
    cu_geom3 g = cu_geom3_of(n->in[0], n->out[0], &n->p.pool);
    if (g.planes * g.out_size == 0)
        return OSP_OK;
    max_pool_kernel<<<cu_grid(g.planes * g.out_size), CU_THREADS, 0, cu_stream()>>>(
        cu_f32(n->in[0]), cu_f32(n->out[0]), g);
    return CU_LAUNCHED(n, "max pooling kernel");
}

extern "C" osp_status cuda_max_pool_backward(const osp_node *n)
{
    cu_geom3 g = cu_geom3_of(n->in[1], n->in[0], &n->p.pool);
    CU_TRY(n, cudaMemsetAsync(cu_ptr(n->out[0]), 0, osp_nbytes(n->out[0]), cu_stream()));
    if (g.planes * g.out_size == 0)
        return OSP_OK;
    max_pool_backward_kernel<<<cu_grid(g.planes * g.out_size), CU_THREADS, 0, cu_stream()>>>(
        cu_f32(n->in[0]), cu_f32(n->in[1]), cu_f32(n->out[0]), g);
    return CU_LAUNCHED(n, "max pooling backward kernel");
}
