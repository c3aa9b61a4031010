/* text_file.c — see text_file.h. */
#include "text_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

char *osp_read_text_file(const char *path, size_t max_bytes, const char *what, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        osp_error(OSP_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 > cap) {
            if (cap > max_bytes) {
                free(buf);
                fclose(f);
                osp_error(OSP_ERR_DATA, "%s: larger than %zu bytes: too large for %s", path,
                          max_bytes, what);
                return NULL;
            }
            size_t want = cap ? 2 * cap : 8192;
            char *b = realloc(buf, want);
            if (!b) {
                free(buf);
                fclose(f);
                osp_error_nomem(what, want);
                return NULL;
            }
            buf = b;
            cap = want;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad || n > max_bytes) {
        free(buf);
        if (bad)
            osp_error(OSP_ERR_IO, "%s: read error", path);
        else
            osp_error(OSP_ERR_DATA, "%s: larger than %zu bytes: too large for %s", path,
                      max_bytes, what);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}
