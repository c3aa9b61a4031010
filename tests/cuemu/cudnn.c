/* cudnn.c — a test-only emulation of cuDNN's convolutions for tests/cuemu
 * (device memory is host memory, streams are synchronous); not a
 * performance path. With cudnn_desc.c (the handle and descriptors) it
 * defines exactly the cuDNN calls libosp/backend/cuda/ and
 * bench/gpu/conv_layout.c make, with the real headers' signatures (cudnn.h
 * is included so that the compiler checks them), so that the backend's
 * convolution code runs, and is checked, without a GPU.
 *
 * float 2-D / 3-D convolutions of NCHW / NCDHW tensors with any positive
 * strides and packed KCRS (NCHW) or KRSC (NHWC) filters; per-dimension
 * pad, stride, dilation;
 * cross-correlation or convolution (mirrored filter); out = alpha·op +
 * beta·out, out unread when beta == 0. Sums are accumulated in double and
 * rounded to float once, so all algorithms give the same result; they
 * differ in what they report and check (support, workspace, determinism, a
 * modelled time). Find*Ex leaves NaN in its output. Each rejection prints
 * "cuemu: cudnn: <function>: <reason>" to stderr (the real library is
 * silent) and returns BAD_PARAM for misuse, NOT_SUPPORTED beyond it. */
#include "cudnn_emu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A convolution seen as 3-D: a 2-D one gets a unit depth (stride 0 in
 * memory, pad 0, stride and dilation 1). Index 0..4 = N, C, D, H, W. */
typedef struct geom {
    int64_t xd[5], xs[5]; /* x (dx): dims and memory strides */
    int64_t yd[5], ys[5]; /* y (dy) */
    int64_t wd[5], ws[5]; /* w (dw): K, C, kd, kh, kw; its format's packed strides */
    int64_t pad[3], str[3], dil[3];
    bool three_d;
    bool flip; /* CUDNN_CONVOLUTION: the filter is applied mirrored */
    cudnnMathType_t math;
} geom;

static void to5(int nb, const int *dim, const int *stride, int64_t d5[5], int64_t s5[5])
{
    int at = 0;
    for (int i = 0; i < 5; i++) {
        bool unit = nb == 4 && i == 2;
        d5[i] = unit ? 1 : dim[at];
        s5[i] = unit ? 0 : stride ? stride[at] : 0;
        at += !unit;
    }
}

static void packed5(const int64_t d[5], int64_t s[5])
{
    s[4] = 1;
    for (int i = 3; i >= 0; i--)
        s[i] = s[i + 1] * d[i + 1];
}

static int64_t numel5(const int64_t d[5]) { return d[0] * d[1] * d[2] * d[3] * d[4]; }

/* Checks what every convolution call checks (the documented BAD_PARAM and
 * NOT_SUPPORTED cases of cudnnConvolutionForward) and fills g. */
