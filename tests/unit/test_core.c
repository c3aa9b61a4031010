/* test_core.c — dtypes, conversions, tensor handles, pools and views. */
#include "test.h"
#include "core/checked.h"

#include <string.h>

TEST(dtype_names_round_trip)
{
    for (int t = 0; t < OSP_DTYPE_COUNT; t++) {
        osp_dtype back;
        const char *name = osp_dtype_name((osp_dtype)t);
        CHECK(osp_dtype_parse(name, strlen(name), &back) && back == (osp_dtype)t);
        name = osp_dtype_safetensors_name((osp_dtype)t);
        CHECK(osp_dtype_parse(name, strlen(name), &back) && back == (osp_dtype)t);
    }
    osp_dtype d;
    CHECK(!osp_dtype_parse("f8", 2, &d));
    CHECK(!osp_dtype_parse("f3", 2, &d));
}

TEST(bf16_rounds_to_nearest_even)
{
    /* 1 + 2^-8 is halfway between bf16 1.0 and 1 + 2^-7: ties to even (1.0). */
    CHECK(osp_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);
    /* 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6: rounds up. */
    CHECK(osp_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);
    CHECK(osp_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);
    CHECK(osp_f32_to_bf16(INFINITY) == 0x7f80);
    CHECK(osp_f32_to_bf16(-INFINITY) == 0xff80);
    float nan = osp_bf16_to_f32(osp_f32_to_bf16(NAN));
    CHECK(nan != nan);
    /* Largest finite f32 rounds to bf16 Inf (it is above bf16's max + half ulp). */
    CHECK(osp_f32_to_bf16(3.4028235e38f) == 0x7f80);
    CHECK(osp_bf16_to_f32(0x4049) == 3.140625f);
}

