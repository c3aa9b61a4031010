/* safetensors.c — mmapped safetensors reader and atomic writer (see
 * safetensors.h).
 *
 * Lifetime: the mapping is reference counted. The handle holds one
 * reference and every tensor returned by osp_safetensors_get() holds one
 * through its storage, so closing the handle while tensors are alive is
 * safe; the last one out unmaps. The mapping is MAP_PRIVATE and writable:
 * a tensor written in place (e.g. a weight updated by an optimizer) gets
 * private copy-on-write pages and the file never changes. */
#include "safetensors.h"

#include "atomic_file.h"
#include "core/checked.h"
#include "printable.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors data is little-endian; a big-endian host needs byte swapping here");

/* A real header is a few hundred KB even for the largest models. */
#define MAX_HEADER_BYTES (100u * 1000 * 1000)
/* JSON numbers are doubles in cJSON: integers above 2^53 are not exact. */
#define MAX_JSON_INT 9007199254740992.0

typedef struct mapping {
    void *base;
    size_t size;
    int refcount;
} mapping;

struct osp_safetensors {
    char *label;
    mapping *map;         /* NULL when parsed from caller memory */
    const uint8_t *data;  /* the data region (after the header) */
    size_t data_size;
    size_t n;
    osp_st_entry *entries;       /* header order; names owned */
    const osp_st_entry **sorted; /* by name, for lookups */
    size_t n_meta;
    char **meta; /* key, value, key, value, ... */
};

static void mapping_unref(mapping *m)
{
    if (m && --m->refcount == 0) {
        munmap(m->base, m->size);
        free(m);
    }
}

static void storage_release(osp_storage *s)
{
    mapping_unref(s->owner);
}

void osp_safetensors_close(osp_safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        free((char *)st->entries[i].name);
    for (size_t i = 0; i < 2 * st->n_meta; i++)
        free(st->meta[i]);
    free(st->entries);
    free(st->sorted);
    free(st->meta);
    mapping_unref(st->map);
    free(st->label);
    free(st);
}

/* ---------------- header parsing ---------------- */

static bool json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return false;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= MAX_JSON_INT) || d != (double)(uint64_t)d)
        return false;
    *out = (uint64_t)d;
    return true;
}

/* Error about tensor `name` of the file (the label is added by the caller). */
static osp_status bad_tensor(const char *name, const char *fmt, const char *detail)
{
    char buf[80];
    osp_printable(name, strlen(name), buf, sizeof buf);
    return osp_error(OSP_ERR_DATA, fmt, buf, detail);
}

static osp_status parse_dtype(const char *name, const cJSON *j, osp_dtype *out)
{
    if (!cJSON_IsString(j))
        return bad_tensor(name, "tensor '%s': dtype must be a string%s", "");
    for (int t = 0; t < OSP_DTYPE_COUNT; t++) {
        if (strcmp(j->valuestring, osp_dtype_safetensors_name((osp_dtype)t)) == 0) {
            *out = (osp_dtype)t;
            return OSP_OK;
        }
    }
    char dt[40], nm[80];
    osp_printable(j->valuestring, strlen(j->valuestring), dt, sizeof dt);
    osp_printable(name, strlen(name), nm, sizeof nm);
    return osp_error(OSP_ERR_DATA, "unsupported dtype %s for tensor '%s' (osp reads F32 F16 "
                     "BF16 F64 I32 I64 U8)", dt, nm);
}

