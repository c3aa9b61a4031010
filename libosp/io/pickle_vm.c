/* pickle_vm.c — the pickle opcode machine (see pickle_vm.h). */
#include "pickle_vm.h"

#include <stdlib.h>
#include <string.h>

/* ---------------- the value arena ---------------- */

typedef struct arena_block arena_block;
struct arena_block {
    arena_block *next;
    size_t used, cap;
    _Alignas(max_align_t) unsigned char data[];
};

typedef struct arena {
    arena_block *head;
} arena;

/* n zeroed bytes (blocks are calloc'd and never reused). */
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

struct osp_pickle {
    const uint8_t *p;
    size_t len, pos, op_pos;
    const char *label;
    const osp_pickle_hooks *hooks;
    arena mem;
    osp_pv **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t n_marks, marks_cap;
    osp_pv **memo;
    size_t memo_cap, memo_count;
};

osp_pickle *osp_pickle_new(const uint8_t *data, size_t len, const char *label,
                           const osp_pickle_hooks *hooks)
{
    osp_pickle *vm = calloc(1, sizeof *vm);
    if (!vm) {
        osp_error_nomem("unpickler", sizeof *vm);
        return NULL;
    }
    *vm = (osp_pickle){.p = data, .len = len, .label = label, .hooks = hooks};
    return vm;
}

void osp_pickle_free(osp_pickle *vm)
{
    if (!vm)
        return;
    arena_free(&vm->mem);
    free(vm->stack);
    free(vm->marks);
    free(vm->memo);
    free(vm);
}

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

osp_status osp_pickle_fail(const osp_pickle *vm, const char *what)
{
    return osp_error(OSP_ERR_DATA, "%s: pickle byte %zu (%s): %s", vm->label, vm->op_pos,
                     opcode_name(vm->p[vm->op_pos]), what);
}

static osp_status take(osp_pickle *vm, size_t n, const uint8_t **out)
{
    if (n > vm->len - vm->pos)
        return osp_pickle_fail(vm, "truncated pickle");
    *out = vm->p + vm->pos;
    vm->pos += n;
    return OSP_OK;
}

/* An n-byte little-endian unsigned argument. */
static osp_status take_uint(osp_pickle *vm, size_t n, uint64_t *out)
{
    const uint8_t *b = NULL;
    if (take(vm, n, &b))
        return osp_error_code();
    *out = 0;
    for (size_t i = n; i-- > 0;)
        *out = *out << 8 | b[i];
    return OSP_OK;
}

osp_pv *osp_pickle_value(osp_pickle *vm, osp_pv_kind kind)
{
    osp_pv *v = arena_alloc(&vm->mem, sizeof *v);
    if (v)
        v->kind = kind;
    return v;
}

osp_pv *osp_pickle_object(osp_pickle *vm, int type, size_t size)
{
    osp_pv *v = osp_pickle_value(vm, OSP_PV_OBJECT);
    void *data = v ? arena_alloc(&vm->mem, size) : NULL;
    if (!data)
        return NULL;
    v->obj.type = type;
    v->obj.data = data;
    return v;
}

/* Pushes v; a NULL v (a failed allocation or hook) passes its error on. */
static osp_status push(osp_pickle *vm, osp_pv *v)
{
    if (!v)
        return osp_error_code();
    if (vm->sp == vm->stack_cap) {
        size_t cap = vm->stack_cap ? 2 * vm->stack_cap : 64;
        osp_pv **s = realloc(vm->stack, cap * sizeof *s);
        if (!s)
            return osp_error_nomem("pickle stack", cap * sizeof *s);
        vm->stack = s;
        vm->stack_cap = cap;
    }
    vm->stack[vm->sp++] = v;
    return OSP_OK;
}

/* Stack entries above the innermost MARK may be popped. */
static size_t floor_of_stack(const osp_pickle *vm)
{
    return vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;
}

