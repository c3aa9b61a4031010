/* path.c — see path.h. */
#include "path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

char *osp_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    else
        osp_error_nomem("path", n);
    return p;
}
