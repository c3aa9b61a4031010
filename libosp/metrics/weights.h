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

/* Opens the network's model folder at path and starts *p on it (p->src,
 * owned here); a failed open leaves *p as it was. metrics_params_close
 * frees the parameters and closes the folder; a zeroed *p is fine. */
osp_status metrics_params_open(osp_params *p, const char *path, osp_device device);
void metrics_params_close(osp_params *p);

/* Loads a conv layer: weight [out, in, k, k] (transposed: [in, out, k, k])
 * and bias [out] under `prefix`.weight / .bias (or the alternative prefix),
 * checking the shapes. out <= 0: the output width is the stored weight's
 * (an error naming the file when that is missing or not of rank 4).
 * Returns OSP_OK and sets *w, *b (owned by p). */
osp_status metrics_load_conv(osp_params *p, const char *prefix, const char *alt_prefix,
                             bool transposed, int64_t in, int64_t out, int64_t k,
                             osp_tensor **w, osp_tensor **b);

#endif