static osp_pv *pop(osp_pickle *vm)
{
    if (vm->sp <= floor_of_stack(vm)) {
        osp_pickle_fail(vm, "stack underflow");
        return NULL;
    }
    return vm->stack[--vm->sp];
}

static osp_pv *top(osp_pickle *vm)
{
    if (vm->sp <= floor_of_stack(vm)) {
        osp_pickle_fail(vm, "stack underflow");
        return NULL;
    }
    return vm->stack[vm->sp - 1];
}

/* Pops everything above the innermost MARK and the mark itself;
 * *items points at them (valid until the next push). */
static osp_status pop_mark(osp_pickle *vm, osp_pv ***items, size_t *n)
{
    if (!vm->n_marks)
        return osp_pickle_fail(vm, "no MARK to pop to");
    size_t base = vm->marks[--vm->n_marks];
    *n = vm->sp - base;
    *items = *n ? vm->stack + base : NULL;
    vm->sp = base;
    return OSP_OK;
}

static osp_status push_tuple(osp_pickle *vm, osp_pv **items, size_t n)
{
    osp_pv *t = osp_pickle_value(vm, OSP_PV_TUPLE);
    osp_pv **copy = t && n ? arena_alloc(&vm->mem, n * sizeof *copy) : NULL;
    if (!t || (n && !copy))
        return osp_error_code();
    if (n)
        memcpy(copy, items, n * sizeof *copy);
    t->tuple.items = copy;
    t->tuple.n = n;
    return push(vm, t);
}

