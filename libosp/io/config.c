/* config.c — typed getters over a cJSON tree (see config.h). */
#include "config.h"

#include "config_json.h"
#include "printable.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* config.json files are a few KB; this only stops a runaway input. */
#define MAX_CONFIG_BYTES (64u << 20)
#define MAX_JSON_INT 9007199254740992.0 /* 2^53 */

struct osp_config {
    cJSON *root;
    char *label;
};

void osp_config_free(osp_config *c)
{
    if (!c)
        return;
    cJSON_Delete(c->root);
    free(c->label);
    free(c);
}

const char *osp_config_label(const osp_config *c)
{
    return c->label;
}

const cJSON *osp_config_root(const osp_config *c)
{
    return c->root;
}

osp_config *osp_config_parse(const char *text, size_t len, const char *label)
{
    label = label ? label : "config";
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        osp_error(OSP_ERR_DATA, "%s: not valid JSON (error near byte %td)", label,
                  end ? end - text : (ptrdiff_t)0);
        return NULL;
    }
    for (const char *p = end; p < text + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            osp_error(OSP_ERR_DATA, "%s: unexpected bytes after the JSON object (at byte %td)",
                      label, p - text);
            cJSON_Delete(root);
            return NULL;
        }
    }
    if (!cJSON_IsObject(root)) {
        osp_error(OSP_ERR_DATA, "%s: expected a JSON object at the top level", label);
        cJSON_Delete(root);
        return NULL;
    }
    osp_config *c = calloc(1, sizeof *c);
    if (!c || !(c->label = strdup(label))) {
        free(c);
        cJSON_Delete(root);
        osp_error_nomem("config", sizeof *c);
        return NULL;
    }
    c->root = root;
    return c;
}

osp_config *osp_config_load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        osp_error(OSP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(MAX_CONFIG_BYTES);
    size_t len = text ? fread(text, 1, MAX_CONFIG_BYTES, f) : 0;
    bool too_big = text && len == MAX_CONFIG_BYTES && fgetc(f) != EOF;
    bool failed = ferror(f);
    fclose(f);
    osp_config *c = NULL;
    if (!text)
        osp_error_nomem("config text", MAX_CONFIG_BYTES);
    else if (failed)
        osp_error(OSP_ERR_IO, "%s: read failed", path);
    else if (too_big)
        osp_error(OSP_ERR_DATA, "%s: larger than %u bytes; not a config file", path,
                  MAX_CONFIG_BYTES);
    else
        c = osp_config_parse(text, len, path);
    free(text);
    return c;
}

/* The value at key (exact top-level name first, then a dotted path), or
 * NULL when absent. */
static const cJSON *lookup(const osp_config *c, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, key);
    if (v || !strchr(key, '.'))
        return v;
    const cJSON *node = c->root;
    const char *part = key;
    while (node) {
        const char *dot = strchr(part, '.');
        size_t n = dot ? (size_t)(dot - part) : strlen(part);
        const cJSON *child = NULL;
        if (cJSON_IsObject(node)) {
            const cJSON *it;
            cJSON_ArrayForEach(it, node) {
                if (strlen(it->string) == n && memcmp(it->string, part, n) == 0) {
                    child = it;
                    break;
                }
            }
        }
        if (!dot)
            return child;
        node = child;
        part = dot + 1;
    }
    return NULL;
}

static bool absent(const cJSON *v)
{
    return !v || cJSON_IsNull(v);
}

static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    return "an object";
}

static osp_status key_error(const osp_config *c, const char *key, const char *fmt, const char *a)
{
    char buf[96], msg[256];
    snprintf(msg, sizeof msg, fmt, a);
    return osp_error(OSP_ERR_DATA, "%s: key '%s': %s", c->label,
                     osp_printable(key, strlen(key), buf, sizeof buf), msg);
}

static osp_status missing(const osp_config *c, const char *key)
{
    return key_error(c, key, "missing%s", "");
}

bool osp_config_has(const osp_config *c, const char *key)
{
    return !absent(lookup(c, key));
}

