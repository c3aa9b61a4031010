/* torch_pickle.c — reading torch.save state dicts: the archive, the
 * restricted unpickler and tensor views (see torch_pickle.h). The writer is
 * torch_save.c.
 *
 * The unpickler is CPython's pickle machine cut down to a state dict: a
 * value stack, a stack of MARK positions and a memo. Values live in an
 * arena freed in one go; every allocation is bounded by the input size
 * (the stack and the memo grow by at most one slot per opcode byte). */
#include "torch_pickle.h"

#include "core/checked.h"
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

/* ---------------- values and their arena ---------------- */

typedef enum pv_kind {
    PV_NONE, PV_BOOL, PV_INT, PV_STR, PV_TUPLE, PV_DICT, PV_GLOBAL, PV_STORAGE, PV_TENSOR,
} pv_kind;

typedef enum pv_global {
    G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_STORAGE_TYPE,
} pv_global;

typedef struct pv pv;
struct pv {
    pv_kind kind;
    union {
        bool b;
        int64_t i;
        struct { const char *s; size_t len; } str; /* into data.pkl */
        struct { pv **items; size_t n; } tuple;
        struct { pv **kv; size_t n, cap; } dict;   /* kv[2i] = key, kv[2i+1] = value */
        struct { pv_global which; osp_dtype dtype; } global;
        struct { osp_dtype dtype; const osp_zip_entry *entry; } storage;
        struct {
            pv *storage;
            int64_t offset;
            int ndim;
            int64_t shape[OSP_MAX_DIMS], stride[OSP_MAX_DIMS];
        } tensor;
    };
};

typedef struct arena_block arena_block;
struct arena_block {
    arena_block *next;
    size_t used, cap;
    _Alignas(max_align_t) unsigned char data[];
};

typedef struct arena {
    arena_block *head;
} arena;

