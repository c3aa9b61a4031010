/* test_config.c — config.json getters: types, ranges, fallbacks, dotted
 * paths, and errors that name the file and key. */
#include "test.h"
#include "tmpdir.h"

#include "io/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const text =
    "{\n"
    "  \"num_layers\": 28, \"norm_eps\": 1e-06, \"dropout\": 0.0,\n"
    "  \"attention_bias\": true, \"activation_fn\": \"gelu-approximate\",\n"
    "  \"sample_size\": [8, 12], \"blocks\": [\"Resnet\", \"\", \"Attn\"],\n"
    "  \"num_vector_embeds\": null, \"fraction\": 2.5, \"huge\": 1e300,\n"
    "  \"big\": 9007199254740992, \"negative\": -7, \"empty\": [],\n"
    "  \"loss_params\": {\"disc_start\": 2001, \"kl\": {\"weight\": 1e-06}},\n"
    "  \"a.b\": 1\n"
    "}\n";

static osp_config *parsed(void)
{
    return osp_config_parse(text, strlen(text), "tiny/config.json");
}

#define CHECK_KEY_ERROR(call, key, what)                                                  \
    do {                                                                                  \
        CHECK((call) == OSP_ERR_DATA);                                                    \
        CHECK(strstr(osp_error_message(), "tiny/config.json: key '" key "': " what) != NULL); \
    } while (0)

TEST(typed_getters)
{
    osp_config *c = parsed();
    CHECK(c != NULL);
    int64_t i;
    double f;
    bool b;
    const char *s;
    CHECK(osp_config_int(c, "num_layers", &i) == OSP_OK && i == 28);
    CHECK(osp_config_int(c, "negative", &i) == OSP_OK && i == -7);
    CHECK(osp_config_int(c, "big", &i) == OSP_OK && i == 9007199254740992ll);
    CHECK(osp_config_float(c, "norm_eps", &f) == OSP_OK && f == 1e-06);
    CHECK(osp_config_float(c, "num_layers", &f) == OSP_OK && f == 28); /* ints are numbers */
    CHECK(osp_config_bool_or(c, "attention_bias", false, &b) == OSP_OK && b);
    CHECK(osp_config_str(c, "activation_fn", &s) == OSP_OK && strcmp(s, "gelu-approximate") == 0);
    CHECK(osp_config_has(c, "dropout") && !osp_config_has(c, "num_vector_embeds"));
    CHECK(!osp_config_has(c, "absent"));
    CHECK(strcmp(osp_config_label(c), "tiny/config.json") == 0);
    osp_config_free(c);
}

TEST(fallbacks_for_absent_and_null)
{
    osp_config *c = parsed();
    int64_t i;
    double f;
    bool b;
    const char *s;
    CHECK(osp_config_int_or(c, "absent", 4, &i) == OSP_OK && i == 4);
    CHECK(osp_config_int_or(c, "num_vector_embeds", 5, &i) == OSP_OK && i == 5);
    CHECK(osp_config_int_or(c, "num_layers", 5, &i) == OSP_OK && i == 28);
    CHECK(osp_config_float_or(c, "absent", 0.5, &f) == OSP_OK && f == 0.5);
    CHECK(osp_config_bool_or(c, "absent", true, &b) == OSP_OK && b);
    CHECK(osp_config_str_or(c, "absent", "default", &s) == OSP_OK && strcmp(s, "default") == 0);
    /* present with the wrong type is still an error */
    CHECK_KEY_ERROR(osp_config_int_or(c, "activation_fn", 1, &i), "activation_fn",
                    "expected an integer, found a string");
    CHECK_KEY_ERROR(osp_config_bool_or(c, "num_layers", false, &b), "num_layers",
                    "expected true or false, found a number");
    osp_config_free(c);
}

TEST(errors_name_file_and_key)
{
    osp_config *c = parsed();
    int64_t i;
    double f;
    const char *s;
    CHECK_KEY_ERROR(osp_config_int(c, "absent", &i), "absent", "missing");
    CHECK_KEY_ERROR(osp_config_int(c, "num_vector_embeds", &i), "num_vector_embeds", "missing");
    CHECK_KEY_ERROR(osp_config_int(c, "fraction", &i), "fraction",
                    "expected an integer, found a fraction");
    CHECK_KEY_ERROR(osp_config_int(c, "huge", &i), "huge", "integer out of range");
    CHECK_KEY_ERROR(osp_config_int(c, "sample_size", &i), "sample_size",
                    "expected an integer, found an array");
    CHECK_KEY_ERROR(osp_config_float(c, "activation_fn", &f), "activation_fn",
                    "expected a number, found a string");
    CHECK_KEY_ERROR(osp_config_str(c, "num_layers", &s), "num_layers",
                    "expected a string, found a number");
    CHECK_KEY_ERROR(osp_config_str(c, "loss_params", &s), "loss_params",
                    "expected a string, found an object");
    osp_config_free(c);
}

