/* cpu_norm.c — group, layer and RMS normalisation, forward and backward.
 *
 * Every kernel sees x as [N, C, S] split into G groups of C/G channels:
 * group norm is that directly (S = product of the trailing dims), layer
 * norm over the last axis D is the same computation on [rows, D, 1] with
 * one group, and RMS norm is layer norm without the mean (same layout).
 * One (n, group) block is contiguous (C/G·S floats); its statistics are
 * accumulated in double, so results match PyTorch's float32 to ~1e-7. The
 * row loops below are vectorised (double lanes, ROW_CLONES): a layer norm
 * of the Latte training step took 1 ms scalar.
 * Blocks run in parallel, and the gamma/beta gradients sum in an order
 * fixed by the shape, so every result is independent of the thread count.
 * A layer norm's gamma and beta may be per sample ([N0, 1, ..., D], adaLN's
 * modulation): then each run of `per` rows (one sample's) reads, and its
 * gradients sum into, its own row of them. */
#include "cpu_kernels.h"
#include "core/simd.h"

#include <math.h>
#include <stdlib.h>

typedef struct norm_shape {
    int64_t n, c, s, groups;
} norm_shape;

/* Per-block statistics: the mean (0 for RMS norm) and 1/sqrt(var + eps). */
typedef struct norm_stats {
    double mean, rstd;
} norm_stats;

static norm_shape group_norm_shape(const osp_tensor *x, int groups)
{
    norm_shape sh = {x->shape[0], x->shape[1], 1, groups};
    for (int i = 2; i < x->ndim; i++)
        sh.s *= x->shape[i];
    return sh;
}

/* Layer and RMS norm: [rows, D] as [rows, D, 1] with one group. */
static norm_shape last_axis_shape(const osp_tensor *x)
{
    int64_t d = x->shape[x->ndim - 1];
    norm_shape sh = {d ? osp_numel(x) / d : 0, d, 1, 1};
    return sh;
}

/* Rows (units of sh.n) that share one row of the affine parameters: all,
 * or one sample's when `affine` (gamma or beta) holds one row per sample. */
static int64_t rows_per_affine(norm_shape sh, const osp_tensor *affine)
{
    int64_t rows = affine && sh.c ? osp_numel(affine) / sh.c : 1;
    return rows > 1 ? sh.n / rows : sh.n > 0 ? sh.n : 1;
}

/* Σ x and Σ (x - mean)² over a row, in double lanes. */
ROW_CLONES static double row_sum(const float *x, int64_t n)
{
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++)
        sum += x[i];
    return sum;
}

ROW_CLONES static double row_centred_squares(const float *x, int64_t n, double mean)
{
    double sq = 0;
#pragma omp simd reduction(+ : sq)
    for (int64_t i = 0; i < n; i++) {
        double d = x[i] - mean;
        sq += d * d;
    }
    return sq;
}

/* Biased mean and variance of len floats, two passes in double. */
static norm_stats centred_stats(const float *x, int64_t len, float eps)
{
    double mean = len ? row_sum(x, len) / (double)len : 0;
    double var = len ? row_centred_squares(x, len, mean) / (double)len : 0;
    return (norm_stats){mean, 1.0 / sqrt(var + eps)};
}

/* T5's order of operations: variance = mean(x²) rounded to float32 (PyTorch
 * keeps it as a float32 tensor), then rsqrt(variance + eps) in float32. */
static norm_stats rms_stats(const float *x, int64_t len, float eps)
{
    float var = len ? (float)(row_centred_squares(x, len, 0.0) / (double)len) : 0.0f;
    return (norm_stats){0.0, 1.0f / sqrtf(var + eps)};
}

/* y = x·a + shift over a row, in double. */
ROW_CLONES static void row_scale_shift(float *y, const float *x, int64_t n, double a,
                                       double shift)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = (float)(x[i] * a + shift);
}

/* The same with a channel per element (layer norm's affine form):
 * a = rstd·gamma[i], shift = beta[i] - mean·a. */
