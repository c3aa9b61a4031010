/* test_embed.c — embedding lookup (i32/i64 ids, errors, scatter-add
 * gradient) and the diffusers timestep embedding. */
#include "backend/ops.h"
#include "gradcheck.h"
#include "test.h"
#include "train/tape.h"

#include <string.h>

TEST(embedding_gathers_rows_for_i32_and_i64_ids)
{
    int64_t ts[] = {7, 5}, is[] = {2, 3};
    osp_tensor *table = test_random(2, ts, -1, 1);
    const int32_t ids32[] = {3, 0, 6, 6, 1, 3};
    const int64_t ids64[] = {3, 0, 6, 6, 1, 3};
    osp_tensor *ids[2] = {osp_tensor_from_data(OSP_I32, 2, is, ids32),
                          osp_tensor_from_data(OSP_I64, 2, is, ids64)};
    for (int k = 0; k < 2; k++) {
        osp_tensor *y = osp_embedding(table, ids[k]);
        CHECK(y && y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 5);
        if (!y)
            continue;
        for (int i = 0; i < 6; i++)
            CHECK(memcmp(osp_f32(y) + i * 5, osp_f32(table) + ids32[i] * 5, 5 * sizeof(float)) ==
                  0);
    }
    /* A bf16 table is widened on use. */
    uint16_t bits[35];
    for (int i = 0; i < 35; i++)
        bits[i] = osp_f32_to_bf16(osp_f32(table)[i]);
    osp_tensor *y = osp_embedding(osp_tensor_from_data(OSP_BF16, 2, ts, bits), ids[1]);
    CHECK(y && y->dtype == OSP_F32);
    if (y)
        for (int i = 0; i < 6; i++)
            for (int d = 0; d < 5; d++)
                CHECK(osp_f32(y)[i * 5 + d] == osp_bf16_to_f32(bits[ids32[i] * 5 + d]));
    /* A 0-D id gives one row. */
    osp_tensor *one = osp_embedding(table, osp_tensor_from_data(OSP_I64, 0, NULL, &ids64[2]));
    CHECK(one && one->ndim == 1 && one->shape[0] == 5 && osp_f32(one)[4] == osp_f32(table)[34]);
}

TEST(embedding_rejects_bad_ids)
{
    int64_t ts[] = {7, 5}, n = 3;
    osp_tensor *table = test_random(2, ts, -1, 1);
    const int64_t too_big[] = {1, 7, 2};
    CHECK(osp_embedding(table, osp_tensor_from_data(OSP_I64, 1, &n, too_big)) == NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA);
    CHECK(strstr(osp_error_message(), "id 7") != NULL);
    const int32_t negative[] = {0, 1, -2};
    CHECK(osp_embedding(table, osp_tensor_from_data(OSP_I32, 1, &n, negative)) == NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA);
    CHECK(strstr(osp_error_message(), "id -2") != NULL);
    const float not_ids[] = {0, 1, 2};
    CHECK(osp_embedding(table, osp_tensor_from_data(OSP_F32, 1, &n, not_ids)) == NULL);
    CHECK(osp_error_code() == OSP_ERR_RUNTIME);
}

static osp_tensor *apply_embedding(osp_tensor *const *in, void *ctx)
{
    return osp_embedding(in[0], ctx);
}

TEST(embedding_gradient_scatter_adds)
{
    int64_t ts[] = {6, 4}, is[] = {2, 4};
    const int32_t ids[] = {5, 0, 5, 2, 2, 5, 1, 0}; /* repeats accumulate; 3, 4 unused */
    osp_tensor *idt = osp_tensor_from_data(OSP_I32, 2, is, ids);
    osp_tensor *table = osp_requires_grad(test_random(2, ts, -1, 1));
    CHECK(gradcheck("embedding table", apply_embedding, 1, &table, idt, NULL));

    /* The gradient equals the scatter-add, exactly, with zero rows for unused ids. */
    int64_t gs[] = {2, 4, 4};
    osp_tensor *gy = test_random(3, gs, -1, 1);
    osp_zero_grad(table);
    bool was = osp_grad_set_enabled(true);
    osp_tensor *y = osp_embedding(table, idt);
    CHECK(y && osp_backward(y, gy) == OSP_OK);
    osp_grad_set_enabled(was);
    CHECK(table->grad != NULL);
    if (!table->grad)
        return;
    float want[24] = {0};
    for (int i = 0; i < 8; i++)
        for (int d = 0; d < 4; d++)
            want[ids[i] * 4 + d] += osp_f32(gy)[i * 4 + d];
    for (int i = 0; i < 24; i++)
        CHECK_NEAR(osp_f32(table->grad)[i], want[i], 1e-6);
    CHECK(osp_f32(table->grad)[3 * 4] == 0 && osp_f32(table->grad)[4 * 4 + 3] == 0);
}

