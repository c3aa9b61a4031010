/* test_cudnn.c — self-test of the test-only cuDNN emulation (cudnn.c) for
 * tests/cuemu: drives it through the call sequence of
 * libosp/backend/cuda/cuda_conv.c (descriptors, Find*Ex or the *_v7
 * heuristics, the fastest deterministic algorithm within the workspace
 * limit) and checks the results against a naive convolution written from
 * the definition, the adjoint identity <conv(x,w), dy> = <x, convT(dy,w)>
 * = <w, dW(x,dy)>, and small cases worked by hand; then the documented
 * corner cases (alpha/beta, NaN under beta = 0, Find clobbering its output,
 * workspace checks) and some rejections. Links no NVIDIA library.
 *
 * cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I/usr/local/cuda/include \
 *    tests/cuemu/test_cudnn.c tests/cuemu/cudnn.c -lm -o /tmp/test_cudnn */
#include <cudnn.h>

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKSPACE_LIMIT ((size_t)1 << 30) /* as cuda_conv.c */
#define MAX_ALGOS 16
#define FIND_WORKSPACE ((size_t)16 << 20) /* the smallest cuda_conv.c tries */

static int passed, failed;

static bool check(bool cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%sok %d - ", cond ? "" : "not ", passed + failed + 1);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    cond ? passed++ : failed++;
    return cond;
}

static cudnnHandle_t dnn;

/* A convolution in descriptor terms: nd = 4 (2-D; 1-D gets a unit height,
 * as cuda_conv.c does) or 5 (3-D). */
typedef struct conv_case {
    int nd, xd[5], wd[5], yd[5], pad[3], str[3], dil[3];
    cudnnConvolutionMode_t mode;
} conv_case;

typedef enum { FWD, BWD_DATA, BWD_FILTER } direction;
static const char *dir_name[] = {"forward", "backward data", "backward filter"};

static int numel(const int *d, int nd)
{
    int n = 1;
    for (int i = 0; i < nd; i++)
        n *= d[i];
    return n;
}

static void set_out_dims(conv_case *c)
{
    c->yd[0] = c->xd[0];
    c->yd[1] = c->wd[0];
    for (int i = 2; i < c->nd; i++)
        c->yd[i] = (c->xd[i] + 2 * c->pad[i - 2] - c->dil[i - 2] * (c->wd[i] - 1) - 1) /
                       c->str[i - 2] + 1;
}

static void packed(const int *d, int nd, int *s)
{
    s[nd - 1] = 1;
    for (int i = nd - 2; i >= 0; i--)
        s[i] = s[i + 1] * d[i + 1];
}

typedef struct descs {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
} descs;

static void destroy(descs *d)
{
    cudnnDestroyTensorDescriptor(d->x);
    cudnnDestroyTensorDescriptor(d->y);
    cudnnDestroyFilterDescriptor(d->w);
    cudnnDestroyConvolutionDescriptor(d->conv);
}

/* cuda_conv.c's describe(); xs / ys: strides, packed when NULL. */
static cudnnStatus_t describe(const conv_case *c, const int *xs, const int *ys, descs *d)
{
    int pxs[5], pys[5];
    packed(c->xd, c->nd, pxs);
    packed(c->yd, c->nd, pys);
    cudnnStatus_t s;
    memset(d, 0, sizeof *d);
    if ((s = cudnnCreateTensorDescriptor(&d->x)) || (s = cudnnCreateTensorDescriptor(&d->y)) ||
        (s = cudnnCreateFilterDescriptor(&d->w)) ||
        (s = cudnnCreateConvolutionDescriptor(&d->conv)) ||
        (s = cudnnSetTensorNdDescriptor(d->x, CUDNN_DATA_FLOAT, c->nd, c->xd, xs ? xs : pxs)) ||
        (s = cudnnSetTensorNdDescriptor(d->y, CUDNN_DATA_FLOAT, c->nd, c->yd, ys ? ys : pys)) ||
        (s = cudnnSetFilterNdDescriptor(d->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, c->nd, c->wd)) ||
        (s = cudnnSetConvolutionNdDescriptor(d->conv, c->nd - 2, c->pad, c->str, c->dil, c->mode,
                                             CUDNN_DATA_FLOAT)) ||
        (s = cudnnSetConvolutionMathType(d->conv, CUDNN_FMA_MATH)))
        destroy(d);
    return s;
}

/* One entry of any of the three PerfT types. */
typedef struct perf {
    int algo;
    cudnnStatus_t status;
    float time;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
} perf;