ROW_CLONES static void row_affine(float *y, const float *x, int64_t n, const float *gamma,
                                  const float *beta, norm_stats st)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        double a = st.rstd * gamma[i];
        y[i] = (float)(x[i] * a + (beta[i] - st.mean * a));
    }
}

/* in: x, gamma?, beta?   out: y */
static void centred_forward(const osp_node *n, norm_shape sh)
{
    const float *x = osp_f32(n->in[0]);
    const float *gamma = n->in[1] ? osp_f32(n->in[1]) : NULL;
    const float *beta = n->in[2] ? osp_f32(n->in[2]) : NULL;
    float *y = osp_f32(n->out[0]);
    float eps = n->p.norm.eps;
    int64_t cpg = sh.c / sh.groups, len = cpg * sh.s, blocks = sh.n * sh.groups;
    int64_t per = rows_per_affine(sh, n->in[1] ? n->in[1] : n->in[2]);
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        const float *xb = x + b * len;
        float *yb = y + b * len;
        norm_stats st = centred_stats(xb, len, eps);
        /* this block's channels c0.. in its sample's row of gamma, beta */
        int64_t c0 = (b % sh.groups) * cpg + b / sh.groups / per * sh.c;
        /* y = (x - mean)·rstd·gamma + beta = x·a + shift */
        if (!gamma && !beta) {
            row_scale_shift(yb, xb, len, st.rstd, -st.mean * st.rstd);
        } else if (sh.s == 1 && gamma && beta) {
            row_affine(yb, xb, len, gamma + c0, beta + c0, st);
        } else {
            for (int64_t c = 0; c < cpg; c++) {
                double a = st.rstd * (gamma ? gamma[c0 + c] : 1.0f);
                double shift = (beta ? beta[c0 + c] : 0.0f) - st.mean * a;
                row_scale_shift(yb + c * sh.s, xb + c * sh.s, sh.s, a, shift);
            }
        }
    }
}

osp_status cpu_group_norm(const osp_node *n)
{
    centred_forward(n, group_norm_shape(n->in[0], n->p.norm.groups));
    return OSP_OK;
}

osp_status cpu_layer_norm(const osp_node *n)
{
    centred_forward(n, last_axis_shape(n->in[0]));
    return OSP_OK;
}

osp_status cpu_rms_norm(const osp_node *n)
{
    const float *x = osp_f32(n->in[0]);
    const float *gamma = n->in[1] ? osp_f32(n->in[1]) : NULL;
    float *y = osp_f32(n->out[0]);
    norm_shape sh = last_axis_shape(n->in[0]);
    float eps = n->p.norm.eps;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < sh.n; r++) {
        const float *xr = x + r * sh.c;
        float *yr = y + r * sh.c;
        float rstd = (float)rms_stats(xr, sh.c, eps).rstd;
        for (int64_t d = 0; d < sh.c; d++)
            yr[d] = (gamma ? gamma[d] : 1.0f) * (xr[d] * rstd);
    }
    return OSP_OK;
}

/* ---- backward ----
 * With xhat = (x - mean)·rstd and g = gy·gamma over one block of len
 * elements: gx = rstd·(g - mean(g) - xhat·mean(g·xhat)). RMS norm has no
 * mean: gx = rstd·(g - xhat·mean(g·xhat)) with xhat = x·rstd. */
/* Σ g and Σ g·xhat over a row, g = gy·w, xhat = (x - mean)·rstd, with w
 * one value, or w[i] per element where `per` is not NULL. */
ROW_CLONES static void row_backward_sums(const float *gy, const float *x, int64_t n, double w,
                                         const float *per, norm_stats st, double *sum_g,
                                         double *sum_gx)
{
    double sg = 0, sgx = 0;
    if (per) {
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t i = 0; i < n; i++) {
            double g = gy[i] * (double)per[i];
            sg += g;
            sgx += g * (x[i] - st.mean) * st.rstd;
        }
    } else {
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t i = 0; i < n; i++) {
            double g = gy[i] * w;
            sg += g;
            sgx += g * (x[i] - st.mean) * st.rstd;
        }
    }
    *sum_g += sg;
    *sum_gx += sgx;
}

