/* safetensors.h — lazy, mmapped safetensors reader.
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [...], "data_offsets": [a, b]}, ...,
 *  "__metadata__": {str: str}?}, then the data region. The header is
 * validated completely at open: N within the file and at most 100 MB,
 * JSON well formed with only whitespace after it, known dtypes (others, such
 * as BOOL or I8, are reported as unsupported), rank <= 8, integers exact
 * (<= 2^53), shapes whose byte size does not overflow and equals b - a,
 * offsets inside the data region, no two tensors overlapping (gaps are
 * tolerated), no name twice, __metadata__ a map of strings. */
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
 * mapping stays alive while the tensor does, and in-place writes go to
 * private copy-on-write pages, never to the file). A tensor whose bytes are
 * not aligned to its element size, or any tensor of a handle opened from
 * memory, is returned as a copy. The result belongs to the current pool
 * like any new tensor. NULL + error if absent. */
osp_tensor *osp_safetensors_get(osp_safetensors *st, const char *name);

/* Writes tensors (host) as a safetensors file, atomically (temp + rename).
 * metadata: NULL or pairs of strings ending with NULL. The data is laid out
 * largest element size first (then in the given order), so every tensor is
 * aligned to its element size; the entries' file order follows it. */
osp_status osp_safetensors_write(const char *path, int n, const char *const *names,
                                 osp_tensor *const *tensors, const char *const *metadata);

/* The same, for data that arrives while the file is written (a sharded
 * optimizer's moments, received from their ranks one at a time): tensors
 * describe the entries (name, dtype, shape; any device) and, before
 * writing entry k (in the write order above), fetch(ctx, k, &t) may
 * replace t = tensors[k] by a tensor of the same dtype and shape, valid
 * until the next call; the tensor written must be a host one. */
typedef osp_status (*osp_st_fetch)(void *ctx, int k, osp_tensor **t);
osp_status osp_safetensors_write_fetched(const char *path, int n, const char *const *names,
                                         osp_tensor *const *tensors,
                                         const char *const *metadata, osp_st_fetch fetch,
                                         void *ctx);

#endif