#define COPY_PERF(src, n, dst)                                                                \
    for (int i_ = 0; i_ < (n); i_++)                                                         \
    (dst)[i_] = (perf){(int)(src)[i_].algo, (src)[i_].status, (src)[i_].time,                \
                       (src)[i_].memory, (src)[i_].determinism, (src)[i_].mathType}

/* The algorithm list of a direction: Find*Ex on a, b, out (the roles of
 * cuda_conv.c: forward x, w -> y; backward data dy, w -> dx; backward
 * filter x, dy -> dw) with workspace ws of wsb bytes, or the heuristics. */
static cudnnStatus_t algo_list(direction dir, const descs *d, bool heuristic, const float *a,
                               const float *b, float *out, void *ws, size_t wsb, perf *list,
                               int *n)
{
    cudnnConvolutionFwdAlgoPerf_t fp[MAX_ALGOS];
    cudnnConvolutionBwdDataAlgoPerf_t dp[MAX_ALGOS];
    cudnnConvolutionBwdFilterAlgoPerf_t wp[MAX_ALGOS];
    cudnnStatus_t s;
    *n = 0;
    if (dir == FWD) {
        s = heuristic ? cudnnGetConvolutionForwardAlgorithm_v7(dnn, d->x, d->w, d->conv, d->y,
                                                               MAX_ALGOS, n, fp)
                      : cudnnFindConvolutionForwardAlgorithmEx(dnn, d->x, a, d->w, b, d->conv,
                                                               d->y, out, MAX_ALGOS, n, fp, ws,
                                                               wsb);
        COPY_PERF(fp, *n, list);
    } else if (dir == BWD_DATA) {
        s = heuristic ? cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn, d->w, d->y, d->conv,
                                                                    d->x, MAX_ALGOS, n, dp)
                      : cudnnFindConvolutionBackwardDataAlgorithmEx(
                            dnn, d->w, b, d->y, a, d->conv, d->x, out, MAX_ALGOS, n, dp, ws, wsb);
        COPY_PERF(dp, *n, list);
    } else {
        s = heuristic ? cudnnGetConvolutionBackwardFilterAlgorithm_v7(dnn, d->x, d->y, d->conv,
                                                                      d->w, MAX_ALGOS, n, wp)
                      : cudnnFindConvolutionBackwardFilterAlgorithmEx(
                            dnn, d->x, a, d->y, b, d->conv, d->w, out, MAX_ALGOS, n, wp, ws, wsb);
        COPY_PERF(wp, *n, list);
    }
    return s;
}

static cudnnStatus_t run(direction dir, const descs *d, int algo, void *ws, size_t wsb,
                         float alpha, float beta, const float *a, const float *b, float *out)
{
    if (dir == FWD)
        return cudnnConvolutionForward(dnn, &alpha, d->x, a, d->w, b, d->conv,
                                       (cudnnConvolutionFwdAlgo_t)algo, ws, wsb, &beta, d->y, out);
    if (dir == BWD_DATA)
        return cudnnConvolutionBackwardData(dnn, &alpha, d->w, b, d->y, a, d->conv,
                                            (cudnnConvolutionBwdDataAlgo_t)algo, ws, wsb, &beta,
                                            d->x, out);
    return cudnnConvolutionBackwardFilter(dnn, &alpha, d->x, a, d->y, b, d->conv,
                                          (cudnnConvolutionBwdFilterAlgo_t)algo, ws, wsb, &beta,
                                          d->w, out);
}

/* cuda_conv.c's MEASURED + RUN_ALGOS: list (Find, else the heuristics),
 * then the first deterministic algorithm that succeeded and fits the
 * limit, with a workspace of exactly its size; out = alpha·op + beta·out.
 * Sets *algo to the one that ran. */