static osp_status to_int(const osp_config *c, const char *key, const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return key_error(c, key, "expected an integer, found %s", json_kind(v));
    double d = v->valuedouble;
    if (d != floor(d))
        return key_error(c, key, "expected an integer, found a fraction%s", "");
    if (fabs(d) > MAX_JSON_INT)
        return key_error(c, key, "integer out of range (|value| <= 2^53)%s", "");
    *out = (int64_t)d;
    return OSP_OK;
}

osp_status osp_config_int(const osp_config *c, const char *key, int64_t *out)
{
    const cJSON *v = lookup(c, key);
    return absent(v) ? missing(c, key) : to_int(c, key, v, out);
}

osp_status osp_config_int_or(const osp_config *c, const char *key, int64_t fallback, int64_t *out)
{
    *out = fallback;
    return osp_config_has(c, key) ? osp_config_int(c, key, out) : OSP_OK;
}

static osp_status to_float(const osp_config *c, const char *key, const cJSON *v, double *out)
{
    if (!cJSON_IsNumber(v))
        return key_error(c, key, "expected a number, found %s", json_kind(v));
    *out = v->valuedouble;
    return OSP_OK;
}

osp_status osp_config_float(const osp_config *c, const char *key, double *out)
{
    const cJSON *v = lookup(c, key);
    return absent(v) ? missing(c, key) : to_float(c, key, v, out);
}

osp_status osp_config_float_or(const osp_config *c, const char *key, double fallback, double *out)
{
    *out = fallback;
    return osp_config_has(c, key) ? osp_config_float(c, key, out) : OSP_OK;
}

osp_status osp_config_bool_or(const osp_config *c, const char *key, bool fallback, bool *out)
{
    const cJSON *v = lookup(c, key);
    if (absent(v)) {
        *out = fallback;
        return OSP_OK;
    }
    if (!cJSON_IsBool(v))
        return key_error(c, key, "expected true or false, found %s", json_kind(v));
    *out = cJSON_IsTrue(v);
    return OSP_OK;
}

static osp_status to_str(const osp_config *c, const char *key, const cJSON *v, const char **out)
{
    if (!cJSON_IsString(v))
        return key_error(c, key, "expected a string, found %s", json_kind(v));
    *out = v->valuestring;
    return OSP_OK;
}

osp_status osp_config_str(const osp_config *c, const char *key, const char **out)
{
    const cJSON *v = lookup(c, key);
    return absent(v) ? missing(c, key) : to_str(c, key, v, out);
}

osp_status osp_config_str_or(const osp_config *c, const char *key, const char *fallback,
                             const char **out)
{
    *out = fallback;
    return osp_config_has(c, key) ? osp_config_str(c, key, out) : OSP_OK;
}

/* The array at key, checked to have at most cap elements. */
static osp_status get_array(const osp_config *c, const char *key, size_t cap, const cJSON **out,
                            size_t *n)
{
    const cJSON *v = lookup(c, key);
    if (absent(v))
        return missing(c, key);
    if (!cJSON_IsArray(v))
        return key_error(c, key, "expected an array, found %s", json_kind(v));
    size_t count = (size_t)cJSON_GetArraySize(v);
    if (count > cap) {
        char detail[96];
        snprintf(detail, sizeof detail, "%zu elements, at most %zu expected", count, cap);
        return key_error(c, key, "%s", detail);
    }
    *out = v;
    *n = count;
    return OSP_OK;
}

osp_status osp_config_int_array(const osp_config *c, const char *key, int64_t *out, size_t cap,
                                size_t *n)
{
    const cJSON *arr, *it;
    osp_status s = get_array(c, key, cap, &arr, n);
    if (s != OSP_OK)
        return s;
    size_t i = 0;
    cJSON_ArrayForEach(it, arr) {
        if ((s = to_int(c, key, it, &out[i++])) != OSP_OK)
            return s;
    }
    return s;
}

osp_status osp_config_str_array(const osp_config *c, const char *key, const char **out,
                                size_t cap, size_t *n)
{
    const cJSON *arr, *it;
    osp_status s = get_array(c, key, cap, &arr, n);
    if (s != OSP_OK)
        return s;
    size_t i = 0;
    cJSON_ArrayForEach(it, arr) {
        if ((s = to_str(c, key, it, &out[i++])) != OSP_OK)
            return s;
    }
    return s;
}
