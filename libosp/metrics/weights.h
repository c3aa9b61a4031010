/* weights.h — loading the evaluation networks' weights (LPIPS, PWC-Net):
 * widths are read from the stored shapes, and the alternative key
 * spellings the reference code produces are accepted. */
#ifndef OSP_METRICS_WEIGHTS_H
#define OSP_METRICS_WEIGHTS_H

#include "nn/params.h"

/* The name under which m stores a tensor: `canonical` when present, else
 * `alternative` when present (may be NULL), else `canonical` (so loading
 * then reports the canonical name as missing). */
const char *metrics_weight_name(const osp_model_dir *m, const char *canonical,
                                const char *alternative);

/* Dimension 0 of the rank-`ndim` tensor `name` (a conv's output width), or
 * -1 with an OSP_ERR_DATA error naming the file when it is missing or has
 * another rank. */
int64_t metrics_weight_dim0(const osp_model_dir *m, const char *name, int ndim);

/* Loads a conv layer: weight [out, in, k, k] (transposed: [in, out, k, k])
 * and bias [out] under `prefix`.weight / .bias (or the alternative prefix),
 * checking the shapes. Returns OSP_OK and sets *w, *b (owned by p). */
osp_status metrics_load_conv(osp_params *p, const char *prefix, const char *alt_prefix,
                             bool transposed, int64_t in, int64_t out, int64_t k,
                             osp_tensor **w, osp_tensor **b);

#endif