static cudnnStatus_t backend_run(direction dir, const descs *d, bool heuristic, float alpha,
                                 float beta, const float *a, const float *b, float *out,
                                 int *algo)
{
    perf list[MAX_ALGOS];
    int n;
    void *fws = malloc(FIND_WORKSPACE);
    cudnnStatus_t s = algo_list(dir, d, heuristic, a, b, out, fws, FIND_WORKSPACE, list, &n);
    free(fws);
    if (s)
        return s;
    for (int i = 0; i < n; i++) {
        if (list[i].status || list[i].memory > WORKSPACE_LIMIT ||
            list[i].determinism != CUDNN_DETERMINISTIC)
            continue;
        void *ws = list[i].memory ? malloc(list[i].memory) : NULL;
        *algo = list[i].algo;
        s = run(dir, d, list[i].algo, ws, list[i].memory, alpha, beta, a, b, out);
        free(ws);
        if (s != CUDNN_STATUS_NOT_SUPPORTED)
            return s;
    }
    return CUDNN_STATUS_NOT_SUPPORTED;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static float *random_buf(int n)
{
    float *p = malloc((size_t)n * sizeof *p);
    for (int i = 0; i < n; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        p[i] = (float)((rng_state >> 40) / (double)(1u << 24) * 2 - 1);
    }
    return p;
}

static float *filled(int n, float v)
{
    float *p = malloc((size_t)n * sizeof *p);
    for (int i = 0; i < n; i++)
        p[i] = v;
    return p;
}

/* The forward convolution from its definition, on packed tensors:
 * y[n,o,p] = Σ_c Σ_r x[n, c, p·stride − pad + r·dil] · w[o, c, r]
 * (r mirrored for CUDNN_CONVOLUTION). */
static void reference_forward(const conv_case *c, const float *x, const float *w, float *y)
{
    int nsp = c->nd - 2, taps = numel(c->wd + 2, nsp), outs = numel(c->yd + 2, nsp);
    for (int n = 0; n < c->yd[0]; n++)
        for (int o = 0; o < c->yd[1]; o++)
            for (int p = 0; p < outs; p++) {
                double sum = 0;
                for (int ch = 0; ch < c->xd[1]; ch++)
                    for (int t = 0; t < taps; t++) {
                        int xi = n * c->xd[1] + ch, wi = o * c->wd[1] + ch, prest = p, trest = t;
                        int pos[3], tap[3];
                        bool inside = true;
                        for (int i = nsp - 1; i >= 0; i--) {
                            pos[i] = prest % c->yd[2 + i], prest /= c->yd[2 + i];
                            tap[i] = trest % c->wd[2 + i], trest /= c->wd[2 + i];
                        }
                        for (int i = 0; i < nsp; i++) {
                            int at = pos[i] * c->str[i] - c->pad[i] + tap[i] * c->dil[i];
                            int r = c->mode == CUDNN_CONVOLUTION ? c->wd[2 + i] - 1 - tap[i]
                                                                 : tap[i];
                            inside = inside && at >= 0 && at < c->xd[2 + i];
                            xi = xi * c->xd[2 + i] + at;
                            wi = wi * c->wd[2 + i] + r;
                        }
                        if (inside)
                            sum += (double)x[xi] * w[wi];
                    }
                y[(n * c->yd[1] + o) * outs + p] = (float)sum;
            }
}

static double max_rel_diff(const float *a, const float *b, int n)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(1e-3, fabs((double)b[i]));
        worst = d > worst || isnan(d) ? d : worst;
    }
    return worst;
}

/* <a, b> and Σ|a·b|, to judge the dot's rounding. */
static double dot(const float *a, const float *b, int n, double *mag)
{
    double s = 0;
    *mag = 0;
    for (int i = 0; i < n; i++) {
        s += (double)a[i] * b[i];
        *mag += fabs((double)a[i] * b[i]);
    }
    return s;
}

/* All three directions, as cuda_conv.c runs them, against the reference
 * and the adjoint identity. */
static void check_case(const char *name, conv_case c, bool heuristic)
{
    set_out_dims(&c);
    descs d;
    if (!check(describe(&c, NULL, NULL, &d) == CUDNN_STATUS_SUCCESS, "%s: descriptors", name))
        return;
    int nx = numel(c.xd, c.nd), nw = numel(c.wd, c.nd), ny = numel(c.yd, c.nd);
    float *x = random_buf(nx), *w = random_buf(nw), *dy = random_buf(ny);
    float *y = filled(ny, NAN), *ref = filled(ny, 0), *dx = filled(nx, NAN), *dw = filled(nw, NAN);
    int fa = -1, da = -1, wa = -1;
    cudnnStatus_t s1 = backend_run(FWD, &d, heuristic, 1, 0, x, w, y, &fa);
    cudnnStatus_t s2 = backend_run(BWD_DATA, &d, heuristic, 1, 0, dy, w, dx, &da);
    cudnnStatus_t s3 = backend_run(BWD_FILTER, &d, heuristic, 1, 0, x, dy, dw, &wa);
    if (check(!s1 && !s2 && !s3, "%s: all three directions run (%s; algos %d %d %d)", name,
              heuristic ? "heuristics" : "Find", fa, da, wa)) {
        reference_forward(&c, x, w, ref);
        check(max_rel_diff(y, ref, ny) < 1e-5, "%s: forward == the definition", name);
        double m1, m2, m3, d1 = dot(y, dy, ny, &m1), d2 = dot(x, dx, nx, &m2),
                           d3 = dot(w, dw, nw, &m3);
        double tol = 1e-5 * fmax(m1, fmax(m2, m3));
        check(fabs(d1 - d2) <= tol && fabs(d1 - d3) <= tol,
              "%s: <conv(x,w),dy> %.9g == <x,convT(dy,w)> %.9g == <w,dW(x,dy)> %.9g", name, d1,
              d2, d3);
    }
    destroy(&d);
    free(x), free(w), free(dy), free(y), free(ref), free(dx), free(dw);
}