TEST(arrays)
{
    osp_config *c = parsed();
    int64_t ints[4];
    const char *strs[4];
    size_t n;
    CHECK(osp_config_int_array(c, "sample_size", ints, 4, &n) == OSP_OK && n == 2 &&
          ints[0] == 8 && ints[1] == 12);
    CHECK(osp_config_str_array(c, "blocks", strs, 4, &n) == OSP_OK && n == 3 &&
          strcmp(strs[1], "") == 0 && strcmp(strs[2], "Attn") == 0);
    CHECK(osp_config_int_array(c, "empty", ints, 4, &n) == OSP_OK && n == 0);
    CHECK_KEY_ERROR(osp_config_int_array(c, "sample_size", ints, 1, &n), "sample_size",
                    "2 elements, at most 1 expected");
    CHECK_KEY_ERROR(osp_config_int_array(c, "blocks", ints, 4, &n), "blocks",
                    "expected an integer, found a string");
    CHECK_KEY_ERROR(osp_config_str_array(c, "num_layers", strs, 4, &n), "num_layers",
                    "expected an array, found a number");
    CHECK_KEY_ERROR(osp_config_str_array(c, "absent", strs, 4, &n), "absent", "missing");
    osp_config_free(c);
}

TEST(dotted_paths_reach_nested_objects)
{
    osp_config *c = parsed();
    int64_t i;
    double f;
    CHECK(osp_config_int(c, "loss_params.disc_start", &i) == OSP_OK && i == 2001);
    CHECK(osp_config_float(c, "loss_params.kl.weight", &f) == OSP_OK && f == 1e-06);
    CHECK(osp_config_int(c, "a.b", &i) == OSP_OK && i == 1); /* exact key first */
    CHECK(!osp_config_has(c, "loss_params.absent") && !osp_config_has(c, "num_layers.x"));
    CHECK(!osp_config_has(c, "loss_params.") && !osp_config_has(c, ".loss_params"));
    osp_config_free(c);
}

TEST(invalid_documents)
{
    static const struct { const char *json, *error; } cases[] = {
        {"", "not valid JSON"},
        {"{\"a\": 1", "not valid JSON"},
        {"{\"a\": 1} x", "unexpected bytes after the JSON object"},
        {"[1, 2]", "expected a JSON object at the top level"},
        {"\"text\"", "expected a JSON object at the top level"},
        {"{\"a\": tru}", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        osp_config *c = osp_config_parse(cases[i].json, strlen(cases[i].json), "bad.json");
        CHECK(c == NULL);
        CHECK(osp_error_code() == OSP_ERR_DATA);
        CHECK(strstr(osp_error_message(), "bad.json: ") == osp_error_message());
        CHECK(strstr(osp_error_message(), cases[i].error) != NULL);
    }
    /* the length bounds the parse: no NUL terminator needed */
    osp_config *c = osp_config_parse("{\"a\": 1}garbage", 8, "cut");
    int64_t v;
    CHECK(c && osp_config_int(c, "a", &v) == OSP_OK && v == 1);
    osp_config_free(c);
}

TEST(load_files)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/vae/model/config.json", test_fixtures_dir());
    osp_config *c = osp_config_load(path);
    CHECK(c != NULL);
    int64_t i, mult[8];
    size_t n;
    const char *s;
    CHECK(c && osp_config_int(c, "z_channels", &i) == OSP_OK && i == 4);
    CHECK(c && osp_config_int_array(c, "hidden_size_mult", mult, 8, &n) == OSP_OK && n == 4);
    CHECK(c && osp_config_str(c, "_class_name", &s) == OSP_OK && strcmp(s, "CausalVAEModel") == 0);
    CHECK(c && osp_config_int(c, "loss_params.disc_start", &i) == OSP_OK && i == 2001);
    osp_config_free(c);

    CHECK(osp_config_load("/nonexistent/config.json") == NULL);
    CHECK(osp_error_code() == OSP_ERR_IO);
    CHECK(strstr(osp_error_message(), "/nonexistent/config.json") != NULL);
    char *dir = test_tmpdir();
    FILE *f = fopen(test_path(dir, "config.json"), "w");
    fputs("{\"a\": [1, 2,]}", f);
    fclose(f);
    CHECK(osp_config_load(test_path(dir, "config.json")) == NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA);
    CHECK(strstr(osp_error_message(), "config.json: not valid JSON") != NULL);
    test_rmtree(dir);
    free(dir);
}

int main(void)
{
    RUN(typed_getters);
    RUN(fallbacks_for_absent_and_null);
    RUN(errors_name_file_and_key);
    RUN(arrays);
    RUN(dotted_paths_reach_nested_objects);
    RUN(invalid_documents);
    RUN(load_files);
    return test_summary();
}
