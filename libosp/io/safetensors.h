/* safetensors.h — lazy, mmapped safetensors reader.
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [...], "data_offsets": [a, b]}, ...,
 *  "__metadata__": {str: str}?}, then the data region. The header is
 * validated completely at open: N within the file, JSON well formed,
 * known dtypes, shapes whose byte size does not overflow and equals b - a,
 * offsets inside the data region, no two tensors overlapping. */
#ifndef OSP_SAFETENSORS_H
#define OSP_SAFETENSORS_H

#include <stddef.h>

#include "core/tensor.h"

typedef struct osp_safetensors osp_safetensors;

typedef struct osp_st_entry {
    const char *name;
    osp_dtype dtype;
    int ndim;
    int64_t shape[OSP_MAX_DIMS];
    size_t offset, nbytes; /* within the data region */
} osp_st_entry;

osp_safetensors *osp_safetensors_open(const char *path);
/* Parses from memory (the buffer must outlive the handle); for fuzzing and
 * tests. */
osp_safetensors *osp_safetensors_open_memory(const void *data, size_t size, const char *label);
void osp_safetensors_close(osp_safetensors *st);

size_t osp_safetensors_count(const osp_safetensors *st);
const osp_st_entry *osp_safetensors_entry(const osp_safetensors *st, size_t i);
const osp_st_entry *osp_safetensors_find(const osp_safetensors *st, const char *name);
/* "__metadata__" value for key, or NULL. */
const char *osp_safetensors_metadata(const osp_safetensors *st, const char *key);
/* A tensor viewing the mapped bytes in their stored dtype (no copy; the
 * mapping stays alive while the tensor does). NULL + error if absent. */
osp_tensor *osp_safetensors_get(osp_safetensors *st, const char *name);

/* Writes tensors (host) as a safetensors file, atomically (temp + rename).
 * metadata: NULL or pairs of strings ending with NULL. */
osp_status osp_safetensors_write(const char *path, int n, const char *const *names,
                                 osp_tensor *const *tensors, const char *const *metadata);

#endif
