/* profile.c — OSP_PROFILE's counters and report (see profile.h). */
#include "profile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Distinct (op, input shapes) keys kept; later new keys go to "(other)". */
#define MAX_KEYS 1024
#define KEY_LEN 160
#define REPORT_ROWS 40

typedef struct counter {
    char key[KEY_LEN];
    long long ns, calls;
} counter;

static counter by_op[OSP_OP_COUNT];
static counter *by_shape; /* MAX_KEYS + 1 slots, the last for "(other)" */
static int n_shape;
static struct timespec start;

static double ms_since_start(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start.tv_sec) * 1e3 +
           (double)(now.tv_nsec - start.tv_nsec) / 1e6;
}

static int slower_first(const void *a, const void *b)
{
    const counter *x = a, *y = b;
    return (x->ns < y->ns) - (x->ns > y->ns);
}

/* The `limit` slowest rows, keys `width` wide. */
static void print_rows(counter *rows, int n, int limit, int width, double in_ops)
{
    qsort(rows, (size_t)n, sizeof *rows, slower_first);
    fprintf(stderr, "%-*s %10s %10s %6s\n", width, "op", "ms", "calls", "%");
    for (int i = 0; i < n && i < limit; i++) {
        if (!rows[i].calls)
            break;
        double ms = (double)rows[i].ns / 1e6;
        fprintf(stderr, "%-*s %10.1f %10lld %6.1f\n", width, rows[i].key, ms, rows[i].calls,
                in_ops > 0 ? 100.0 * ms / in_ops : 0.0);
    }
}

static void report(void)
{
    double wall = ms_since_start(), in_ops = 0;
    for (int i = 0; i < OSP_OP_COUNT; i++)
        in_ops += (double)by_op[i].ns / 1e6;
    fprintf(stderr, "osp profile: %.1f ms in ops of %.1f ms since the first op\n", in_ops, wall);
    print_rows(by_op, OSP_OP_COUNT, OSP_OP_COUNT, 24, in_ops);
    if (by_shape) {
        fprintf(stderr, "osp profile by input shapes (the %d slowest):\n", REPORT_ROWS);
        print_rows(by_shape, n_shape + 1, REPORT_ROWS, 64, in_ops);
    }
}

bool osp_profile_enabled(void)
{
    static int cached = -1;
    if (cached < 0) {
        const char *e = getenv("OSP_PROFILE");
        cached = e && *e && strcmp(e, "0") != 0;
        if (cached && strcmp(e, "shapes") == 0) {
            by_shape = calloc(MAX_KEYS + 1, sizeof *by_shape);
            if (by_shape)
                strcpy(by_shape[MAX_KEYS].key, "(other)");
        }
        if (cached) {
            for (int i = 0; i < OSP_OP_COUNT; i++)
                snprintf(by_op[i].key, KEY_LEN, "%s", osp_op_name((osp_op)i));
            clock_gettime(CLOCK_MONOTONIC, &start);
            atexit(report);
        }
    }
    return cached;
}

/* Appends printf-style text to key[used..], cut at KEY_LEN; returns the
 * new length (KEY_LEN or more once full). */
static size_t appendf(char *key, size_t used, const char *fmt, ...)
{
    if (used >= KEY_LEN)
        return used;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(key + used, KEY_LEN - used, fmt, ap);
    va_end(ap);
    return n < 0 ? KEY_LEN : used + (size_t)n;
}

/* Appends "[2,4,5]" (a scalar: "[]"). */
static size_t append_shape(char *key, size_t used, const osp_tensor *t)
{
    for (int d = 0; d < t->ndim; d++)
        used = appendf(key, used, "%s%lld", d ? "," : "[", (long long)t->shape[d]);
    return appendf(key, used, "%s", t->ndim ? "]" : "[]");
}

/* "op [2,4,5]x[384,384]" (inputs that are absent show as "-"); an op
 * without inputs (fill, randn) by its output, "fill -> [2,320,384]". Cut at
 * KEY_LEN. */
static void shape_key(const osp_node *n, char *key)
{
    size_t used = appendf(key, 0, "%s ", osp_op_name(n->op));
    for (int i = 0; i < n->n_in; i++) {
        used = appendf(key, used, "%s", i ? "x" : "");
        used = n->in[i] ? append_shape(key, used, n->in[i]) : appendf(key, used, "-");
    }
    if (n->n_in == 0 && n->n_out > 0)
        append_shape(key, appendf(key, used, "-> "), n->out[0]);
}

static counter *shape_counter(const osp_node *n)
{
    char key[KEY_LEN];
    shape_key(n, key);
    for (int i = 0; i < n_shape; i++) /* a few hundred keys: a scan is fine */
        if (strcmp(by_shape[i].key, key) == 0)
            return &by_shape[i];
    if (n_shape == MAX_KEYS)
        return &by_shape[MAX_KEYS];
    memcpy(by_shape[n_shape].key, key, KEY_LEN);
    return &by_shape[n_shape++];
}

void osp_profile_record(const osp_node *n, long long ns)
{
    by_op[n->op].ns += ns;
    by_op[n->op].calls++;
    if (by_shape) {
        counter *c = shape_counter(n);
        c->ns += ns;
        c->calls++;
    }
}
