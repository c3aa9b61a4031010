/* file_list.h — the files a trainer reads: a folder's files with given
 * suffixes (optionally searched recursively), in name order; or a list
 * file naming one file a line (relative paths are taken against the
 * list's folder; blank lines and lines starting with '#' are skipped). */
#ifndef OSP_TRAIN_FILE_LIST_H
#define OSP_TRAIN_FILE_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef struct osp_file_list {
    size_t n, cap;
    char **paths; /* owned */
} osp_file_list;

/* suffixes: NULL-terminated, matched case-insensitively ("." names are
 * skipped). OSP_ERR_IO when PATH or a listed file cannot be read. */
osp_status osp_file_list_load(osp_file_list *l, const char *path, const char *const *suffixes,
                              bool recursive);
void osp_file_list_free(osp_file_list *l);

#endif
