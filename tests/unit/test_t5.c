/* test_t5.c — the T5 v1.1 encoder against fixtures/t5/encoder (outputs of
 * the reference math): the relative position buckets (exact), the position
 * bias, every block's output and last_hidden_state (|out - exp| <= 1e-4 +
 * 1e-4·|exp| elementwise); the same model saved with only one of the two
 * tied embedding keys, as sharded safetensors with an index, as PyTorch
 * .bin shards, and in bf16 (kept bf16 and widened on use); bad inputs and
 * configs that disagree with the weights. */
#include "backend/ops.h"
#include "fixture.h"
#include "io/model.h"
#include "io/safetensors.h"
#include "io/torch_pickle.h"
#include "models/t5.h"
#include "test.h"
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENC "t5/encoder"

static const char *enc_file(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, ENC "/%s", name);
    return buf;
}

/* Elementwise |got - want| <= 1e-4 + 1e-4·|want| (the fixture README's rule). */
static bool close_elementwise(const char *label, osp_tensor *got, osp_tensor *want)
{
    if (!got || !want || !osp_same_shape(got, want)) {
        printf("#   %s: missing result or shape mismatch (%s)\n", label, osp_error_message());
        return false;
    }
    got = osp_tensor_to_dtype(osp_to_device(got, OSP_DEVICE_CPU), OSP_F32);
    const float *g = osp_f32(got), *w = osp_f32(want);
    double worst = 0, max_abs = 0;
    int64_t bad = 0, n = osp_numel(want);
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)g[i] - w[i]), bound = 1e-4 + 1e-4 * fabs(w[i]);
        bad += !(d <= bound);
        max_abs = fmax(max_abs, d);
        worst = fmax(worst, d / bound);
    }
    printf("#   %s: max abs error %.3g, worst error/bound %.3g%s\n", label, max_abs, worst,
           bad ? "  FAIL" : "");
    return bad == 0;
}

static osp_t5 *load(const char *path)
{
    osp_t5 *t = osp_t5_load(path, OSP_DEVICE_CPU);
    if (!t)
        printf("#   loading %s: %s\n", path, osp_error_message());
    return t;
}

static osp_tensor *input(const char *name)
{
    osp_safetensors *st = osp_safetensors_open(fixture_path(enc_file("inputs.safetensors")));
    osp_tensor *t = st ? osp_tensor_clone(osp_safetensors_get(st, name)) : NULL;
    osp_safetensors_close(st);
    return t;
}

/* last_hidden_state of a model folder on the fixture inputs. */
static bool check_output(const char *path, const char *label)
{
    osp_t5 *t = load(path);
    if (!t)
        return false;
    osp_tensor *out = osp_t5_run(t, input("input_ids"), input("attention_mask"));
    bool ok = close_elementwise(label, out,
                                fixture_tensor(enc_file("expected.safetensors"), "last_hidden_state"));
    osp_t5_free(t);
    return ok;
}

TEST(bucket_table_exact)
{
    const char *f = enc_file("bucket_table.safetensors");
    osp_safetensors *st = osp_safetensors_open(fixture_path(f));
    CHECK(st != NULL);
    if (!st)
        return;
    osp_tensor *rel = osp_safetensors_get(st, "relative_position");
    osp_tensor *bucket = osp_safetensors_get(st, "bucket");
    CHECK(rel && bucket && rel->dtype == OSP_I64 && osp_numel(rel) == osp_numel(bucket));
    int64_t bad = 0;
    for (int64_t i = 0; rel && bucket && i < osp_numel(rel); i++) {
        int64_t r = ((int64_t *)osp_data(rel))[i], want = ((int64_t *)osp_data(bucket))[i];
        if (osp_t5_bucket(r, 32, 128) != want && bad++ < 5)
            printf("#   rel %lld: bucket %lld, expected %lld\n", (long long)r,
                   (long long)osp_t5_bucket(r, 32, 128), (long long)want);
    }
    CHECK(bad == 0);
    osp_safetensors_close(st);
}

