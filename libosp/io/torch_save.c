/* torch_save.c — writing a state dict as torch.save does (torch_pickle.h).
 *
 * data.pkl is what CPython's pickle.Pickler (protocol 2) emits for a dict
 * of tensors under torch's persistent_id: the same opcodes in the same
 * order, with the pickler's memo (BINPUT after every string, tuple, global
 * and reduced object; BINGET when 'storage', 'cpu', a storage type, the
 * rebuild function or OrderedDict comes again). The archive is laid out as
 * PyTorch's zip writer does it: <archive>/data.pkl, <archive>/byteorder,
 * <archive>/data/<key> in string order of the keys, <archive>/version;
 * stored entries whose data starts on a 64-byte boundary (an "FB" extra
 * field pads the local header); ZIP64 records where sizes or offsets
 * need them (or everywhere with OSP_TORCH_SAVE_ZIP64). */
#include "torch_pickle.h"

#include "atomic_file.h"
#include "zip_stored.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- a growing byte buffer ---------------- */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
    bool failed;
} bytes;

static void put(bytes *b, const void *data, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) /* memcpy's arguments must be valid even for 0 bytes */
        memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void put_le(bytes *b, uint64_t v, int n)
{
    uint8_t le[8];
    for (int i = 0; i < n; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    put(b, le, (size_t)n);
}

static void put_op(bytes *b, uint8_t op)
{
    put(b, &op, 1);
}

/* ---------------- the pickle ---------------- */

typedef struct pickler {
    bytes out;
    uint64_t memo_next;
    /* memo indices of the objects torch shares between tensors; -1 = unseen */
    int64_t storage_str, cpu_str, rebuild, ordered_dict, storage_type[OSP_DTYPE_COUNT];
} pickler;

static void memoize(pickler *p, int64_t *slot)
{
    uint64_t idx = p->memo_next++;
    if (slot)
        *slot = (int64_t)idx;
    if (idx < 256) {
        put_op(&p->out, 'q'); /* BINPUT */
        put_le(&p->out, idx, 1);
    } else {
        put_op(&p->out, 'r'); /* LONG_BINPUT */
        put_le(&p->out, idx, 4);
    }
}

/* BINGET of an object seen before; false when *slot is unseen. */
static bool memo_get(pickler *p, const int64_t *slot)
{
    if (!slot || *slot < 0)
        return false;
    put_op(&p->out, *slot < 256 ? 'h' : 'j');
    put_le(&p->out, (uint64_t)*slot, *slot < 256 ? 1 : 4);
    return true;
}

static void save_str(pickler *p, const char *s, int64_t *slot)
{
    if (memo_get(p, slot))
        return;
    put_op(&p->out, 'X'); /* BINUNICODE */
    put_le(&p->out, strlen(s), 4);
    put(&p->out, s, strlen(s));
    memoize(p, slot);
}

static void save_global(pickler *p, const char *module, const char *name, int64_t *slot)
{
    if (memo_get(p, slot))
        return;
    put_op(&p->out, 'c'); /* GLOBAL */
    put(&p->out, module, strlen(module));
    put_op(&p->out, '\n');
    put(&p->out, name, strlen(name));
    put_op(&p->out, '\n');
    memoize(p, slot);
}

/* save_long for the non-negative ints a state dict holds. */
static void save_int(pickler *p, int64_t v)
{
    if (v <= 0xff) {
        put_op(&p->out, 'K');
        put_le(&p->out, (uint64_t)v, 1);
    } else if (v <= 0xffff) {
        put_op(&p->out, 'M');
        put_le(&p->out, (uint64_t)v, 2);
    } else if (v <= 0x7fffffff) {
        put_op(&p->out, 'J');
        put_le(&p->out, (uint64_t)v, 4);
    } else { /* LONG1: bit_length / 8 + 1 bytes, room for the sign bit */
        int n = (64 - __builtin_clzll((unsigned long long)v)) / 8 + 1;
        put_op(&p->out, 0x8a);
        put_le(&p->out, (uint64_t)n, 1);
        put_le(&p->out, (uint64_t)v, n);
    }
}

static void save_int_tuple(pickler *p, int n, const int64_t *v)
{
    if (n == 0) {
        put_op(&p->out, ')'); /* EMPTY_TUPLE, never memoized */
        return;
    }
    if (n > 3)
        put_op(&p->out, '(');
    for (int i = 0; i < n; i++)
        save_int(p, v[i]);
    put_op(&p->out, n > 3 ? 't' : (uint8_t)(0x84 + n)); /* TUPLE or TUPLE1..3 */
    memoize(p, NULL);
}

static const char *storage_type(osp_dtype t)
{
    switch (t) {
    case OSP_F32: return "FloatStorage";
    case OSP_F16: return "HalfStorage";
    case OSP_BF16: return "BFloat16Storage";
    case OSP_F64: return "DoubleStorage";
    case OSP_I64: return "LongStorage";
    case OSP_I32: return "IntStorage";
    default: return "ByteStorage";
    }
}

/* _rebuild_tensor_v2(('storage', T, key, 'cpu', numel) as a persistent id,
 * 0, size, stride, False, OrderedDict()), reduced and memoized. */
static void save_tensor(pickler *p, const osp_tensor *t, const char *key)
{
    int64_t stride[OSP_MAX_DIMS], s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= t->shape[d];
    }
    save_global(p, "torch._utils", "_rebuild_tensor_v2", &p->rebuild);
    put_op(&p->out, '('); /* the 6 arguments */
    put_op(&p->out, '('); /* the persistent id */
    save_str(p, "storage", &p->storage_str);
    save_global(p, "torch", storage_type(t->dtype), &p->storage_type[t->dtype]);
    save_str(p, key, NULL);
    save_str(p, "cpu", &p->cpu_str);
    save_int(p, osp_numel(t));
    put_op(&p->out, 't');
    memoize(p, NULL);
    put_op(&p->out, 'Q'); /* BINPERSID */
    save_int(p, 0);
    save_int_tuple(p, t->ndim, t->shape);
    save_int_tuple(p, t->ndim, stride);
    put_op(&p->out, 0x89); /* NEWFALSE: requires_grad */
    save_global(p, "collections", "OrderedDict", &p->ordered_dict);
    put_op(&p->out, ')');
    put_op(&p->out, 'R');
    memoize(p, NULL);
    put_op(&p->out, 't');
    memoize(p, NULL);
    put_op(&p->out, 'R');
    memoize(p, NULL);
}