/* 3x3 input 1..9, 2x2 filter [1 0; 0 -1], one channel, no padding. */
static void hand_cases(void)
{
    conv_case c = {4, {1, 1, 3, 3}, {1, 1, 2, 2}, {0}, {0, 0}, {1, 1}, {1, 1},
                   CUDNN_CROSS_CORRELATION};
    set_out_dims(&c);
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 0, 0, -1}, ones[4] = {1, 1, 1, 1};
    float y[4], dx[9], dw[4];
    float want_dx[9] = {1, 1, 0, 1, 0, -1, 0, -1, -1}, want_dw[4] = {12, 16, 24, 28};
    descs d;
    int algo;
    describe(&c, NULL, NULL, &d);
    backend_run(FWD, &d, false, 1, 0, x, w, y, &algo);
    check(y[0] == -4 && y[1] == -4 && y[2] == -4 && y[3] == -4,
          "by hand: cross-correlation gives x[i][j] - x[i+1][j+1] = -4");
    backend_run(BWD_DATA, &d, false, 1, 0, ones, w, dx, &algo);
    check(memcmp(dx, want_dx, sizeof dx) == 0, "by hand: backward data of dy = 1");
    backend_run(BWD_FILTER, &d, false, 1, 0, x, ones, dw, &algo);
    check(memcmp(dw, want_dw, sizeof dw) == 0, "by hand: backward filter = 2x2 window sums");
    destroy(&d);
    c.mode = CUDNN_CONVOLUTION;
    describe(&c, NULL, NULL, &d);
    backend_run(FWD, &d, false, 1, 0, x, w, y, &algo);
    check(y[0] == 4 && y[3] == 4, "by hand: CUDNN_CONVOLUTION mirrors the filter (+4)");
    destroy(&d);
}

/* x and y laid out with gaps (rows padded, channels apart): results equal
 * the packed ones and the gaps are not written. */
static void strided_case(void)
{
    conv_case c = {4, {2, 3, 5, 6}, {4, 3, 3, 2}, {0}, {1, 0}, {2, 1}, {1, 2},
                   CUDNN_CROSS_CORRELATION};
    set_out_dims(&c);
    int nx = numel(c.xd, 4), ny = numel(c.yd, 4), nw = numel(c.wd, 4);
    int xs[4] = {3 * 48, 48, 8, 1}, ys[4] = {4 * 40, 40, 6, 1}; /* H*W = 30 -> 48 etc. */
    float *x = random_buf(nx), *w = random_buf(nw), *ref = filled(ny, 0);
    float *xg = filled(2 * 3 * 48, NAN), *yg = filled(2 * 4 * 40, 7.0f);
    for (int i = 0; i < nx; i++) {
        int n = i / 90, ch = i / 30 % 3, h = i / 6 % 5, ww = i % 6;
        xg[n * xs[0] + ch * xs[1] + h * xs[2] + ww] = x[i];
    }
    reference_forward(&c, x, w, ref);
    descs d;
    int algo, bad = 0, gaps_kept = 1;
    cudnnStatus_t s = describe(&c, xs, ys, &d);
    s = s ? s : backend_run(FWD, &d, false, 1, 0, xg, w, yg, &algo);
    for (int i = 0; i < 2 * 4 * 40; i++) {
        int n = i / 160, o = i / 40 % 4, h = i % 40 / 6, ww = i % 40 % 6;
        bool used = h < c.yd[2] && ww < c.yd[3] && i % 40 < 6 * c.yd[2];
        if (used)
            bad += fabsf(yg[i] - ref[((n * 4 + o) * c.yd[2] + h) * c.yd[3] + ww]) > 1e-5f;
        else
            gaps_kept &= yg[i] == 7.0f;
    }
    check(!s && !bad && gaps_kept, "non-packed strides: x and y with gaps (%d wrong)", bad);
    destroy(&d);
    free(x), free(w), free(ref), free(xg), free(yg);
}

