/* test_inflate.c — tail initialisation (spec/causalvae.md section 9)
 * against fixtures/vae/inflate: the 2D key and rule of all 244 3D keys of
 * its config (key_map.json), the 3D parameter list of osp_vae_init for that
 * config, and the inflated tensors of the 27-tensor subset, exactly; and
 * the diffusers naming against the state-dict keys of a real diffusers
 * AutoencoderKL (tests/data/vae2d/keys.json, tests/data/vae2d/make.py). */
#include "test.h"
#include "fixture.h"
#include "tmpdir.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "io/model.h"
#include "io/safetensors.h"
#include "models/causalvae.h"
#include "nn/params.h"

static cJSON *load_json(const char *path)
{
    FILE *f = fopen(path, "rb");
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
    cJSON *map = load_json(fixture_path("vae/inflate/key_map.json"));
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
    osp_vae2d s2 = osp_vae2d_of(src, 4);
    CHECK(s2.naming == OSP_VAE2D_LDM);
    size_t n = osp_safetensors_count(want), exact = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k3 = osp_safetensors_entry(want, i)->name;
        osp_tensor *w = osp_tensor_to_dtype(osp_safetensors_get(want, k3), OSP_F32);
        osp_tensor *got = w ? osp_vae_inflate_tensor(&s2, k3, w) : NULL;
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
    CHECK(osp_vae_inflate_tensor(&s2, "decoder.no_such.conv.bias", like) == NULL);
    CHECK(strstr(osp_error_message(), "decoder.no_such.bias") != NULL);
done:
    osp_safetensors_close(want);
    osp_model_close(src);
}

/* Every 3D key of keys.json's config maps to a key of the diffusers state
 * dict with the 2D shape (attention projections: Linear [C, C]), and every
 * diffusers key is hit exactly once. */
TEST(diffusers_names_cover_an_autoencoderkl)
{
    cJSON *doc = load_json("tests/data/vae2d/keys.json");
    const cJSON *keys = cJSON_GetObjectItem(doc, "keys");
    char *conf_text = cJSON_PrintUnformatted(cJSON_GetObjectItem(doc, "config3d"));
    osp_config *conf = conf_text ? osp_config_parse(conf_text, strlen(conf_text), "keys.json")
                                 : NULL;
    osp_vae *v = conf ? osp_vae_init(conf, OSP_DEVICE_CPU, 3) : NULL;
    CHECK(keys && v);
    if (!keys || !v)
        goto done;
    const osp_params *p = osp_vae_params(v);
    int levels = osp_vae_get_config(v)->levels, bad = 0, hits = 0;
    for (size_t i = 0; i < p->n; i++) {
        char ldm[512], k2[512];
        const osp_tensor *t = p->tensors[i];
        const cJSON *shape = NULL;
        if (osp_vae_inflate_key(p->names[i], ldm, sizeof ldm) == OSP_OK &&
            osp_vae_diffusers_key(ldm, levels, false, k2, sizeof k2) == OSP_OK)
            shape = cJSON_GetObjectItem(keys, k2);
        int n2 = cJSON_GetArraySize(shape);
        bool linear = n2 == 2 && t->ndim == 5 && t->shape[3] == 1 && t->shape[4] == 1;
        bool ok = shape && (t->ndim == 1 ? n2 == 1 : n2 == 4 || linear);
        for (int d = 0; ok && d < n2; d++) /* [Co, Ci, kh, kw] of [Co, Ci, kt, kh, kw] */
            ok = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble ==
                 t->shape[d < 2 || t->ndim == 1 ? d : d + 1];
        if (!ok) {
            printf("#   %s -> %s: not in the diffusers state dict as such\n", p->names[i], k2);
            bad++;
        } else if (cJSON_IsArray(shape)) { /* first hit: mark it */
            cJSON_ReplaceItemInObject((cJSON *)keys, k2, cJSON_CreateTrue());
            hits++;
        }
    }
    printf("#   %d of %zu 3D keys found, %d diffusers keys\n", hits, p->n,
           cJSON_GetArraySize(keys));
    CHECK(bad == 0 && hits == cJSON_GetArraySize(keys) && (size_t)hits == p->n);
    /* older diffusers files name the attention projections otherwise */
    char k2[512];
    CHECK(osp_vae_diffusers_key("decoder.mid.attn_1.proj_out.weight", 4, true, k2, sizeof k2) ==
              OSP_OK &&
          strcmp(k2, "decoder.mid_block.attentions.0.proj_attn.weight") == 0);
    CHECK(osp_vae_diffusers_key("encoder.mid.attn_1.q.bias", 4, true, k2, sizeof k2) == OSP_OK &&
          strcmp(k2, "encoder.mid_block.attentions.0.query.bias") == 0);
    CHECK(osp_vae_diffusers_key("decoder.up.3.block.2.nin_shortcut.weight", 4, false, k2,
                                sizeof k2) == OSP_OK &&
          strcmp(k2, "decoder.up_blocks.0.resnets.2.conv_shortcut.weight") == 0);
done:
    osp_vae_free(v);
    osp_config_free(conf);
    free(conf_text);
    cJSON_Delete(doc);
}

/* osp_vae_init_2d on the diffusers folder of tests/data/vae2d, and on a
 * copy of its weights with an extra tensor: loss.* is ignored, any other
 * tensor without a 3D counterpart is an error naming it. */
static osp_vae *init_with_extra(const char *dir, const char *extra)
{
    osp_model_dir *m = osp_model_open("tests/data/vae2d/model");
    size_t n = m ? osp_model_tensor_count(m) : 0;
    const char *names[512];
    osp_tensor *ts[512];
    for (size_t i = 0; i < n && i < 511; i++) {
        names[i] = osp_model_entry(m, i)->name;
        ts[i] = osp_model_get_raw(m, names[i]);
    }
    names[n] = extra;
    ts[n] = n ? ts[0] : NULL;
    const char *path = test_path(dir, "vae2d.safetensors");
    osp_config *conf = osp_config_load("tests/data/vae2d/config3d.json");
    osp_vae *v = m && n < 511 && conf &&
                         osp_safetensors_write(path, (int)n + 1, names, ts, NULL) == OSP_OK
                     ? osp_vae_init_2d(conf, path)
                     : NULL;
    osp_config_free(conf);
    osp_model_close(m);
    return v;
}

TEST(unmatched_2d_tensors_are_an_error)
{
    char *dir = test_tmpdir();
    osp_config *conf = osp_config_load("tests/data/vae2d/config3d.json");
    osp_vae *v = conf ? osp_vae_init_2d(conf, "tests/data/vae2d/model") : NULL;
    CHECK(v != NULL);
    osp_vae_free(v);
    v = dir ? init_with_extra(dir, "loss.logvar") : NULL;
    CHECK(v != NULL);
    osp_vae_free(v);
    v = dir ? init_with_extra(dir, "decoder.up_blocks.4.resnets.0.norm1.weight") : NULL;
    CHECK(v == NULL && osp_error_code() == OSP_ERR_DATA &&
          strstr(osp_error_message(), "'decoder.up_blocks.4.resnets.0.norm1.weight' has no "
                                      "counterpart") != NULL);
    osp_vae_free(v);
    osp_config_free(conf);
    if (dir)
        test_rmtree(dir);
    free(dir);
}

int main(void)
{
    RUN(every_key_maps_as_the_fixture_says);
    RUN(inflated_tensors_match_exactly);
    RUN(diffusers_names_cover_an_autoencoderkl);
    RUN(unmatched_2d_tensors_are_an_error);
    return test_summary();
}
