/* test_inflate.c — tail initialisation (spec/causalvae.md section 9)
 * against fixtures/vae/inflate: the 2D key and rule of all 244 3D keys of
 * its config (key_map.json), the 3D parameter list of osp_vae_init for that
 * config, and the inflated tensors of the 27-tensor subset, exactly. */
#include "test.h"
#include "fixture.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "io/model.h"
#include "io/safetensors.h"
#include "models/causalvae.h"
#include "nn/params.h"

static cJSON *load_key_map(void)
{
    FILE *f = fopen(fixture_path("vae/inflate/key_map.json"), "rb");
    if (!f)
        return NULL;
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return cJSON_Parse(text);
}

TEST(every_key_maps_as_the_fixture_says)
{
    cJSON *map = load_key_map();
    osp_config *conf = osp_config_load(fixture_path("vae/inflate/config.json"));
    osp_vae *v = conf ? osp_vae_init(conf, OSP_DEVICE_CPU, 3) : NULL;
    CHECK(map && cJSON_IsArray(map) && v);
    if (!map || !v)
        goto done;
    const osp_params *p = osp_vae_params(v);
    CHECK((size_t)cJSON_GetArraySize(map) == p->n);
    int bad = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, map)
    {
        const char *k3 = cJSON_GetStringValue(cJSON_GetObjectItem(e, "key3d"));
        const char *k2 = cJSON_GetStringValue(cJSON_GetObjectItem(e, "key2d"));
        const char *rule = cJSON_GetStringValue(cJSON_GetObjectItem(e, "rule"));
        const cJSON *s3 = cJSON_GetObjectItem(e, "shape3d");
        char got[512];
        osp_tensor *t = k3 ? osp_params_find(p, k3) : NULL;
        if (!k2 || !rule || !t || osp_vae_inflate_key(k3, got, sizeof got) || strcmp(got, k2)) {
            bad++;
            continue;
        }
        /* the rule follows from the 3D rank and kernel length */
        const char *want = t->ndim == 1 ? "copy" : t->shape[2] == 1 ? "unsqueeze_t" : "tail";
        bad += strcmp(rule, want) != 0 || cJSON_GetArraySize(s3) != t->ndim;
        for (int d = 0; d < t->ndim && d < cJSON_GetArraySize(s3); d++)
            bad += (int64_t)cJSON_GetArrayItem(s3, d)->valuedouble != t->shape[d];
    }
    CHECK(bad == 0);
    char k2[512];
    CHECK(osp_vae_inflate_key("encoder.down.0.downsample.conv.conv.weight", k2, sizeof k2) ==
              OSP_OK &&
          strcmp(k2, "encoder.down.0.downsample.conv.weight") == 0);
done:
    osp_vae_free(v);
    osp_config_free(conf);
    cJSON_Delete(map);
}

TEST(inflated_tensors_match_exactly)
{
    osp_model_dir *src = osp_model_open(fixture_path("vae/inflate/vae2d_subset.safetensors"));
    osp_safetensors *want = osp_safetensors_open(
        fixture_path("vae/inflate/expected3d_subset.safetensors"));
    CHECK(src && want);
    if (!src || !want)
        goto done;
    size_t n = osp_safetensors_count(want), exact = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k3 = osp_safetensors_entry(want, i)->name;
        osp_tensor *w = osp_tensor_to_dtype(osp_safetensors_get(want, k3), OSP_F32);
        osp_tensor *got = w ? osp_vae_inflate_tensor(src, k3, w) : NULL;
        if (got && osp_same_shape(got, w) &&
            memcmp(osp_f32(got), osp_f32(w), (size_t)osp_numel(w) * sizeof(float)) == 0)
            exact++;
        else
            printf("#   %s: %s\n", k3, got ? "differs" : osp_error_message());
    }
    printf("#   %zu of %zu inflated tensors identical\n", exact, n);
    CHECK(n == 27 && exact == n);
    /* a missing 2D key is an error naming it */
    int64_t shape[] = {4};
    osp_tensor *like = osp_full(OSP_F32, 1, shape, OSP_DEVICE_CPU, 0.0);
    CHECK(osp_vae_inflate_tensor(src, "decoder.no_such.conv.bias", like) == NULL);
    CHECK(strstr(osp_error_message(), "decoder.no_such.bias") != NULL);
done:
    osp_safetensors_close(want);
    osp_model_close(src);
}

int main(void)
{
    RUN(every_key_maps_as_the_fixture_says);
    RUN(inflated_tensors_match_exactly);
    return test_summary();
}