/* [N][C][spatial] <-> [N][spatial][C] (to_last) for the NHWC formats. */
static float *permute_channels(const float *src, const int *d, int nd, bool to_last)
{
    int n = d[0], c = d[1], sp = numel(d + 2, nd - 2);
    float *dst = filled(n * c * sp, NAN);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < c; j++)
            for (int p = 0; p < sp; p++) {
                int first = (i * c + j) * sp + p, last = (i * sp + p) * c + j;
                dst[to_last ? last : first] = src[to_last ? first : last];
            }
    return dst;
}

/* The same 3-D convolution with x, y and the filters channels-last
 * (cudnnSetTensorNdDescriptorEx and a filter in CUDNN_TENSOR_NHWC, as
 * bench/gpu/conv_layout.c describes them): every direction equals the
 * NCDHW one. */
static void channels_last_case(void)
{
    conv_case c = {5, {2, 3, 4, 5, 3}, {4, 3, 3, 2, 3}, {0}, {1, 0, 1}, {1, 2, 1}, {1, 1, 2},
                   CUDNN_CONVOLUTION};
    set_out_dims(&c);
    int nx = numel(c.xd, 5), nw = numel(c.wd, 5), ny = numel(c.yd, 5), algo;
    float *x = random_buf(nx), *w = random_buf(nw), *dy = random_buf(ny);
    float *out[3] = {filled(ny, NAN), filled(nx, NAN), filled(nw, NAN)};
    float *in_a[3] = {x, dy, x}, *in_b[3] = {w, w, dy};
    const int *out_dims[3] = {c.yd, c.xd, c.wd}, *a_dims[3] = {c.xd, c.yd, c.xd},
              *b_dims[3] = {c.wd, c.wd, c.yd};
    const int n_out[3] = {ny, nx, nw};
    descs d, cl = {0};
    cudnnStatus_t s = describe(&c, NULL, NULL, &d);
    for (int dir = 0; !s && dir < 3; dir++)
        s = backend_run(dir, &d, false, 1, 0, in_a[dir], in_b[dir], out[dir], &algo);
    if (!s && !(s = cudnnCreateTensorDescriptor(&cl.x)) &&
        !(s = cudnnCreateTensorDescriptor(&cl.y)) && !(s = cudnnCreateFilterDescriptor(&cl.w)))
        s = cudnnSetTensorNdDescriptorEx(cl.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 5, c.xd);
    if (!s)
        s = cudnnSetTensorNdDescriptorEx(cl.y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 5, c.yd);
    if (!s)
        s = cudnnSetFilterNdDescriptor(cl.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 5, c.wd);
    cl.conv = d.conv;
    double worst = 0;
    for (int dir = 0; !s && dir < 3; dir++) {
        float *a = permute_channels(in_a[dir], a_dims[dir], 5, true);
        float *b = permute_channels(in_b[dir], b_dims[dir], 5, true);
        float *o = filled(n_out[dir], NAN);
        s = backend_run(dir, &cl, false, 1, 0, a, b, o, &algo);
        float *back = permute_channels(o, out_dims[dir], 5, false);
        worst = fmax(worst, max_rel_diff(back, out[dir], n_out[dir]));
        free(a), free(b), free(o), free(back);
    }
    check(!s && worst < 1e-6, "channels-last x, y and filters (NHWC, the Ex form): all three "
          "directions equal NCDHW's (worst %.2g)", worst);
    cudnnDestroyTensorDescriptor(cl.x);
    cudnnDestroyTensorDescriptor(cl.y);
    cudnnDestroyFilterDescriptor(cl.w);
    destroy(&d);
    free(x), free(w), free(dy);
    for (int i = 0; i < 3; i++)
        free(out[i]);
}

