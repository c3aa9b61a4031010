/* test.c — see test.h. */
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int test_failures_in_current;
static int n_run, n_failed;
static uint64_t rng_state = 88172645463325252ull;

void test_run(const char *name, void (*fn)(void))
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the name seeds the RNG */
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    rng_state = h | 1;
    test_failures_in_current = 0;
    osp_error_clear();
    osp_pool_push();
    fn();
    osp_pool_pop();
    n_run++;
    if (test_failures_in_current)
        n_failed++;
    printf("%s %d - %s\n", test_failures_in_current ? "not ok" : "ok", n_run, name);
    fflush(stdout);
}

int test_summary(void)
{
    printf("1..%d\n# passed %d failed %d\n", n_run, n_run - n_failed, n_failed);
    return n_failed ? 1 : 0;
}

static uint64_t next_bits(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double next_uniform(void) { return (double)(next_bits() >> 11) * 0x1p-53; }

uint32_t test_u32(void) { return (uint32_t)(next_bits() >> 32); }

void test_fill_uniform(osp_tensor *t, float lo, float hi)
{
    float *p = osp_f32(t);
    int64_t n = osp_numel(t);
    for (int64_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)next_uniform();
}

osp_tensor *test_random(int ndim, const int64_t *shape, float lo, float hi)
{
    osp_tensor *t = osp_tensor_f32(ndim, shape);
    if (t)
        test_fill_uniform(t, lo, hi);
    return t;
}

double test_rel_error(const osp_tensor *a, const osp_tensor *b)
{
    const float *pa = osp_f32(a), *pb = osp_f32(b);
    double num = 0, den = 0;
    int64_t n = osp_numel(b);
    if (osp_numel(a) != n)
        return INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)pa[i] - pb[i];
        num += d * d;
        den += (double)pb[i] * pb[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

double test_max_abs_diff(const osp_tensor *a, const osp_tensor *b)
{
    const float *pa = osp_f32(a), *pb = osp_f32(b);
    int64_t n = osp_numel(b);
    if (osp_numel(a) != n)
        return INFINITY;
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)pa[i] - pb[i]);
        if (d > m || d != d)
            m = d;
    }
    return m;
}

const char *test_fixtures_dir(void)
{
    const char *env = getenv("OSP_FIXTURES");
    return env && *env ? env : "../shared/fixtures";
}