static cudnnStatus_t prepare(const char *fn, cudnnHandle_t h, cudnnTensorDescriptor_t x,
                             cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c,
                             cudnnTensorDescriptor_t y, geom *g)
{
    if (!h)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL handle");
    if (!x || !w || !c || !y || !x->set || !w->set || !c->set || !y->set)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "a descriptor is NULL or was never set");
    if (x->nb != y->nb || x->nb != w->nb || x->nb != c->n + 2)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "ranks: x %d, w %d, y %d, conv %d + 2",
                              x->nb, w->nb, y->nb, c->n);
    if (x->nb != 4 && x->nb != 5)
        return cudnn_emu_fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "rank %d: 4 or 5 only", x->nb);
    if (x->type != CUDNN_DATA_FLOAT || w->type != CUDNN_DATA_FLOAT ||
        y->type != CUDNN_DATA_FLOAT || c->type != CUDNN_DATA_FLOAT)
        return cudnn_emu_fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "float data and compute only");
    to5(x->nb, x->dim, x->stride, g->xd, g->xs);
    to5(y->nb, y->dim, y->stride, g->yd, g->ys);
    int64_t ws[CUDNN_DIM_MAX] = {0};
    int wstride[CUDNN_DIM_MAX];
    cudnn_emu_format_strides(w->format, w->nb, w->dim, ws);
    if (ws[0] > INT32_MAX / w->dim[0])
        return cudnn_emu_fail(CUDNN_STATUS_NOT_SUPPORTED, fn,
                              "the filter has 2^31 elements or more");
    for (int i = 0; i < w->nb; i++)
        wstride[i] = (int)ws[i];
    to5(w->nb, w->dim, wstride, g->wd, g->ws);
    if (g->xd[0] != g->yd[0])
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "batch: x %d, y %d", x->dim[0],
                              y->dim[0]);
    if (g->xd[1] != g->wd[1])
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "channels: x %d, filter %d", x->dim[1],
                              w->dim[1]);
    if (g->yd[1] != g->wd[0])
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "output channels: y %d, filter %d",
                              y->dim[1], w->dim[0]);
    for (int i = 0, lead = 5 - x->nb; i < 3; i++) {
        int j = i - lead; /* index into the descriptor's arrays */
        g->pad[i] = j >= 0 ? c->pad[j] : 0;
        g->str[i] = j >= 0 ? c->stride[j] : 1;
        g->dil[i] = j >= 0 ? c->dil[j] : 1;
        int64_t in = g->xd[2 + i] + 2 * g->pad[i], span = g->dil[i] * (g->wd[2 + i] - 1) + 1;
        if (span > in)
            return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn,
                                  "spatial dim %d: dilated filter %lld > padded input %lld", j,
                                  (long long)span, (long long)in);
        int64_t out = (in - span) / g->str[i] + 1;
        if (g->yd[2 + i] != out)
            return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn,
                                  "spatial dim %d: y has %lld, not %lld", j,
                                  (long long)g->yd[2 + i], (long long)out);
    }
    g->three_d = x->nb == 5;
    g->flip = c->mode == CUDNN_CONVOLUTION;
    g->math = c->math;
    return CUDNN_STATUS_SUCCESS;
}

typedef enum { FWD, BWD_DATA, BWD_FILTER } direction;

/* x (read through its memory strides) channels-last, [N][D][H][W][C], so
 * that the sums over input channels run over adjacent elements. */
static void x_channels_last(const geom *g, const float *t, float *cl)
{
    int64_t n = g->xd[0], c = g->xd[1], sp = g->xd[2] * g->xd[3] * g->xd[4];
    for (int64_t i = 0; i < n; i++)
        for (int64_t p = 0; p < sp; p++) {
            int64_t at[3] = {p / (g->xd[3] * g->xd[4]), p / g->xd[4] % g->xd[3], p % g->xd[4]};
            int64_t mem = i * g->xs[0] + at[0] * g->xs[2] + at[1] * g->xs[3] + at[2] * g->xs[4];
            for (int64_t j = 0; j < c; j++)
                cl[(i * sp + p) * c + j] = t[mem + j * g->xs[1]];
        }
}

/* The offset, under strides s, of filter k, tap t (mirrored for
 * CONVOLUTION), channel 0. */
static int64_t w_offset(const geom *g, const int64_t s[5], int64_t k, const int64_t r[3])
{
    int64_t off = k * s[0];
    for (int i = 0; i < 3; i++)
        off += (g->flip ? g->wd[2 + i] - 1 - r[i] : r[i]) * s[2 + i];
    return off;
}

/* acc (packed, double) += the direction's sum over every (output position,
 * input channel, filter tap) that lands inside the input:
 *   FWD         acc[y] += x·w        (a = x,  b = w)
 *   BWD_DATA    acc[x] += dy·w       (a = dy, b = w)
 *   BWD_FILTER  acc[w] += x·dy       (a = x,  b = dy)
 * over channels-last copies of x and of the filters ([K][tap][C]); false
 * when host memory runs out. */
