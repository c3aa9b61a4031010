/* weights.c — see weights.h. */
#include "weights.h"

#include <stdio.h>

const char *metrics_weight_name(const osp_model_dir *m, const char *canonical,
                                const char *alternative)
{
    if (osp_model_find(m, canonical) || !alternative || !osp_model_find(m, alternative))
        return canonical;
    return alternative;
}

int64_t metrics_weight_dim0(const osp_model_dir *m, const char *name, int ndim)
{
    const osp_st_entry *e = osp_model_find(m, name);
    if (!e) {
        osp_error(OSP_ERR_DATA, "%s: no tensor '%s'", osp_model_path(m), name);
        return -1;
    }
    if (e->ndim != ndim || e->shape[0] < 1) {
        osp_error(OSP_ERR_DATA, "%s: tensor '%s' has %d dims, expected %d", osp_model_path(m),
                  name, e->ndim, ndim);
        return -1;
    }
    return e->shape[0];
}

osp_status metrics_load_conv(osp_params *p, const char *prefix, const char *alt_prefix,
                             bool transposed, int64_t in, int64_t out, int64_t k,
                             osp_tensor **w, osp_tensor **b)
{
    char wname[256], bname[256], alt_w[256], alt_b[256];
    snprintf(wname, sizeof wname, "%s.weight", prefix);
    snprintf(bname, sizeof bname, "%s.bias", prefix);
    snprintf(alt_w, sizeof alt_w, "%s.weight", alt_prefix ? alt_prefix : prefix);
    snprintf(alt_b, sizeof alt_b, "%s.bias", alt_prefix ? alt_prefix : prefix);
    int64_t wshape[4] = {transposed ? in : out, transposed ? out : in, k, k};
    *w = osp_params_load(p, 4, wshape, "%s", metrics_weight_name(p->src, wname, alt_w));
    *b = *w ? osp_params_load(p, 1, &out, "%s", metrics_weight_name(p->src, bname, alt_b)) : NULL;
    return *b ? OSP_OK : osp_error_code();
}