ROW_CLONES static void row_backward_out(float *gx, const float *gy, const float *x, int64_t n,
                                        double w, const float *per, norm_stats st,
                                        double mean_g, double mean_gx)
{
    if (per) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            double xhat = (x[i] - st.mean) * st.rstd;
            gx[i] = (float)(st.rstd * (gy[i] * (double)per[i] - mean_g - xhat * mean_gx));
        }
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            double xhat = (x[i] - st.mean) * st.rstd;
            gx[i] = (float)(st.rstd * (gy[i] * w - mean_g - xhat * mean_gx));
        }
    }
}

static void block_backward(const float *gy, const float *x, const float *gamma, norm_shape sh,
                           int64_t c0, norm_stats st, bool centred, float *gx)
{
    int64_t cpg = sh.c / sh.groups, len = cpg * sh.s;
    /* whole-block rows where the weight is 1 or varies per element */
    bool whole = !gamma || sh.s == 1;
    const float *per = gamma && sh.s == 1 ? gamma + c0 : NULL;
    int64_t rows = whole ? 1 : cpg, n = whole ? len : sh.s;
    double sum_g = 0, sum_gx = 0;
    for (int64_t c = 0; c < rows; c++)
        row_backward_sums(gy + c * n, x + c * n, n, whole ? 1.0 : gamma[c0 + c], per, st,
                          &sum_g, &sum_gx);
    double mean_g = centred ? sum_g / (double)len : 0, mean_gx = sum_gx / (double)len;
    for (int64_t c = 0; c < rows; c++)
        row_backward_out(gx + c * n, gy + c * n, x + c * n, n, whole ? 1.0 : gamma[c0 + c], per,
                         st, mean_g, mean_gx);
}

/* pg[c] += gy[c]·(x[c] - mean)·rstd, pb[c] += gy[c] over one row of a
 * layer norm (a channel per element), in double lanes. */
ROW_CLONES static void row_affine_grads(double *pg, double *pb, const float *gy, const float *x,
                                        int64_t n, norm_stats st)
{
#pragma omp simd
    for (int64_t c = 0; c < n; c++) {
        pg[c] += gy[c] * (x[c] - st.mean) * st.rstd;
        pb[c] += gy[c];
    }
}

/* Channel c's affine gradients from `count` chunks' partial sums from
 * chunk `first` on (part[chunk][0][c]: Σ gy·xhat, part[chunk][1][c]: Σ gy,
 * `channels` wide), added in chunk order into ggamma[at] and gbeta[at]
 * (either may be NULL). */
static void add_partials(const double *part, int64_t channels, int64_t first, int64_t count,
                         int64_t c, float *ggamma, float *gbeta, int64_t at)
{
    double sg = 0, sb = 0;
    for (int64_t i = first; i < first + count; i++) {
        sg += part[(size_t)i * 2 * (size_t)channels + (size_t)c];
        sb += part[(size_t)i * 2 * (size_t)channels + (size_t)(channels + c)];
    }
    if (ggamma)
        ggamma[at] = (float)sg;
    if (gbeta)
        gbeta[at] = (float)sb;
}

/* Layer and RMS norm ([rows, D]): one parallel pass over chunks of
 * CHUNK_ROWS rows, none straddling two runs of `per` rows (two samples'
 * affine rows). A chunk writes its rows of gx and, when the affine
 * gradients are wanted, its partial sums of gy·xhat and gy, which are then
 * added in chunk order: the result does not depend on the thread count,
 * and x and gy are read while their rows are still in cache (a separate
 * affine pass with its own parallel regions took 60 % of the op). */
#define CHUNK_ROWS 16

