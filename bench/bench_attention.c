/* bench_attention.c — osp_attention: softmax(q·kᵀ/√D)·v, q, k, v
 * [B,H,L,D], no mask. FLOPs: 4·B·H·L²·D for the two products plus
 * 5·B·H·L² for the softmax (scale, running max, subtract, exp, sum; the
 * final division is B·H·L·D, left out). */
#include <math.h>
#include <stdio.h>

#include "backend/ops.h"
#include "bench_util.h"

typedef struct { osp_tensor *q, *k, *v; float scale; } operands;

static osp_tensor *run_attention(void *ctx)
{
    operands *o = ctx;
    return osp_attention(o->q, o->k, o->v, NULL, o->scale);
}

void bench_attention(const int64_t *d, int reps)
{
    int64_t b = d[0], h = d[1], l = d[2], dim = d[3];
    const int64_t shape4[4] = {b, h, l, dim};
    operands o = {
        .q = bench_random(4, shape4),
        .k = bench_random(4, shape4),
        .v = bench_random(4, shape4),
        .scale = 1.0f / sqrtf((float)dim),
    };
    double scores = (double)b * h * l * l;
    char shape[96];
    snprintf(shape, sizeof shape, "B%lld H%lld L%lld D%lld", (long long)b, (long long)h,
             (long long)l, (long long)dim);
    bench_report("attention", shape, bench_median_ms(run_attention, &o, reps),
                 4.0 * scores * dim + 5.0 * scores);
}
