/* params.h — a model's parameters: name -> tensor, in registration order.
 *
 * Loading reads each tensor from a model folder under its original
 * checkpoint name, checks its shape against what the config implies
 * (the error names the tensor and both shapes), converts it to float32
 * (unless keep_stored_dtype, below) and places it on the model's device. Training iterates the same list, and
 * checkpoints are written from it under the same names. */
#ifndef OSP_PARAMS_H
#define OSP_PARAMS_H

#include "core/tensor.h"
#include "io/model.h"

typedef struct osp_params {
    size_t n, cap;
    char **names;
    osp_tensor **tensors; /* owned references */
    osp_model_dir *src;   /* where osp_params_load reads from (not owned) */
    osp_device device;
    /* false (the default): osp_params_load converts every tensor to float32,
     * as training needs. true: float tensors keep their stored dtype (bf16
     * and f16 stay 2 bytes; on the CPU the tensor is a view of the mmapped
     * file, nothing is copied) and each op widens them to float32 on use
     * (ops.h). For inference with large checkpoints: T5-XXL in bf16 takes
     * 9.5 GB this way instead of 19 GB. Set it before loading. */
    bool keep_stored_dtype;
    /* With no src: osp_params_load creates fresh parameters instead of
     * reading them, for generators of test and demo models and for training
     * from scratch: a 1-D `*.bias` is 0, any other 1-D tensor (norm scales)
     * 1, and a tensor of rank >= 2 N(0, 1/fan_in) with fan_in = numel /
     * shape[0], drawn with Philox: the parameters take consecutive ranges
     * of seed random_seed's stream, in registration order. */
    bool random_init;
    uint64_t random_seed;
} osp_params;

void osp_params_init(osp_params *p, osp_model_dir *src, osp_device device);
void osp_params_free(osp_params *p);

/* Loads the tensor named by fmt (printf-style) with the expected shape.
 * Returns a tensor owned by p, or NULL with an error. */
osp_tensor *osp_params_load(osp_params *p, int ndim, const int64_t *shape, const char *fmt, ...)
    OSP_PRINTF(4, 5);
/* Registers an existing tensor (a reference is taken) under name. */
osp_status osp_params_add(osp_params *p, const char *name, osp_tensor *t);
osp_tensor *osp_params_find(const osp_params *p, const char *name);
/* Total number of scalar parameters. */
int64_t osp_params_count(const osp_params *p);

#endif