static osp_status parse_entry(const osp_safetensors *st, const cJSON *info, osp_st_entry *e)
{
    const char *name = info->string;
    if (!cJSON_IsObject(info))
        return bad_tensor(name, "tensor '%s': expected an object%s", "");
    osp_status s = parse_dtype(name, cJSON_GetObjectItemCaseSensitive(info, "dtype"), &e->dtype);
    if (s != OSP_OK)
        return s;

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(info, "shape");
    if (!cJSON_IsArray(shape))
        return bad_tensor(name, "tensor '%s': shape must be an array%s", "");
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > OSP_MAX_DIMS) {
        char detail[48];
        snprintf(detail, sizeof detail, " (rank %d, the maximum is %d)", ndim, OSP_MAX_DIMS);
        return bad_tensor(name, "tensor '%s': shape has too many dimensions%s", detail);
    }
    e->ndim = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (!json_uint(d, &v))
            return bad_tensor(name, "tensor '%s': shape entries must be integers in [0, 2^53]%s",
                              "");
        e->shape[e->ndim++] = (int64_t)v;
    }

    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(info, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_uint(cJSON_GetArrayItem(offs, 0), &begin) ||
        !json_uint(cJSON_GetArrayItem(offs, 1), &end))
        return bad_tensor(name, "tensor '%s': data_offsets must be two integers [begin, end]%s",
                          "");
    char detail[128];
    if (begin > end || end > st->data_size) {
        snprintf(detail, sizeof detail, " ([%" PRIu64 ", %" PRIu64 "] in a data region of %zu "
                 "bytes)", begin, end, st->data_size);
        return bad_tensor(name, "tensor '%s': data_offsets out of range%s", detail);
    }
    int64_t numel;
    size_t nbytes;
    if (!osp_shape_numel(e->shape, e->ndim, &numel) ||
        !osp_mul_size((size_t)numel, osp_dtype_size(e->dtype), &nbytes))
        return bad_tensor(name, "tensor '%s': shape size overflows%s", "");
    if (nbytes != end - begin) {
        snprintf(detail, sizeof detail, " (data_offsets span %" PRIu64 " bytes, shape x %s needs "
                 "%zu)", end - begin, osp_dtype_safetensors_name(e->dtype), nbytes);
        return bad_tensor(name, "tensor '%s': size mismatch%s", detail);
    }
    e->offset = (size_t)begin;
    e->nbytes = nbytes;
    return OSP_OK;
}

static osp_status parse_metadata(osp_safetensors *st, const cJSON *meta)
{
    if (st->meta)
        return osp_error(OSP_ERR_DATA, "__metadata__ appears twice");
    if (!cJSON_IsObject(meta))
        return osp_error(OSP_ERR_DATA, "__metadata__ must be an object of strings");
    int n = cJSON_GetArraySize(meta);
    st->meta = calloc(2 * (size_t)n + 1, sizeof *st->meta);
    if (!st->meta)
        return osp_error_nomem("safetensors metadata", 2 * (size_t)n * sizeof *st->meta);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, meta) {
        if (!cJSON_IsString(kv)) {
            char buf[80];
            return osp_error(OSP_ERR_DATA, "__metadata__ value of '%s' is not a string",
                             osp_printable(kv->string, strlen(kv->string), buf, sizeof buf));
        }
        char **slot = &st->meta[2 * st->n_meta];
        slot[0] = strdup(kv->string);
        slot[1] = strdup(kv->valuestring);
        st->n_meta++; /* freed by close even when one strdup failed */
        if (!slot[0] || !slot[1])
            return osp_error_nomem("safetensors metadata", strlen(kv->valuestring));
    }
    return OSP_OK;
}

