/* captions.c — see captions.h. */
#include "captions.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "io/text_file.h"

/* The released list has ~434k records of ~1 KB. */
#define MAX_CAPTION_FILE_BYTES ((size_t)4 << 30)

static osp_status record(const char *file, size_t i, const cJSON *item, osp_caption_record *r)
{
    if (!cJSON_IsObject(item))
        return osp_error(OSP_ERR_DATA, "%s: record %zu is not an object", file, i);
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(item, "path");
    const cJSON *cap = cJSON_GetObjectItemCaseSensitive(item, "cap");
    if (!cJSON_IsString(path) || !path->valuestring[0])
        return osp_error(OSP_ERR_DATA, "%s: record %zu: `path` must be a non-empty string",
                         file, i);
    const cJSON *first = cJSON_IsArray(cap) ? cJSON_GetArrayItem(cap, 0) : NULL;
    if (!cJSON_IsString(first))
        return osp_error(OSP_ERR_DATA, "%s: record %zu: `cap` must be an array of strings "
                         "(cap[0] is the caption)", file, i);
    r->path = strdup(path->valuestring);
    r->caption = strdup(first->valuestring);
    if (!r->path || !r->caption)
        return osp_error_nomem("caption record", strlen(first->valuestring) + 1);
    return OSP_OK;
}

osp_status osp_captions_load(const char *path, osp_captions *out)
{
    *out = (osp_captions){0};
    size_t len;
    char *text = osp_read_text_file(path, MAX_CAPTION_FILE_BYTES, "a caption file", &len);
    if (!text)
        return osp_error_code();
    osp_status st = osp_captions_parse(text, len, path, out);
    free(text);
    return st;
}

osp_status osp_captions_parse(const char *text, size_t len, const char *path, osp_captions *out)
{
    *out = (osp_captions){0};
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    osp_status st = OSP_OK;
    if (!root)
        st = osp_error(OSP_ERR_DATA, "%s: not valid JSON (error near byte %td)", path,
                       end ? end - text : (ptrdiff_t)0);
    else if (!cJSON_IsArray(root))
        st = osp_error(OSP_ERR_DATA, "%s: expected a JSON array of {\"path\", \"cap\"} records",
                       path);
    size_t n = root && !st ? (size_t)cJSON_GetArraySize(root) : 0;
    if (!st && n && !(out->items = calloc(n, sizeof *out->items)))
        st = osp_error_nomem("caption records", n * sizeof *out->items);
    const cJSON *item = root && !st ? root->child : NULL;
    for (size_t i = 0; !st && item; i++, item = item->next) {
        st = record(path, i, item, &out->items[i]);
        out->n = i + 1;
    }
    cJSON_Delete(root);
    if (st)
        osp_captions_free(out);
    return st;
}

void osp_captions_free(osp_captions *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].path);
        free(c->items[i].caption);
    }
    free(c->items);
    *c = (osp_captions){0};
}
