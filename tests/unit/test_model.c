/* test_model.c — model folders: single-file and sharded layouts (built here
 * with the safetensors writer), dtype conversion and shape checks on fetch,
 * malformed indexes, and the fixture folders. */
#include "test.h"
#include "tmpdir.h"

#include "io/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static osp_tensor *random_half(int ndim, const int64_t *shape)
{
    osp_tensor *f = test_random(ndim, shape, -2, 2);
    return osp_tensor_to_dtype(f, OSP_F16);
}

/* Writes a two-shard model in dir: a.weight [3,4] f16 and a.bias [3] f32
 * in shard 1, b.weight [2,2] bf16 in shard 2, with an index and config. */
static void write_sharded(const char *dir, osp_tensor **ts)
{
    int64_t s1[2] = {3, 4}, s2[1] = {3}, s3[2] = {2, 2};
    ts[0] = random_half(2, s1);
    ts[1] = test_random(1, s2, -1, 1);
    ts[2] = osp_tensor_to_dtype(test_random(2, s3, -1, 1), OSP_BF16);
    const char *n1[2] = {"a.weight", "a.bias"}, *n2[1] = {"b.weight"};
    CHECK(osp_safetensors_write(test_path(dir, "model-00001-of-00002.safetensors"), 2, n1, ts,
                                NULL) == OSP_OK);
    CHECK(osp_safetensors_write(test_path(dir, "model-00002-of-00002.safetensors"), 1, n2, ts + 2,
                                NULL) == OSP_OK);
    write_text(test_path(dir, "model.safetensors.index.json"),
               "{\"metadata\": {\"total_size\": 68}, \"weight_map\": {"
               "\"b.weight\": \"model-00002-of-00002.safetensors\","
               "\"a.weight\": \"model-00001-of-00002.safetensors\","
               "\"a.bias\": \"model-00001-of-00002.safetensors\"}}");
    write_text(test_path(dir, "config.json"), "{\"d_model\": 4}");
}

TEST(sharded_folder)
{
    char *dir = test_tmpdir();
    osp_tensor *ts[3];
    write_sharded(dir, ts);
    osp_model_dir *m = osp_model_open(dir);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(osp_model_tensor_count(m) == 3);
    int64_t d;
    CHECK(osp_model_config(m) && osp_config_int(osp_model_config(m), "d_model", &d) == OSP_OK &&
          d == 4);
    /* shard then file order (f32 before f16 inside shard 1: largest first) */
    CHECK(strcmp(osp_model_entry(m, 0)->name, "a.bias") == 0);
    CHECK(strcmp(osp_model_entry(m, 2)->name, "b.weight") == 0);
    CHECK(osp_model_entry(m, 3) == NULL);
    const osp_st_entry *e = osp_model_find(m, "b.weight");
    CHECK(e && e->dtype == OSP_BF16 && e->ndim == 2);

    osp_tensor *raw = osp_model_get_raw(m, "a.weight");
    CHECK(raw && raw->dtype == OSP_F16 && memcmp(osp_data(raw), osp_data(ts[0]), 24) == 0);
    int64_t want[2] = {3, 4};
    osp_tensor *w = osp_model_get(m, "a.weight", OSP_F32, 2, want);
    osp_tensor *expect = osp_tensor_to_dtype(ts[0], OSP_F32);
    CHECK(w && w->dtype == OSP_F32 && test_max_abs_diff(w, expect) == 0);
    osp_tensor *bias = osp_model_get(m, "a.bias", OSP_F32, -1, NULL); /* no shape check */
    CHECK(bias && test_max_abs_diff(bias, ts[1]) == 0);

    int64_t wrong[2] = {4, 3};
    CHECK(osp_model_get(m, "a.weight", OSP_F32, 2, wrong) == NULL);
    CHECK(strstr(osp_error_message(), "tensor 'a.weight' has shape [3, 4], expected [4, 3]"));
    CHECK(osp_model_get(m, "a.weight", OSP_F32, 1, wrong) == NULL);
    CHECK(osp_model_get(m, "nope", OSP_F32, -1, NULL) == NULL);
    CHECK(strstr(osp_error_message(), "no tensor 'nope'"));
    CHECK(osp_model_get_raw(m, "nope") == NULL);
    osp_model_close(m);
    test_rmtree(dir);
    free(dir);
}

static void expect_open_error(const char *dir, const char *text)
{
    osp_model_dir *m = osp_model_open(dir);
    CHECK(m == NULL);
    if (!strstr(osp_error_message(), text)) {
        printf("#   expected '%s'\n", text);
        CHECK(strstr(osp_error_message(), text) != NULL);
    }
    osp_model_close(m);
}