static osp_status rows_backward(const osp_node *n, norm_shape sh, int64_t per, bool centred)
{
    const float *gy = osp_f32(n->in[0]), *x = osp_f32(n->in[1]);
    const float *gamma = n->in[2] ? osp_f32(n->in[2]) : NULL;
    float *gx = osp_f32(n->out[0]), eps = n->p.norm.eps;
    float *ggamma = n->n_out > 1 && n->out[1] ? osp_f32(n->out[1]) : NULL;
    float *gbeta = n->n_out > 2 && n->out[2] ? osp_f32(n->out[2]) : NULL;
    int64_t d = sh.c, runs = sh.n / per, chunks = (per + CHUNK_ROWS - 1) / CHUNK_ROWS;
    int64_t items = runs * chunks;
    bool affine = ggamma || gbeta;
    size_t count = affine ? (size_t)items * 2 * (size_t)d : 0;
    double *part = malloc((count ? count : 1) * sizeof *part);
    if (!part)
        return osp_error_nomem("normalisation parameter gradients", count * sizeof *part);
#pragma omp parallel for schedule(static)
    for (int64_t item = 0; item < items; item++) {
        int64_t run = item / chunks, r0 = run * per + item % chunks * CHUNK_ROWS;
        int64_t r1 = r0 + CHUNK_ROWS < (run + 1) * per ? r0 + CHUNK_ROWS : (run + 1) * per;
        double *pg = part + (size_t)item * 2 * (size_t)d, *pb = pg + d;
        for (int64_t c = 0; affine && c < 2 * d; c++)
            pg[c] = 0;
        for (int64_t r = r0; r < r1; r++) {
            const float *xr = x + r * d, *gyr = gy + r * d;
            norm_stats st = centred ? centred_stats(xr, d, eps) : rms_stats(xr, d, eps);
            block_backward(gyr, xr, gamma, sh, run * d, st, centred, gx + r * d);
            if (affine)
                row_affine_grads(pg, pb, gyr, xr, d, st);
        }
    }
#pragma omp parallel for schedule(static) if (affine)
    for (int64_t rc = 0; rc < (affine ? runs * d : 0); rc++)
        add_partials(part, d, rc / d * chunks, chunks, rc % d, ggamma, gbeta, rc);
    free(part);
    return OSP_OK;
}

/* ggamma[c] = Σ gy·xhat and gbeta[c] = Σ gy over n and s (either may be
 * NULL), using the per-block statistics. The work is split into items of
 * (row chunk, channel tile) whose sizes depend only on the shape; each
 * item writes partial sums of its chunk, which are then added in chunk
 * order, so the result does not depend on the thread count. A tile spans
 * about ITEM_SPAN contiguous elements of a row (one channel for the VAE's
 * large group norms). */
#define ROW_CHUNKS 64
#define ITEM_SPAN 4096

static osp_status affine_grads_rows(const float *gy, const float *x, const norm_stats *stats,
                                    norm_shape sh, float *ggamma, float *gbeta)
{
    int64_t cpg = sh.c / sh.groups;
    int64_t tile = sh.s >= ITEM_SPAN ? 1 : (ITEM_SPAN + sh.s - 1) / sh.s;
    tile = tile < sh.c ? tile : sh.c;
    int64_t chunks = sh.n < ROW_CHUNKS ? sh.n : ROW_CHUNKS;
    int64_t tiles = tile ? (sh.c + tile - 1) / tile : 0, items = chunks * tiles;
    int64_t rows_per_chunk = chunks ? (sh.n + chunks - 1) / chunks : 0;
    /* part[r][0][c]: Σ gy·xhat, part[r][1][c]: Σ gy over chunk r */
    size_t count = (size_t)(chunks ? chunks : 1) * 2 * (size_t)sh.c;
    double *part = calloc(count ? count : 1, sizeof *part);
    if (!part)
        return osp_error_nomem("normalisation parameter gradients", count * sizeof *part);
#pragma omp parallel for schedule(static)
    for (int64_t item = 0; item < items; item++) {
        int64_t r = item / tiles, c_lo = item % tiles * tile;
        int64_t c_hi = c_lo + tile < sh.c ? c_lo + tile : sh.c;
        int64_t i_lo = r * rows_per_chunk;
        int64_t i_hi = i_lo + rows_per_chunk < sh.n ? i_lo + rows_per_chunk : sh.n;
        double *pg = part + r * 2 * sh.c, *pb = pg + sh.c;
        for (int64_t i = i_lo; i < i_hi; i++) {
            for (int64_t c = c_lo; c < c_hi;) {
                /* the channels of this tile in group c / cpg */
                int64_t g = c / cpg, c_end = (g + 1) * cpg < c_hi ? (g + 1) * cpg : c_hi;
                norm_stats st = stats[i * sh.groups + g];
                for (; c < c_end; c++) {
                    const float *gyc = gy + (i * sh.c + c) * sh.s;
                    const float *xc = x + (i * sh.c + c) * sh.s;
                    double sg = 0, sb = 0;
                    for (int64_t s = 0; s < sh.s; s++) {
                        sg += gyc[s] * (xc[s] - st.mean);
                        sb += gyc[s];
                    }
                    pg[c] += sg * st.rstd;
                    pb[c] += sb;
                }
            }
        }
    }
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < sh.c; c++)
        add_partials(part, sh.c, 0, chunks, c, ggamma, gbeta, c);
    free(part);
    return OSP_OK;
}

