/* stream_meta.c — tensor metadata: an ordered key -> value list whose
 * values keep their msgpack kind, so unknown keys pass through a tool
 * unchanged (floats always re-encode as float64, same value). */
#include "stream_meta.h"

#include <stdlib.h>
#include <string.h>

void osp_meta_init(osp_meta *m)
{
    memset(m, 0, sizeof *m);
}

static void value_free(osp_meta_value *v)
{
    if (v->kind == OSP_META_STR) {
        free(v->s);
    } else if (v->kind == OSP_META_ARRAY) {
        for (size_t i = 0; i < v->array.n; i++)
            value_free(&v->array.items[i]);
        free(v->array.items);
    }
    memset(v, 0, sizeof *v);
}

void osp_meta_free(osp_meta *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        value_free(&m->values[i]);
    }
    free(m->keys);
    free(m->values);
    osp_meta_init(m);
}

const osp_meta_value *osp_meta_get(const osp_meta *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return &m->values[i];
    return NULL;
}

/* Deep copy of a valid value (arrays hold scalars only). */
static osp_status value_copy(osp_meta_value *dst, const osp_meta_value *src, bool in_array)
{
    memset(dst, 0, sizeof *dst);
    switch (src->kind) {
    case OSP_META_INT:
    case OSP_META_FLOAT:
    case OSP_META_BOOL:
        *dst = *src;
        return OSP_OK;
    case OSP_META_STR:
        if (!src->s)
            return osp_error(OSP_ERR_RUNTIME, "meta string value is NULL");
        dst->kind = OSP_META_STR;
        dst->s = strdup(src->s);
        return dst->s ? OSP_OK : osp_error_nomem("meta string", strlen(src->s));
    case OSP_META_ARRAY:
        if (in_array)
            return osp_error(OSP_ERR_RUNTIME, "meta arrays hold scalars, not arrays");
        if (src->array.n && !src->array.items)
            return osp_error(OSP_ERR_RUNTIME, "meta array of %zu items has no items", src->array.n);
        dst->kind = OSP_META_ARRAY;
        if (src->array.n) {
            dst->array.items = calloc(src->array.n, sizeof *dst->array.items);
            if (!dst->array.items)
                return osp_error_nomem("meta array", src->array.n * sizeof *dst->array.items);
        }
        for (size_t i = 0; i < src->array.n; i++) {
            osp_status st = value_copy(&dst->array.items[i], &src->array.items[i], true);
            dst->array.n = i + (st == OSP_OK);
            if (st != OSP_OK) {
                value_free(dst);
                return st;
            }
        }
        return OSP_OK;
    }
    return osp_error(OSP_ERR_RUNTIME, "meta value of unknown kind %d", (int)src->kind);
}

/* Takes ownership of *v (a valid value) into m under key. */
static osp_status meta_put(osp_meta *m, const char *key, osp_meta_value *v)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->keys[i], key) == 0) {
            value_free(&m->values[i]);
            m->values[i] = *v;
            return OSP_OK;
        }
    }
    char *k = strdup(key);
    char **keys = realloc(m->keys, (m->n + 1) * sizeof *keys);
    if (keys)
        m->keys = keys;
    osp_meta_value *values = keys ? realloc(m->values, (m->n + 1) * sizeof *values) : NULL;
    if (values)
        m->values = values;
    if (!k || !keys || !values) {
        free(k);
        value_free(v);
        return osp_error_nomem("meta entry", strlen(key));
    }
    m->keys[m->n] = k;
    m->values[m->n] = *v;
    m->n++;
    return OSP_OK;
}

osp_status osp_meta_set(osp_meta *m, const char *key, const osp_meta_value *value)
{
    if (!key || !*key)
        return osp_error(OSP_ERR_RUNTIME, "meta keys must be non-empty strings");
    osp_meta_value v;
    osp_status st = value_copy(&v, value, false);
    return st ? st : meta_put(m, key, &v);
}

osp_status osp_meta_set_str(osp_meta *m, const char *key, const char *value)
{
    osp_meta_value v = {.kind = OSP_META_STR, .s = (char *)value};
    return osp_meta_set(m, key, &v);
}

osp_status osp_meta_set_int(osp_meta *m, const char *key, int64_t value)
{
    osp_meta_value v = {.kind = OSP_META_INT, .i = value};
    return osp_meta_set(m, key, &v);
}

osp_status osp_meta_set_float(osp_meta *m, const char *key, double value)
{
    osp_meta_value v = {.kind = OSP_META_FLOAT, .f = value};
    return osp_meta_set(m, key, &v);
}

osp_status osp_meta_set_bool(osp_meta *m, const char *key, bool value)
{
    osp_meta_value v = {.kind = OSP_META_BOOL, .b = value};
    return osp_meta_set(m, key, &v);
}

osp_status osp_meta_copy(osp_meta *dst, const osp_meta *src)
{
    osp_meta_init(dst);
    for (size_t i = 0; i < src->n; i++) {
        osp_status st = osp_meta_set(dst, src->keys[i], &src->values[i]);
        if (st != OSP_OK) {
            osp_meta_free(dst);
            return st;
        }
    }
    return OSP_OK;
}

/* ---------------- msgpack ---------------- */

/* A msgpack str as a C string: rejects embedded NUL bytes, which a C
 * string would silently cut. */
static char *str_dup(const msgpack_object_str *s, const char *what)
{
    if (memchr(s->ptr, 0, s->size)) {
        osp_error(OSP_ERR_DATA, "%s contains a NUL byte", what);
        return NULL;
    }
    char *c = malloc((size_t)s->size + 1);
    if (!c) {
        osp_error_nomem(what, s->size);
        return NULL;
    }
    memcpy(c, s->ptr, s->size);
    c[s->size] = 0;
    return c;
}