TEST(malformed_indexes)
{
    char *dir = test_tmpdir();
    osp_tensor *ts[3];
    write_sharded(dir, ts);
    const char *index = test_path(dir, "model.safetensors.index.json");
    static const struct { const char *json, *error; } cases[] = {
        {"{\"weight_map\": {\"a.weight\": \"../model-00001-of-00002.safetensors\"}}",
         "maps to an invalid shard name"},
        {"{\"weight_map\": {\"a.weight\": \"/etc/passwd\"}}", "maps to an invalid shard name"},
        {"{\"weight_map\": {\"a.weight\": \"..\"}}", "maps to an invalid shard name"},
        {"{\"weight_map\": {\"a.weight\": 3}}", "maps to an invalid shard name"},
        {"{\"weight_map\": {\"a.weight\": \"missing.safetensors\"}}",
         "lists shard missing.safetensors"},
        {"{\"weight_map\": {\"a.weight\": \"model-00002-of-00002.safetensors\"}}",
         "tensor 'a.weight' is not in shard model-00002-of-00002.safetensors"},
        {"{\"weight_map\": {\"zzz\": \"model-00002-of-00002.safetensors\"}}",
         "tensor 'zzz' is not in shard"},
        {"{\"weight_map\": {}}", "weight_map must be a non-empty object"},
        {"{\"other\": 1}", "weight_map must be a non-empty object"},
        {"{\"weight_map\": ", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", index);
        write_text(copy, cases[i].json);
        expect_open_error(dir, cases[i].error);
    }
    /* one tensor in two shards */
    write_text(index, "{\"weight_map\": {\"x\": \"model-00001-of-00002.safetensors\","
                      "\"y\": \"model-00002-of-00002.safetensors\"}}");
    const char *dup[1] = {"a.bias"};
    CHECK(osp_safetensors_write(test_path(dir, "model-00002-of-00002.safetensors"), 1, dup,
                                ts + 1, NULL) == OSP_OK);
    expect_open_error(dir, "tensor 'a.bias' is in two shards");
    test_rmtree(dir);
    free(dir);
}

TEST(which_weights_a_folder_means)
{
    char *dir = test_tmpdir();
    int64_t shape[1] = {2};
    osp_tensor *t = test_random(1, shape, -1, 1);
    const char *name = "w";
    expect_open_error(dir, "no *.safetensors weights in this folder");

    CHECK(osp_safetensors_write(test_path(dir, "one.safetensors"), 1, &name, &t, NULL) == OSP_OK);
    osp_model_dir *m = osp_model_open(dir); /* the only one */
    CHECK(m && osp_model_tensor_count(m) == 1 && osp_model_config(m) == NULL);
    osp_model_close(m);

    CHECK(osp_safetensors_write(test_path(dir, "two.safetensors"), 1, &name, &t, NULL) == OSP_OK);
    expect_open_error(dir, "several *.safetensors files");

    const char *names[2] = {"p", "q"};
    osp_tensor *ts[2] = {t, t};
    CHECK(osp_safetensors_write(test_path(dir, "diffusion_pytorch_model.safetensors"), 2, names,
                                ts, NULL) == OSP_OK);
    m = osp_model_open(dir); /* the preferred name wins */
    CHECK(m && osp_model_tensor_count(m) == 2 && osp_model_find(m, "q"));
    osp_model_close(m);

    m = osp_model_open(test_path(dir, "two.safetensors")); /* a file directly */
    CHECK(m && osp_model_tensor_count(m) == 1 && osp_model_find(m, "w"));
    osp_model_close(m);

    write_text(test_path(dir, "config.json"), "{broken");
    expect_open_error(dir, "config.json: not valid JSON");
    expect_open_error(test_path(dir, "absent"), "cannot open model");
    test_rmtree(dir);
    free(dir);
}

TEST(fixture_folders)
{
    static const struct { const char *dir, *name; int count; } cases[] = {
        {"vae/model", "decoder.conv_in.conv.bias", 176},
        {"t5/encoder", "encoder.block.0.layer.0.SelfAttention.k.weight", 31},
        {"latte/tiny_a", "adaln_single.emb.timestep_embedder.linear_1.bias", 84},
        {"vae/wide/model", "decoder.conv_in.conv.bias", 244},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", test_fixtures_dir(), cases[i].dir);
        osp_model_dir *m = osp_model_open(path);
        CHECK(m != NULL);
        if (!m)
            continue;
        CHECK((int)osp_model_tensor_count(m) == cases[i].count);
        CHECK(osp_model_config(m) != NULL);
        const osp_st_entry *e = osp_model_find(m, cases[i].name);
        CHECK(e != NULL);
        osp_tensor *t = e ? osp_model_get(m, cases[i].name, OSP_F32, e->ndim, e->shape) : NULL;
        CHECK(t && t->dtype == OSP_F32 && osp_numel(t) > 0 && isfinite(osp_f32(t)[0]));
        osp_model_close(m);
    }
}

int main(void)
{
    RUN(sharded_folder);
    RUN(malformed_indexes);
    RUN(which_weights_a_folder_means);
    RUN(fixture_folders);
    return test_summary();
}
