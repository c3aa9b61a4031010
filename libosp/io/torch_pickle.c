/* torch_pickle.c — reading torch.save state dicts (see torch_pickle.h):
 * the archive, the state dict its data.pkl describes, and tensor views. The
 * pickle runs on the opcode machine of pickle_vm.h; the hooks here are all
 * it may reach outside plain values: the allowed globals, the storages
 * (persistent ids naming archive entries) and the tensors rebuilt on them.
 * The writer is torch_save.c. */
#include "torch_pickle.h"

#include "core/checked.h"
#include "pickle_vm.h"
#include "printable.h"
#include "zip_stored.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "torch storages are read in place as little-endian");

/* ---------------- what the hooks make (OSP_PV_OBJECT types) ---------------- */

enum { OBJ_GLOBAL, OBJ_STORAGE, OBJ_TENSOR };

typedef enum global_kind {
    G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_STORAGE_TYPE,
} global_kind;

typedef struct pickled_global {
    global_kind which;
    osp_dtype dtype; /* of a storage type */
} pickled_global;

typedef struct pickled_storage {
    osp_dtype dtype;
    const osp_zip_entry *entry;
} pickled_storage;

typedef struct pickled_tensor {
    const pickled_storage *storage;
    int64_t offset;
    int ndim;
    int64_t shape[OSP_MAX_DIMS], stride[OSP_MAX_DIMS];
} pickled_tensor;

/* v's data when it is an object of that type, else NULL. */
static void *object_of(const osp_pv *v, int type)
{
    return v->kind == OSP_PV_OBJECT && v->obj.type == type ? v->obj.data : NULL;
}

/* A hook's refusal: the error, and no value. */
static osp_pv *refuse(osp_pickle *vm, const char *what)
{
    osp_pickle_fail(vm, what);
    return NULL;
}

static bool str_is(const char *s, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(s, want, n) == 0;
}

/* ---- globals ---- */

static const struct {
    const char *module, *name;
    global_kind which;
    osp_dtype dtype;
} allowed_globals[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, OSP_F32},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, OSP_F32},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, OSP_F32},
    {"torch", "FloatStorage", G_STORAGE_TYPE, OSP_F32},
    {"torch", "HalfStorage", G_STORAGE_TYPE, OSP_F16},
    {"torch", "BFloat16Storage", G_STORAGE_TYPE, OSP_BF16},
    {"torch", "DoubleStorage", G_STORAGE_TYPE, OSP_F64},
    {"torch", "LongStorage", G_STORAGE_TYPE, OSP_I64},
    {"torch", "IntStorage", G_STORAGE_TYPE, OSP_I32},
    {"torch", "ByteStorage", G_STORAGE_TYPE, OSP_U8},
};

static osp_pv *find_global(osp_pickle *vm, void *ctx, const char *module, size_t mlen,
                           const char *name, size_t nlen)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof allowed_globals / sizeof *allowed_globals; i++) {
        if (str_is(module, mlen, allowed_globals[i].module) &&
            str_is(name, nlen, allowed_globals[i].name)) {
            osp_pv *v = osp_pickle_object(vm, OBJ_GLOBAL, sizeof(pickled_global));
            if (v)
                *(pickled_global *)v->obj.data =
                    (pickled_global){allowed_globals[i].which, allowed_globals[i].dtype};
            return v;
        }
    }
    char m[64], n[64], msg[200];
    snprintf(msg, sizeof msg, "forbidden global '%s.%s' (a state dict needs only tensors, "
             "storages and OrderedDict)", osp_printable(module, mlen, m, sizeof m),
             osp_printable(name, nlen, n, sizeof n));
    return refuse(vm, msg);
}

/* ---- persistent ids: ('storage', torch.<T>Storage, key, location, numel) ---- */

typedef struct archive {
    const osp_zip *zip;
    const char *prefix; /* "<archive>/" */
} archive;