static osp_status dict_set(osp_pickle *vm, osp_pv *d, osp_pv *key, osp_pv *value)
{
    if (d->kind != OSP_PV_DICT)
        return osp_pickle_fail(vm, "items set on something that is not a dict");
    if (d->dict.n == d->dict.cap) {
        size_t cap = d->dict.cap ? 2 * d->dict.cap : 8;
        osp_pv **kv = arena_alloc(&vm->mem, 2 * cap * sizeof *kv);
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

static osp_status push_int(osp_pickle *vm, int64_t i)
{
    osp_pv *v = osp_pickle_value(vm, OSP_PV_INT);
    if (v)
        v->i = i;
    return push(vm, v);
}

/* A string whose length is a len_bytes-byte argument. */
static osp_status push_str(osp_pickle *vm, size_t len_bytes)
{
    uint64_t n = 0;
    const uint8_t *s = NULL;
    if (take_uint(vm, len_bytes, &n) || take(vm, n > SIZE_MAX ? SIZE_MAX : (size_t)n, &s))
        return osp_error_code();
    osp_pv *v = osp_pickle_value(vm, OSP_PV_STR);
    if (v) {
        v->str.s = (const char *)s;
        v->str.len = (size_t)n;
    }
    return push(vm, v);
}

/* LONG1: n bytes of two's complement, little-endian. */
static osp_status op_long1(osp_pickle *vm)
{
    uint64_t n = 0, v = 0;
    const uint8_t *b = NULL;
    if (take_uint(vm, 1, &n) || take(vm, (size_t)n, &b))
        return osp_error_code();
    if (n > 8)
        return osp_pickle_fail(vm, "integer wider than 64 bits");
    for (size_t i = n; i-- > 0;)
        v = v << 8 | b[i];
    if (n && n < 8 && (b[n - 1] & 0x80)) /* sign-extend */
        v |= ~(uint64_t)0 << (8 * n);
    return push_int(vm, (int64_t)v);
}

/* GLOBAL: "module\nname\n" inline. */
static osp_status op_global(osp_pickle *vm)
{
    const char *start[2];
    size_t len[2];
    for (int k = 0; k < 2; k++) {
        start[k] = (const char *)vm->p + vm->pos;
        const void *nl = memchr(start[k], '\n', vm->len - vm->pos);
        if (!nl)
            return osp_pickle_fail(vm, "truncated pickle");
        len[k] = (size_t)((const char *)nl - start[k]);
        vm->pos += len[k] + 1;
    }
    const osp_pickle_hooks *h = vm->hooks;
    return push(vm, h->global(vm, h->ctx, start[0], len[0], start[1], len[1]));
}

static osp_status op_stack_global(osp_pickle *vm)
{
    osp_pv *name = pop(vm), *module = name ? pop(vm) : NULL;
    if (!module)
        return osp_error_code();
    if (name->kind != OSP_PV_STR || module->kind != OSP_PV_STR)
        return osp_pickle_fail(vm, "module and name must be strings");
    const osp_pickle_hooks *h = vm->hooks;
    return push(vm, h->global(vm, h->ctx, module->str.s, module->str.len, name->str.s,
                              name->str.len));
}

static osp_status op_reduce(osp_pickle *vm)
{
    osp_pv *args = pop(vm), *fn = args ? pop(vm) : NULL;
    if (!fn)
        return osp_error_code();
    if (args->kind != OSP_PV_TUPLE)
        return osp_pickle_fail(vm, "arguments are not a tuple");
    return push(vm, vm->hooks->reduce(vm, vm->hooks->ctx, fn, args));
}

static osp_status op_binpersid(osp_pickle *vm)
{
    osp_pv *pid = pop(vm);
    if (!pid)
        return osp_error_code();
    return push(vm, vm->hooks->persistent_load(vm, vm->hooks->ctx, pid));
}

static osp_status memo_put(osp_pickle *vm, uint64_t idx)
{
    osp_pv *v = top(vm);
    if (!v)
        return osp_error_code();
    /* The pickler numbers memo entries 0, 1, 2, ...: an index beyond the
     * pickle's length cannot come from it. */
    if (idx >= vm->len)
        return osp_pickle_fail(vm, "memo index out of range");
    if (idx >= vm->memo_cap) {
        size_t cap = vm->memo_cap ? vm->memo_cap : 64;
        while (cap <= idx)
            cap *= 2;
        osp_pv **m = realloc(vm->memo, cap * sizeof *m);
        if (!m)
            return osp_error_nomem("pickle memo", cap * sizeof *m);
        memset(m + vm->memo_cap, 0, (cap - vm->memo_cap) * sizeof *m);
        vm->memo = m;
        vm->memo_cap = cap;
    }
    vm->memo_count += !vm->memo[idx];
    vm->memo[idx] = v;
    return OSP_OK;
}

static osp_status memo_get(osp_pickle *vm, uint64_t idx)
{
    if (idx >= vm->memo_cap || !vm->memo[idx])
        return osp_pickle_fail(vm, "memo entry not set");
    return push(vm, vm->memo[idx]);
}

static osp_status op_mark(osp_pickle *vm)
{
    if (vm->n_marks == vm->marks_cap) {
        size_t cap = vm->marks_cap ? 2 * vm->marks_cap : 16;
        size_t *m = realloc(vm->marks, cap * sizeof *m);
        if (!m)
            return osp_error_nomem("pickle marks", cap * sizeof *m);
        vm->marks = m;
        vm->marks_cap = cap;
    }
    vm->marks[vm->n_marks++] = vm->sp;
    return OSP_OK;
}

static osp_status op_setitems(osp_pickle *vm)
{
    osp_pv **items = NULL;
    size_t n = 0;
    if (pop_mark(vm, &items, &n))
        return osp_error_code();
    if (n % 2)
        return osp_pickle_fail(vm, "odd number of items");
    osp_pv *d = top(vm);
    if (!d)
        return osp_error_code();
    for (size_t i = 0; i < n; i += 2)
        if (dict_set(vm, d, items[i], items[i + 1]))
            return osp_error_code();
    return OSP_OK;
}

/* BUILD on a dict: the attribute state (e.g. an OrderedDict state dict's
 * _metadata) is not needed and ignored; nothing else may be built. */
static osp_status op_build(osp_pickle *vm)
{
    osp_pv *state = pop(vm), *obj = state ? top(vm) : NULL;
    if (!obj)
        return osp_error_code();
    if (obj->kind != OSP_PV_DICT || (state->kind != OSP_PV_DICT && state->kind != OSP_PV_NONE))
        return osp_pickle_fail(vm, "BUILD is allowed only with a dict state on a dict");
    return OSP_OK;
}

static osp_status step(osp_pickle *vm, uint8_t op, bool *stop)
{
    uint64_t v = 0;
    osp_pv **items = NULL;
    size_t n = 0;
    switch (op) {
    case 0x80: /* PROTO */
        if (take_uint(vm, 1, &v))
            return osp_error_code();
        return v >= 2 && v <= 5 ? OSP_OK : osp_pickle_fail(vm, "unsupported pickle protocol");
    case 0x95: /* FRAME: a length hint only */
        return take_uint(vm, 8, &v);
    case '.': *stop = true; return OSP_OK;
    case '(': return op_mark(vm);
    case '}': return push(vm, osp_pickle_value(vm, OSP_PV_DICT));
    case ')': return push_tuple(vm, NULL, 0);
    case 'N': return push(vm, osp_pickle_value(vm, OSP_PV_NONE));
    case 0x88: case 0x89: {
        osp_pv *b = osp_pickle_value(vm, OSP_PV_BOOL);
        if (b)
            b->b = op == 0x88;
        return push(vm, b);
    }
    case 'J':
        return take_uint(vm, 4, &v) ? osp_error_code() : push_int(vm, (int32_t)(uint32_t)v);
    case 'K': return take_uint(vm, 1, &v) ? osp_error_code() : push_int(vm, (int64_t)v);
    case 'M': return take_uint(vm, 2, &v) ? osp_error_code() : push_int(vm, (int64_t)v);
    case 0x8a: return op_long1(vm);
    case 'X': return push_str(vm, 4);
    case 0x8c: return push_str(vm, 1);
    case 0x8d: return push_str(vm, 8);
    case 't':
        return pop_mark(vm, &items, &n) ? osp_error_code() : push_tuple(vm, items, n);
    case 0x85: case 0x86: case 0x87:
        n = (size_t)(op - 0x84);
        if (vm->sp < floor_of_stack(vm) + n)
            return osp_pickle_fail(vm, "stack underflow");
        vm->sp -= n;
        return push_tuple(vm, vm->stack + vm->sp, n);
    case 'c': return op_global(vm);
    case 0x93: return op_stack_global(vm);
    case 'R': return op_reduce(vm);
    case 'Q': return op_binpersid(vm);
    case 's': {
        osp_pv *value = pop(vm), *key = value ? pop(vm) : NULL, *d = key ? top(vm) : NULL;
        return d ? dict_set(vm, d, key, value) : osp_error_code();
    }
    case 'u': return op_setitems(vm);
    case 'b': return op_build(vm);
    case 'q': return take_uint(vm, 1, &v) ? osp_error_code() : memo_put(vm, v);
    case 'r': return take_uint(vm, 4, &v) ? osp_error_code() : memo_put(vm, v);
    case 0x94: return memo_put(vm, vm->memo_count); /* MEMOIZE: index = len(memo) */
    case 'h': return take_uint(vm, 1, &v) ? osp_error_code() : memo_get(vm, v);
    case 'j': return take_uint(vm, 4, &v) ? osp_error_code() : memo_get(vm, v);
    default: return osp_pickle_fail(vm, "opcode not allowed in a state dict");
    }
}

osp_status osp_pickle_run(osp_pickle *vm, osp_pv **result)
{
    bool stop = false;
    while (!stop) {
        if (vm->pos >= vm->len)
            return osp_error(OSP_ERR_DATA, "%s: pickle ends without STOP (truncated?)",
                             vm->label);
        vm->op_pos = vm->pos;
        if (step(vm, vm->p[vm->pos++], &stop))
            return osp_error_code();
    }
    if (vm->sp != 1 || vm->n_marks)
        return osp_pickle_fail(vm, "the pickle must leave exactly one value");
    *result = vm->stack[0];
    return OSP_OK;
}
