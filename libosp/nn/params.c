/* params.c — see params.h. */
#include "params.h"
#include "backend/ops.h"
#include "backend/ops_random.h"
#include "core/checked.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void osp_params_init(osp_params *p, osp_model_dir *src, osp_device device)
{
    memset(p, 0, sizeof *p);
    p->src = src;
    p->device = device;
}

void osp_params_free(osp_params *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->names[i]);
        osp_release(p->tensors[i]);
    }
    free(p->names);
    free(p->tensors);
    memset(p, 0, sizeof *p);
}

osp_status osp_params_add(osp_params *p, const char *name, osp_tensor *t)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        char **names = realloc(p->names, cap * sizeof *names);
        if (!names)
            return osp_error_nomem("parameter list", cap * sizeof *names);
        p->names = names;
        osp_tensor **tensors = realloc(p->tensors, cap * sizeof *tensors);
        if (!tensors)
            return osp_error_nomem("parameter list", cap * sizeof *tensors);
        p->tensors = tensors;
        p->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return osp_error_nomem("parameter name", strlen(name) + 1);
    p->names[p->n] = copy;
    p->tensors[p->n++] = osp_retain(t);
    return OSP_OK;
}

/* The random_init parameter (see params.h). */
static osp_tensor *fresh_param(osp_params *p, int ndim, const int64_t *shape, const char *name)
{
    int64_t numel;
    if (ndim < 1 || !osp_shape_numel(shape, ndim, &numel))
        return osp_error(OSP_ERR_RUNTIME, "%s: bad parameter shape", name), NULL;
    osp_pool_push();
    osp_tensor *t;
    if (ndim == 1) {
        size_t len = strlen(name);
        bool bias = len >= 5 && strcmp(name + len - 5, ".bias") == 0;
        t = osp_full(OSP_F32, 1, shape, p->device, bias ? 0.0 : 1.0);
    } else {
        double fan_in = shape[0] > 0 ? (double)numel / (double)shape[0] : 1.0;
        t = osp_scale_shift(osp_randn(ndim, shape, p->device, p->random_seed,
                                      (uint64_t)osp_params_count(p)),
                            (float)(1.0 / sqrt(fan_in > 0 ? fan_in : 1.0)), 0.0f);
    }
    osp_status st = t ? osp_params_add(p, name, t) : osp_error_code();
    osp_pool_pop();
    return st == OSP_OK ? p->tensors[p->n - 1] : NULL;
}

osp_tensor *osp_params_load(osp_params *p, int ndim, const int64_t *shape, const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof name) {
        osp_error(OSP_ERR_RUNTIME, "parameter name too long: %s...", name);
        return NULL;
    }
    if (!p->src && p->random_init)
        return fresh_param(p, ndim, shape, name);
    if (!p->src) {
        osp_error(OSP_ERR_RUNTIME, "no model folder to load %s from", name);
        return NULL;
    }
    osp_dtype dtype = OSP_F32;
    const osp_st_entry *e = p->keep_stored_dtype ? osp_model_find(p->src, name) : NULL;
    if (e && osp_dtype_is_float(e->dtype))
        dtype = e->dtype;
    osp_pool_push();
    osp_tensor *t = osp_to_device(osp_model_get(p->src, name, dtype, ndim, shape), p->device);
    osp_status st = t ? osp_params_add(p, name, t) : osp_error_code();
    osp_pool_pop();
    return st == OSP_OK ? p->tensors[p->n - 1] : NULL;
}

osp_tensor *osp_params_find(const osp_params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0)
            return p->tensors[i];
    return NULL;
}

int64_t osp_params_count(const osp_params *p)
{
    int64_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += osp_numel(p->tensors[i]);
    return n;
}