/* pickle.dumps(dict(zip(names, tensors)), protocol=2) under torch's
 * persistent_id; storage i has key str(i). */
static void build_pickle(pickler *p, int n, const char *const *names, osp_tensor *const *tensors)
{
    memset(p, 0, sizeof *p);
    p->storage_str = p->cpu_str = p->rebuild = p->ordered_dict = -1;
    for (int i = 0; i < OSP_DTYPE_COUNT; i++)
        p->storage_type[i] = -1;
    put_op(&p->out, 0x80); /* PROTO 2 */
    put_op(&p->out, 2);
    put_op(&p->out, '}');
    memoize(p, NULL);
    for (int start = 0; start < n; start += 1000) { /* the pickler's SETITEMS batches */
        int end = n - start > 1000 ? start + 1000 : n;
        if (end - start > 1)
            put_op(&p->out, '(');
        for (int i = start; i < end; i++) {
            char key[24];
            snprintf(key, sizeof key, "%d", i);
            save_str(p, names[i], NULL);
            save_tensor(p, tensors[i], key);
        }
        put_op(&p->out, end - start > 1 ? 'u' : 's');
    }
    put_op(&p->out, '.');
}

/* ---------------- the archive ---------------- */

enum { ALIGN = 64 };

typedef struct zip_record {
    char *name;
    uint64_t header_offset, size;
    uint32_t crc;
} zip_record;

typedef struct zip_writer {
    osp_atomic_file file;
    uint64_t pos;
    bool force64;
    size_t n;
    zip_record *records;
    osp_status st;
} zip_writer;

static void zw_write(zip_writer *z, const void *data, size_t n)
{
    if (!z->st && (z->st = osp_atomic_write(&z->file, data, n)) == OSP_OK)
        z->pos += n;
}

/* The ZIP64 extra field with the sizes (when wide) and the offset (when
 * wide): the fields whose 32-bit slot holds 0xffffffff. */