static int by_offset(const void *a, const void *b)
{
    const osp_st_entry *x = *(const osp_st_entry *const *)a, *y = *(const osp_st_entry *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int by_name(const void *a, const void *b)
{
    const osp_st_entry *x = *(const osp_st_entry *const *)a, *y = *(const osp_st_entry *const *)b;
    return strcmp(x->name, y->name);
}

/* Sorts st->sorted by offset to find overlaps, then by name (kept for
 * lookups) to find duplicates. */
static osp_status check_layout(osp_safetensors *st)
{
    st->sorted = malloc((st->n ? st->n : 1) * sizeof *st->sorted);
    if (!st->sorted)
        return osp_error_nomem("safetensors index", st->n * sizeof *st->sorted);
    for (size_t i = 0; i < st->n; i++)
        st->sorted[i] = &st->entries[i];
    qsort(st->sorted, st->n, sizeof *st->sorted, by_offset);
    const osp_st_entry *prev = NULL;
    for (size_t i = 0; i < st->n; i++) {
        const osp_st_entry *e = st->sorted[i];
        if (e->nbytes == 0)
            continue; /* an empty tensor overlaps nothing */
        if (prev && prev->offset + prev->nbytes > e->offset) {
            char a[80], b[80];
            return osp_error(OSP_ERR_DATA, "tensors '%s' and '%s' overlap in the data region",
                             osp_printable(prev->name, strlen(prev->name), a, sizeof a),
                             osp_printable(e->name, strlen(e->name), b, sizeof b));
        }
        prev = e;
    }
    qsort(st->sorted, st->n, sizeof *st->sorted, by_name);
    for (size_t i = 1; i < st->n; i++) {
        if (strcmp(st->sorted[i - 1]->name, st->sorted[i]->name) == 0) {
            char a[80];
            return osp_error(OSP_ERR_DATA, "tensor '%s' appears twice",
                             osp_printable(st->sorted[i]->name, strlen(st->sorted[i]->name), a,
                                           sizeof a));
        }
    }
    return OSP_OK;
}

static osp_status parse_json(osp_safetensors *st, const char *json, size_t len)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!root)
        return osp_error(OSP_ERR_DATA, "header is not valid JSON (error near byte %td of %zu)",
                         end ? end - json : (ptrdiff_t)0, len);
    osp_status s = OSP_OK;
    for (const char *p = end; p < json + len && s == OSP_OK; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            s = osp_error(OSP_ERR_DATA, "header has bytes after its JSON object (at byte %td)",
                          p - json);
    if (s == OSP_OK && !cJSON_IsObject(root))
        s = osp_error(OSP_ERR_DATA, "header must be a JSON object");
    size_t count = 0;
    const cJSON *item;
    if (s == OSP_OK) {
        cJSON_ArrayForEach(item, root)
            count += strcmp(item->string, "__metadata__") != 0;
        st->entries = calloc(count ? count : 1, sizeof *st->entries);
        if (!st->entries)
            s = osp_error_nomem("safetensors entries", count * sizeof *st->entries);
    }
    if (s == OSP_OK) {
        cJSON_ArrayForEach(item, root) {
            if (strcmp(item->string, "__metadata__") == 0) {
                s = parse_metadata(st, item);
            } else {
                osp_st_entry *e = &st->entries[st->n];
                e->name = strdup(item->string);
                if (!e->name) {
                    s = osp_error_nomem("tensor name", strlen(item->string));
                    break;
                }
                st->n++;
                s = parse_entry(st, item, e);
            }
            if (s != OSP_OK)
                break;
        }
    }
    cJSON_Delete(root);
    return s == OSP_OK ? check_layout(st) : s;
}

/* Validates the whole header of the file image [bytes, bytes + size). */
static osp_status parse(osp_safetensors *st, const uint8_t *bytes, size_t size)
{
    if (size < 8)
        return osp_error(OSP_ERR_DATA, "file of %zu bytes is too short for a safetensors header",
                         size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | bytes[i];
    if (n > size - 8)
        return osp_error(OSP_ERR_DATA, "header length %" PRIu64 " exceeds the file (%zu bytes)", n,
                         size);
    if (n > MAX_HEADER_BYTES)
        return osp_error(OSP_ERR_DATA, "header length %" PRIu64 " exceeds the %u-byte limit", n,
                         MAX_HEADER_BYTES);
    st->data = bytes + 8 + n;
    st->data_size = size - 8 - (size_t)n;
    return parse_json(st, (const char *)bytes + 8, (size_t)n);
}

static osp_safetensors *handle_new(const char *label)
{
    osp_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->label = strdup(label))) {
        free(st);
        osp_error_nomem("safetensors handle", sizeof *st);
        return NULL;
    }
    return st;
}

static osp_safetensors *finish_open(osp_safetensors *st, const uint8_t *bytes, size_t size)
{
    if (parse(st, bytes, size) != OSP_OK) {
        osp_error_context("%s", st->label);
        osp_safetensors_close(st);
        return NULL;
    }
    return st;
}

osp_safetensors *osp_safetensors_open_memory(const void *data, size_t size, const char *label)
{
    osp_safetensors *st = handle_new(label ? label : "memory");
    return st ? finish_open(st, data, size) : NULL;
}

osp_safetensors *osp_safetensors_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        osp_error(OSP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        osp_error(OSP_ERR_IO, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        osp_error(OSP_ERR_DATA, "%s: file of %zu bytes is too short for a safetensors header",
                  path, size);
        return NULL;
    }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        osp_error(OSP_ERR_IO, "%s: cannot map %zu bytes: %s", path, size, strerror(errno));
        return NULL;
    }
    osp_safetensors *st = handle_new(path);
    mapping *m = st ? calloc(1, sizeof *m) : NULL;
    if (!m) {
        munmap(base, size);
        free(st ? st->label : NULL);
        free(st);
        osp_error_nomem("safetensors mapping", sizeof *m);
        return NULL;
    }
    *m = (mapping){.base = base, .size = size, .refcount = 1};
    st->map = m;
    return finish_open(st, base, size);
}

/* ---------------- queries ---------------- */

