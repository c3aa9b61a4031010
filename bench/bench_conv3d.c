/* bench_conv3d.c — osp_conv on 5-D input: x[N,C,T,H,W] * w[O,C,K,K,K] +
 * bias, stride 1, dilation 1, padding K/2 (the VAE's "same" conv).
 * FLOPs: 2·N·O·C·K³·T'·H'·W' (bias left out). */
#include <stdio.h>

#include "backend/ops.h"
#include "bench_util.h"

typedef struct { osp_tensor *x, *w, *bias; osp_window win; } operands;

static osp_tensor *run_conv(void *ctx)
{
    operands *o = ctx;
    return osp_conv(o->x, o->w, o->bias, &o->win);
}

void bench_conv3d(const int64_t *d, int reps)
{
    int64_t n = d[0], c = d[1], out = d[2], t = d[3], h = d[4], w = d[5], k = d[6];
    operands o = {
        .x = bench_random(5, (int64_t[]){n, c, t, h, w}),
        .w = bench_random(5, (int64_t[]){out, c, k, k, k}),
        .bias = bench_random(1, (int64_t[]){out}),
        .win = osp_window_default(3),
    };
    for (int i = 0; i < 3; i++)
        o.win.pad[i] = k / 2;
    /* Output extent per spatial dim with stride 1: S + 2·(K/2) − K + 1. */
    int64_t grow = 2 * (k / 2) - k + 1;
    double flops = 2.0 * n * out * c * k * k * k * (t + grow) * (h + grow) * (w + grow);
    char shape[96];
    snprintf(shape, sizeof shape, "%lldx%lldx%lldx%lldx%lld k%lld -> %lld", (long long)n,
             (long long)c, (long long)t, (long long)h, (long long)w, (long long)k,
             (long long)out);
    bench_report("conv3d", shape, bench_median_ms(run_conv, &o, reps), flops);
}
