/* captions.h — the reference's caption file (spec/training.md §1.1): one
 * JSON array of objects, each with `path` (the video, opened as given)
 * and `cap` (an array of strings, of which only cap[0] is used); other
 * fields are ignored. */
#ifndef OSP_TRAIN_CAPTIONS_H
#define OSP_TRAIN_CAPTIONS_H

#include <stddef.h>

#include "core/error.h"

typedef struct osp_caption_record {
    char *path, *caption; /* caption = cap[0] */
} osp_caption_record;

typedef struct osp_captions {
    size_t n;
    osp_caption_record *items;
} osp_captions;

/* Reads and checks the whole file first: OSP_ERR_IO when it cannot be read,
 * OSP_ERR_DATA (naming the file and the record index) for invalid JSON, a
 * top level that is not an array, or a record without a non-empty string
 * `path` or without a `cap` array whose first item is a string. */
osp_status osp_captions_load(const char *path, osp_captions *out);
/* The same from len bytes of text (no terminator needed); `path` names it
 * in messages. */
osp_status osp_captions_parse(const char *text, size_t len, const char *path, osp_captions *out);
void osp_captions_free(osp_captions *c);

#endif