/* diffusers get_timestep_embedding with the float32 steps PyTorch takes;
 * only sin and cos are evaluated in double. */
static double ref_timestep(float t, int dim, int col, bool flip, float shift, float scale,
                           float max_period)
{
    int half = dim / 2;
    if (col >= 2 * half)
        return 0.0; /* the zero pad of an odd dim */
    bool first = col < half;
    int i = first ? col : col - half;
    float e = (float)-log((double)max_period) * (float)i / (float)((double)half - shift);
    float a = scale * (t * expf(e));
    return first != flip ? sin(a) : cos(a);
}

TEST(timestep_embedding_matches_diffusers)
{
    const float ts[] = {0.0f, 979.5918f, 1.0f, 37.25f};
    int64_t b = 4;
    osp_tensor *t = osp_tensor_from_data(OSP_F32, 1, &b, ts);
    struct {
        int dim;
        bool flip;
        float shift, scale, max_period;
    } cases[] = {
        {256, true, 0.0f, 1.0f, 10000.0f}, /* Latte's adaLN-single sinusoid */
        {8, false, 1.0f, 1.0f, 10000.0f},  /* diffusers' defaults */
        {7, true, 0.0f, 1.0f, 10000.0f},   /* odd: zero pad */
        {9, false, 1.0f, 2.0f, 500.0f},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int dim = cases[k].dim;
        osp_tensor *y = osp_timestep_embedding(t, dim, cases[k].flip, cases[k].shift,
                                               cases[k].scale, cases[k].max_period);
        CHECK(y && y->ndim == 2 && y->shape[0] == 4 && y->shape[1] == dim);
        if (!y)
            continue;
        double worst = 0;
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < dim; c++) {
                double want = ref_timestep(ts[r], dim, c, cases[k].flip, cases[k].shift,
                                           cases[k].scale, cases[k].max_period);
                worst = fmax(worst, fabs(osp_f32(y)[r * dim + c] - want));
            }
        if (worst > 1e-6)
            printf("#   case %zu: worst %.3g\n", k, worst);
        CHECK(worst <= 1e-6);
        if (dim % 2)
            CHECK(osp_f32(y)[dim - 1] == 0 && osp_f32(y)[3 * dim + dim - 1] == 0);
    }
}

TEST(timestep_embedding_hand_values)
{
    /* dim 4, t = 1: frequencies 1 and 10000^(-1/2) = 0.01. */
    int64_t b = 1;
    const int64_t t1 = 1;
    osp_tensor *t = osp_tensor_from_data(OSP_I64, 1, &b, &t1); /* integer t is converted */
    osp_tensor *y = osp_timestep_embedding(t, 4, false, 0.0f, 1.0f, 10000.0f);
    osp_tensor *yf = osp_timestep_embedding(t, 4, true, 0.0f, 1.0f, 10000.0f);
    CHECK(y && yf);
    if (!y || !yf)
        return;
    const double sin_cos[4] = {0.8414709848078965, 0.009999833334166665, 0.5403023058681398,
                               0.9999500004166653};
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(osp_f32(y)[i], sin_cos[i], 2e-7);
        CHECK_NEAR(osp_f32(yf)[i], sin_cos[(i + 2) % 4], 2e-7);
    }
    CHECK(osp_timestep_embedding(t, 0, true, 0, 1, 10000) == NULL);
    CHECK(osp_timestep_embedding(t, 4, true, 2.0f, 1, 10000) == NULL); /* half - shift = 0 */
}

int main(void)
{
    RUN(embedding_gathers_rows_for_i32_and_i64_ids);
    RUN(embedding_rejects_bad_ids);
    RUN(embedding_gradient_scatter_adds);
    RUN(timestep_embedding_matches_diffusers);
    RUN(timestep_embedding_hand_values);
    return test_summary();
}
