/* bench_matmul.c — osp_matmul (a[M,K]·b[K,N]) and osp_linear
 * (x[T,I]·w[O,I]ᵀ + bias[O], a transformer projection). FLOPs: 2·M·K·N
 * (the bias add, T·O, is left out: under 0.1% here). */
#include <stdio.h>

#include "backend/ops.h"
#include "bench_util.h"

typedef struct { osp_tensor *a, *b, *bias; } operands;

static osp_tensor *run_matmul(void *ctx)
{
    operands *o = ctx;
    return osp_matmul(o->a, o->b, false, false);
}

static osp_tensor *run_linear(void *ctx)
{
    operands *o = ctx;
    return osp_linear(o->a, o->b, o->bias);
}

void bench_matmul(const int64_t *d, int reps)
{
    int64_t m = d[0], k = d[1], n = d[2];
    operands o = {
        .a = bench_random(2, (int64_t[]){m, k}),
        .b = bench_random(2, (int64_t[]){k, n}),
    };
    char shape[96];
    snprintf(shape, sizeof shape, "%lldx%lld * %lldx%lld", (long long)m, (long long)k,
             (long long)k, (long long)n);
    bench_report("matmul", shape, bench_median_ms(run_matmul, &o, reps), 2.0 * m * k * n);
}

void bench_linear(const int64_t *d, int reps)
{
    int64_t t = d[0], in = d[1], out = d[2];
    operands o = {
        .a = bench_random(2, (int64_t[]){t, in}),
        .b = bench_random(2, (int64_t[]){out, in}),
        .bias = bench_random(1, (int64_t[]){out}),
    };
    char shape[96];
    snprintf(shape, sizeof shape, "x %lldx%lld, w %lldx%lld, bias", (long long)t,
             (long long)in, (long long)out, (long long)in);
    bench_report("linear", shape, bench_median_ms(run_linear, &o, reps), 2.0 * t * in * out);
}