TEST(f16_conversions)
{
    CHECK(osp_f32_to_f16(1.0f) == 0x3c00);
    CHECK(osp_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(osp_f32_to_f16(65520.0f) == 0x7c00); /* rounds to Inf */
    CHECK(osp_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(osp_f32_to_f16(0x1p-24f) == 0x0001);   /* smallest subnormal */
    CHECK(osp_f32_to_f16(0x1p-25f) == 0x0000);   /* halfway to 0: even */
    CHECK(osp_f32_to_f16(0x1.8p-25f) == 0x0001); /* above halfway */
    CHECK(osp_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00); /* tie -> even */
    CHECK(osp_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02);
    CHECK(osp_f32_to_f16(-2.0f) == 0xc000);
    CHECK(osp_f16_to_f32(0x7c00) == INFINITY);
    CHECK(osp_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(osp_f16_to_f32(0x3555) == 0.333251953125f);
    float nan = osp_f16_to_f32(osp_f32_to_f16(NAN));
    CHECK(nan != nan);
    /* Every f16 value survives f16 -> f32 -> f16. */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue; /* NaN payloads are quieted */
        bad += osp_f32_to_f16(osp_f16_to_f32((uint16_t)h)) != h;
    }
    CHECK(bad == 0);
}

TEST(convert_between_all_dtypes)
{
    double src[] = {0, 1, -2, 3.5, 200, -1e10};
    for (int t = 0; t < OSP_DTYPE_COUNT; t++) {
        char buf[64];
        osp_convert(buf, (osp_dtype)t, src, OSP_F64, 4);
        double back[4];
        osp_convert(back, OSP_F64, buf, (osp_dtype)t, 4);
        CHECK(back[0] == 0 && back[1] == 1);
        if (t != OSP_U8)
            CHECK(back[2] == -2);
    }
    int32_t i32;
    double big = 1e10;
    osp_convert(&i32, OSP_I32, &big, OSP_F64, 1);
    CHECK(i32 == INT32_MAX);
    uint8_t u8;
    double neg = -5;
    osp_convert(&u8, OSP_U8, &neg, OSP_F64, 1);
    CHECK(u8 == 0);
}

TEST(overflow_checks)
{
    int64_t n;
    int64_t huge[] = {1ll << 40, 1ll << 40};
    CHECK(!osp_shape_numel(huge, 2, &n));
    int64_t neg[] = {3, -1};
    CHECK(!osp_shape_numel(neg, 2, &n));
    CHECK(osp_tensor_new(OSP_F32, 2, huge, OSP_DEVICE_CPU) == NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA);
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(osp_tensor_new(OSP_F32, 9, nine, OSP_DEVICE_CPU) == NULL);
    /* f64 of 2^61 elements overflows the byte count. */
    int64_t edge[] = {1ll << 61};
    CHECK(osp_tensor_new(OSP_F64, 1, edge, OSP_DEVICE_CPU) == NULL);
}

TEST(dense_views_and_layouts)
{
    /* A permutation of a contiguous tensor is dense and has its own
     * layout; slices, broadcasts and strided steps are not dense. */
    osp_tensor *t = test_random(3, (int64_t[]){2, 3, 4}, -1, 1);
    osp_tensor *v = osp_view_permute(t, (const int[]){2, 0, 1});
    CHECK(osp_is_dense(t) && osp_is_dense(v) && !osp_is_contiguous(v));
    CHECK(osp_same_layout(t, t) && !osp_same_layout(t, v));
    CHECK(osp_same_layout(v, osp_view_permute(t, (const int[]){2, 0, 1})));
    CHECK(!osp_same_layout(v, osp_tensor_contiguous(v)));
    CHECK(!osp_is_dense(osp_view_slice(t, 2, 0, 4, 2)));   /* every other element */
    CHECK(!osp_is_dense(osp_view_slice(t, 1, 0, 2, 1)));   /* rows with gaps */
    CHECK(osp_is_dense(osp_view_slice(t, 0, 1, 2, 1)));    /* one whole block */
    CHECK(!osp_is_dense(osp_view_expand(t, 4, (int64_t[]){3, 2, 3, 4})));
    /* size-1 dims place no element, whatever their stride */
    osp_tensor *u = osp_view_reshape(t, 4, (int64_t[]){2, 1, 3, 4});
    osp_tensor *w = osp_view_permute(u, (const int[]){1, 0, 2, 3});
    CHECK(osp_is_dense(w) && osp_is_contiguous(w));
    /* an empty tensor places no element at all: contiguous, and its
     * transpose reshapes (the backward of a K = 0 matmul does) */
    osp_tensor *e = osp_view_permute(test_random(2, (int64_t[]){0, 3}, -1, 1), (const int[]){1, 0});
    CHECK(e && osp_is_contiguous(e));
    CHECK(osp_view_reshape(e, 1, (int64_t[]){0}) != NULL);
}

TEST(views_share_storage)
{
    int64_t shape[] = {2, 3, 4};
    osp_tensor *t = test_random(3, shape, -1, 1);
    float *p = osp_f32(t);
    int perm[] = {2, 0, 1};
    osp_tensor *v = osp_view_permute(t, perm);
    CHECK(v->shape[0] == 4 && v->shape[1] == 2 && v->shape[2] == 3);
    CHECK(!osp_is_contiguous(v));
    osp_tensor *c = osp_tensor_contiguous(v);
    const float *pc = osp_f32(c);
    /* c[k][i][j] == t[i][j][k] */
    int bad = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                bad += pc[(k * 2 + i) * 3 + j] != p[(i * 3 + j) * 4 + k];
    CHECK(bad == 0);

    osp_tensor *s = osp_view_slice(t, 2, 1, 4, 2); /* k = 1, 3 */
    CHECK(s->shape[2] == 2);
    osp_tensor *sc = osp_tensor_contiguous(s);
    CHECK(osp_f32(sc)[1] == p[3] && osp_f32(sc)[2] == p[5]);
    CHECK(osp_view_slice(t, 2, 0, 5, 1) == NULL);

    int64_t flat[] = {-1};
    osp_tensor *r = osp_view_reshape(t, 1, flat);
    CHECK(r && r->shape[0] == 24 && osp_f32(r) == p);
    int64_t bad_shape[] = {5, -1};
    CHECK(osp_view_reshape(t, 2, bad_shape) == NULL);
    CHECK(osp_view_reshape(v, 1, flat) == NULL); /* non-contiguous */

    int64_t big[] = {5, 2, 3, 4};
    osp_tensor *e = osp_view_expand(t, 4, big);
    CHECK(e && e->stride[0] == 0);
    int64_t wrong[] = {2, 3, 5};
    CHECK(osp_view_expand(t, 3, wrong) == NULL);
}

TEST(pools_release_and_take)
{
    int64_t shape[] = {4};
    osp_tensor *kept;
    osp_pool_push();
    osp_tensor *a = osp_tensor_f32(1, shape);
    osp_f32(a)[0] = 42;
    kept = osp_retain(a);
    osp_tensor_f32(1, shape); /* released by the pop */
    osp_pool_pop();
    CHECK(kept->refcount == 1 && osp_f32(kept)[0] == 42);
    osp_release(kept);

    osp_pool_push();
    osp_tensor *b = osp_pool_take(osp_tensor_f32(1, shape));
    osp_pool_pop();
    CHECK(b->refcount == 1);
    osp_release(b);
}

TEST(copy_into_converts_and_strides)
{
    int64_t shape[] = {3, 5};
    osp_tensor *t = test_random(2, shape, -2, 2);
    osp_tensor *h = osp_tensor_to_dtype(t, OSP_BF16);
    osp_tensor *back = osp_tensor_to_dtype(h, OSP_F32);
    CHECK(test_max_abs_diff(back, t) < 2e-2);
    int perm[] = {1, 0};
    osp_tensor *tt = osp_tensor_to_dtype(osp_view_permute(t, perm), OSP_F64);
    CHECK(((double *)osp_data(tt))[1] == (double)osp_f32(t)[5]);
}

/* Element `flat` (row-major over t's shape) read through t's strides. */
static float strided_at(const osp_tensor *t, int64_t flat)
{
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += flat % t->shape[d] * t->stride[d];
        flat /= t->shape[d];
    }
    return ((const float *)t->storage->data)[off];
}

/* Strided copies large enough for the threaded path: permutes (inner
 * stride 1 and not), stepped slices, broadcasts, and a copy into a
 * permuted destination, against reads through the strides. */
TEST(strided_copies_match_index_walks)
{
    int64_t shape[] = {6, 5, 40, 70}, small[] = {1, 5, 1, 70}, full[] = {6, 5, 40, 70};
    osp_tensor *t = test_random(4, shape, -1, 1);
    static const int perms[][4] = {{0, 2, 1, 3}, {3, 1, 2, 0}, {1, 0, 3, 2}, {2, 3, 0, 1}};
    osp_tensor *views[7];
    int nv = 0;
    for (int i = 0; i < 4; i++)
        views[nv++] = osp_view_permute(t, perms[i]);
    views[nv++] = osp_view_slice(osp_view_slice(t, 3, 1, 70, 3), 1, 0, 5, 2);
    views[nv++] = osp_view_expand(test_random(4, small, -1, 1), 4, full);
    views[nv++] = osp_view_slice(osp_view_permute(t, perms[1]), 0, 2, 60, 1);
    for (int v = 0; v < nv; v++) {
        CHECK(views[v] != NULL);
        osp_tensor *c = views[v] ? osp_tensor_contiguous(views[v]) : NULL;
        if (!c)
            continue;
        int64_t bad = 0;
        for (int64_t i = 0; i < osp_numel(c); i++)
            bad += osp_f32(c)[i] != strided_at(views[v], i);
        CHECK(bad == 0);
    }
    /* into a permuted destination: dst viewed as t's shape */
    int64_t pshape[] = {70, 5, 40, 6};
    osp_tensor *d = osp_tensor_f32(4, pshape);
    osp_tensor *dv = osp_view_permute(d, perms[1]);
    CHECK(osp_tensor_copy_into(dv, t) == OSP_OK);
    int64_t bad = 0;
    for (int64_t i = 0; i < osp_numel(t); i++)
        bad += strided_at(dv, i) != osp_f32(t)[i];
    CHECK(bad == 0);
}

int main(void)
{
    RUN(dtype_names_round_trip);
    RUN(bf16_rounds_to_nearest_even);
    RUN(f16_conversions);
    RUN(convert_between_all_dtypes);
    RUN(overflow_checks);
    RUN(views_share_storage);
    RUN(dense_views_and_layouts);
    RUN(pools_release_and_take);
    RUN(copy_into_converts_and_strides);
    RUN(strided_copies_match_index_walks);
    return test_summary();
}
