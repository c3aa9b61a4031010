/* fuzz_config.c — libFuzzer target for config.json parsing: every getter
 * on every top-level key (and a dotted path into nested objects) must
 * either succeed or fail cleanly. */
#include "io/config.h"
#include "io/config_json.h"

#include <stdio.h>
#include <stdlib.h>

static void query(const osp_config *c, const char *key)
{
    int64_t i, ints[8];
    double f;
    bool b;
    const char *s, *strs[8];
    size_t n;
    (void)osp_config_has(c, key);
    (void)osp_config_int(c, key, &i);
    (void)osp_config_int_or(c, key, 1, &i);
    (void)osp_config_float(c, key, &f);
    (void)osp_config_float_or(c, key, 1.0, &f);
    (void)osp_config_bool_or(c, key, false, &b);
    (void)osp_config_str(c, key, &s);
    (void)osp_config_str_or(c, key, "x", &s);
    (void)osp_config_int_array(c, key, ints, 8, &n);
    (void)osp_config_str_array(c, key, strs, 8, &n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    osp_config *c = osp_config_parse((const char *)data, size, "fuzz");
    if (!c)
        return 0;
    const cJSON *it, *sub;
    cJSON_ArrayForEach(it, osp_config_root(c)) {
        query(c, it->string);
        const cJSON *nested = cJSON_IsObject(it) ? it : NULL;
        cJSON_ArrayForEach(sub, nested) {
            char path[256];
            snprintf(path, sizeof path, "%s.%s", it->string, sub->string);
            query(c, path);
        }
    }
    query(c, "missing.key");
    osp_config_free(c);
    return 0;
}