TEST(bucket_matrix_and_position_bias)
{
    osp_safetensors *st = osp_safetensors_open(fixture_path(enc_file("debug.safetensors")));
    osp_tensor *want = st ? osp_safetensors_get(st, "relative_position_bucket") : NULL;
    CHECK(want && want->ndim == 2 && want->dtype == OSP_I64);
    osp_safetensors_close(st);
    if (!want)
        return;
    int64_t L = want->shape[0], bad = 0;
    const int64_t *w = osp_data(want);
    for (int64_t i = 0; i < L; i++)
        for (int64_t j = 0; j < L; j++)
            bad += osp_t5_bucket(j - i, 32, 128) != w[i * L + j];
    CHECK(bad == 0);
    osp_t5 *t = load(fixture_path(ENC));
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK(close_elementwise("position_bias", osp_t5_position_bias(t, L, L),
                            fixture_tensor(enc_file("debug.safetensors"), "position_bias")));
    osp_t5_free(t);
}

TEST(fixture_blocks_and_output)
{
    osp_t5 *t = load(fixture_path(ENC));
    CHECK(t != NULL);
    if (!t)
        return;
    const osp_t5_config *c = osp_t5_get_config(t);
    CHECK(c->d_model == 48 && c->num_heads == 4 && c->d_kv == 16 && c->d_ff == 112 &&
          c->num_layers == 3 && c->vocab_size == 384);
    osp_tensor *blocks[3];
    osp_tensor *out = osp_t5_forward(t, input("input_ids"), input("attention_mask"), blocks);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "block_%d_output", i);
        CHECK(close_elementwise(name, blocks[i],
                                fixture_tensor(enc_file("debug.safetensors"), name)));
    }
    CHECK(close_elementwise("last_hidden_state", out,
                            fixture_tensor(enc_file("expected.safetensors"), "last_hidden_state")));
    /* Batch rows are independent: row 2 alone gives the same row. */
    osp_tensor *ids = osp_slice(input("input_ids"), 0, 2, 3, 1);
    osp_tensor *mask = osp_slice(input("attention_mask"), 0, 2, 3, 1);
    osp_tensor *one = osp_t5_run(t, osp_contiguous(ids), osp_contiguous(mask));
    CHECK(close_elementwise("row 2 alone", one, osp_contiguous(osp_slice(out, 0, 2, 3, 1))));
    /* Row 1 (41 real tokens) alone attends to its 41 keys only; beside a
     * prompt with no real token every key stays (that row's weights spread
     * over all of them, as the reference's do): row 1 is the same. */
    osp_tensor *ids1 = osp_contiguous(osp_slice(input("input_ids"), 0, 1, 2, 1));
    osp_tensor *mask1 = osp_contiguous(osp_slice(input("attention_mask"), 0, 1, 2, 1));
    osp_tensor *want1 = osp_contiguous(osp_slice(out, 0, 1, 2, 1));
    CHECK(close_elementwise("row 1 alone", osp_t5_run(t, ids1, mask1), want1));
    int64_t L = ids1->shape[1], two[2] = {2, L};
    osp_tensor *ids2 = osp_tensor_new(OSP_I64, 2, two, OSP_DEVICE_CPU);
    osp_tensor *mask2 = osp_tensor_new(OSP_I64, 2, two, OSP_DEVICE_CPU);
    CHECK(ids2 && mask2 && ids1->dtype == OSP_I64 && mask1->dtype == OSP_I64);
    if (ids2 && mask2) {
        for (int r = 0; r < 2; r++)
            memcpy((int64_t *)osp_data(ids2) + r * L, osp_data(ids1), (size_t)L * sizeof(int64_t));
        memcpy(osp_data(mask2), osp_data(mask1), (size_t)L * sizeof(int64_t));
        memset((int64_t *)osp_data(mask2) + L, 0, (size_t)L * sizeof(int64_t));
        osp_tensor *pair = osp_t5_run(t, ids2, mask2);
        CHECK(pair && close_elementwise("row 1 beside an empty mask",
                                        osp_contiguous(osp_slice(pair, 0, 0, 1, 1)), want1));
    }
    /* A u8 mask (the stream's dtype) means the same. */
    osp_tensor *u8 = osp_cast(input("attention_mask"), OSP_U8);
    CHECK(close_elementwise("u8 mask", osp_t5_run(t, input("input_ids"), u8), out));
    osp_t5_free(t);
}

