/* bench_util.c — random inputs, the median timing loop and the report. */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"

osp_tensor *bench_check(osp_tensor *t, const char *what)
{
    if (!t) {
        fprintf(stderr, "osp_bench: %s: %s\n", what, osp_error_message());
        exit(1);
    }
    return t;
}

/* One Philox stream per process, consumed in order, so every tensor gets
 * different values and every run of the benchmark gets fresh ones. */
osp_tensor *bench_random(int ndim, const int64_t *shape)
{
    static uint64_t seed, offset;
    if (!seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
    }
    osp_tensor *t = bench_check(osp_tensor_new(OSP_F32, ndim, shape, OSP_DEVICE_CPU), "input");
    int64_t n = osp_numel(t);
    float *x = osp_f32(t);
    if (osp_rng_uniform_fill(x, n, seed, offset) != OSP_OK)
        bench_check(NULL, "random input");
    offset += (uint64_t)n;
    for (int64_t i = 0; i < n; i++)
        x[i] = 2.0f * x[i] - 1.0f;
    return t;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static double run_once_ms(bench_fn fn, void *ctx)
{
    osp_pool_push();
    double start = now_ms();
    bench_check(fn(ctx), "op");
    double ms = now_ms() - start;
    osp_pool_pop();
    return ms;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median_ms(bench_fn fn, void *ctx, int reps)
{
    run_once_ms(fn, ctx);
    double *ms = malloc((size_t)reps * sizeof *ms);
    if (!ms) {
        fprintf(stderr, "osp_bench: out of memory\n");
        exit(4);
    }
    for (int i = 0; i < reps; i++)
        ms[i] = run_once_ms(fn, ctx);
    qsort(ms, (size_t)reps, sizeof *ms, compare_double);
    double median = reps % 2 ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
    free(ms);
    return median;
}

void bench_report(const char *op, const char *shape, double ms, double flops)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* ru_maxrss is in KiB on Linux. */
    printf("%s\t%s\t%.3f\t%.1f\t%.1f\n", op, shape, ms, flops / (ms * 1e6),
           (double)ru.ru_maxrss / 1024.0);
    fflush(stdout);
}
