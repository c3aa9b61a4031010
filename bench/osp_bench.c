/* osp_bench.c — times one libosp op on the CPU backend and prints one
 * tab-separated line (bench_util.h). run.sh runs it beside torch_bench.py,
 * which takes the same arguments, and joins the two. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "backend/backend.h"
#include "bench_util.h"

/* The OpenBLAS build and the kernel set it picked for this CPU. */
static void print_blas(const int64_t *dims, int reps)
{
    (void)dims, (void)reps;
    printf("%s, kernels: %s\n", openblas_get_config(), openblas_get_corename());
}

typedef struct {
    const char *name;
    int ndims;
    const char *dims;
    void (*run)(const int64_t *dims, int reps);
} bench_case;

static const bench_case cases[] = {
    {"matmul", 3, "M K N", bench_matmul},
    {"linear", 3, "TOKENS IN OUT", bench_linear},
    {"conv3d", 7, "N C_IN C_OUT T H W K", bench_conv3d},
    {"attention", 4, "B HEADS L D", bench_attention},
    {"clock", 0, "(prints the core clock in MHz)", bench_clock},
    {"blas", 0, "(prints the OpenBLAS build and kernel set)", print_blas},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: osp_bench [-t THREADS] [-r REPS] OP DIMS...\n");
    for (int i = 0; i < NCASES; i++)
        fprintf(f, "  %-9s %s\n", cases[i].name, cases[i].dims);
    fprintf(f, "Prints: op, shape, median ms, GFLOP/s, peak RSS MiB (tab-separated).\n"
               "example: osp_bench -t 2 -r 5 matmul 1024 1024 1024\n");
}

/* A decimal integer in [1, max], or exit 2 naming `what`. */
static long long positive(const char *s, const char *what, long long max)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max) {
        fprintf(stderr, "osp_bench: %s: expected an integer in [1, %lld], got '%s'\n", what,
                max, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    int threads = 0, reps = 5, opt;
    while ((opt = getopt(argc, argv, "ht:r:")) != -1) {
        switch (opt) {
        case 't': threads = (int)positive(optarg, "-t", 1024); break;
        case 'r': reps = (int)positive(optarg, "-r", 1000); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *op = argv[optind++];
    for (int i = 0; i < NCASES; i++) {
        if (strcmp(op, cases[i].name))
            continue;
        if (argc - optind != cases[i].ndims) {
            fprintf(stderr, "osp_bench: %s takes %s\n", op, cases[i].dims);
            return 2;
        }
        int64_t dims[8];
        for (int j = 0; j < cases[i].ndims; j++)
            dims[j] = positive(argv[optind + j], op, 1LL << 32);
        osp_set_threads(threads);
        cases[i].run(dims, reps);
        return 0;
    }
    fprintf(stderr, "osp_bench: unknown op '%s'\n", op);
    usage(stderr);
    return 2;
}