/* out = alpha·op + beta·out in each direction; beta = 0 ignores NaN. */
static void scaling_cases(void)
{
    conv_case c = {4, {2, 2, 5, 4}, {3, 2, 2, 3}, {0}, {1, 1}, {1, 2}, {2, 1},
                   CUDNN_CROSS_CORRELATION};
    set_out_dims(&c);
    int n[3] = {numel(c.yd, 4), numel(c.xd, 4), numel(c.wd, 4)}; /* out of each direction */
    float *x = random_buf(n[1]), *w = random_buf(n[2]), *dy = random_buf(n[0]);
    const float *a[3] = {x, dy, x}, *b[3] = {w, w, dy};
    descs d;
    describe(&c, NULL, NULL, &d);
    for (int dir = 0; dir < 3; dir++) {
        float *plain = filled(n[dir], 0), *old = random_buf(n[dir]), *out = malloc(n[dir] * 4);
        memcpy(out, old, (size_t)n[dir] * 4);
        int algo, bad = 0;
        cudnnStatus_t s1 = backend_run(dir, &d, true, 1, 0, a[dir], b[dir], plain, &algo);
        cudnnStatus_t s2 = backend_run(dir, &d, true, 2, 0.5f, a[dir], b[dir], out, &algo);
        for (int i = 0; i < n[dir]; i++)
            bad += fabsf(out[i] - (2 * plain[i] + 0.5f * old[i])) > 1e-5f;
        check(!s1 && !s2 && !bad, "%s: alpha = 2, beta = 0.5", dir_name[dir]);
        for (int i = 0; i < n[dir]; i++)
            out[i] = NAN;
        s1 = backend_run(dir, &d, true, 1, 0, a[dir], b[dir], out, &algo);
        check(!s1 && max_rel_diff(out, plain, n[dir]) == 0,
              "%s: beta = 0 does not read the NaN in the output", dir_name[dir]);
        free(plain), free(old), free(out);
    }
    destroy(&d);
    free(x), free(w), free(dy);
}

static bool all_nan(const float *p, int n)
{
    for (int i = 0; i < n; i++)
        if (!isnan(p[i]))
            return false;
    return true;
}

/* Find*Ex: clobbers the output, sorts by time (failures last), reports
 * ALLOC_FAILED for algorithms beyond the workspace; the heuristics list
 * a non-deterministic algorithm and one beyond cuda_conv.c's limit. */
static void find_cases(void)
{
    conv_case c = {4, {1, 2, 6, 6}, {2, 2, 3, 3}, {0}, {1, 1}, {1, 1}, {1, 1},
                   CUDNN_CROSS_CORRELATION};
    set_out_dims(&c);
    int n[3] = {numel(c.yd, 4), numel(c.xd, 4), numel(c.wd, 4)};
    float *x = random_buf(n[1]), *w = random_buf(n[2]), *dy = random_buf(n[0]);
    const float *a[3] = {x, dy, x}, *b[3] = {w, w, dy};
    descs d;
    describe(&c, NULL, NULL, &d);
    for (int dir = 0; dir < 3; dir++) {
        perf list[MAX_ALGOS];
        int cnt, sorted = 1, nondet = 0, huge = 0, alloc_failed = 0, ok_with_ws = 0;
        float *out = filled(n[dir], 1.0f);
        void *ws = malloc(FIND_WORKSPACE);
        cudnnStatus_t s = algo_list(dir, &d, false, a[dir], b[dir], out, ws, FIND_WORKSPACE,
                                    list, &cnt);
        check(!s && cnt > 0 && all_nan(out, n[dir]), "%s: Find*Ex leaves NaN in the output",
              dir_name[dir]);
        for (int i = 1; i < cnt; i++)
            sorted &= list[i].status != CUDNN_STATUS_SUCCESS ||
                      (list[i - 1].status == CUDNN_STATUS_SUCCESS &&
                       list[i - 1].time <= list[i].time);
        check(sorted && list[0].math == CUDNN_FMA_MATH,
              "%s: Find's list is by time, failures last, with the math type", dir_name[dir]);
        s = algo_list(dir, &d, false, a[dir], b[dir], out, NULL, 0, list, &cnt);
        for (int i = 0; i < cnt; i++) {
            alloc_failed += list[i].status == CUDNN_STATUS_ALLOC_FAILED;
            ok_with_ws += list[i].status == CUDNN_STATUS_SUCCESS && list[i].memory > 0;
        }
        check(!s && alloc_failed > 0 && !ok_with_ws,
              "%s: Find without a workspace: %d ALLOC_FAILED, none needing one succeeds",
              dir_name[dir], alloc_failed);
        s = algo_list(dir, &d, true, NULL, NULL, NULL, NULL, 0, list, &cnt);
        for (int i = 0; i < cnt; i++) {
            nondet += list[i].status == CUDNN_STATUS_SUCCESS &&
                      list[i].determinism == CUDNN_NON_DETERMINISTIC;
            huge += list[i].status == CUDNN_STATUS_SUCCESS && list[i].memory > WORKSPACE_LIMIT;
        }
        check(!s && nondet && huge && list[0].determinism == CUDNN_NON_DETERMINISTIC,
              "%s: heuristics: non-deterministic first, one over 1 GiB", dir_name[dir]);
        free(out), free(ws);
    }
    destroy(&d);
    free(x), free(w), free(dy);
}