/* ---- the same weights in other files ---- */

typedef struct model_copy {
    int n;
    const char *names[64];
    osp_tensor *tensors[64];
} model_copy;

/* The fixture's tensors, optionally dropping one name and converting to
 * dtype (float tensors only). */
static bool read_fixture_model(model_copy *m, const char *drop, osp_dtype dtype)
{
    osp_model_dir *dir = osp_model_open(fixture_path(ENC));
    if (!dir)
        return false;
    m->n = 0;
    for (size_t i = 0; i < osp_model_tensor_count(dir) && m->n < 64; i++) {
        const char *name = osp_model_entry(dir, i)->name;
        if (drop && strcmp(name, drop) == 0)
            continue;
        m->names[m->n] = strdup(name);
        m->tensors[m->n++] = osp_tensor_to_dtype(osp_model_get_raw(dir, name), dtype);
    }
    osp_model_close(dir);
    return true;
}

static void free_model_copy(model_copy *m)
{
    for (int i = 0; i < m->n; i++)
        free((char *)m->names[i]);
    m->n = 0;
}

static bool copy_config(const char *dir)
{
    FILE *in = fopen(fixture_path(enc_file("config.json")), "rb");
    FILE *out = fopen(test_path(dir, "config.json"), "wb");
    char buf[4096];
    size_t n;
    bool ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out)
        ok = fclose(out) == 0 && ok;
    return ok;
}

static bool write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

TEST(either_tied_embedding_key)
{
    const char *drop[2] = {"encoder.embed_tokens.weight", "shared.weight"};
    for (int k = 0; k < 2; k++) {
        char *dir = test_tmpdir();
        model_copy m;
        CHECK(dir && copy_config(dir) && read_fixture_model(&m, drop[k], OSP_F32));
        CHECK(osp_safetensors_write(test_path(dir, "model.safetensors"), m.n, m.names,
                                    m.tensors, NULL) == OSP_OK);
        CHECK(check_output(dir, drop[k]));
        free_model_copy(&m);
        test_rmtree(dir);
        free(dir);
    }
}

/* Writes m as two shards plus an index whose weight_map names them; with
 * torch, as pytorch_model-0000N-of-00002.bin shards. */
static bool write_sharded(const char *dir, model_copy *m, bool torch)
{
    const char *stem = torch ? "pytorch_model" : "model", *ext = torch ? "bin" : "safetensors";
    char shard[2][64], index[64], *json = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&json, &len);
    fputs("{\"metadata\": {\"total_size\": 0}, \"weight_map\": {", f);
    int half = m->n / 2;
    bool ok = true;
    for (int s = 0; s < 2; s++) {
        snprintf(shard[s], sizeof shard[s], "%s-%05d-of-00002.%s", stem, s + 1, ext);
        int lo = s ? half : 0, hi = s ? m->n : half;
        for (int i = lo; i < hi; i++)
            fprintf(f, "%s\"%s\": \"%s\"", i ? ", " : "", m->names[i], shard[s]);
        const char *path = test_path(dir, shard[s]);
        ok = ok && (torch ? osp_torch_save(path, hi - lo, m->names + lo, m->tensors + lo, 0)
                          : osp_safetensors_write(path, hi - lo, m->names + lo, m->tensors + lo,
                                                  NULL)) == OSP_OK;
    }
    fputs("}}\n", f);
    fclose(f);
    snprintf(index, sizeof index, "%s.%s.index.json", stem, ext);
    ok = ok && write_text(test_path(dir, index), json);
    free(json);
    return ok;
}

