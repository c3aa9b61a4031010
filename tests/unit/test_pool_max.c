/* test_pool_max.c — max pooling: exact values, a brute-force definition in
 * 1-3 spatial dims with padding, NaN propagation, AlexNet's 3x3 stride-2
 * pools, invalid arguments, and the backward against finite differences
 * and against the routing rule (each gy to its window's first maximum). */
#include "backend/ops.h"
#include "backend/ops_pool_max_bwd.h"
#include "gradcheck.h"
#include "test.h"
#include "train/tape.h"

#include <string.h>

#define CHECK_REJECTS(expr)                                        \
    do {                                                           \
        osp_error_clear();                                         \
        CHECK((expr) == NULL);                                     \
        CHECK(osp_error_code() != OSP_OK && *osp_error_message()); \
    } while (0)

static osp_window window_of(int nsp, const int64_t *k, const int64_t *s, const int64_t *p)
{
    osp_window w = osp_window_default(nsp);
    for (int i = 0; i < nsp; i++) {
        w.kernel[i] = k[i];
        w.stride[i] = s[i];
        w.pad[i] = p[i];
    }
    return w;
}

TEST(max_pool_exact_values)
{
    /* 4x5 plane, 3x3 windows, stride 2, no padding -> 1x2 */
    float xv[] = {1, 9, 2, 0, 3, /**/ 4, 5, 6, 8, 1, /**/ 7, 0, 2, 2, 2, /**/ 9, 9, 9, 9, 9};
    osp_tensor *x = osp_tensor_from_data(OSP_F32, 4, (int64_t[]){1, 1, 4, 5}, xv);
    osp_window w = window_of(2, (int64_t[]){3, 3}, (int64_t[]){2, 2}, (int64_t[]){0, 0});
    osp_tensor *y = osp_max_pool(x, &w);
    CHECK(y && y->shape[2] == 1 && y->shape[3] == 2);
    CHECK(y && osp_f32(y)[0] == 9 && osp_f32(y)[1] == 8);
    /* padding never wins, even over all-negative windows */
    float nv[] = {-5, -6, -7, -8};
    osp_tensor *neg = osp_tensor_from_data(OSP_F32, 3, (int64_t[]){1, 1, 4}, nv);
    osp_window w1 = window_of(1, (int64_t[]){3}, (int64_t[]){1}, (int64_t[]){1});
    osp_tensor *yn = osp_max_pool(neg, &w1);
    float want[] = {-5, -5, -6, -7};
    CHECK(yn && yn->shape[2] == 4 && memcmp(osp_f32(yn), want, sizeof want) == 0);
}

/* Brute force over the padded window, skipping padding. */
static float reference_window(const osp_tensor *x, int nsp, const osp_window *w, int64_t plane,
                              const int64_t *o)
{
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, p[3] = {0, 0, 0};
    int lead = 3 - nsp;
    for (int i = 0; i < nsp; i++) {
        in[lead + i] = x->shape[2 + i];
        k[lead + i] = w->kernel[i];
        s[lead + i] = w->stride[i];
        p[lead + i] = w->pad[i];
    }
    const float *xp = osp_f32(x) + plane * in[0] * in[1] * in[2];
    float best = -INFINITY;
    for (int64_t a = 0; a < k[0]; a++)
        for (int64_t b = 0; b < k[1]; b++)
            for (int64_t c = 0; c < k[2]; c++) {
                int64_t t = o[0] * s[0] - p[0] + a, h = o[1] * s[1] - p[1] + b,
                        v = o[2] * s[2] - p[2] + c;
                if (t < 0 || t >= in[0] || h < 0 || h >= in[1] || v < 0 || v >= in[2])
                    continue;
                float e = xp[(t * in[1] + h) * in[2] + v];
                best = e > best ? e : best;
            }
    return best;
}

static const struct {
    int nsp;
    int64_t shape[5], k[3], s[3], p[3];
} cases[] = {
    {1, {2, 3, 11}, {3}, {2}, {1}},
    {2, {1, 2, 63, 47}, {3, 3}, {2, 2}, {0, 0}}, /* AlexNet pool: 63 -> 31 */
    {2, {2, 1, 6, 7}, {2, 4}, {1, 3}, {1, 2}},
    {3, {1, 2, 5, 4, 6}, {3, 2, 3}, {2, 2, 1}, {1, 0, 1}},
};

TEST(max_pool_matches_definition)
{
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        int nsp = cases[n].nsp;
        osp_window w = window_of(nsp, cases[n].k, cases[n].s, cases[n].p);
        osp_tensor *x = test_random(nsp + 2, cases[n].shape, -2, 1);
        osp_tensor *y = osp_max_pool(x, &w);
        CHECK(y != NULL);
        if (!y)
            continue;
        int64_t out[3] = {1, 1, 1};
        for (int i = 0; i < nsp; i++) {
            int64_t want = (cases[n].shape[2 + i] + 2 * cases[n].p[i] - cases[n].k[i]) /
                               cases[n].s[i] + 1;
            CHECK(y->shape[2 + i] == want);
            out[3 - nsp + i] = y->shape[2 + i];
        }
        int64_t planes = x->shape[0] * x->shape[1], bad = 0;
        const float *yp = osp_f32(y);
        for (int64_t pl = 0; pl < planes; pl++)
            for (int64_t a = 0; a < out[0]; a++)
                for (int64_t b = 0; b < out[1]; b++)
                    for (int64_t c = 0; c < out[2]; c++)
                        bad += *yp++ != reference_window(x, nsp, &w, pl, (int64_t[]){a, b, c});
        CHECK(bad == 0);
    }
}

