/* model.h — a model folder as released on Hugging Face: config.json plus
 * weights in one safetensors file or shards listed by
 * *.safetensors.index.json (or, for releases without safetensors, PyTorch
 * pytorch_model*.bin pickles, read by io/torch_pickle.h). Opened once; tensors are fetched by their
 * original names and converted to the compute dtype on use. */
#ifndef OSP_MODEL_H
#define OSP_MODEL_H

#include "config.h"
#include "safetensors.h"

typedef struct osp_model_dir osp_model_dir;

/* path: a folder (config.json optional for weight-only folders such as
 * LPIPS) or a single .safetensors (or PyTorch .bin) file. */
osp_model_dir *osp_model_open(const char *path);
void osp_model_close(osp_model_dir *m);

/* NULL when the folder has no config.json. */
const osp_config *osp_model_config(const osp_model_dir *m);
const char *osp_model_path(const osp_model_dir *m);
size_t osp_model_tensor_count(const osp_model_dir *m);
/* i-th tensor over all shards, in shard then file order. */
const osp_st_entry *osp_model_entry(const osp_model_dir *m, size_t i);
const osp_st_entry *osp_model_find(const osp_model_dir *m, const char *name);
/* Stored dtype, no copy. */
osp_tensor *osp_model_get_raw(osp_model_dir *m, const char *name);
/* Converted to dtype (usually OSP_F32) on the host, checked against the
 * expected shape when ndim >= 0 (error names the tensor, expected and
 * actual shapes). */
osp_tensor *osp_model_get(osp_model_dir *m, const char *name, osp_dtype dtype, int ndim,
                          const int64_t *shape);

#endif