TEST(sharded_safetensors_with_index)
{
    char *dir = test_tmpdir();
    model_copy m;
    CHECK(dir && copy_config(dir) && read_fixture_model(&m, NULL, OSP_F32));
    CHECK(write_sharded(dir, &m, false));
    CHECK(check_output(dir, "sharded safetensors"));
    free_model_copy(&m);
    test_rmtree(dir);
    free(dir);
}

TEST(pytorch_bin_shards_with_index)
{
    char *dir = test_tmpdir();
    model_copy m;
    CHECK(dir && copy_config(dir) && read_fixture_model(&m, NULL, OSP_F32));
    CHECK(write_sharded(dir, &m, true));
    CHECK(check_output(dir, "pytorch .bin shards"));
    free_model_copy(&m);
    test_rmtree(dir);
    free(dir);
}

/* bf16 weights stay bf16 in memory and are widened on use: the result
 * equals a float32 model holding the same (rounded) values. */
TEST(bf16_weights_widened_on_use)
{
    char *d16 = test_tmpdir(), *d32 = test_tmpdir();
    model_copy m;
    CHECK(d16 && d32 && copy_config(d16) && copy_config(d32));
    CHECK(read_fixture_model(&m, NULL, OSP_BF16));
    CHECK(osp_safetensors_write(test_path(d16, "model.safetensors"), m.n, m.names, m.tensors,
                                NULL) == OSP_OK);
    for (int i = 0; i < m.n; i++)
        m.tensors[i] = osp_tensor_to_dtype(m.tensors[i], OSP_F32);
    CHECK(osp_safetensors_write(test_path(d32, "model.safetensors"), m.n, m.names, m.tensors,
                                NULL) == OSP_OK);
    osp_t5 *a = load(d16), *b = load(d32);
    CHECK(a && b);
    if (a && b) {
        osp_tensor *ya = osp_t5_run(a, input("input_ids"), input("attention_mask"));
        osp_tensor *yb = osp_t5_run(b, input("input_ids"), input("attention_mask"));
        CHECK(ya && yb && test_max_abs_diff(ya, yb) <= 1e-5);
        /* and it is near the float32 fixture (bf16 rounding of the weights) */
        osp_tensor *want = fixture_tensor(enc_file("expected.safetensors"), "last_hidden_state");
        double rel = ya && want ? test_rel_error(ya, want) : 1;
        printf("#   bf16 weights: relative error %.3g against the f32 fixture\n", rel);
        CHECK(rel < 0.05);
    }
    osp_t5_free(a);
    osp_t5_free(b);
    free_model_copy(&m);
    test_rmtree(d16);
    test_rmtree(d32);
    free(d16);
    free(d32);
}

/* ---- bad inputs ---- */

TEST(bad_ids_and_masks)
{
    osp_t5 *t = load(fixture_path(ENC));
    CHECK(t != NULL);
    if (!t)
        return;
    const int64_t shape[2] = {1, 4}, other[2] = {1, 5};
    const int64_t good_ids[4] = {5, 6, 1, 0}, mask_v[4] = {1, 1, 1, 0};
    const int64_t big_ids[4] = {5, 384, 1, 0}, neg_ids[4] = {-1, 6, 1, 0};
    const int64_t bad_mask_v[4] = {1, 2, 1, 0};
    osp_tensor *ids = osp_tensor_from_data(OSP_I64, 2, shape, good_ids);
    osp_tensor *mask = osp_tensor_from_data(OSP_I64, 2, shape, mask_v);
    CHECK(osp_t5_run(t, ids, mask) != NULL);
    osp_error_clear();
    CHECK(!osp_t5_run(t, osp_tensor_from_data(OSP_I64, 2, shape, big_ids), mask));
    CHECK(osp_error_code() == OSP_ERR_DATA && strstr(osp_error_message(), "384"));
    CHECK(!osp_t5_run(t, osp_tensor_from_data(OSP_I64, 2, shape, neg_ids), mask));
    CHECK(!osp_t5_run(t, ids, osp_tensor_from_data(OSP_I64, 2, shape, bad_mask_v)));
    CHECK(strstr(osp_error_message(), "not 0 or 1") != NULL);
    CHECK(!osp_t5_run(t, ids, osp_tensor_zeros(OSP_I64, 2, other, OSP_DEVICE_CPU)));
    CHECK(!osp_t5_run(t, osp_cast(ids, OSP_F32), mask));
    osp_t5_free(t);
}

