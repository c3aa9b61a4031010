/* test_params.c — fresh random parameters (params.h random_init) through
 * osp_vae_init: the same names and shapes as a loaded checkpoint of the
 * same config, the documented initial values, determinism per seed. */
#include "test.h"
#include "fixture.h"

#include <string.h>

#include "backend/ops.h"
#include "io/model.h"
#include "models/causalvae.h"
#include "nn/params.h"

TEST(vae_init_matches_the_checkpoint_layout)
{
    osp_vae *loaded = osp_vae_load(fixture_path("vae/model"), OSP_DEVICE_CPU);
    osp_model_dir *dir = osp_model_open(fixture_path("vae/model"));
    if (!loaded || !dir) {
        printf("#   fixtures/vae/model: %s\n", osp_error_message());
        CHECK(false);
        osp_vae_free(loaded);
        osp_model_close(dir);
        return;
    }
    osp_vae *a = osp_vae_init(osp_model_config(dir), OSP_DEVICE_CPU, 7);
    osp_vae *b = osp_vae_init(osp_model_config(dir), OSP_DEVICE_CPU, 7);
    osp_vae *c = osp_vae_init(osp_model_config(dir), OSP_DEVICE_CPU, 8);
    CHECK(a && b && c);
    if (a && b && c) {
        const osp_params *pl = osp_vae_params(loaded), *pa = osp_vae_params(a);
        const osp_params *pb = osp_vae_params(b), *pc = osp_vae_params(c);
        CHECK(pa->n == pl->n);
        int differ = 0;
        for (size_t i = 0; i < pa->n && i < pl->n; i++) {
            osp_tensor *t = pa->tensors[i];
            CHECK(strcmp(pa->names[i], pl->names[i]) == 0);
            CHECK(osp_same_shape(t, pl->tensors[i]));
            CHECK(memcmp(osp_f32(t), osp_f32(pb->tensors[i]), osp_numel(t) * 4) == 0);
            differ += memcmp(osp_f32(t), osp_f32(pc->tensors[i]), osp_numel(t) * 4) != 0;
            const float *x = osp_f32(t);
            int64_t n = osp_numel(t);
            size_t len = strlen(pa->names[i]);
            if (t->ndim == 1) { /* biases 0, norm scales 1 */
                float want = strcmp(pa->names[i] + len - 5, ".bias") == 0 ? 0.0f : 1.0f;
                for (int64_t j = 0; j < n; j++)
                    CHECK(x[j] == want);
            } else { /* N(0, 1/fan_in): the second moment times fan_in is ~1 */
                double m2 = 0;
                for (int64_t j = 0; j < n; j++)
                    m2 += (double)x[j] * x[j];
                double fan_in = (double)n / (double)t->shape[0];
                if (n >= 4096)
                    CHECK_NEAR(m2 / n * fan_in, 1.0, 0.1);
            }
        }
        int weights = 0;
        for (size_t i = 0; i < pa->n; i++)
            weights += pa->tensors[i]->ndim > 1;
        CHECK(differ == weights); /* another seed changes every weight, not the constants */
    }
    osp_vae_free(a);
    osp_vae_free(b);
    osp_vae_free(c);
    osp_vae_free(loaded);
    osp_model_close(dir);
}

TEST(a_fresh_vae_runs)
{
    osp_model_dir *dir = osp_model_open(fixture_path("vae/model"));
    osp_vae *v = dir ? osp_vae_init(osp_model_config(dir), OSP_DEVICE_CPU, 1) : NULL;
    CHECK(v);
    if (v) {
        int64_t shape[] = {1, 3, 5, 16, 16};
        osp_tensor *x = osp_full(OSP_F32, 5, shape, OSP_DEVICE_CPU, 0.0);
        float *p = osp_f32(x);
        for (int64_t i = 0; i < osp_numel(x); i++)
            p[i] = (float)sin(0.37 * (double)i);
        osp_tensor *m = osp_vae_encode(v, x, NULL);
        CHECK(m && m->shape[1] == 8 && m->shape[2] == 2 && m->shape[3] == 2);
        if (m)
            for (int64_t i = 0; i < osp_numel(m); i++)
                CHECK(isfinite(osp_f32(m)[i]));
    }
    osp_vae_free(v);
    osp_model_close(dir);
}

int main(void)
{
    RUN(vae_init_matches_the_checkpoint_layout);
    RUN(a_fresh_vae_runs);
    return test_summary();
}