size_t osp_safetensors_count(const osp_safetensors *st)
{
    return st->n;
}

const osp_st_entry *osp_safetensors_entry(const osp_safetensors *st, size_t i)
{
    return i < st->n ? &st->entries[i] : NULL;
}

const osp_st_entry *osp_safetensors_find(const osp_safetensors *st, const char *name)
{
    osp_st_entry key = {.name = name};
    const osp_st_entry *kp = &key;
    const osp_st_entry *const *hit = bsearch(&kp, st->sorted, st->n, sizeof *st->sorted, by_name);
    return hit ? *hit : NULL;
}

const char *osp_safetensors_metadata(const osp_safetensors *st, const char *key)
{
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[2 * i], key) == 0)
            return st->meta[2 * i + 1];
    return NULL;
}

osp_tensor *osp_safetensors_get(osp_safetensors *st, const char *name)
{
    const osp_st_entry *e = osp_safetensors_find(st, name);
    if (!e) {
        char buf[80];
        osp_error(OSP_ERR_DATA, "%s: no tensor '%s'", st->label,
                  osp_printable(name, strlen(name), buf, sizeof buf));
        return NULL;
    }
    const uint8_t *p = st->data + e->offset;
    /* Caller memory is not ours to hand out, and a misaligned element
     * cannot be read in place: copy those. */
    if (!st->map || (uintptr_t)p % osp_dtype_size(e->dtype) != 0)
        return osp_tensor_from_data(e->dtype, e->ndim, e->shape, p);
    osp_storage *s = osp_storage_new((void *)p, e->nbytes, OSP_DEVICE_CPU, storage_release,
                                     st->map);
    if (!s)
        return NULL;
    st->map->refcount++;
    osp_tensor *t = osp_tensor_wrap(s, e->dtype, e->ndim, e->shape, 0);
    osp_storage_release(s); /* the tensor holds its own reference */
    return t;
}

/* ---------------- writer ---------------- */

