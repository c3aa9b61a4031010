/* file_list.c — see file_list.h. */
#include "file_list.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/path.h"

static osp_status add(osp_file_list *l, char *path)
{
    if (!path)
        return osp_error_nomem("file list", 256);
    if (l->n == l->cap) {
        size_t c = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->paths, c * sizeof *p);
        if (!p) {
            free(path);
            return osp_error_nomem("file list", c * sizeof *p);
        }
        l->paths = p;
        l->cap = c;
    }
    l->paths[l->n++] = path;
    return OSP_OK;
}

static bool wanted(const char *name, const char *const *suffixes)
{
    size_t len = strlen(name);
    for (const char *const *s = suffixes; *s; s++) {
        size_t k = strlen(*s);
        if (len > k && strcasecmp(name + len - k, *s) == 0)
            return true;
    }
    return false;
}

static osp_status scan(osp_file_list *l, const char *dir, const char *const *suffixes,
                       bool recursive, int depth)
{
    if (depth > 64)
        return osp_error(OSP_ERR_IO, "%s: folders nested too deep", dir);
    DIR *dp = opendir(dir);
    if (!dp)
        return osp_error(OSP_ERR_IO, "%s: %s", dir, strerror(errno));
    osp_status st = OSP_OK;
    struct dirent *e;
    while (!st && (e = readdir(dp))) {
        if (e->d_name[0] == '.')
            continue;
        char *path = osp_path_join(dir, e->d_name);
        struct stat sb;
        if (!path) {
            st = osp_error_nomem("path", strlen(dir) + 256);
        } else if (recursive && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            st = scan(l, path, suffixes, recursive, depth + 1);
            free(path);
        } else if (wanted(e->d_name, suffixes)) {
            st = add(l, path);
        } else {
            free(path);
        }
    }
    closedir(dp);
    return st;
}

static osp_status read_list(osp_file_list *l, const char *list)
{
    FILE *f = fopen(list, "r");
    if (!f)
        return osp_error(OSP_ERR_IO, "%s: %s", list, strerror(errno));
    char *dir = strdup(list), *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = 0;
    osp_status st = dir ? OSP_OK : osp_error_nomem("path", strlen(list));
    char line[4096];
    while (!st && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        st = add(l, line[0] == '/' || !slash ? strdup(line) : osp_path_join(dir, line));
    }
    if (!st && ferror(f))
        st = osp_error(OSP_ERR_IO, "%s: read error", list);
    fclose(f);
    free(dir);
    return st;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

osp_status osp_file_list_load(osp_file_list *l, const char *path, const char *const *suffixes,
                              bool recursive)
{
    *l = (osp_file_list){0};
    struct stat sb;
    if (stat(path, &sb) != 0)
        return osp_error(OSP_ERR_IO, "%s: %s", path, strerror(errno));
    osp_status st = S_ISDIR(sb.st_mode) ? scan(l, path, suffixes, recursive, 0)
                                        : read_list(l, path);
    if (!st && S_ISDIR(sb.st_mode) && l->n > 1) /* an empty folder has no array */
        qsort(l->paths, l->n, sizeof *l->paths, by_name);
    for (size_t i = 0; !st && i < l->n; i++)
        if (stat(l->paths[i], &sb) != 0)
            st = osp_error(OSP_ERR_IO, "%s: %s", l->paths[i], strerror(errno));
    if (st)
        osp_file_list_free(l);
    return st;
}

void osp_file_list_free(osp_file_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->paths[i]);
    free(l->paths);
    *l = (osp_file_list){0};
}