static bool accumulate(const geom *g, direction dir, const float *a, const float *b, double *acc)
{
    int64_t taps = g->wd[2] * g->wd[3] * g->wd[4], C = g->xd[1], K = g->wd[0];
    int64_t sp = g->xd[2] * g->xd[3] * g->xd[4], outs = g->yd[2] * g->yd[3] * g->yd[4];
    int64_t yp[5], wp[5]; /* packed: acc's order */
    packed5(g->yd, yp);
    packed5(g->wd, wp);
    size_t xn = (size_t)(g->xd[0] * sp * C), wn = (size_t)(K * taps * C);
    /* (+ 1: an empty tensor is not out of memory) */
    float *xcl = dir != BWD_DATA ? malloc((xn + 1) * sizeof *xcl) : NULL;
    float *wt = dir != BWD_FILTER ? malloc((wn + 1) * sizeof *wt) : NULL;
    double *cl = dir == BWD_DATA     ? calloc(xn + 1, sizeof *cl)
                 : dir == BWD_FILTER ? calloc(wn + 1, sizeof *cl)
                                     : NULL;
    int64_t (*r)[3] = malloc(((size_t)taps + 1) * sizeof *r);
    bool ok = r && (dir == FWD ? xcl && wt : dir == BWD_DATA ? wt && cl : xcl && cl);
    for (int64_t t = 0; ok && t < taps; t++) {
        r[t][0] = t / (g->wd[3] * g->wd[4]);
        r[t][1] = t / g->wd[4] % g->wd[3];
        r[t][2] = t % g->wd[4];
        for (int64_t k = 0; wt && k < K; k++)
            for (int64_t c = 0, off = w_offset(g, g->ws, k, r[t]); c < C; c++)
                wt[(k * taps + t) * C + c] = b[off + c * g->ws[1]];
    }
    if (ok && xcl)
        x_channels_last(g, a, xcl);
    for (int64_t n = 0; ok && n < g->xd[0]; n++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t o = 0; o < outs; o++) {
                int64_t op[3] = {o / (g->yd[3] * g->yd[4]), o / g->yd[4] % g->yd[3], o % g->yd[4]};
                int64_t y_mem = n * g->ys[0] + k * g->ys[1], y_lin = n * yp[0] + k * yp[1] + o;
                for (int i = 0; i < 3; i++)
                    y_mem += op[i] * g->ys[2 + i];
                double dy = dir == BWD_DATA ? a[y_mem] : dir == BWD_FILTER ? b[y_mem] : 0.0;
                double sum = 0.0;
                for (int64_t t = 0; t < taps; t++) {
                    int64_t at[3];
                    bool inside = true;
                    for (int i = 0; i < 3 && inside; i++) {
                        at[i] = op[i] * g->str[i] - g->pad[i] + r[t][i] * g->dil[i];
                        inside = at[i] >= 0 && at[i] < g->xd[2 + i];
                    }
                    if (!inside)
                        continue;
                    int64_t xo = (n * sp + (at[0] * g->xd[3] + at[1]) * g->xd[4] + at[2]) * C;
                    int64_t wo = (k * taps + t) * C;
                    if (dir == FWD)
                        for (int64_t c = 0; c < C; c++)
                            sum += (double)xcl[xo + c] * wt[wo + c];
                    else if (dir == BWD_DATA)
                        for (int64_t c = 0; c < C; c++)
                            cl[xo + c] += dy * wt[wo + c];
                    else
                        for (int64_t c = 0; c < C; c++)
                            cl[wo + c] += (double)xcl[xo + c] * dy;
                }
                if (dir == FWD)
                    acc[y_lin] += sum;
            }
    /* the channels-last sums back to acc's packed order */
    if (ok && dir == BWD_DATA)
        for (int64_t n = 0; n < g->xd[0]; n++)
            for (int64_t p = 0; p < sp; p++)
                for (int64_t c = 0; c < C; c++)
                    acc[(n * C + c) * sp + p] = cl[(n * sp + p) * C + c];
    if (ok && dir == BWD_FILTER)
        for (int64_t k = 0; k < K; k++)
            for (int64_t t = 0; t < taps; t++)
                for (int64_t c = 0, off = w_offset(g, wp, k, r[t]); c < C; c++)
                    acc[off + c * wp[1]] = cl[(k * taps + t) * C + c];
    free(xcl);
    free(wt);
    free(cl);
    free(r);
    return ok;
}

