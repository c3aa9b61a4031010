/* jsoncheck — validates JSON on stdin and prints values from it, so the bats
 * suites need neither python nor jq (cJSON is a build dependency anyway).
 *
 *   jsoncheck [PATH...] < file.json
 *
 * Exits 1 with a message unless stdin holds exactly one JSON value. Each
 * PATH prints one line: `.key`, `["key.with.dots"]`, `[i]` and
 * `[field=value]` (the first array element whose `field` is `value`) walk
 * down; a final `#` gives the number of elements of an array or object.
 * Strings print raw, numbers as the shortest decimal that reads back
 * exactly, anything else as compact JSON. A PATH that does not exist exits 1. Example:
 *   osp-info --format json x.msgpack | jsoncheck '.tensors#' '.tensors[0].name' */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *bigger = realloc(buf, 2 * cap + 1);
            if (!bigger) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    if (buf)
        buf[n] = 0;
    *len = n;
    return buf;
}

/* The shortest decimal that reads back as exactly v (cJSON's own printer
 * may add a 17th digit). */
static void print_shortest(double v)
{
    char buf[32];
    if (fabs(v) < 1e17 && v == (double)(long long)v) { /* integers without an exponent */
        printf("%lld\n", (long long)v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    printf("%s\n", buf);
}

/* Walks `path`; NULL when it leads nowhere. Sets *count for a final '#'. */
static const cJSON *walk(const cJSON *v, const char *path, int *count)
{
    *count = -1;
    const char *p = path;
    while (*p && v) {
        if (*p == '.') {
            size_t n = strcspn(++p, ".[#");
            char key[256];
            if (n == 0 || n >= sizeof key)
                return NULL;
            memcpy(key, p, n);
            key[n] = 0;
            v = cJSON_GetObjectItemCaseSensitive(v, key);
            p += n;
        } else if (*p == '[' && p[1] == '"') { /* ["key.with.dots"] */
            const char *close = strstr(p + 2, "\"]");
            char key[256];
            if (!close || close - (p + 2) >= (long)sizeof key)
                return NULL;
            memcpy(key, p + 2, (size_t)(close - (p + 2)));
            key[close - (p + 2)] = 0;
            v = cJSON_GetObjectItemCaseSensitive(v, key);
            p = close + 2;
        } else if (*p == '[' && strchr(p, '=') && strchr(p, '=') < strchr(p, ']')) {
            /* [field=value]: the first array element whose string field
             * `field` equals value */
            const char *eq = strchr(p, '='), *close = strchr(p, ']');
            char field[128], want[256];
            size_t nf = (size_t)(eq - p - 1), nw = (size_t)(close - eq - 1);
            if (!cJSON_IsArray(v) || nf >= sizeof field || nw >= sizeof want)
                return NULL;
            memcpy(field, p + 1, nf);
            field[nf] = 0;
            memcpy(want, eq + 1, nw);
            want[nw] = 0;
            const cJSON *found = NULL, *item;
            cJSON_ArrayForEach(item, v) {
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(item, field);
                if (!found && cJSON_IsString(f) && strcmp(f->valuestring, want) == 0)
                    found = item;
            }
            v = found;
            p = close + 1;
        } else if (*p == '[') {
            char *end;
            long i = strtol(p + 1, &end, 10);
            if (*end != ']' || !cJSON_IsArray(v))
                return NULL;
            v = cJSON_GetArrayItem(v, (int)i);
            p = end + 1;
        } else if (*p == '#' && !p[1]) {
            if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
                return NULL;
            *count = cJSON_GetArraySize(v);
            return v;
        } else {
            return NULL;
        }
    }
    return v;
}

int main(int argc, char **argv)
{
    size_t len;
    char *text = read_all(stdin, &len);
    const char *end = NULL;
    cJSON *root = text ? cJSON_ParseWithLengthOpts(text, len, &end, 0) : NULL;
    if (root) /* only whitespace may follow the value */
        end += strspn(end, " \t\r\n");
    if (!root || end != text + len) {
        fprintf(stderr, "jsoncheck: invalid JSON near byte %zu\n",
                end ? (size_t)(end - text) : (size_t)0);
        return 1;
    }
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        int count;
        const cJSON *v = walk(root, argv[i], &count);
        if (!v) {
            fprintf(stderr, "jsoncheck: no value at %s\n", argv[i]);
            rc = 1;
        } else if (count >= 0) {
            printf("%d\n", count);
        } else if (cJSON_IsString(v)) {
            printf("%s\n", v->valuestring);
        } else if (cJSON_IsNumber(v)) {
            print_shortest(v->valuedouble);
        } else {
            char *s = cJSON_PrintUnformatted(v);
            printf("%s\n", s ? s : "?");
            free(s);
        }
    }
    cJSON_Delete(root);
    free(text);
    return rc;
}
