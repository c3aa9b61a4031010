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

osp_status metrics_params_open(osp_params *p, const char *path, osp_device device)
{
    osp_model_dir *dir = osp_model_open(path);
    if (!dir)
        return osp_error_code();
    osp_params_init(p, dir, device);
    return OSP_OK;
}

void metrics_params_close(osp_params *p)
{
    osp_model_dir *dir = p->src;
    osp_params_free(p);
    osp_model_close(dir);
}

/* Dimension `dim` of the conv weight `name` (rank 4), or -1 with an
 * OSP_ERR_DATA error naming the file when it is missing or has another
 * rank. */
static int64_t conv_weight_dim(const osp_model_dir *m, const char *name, int dim)
{
    const osp_st_entry *e = osp_model_find(m, name);
    if (!e) {
        osp_error(OSP_ERR_DATA, "%s: no tensor '%s'", osp_model_path(m), name);
        return -1;
    }
    if (e->ndim != 4 || e->shape[dim] < 1) {
        osp_error(OSP_ERR_DATA, "%s: tensor '%s' has %d dims, expected %d", osp_model_path(m),
                  name, e->ndim, 4);
        return -1;
    }
    return e->shape[dim];
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
    const char *weight = metrics_weight_name(p->src, wname, alt_w);
    if (out <= 0 && (out = conv_weight_dim(p->src, weight, transposed ? 1 : 0)) < 0)
        return osp_error_code();
    int64_t wshape[4] = {transposed ? in : out, transposed ? out : in, k, k};
    *w = osp_params_load(p, 4, wshape, "%s", weight);
    *b = *w ? osp_params_load(p, 1, &out, "%s", metrics_weight_name(p->src, bname, alt_b)) : NULL;
    return *b ? OSP_OK : osp_error_code();
}