static osp_pv *load_storage(osp_pickle *vm, void *ctx, osp_pv *pid)
{
    const archive *ar = ctx;
    osp_pv **it = pid->tuple.items;
    if (pid->kind != OSP_PV_TUPLE || pid->tuple.n != 5 || it[0]->kind != OSP_PV_STR ||
        !str_is(it[0]->str.s, it[0]->str.len, "storage"))
        return refuse(vm, "persistent id is not ('storage', type, key, location, numel)");
    const pickled_global *type = object_of(it[1], OBJ_GLOBAL);
    if (!type || type->which != G_STORAGE_TYPE)
        return refuse(vm, "storage type is not one of torch.*Storage");
    if (it[2]->kind != OSP_PV_STR || it[2]->str.len == 0 || it[2]->str.len > 64 ||
        memchr(it[2]->str.s, '/', it[2]->str.len) || memchr(it[2]->str.s, 0, it[2]->str.len) ||
        it[3]->kind != OSP_PV_STR || it[4]->kind != OSP_PV_INT || it[4]->i < 0)
        return refuse(vm, "malformed storage key, location or size");
    char name[256], shown[80];
    snprintf(name, sizeof name, "%sdata/%.*s", ar->prefix, (int)it[2]->str.len, it[2]->str.s);
    const osp_zip_entry *e = osp_zip_find(ar->zip, name);
    osp_dtype dtype = type->dtype;
    size_t bytes;
    char msg[200];
    if (!e) {
        snprintf(msg, sizeof msg, "storage '%s' is not in the archive",
                 osp_printable(name, strlen(name), shown, sizeof shown));
        return refuse(vm, msg);
    }
    if (!osp_mul_size((size_t)it[4]->i, osp_dtype_size(dtype), &bytes) || bytes != e->size) {
        snprintf(msg, sizeof msg, "storage '%s' holds %llu bytes, not %lld x %zu",
                 osp_printable(name, strlen(name), shown, sizeof shown),
                 (unsigned long long)e->size, (long long)it[4]->i, osp_dtype_size(dtype));
        return refuse(vm, msg);
    }
    osp_pv *v = osp_pickle_object(vm, OBJ_STORAGE, sizeof(pickled_storage));
    if (v)
        *(pickled_storage *)v->obj.data = (pickled_storage){dtype, e};
    return v;
}

/* ---- REDUCE ---- */

static osp_status int_tuple(osp_pickle *vm, const osp_pv *t, int64_t *out, int *n,
                            const char *what)
{
    char msg[96];
    if (t->kind != OSP_PV_TUPLE || t->tuple.n > OSP_MAX_DIMS) {
        snprintf(msg, sizeof msg, "tensor %s is not a tuple of at most %d ints", what,
                 OSP_MAX_DIMS);
        return osp_pickle_fail(vm, msg);
    }
    for (size_t i = 0; i < t->tuple.n; i++) {
        if (t->tuple.items[i]->kind != OSP_PV_INT || t->tuple.items[i]->i < 0) {
            snprintf(msg, sizeof msg, "tensor %s holds a negative or non-integer entry", what);
            return osp_pickle_fail(vm, msg);
        }
        out[i] = t->tuple.items[i]->i;
    }
    *n = (int)t->tuple.n;
    return OSP_OK;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks
 * [, metadata]): checks that every element lies inside the storage. */
static osp_pv *rebuild_tensor(osp_pickle *vm, const osp_pv *args)
{
    osp_pv **a = args->tuple.items;
    if (args->tuple.n != 6 && args->tuple.n != 7)
        return refuse(vm, "_rebuild_tensor_v2 takes 6 or 7 arguments");
    const pickled_storage *s = object_of(a[0], OBJ_STORAGE);
    if (!s || a[1]->kind != OSP_PV_INT || a[1]->i < 0 || a[4]->kind != OSP_PV_BOOL ||
        a[5]->kind != OSP_PV_DICT ||
        (args->tuple.n == 7 && a[6]->kind != OSP_PV_DICT && a[6]->kind != OSP_PV_NONE))
        return refuse(vm, "_rebuild_tensor_v2 arguments are not (storage, offset, size, "
                          "stride, bool, OrderedDict)");
    if (a[5]->dict.n)
        return refuse(vm, "tensor with backward hooks");
    osp_pv *v = osp_pickle_object(vm, OBJ_TENSOR, sizeof(pickled_tensor));
    if (!v)
        return NULL;
    pickled_tensor *t = v->obj.data;
    int ns = 0;
    if (int_tuple(vm, a[2], t->shape, &t->ndim, "size") ||
        int_tuple(vm, a[3], t->stride, &ns, "stride"))
        return NULL;
    if (ns != t->ndim)
        return refuse(vm, "tensor size and stride differ in length");
    t->storage = s;
    t->offset = a[1]->i;
    int64_t numel, last = t->offset, step;
    if (!osp_shape_numel(t->shape, t->ndim, &numel))
        return refuse(vm, "tensor size overflows");
    uint64_t elems = s->entry->size / osp_dtype_size(s->dtype);
    for (int d = 0; d < t->ndim && numel; d++)
        if (!osp_mul_i64(t->shape[d] - 1, t->stride[d], &step) ||
            __builtin_add_overflow(last, step, &last))
            return refuse(vm, "tensor extent overflows");
    if (numel && (uint64_t)last >= elems)
        return refuse(vm, "tensor offset, size and stride reach past its storage");
    return v;
}

