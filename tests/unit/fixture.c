/* fixture.c — see fixture.h. */
#include "fixture.h"
#include "io/safetensors.h"
#include "test.h"

#include <stdio.h>

const char *fixture_path(const char *rel)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", test_fixtures_dir(), rel);
    return buf;
}

osp_tensor *fixture_tensor(const char *rel, const char *name)
{
    osp_safetensors *st = osp_safetensors_open(fixture_path(rel));
    osp_tensor *t = st ? osp_tensor_to_dtype(osp_safetensors_get(st, name), OSP_F32) : NULL;
    osp_safetensors_close(st);
    if (!t)
        printf("#   fixture %s:%s: %s\n", rel, name, osp_error_message());
    return t;
}

bool fixture_close(const char *label, const osp_tensor *got, const osp_tensor *want, double tol)
{
    if (!got || !want) {
        printf("#   %s: missing result (%s)\n", label, osp_error_message());
        return false;
    }
    if (!osp_same_shape(got, want)) {
        char a[96], b[96];
        printf("#   %s: shape %s, expected %s\n", label, osp_shape_str(got, a, sizeof a),
               osp_shape_str(want, b, sizeof b));
        return false;
    }
    double scale = 1.0;
    const float *w = osp_f32(want);
    for (int64_t i = 0; i < osp_numel(want); i++)
        scale = fmax(scale, fabs(w[i]));
    double err = test_max_abs_diff(got, want);
    bool ok = err <= tol * scale;
    printf("#   %s: max abs error %.3g (bound %.3g)%s\n", label, err, tol * scale,
           ok ? "" : "  FAIL");
    return ok;
}