/* The memory offset of the i-th element (NCDHW order) of a tensor. */
static int64_t offset_of(const int64_t d[5], const int64_t s[5], int64_t i)
{
    int64_t off = 0;
    for (int j = 4; j >= 0; j--) {
        off += i % d[j] * s[j];
        i /= d[j];
    }
    return off;
}

/* out = alpha·acc + beta·out; with beta == 0, out is not read (NaN or
 * garbage there does not leak into the result), as documented. */
static void finish(const int64_t d[5], const int64_t s[5], const double *acc, float alpha,
                   float beta, float *out)
{
    for (int64_t i = 0, total = numel5(d); i < total; i++) {
        float *o = out + offset_of(d, s, i);
        *o = (float)(alpha * acc[i] + (beta != 0.0f ? (double)beta * *o : 0.0));
    }
}

/* The written tensor of a direction: dims and memory strides. */
static void output_of(const geom *g, direction dir, const int64_t **d, const int64_t **s)
{
    *d = dir == FWD ? g->yd : dir == BWD_DATA ? g->xd : g->wd;
    *s = dir == FWD ? g->ys : dir == BWD_DATA ? g->xs : g->ws;
}

static cudnnStatus_t compute(const char *fn, const geom *g, direction dir, const float *a,
                             const float *b, float alpha, float beta, float *out)
{
    const int64_t *d, *s;
    output_of(g, dir, &d, &s);
    double *acc = calloc((size_t)numel5(d), sizeof *acc);
    if (!acc)
        return cudnn_emu_fail(CUDNN_STATUS_ALLOC_FAILED, fn, "no host memory for the accumulator");
    bool ok = accumulate(g, dir, a, b, acc);
    if (ok)
        finish(d, s, acc, alpha, beta, out);
    free(acc);
    return ok ? CUDNN_STATUS_SUCCESS
              : cudnn_emu_fail(CUDNN_STATUS_ALLOC_FAILED, fn,
                               "no host memory for the channels-last copies");
}

typedef enum { WS_NONE, WS_SMALL, WS_COLUMNS, WS_HUGE } ws_kind;
typedef enum { ANY, UNIT, UNIT_2D, WINO_3X3, NEVER } support;

/* What an algorithm reports. Not the real library's properties: chosen so
 * that, on most shapes, the fastest is non-deterministic, one needs more
 * than the backend's 1 GiB workspace limit, the fastest deterministic one
 * needs a workspace, and some refuse 3-D or strided convolutions. */
typedef struct algo_info {
    int algo;
    bool deterministic;
    ws_kind ws;
    support sup;
    double cost; /* modelled time per multiply-add, in ns */
} algo_info;

#define N_ALGOS 8 /* the longest list */

/* Each direction's list in heuristic order (what *_v7 returns), ended by
 * cost 0. Forward algorithms are all deterministic in the real library;
 * FFT_TILING is marked otherwise here so that the forward path meets the
 * deterministic-first rule too. */