static cJSON *json_uint_raw(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateRaw(buf);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static osp_status check_write_args(const char *path, int n, const char *const *names,
                                   osp_tensor *const *tensors, const char *const *metadata,
                                   bool fetched)
{
    if (n < 0 || (n > 0 && (!names || !tensors)))
        return osp_error(OSP_ERR_RUNTIME, "%s: invalid tensor list", path);
    for (int i = 0; i < n; i++) {
        if (!names[i] || !*names[i] || strcmp(names[i], "__metadata__") == 0)
            return osp_error(OSP_ERR_RUNTIME, "%s: tensor %d has an invalid name", path, i);
        /* with a fetch, the data comes from it: the list only describes */
        if (!tensors[i] || !tensors[i]->storage ||
            (!fetched && tensors[i]->storage->device != OSP_DEVICE_CPU))
            return osp_error(OSP_ERR_RUNTIME, "%s: tensor '%s' is not a host tensor", path,
                             names[i]);
    }
    for (const char *const *m = metadata; m && *m; m += 2)
        if (!m[1])
            return osp_error(OSP_ERR_RUNTIME, "%s: metadata key '%s' has no value", path, m[0]);
    const char **sorted = malloc((n ? (size_t)n : 1) * sizeof *sorted);
    if (!sorted)
        return osp_error_nomem("name list", (size_t)n * sizeof *sorted);
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str);
    osp_status s = OSP_OK;
    for (int i = 1; i < n && s == OSP_OK; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            s = osp_error(OSP_ERR_RUNTIME, "%s: tensor name '%s' given twice", path, sorted[i]);
    free(sorted);
    return s;
}

/* Write order: largest element size first, then as given. With every size
 * a power of two and the header padded to 8, each tensor then starts at a
 * multiple of its element size, so readers can use it in place (the
 * reference writer orders by alignment the same way). */
static int *write_order(int n, osp_tensor *const *tensors)
{
    int *order = malloc((n ? (size_t)n : 1) * sizeof *order);
    if (!order)
        return NULL;
    int k = 0;
    for (size_t size = 8; size >= 1; size /= 2)
        for (int i = 0; i < n; i++)
            if (osp_dtype_size(tensors[i]->dtype) == size)
                order[k++] = i;
    return order;
}

/* The header JSON; NULL on allocation failure. Numbers are written as raw
 * integer text so offsets never turn into floating-point notation. */
static char *build_header(int n, const int *order, const char *const *names,
                          osp_tensor *const *tensors, const char *const *metadata)
{
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && metadata && *metadata) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        ok = meta != NULL;
        for (const char *const *m = metadata; ok && *m; m += 2)
            ok = cJSON_AddStringToObject(meta, m[0], m[1]) != NULL;
    }
    uint64_t offset = 0;
    for (int k = 0; ok && k < n; k++) {
        const osp_tensor *t = tensors[order[k]];
        cJSON *info = cJSON_AddObjectToObject(root, names[order[k]]);
        cJSON *shape = info ? cJSON_AddArrayToObject(info, "shape") : NULL;
        cJSON *offs = shape ? cJSON_AddArrayToObject(info, "data_offsets") : NULL;
        ok = offs && cJSON_AddStringToObject(info, "dtype", osp_dtype_safetensors_name(t->dtype));
        for (int d = 0; ok && d < t->ndim; d++)
            ok = cJSON_AddItemToArray(shape, json_uint_raw((uint64_t)t->shape[d]));
        uint64_t end = offset + osp_nbytes(t);
        ok = ok && cJSON_AddItemToArray(offs, json_uint_raw(offset)) &&
             cJSON_AddItemToArray(offs, json_uint_raw(end));
        offset = end;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

static osp_status write_tensor_data(osp_atomic_file *f, osp_tensor *t)
{
    if (osp_is_contiguous(t))
        return osp_nbytes(t) ? osp_atomic_write(f, osp_data(t), osp_nbytes(t)) : OSP_OK;
    osp_tensor *c = osp_pool_take(osp_tensor_contiguous(t));
    osp_status s = c ? osp_atomic_write(f, osp_data(c), osp_nbytes(c)) : osp_error_code();
    osp_release(c);
    return s;
}

/* The tensor to write as entry k: tensors[k] or what fetch hands over. */
static osp_status fetched(osp_tensor *const *tensors, int k, osp_st_fetch fetch, void *ctx,
                          osp_tensor **t)
{
    *t = tensors[k];
    if (!fetch)
        return OSP_OK;
    osp_status s = fetch(ctx, k, t);
    if (s == OSP_OK && (!*t || !(*t)->storage || (*t)->storage->device != OSP_DEVICE_CPU ||
                        (*t)->dtype != tensors[k]->dtype || !osp_same_shape(*t, tensors[k])))
        s = osp_error(OSP_ERR_RUNTIME, "safetensors writer: entry %d was handed a tensor of "
                                       "another dtype, shape or device", k);
    return s;
}

osp_status osp_safetensors_write(const char *path, int n, const char *const *names,
                                 osp_tensor *const *tensors, const char *const *metadata)
{
    return osp_safetensors_write_fetched(path, n, names, tensors, metadata, NULL, NULL);
}

osp_status osp_safetensors_write_fetched(const char *path, int n, const char *const *names,
                                         osp_tensor *const *tensors,
                                         const char *const *metadata, osp_st_fetch fetch,
                                         void *ctx)
{
    osp_status s = check_write_args(path, n, names, tensors, metadata, fetch != NULL);
    if (s != OSP_OK)
        return s;
    int *order = write_order(n, tensors);
    char *header = order ? build_header(n, order, names, tensors, metadata) : NULL;
    if (!header) {
        free(order);
        return osp_error_nomem("safetensors header", 0);
    }
    /* The reference writer pads the header with spaces to a multiple of 8
     * so the data region, and so every tensor, is 8-byte aligned. */
    size_t len = strlen(header), padded = (len + 7) & ~(size_t)7;
    uint8_t prefix[8];
    for (int i = 0; i < 8; i++)
        prefix[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";
    osp_atomic_file f;
    s = osp_atomic_open(&f, path);
    if (s == OSP_OK)
        s = osp_atomic_write(&f, prefix, 8);
    if (s == OSP_OK)
        s = osp_atomic_write(&f, header, len);
    if (s == OSP_OK)
        s = osp_atomic_write(&f, spaces, padded - len);
    for (int k = 0; k < n && s == OSP_OK; k++) {
        osp_tensor *t;
        s = fetched(tensors, order[k], fetch, ctx, &t);
        if (s == OSP_OK)
            s = write_tensor_data(&f, t);
    }
    if (s == OSP_OK)
        s = osp_atomic_commit(&f);
    else
        osp_atomic_abort(&f); /* safe after a failed open too */
    cJSON_free(header);
    free(order);
    return s;
}