/* The fixture weights with a config.json whose `key` is set to `value`
 * (raw JSON). */
static osp_t5 *load_with_config(const char *key, const char *value)
{
    FILE *in = fopen(fixture_path(enc_file("config.json")), "rb");
    char text[4096];
    size_t n = in ? fread(text, 1, sizeof text - 1, in) : 0;
    if (in)
        fclose(in);
    text[n] = 0;
    /* replace `"key": <old>` up to the next ',' or '\n' */
    char pattern[128], edited[4096];
    snprintf(pattern, sizeof pattern, "\"%s\": ", key);
    char *at = strstr(text, pattern);
    if (!at)
        return NULL;
    char *end = at + strlen(pattern);
    end += strcspn(end, ",\n");
    snprintf(edited, sizeof edited, "%.*s%s%s%s", (int)(at - text), text, pattern, value, end);
    char *dir = test_tmpdir();
    model_copy m;
    osp_t5 *t = NULL;
    if (dir && write_text(test_path(dir, "config.json"), edited) &&
        read_fixture_model(&m, NULL, OSP_F32)) {
        if (osp_safetensors_write(test_path(dir, "model.safetensors"), m.n, m.names, m.tensors,
                                  NULL) == OSP_OK)
            t = osp_t5_load(dir, OSP_DEVICE_CPU);
        free_model_copy(&m);
    }
    test_rmtree(dir);
    free(dir);
    return t;
}

TEST(config_and_weights_disagree)
{
    osp_t5 *t;
    CHECK(!(t = load_with_config("num_layers", "2")));
    CHECK(osp_error_code() == OSP_ERR_DATA && strstr(osp_error_message(), "unexpected tensor"));
    osp_t5_free(t);
    CHECK(!(t = load_with_config("num_layers", "4")));
    CHECK(strstr(osp_error_message(), "encoder.block.3") != NULL);
    osp_t5_free(t);
    CHECK(!(t = load_with_config("d_model", "64")));
    CHECK(strstr(osp_error_message(), "shape") != NULL);
    osp_t5_free(t);
    CHECK(!(t = load_with_config("d_ff", "100")));
    osp_t5_free(t);
    CHECK(!(t = load_with_config("is_gated_act", "false")));
    osp_t5_free(t);
    CHECK(!(t = load_with_config("dense_act_fn", "\"relu\"")));
    CHECK(strstr(osp_error_message(), "not supported") != NULL);
    osp_t5_free(t);
    CHECK(!(t = load_with_config("relative_attention_num_buckets", "16")));
    osp_t5_free(t);
    CHECK(!(t = load_with_config("num_heads", "0")));
    osp_t5_free(t);
    /* and an unedited copy loads */
    CHECK((t = load_with_config("vocab_size", "384")) != NULL);
    osp_t5_free(t);
}

int main(void)
{
    RUN(bucket_table_exact);
    RUN(bucket_matrix_and_position_bias);
    RUN(fixture_blocks_and_output);
    RUN(either_tied_embedding_key);
    RUN(sharded_safetensors_with_index);
    RUN(pytorch_bin_shards_with_index);
    RUN(bf16_weights_widened_on_use);
    RUN(bad_ids_and_masks);
    RUN(config_and_weights_disagree);
    return test_summary();
}
