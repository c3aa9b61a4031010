/* bench_util.h — what every osp benchmark shares: random inputs, the
 * timing loop and the one-line report that run.sh joins with PyTorch's.
 *
 * A benchmark builds its inputs once (fresh uniform [-1, 1) values, never
 * zeros), then bench_median_ms() runs the op once to warm up (first-touch
 * page faults, OpenBLAS buffers, thread start-up) and `reps` timed times,
 * each inside its own autorelease pool so outputs do not pile up.
 * Any op failure prints the osp error and exits 1: a benchmark of an op
 * that failed means nothing. */
#ifndef OSP_BENCH_UTIL_H
#define OSP_BENCH_UTIL_H

#include <stdint.h>

#include "core/tensor.h"

/* The op under test: returns its result (owned by the current pool) or
 * NULL with an osp error set. */
typedef osp_tensor *(*bench_fn)(void *ctx);

/* New f32 host tensor of uniform [-1, 1) values from a per-process seed. */
osp_tensor *bench_random(int ndim, const int64_t *shape);

/* Warm-up run, then the median wall time of `reps` runs in milliseconds
 * (CLOCK_MONOTONIC). */
double bench_median_ms(bench_fn fn, void *ctx, int reps);

/* Prints "op<TAB>shape<TAB>ms<TAB>GFLOP/s<TAB>peak RSS MiB" on stdout;
 * the peak resident set is the whole process's so far (getrusage). */
void bench_report(const char *op, const char *shape, double ms, double flops);

/* t, or exit 1 with the osp error naming `what` when t is NULL. */
osp_tensor *bench_check(osp_tensor *t, const char *what);

/* The benchmarks (bench_<op>.c), as osp_bench.c's subcommands: dims are
 * the positive integers given on the command line, in the order its usage
 * text lists. Each times its op and prints one bench_report line. */
void bench_matmul(const int64_t *dims, int reps);
void bench_linear(const int64_t *dims, int reps);
void bench_conv3d(const int64_t *dims, int reps);
void bench_attention(const int64_t *dims, int reps);
/* Not an op: the measured core clock in MHz (bench_clock.c). */
void bench_clock(const int64_t *dims, int reps);

#endif