static osp_pv *call(osp_pickle *vm, void *ctx, osp_pv *fn, osp_pv *args)
{
    (void)ctx;
    const pickled_global *g = object_of(fn, OBJ_GLOBAL);
    if (!g || g->which == G_STORAGE_TYPE)
        return refuse(vm, "only OrderedDict and the torch rebuild functions may be called");
    switch (g->which) {
    case G_ORDERED_DICT:
        if (args->tuple.n)
            return refuse(vm, "OrderedDict called with arguments");
        return osp_pickle_value(vm, OSP_PV_DICT);
    case G_REBUILD_PARAMETER: /* (tensor, requires_grad, hooks) -> the tensor */
        if (args->tuple.n != 3 || !object_of(args->tuple.items[0], OBJ_TENSOR))
            return refuse(vm, "_rebuild_parameter arguments are not (tensor, bool, "
                              "OrderedDict)");
        return args->tuple.items[0];
    default:
        return rebuild_tensor(vm, args);
    }
}

/* ---------------- the file handle ---------------- */

typedef struct torch_map {
    void *base;
    size_t size;
    int refcount;
} torch_map;

typedef struct torch_tensor {
    osp_st_entry e; /* name owned */
    int64_t stride[OSP_MAX_DIMS];
    bool contiguous;
} torch_tensor;

struct osp_torch_file {
    char *label;
    const uint8_t *data;
    size_t size;
    torch_map *map; /* NULL when opened from memory */
    size_t n;
    torch_tensor *tensors;  /* pickle order */
    torch_tensor **by_name; /* sorted */
};

static void map_unref(torch_map *m)
{
    if (m && --m->refcount == 0) {
        munmap(m->base, m->size);
        free(m);
    }
}

void osp_torch_close(osp_torch_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free((char *)f->tensors[i].e.name);
    free(f->tensors);
    free(f->by_name);
    map_unref(f->map);
    free(f->label);
    free(f);
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp((*(torch_tensor *const *)a)->e.name, (*(torch_tensor *const *)b)->e.name);
}

/* Turns the unpickled dict into the tensor table. */
static osp_status collect(osp_torch_file *f, const osp_pv *root, const char *pkl)
{
    if (root->kind != OSP_PV_DICT)
        return osp_error(OSP_ERR_DATA, "%s: %s does not hold a dict of tensors", f->label, pkl);
    f->tensors = calloc(root->dict.n ? root->dict.n : 1, sizeof *f->tensors);
    f->by_name = calloc(root->dict.n ? root->dict.n : 1, sizeof *f->by_name);
    if (!f->tensors || !f->by_name)
        return osp_error_nomem("tensor table", root->dict.n * sizeof *f->tensors);
    for (size_t i = 0; i < root->dict.n; i++) {
        const osp_pv *k = root->dict.kv[2 * i];
        const pickled_tensor *v = object_of(root->dict.kv[2 * i + 1], OBJ_TENSOR);
        char shown[80];
        if (k->kind != OSP_PV_STR || !k->str.len || memchr(k->str.s, 0, k->str.len))
            return osp_error(OSP_ERR_DATA, "%s: a key of the state dict is not a tensor name",
                             f->label);
        if (!v)
            return osp_error(OSP_ERR_DATA, "%s: state dict entry '%s' is not a tensor", f->label,
                             osp_printable(k->str.s, k->str.len, shown, sizeof shown));
        torch_tensor *t = &f->tensors[f->n];
        char *name = malloc(k->str.len + 1);
        if (!name)
            return osp_error_nomem("tensor name", k->str.len + 1);
        memcpy(name, k->str.s, k->str.len);
        name[k->str.len] = 0;
        f->n++;
        const pickled_storage *s = v->storage;
        size_t item = osp_dtype_size(s->dtype);
        t->e = (osp_st_entry){.name = name, .dtype = s->dtype, .ndim = v->ndim};
        memcpy(t->e.shape, v->shape, sizeof t->e.shape);
        memcpy(t->stride, v->stride, sizeof t->stride);
        int64_t numel = 0, expect = 1;
        osp_shape_numel(t->e.shape, t->e.ndim, &numel); /* checked by rebuild_tensor */
        /* (an empty tensor's offset is never used, and need not be inside) */
        t->e.offset = (size_t)s->entry->offset + (numel ? (size_t)v->offset * item : 0);
        t->e.nbytes = (size_t)numel * item;
        t->contiguous = true;
        for (int d = t->e.ndim - 1; d >= 0; d--) {
            if (t->e.shape[d] != 1 && t->stride[d] != expect)
                t->contiguous = false;
            expect *= t->e.shape[d];
        }
        f->by_name[f->n - 1] = t;
    }
    qsort(f->by_name, f->n, sizeof *f->by_name, cmp_tensor);
    for (size_t i = 1; i < f->n; i++)
        if (strcmp(f->by_name[i]->e.name, f->by_name[i - 1]->e.name) == 0)
            return osp_error(OSP_ERR_DATA, "%s: tensor '%s' appears twice", f->label,
                             f->by_name[i]->e.name);
    return OSP_OK;
}