/* Running an algorithm: the workspace must hold its need; an algorithm
 * that cannot do the shape says NOT_SUPPORTED; an unknown one BAD_PARAM. */
static void workspace_cases(void)
{
    conv_case c = {5, {1, 2, 3, 4, 4}, {2, 2, 1, 3, 3}, {0}, {0, 1, 1}, {1, 1, 1}, {1, 1, 1},
                   CUDNN_CROSS_CORRELATION};
    set_out_dims(&c);
    float *x = random_buf(numel(c.xd, 5)), *w = random_buf(numel(c.wd, 5));
    float *y = filled(numel(c.yd, 5), 0);
    descs d;
    describe(&c, NULL, NULL, &d);
    int precomp = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    perf list[MAX_ALGOS];
    int cnt;
    size_t need = 0;
    algo_list(FWD, &d, true, NULL, NULL, NULL, NULL, 0, list, &cnt);
    for (int i = 0; i < cnt; i++)
        need = list[i].algo == precomp ? list[i].memory : need;
    char *ws = malloc(need);
    check(need > 0 && run(FWD, &d, precomp, ws, need - 1, 1, 0, x, w, y) == CUDNN_STATUS_BAD_PARAM,
          "a workspace one byte short: BAD_PARAM");
    check(run(FWD, &d, precomp, NULL, need, 1, 0, x, w, y) == CUDNN_STATUS_BAD_PARAM,
          "a NULL workspace for an algorithm that needs one: BAD_PARAM");
    check(run(FWD, &d, precomp, ws, need, 1, 0, x, w, y) == CUDNN_STATUS_SUCCESS,
          "the exact workspace: runs");
    check(run(FWD, &d, CUDNN_CONVOLUTION_FWD_ALGO_FFT, NULL, 0, 1, 0, x, w, y) ==
              CUDNN_STATUS_NOT_SUPPORTED, "FFT on a 3-D convolution: NOT_SUPPORTED");
    check(run(FWD, &d, 42, NULL, 0, 1, 0, x, w, y) == CUDNN_STATUS_BAD_PARAM,
          "an unknown algorithm: BAD_PARAM");
    destroy(&d);
    free(x), free(w), free(y), free(ws);
}

