/* text_file.h — a whole text file in memory, with a size limit. */
#ifndef OSP_TEXT_FILE_H
#define OSP_TEXT_FILE_H

#include <stddef.h>

#include "core/error.h"

/* The file's bytes, malloc'd and NUL-terminated (*len bytes before the
 * NUL). NULL on failure: OSP_ERR_IO when it cannot be opened or read,
 * OSP_ERR_DATA when it holds more than max_bytes ("too large for WHAT"),
 * OSP_ERR_NOMEM. */
char *osp_read_text_file(const char *path, size_t max_bytes, const char *what, size_t *len);

#endif