static const algo_info tables[3][N_ALGOS] = {
    [FWD] = {
        {CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, false, WS_SMALL, UNIT, 0.3},
        {CUDNN_CONVOLUTION_FWD_ALGO_FFT, true, WS_HUGE, UNIT_2D, 0.4},
        {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, true, WS_SMALL, ANY, 0.6},
        {CUDNN_CONVOLUTION_FWD_ALGO_GEMM, true, WS_COLUMNS, ANY, 0.8},
        {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, true, WS_NONE, ANY, 1.0},
        {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, true, WS_NONE, WINO_3X3, 0.5},
        {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, true, WS_COLUMNS, WINO_3X3, 0.7},
        {CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, true, WS_NONE, NEVER, 1.0},
    },
    [BWD_DATA] = {
        {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, false, WS_NONE, ANY, 0.3},
        {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, true, WS_HUGE, UNIT, 0.4},
        {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, true, WS_SMALL, ANY, 0.6},
        {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, true, WS_COLUMNS, UNIT_2D, 0.8},
        {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, true, WS_NONE, WINO_3X3, 0.5},
        {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, true, WS_COLUMNS, NEVER, 1.0},
    },
    [BWD_FILTER] = {
        {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, false, WS_NONE, ANY, 0.3},
        {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, false, WS_SMALL, ANY, 0.35},
        {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, true, WS_HUGE, WINO_3X3, 0.4},
        {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, true, WS_SMALL, ANY, 0.6},
        {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, true, WS_COLUMNS, UNIT_2D, 0.7},
        {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING, true, WS_COLUMNS, UNIT, 0.9},
        {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD, true, WS_NONE, NEVER, 1.0},
    },
};

static bool supports(const algo_info *a, const geom *g)
{
    bool unit = true;
    for (int i = 0; i < 3; i++)
        unit = unit && g->str[i] == 1 && g->dil[i] == 1;
    switch (a->sup) {
    case ANY: return true;
    case UNIT: return unit;
    case UNIT_2D: return unit && !g->three_d;
    case WINO_3X3: return unit && !g->three_d && g->wd[3] == 3 && g->wd[4] == 3;
    default: return false;
    }
}

static size_t workspace_need(const algo_info *a, const geom *g)
{
    int64_t columns = 4 * g->xd[1] * g->wd[2] * g->wd[3] * g->wd[4] * g->yd[2] * g->yd[3] *
                      g->yd[4]; /* one image's im2col matrix, in bytes */
    switch (a->ws) {
    case WS_SMALL: return 256 + 4 * (size_t)numel5(g->wd);
    case WS_COLUMNS: return (size_t)columns;
    case WS_HUGE: return ((size_t)1 << 30) + 4096 + (size_t)columns;
    default: return 0;
    }
}

/* An algorithm "uses" its workspace: its first and last bytes (up to 4 KiB
 * each; all of it would be 1 GiB for some) are overwritten, so that a
 * workspace smaller than claimed or shared with live data shows up. */
static void scribble(void *ws, size_t need)
{
    size_t part = need < 8192 ? need : 4096;
    memset(ws, 0xA5, part);
    memset((char *)ws + need - part, 0xA5, part);
}

/* One perf entry, for whichever of the three PerfT structs. */
typedef struct perf {
    int algo;
    cudnnStatus_t status;
    float time;
    size_t memory;
    cudnnDeterminism_t determinism;
} perf;

/* The direction's algorithms as the heuristics (find == false: supported
 * ones first in table order, time -1 as nothing is timed) or as Find*Ex
 * given a workspace of ws_bytes (find == true: by modelled time, failures
 * last with the status the documentation gives: ALLOC_FAILED when the
 * workspace is short). Returns the count. */
