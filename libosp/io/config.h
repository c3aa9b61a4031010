/* config.h — config.json access (cJSON underneath), with typed getters
 * that fail with a message naming the file and key.
 *
 * Keys are top-level names ("num_layers"); a dotted key ("loss_params.
 * kl_weight") reaches into nested objects when no top-level key has that
 * exact name. Integers must be integral JSON numbers within +-2^53 (JSON
 * numbers are doubles; beyond that they are not exact). */
#ifndef OSP_CONFIG_H
#define OSP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct osp_config osp_config;

osp_config *osp_config_load(const char *path);
osp_config *osp_config_parse(const char *text, size_t len, const char *label);
void osp_config_free(osp_config *c);

bool osp_config_has(const osp_config *c, const char *key);
/* Getters: OSP_OK, or OSP_ERR_DATA if the key is missing / of another type
 * / out of range. The *_or variants return `fallback` when the key is
 * absent or null (still an error when present with the wrong type). */
osp_status osp_config_int(const osp_config *c, const char *key, int64_t *out);
osp_status osp_config_int_or(const osp_config *c, const char *key, int64_t fallback, int64_t *out);
osp_status osp_config_float(const osp_config *c, const char *key, double *out);
osp_status osp_config_float_or(const osp_config *c, const char *key, double fallback, double *out);
osp_status osp_config_bool_or(const osp_config *c, const char *key, bool fallback, bool *out);
/* The string stays owned by the config. */
osp_status osp_config_str(const osp_config *c, const char *key, const char **out);
osp_status osp_config_str_or(const osp_config *c, const char *key, const char *fallback,
                             const char **out);
/* Arrays of ints/strings: *n elements written (at most cap; more is an
 * error). */
osp_status osp_config_int_array(const osp_config *c, const char *key, int64_t *out, size_t cap,
                                size_t *n);
osp_status osp_config_str_array(const osp_config *c, const char *key, const char **out,
                                size_t cap, size_t *n);
const char *osp_config_label(const osp_config *c);

#endif