/* Finds <archive>/data.pkl (the archive folder is the first entry's, as
 * PyTorch's reader takes it), checks byteorder, runs the unpickler. */
static osp_status parse_archive(osp_torch_file *f)
{
    osp_zip zip;
    if (osp_zip_parse(f->data, f->size, f->label, &zip))
        return osp_error_code();
    osp_status st = OSP_OK;
    char prefix[256], name[300];
    const char *slash = zip.n ? strchr(zip.entries[0].name, '/') : NULL;
    if (!slash || (size_t)(slash - zip.entries[0].name) >= sizeof prefix - 1) {
        st = osp_error(OSP_ERR_DATA, "%s: not a PyTorch archive (no archive folder)", f->label);
        goto done;
    }
    snprintf(prefix, sizeof prefix, "%.*s/", (int)(slash - zip.entries[0].name),
             zip.entries[0].name);
    snprintf(name, sizeof name, "%sbyteorder", prefix);
    const osp_zip_entry *order = osp_zip_find(&zip, name);
    if (order && !(order->size == 6 && memcmp(f->data + order->offset, "little", 6) == 0)) {
        st = osp_error(OSP_ERR_DATA, "%s: big-endian checkpoints are not supported", f->label);
        goto done;
    }
    snprintf(name, sizeof name, "%sdata.pkl", prefix);
    const osp_zip_entry *pkl = osp_zip_find(&zip, name);
    if (!pkl) {
        st = osp_error(OSP_ERR_DATA, "%s: no %s in the archive (not a torch.save file)",
                       f->label, name);
        goto done;
    }
    if ((st = osp_zip_check_crc(f->data, pkl, f->label)))
        goto done;
    size_t label_len = strlen(f->label) + strlen(name) + 4;
    char *label = malloc(label_len);
    if (!label) {
        st = osp_error_nomem("label", label_len);
        goto done;
    }
    snprintf(label, label_len, "%s: %s", f->label, name);
    archive ar = {.zip = &zip, .prefix = prefix};
    osp_pickle_hooks hooks = {.ctx = &ar, .global = find_global, .reduce = call,
                              .persistent_load = load_storage};
    osp_pickle *vm = osp_pickle_new(f->data + pkl->offset, (size_t)pkl->size, label, &hooks);
    osp_pv *root = NULL;
    st = vm ? osp_pickle_run(vm, &root) : osp_error_code();
    if (!st)
        st = collect(f, root, name);
    osp_pickle_free(vm);
    free(label);
done:
    osp_zip_free(&zip);
    return st;
}

static osp_torch_file *handle_new(const char *label)
{
    osp_torch_file *f = calloc(1, sizeof *f);
    if (!f || !(f->label = strdup(label))) {
        free(f);
        osp_error_nomem("torch file", sizeof *f);
        return NULL;
    }
    return f;
}

