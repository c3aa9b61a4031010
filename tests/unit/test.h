/* test.h — a minimal unit-test harness.
 *
 *   TEST(name) { CHECK(cond); CHECK_NEAR(a, b, tol); ... }
 *   int main(void) { RUN(name); ...; return test_summary(); }
 *
 * Prints one TAP line per test ("ok 3 - name" / "not ok 3 - name") and a
 * final "# passed N failed M" line that tests/run-all.sh adds up. Each test
 * runs inside an autorelease pool; the osp error is cleared before it. */
#ifndef OSP_TEST_H
#define OSP_TEST_H

#include <math.h>
#include <stdio.h>

#include "core/tensor.h"
#include "core/error.h"

extern int test_failures_in_current; /* failures recorded by CHECKs */

#define TEST(name) static void test_##name(void)

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            test_failures_in_current++;                                      \
            printf("#   %s:%d: CHECK(%s) failed (osp error: %s)\n", __FILE__, \
                   __LINE__, #cond, osp_error_message());                    \
        }                                                                    \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                \
    do {                                                                     \
        double a_ = (a), b_ = (b);                                           \
        if (!(fabs(a_ - b_) <= (tol))) {                                     \
            test_failures_in_current++;                                      \
            printf("#   %s:%d: %s = %.9g, %s = %.9g, |diff| %.3g > %g\n",   \
                   __FILE__, __LINE__, #a, a_, #b, b_, fabs(a_ - b_),        \
                   (double)(tol));                                           \
        }                                                                    \
    } while (0)

#define RUN(name) test_run(#name, test_##name)

void test_run(const char *name, void (*fn)(void));
int test_summary(void);

/* Fresh random inputs: uniform in [lo, hi) from a per-process LCG seeded by
 * the test name, so failures reproduce. */
void test_fill_uniform(osp_tensor *t, float lo, float hi);
osp_tensor *test_random(int ndim, const int64_t *shape, float lo, float hi);
/* The next 32 random bits of the same generator. */
uint32_t test_u32(void);
/* Relative error ||a-b|| / ||b|| (f32 host tensors of equal numel). */
double test_rel_error(const osp_tensor *a, const osp_tensor *b);
double test_max_abs_diff(const osp_tensor *a, const osp_tensor *b);
/* Fixture root: $OSP_FIXTURES, else ../shared/fixtures relative to the
 * repository root (tests run from there). */
const char *test_fixtures_dir(void);

#endif