/* The same per run of `per` rows (one sample's gamma and beta rows each). */
static osp_status affine_grads(const float *gy, const float *x, const norm_stats *stats,
                               norm_shape sh, int64_t per, float *ggamma, float *gbeta)
{
    int64_t len = sh.c * sh.s;
    norm_shape part = sh;
    part.n = per;
    for (int64_t r0 = 0; r0 < sh.n; r0 += per) {
        int64_t p = r0 / per;
        osp_status st = affine_grads_rows(gy + r0 * len, x + r0 * len, stats + r0 * sh.groups,
                                          part, ggamma ? ggamma + p * sh.c : NULL,
                                          gbeta ? gbeta + p * sh.c : NULL);
        if (st)
            return st;
    }
    return OSP_OK;
}

/* in: gy, x, gamma?   out: gx, ggamma?, gbeta? (gbeta only when centred). */
static osp_status norm_backward(const osp_node *n, norm_shape sh, bool centred)
{
    osp_tensor *gg = n->n_out > 1 ? n->out[1] : NULL, *gb = n->n_out > 2 ? n->out[2] : NULL;
    int64_t per = rows_per_affine(sh, n->in[2] ? n->in[2] : gg ? gg : gb);
    if (sh.s == 1 && sh.groups == 1)
        return rows_backward(n, sh, per, centred);
    const float *gy = osp_f32(n->in[0]), *x = osp_f32(n->in[1]);
    const float *gamma = n->in[2] ? osp_f32(n->in[2]) : NULL;
    float eps = n->p.norm.eps;
    int64_t cpg = sh.c / sh.groups, len = cpg * sh.s, blocks = sh.n * sh.groups;
    norm_stats *stats = malloc((size_t)(blocks ? blocks : 1) * sizeof *stats);
    if (!stats)
        return osp_error_nomem("normalisation statistics", (size_t)blocks * sizeof *stats);
    float *gx = osp_f32(n->out[0]);
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        const float *xb = x + b * len;
        stats[b] = centred ? centred_stats(xb, len, eps) : rms_stats(xb, len, eps);
        block_backward(gy + b * len, xb, gamma, sh,
                       (b % sh.groups) * cpg + b / sh.groups / per * sh.c, stats[b], centred,
                       gx + b * len);
    }
    osp_status st = OSP_OK;
    if (gg || gb)
        st = affine_grads(gy, x, stats, sh, per, gg ? osp_f32(gg) : NULL,
                          gb ? osp_f32(gb) : NULL);
    free(stats);
    return st;
}

osp_status cpu_group_norm_backward(const osp_node *n)
{
    return norm_backward(n, group_norm_shape(n->in[1], n->p.norm.groups), true);
}

osp_status cpu_layer_norm_backward(const osp_node *n)
{
    return norm_backward(n, last_axis_shape(n->in[1]), true);
}

osp_status cpu_rms_norm_backward(const osp_node *n)
{
    return norm_backward(n, last_axis_shape(n->in[1]), false);
}
