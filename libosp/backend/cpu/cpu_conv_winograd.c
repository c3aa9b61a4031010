/* cpu_conv_winograd.c — 3x3x3 stride-1 convolutions by Winograd's minimal
 * filtering F(2x2x2, 3x3x3), the CausalVideoVAE's main cost.
 *
 * Per dimension, F(2, 3) computes two outputs of a 3-tap filter from four
 * inputs with four products instead of six (points 0, 1, -1 and infinity):
 *
 *   y = Aᵀ [(G g) ⊙ (Bᵀ d)],   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *                              G  = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
 *                              Aᵀ = [1 1 1 0; 0 1 -1 -1]
 *
 * Nested over three dimensions, a 2x2x2 output tile comes from a 4x4x4
 * input tile in 64 products per channel pair instead of 216. Summed over
 * input channels, each of the 64 transform points is one matrix product,
 *   M[a] (O × T) = U[a] (O × C) · V[a] (C × T),
 * for U the transformed weights and V the transformed input tiles of a
 * block of T tiles, so the work stays in sgemm. The points are small
 * integers and halves, so the rounding is that of a direct convolution
 * (relative error ~1e-6 against im2col on random data).
 *
 * Threads take blocks of tiles; each owns its V and M buffers and writes
 * only its tiles' outputs. */
#include "cpu_blas.h"
#include "cpu_kernels.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define POINTS 64 /* 4x4x4 transform points */
/* V and M buffers per thread, in floats (8 MiB: they stay in the cache
 * while the products read them); T within [96, 512], since each sgemm
 * packs its U[a] (O × C) anew and narrower blocks spend more time packing
 * than multiplying at 512 channels. */
#define TILE_BUDGET ((int64_t)1 << 21)
/* Below these widths the products are too thin for sgemm to gain. */
#define MIN_CHANNELS 16
/* The 64 points' matrices in U, V and M lie this many floats (one cache line)
 * further apart than their size: with C·T floats each, a power of two
 * times 4 KiB, the 64 accesses of one tile would otherwise all fall in the
 * same cache sets and evict each other. */
#define POINT_SKEW 16

typedef struct wino_geom {
    int64_t batch, C, O, in[3], out[3], pad[3];
    int64_t tiles[3], per_sample, total; /* tile counts */
    int64_t T;                           /* tiles per block */
} wino_geom;

bool cpu_conv_winograd_applies(const osp_tensor *w, const osp_window *win)
{
    if (w->ndim != 5 || w->dtype != OSP_F32)
        return false;
    const char *env = getenv("OSP_CONV_WINOGRAD");
    if (env && strcmp(env, "0") == 0)
        return false;
    for (int i = 0; i < 3; i++)
        if (w->shape[2 + i] != 3 || win->stride[i] != 1 || win->dilation[i] != 1 ||
            win->pad[i] > 2)
            return false;
    return w->shape[0] >= MIN_CHANNELS && w->shape[1] >= MIN_CHANNELS;
}

/* x [N, C, *in] -> y [N, O, *out] with zero padding pad. */
static void geom_init(wino_geom *g, const osp_tensor *x, const osp_tensor *y,
                      const int64_t pad[3], int64_t threads)
{
    g->batch = x->shape[0];
    g->C = x->shape[1];
    g->O = y->shape[1];
    g->per_sample = 1;
    for (int i = 0; i < 3; i++) {
        g->in[i] = x->shape[2 + i];
        g->out[i] = y->shape[2 + i];
        g->pad[i] = pad[i];
        g->tiles[i] = (g->out[i] + 1) / 2;
        g->per_sample *= g->tiles[i];
    }
    g->total = g->batch * g->per_sample;
    /* blocks as large as the budget allows, but at least four a thread
     * (dynamic scheduling evens out the tail), and not under 96 tiles */
    int64_t T = TILE_BUDGET / (POINTS * (g->C + g->O));
    int64_t share = (g->total + 4 * threads - 1) / (4 * threads);
    T = T < share ? T : share;
    g->T = T < 96 ? 96 : T > 512 ? 512 : T;
}

/* ---- the 1-D transforms ----
 * The input and output transforms run on LANES tiles at once: element
 * [i][l] is point i of tile l, so every line operation is one vector
 * operation across the tiles. */

#define LANES 8
typedef float lanes[LANES];

/* Bᵀ on t[0], t[s], t[2s], t[3s] in place. */
static inline void input_line(lanes *t, int s)
{
#pragma omp simd
    for (int l = 0; l < LANES; l++) {
        float d0 = t[0][l], d1 = t[s][l], d2 = t[2 * s][l], d3 = t[3 * s][l];
        t[0][l] = d0 - d2;
        t[s][l] = d1 + d2;
        t[2 * s][l] = d2 - d1;
        t[3 * s][l] = d1 - d3;
    }
}