static void zip64_extra(bytes *b, bool wide_size, bool wide_offset, uint64_t size, uint64_t offset)
{
    put_le(b, 0x0001, 2);
    put_le(b, (wide_size ? 16u : 0u) + (wide_offset ? 8u : 0u), 2);
    if (wide_size) {
        put_le(b, size, 8);
        put_le(b, size, 8);
    }
    if (wide_offset)
        put_le(b, offset, 8);
}

static void zw_record(zip_writer *z, const char *archive, const char *name, const void *data,
                      uint64_t size)
{
    if (z->st)
        return;
    zip_record *r = realloc(z->records, (z->n + 1) * sizeof *r);
    size_t name_len = strlen(archive) + 1 + strlen(name);
    char *full = r ? malloc(name_len + 1) : NULL;
    if (r)
        z->records = r;
    if (!full) {
        z->st = osp_error_nomem("zip record", name_len + 1);
        return;
    }
    snprintf(full, name_len + 1, "%s/%s", archive, name);
    r = &z->records[z->n++];
    *r = (zip_record){full, z->pos, size, osp_crc32(0, data, (size_t)size)};
    bool wide_size = z->force64 || size >= 0xffffffffu;
    bool wide_offset = z->force64 || z->pos >= 0xffffffffu;
    bytes h = {0}, extra = {0};
    if (wide_size || wide_offset)
        zip64_extra(&extra, wide_size, wide_offset, size, z->pos);
    /* "FB" field padding the data start to a multiple of 64 */
    uint64_t start = z->pos + 30 + name_len + extra.n + 4;
    uint64_t pad = (ALIGN - start % ALIGN) % ALIGN;
    put_le(&extra, 'F' | 'B' << 8, 2);
    put_le(&extra, pad, 2);
    for (uint64_t i = 0; i < pad; i++)
        put_op(&extra, 'Z');
    put_le(&h, 0x04034b50, 4);
    put_le(&h, wide_size || wide_offset ? 45 : 20, 2); /* version needed */
    put_le(&h, 0, 2);                                    /* flags */
    put_le(&h, 0, 2);                                    /* stored */
    put_le(&h, 0, 2);                                    /* time */
    put_le(&h, 0x21, 2);                                 /* date 1980-01-01 */
    put_le(&h, r->crc, 4);
    put_le(&h, wide_size ? 0xffffffffu : size, 4);
    put_le(&h, wide_size ? 0xffffffffu : size, 4);
    put_le(&h, name_len, 2);
    put_le(&h, extra.n, 2);
    put(&h, full, name_len);
    put(&h, extra.p, extra.n);
    if (h.failed || extra.failed)
        z->st = osp_error_nomem("zip header", h.n + extra.n);
    zw_write(z, h.p, h.n);
    zw_write(z, data, (size_t)size);
    free(h.p);
    free(extra.p);
}

static void zw_finish(zip_writer *z)
{
    if (z->st)
        return;
    uint64_t cd_offset = z->pos;
    bytes cd = {0};
    for (size_t i = 0; i < z->n; i++) {
        const zip_record *r = &z->records[i];
        bool wide_size = z->force64 || r->size >= 0xffffffffu;
        bool wide_offset = z->force64 || r->header_offset >= 0xffffffffu;
        bytes extra = {0};
        if (wide_size || wide_offset)
            zip64_extra(&extra, wide_size, wide_offset, r->size, r->header_offset);
        put_le(&cd, 0x02014b50, 4);
        put_le(&cd, 45, 2); /* made by */
        put_le(&cd, wide_size || wide_offset ? 45 : 20, 2);
        put_le(&cd, 0, 2);
        put_le(&cd, 0, 2);
        put_le(&cd, 0, 2);
        put_le(&cd, 0x21, 2);
        put_le(&cd, r->crc, 4);
        put_le(&cd, wide_size ? 0xffffffffu : r->size, 4);
        put_le(&cd, wide_size ? 0xffffffffu : r->size, 4);
        put_le(&cd, strlen(r->name), 2);
        put_le(&cd, extra.n, 2);
        put_le(&cd, 0, 2); /* comment */
        put_le(&cd, 0, 2); /* disk */
        put_le(&cd, 0, 2); /* internal attributes */
        put_le(&cd, 0, 4); /* external attributes */
        put_le(&cd, wide_offset ? 0xffffffffu : r->header_offset, 4);
        put(&cd, r->name, strlen(r->name));
        put(&cd, extra.p, extra.n);
        cd.failed |= extra.failed;
        free(extra.p);
    }
    uint64_t cd_size = cd.n;
    bool zip64 = z->force64 || z->n >= 0xffff || cd_offset >= 0xffffffffu ||
                 cd_size >= 0xffffffffu;
    if (zip64) {
        uint64_t record = cd_offset + cd_size;
        put_le(&cd, 0x06064b50, 4);
        put_le(&cd, 44, 8);
        put_le(&cd, 45, 2);
        put_le(&cd, 45, 2);
        put_le(&cd, 0, 4);
        put_le(&cd, 0, 4);
        put_le(&cd, z->n, 8);
        put_le(&cd, z->n, 8);
        put_le(&cd, cd_size, 8);
        put_le(&cd, cd_offset, 8);
        put_le(&cd, 0x07064b50, 4); /* locator */
        put_le(&cd, 0, 4);
        put_le(&cd, record, 8);
        put_le(&cd, 1, 4);
    }
    put_le(&cd, 0x06054b50, 4);
    put_le(&cd, 0, 2);
    put_le(&cd, 0, 2);
    put_le(&cd, zip64 ? 0xffff : z->n, 2);
    put_le(&cd, zip64 ? 0xffff : z->n, 2);
    put_le(&cd, zip64 ? 0xffffffffu : cd_size, 4);
    put_le(&cd, zip64 ? 0xffffffffu : cd_offset, 4);
    put_le(&cd, 0, 2);
    if (cd.failed)
        z->st = osp_error_nomem("zip directory", cd.cap);
    zw_write(z, cd.p, cd.n);
    free(cd.p);
}