static int rank_algos(direction dir, const geom *g, bool find, size_t ws_bytes, perf *out)
{
    const algo_info *a = tables[dir];
    int n = 0;
    double macs = (double)numel5(g->yd) * g->xd[1] * g->wd[2] * g->wd[3] * g->wd[4];
    for (int pass = 0; pass < 2; pass++) /* pass 0: the ones that run */
        for (int i = 0; i < N_ALGOS && a[i].cost; i++) {
            perf p = {a[i].algo, CUDNN_STATUS_SUCCESS, -1.0f, workspace_need(&a[i], g),
                      a[i].deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC};
            if (!supports(&a[i], g))
                p.status = CUDNN_STATUS_NOT_SUPPORTED;
            else if (find && p.memory > ws_bytes)
                p.status = CUDNN_STATUS_ALLOC_FAILED;
            else if (find)
                p.time = (float)(0.005 + macs * a[i].cost * 1e-6); /* in ms */
            if ((p.status == CUDNN_STATUS_SUCCESS) == (pass == 0))
                out[n++] = p;
        }
    for (int i = 1; find && i < n && out[i].status == CUDNN_STATUS_SUCCESS; i++)
        for (int j = i; j > 0 && out[j].time < out[j - 1].time; j--) {
            perf t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

/* The algorithm list of a direction for *_v7 (find == false) or Find*Ex
 * (find == true), after prepare(). Find "runs" every algorithm that fits
 * the workspace: each scribbles on the workspace, and the output is left
 * full of NaN (the documentation: "overwritten with arbitrary values"). */
static cudnnStatus_t list_algos(const char *fn, const geom *g, direction dir, bool find,
                                const float *a, const float *b, float *out, int requested,
                                const int *returned, const void *results, void *ws,
                                size_t ws_bytes, perf *list, int *n)
{
    if (requested <= 0)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "requestedAlgoCount %d <= 0", requested);
    if (!returned || !results)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL returnedAlgoCount or perfResults");
    if (!find) {
        *n = rank_algos(dir, g, false, 0, list);
        return CUDNN_STATUS_SUCCESS;
    }
    if (!a || !b || !out)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL data pointer");
    if (!ws && ws_bytes)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL workspace of %zu bytes", ws_bytes);
    const int64_t *d, *st;
    output_of(g, dir, &d, &st);
    *n = rank_algos(dir, g, true, ws_bytes, list);
    for (int i = 0; i < *n; i++)
        if (list[i].status == CUDNN_STATUS_SUCCESS && list[i].memory)
            scribble(ws, list[i].memory);
    for (int64_t i = 0, total = numel5(d); i < total; i++)
        out[offset_of(d, st, i)] = NAN;
    return CUDNN_STATUS_SUCCESS;
}

/* A convolution call, after prepare(): checks the algorithm and workspace,
 * lets the algorithm use its workspace, and computes. */
static cudnnStatus_t execute(const char *fn, cudnnStatus_t prepared, const geom *g,
                             direction dir, int algo, void *ws, size_t ws_bytes,
                             const void *alpha, const void *beta, const float *a, const float *b,
                             float *out)
{
    if (prepared)
        return prepared;
    if (!alpha || !beta)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL alpha or beta");
    if (!a || !b || !out)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL data pointer");
    const algo_info *info = tables[dir];
    while (info < tables[dir] + N_ALGOS && info->cost && info->algo != algo)
        info++;
    if (info == tables[dir] + N_ALGOS || !info->cost)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "unknown algorithm %d", algo);
    if (!supports(info, g))
        return cudnn_emu_fail(CUDNN_STATUS_NOT_SUPPORTED, fn,
                              "algorithm %d does not support this shape", algo);
    size_t need = workspace_need(info, g);
    if (need > ws_bytes || (need && !ws))
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn,
                              "algorithm %d needs %zu workspace bytes, has %zu", algo, need,
                              ws ? ws_bytes : 0);
    if (need)
        scribble(ws, need);
    return compute(fn, g, dir, a, b, *(const float *)alpha, *(const float *)beta, out);
}

/* The body of the six algorithm-list entry points, whose parameters it
 * names: prepare, list, copy into the caller's PerfT array. */