/* Bᵀ along each axis of 4x4x4 blocks [z][y][x]. */
static void input_transform(lanes t[POINTS])
{
    for (int a = 0; a < 16; a++)
        input_line(t + a, 16); /* z */
    for (int z = 0; z < 4; z++)
        for (int x = 0; x < 4; x++)
            input_line(t + z * 16 + x, 4); /* y */
    for (int a = 0; a < 16; a++)
        input_line(t + a * 4, 1); /* x */
}

/* G: 3 taps g[0], g[gs], g[2gs] -> 4 values r[0], r[rs], ... */
static inline void weight_line(const float *g, int gs, float *r, int rs)
{
    float g0 = g[0], g1 = g[gs], g2 = g[2 * gs];
    r[0] = g0;
    r[rs] = 0.5f * (g0 + g1 + g2);
    r[2 * rs] = 0.5f * (g0 - g1 + g2);
    r[3 * rs] = g2;
}

/* G along each axis: a 3x3x3 kernel -> 4x4x4 (z, then y, then x). */
static void weight_transform(const float k[27], float u[POINTS])
{
    float a[4][3][3], b[4][4][3];
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++)
            weight_line(k + y * 3 + x, 9, &a[0][y][x], 9);
    for (int z = 0; z < 4; z++)
        for (int x = 0; x < 3; x++)
            weight_line(&a[z][0][x], 3, &b[z][0][x], 3);
    for (int z = 0; z < 4; z++)
        for (int y = 0; y < 4; y++)
            weight_line(&b[z][y][0], 1, u + z * 16 + y * 4, 1);
}

/* Aᵀ: 4 values m[0], m[ms], ... -> 2 values r[0], r[rs]. */
static inline void output_line(const lanes *m, int ms, lanes *r, int rs)
{
#pragma omp simd
    for (int l = 0; l < LANES; l++) {
        float m0 = m[0][l], m1 = m[ms][l], m2 = m[2 * ms][l], m3 = m[3 * ms][l];
        r[0][l] = m0 + m1 + m2;
        r[rs][l] = m1 - m2 - m3;
    }
}

/* Aᵀ along each axis: 4x4x4 -> 2x2x2 blocks. */
static void output_transform(const lanes m[POINTS], lanes r[8])
{
    lanes a[2][4][4], b[2][2][4];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            output_line(m + y * 4 + x, 16, &a[0][y][x], 16);
    for (int z = 0; z < 2; z++)
        for (int x = 0; x < 4; x++)
            output_line(&a[z][0][x], 4, &b[z][0][x], 4);
    for (int z = 0; z < 2; z++)
        for (int y = 0; y < 2; y++)
            output_line(&b[z][y][0], 1, r + z * 4 + y * 2, 1);
}

/* ---- tiles ---- */

/* A tile: its sample and output corner. */
typedef struct tile {
    int64_t b, o[3];
} tile;

static tile tile_at(const wino_geom *g, int64_t u)
{
    tile t = {.b = u / g->per_sample};
    int64_t r = u % g->per_sample;
    t.o[2] = r % g->tiles[2] * 2;
    r /= g->tiles[2];
    t.o[1] = r % g->tiles[1] * 2;
    t.o[0] = r / g->tiles[1] * 2;
    return t;
}

/* Lane l of t: the 4x4x4 input block of channel plane xc under output
 * corner o (zeros outside the input: the padding). */
static void load_tile(const wino_geom *g, const float *xc, const int64_t o[3], lanes t[POINTS],
                      int l)
{
    int64_t z0 = o[0] - g->pad[0], y0 = o[1] - g->pad[1], x0 = o[2] - g->pad[2];
    int64_t hw = g->in[1] * g->in[2], W = g->in[2];
    for (int z = 0; z < 4; z++)
        for (int y = 0; y < 4; y++) {
            lanes *row = t + z * 16 + y * 4;
            int64_t zz = z0 + z, yy = y0 + y;
            const float *src = xc + zz * hw + yy * W + x0;
            bool line = zz >= 0 && zz < g->in[0] && yy >= 0 && yy < g->in[1];
            for (int x = 0; x < 4; x++)
                row[x][l] = line && x0 + x >= 0 && x0 + x < W ? src[x] : 0.0f;
        }
}

/* All LANES tiles of group `tg` at once, when they are consecutive along
 * one row of tiles (the common case): tile l's column x of each of the 16
 * input rows they read is row[2l + x], read in place where the row's span
 * lies inside the input, else from a zero-padded copy of the span. false
 * (nothing loaded) otherwise. */
