/* bench_clock.c — the core clock the benchmarks actually run at, for the
 * peak estimate in run.sh: under a hypervisor lscpu reports the nominal
 * clock, while the cores boost above it. A chain of dependent integer adds
 * retires one add per cycle on every x86-64 core, so adds / seconds is the
 * clock. The seconds are this thread's CPU time, so other processes that
 * share the core do not lower the figure. Prints MHz (one core busy; with
 * every core busy the boost may be a little lower), or 0 on other
 * architectures. */
#include <stdio.h>
#include <time.h>

#include "bench_util.h"

#define CHAIN_ITERS 40000000L /* x 10 adds: about 0.1 s at 4 GHz */

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static double chain_mhz(void)
{
#if defined(__x86_64__)
    long x = 0;
    double start = thread_cpu_ms();
    for (long i = 0; i < CHAIN_ITERS; i++)
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0"
                         : "+r"(x));
    double ms = thread_cpu_ms() - start;
    return (double)x / (ms * 1e3);
#else
    return 0;
#endif
}

void bench_clock(const int64_t *dims, int reps)
{
    (void)dims;
    double best = 0;
    chain_mhz(); /* lets the core leave its idle clock */
    for (int i = 0; i < reps; i++) {
        double mhz = chain_mhz();
        if (mhz > best)
            best = mhz;
    }
    printf("%.0f\n", best);
}
