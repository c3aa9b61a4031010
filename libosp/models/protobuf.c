/* protobuf.c — see protobuf.h. */
#include "protobuf.h"

#include <string.h>

/* Groups nest; a hostile file could nest them until the stack runs out. */
#define MAX_GROUP_DEPTH 64

osp_pb_reader osp_pb_reader_init(const void *data, size_t len, const char *label)
{
    const uint8_t *p = data;
    return (osp_pb_reader){.base = p, .p = p, .end = p + len, .label = label};
}

osp_pb_reader osp_pb_sub_reader(const osp_pb_reader *parent, const uint8_t *data, size_t len)
{
    return (osp_pb_reader){.base = parent->base, .p = data, .end = data + len,
                           .label = parent->label};
}

static osp_status malformed(const osp_pb_reader *r, const char *what)
{
    return osp_error(OSP_ERR_DATA, "%s: malformed protobuf at byte %zu: %s", r->label,
                     (size_t)(r->p - r->base), what);
}

static osp_status expect_wire(const osp_pb_reader *r, int wire, int want)
{
    if (wire == want)
        return OSP_OK;
    return osp_error(OSP_ERR_DATA, "%s: malformed protobuf at byte %zu: wire type %d where %d "
                     "was expected", r->label, (size_t)(r->p - r->base), wire, want);
}

osp_status osp_pb_read_varint(osp_pb_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0;; i++) {
        if (r->p >= r->end)
            return malformed(r, "truncated varint");
        uint8_t b = *r->p++;
        /* The tenth byte may carry bit 63 only, and must be the last. */
        if (i == 9 && b > 1)
            return malformed(r, "varint overflows 64 bits");
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return OSP_OK;
        }
    }
}

osp_status osp_pb_next_key(osp_pb_reader *r, uint32_t *field, int *wire)
{
    uint64_t key;
    osp_status st = osp_pb_read_varint(r, &key);
    if (st)
        return st;
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return malformed(r, "field number out of range");
    if ((key & 7) > OSP_PB_FIXED32)
        return malformed(r, "unknown wire type");
    *field = (uint32_t)(key >> 3);
    *wire = (int)(key & 7);
    return OSP_OK;
}

osp_status osp_pb_read_uint64(osp_pb_reader *r, int wire, uint64_t *out)
{
    osp_status st = expect_wire(r, wire, OSP_PB_VARINT);
    return st ? st : osp_pb_read_varint(r, out);
}

osp_status osp_pb_read_int32(osp_pb_reader *r, int wire, int32_t *out)
{
    uint64_t v;
    osp_status st = osp_pb_read_uint64(r, wire, &v);
    if (!st)
        *out = (int32_t)(uint32_t)v;
    return st;
}

osp_status osp_pb_read_bool(osp_pb_reader *r, int wire, bool *out)
{
    uint64_t v;
    osp_status st = osp_pb_read_uint64(r, wire, &v);
    if (!st)
        *out = v != 0;
    return st;
}

static osp_status take(osp_pb_reader *r, size_t n, const uint8_t **data)
{
    if ((size_t)(r->end - r->p) < n)
        return malformed(r, "value runs past the end of the message");
    *data = r->p;
    r->p += n;
    return OSP_OK;
}

osp_status osp_pb_read_float(osp_pb_reader *r, int wire, float *out)
{
    const uint8_t *b = NULL;
    osp_status st = expect_wire(r, wire, OSP_PB_FIXED32);
    if (!st)
        st = take(r, 4, &b);
    if (st)
        return st;
    uint32_t bits = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                    (uint32_t)b[3] << 24;
    memcpy(out, &bits, sizeof *out);
    return OSP_OK;
}

osp_status osp_pb_read_bytes(osp_pb_reader *r, int wire, const uint8_t **data, size_t *len)
{
    uint64_t n;
    osp_status st = expect_wire(r, wire, OSP_PB_BYTES);
    if (!st)
        st = osp_pb_read_varint(r, &n);
    if (st)
        return st;
    if (n > (uint64_t)(r->end - r->p))
        return malformed(r, "length-delimited field runs past the end of the message");
    *len = (size_t)n;
    return take(r, (size_t)n, data);
}

static osp_status skip_value(osp_pb_reader *r, uint32_t field, int wire, int depth)
{
    const uint8_t *ignored;
    size_t len;
    uint64_t v;
    switch (wire) {
    case OSP_PB_VARINT:
        return osp_pb_read_varint(r, &v);
    case OSP_PB_FIXED64:
        return take(r, 8, &ignored);
    case OSP_PB_FIXED32:
        return take(r, 4, &ignored);
    case OSP_PB_BYTES:
        return osp_pb_read_bytes(r, wire, &ignored, &len);
    case OSP_PB_START_GROUP:
        if (depth >= MAX_GROUP_DEPTH)
            return malformed(r, "groups nested too deeply");
        for (;;) {
            uint32_t f;
            int w;
            if (!osp_pb_has_more(r))
                return malformed(r, "unterminated group");
            osp_status st = osp_pb_next_key(r, &f, &w);
            if (st)
                return st;
            if (w == OSP_PB_END_GROUP) {
                if (f != field)
                    return malformed(r, "group ends with another field number");
                return OSP_OK;
            }
            if ((st = skip_value(r, f, w, depth + 1)))
                return st;
        }
    default: /* an END_GROUP with no open group */
        return malformed(r, "unexpected end of group");
    }
}

osp_status osp_pb_skip(osp_pb_reader *r, uint32_t field, int wire)
{
    return skip_value(r, field, wire, 0);
}