static bool load_row_of_tiles(const wino_geom *g, const float *xc, const tile *tg,
                              lanes t[POINTS])
{
    const tile *first = &tg[0], *last = &tg[LANES - 1];
    if (last->b != first->b || last->o[0] != first->o[0] || last->o[1] != first->o[1] ||
        last->o[2] != first->o[2] + 2 * (LANES - 1))
        return false;
    enum { SPAN = 2 * LANES + 2 };
    int64_t z0 = first->o[0] - g->pad[0], y0 = first->o[1] - g->pad[1];
    int64_t x0 = first->o[2] - g->pad[2], hw = g->in[1] * g->in[2], W = g->in[2];
    /* the part of the span inside the row: [lo, hi) */
    int64_t lo = x0 < 0 ? -x0 : 0, hi = W - x0 < SPAN ? W - x0 : SPAN;
    for (int z = 0; z < 4; z++)
        for (int y = 0; y < 4; y++) {
            int64_t zz = z0 + z, yy = y0 + y;
            float span[SPAN];
            bool row_in = zz >= 0 && zz < g->in[0] && yy >= 0 && yy < g->in[1];
            const float *src = xc + zz * hw + yy * W + x0, *from = src;
            if (row_in && lo == 0 && hi == SPAN) {
                /* wholly inside: read in place (a copy into span, read
                 * back at other offsets, would stall on store forwarding),
                 * and ask for the row's next groups early */
                __builtin_prefetch(src + 2 * SPAN);
            } else {
                memset(span, 0, sizeof span);
                if (row_in && lo < hi)
                    memcpy(span + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
                from = span;
            }
            lanes *row = t + z * 16 + y * 4;
            for (int x = 0; x < 4; x++)
#pragma omp simd
                for (int l = 0; l < LANES; l++)
                    row[x][l] = from[2 * l + x];
        }
    return true;
}

/* U[a][o][c] (points su floats apart): every kernel transformed, parallel
 * over (o, c). With `adjoint`, w is stored [C, O, 3, 3, 3] and each kernel
 * is used flipped in all three dimensions (reversed, as 27 taps): the
 * convolution that computes a conv's input gradient. */
static void transform_weights(const wino_geom *g, const float *w, bool adjoint, float *U,
                              int64_t su)
{
    int64_t pairs = g->O * g->C;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < pairs; p++) {
        float k[27], u[POINTS];
        int64_t o = p / g->C, c = p % g->C;
        for (int i = 0; i < 27; i++)
            k[i] = adjoint ? w[(c * g->O + o) * 27 + 26 - i] : w[p * 27 + i];
        weight_transform(k, u);
        for (int a = 0; a < POINTS; a++)
            U[a * su + p] = u[a];
    }
}

/* The first n lanes of each point to / from rows `stride` floats apart
 * (a full group, the common case, as one fixed-size copy the compiler
 * inlines; the rest of a partial group's lanes read as zeros). */
static void store_lanes(float *dst, int64_t stride, const lanes v[POINTS], int n)
{
    for (int a = 0; a < POINTS; a++)
        if (n == LANES)
            memcpy(dst + a * stride, v[a], sizeof(lanes));
        else
            memcpy(dst + a * stride, v[a], (size_t)n * sizeof(float));
}

static void load_lanes(const float *src, int64_t stride, lanes v[POINTS], int n)
{
    for (int a = 0; a < POINTS; a++)
        if (n == LANES) {
            memcpy(v[a], src + a * stride, sizeof(lanes));
        } else {
            memset(v[a], 0, sizeof(lanes));
            memcpy(v[a], src + a * stride, (size_t)n * sizeof(float));
        }
}

/* Tiles [u0, u0 + nt): V from the input, M = U·V per point, y from M.
 * Channels are the outer loops, so that each of the 64 points' rows of V
 * and M is written and read front to back. */
