/* params.h — a model's parameters: name -> tensor, in registration order.
 *
 * Loading reads each tensor from a model folder under its original
 * checkpoint name, checks its shape against what the config implies
 * (the error names the tensor and both shapes), converts it to float32 and
 * places it on the model's device. Training iterates the same list, and
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
