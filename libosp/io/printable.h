/* printable.h — text for one-line error messages: untrusted names (tensor
 * names, keys, dtypes read from a file) with non-printable bytes turned
 * into '?' and long ones cut with "...", and shapes as "[2, 3, 4]". */
#ifndef OSP_PRINTABLE_H
#define OSP_PRINTABLE_H

#include <stddef.h>
#include <stdint.h>

/* Writes at most len bytes (len >= 8) into buf and returns buf. */
const char *osp_printable(const char *s, size_t n, char *buf, size_t len);
/* "[2, 3, 4]" into buf (cut to len); returns buf. */
const char *osp_format_shape(char *buf, size_t len, int ndim, const int64_t *shape);

#endif