/* Descriptor misuse the real library rejects. */
static void validation_cases(void)
{
    conv_case c = {4, {1, 3, 6, 6}, {2, 3, 3, 3}, {0}, {1, 1}, {1, 1}, {1, 1},
                   CUDNN_CROSS_CORRELATION};
    set_out_dims(&c);
    float *x = random_buf(numel(c.xd, 4)), *w = random_buf(numel(c.wd, 4));
    float *y = filled(numel(c.yd, 4), 0), one = 1, zero = 0;
    int algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, ok_dims[4] = {1, 3, 6, 6},
        bad_dims[4] = {1, 3, 0, 6}, strides[4] = {108, 36, 6, 1};
    descs d;
    describe(&c, NULL, NULL, &d);
    cudnnTensorDescriptor_t t;
    cudnnCreateTensorDescriptor(&t);
    check(cudnnSetTensorNdDescriptor(t, CUDNN_DATA_FLOAT, 4, bad_dims, strides) ==
              CUDNN_STATUS_BAD_PARAM, "a zero dim: BAD_PARAM");
    check(cudnnSetTensorNdDescriptor(t, CUDNN_DATA_FLOAT, 2, ok_dims, strides) ==
              CUDNN_STATUS_BAD_PARAM, "nbDims = 2: BAD_PARAM");
    check(run(FWD, &d, algo, NULL, 0, 1, 0, x, w, NULL) == CUDNN_STATUS_BAD_PARAM,
          "a NULL y: BAD_PARAM");
    check(cudnnConvolutionForward(NULL, &one, d.x, x, d.w, w, d.conv, algo, NULL, 0, &zero, d.y,
                                  y) == CUDNN_STATUS_BAD_PARAM, "a NULL handle: BAD_PARAM");
    check(cudnnConvolutionForward(dnn, &one, t, x, d.w, w, d.conv, algo, NULL, 0, &zero, d.y,
                                  y) == CUDNN_STATUS_BAD_PARAM, "an unset x descriptor: BAD_PARAM");
    int yd_wrong[4] = {1, 2, 5, 6}, ys_wrong[4] = {60, 30, 6, 1};
    cudnnSetTensorNdDescriptor(t, CUDNN_DATA_FLOAT, 4, yd_wrong, ys_wrong);
    check(cudnnConvolutionForward(dnn, &one, d.x, x, d.w, w, d.conv, algo, NULL, 0, &zero, t,
                                  y) == CUDNN_STATUS_BAD_PARAM, "y one row short: BAD_PARAM");
    int xd_c2[4] = {1, 2, 6, 6};
    cudnnSetTensorNdDescriptor(t, CUDNN_DATA_FLOAT, 4, xd_c2, ys_wrong);
    check(cudnnConvolutionForward(dnn, &one, t, x, d.w, w, d.conv, algo, NULL, 0, &zero, d.y,
                                  y) == CUDNN_STATUS_BAD_PARAM,
          "x with 2 channels, filter with 3: BAD_PARAM");
    cudnnConvolutionDescriptor_t conv3;
    cudnnCreateConvolutionDescriptor(&conv3);
    int three[3] = {1, 1, 1}, pad3[3] = {0, 1, 1};
    cudnnSetConvolutionNdDescriptor(conv3, 3, pad3, three, three, CUDNN_CROSS_CORRELATION,
                                    CUDNN_DATA_FLOAT);
    check(cudnnConvolutionForward(dnn, &one, d.x, x, d.w, w, conv3, algo, NULL, 0, &zero, d.y,
                                  y) == CUDNN_STATUS_BAD_PARAM,
          "a 3-D convolution over 4-d tensors: BAD_PARAM");
    perf list[MAX_ALGOS];
    int cnt;
    cudnnConvolutionFwdAlgoPerf_t fp[1];
    check(cudnnGetConvolutionForwardAlgorithm_v7(dnn, d.x, d.w, d.conv, d.y, 0, &cnt, fp) ==
              CUDNN_STATUS_BAD_PARAM, "requestedAlgoCount = 0: BAD_PARAM");
    check(algo_list(FWD, &d, true, NULL, NULL, NULL, NULL, 0, list, &cnt) == 0 && cnt > 1 &&
              cudnnGetConvolutionForwardAlgorithm_v7(dnn, d.x, d.w, d.conv, d.y, 1, &cnt, fp) ==
                  0 && cnt == 1, "requestedAlgoCount = 1 returns one");
    check(strcmp(cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM), "CUDNN_STATUS_BAD_PARAM") == 0,
          "cudnnGetErrorString names the status");
    cudnnDestroyConvolutionDescriptor(conv3);
    cudnnDestroyTensorDescriptor(t);
    destroy(&d);
    free(x), free(w), free(y);
}

int main(void)
{
    if (cudnnCreate(&dnn) || cudnnSetStream(dnn, NULL))
        return fprintf(stderr, "test_cudnn: no handle\n"), 1;
    hand_cases();
    static const struct { const char *name; conv_case c; } cases[] = {
        {"2-D asymmetric pad/stride/dilation, batch 2",
         {4, {2, 3, 7, 9}, {4, 3, 3, 2}, {0}, {1, 0}, {2, 1}, {1, 2}, CUDNN_CROSS_CORRELATION}},
        {"3-D asymmetric pad/stride/dilation, batch 2",
         {5, {2, 2, 5, 6, 7}, {3, 2, 2, 3, 2}, {0}, {1, 0, 2}, {1, 2, 3}, {2, 1, 1},
          CUDNN_CROSS_CORRELATION}},
        {"2-D k = 1, stride 2",
         {4, {3, 4, 5, 6}, {2, 4, 1, 1}, {0}, {0, 0}, {2, 2}, {1, 1}, CUDNN_CROSS_CORRELATION}},
        {"1-D as 2-D with a unit height",
         {4, {2, 3, 1, 11}, {2, 3, 1, 4}, {0}, {0, 2}, {1, 3}, {1, 2}, CUDNN_CROSS_CORRELATION}},
        {"2-D 3x3 unit steps (Winograd, FFT eligible)",
         {4, {1, 2, 6, 5}, {3, 2, 3, 3}, {0}, {1, 1}, {1, 1}, {1, 1}, CUDNN_CROSS_CORRELATION}},
        {"3-D unit steps, CUDNN_CONVOLUTION",
         {5, {1, 2, 4, 4, 4}, {2, 2, 2, 3, 2}, {0}, {1, 1, 0}, {1, 1, 1}, {1, 1, 1},
          CUDNN_CONVOLUTION}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        check_case(cases[i].name, cases[i].c, false);
        check_case(cases[i].name, cases[i].c, true);
    }
    strided_case();
    channels_last_case();
    scaling_cases();
    find_cases();
    workspace_cases();
    validation_cases();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