const char *osp_msgpack_kind(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "a bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "a float";
    case MSGPACK_OBJECT_STR: return "a str";
    case MSGPACK_OBJECT_ARRAY: return "an array";
    case MSGPACK_OBJECT_MAP: return "a map";
    case MSGPACK_OBJECT_BIN: return "a bin";
    default: return "an ext";
    }
}

static osp_status value_from_msgpack(osp_meta_value *v, const msgpack_object *o, const char *key,
                                     bool in_array)
{
    memset(v, 0, sizeof *v);
    switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN:
        v->kind = OSP_META_BOOL;
        v->b = o->via.boolean;
        return OSP_OK;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            return osp_error(OSP_ERR_DATA, "meta '%s': integer %llu exceeds the int64 range", key,
                             (unsigned long long)o->via.u64);
        v->kind = OSP_META_INT;
        v->i = (int64_t)o->via.u64;
        return OSP_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        v->kind = OSP_META_INT;
        v->i = o->via.i64;
        return OSP_OK;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        v->kind = OSP_META_FLOAT;
        v->f = o->via.f64;
        return OSP_OK;
    case MSGPACK_OBJECT_STR:
        v->kind = OSP_META_STR;
        v->s = str_dup(&o->via.str, "meta string");
        if (!v->s) {
            osp_error_context("meta '%s'", key);
            return osp_error_code();
        }
        return OSP_OK;
    case MSGPACK_OBJECT_ARRAY:
        if (in_array)
            break;
        v->kind = OSP_META_ARRAY;
        if (o->via.array.size) {
            v->array.items = calloc(o->via.array.size, sizeof *v->array.items);
            if (!v->array.items)
                return osp_error_nomem("meta array", o->via.array.size * sizeof *v->array.items);
        }
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            osp_status st = value_from_msgpack(&v->array.items[i], &o->via.array.ptr[i], key, true);
            if (st != OSP_OK) {
                value_free(v);
                return st;
            }
            v->array.n = i + 1;
        }
        return OSP_OK;
    default:
        break;
    }
    return osp_error(OSP_ERR_DATA, "meta '%s': found %s%s; values are str, int, float, bool or "
                     "arrays of them", key, osp_msgpack_kind(o),
                     in_array ? " inside an array" : "");
}

osp_status osp_meta_from_msgpack(osp_meta *m, const msgpack_object *o)
{
    osp_meta_init(m);
    if (o->type != MSGPACK_OBJECT_MAP)
        return osp_error(OSP_ERR_DATA, "meta must be a map, found %s", osp_msgpack_kind(o));
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size == 0) {
            osp_meta_free(m);
            return osp_error(OSP_ERR_DATA, "meta keys must be non-empty strings, found %s",
                             osp_msgpack_kind(&kv->key));
        }
        char *key = str_dup(&kv->key.via.str, "meta key");
        osp_status st = key ? OSP_OK : osp_error_code();
        if (st == OSP_OK && osp_meta_get(m, key))
            st = osp_error(OSP_ERR_DATA, "meta key '%s' appears twice", key);
        osp_meta_value v;
        if (st == OSP_OK)
            st = value_from_msgpack(&v, &kv->val, key, false);
        if (st == OSP_OK)
            st = meta_put(m, key, &v);
        free(key);
        if (st != OSP_OK) {
            osp_meta_free(m);
            return st;
        }
    }
    return OSP_OK;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static osp_status pack_value(msgpack_packer *pk, const osp_meta_value *v, const char *key,
                             bool in_array)
{
    int rc = 0;
    switch (v->kind) {
    case OSP_META_STR:
        if (!v->s)
            return osp_error(OSP_ERR_RUNTIME, "meta '%s': string value is NULL", key);
        rc = pack_str(pk, v->s);
        break;
    case OSP_META_INT: rc = msgpack_pack_int64(pk, v->i); break;
    case OSP_META_FLOAT: rc = msgpack_pack_double(pk, v->f); break;
    case OSP_META_BOOL: rc = v->b ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case OSP_META_ARRAY:
        if (in_array)
            return osp_error(OSP_ERR_RUNTIME, "meta '%s': arrays hold scalars only", key);
        if (v->array.n > UINT32_MAX || (v->array.n && !v->array.items))
            return osp_error(OSP_ERR_RUNTIME, "meta '%s': invalid array", key);
        rc = msgpack_pack_array(pk, v->array.n);
        for (size_t i = 0; i < v->array.n && !rc; i++) {
            osp_status st = pack_value(pk, &v->array.items[i], key, true);
            if (st != OSP_OK)
                return st;
        }
        break;
    default:
        return osp_error(OSP_ERR_RUNTIME, "meta '%s': unknown value kind %d", key, (int)v->kind);
    }
    return rc ? osp_error_nomem("stream message", 0) : OSP_OK;
}

osp_status osp_meta_pack(msgpack_packer *pk, const osp_meta *m)
{
    if (msgpack_pack_map(pk, m->n))
        return osp_error_nomem("stream message", 0);
    for (size_t i = 0; i < m->n; i++) {
        if (!m->keys[i] || !*m->keys[i])
            return osp_error(OSP_ERR_RUNTIME, "meta keys must be non-empty strings");
        if (pack_str(pk, m->keys[i]))
            return osp_error_nomem("stream message", 0);
        osp_status st = pack_value(pk, &m->values[i], m->keys[i], false);
        if (st != OSP_OK)
            return st;
    }
    return OSP_OK;
}