/* PyTorch's archive folder: the file's base name up to its last dot. */
static void archive_name(const char *path, char *out, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot ? (size_t)(dot - base) : strlen(base);
    snprintf(out, len, "%.*s", (int)n, base);
    if (!*out)
        snprintf(out, len, "archive");
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

osp_status osp_torch_save(const char *path, int n, const char *const *names,
                          osp_tensor *const *tensors, unsigned flags)
{
    if (n < 0)
        return osp_error(OSP_ERR_RUNTIME, "torch_save: %d tensors", n);
    for (int i = 0; i < n; i++)
        if (!tensors[i] || !osp_data(tensors[i]))
            return osp_error(OSP_ERR_RUNTIME, "torch_save: tensor '%s' is not on the host",
                             names[i]);
    pickler p;
    build_pickle(&p, n, names, tensors);
    if (p.out.failed) {
        free(p.out.p);
        return osp_error_nomem("pickle", p.out.cap);
    }
    char archive[256];
    archive_name(path, archive, sizeof archive);
    zip_writer z = {.force64 = flags & OSP_TORCH_SAVE_ZIP64};
    if ((z.st = osp_atomic_open(&z.file, path))) {
        free(p.out.p);
        return z.st;
    }
    zw_record(&z, archive, "data.pkl", p.out.p, p.out.n);
    zw_record(&z, archive, "byteorder", "little", 6);
    /* storages in string order of their keys, as torch sorts them */
    char (*keys)[24] = malloc((size_t)(n ? n : 1) * sizeof *keys);
    const char **order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!keys || !order)
        z.st = osp_error_nomem("storage keys", (size_t)n * sizeof *keys);
    for (int i = 0; i < n && !z.st; i++) {
        snprintf(keys[i], sizeof keys[i], "%d", i);
        order[i] = keys[i];
    }
    if (!z.st)
        qsort(order, (size_t)n, sizeof *order, cmp_key);
    for (int k = 0; k < n && !z.st; k++) {
        int i = atoi(order[k]);
        osp_pool_push();
        osp_tensor *c = osp_tensor_contiguous(tensors[i]);
        char name[32];
        snprintf(name, sizeof name, "data/%s", order[k]);
        if (!c)
            z.st = osp_error_code();
        else
            zw_record(&z, archive, name, osp_data(c), osp_nbytes(c));
        osp_pool_pop();
    }
    zw_record(&z, archive, "version", "3\n", 2);
    zw_finish(&z);
    if (!z.st)
        z.st = osp_atomic_commit(&z.file);
    osp_atomic_abort(&z.file);
    for (size_t i = 0; i < z.n; i++)
        free(z.records[i].name);
    free(z.records);
    free(keys);
    free(order);
    free(p.out.p);
    return z.st;
}