TEST(max_pool_propagates_nan)
{
    float xv[] = {1, NAN, 3, 4, 5, 6};
    osp_tensor *x = osp_tensor_from_data(OSP_F32, 3, (int64_t[]){1, 1, 6}, xv);
    osp_window w = window_of(1, (int64_t[]){3}, (int64_t[]){3}, (int64_t[]){0});
    osp_tensor *y = osp_max_pool(x, &w);
    CHECK(y && isnan(osp_f32(y)[0]) && osp_f32(y)[1] == 6);
}

TEST(max_pool_rejects_invalid_arguments)
{
    osp_tensor *x = test_random(4, (int64_t[]){1, 2, 5, 5}, -1, 1);
    osp_window w = window_of(2, (int64_t[]){3, 3}, (int64_t[]){2, 2}, (int64_t[]){1, 1});
    CHECK(osp_max_pool(x, &w) != NULL);
    osp_window bad = w;
    bad.pad[0] = 2; /* > kernel / 2 */
    CHECK_REJECTS(osp_max_pool(x, &bad));
    bad = w;
    bad.stride[1] = 0;
    CHECK_REJECTS(osp_max_pool(x, &bad));
    bad = w;
    bad.kernel[0] = 8; /* larger than the padded input */
    CHECK_REJECTS(osp_max_pool(x, &bad));
    bad = w;
    bad.nsp = 3;
    CHECK_REJECTS(osp_max_pool(x, &bad));
    CHECK_REJECTS(osp_max_pool(x, NULL));
    osp_tensor *ids = osp_tensor_zeros(OSP_I32, 4, (int64_t[]){1, 1, 4, 4}, OSP_DEVICE_CPU);
    CHECK_REJECTS(osp_max_pool(ids, &w));
    osp_tensor *y = osp_max_pool(x, &w);
    CHECK_REJECTS(osp_max_pool_backward(x, x, &w)); /* gy is not the pooled shape */
    CHECK(osp_max_pool_backward(y, x, &w) != NULL);
}

/* Overlapping windows (stride < kernel) send several gy elements to one
 * maximum: they add up; ties go to the first maximum in scan order. */
TEST(max_pool_backward_routes_to_first_maximum)
{
    float xv[] = {2, 7, 7, 1, 0};
    osp_tensor *x = osp_tensor_from_data(OSP_F32, 3, (int64_t[]){1, 1, 5}, xv);
    osp_window w = window_of(1, (int64_t[]){3}, (int64_t[]){1}, (int64_t[]){0});
    float gv[] = {1, 10, 100};
    osp_tensor *gy = osp_tensor_from_data(OSP_F32, 3, (int64_t[]){1, 1, 3}, gv);
    osp_tensor *gx = osp_max_pool_backward(gy, x, &w);
    float want[] = {0, 11, 100, 0, 0};
    CHECK(gx && memcmp(osp_f32(gx), want, sizeof want) == 0);
}

/* Distinct values spaced 2/n apart in a scrambled order, so no window has
 * two maxima within the finite-difference step of each other. */
static osp_tensor *distinct_values(int ndim, const int64_t *shape)
{
    osp_tensor *x = osp_tensor_f32(ndim, shape);
    int64_t n = osp_numel(x);
    for (int64_t i = 0; i < n; i++)
        osp_f32(x)[i] = (float)((i * 7919) % n) * 2.0f / (float)n - 1.0f;
    return x;
}

typedef struct pool_ctx {
    osp_window win;
} pool_ctx;

static osp_tensor *apply(osp_tensor *const *in, void *p)
{
    return osp_max_pool(in[0], &((pool_ctx *)p)->win);
}

TEST(max_pool_gradients_match_finite_differences)
{
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        if (n == 1)
            continue; /* the large AlexNet case: slow under finite differences */
        pool_ctx c = {window_of(cases[n].nsp, cases[n].k, cases[n].s, cases[n].p)};
        osp_tensor *x = osp_requires_grad(distinct_values(cases[n].nsp + 2, cases[n].shape));
        char label[32];
        snprintf(label, sizeof label, "max_pool case %zu", n);
        CHECK(gradcheck(label, apply, 1, &x, &c, NULL));
    }
}

int main(void)
{
    RUN(max_pool_exact_values);
    RUN(max_pool_matches_definition);
    RUN(max_pool_propagates_nan);
    RUN(max_pool_rejects_invalid_arguments);
    RUN(max_pool_backward_routes_to_first_maximum);
    RUN(max_pool_gradients_match_finite_differences);
    return test_summary();
}