#define LIST_BODY(xDesc, wDesc, yDesc, dir, find, a, b, out, ws, ws_bytes)                    \
    geom g_;                                                                                \
    perf l_[N_ALGOS];                                                                       \
    int n_ = 0;                                                                             \
    cudnnStatus_t s_ = prepare(__func__, handle, xDesc, wDesc, convDesc, yDesc, &g_);         \
    if (!s_)                                                                                \
        s_ = list_algos(__func__, &g_, dir, find, a, b, out, requestedAlgoCount,             \
                        returnedAlgoCount, perfResults, ws, ws_bytes, l_, &n_);             \
    if (s_)                                                                                 \
        return s_;                                                                          \
    *returnedAlgoCount = n_ < requestedAlgoCount ? n_ : requestedAlgoCount;                 \
    for (int i_ = 0; i_ < *returnedAlgoCount; i_++)                                         \
        perfResults[i_] = (__typeof__(perfResults[i_])){                                    \
            .algo = l_[i_].algo, .status = l_[i_].status, .time = l_[i_].time,              \
            .memory = l_[i_].memory, .determinism = l_[i_].determinism, .mathType = g_.math};\
    return CUDNN_STATUS_SUCCESS

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionFwdAlgoPerf_t *perfResults)
{
    LIST_BODY(xDesc, wDesc, yDesc, FWD, false, NULL, NULL, NULL, NULL, 0);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t *perfResults)
{
    LIST_BODY(dxDesc, wDesc, dyDesc, BWD_DATA, false, NULL, NULL, NULL, NULL, 0);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t *perfResults)
{
    LIST_BODY(xDesc, dwDesc, dyDesc, BWD_FILTER, false, NULL, NULL, NULL, NULL, 0);
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnFilterDescriptor_t wDesc, const void *w,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc, void *y,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionFwdAlgoPerf_t *perfResults, void *workSpace, size_t workSpaceSizeInBytes)
{
    LIST_BODY(xDesc, wDesc, yDesc, FWD, true, x, w, y, workSpace, workSpaceSizeInBytes);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const void *w,
    const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc, void *dx,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t *perfResults, void *workSpace, size_t workSpaceSizeInBytes)
{
    LIST_BODY(dxDesc, wDesc, dyDesc, BWD_DATA, true, dy, w, dx, workSpace, workSpaceSizeInBytes);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc, void *dw,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t *perfResults, void *workSpace, size_t workSpaceSizeInBytes)
{
    LIST_BODY(xDesc, dwDesc, dyDesc, BWD_FILTER, true, x, dy, dw, workSpace,
              workSpaceSizeInBytes);
}

cudnnStatus_t cudnnConvolutionForward(
    cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnFilterDescriptor_t wDesc, const void *w, const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionFwdAlgo_t algo, void *workSpace, size_t workSpaceSizeInBytes,
    const void *beta, const cudnnTensorDescriptor_t yDesc, void *y)
{
    geom g;
    return execute(__func__, prepare(__func__, handle, xDesc, wDesc, convDesc, yDesc, &g), &g,
                   FWD, (int)algo, workSpace, workSpaceSizeInBytes, alpha, beta, x, w, y);
}

cudnnStatus_t cudnnConvolutionBackwardData(
    cudnnHandle_t handle, const void *alpha, const cudnnFilterDescriptor_t wDesc, const void *w,
    const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionBwdDataAlgo_t algo, void *workSpace, size_t workSpaceSizeInBytes,
    const void *beta, const cudnnTensorDescriptor_t dxDesc, void *dx)
{
    geom g;
    return execute(__func__, prepare(__func__, handle, dxDesc, wDesc, convDesc, dyDesc, &g), &g,
                   BWD_DATA, (int)algo, workSpace, workSpaceSizeInBytes, alpha, beta, dy, w, dx);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(
    cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionBwdFilterAlgo_t algo, void *workSpace, size_t workSpaceSizeInBytes,
    const void *beta, const cudnnFilterDescriptor_t dwDesc, void *dw)
{
    geom g;
    return execute(__func__, prepare(__func__, handle, xDesc, dwDesc, convDesc, dyDesc, &g), &g,
                   BWD_FILTER, (int)algo, workSpace, workSpaceSizeInBytes, alpha, beta, x, dy, dw);
}
