/* pickle_vm.h — the pickle opcode machine under torch_pickle.c (internal).
 *
 * CPython's unpickler cut down to the opcodes a torch.save state dict uses
 * (listed in torch_pickle.h), protocols 2 to 5: a value stack, a stack of
 * MARK positions and a memo. The machine builds the plain values itself
 * (None, bools, ints, strings, tuples, dicts); whatever a pickle takes from
 * outside — a global, a persistent id, a call (REDUCE) — goes to the
 * caller's hooks, which answer with values of their own (OSP_PV_OBJECT) or
 * refuse. BUILD is accepted only with a dict (or None) state on a dict, and
 * ignored. Any other opcode is an OSP_ERR_DATA error naming it and its byte
 * offset.
 *
 * Values live in an arena freed with the machine; every allocation is
 * bounded by the input size (the stack and the memo grow by at most one
 * slot per opcode byte). */
#ifndef OSP_PICKLE_VM_H
#define OSP_PICKLE_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum osp_pv_kind {
    OSP_PV_NONE, OSP_PV_BOOL, OSP_PV_INT, OSP_PV_STR, OSP_PV_TUPLE, OSP_PV_DICT, OSP_PV_OBJECT,
} osp_pv_kind;

typedef struct osp_pv osp_pv;
struct osp_pv {
    osp_pv_kind kind;
    union {
        bool b;
        int64_t i;
        struct { const char *s; size_t len; } str; /* into the pickle's bytes */
        struct { osp_pv **items; size_t n; } tuple;
        struct { osp_pv **kv; size_t n, cap; } dict; /* kv[2i] = key, kv[2i+1] = value */
        struct { int type; void *data; } obj;        /* a hook's; type and data are its own */
    };
};

typedef struct osp_pickle osp_pickle;

/* Each hook returns a value, or NULL with an error set (osp_pickle_fail). */
typedef struct osp_pickle_hooks {
    void *ctx;
    /* GLOBAL, STACK_GLOBAL: what module.name stands for. */
    osp_pv *(*global)(osp_pickle *vm, void *ctx, const char *module, size_t mlen,
                      const char *name, size_t nlen);
    /* REDUCE: fn(*args); args is a tuple. */
    osp_pv *(*reduce)(osp_pickle *vm, void *ctx, osp_pv *fn, osp_pv *args);
    /* BINPERSID: what the persistent id pid stands for. */
    osp_pv *(*persistent_load)(osp_pickle *vm, void *ctx, osp_pv *pid);
} osp_pickle_hooks;

/* A machine over the pickle data[0, len); label names it in errors. data,
 * label and hooks must outlive it. NULL + error when out of memory. */
osp_pickle *osp_pickle_new(const uint8_t *data, size_t len, const char *label,
                           const osp_pickle_hooks *hooks);
void osp_pickle_free(osp_pickle *vm);

/* Runs the pickle to STOP; *result is the one value it must leave (valid
 * until osp_pickle_free). */
osp_status osp_pickle_run(osp_pickle *vm, osp_pv **result);

/* For the hooks. A new value of that kind (zeroed), or NULL + error. */
osp_pv *osp_pickle_value(osp_pickle *vm, osp_pv_kind kind);
/* A new OSP_PV_OBJECT of that type with `size` zeroed bytes at obj.data. */
osp_pv *osp_pickle_object(osp_pickle *vm, int type, size_t size);
/* The OSP_ERR_DATA error "<label>: pickle byte N (OPCODE): what", for the
 * opcode being run; returns its code. */
osp_status osp_pickle_fail(const osp_pickle *vm, const char *what);

#endif