static void *arena_alloc(arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = calloc(1, sizeof *b + cap);
        if (!b) {
            osp_error_nomem("pickle values", cap);
            return NULL;
        }
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static void arena_free(arena *a)
{
    while (a->head) {
        arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* ---------------- the machine ---------------- */

typedef struct unpickler {
    const uint8_t *p;   /* data.pkl */
    size_t len, pos, op_pos;
    const char *label;
    const osp_zip *zip; /* for storage lookups */
    const char *prefix; /* "<archive>/" */
    arena mem;
    pv **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t n_marks, marks_cap;
    pv **memo;
    size_t memo_cap, memo_count;
} unpickler;

/* Opcodes by name (pickletools), so a rejected one is named in the error. */
static const char *opcode_name(uint8_t op)
{
    switch (op) {
    case '(': return "MARK";          case '.': return "STOP";
    case '0': return "POP";           case '1': return "POP_MARK";
    case '2': return "DUP";           case 'F': return "FLOAT";
    case 'I': return "INT";           case 'J': return "BININT";
    case 'K': return "BININT1";       case 'L': return "LONG";
    case 'M': return "BININT2";       case 'N': return "NONE";
    case 'P': return "PERSID";        case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";        case 'S': return "STRING";
    case 'T': return "BINSTRING";     case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";       case 'X': return "BINUNICODE";
    case 'a': return "APPEND";        case 'b': return "BUILD";
    case 'c': return "GLOBAL";        case 'd': return "DICT";
    case '}': return "EMPTY_DICT";    case 'e': return "APPENDS";
    case 'g': return "GET";           case 'h': return "BINGET";
    case 'i': return "INST";          case 'j': return "LONG_BINGET";
    case 'l': return "LIST";          case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";           case 'p': return "PUT";
    case 'q': return "BINPUT";        case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";       case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";   case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";      case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";       case 0x82: return "EXT1";
    case 0x83: return "EXT2";         case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";       case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";       case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";     case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";        case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES"; case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";  case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL"; case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";        case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";  case 0x98: return "READONLY_BUFFER";
    default: return "unknown opcode";
    }
}

/* Errors name the pickle and the offset of the opcode being run. */
static osp_status fail(const unpickler *u, const char *what)
{
    return osp_error(OSP_ERR_DATA, "%s: pickle byte %zu (%s): %s", u->label, u->op_pos,
                     opcode_name(u->p[u->op_pos]), what);
}

static osp_status take(unpickler *u, size_t n, const uint8_t **out)
{
    if (n > u->len - u->pos)
        return fail(u, "truncated pickle");
    *out = u->p + u->pos;
    u->pos += n;
    return OSP_OK;
}

static osp_status take_uint(unpickler *u, size_t n, uint64_t *out)
{
    const uint8_t *b = NULL;
    if (take(u, n, &b))
        return osp_error_code();
    *out = 0;
    for (size_t i = n; i-- > 0;)
        *out = *out << 8 | b[i];
    return OSP_OK;
}

static pv *new_value(unpickler *u, pv_kind kind)
{
    pv *v = arena_alloc(&u->mem, sizeof *v);
    if (v)
        v->kind = kind;
    return v;
}

static osp_status push(unpickler *u, pv *v)
{
    if (!v)
        return osp_error_code();
    if (u->sp == u->stack_cap) {
        size_t cap = u->stack_cap ? 2 * u->stack_cap : 64;
        pv **s = realloc(u->stack, cap * sizeof *s);
        if (!s)
            return osp_error_nomem("pickle stack", cap * sizeof *s);
        u->stack = s;
        u->stack_cap = cap;
    }
    u->stack[u->sp++] = v;
    return OSP_OK;
}

/* Stack entries above the innermost MARK may be popped. */
static size_t floor_of_stack(const unpickler *u)
{
    return u->n_marks ? u->marks[u->n_marks - 1] : 0;
}

static pv *pop(unpickler *u)
{
    if (u->sp <= floor_of_stack(u)) {
        fail(u, "stack underflow");
        return NULL;
    }
    return u->stack[--u->sp];
}

static pv *top(unpickler *u)
{
    if (u->sp <= floor_of_stack(u)) {
        fail(u, "stack underflow");
        return NULL;
    }
    return u->stack[u->sp - 1];
}

/* Pops everything above the innermost MARK and the mark itself;
 * *items points at them (valid until the next push). */
static osp_status pop_mark(unpickler *u, pv ***items, size_t *n)
{
    if (!u->n_marks)
        return fail(u, "no MARK to pop to");
    size_t base = u->marks[--u->n_marks];
    *n = u->sp - base;
    *items = *n ? u->stack + base : NULL;
    u->sp = base;
    return OSP_OK;
}

static osp_status push_tuple(unpickler *u, pv **items, size_t n)
{
    pv *t = new_value(u, PV_TUPLE);
    pv **copy = t && n ? arena_alloc(&u->mem, n * sizeof *copy) : NULL;
    if (!t || (n && !copy))
        return osp_error_code();
    if (n)
        memcpy(copy, items, n * sizeof *copy);
    t->tuple.items = copy;
    t->tuple.n = n;
    return push(u, t);
}

static osp_status dict_set(unpickler *u, pv *d, pv *key, pv *value)
{
    if (d->kind != PV_DICT)
        return fail(u, "items set on something that is not a dict");
    if (d->dict.n == d->dict.cap) {
        size_t cap = d->dict.cap ? 2 * d->dict.cap : 8;
        pv **kv = arena_alloc(&u->mem, 2 * cap * sizeof *kv);
        if (!kv)
            return osp_error_code();
        if (d->dict.n)
            memcpy(kv, d->dict.kv, 2 * d->dict.n * sizeof *kv);
        d->dict.kv = kv;
        d->dict.cap = cap;
    }
    d->dict.kv[2 * d->dict.n] = key;
    d->dict.kv[2 * d->dict.n + 1] = value;
    d->dict.n++;
    return OSP_OK;
}

/* ---- globals ---- */

static const struct {
    const char *module, *name;
    pv_global which;
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

static bool str_is(const char *s, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(s, want, n) == 0;
}

static osp_status push_global(unpickler *u, const char *module, size_t mlen, const char *name,
                              size_t nlen)
{
    for (size_t i = 0; i < sizeof allowed_globals / sizeof *allowed_globals; i++) {
        if (str_is(module, mlen, allowed_globals[i].module) &&
            str_is(name, nlen, allowed_globals[i].name)) {
            pv *g = new_value(u, PV_GLOBAL);
            if (g) {
                g->global.which = allowed_globals[i].which;
                g->global.dtype = allowed_globals[i].dtype;
            }
            return push(u, g);
        }
    }
    char m[64], n[64], msg[200];
    snprintf(msg, sizeof msg, "forbidden global '%s.%s' (a state dict needs only tensors, "
             "storages and OrderedDict)", osp_printable(module, mlen, m, sizeof m),
             osp_printable(name, nlen, n, sizeof n));
    return fail(u, msg);
}

/* GLOBAL: "module\nname\n" inline. */
static osp_status op_global(unpickler *u)
{
    const char *start[2];
    size_t len[2];
    for (int k = 0; k < 2; k++) {
        start[k] = (const char *)u->p + u->pos;
        const void *nl = memchr(start[k], '\n', u->len - u->pos);
        if (!nl)
            return fail(u, "truncated pickle");
        len[k] = (size_t)((const char *)nl - start[k]);
        u->pos += len[k] + 1;
    }
    return push_global(u, start[0], len[0], start[1], len[1]);
}

static osp_status op_stack_global(unpickler *u)
{
    pv *name = pop(u), *module = name ? pop(u) : NULL;
    if (!module)
        return osp_error_code();
    if (name->kind != PV_STR || module->kind != PV_STR)
        return fail(u, "module and name must be strings");
    return push_global(u, module->str.s, module->str.len, name->str.s, name->str.len);
}

/* ---- persistent ids: ('storage', torch.<T>Storage, key, location, numel) ---- */

static osp_status op_binpersid(unpickler *u)
{
    pv *pid = pop(u);
    if (!pid)
        return osp_error_code();
    pv **it = pid->tuple.items;
    if (pid->kind != PV_TUPLE || pid->tuple.n != 5 || it[0]->kind != PV_STR ||
        !str_is(it[0]->str.s, it[0]->str.len, "storage"))
        return fail(u, "persistent id is not ('storage', type, key, location, numel)");
    if (it[1]->kind != PV_GLOBAL || it[1]->global.which != G_STORAGE_TYPE)
        return fail(u, "storage type is not one of torch.*Storage");
    if (it[2]->kind != PV_STR || it[2]->str.len == 0 || it[2]->str.len > 64 ||
        memchr(it[2]->str.s, '/', it[2]->str.len) || memchr(it[2]->str.s, 0, it[2]->str.len) ||
        it[3]->kind != PV_STR || it[4]->kind != PV_INT || it[4]->i < 0)
        return fail(u, "malformed storage key, location or size");
    char name[256], shown[80];
    snprintf(name, sizeof name, "%sdata/%.*s", u->prefix, (int)it[2]->str.len, it[2]->str.s);
    const osp_zip_entry *e = osp_zip_find(u->zip, name);
    osp_dtype dtype = it[1]->global.dtype;
    size_t bytes;
    char msg[200];
    if (!e) {
        snprintf(msg, sizeof msg, "storage '%s' is not in the archive",
                 osp_printable(name, strlen(name), shown, sizeof shown));
        return fail(u, msg);
    }
    if (!osp_mul_size((size_t)it[4]->i, osp_dtype_size(dtype), &bytes) || bytes != e->size) {
        snprintf(msg, sizeof msg, "storage '%s' holds %llu bytes, not %lld x %zu",
                 osp_printable(name, strlen(name), shown, sizeof shown),
                 (unsigned long long)e->size, (long long)it[4]->i, osp_dtype_size(dtype));
        return fail(u, msg);
    }
    pv *s = new_value(u, PV_STORAGE);
    if (s) {
        s->storage.dtype = dtype;
        s->storage.entry = e;
    }
    return push(u, s);
}

/* ---- REDUCE ---- */

static osp_status int_tuple(unpickler *u, const pv *t, int64_t *out, int *n, const char *what)
{
    char msg[96];
    if (t->kind != PV_TUPLE || t->tuple.n > OSP_MAX_DIMS) {
        snprintf(msg, sizeof msg, "tensor %s is not a tuple of at most %d ints", what,
                 OSP_MAX_DIMS);
        return fail(u, msg);
    }
    for (size_t i = 0; i < t->tuple.n; i++) {
        if (t->tuple.items[i]->kind != PV_INT || t->tuple.items[i]->i < 0) {
            snprintf(msg, sizeof msg, "tensor %s holds a negative or non-integer entry", what);
            return fail(u, msg);
        }
        out[i] = t->tuple.items[i]->i;
    }
    *n = (int)t->tuple.n;
    return OSP_OK;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks
 * [, metadata]): checks that every element lies inside the storage. */
static osp_status rebuild_tensor(unpickler *u, const pv *args)
{
    pv **a = args->tuple.items;
    if (args->tuple.n != 6 && args->tuple.n != 7)
        return fail(u, "_rebuild_tensor_v2 takes 6 or 7 arguments");
    if (a[0]->kind != PV_STORAGE || a[1]->kind != PV_INT || a[1]->i < 0 ||
        a[4]->kind != PV_BOOL || a[5]->kind != PV_DICT ||
        (args->tuple.n == 7 && a[6]->kind != PV_DICT && a[6]->kind != PV_NONE))
        return fail(u, "_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, "
                       "bool, OrderedDict)");
    if (a[5]->dict.n)
        return fail(u, "tensor with backward hooks");
    pv *t = new_value(u, PV_TENSOR);
    if (!t)
        return osp_error_code();
    int ns = 0;
    if (int_tuple(u, a[2], t->tensor.shape, &t->tensor.ndim, "size") ||
        int_tuple(u, a[3], t->tensor.stride, &ns, "stride"))
        return osp_error_code();
    if (ns != t->tensor.ndim)
        return fail(u, "tensor size and stride differ in length");
    t->tensor.storage = a[0];
    t->tensor.offset = a[1]->i;
    int64_t numel, last = t->tensor.offset, step;
    if (!osp_shape_numel(t->tensor.shape, t->tensor.ndim, &numel))
        return fail(u, "tensor size overflows");
    uint64_t elems = a[0]->storage.entry->size / osp_dtype_size(a[0]->storage.dtype);
    for (int d = 0; d < t->tensor.ndim && numel; d++)
        if (!osp_mul_i64(t->tensor.shape[d] - 1, t->tensor.stride[d], &step) ||
            __builtin_add_overflow(last, step, &last))
            return fail(u, "tensor extent overflows");
    if (numel && (uint64_t)last >= elems)
        return fail(u, "tensor offset, size and stride reach past its storage");
    return push(u, t);
}

static osp_status op_reduce(unpickler *u)
{
    pv *args = pop(u), *fn = args ? pop(u) : NULL;
    if (!fn)
        return osp_error_code();
    if (args->kind != PV_TUPLE)
        return fail(u, "arguments are not a tuple");
    if (fn->kind != PV_GLOBAL || fn->global.which == G_STORAGE_TYPE)
        return fail(u, "only OrderedDict and the torch rebuild functions may be called");
    switch (fn->global.which) {
    case G_ORDERED_DICT:
        if (args->tuple.n)
            return fail(u, "OrderedDict called with arguments");
        return push(u, new_value(u, PV_DICT));
    case G_REBUILD_PARAMETER: /* (tensor, requires_grad, hooks) -> the tensor */
        if (args->tuple.n != 3 || args->tuple.items[0]->kind != PV_TENSOR)
            return fail(u, "_rebuild_parameter arguments are not (tensor, bool, OrderedDict)");
        return push(u, args->tuple.items[0]);
    default:
        return rebuild_tensor(u, args);
    }
}

/* ---- the dispatch loop ---- */

static osp_status push_int(unpickler *u, int64_t i)
{
    pv *v = new_value(u, PV_INT);
    if (v)
        v->i = i;
    return push(u, v);
}

static osp_status push_str(unpickler *u, size_t len_bytes)
{
    uint64_t n = 0;
    const uint8_t *s = NULL;
    if (take_uint(u, len_bytes, &n) || take(u, n > SIZE_MAX ? SIZE_MAX : (size_t)n, &s))
        return osp_error_code();
    pv *v = new_value(u, PV_STR);
    if (v) {
        v->str.s = (const char *)s;
        v->str.len = (size_t)n;
    }
    return push(u, v);
}

/* LONG1: n bytes of two's complement, little-endian. */
static osp_status op_long1(unpickler *u)
{
    uint64_t n = 0, v = 0;
    const uint8_t *b = NULL;
    if (take_uint(u, 1, &n) || take(u, (size_t)n, &b))
        return osp_error_code();
    if (n > 8)
        return fail(u, "integer wider than 64 bits");
    for (size_t i = n; i-- > 0;)
        v = v << 8 | b[i];
    if (n && n < 8 && (b[n - 1] & 0x80)) /* sign-extend */
        v |= ~(uint64_t)0 << (8 * n);
    return push_int(u, (int64_t)v);
}

static osp_status memo_put(unpickler *u, uint64_t idx)
{
    pv *v = top(u);
    if (!v)
        return osp_error_code();
    /* The pickler numbers memo entries 0, 1, 2, ...: an index beyond the
     * pickle's length cannot come from it. */
    if (idx >= u->len)
        return fail(u, "memo index out of range");
    if (idx >= u->memo_cap) {
        size_t cap = u->memo_cap ? u->memo_cap : 64;
        while (cap <= idx)
            cap *= 2;
        pv **m = realloc(u->memo, cap * sizeof *m);
        if (!m)
            return osp_error_nomem("pickle memo", cap * sizeof *m);
        memset(m + u->memo_cap, 0, (cap - u->memo_cap) * sizeof *m);
        u->memo = m;
        u->memo_cap = cap;
    }
    u->memo_count += !u->memo[idx];
    u->memo[idx] = v;
    return OSP_OK;
}

static osp_status memo_get(unpickler *u, uint64_t idx)
{
    if (idx >= u->memo_cap || !u->memo[idx])
        return fail(u, "memo entry not set");
    return push(u, u->memo[idx]);
}

static osp_status op_mark(unpickler *u)
{
    if (u->n_marks == u->marks_cap) {
        size_t cap = u->marks_cap ? 2 * u->marks_cap : 16;
        size_t *m = realloc(u->marks, cap * sizeof *m);
        if (!m)
            return osp_error_nomem("pickle marks", cap * sizeof *m);
        u->marks = m;
        u->marks_cap = cap;
    }
    u->marks[u->n_marks++] = u->sp;
    return OSP_OK;
}

static osp_status op_setitems(unpickler *u)
{
    pv **items = NULL;
    size_t n = 0;
    if (pop_mark(u, &items, &n))
        return osp_error_code();
    if (n % 2)
        return fail(u, "odd number of items");
    pv *d = top(u);
    if (!d)
        return osp_error_code();
    for (size_t i = 0; i < n; i += 2)
        if (dict_set(u, d, items[i], items[i + 1]))
            return osp_error_code();
    return OSP_OK;
}

/* BUILD on a dict: the attribute state (e.g. an OrderedDict state dict's
 * _metadata) is not needed and ignored; nothing else may be built. */
static osp_status op_build(unpickler *u)
{
    pv *state = pop(u), *obj = state ? top(u) : NULL;
    if (!obj)
        return osp_error_code();
    if (obj->kind != PV_DICT || (state->kind != PV_DICT && state->kind != PV_NONE))
        return fail(u, "BUILD is allowed only with a dict state on a dict");
    return OSP_OK;
}

static osp_status step(unpickler *u, uint8_t op, bool *stop)
{
    uint64_t v = 0;
    pv **items = NULL;
    size_t n = 0;
    switch (op) {
    case 0x80: /* PROTO */
        if (take_uint(u, 1, &v))
            return osp_error_code();
        return v >= 2 && v <= 5 ? OSP_OK : fail(u, "unsupported pickle protocol");
    case 0x95: /* FRAME: a length hint only */
        return take_uint(u, 8, &v);
    case '.': *stop = true; return OSP_OK;
    case '(': return op_mark(u);
    case '}': return push(u, new_value(u, PV_DICT));
    case ')': return push_tuple(u, NULL, 0);
    case 'N': return push(u, new_value(u, PV_NONE));
    case 0x88: case 0x89: {
        pv *b = new_value(u, PV_BOOL);
        if (b)
            b->b = op == 0x88;
        return push(u, b);
    }
    case 'J':
        return take_uint(u, 4, &v) ? osp_error_code() : push_int(u, (int32_t)(uint32_t)v);
    case 'K': return take_uint(u, 1, &v) ? osp_error_code() : push_int(u, (int64_t)v);
    case 'M': return take_uint(u, 2, &v) ? osp_error_code() : push_int(u, (int64_t)v);
    case 0x8a: return op_long1(u);
    case 'X': return push_str(u, 4);
    case 0x8c: return push_str(u, 1);
    case 0x8d: return push_str(u, 8);
    case 't':
        return pop_mark(u, &items, &n) ? osp_error_code() : push_tuple(u, items, n);
    case 0x85: case 0x86: case 0x87:
        n = (size_t)(op - 0x84);
        if (u->sp < floor_of_stack(u) + n)
            return fail(u, "stack underflow");
        u->sp -= n;
        return push_tuple(u, u->stack + u->sp, n);
    case 'c': return op_global(u);
    case 0x93: return op_stack_global(u);
    case 'R': return op_reduce(u);
    case 'Q': return op_binpersid(u);
    case 's': {
        pv *value = pop(u), *key = value ? pop(u) : NULL, *d = key ? top(u) : NULL;
        return d ? dict_set(u, d, key, value) : osp_error_code();
    }
    case 'u': return op_setitems(u);
    case 'b': return op_build(u);
    case 'q': return take_uint(u, 1, &v) ? osp_error_code() : memo_put(u, v);
    case 'r': return take_uint(u, 4, &v) ? osp_error_code() : memo_put(u, v);
    case 0x94: return memo_put(u, u->memo_count); /* MEMOIZE: index = len(memo) */
    case 'h': return take_uint(u, 1, &v) ? osp_error_code() : memo_get(u, v);
    case 'j': return take_uint(u, 4, &v) ? osp_error_code() : memo_get(u, v);
    default: return fail(u, "opcode not allowed in a state dict");
    }
}

static osp_status run_pickle(unpickler *u, pv **result)
{
    bool stop = false;
    while (!stop) {
        if (u->pos >= u->len)
            return osp_error(OSP_ERR_DATA, "%s: pickle ends without STOP (truncated?)", u->label);
        u->op_pos = u->pos;
        if (step(u, u->p[u->pos++], &stop))
            return osp_error_code();
    }
    if (u->sp != 1 || u->n_marks)
        return fail(u, "the pickle must leave exactly one value");
    *result = u->stack[0];
    return OSP_OK;
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
static osp_status collect(osp_torch_file *f, const pv *root, const char *pkl)
{
    if (root->kind != PV_DICT)
        return osp_error(OSP_ERR_DATA, "%s: %s does not hold a dict of tensors", f->label, pkl);
    f->tensors = calloc(root->dict.n ? root->dict.n : 1, sizeof *f->tensors);
    f->by_name = calloc(root->dict.n ? root->dict.n : 1, sizeof *f->by_name);
    if (!f->tensors || !f->by_name)
        return osp_error_nomem("tensor table", root->dict.n * sizeof *f->tensors);
    for (size_t i = 0; i < root->dict.n; i++) {
        const pv *k = root->dict.kv[2 * i], *v = root->dict.kv[2 * i + 1];
        char shown[80];
        if (k->kind != PV_STR || !k->str.len || memchr(k->str.s, 0, k->str.len))
            return osp_error(OSP_ERR_DATA, "%s: a key of the state dict is not a tensor name",
                             f->label);
        if (v->kind != PV_TENSOR)
            return osp_error(OSP_ERR_DATA, "%s: state dict entry '%s' is not a tensor", f->label,
                             osp_printable(k->str.s, k->str.len, shown, sizeof shown));
        torch_tensor *t = &f->tensors[f->n];
        char *name = malloc(k->str.len + 1);
        if (!name)
            return osp_error_nomem("tensor name", k->str.len + 1);
        memcpy(name, k->str.s, k->str.len);
        name[k->str.len] = 0;
        f->n++;
        const pv *s = v->tensor.storage;
        size_t item = osp_dtype_size(s->storage.dtype);
        t->e = (osp_st_entry){.name = name, .dtype = s->storage.dtype, .ndim = v->tensor.ndim};
        memcpy(t->e.shape, v->tensor.shape, sizeof t->e.shape);
        memcpy(t->stride, v->tensor.stride, sizeof t->stride);
        int64_t numel = 0, expect = 1;
        osp_shape_numel(t->e.shape, t->e.ndim, &numel); /* checked by rebuild_tensor */
        /* (an empty tensor's offset is never used, and need not be inside) */
        t->e.offset = (size_t)s->storage.entry->offset +
                      (numel ? (size_t)v->tensor.offset * item : 0);
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
    unpickler u = {.p = f->data + pkl->offset, .len = (size_t)pkl->size, .label = label,
                   .zip = &zip, .prefix = prefix};
    pv *root = NULL;
    st = run_pickle(&u, &root);
    if (!st)
        st = collect(f, root, name);
    arena_free(&u.mem);
    free(u.stack);
    free(u.marks);
    free(u.memo);
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