static void tile_block(const wino_geom *g, const float *x, const float *U, int64_t su,
                       const float *bias, int64_t u0, int64_t nt, tile *tiles, float *V,
                       float *M, float *y)
{
    int64_t in_size = g->in[0] * g->in[1] * g->in[2];
    int64_t out_size = g->out[0] * g->out[1] * g->out[2], hw = g->out[1] * g->out[2];
    int64_t sv = g->C * nt + POINT_SKEW, sm = g->O * nt + POINT_SKEW; /* point strides */
    for (int64_t t = 0; t < nt; t++)
        tiles[t] = tile_at(g, u0 + t);
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t t0 = 0; t0 < nt; t0 += LANES) {
            int n = nt - t0 < LANES ? (int)(nt - t0) : LANES;
            lanes v[POINTS];
            const float *xc = x + (tiles[t0].b * g->C + c) * in_size;
            if (n < LANES || !load_row_of_tiles(g, xc, tiles + t0, v))
                for (int l = 0; l < LANES; l++) { /* past the last tile: a copy of it */
                    const tile *tl = &tiles[t0 + (l < n ? l : n - 1)];
                    load_tile(g, x + (tl->b * g->C + c) * in_size, tl->o, v, l);
                }
            input_transform(v);
            store_lanes(V + c * nt + t0, sv, v, n);
        }
    for (int a = 0; a < POINTS; a++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->O, (int)nt, (int)g->C,
                    1.0f, U + a * su, (int)g->C, V + a * sv, (int)nt, 0.0f,
                    M + a * sm, (int)nt);
    for (int64_t oc = 0; oc < g->O; oc++) {
        float add = bias ? bias[oc] : 0.0f;
        for (int64_t t0 = 0; t0 < nt; t0 += LANES) {
            int n = nt - t0 < LANES ? (int)(nt - t0) : LANES;
            lanes m[POINTS], r[8];
            load_lanes(M + oc * nt + t0, sm, m, n);
            output_transform(m, r);
            for (int l = 0; l < n; l++) {
                const int64_t *o = tiles[t0 + l].o;
                float *yc = y + (tiles[t0 + l].b * g->O + oc) * out_size;
                for (int z = 0; z < 2 && o[0] + z < g->out[0]; z++)
                    for (int yy = 0; yy < 2 && o[1] + yy < g->out[1]; yy++)
                        for (int xx = 0; xx < 2 && o[2] + xx < g->out[2]; xx++)
                            yc[(o[0] + z) * hw + (o[1] + yy) * g->out[2] + o[2] + xx] =
                                r[z * 4 + yy * 2 + xx][l] + add;
            }
        }
    }
}

/* y = the convolution of x by w (or its adjoint) + bias, as geometry g. */
static osp_status winograd(const wino_geom *gp, const float *x, const float *w, bool adjoint,
                           const float *bias, float *y)
{
    wino_geom g = *gp;
    int64_t su = g.O * g.C + POINT_SKEW;
    size_t u_bytes = (size_t)POINTS * (size_t)su * sizeof(float);
    float *U = malloc(u_bytes);
    if (!U)
        return osp_error_nomem("Winograd weights", u_bytes);
    transform_weights(&g, w, adjoint, U, su);
    int64_t nblocks = (g.total + g.T - 1) / g.T;
    size_t v_floats = (size_t)POINTS * ((size_t)g.C * (size_t)g.T + POINT_SKEW);
    size_t buf_floats = v_floats + (size_t)POINTS * ((size_t)g.O * (size_t)g.T + POINT_SKEW);
    bool failed = false;
    int blas = cpu_blas_serial_begin();
#pragma omp parallel
    {
        float *V = malloc(buf_floats * sizeof(float));
        float *M = V ? V + v_floats : NULL;
        tile *tiles = malloc((size_t)g.T * sizeof *tiles);
        if (!V || !tiles)
            failed = true;
#pragma omp for schedule(dynamic)
        for (int64_t k = 0; k < nblocks; k++) {
            int64_t u0 = k * g.T, nt = g.total - u0 < g.T ? g.total - u0 : g.T;
            if (V && tiles)
                tile_block(&g, x, U, su, bias, u0, nt, tiles, V, M, y);
        }
        free(tiles);
        free(V);
    }
    cpu_blas_serial_end(blas);
    free(U);
    return failed ? osp_error_nomem("Winograd tile buffers", buf_floats * sizeof(float))
                  : OSP_OK;
}

/* in: x [N, C, D, H, W], w [O, C, 3, 3, 3], bias [O]?   out: y [N, O, ...]. */
osp_status cpu_conv_winograd(const osp_node *n)
{
    wino_geom g;
    geom_init(&g, n->in[0], n->out[0], n->p.conv.pad, omp_get_max_threads());
    return winograd(&g, osp_f32(n->in[0]), osp_f32(n->in[1]), false,
                    n->in[2] ? osp_f32(n->in[2]) : NULL, osp_f32(n->out[0]));
}

/* in: gy [N, O, *out], w [O, C, 3, 3, 3], bias [C]?   out: gx [N, C, *in]:
 * gx = gy convolved with the flipped, transposed kernels at padding 2 - p
 * (stride 1: the padded gy is exactly as large as that needs). */
osp_status cpu_conv_winograd_backward_data(const osp_node *n)
{
    int64_t pad[3];
    for (int i = 0; i < 3; i++)
        pad[i] = 2 - n->p.conv.pad[i];
    wino_geom g;
    geom_init(&g, n->in[0], n->out[0], pad, omp_get_max_threads());
    return winograd(&g, osp_f32(n->in[0]), osp_f32(n->in[1]), true,
                    n->in[2] ? osp_f32(n->in[2]) : NULL, osp_f32(n->out[0]));
}