osp_torch_file *osp_torch_open_memory(const void *data, size_t size, const char *label)
{
    osp_torch_file *f = handle_new(label ? label : "(memory)");
    if (!f)
        return NULL;
    f->data = data;
    f->size = size;
    if (parse_archive(f)) {
        osp_torch_close(f);
        return NULL;
    }
    return f;
}

osp_torch_file *osp_torch_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        osp_error(OSP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size == 0) {
        close(fd);
        osp_error(OSP_ERR_DATA, "%s: not a PyTorch archive (%s)", path,
                  S_ISREG(sb.st_mode) ? "empty file" : "not a regular file");
        return NULL;
    }
    size_t size = (size_t)sb.st_size;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        osp_error(OSP_ERR_IO, "%s: cannot map %zu bytes: %s", path, size, strerror(errno));
        return NULL;
    }
    osp_torch_file *f = handle_new(path);
    torch_map *m = f ? malloc(sizeof *m) : NULL;
    if (!m) {
        munmap(base, size);
        osp_torch_close(f);
        osp_error_nomem("torch mapping", sizeof *m);
        return NULL;
    }
    *m = (torch_map){base, size, 1};
    f->map = m;
    f->data = base;
    f->size = size;
    if (parse_archive(f)) {
        osp_torch_close(f);
        return NULL;
    }
    return f;
}

bool osp_torch_is_archive(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    unsigned char magic[4];
    bool zip = read(fd, magic, 4) == 4 && memcmp(magic, "PK\3\4", 4) == 0;
    close(fd);
    return zip;
}

size_t osp_torch_count(const osp_torch_file *f)
{
    return f->n;
}

const osp_st_entry *osp_torch_entry(const osp_torch_file *f, size_t i)
{
    return i < f->n ? &f->tensors[i].e : NULL;
}

static const torch_tensor *find(const osp_torch_file *f, const char *name)
{
    torch_tensor key = {.e.name = name}, *kp = &key;
    torch_tensor **hit = bsearch(&kp, f->by_name, f->n, sizeof *f->by_name, cmp_tensor);
    return hit ? *hit : NULL;
}

const osp_st_entry *osp_torch_find(const osp_torch_file *f, const char *name)
{
    const torch_tensor *t = find(f, name);
    return t ? &t->e : NULL;
}

static void storage_release(osp_storage *s)
{
    map_unref(s->owner);
}

/* A strided (or unaligned) tensor: gathered element by element into a new
 * contiguous one. The extent was checked against the storage at load. */
static osp_tensor *gather(const osp_torch_file *f, const torch_tensor *t)
{
    osp_tensor *out = osp_tensor_new(t->e.dtype, t->e.ndim, t->e.shape, OSP_DEVICE_CPU);
    if (!out)
        return NULL;
    size_t item = osp_dtype_size(t->e.dtype);
    int64_t n = osp_numel(out), idx[OSP_MAX_DIMS] = {0};
    uint8_t *dst = osp_data(out);
    for (int64_t i = 0; i < n; i++) {
        int64_t src = 0;
        for (int d = 0; d < t->e.ndim; d++)
            src += idx[d] * t->stride[d];
        memcpy(dst + (size_t)i * item, f->data + t->e.offset + (size_t)src * item, item);
        for (int d = t->e.ndim - 1; d >= 0 && ++idx[d] == t->e.shape[d]; d--)
            idx[d] = 0;
    }
    return out;
}

osp_tensor *osp_torch_get(osp_torch_file *f, const char *name)
{
    const torch_tensor *t = find(f, name);
    if (!t) {
        char buf[80];
        osp_error(OSP_ERR_DATA, "%s: no tensor '%s'", f->label,
                  osp_printable(name, strlen(name), buf, sizeof buf));
        return NULL;
    }
    const uint8_t *p = f->data + t->e.offset;
    if (!f->map || !t->contiguous || (uintptr_t)p % osp_dtype_size(t->e.dtype) != 0)
        return gather(f, t);
    osp_storage *s = osp_storage_new((void *)p, t->e.nbytes, OSP_DEVICE_CPU, storage_release,
                                     f->map);
    if (!s)
        return NULL;
    f->map->refcount++;
    osp_tensor *out = osp_tensor_wrap(s, t->e.dtype, t->e.ndim, t->e.shape, 0);
    osp_storage_release(s); /* the tensor holds its own reference */
    return out;
}
