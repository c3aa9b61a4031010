/* protobuf.h — a bounds-checked reader of the protobuf wire format.
 *
 * Enough to walk a serialized message field by field: keys, varints (with
 * overflow check), fixed 32/64-bit values, length-delimited payloads
 * (strings, bytes, sub-messages) and skipping of unknown fields of every
 * wire type, deprecated groups included. A reader never reads outside the
 * buffer it was given; malformed input gives OSP_ERR_DATA with a message
 * naming the reader's label and the byte offset.
 *
 *   osp_pb_reader r = osp_pb_reader_init(buf, len, "spiece.model");
 *   uint32_t field; int wire;
 *   while (osp_pb_has_more(&r)) {
 *       if (osp_pb_next_key(&r, &field, &wire)) return error;
 *       switch (field) { case 1: osp_pb_read_bytes(&r, wire, &p, &n); ...
 *                        default: osp_pb_skip(&r, wire); }
 *   }
 */
#ifndef OSP_PROTOBUF_H
#define OSP_PROTOBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

enum {
    OSP_PB_VARINT = 0,
    OSP_PB_FIXED64 = 1,
    OSP_PB_BYTES = 2, /* length-delimited */
    OSP_PB_START_GROUP = 3,
    OSP_PB_END_GROUP = 4,
    OSP_PB_FIXED32 = 5,
};

typedef struct osp_pb_reader {
    const uint8_t *base; /* start of the outermost buffer (for offsets in errors) */
    const uint8_t *p;    /* next byte */
    const uint8_t *end;  /* one past the last byte of this message */
    const char *label;   /* names the input in error messages */
} osp_pb_reader;

osp_pb_reader osp_pb_reader_init(const void *data, size_t len, const char *label);
/* A reader over a length-delimited payload found inside `parent`, so error
 * offsets stay relative to the outermost buffer. */
osp_pb_reader osp_pb_sub_reader(const osp_pb_reader *parent, const uint8_t *data, size_t len);

static inline bool osp_pb_has_more(const osp_pb_reader *r)
{
    return r->p < r->end;
}

/* Reads a field key; rejects field number 0 and wire types 6 and 7. */
osp_status osp_pb_next_key(osp_pb_reader *r, uint32_t *field, int *wire);
/* A raw varint of up to 10 bytes; more, or bits beyond 64, is an error. */
osp_status osp_pb_read_varint(osp_pb_reader *r, uint64_t *out);

/* Typed field values; each checks that `wire` is the type it expects. */
osp_status osp_pb_read_uint64(osp_pb_reader *r, int wire, uint64_t *out);
/* proto int32: the low 32 bits of the varint as signed (−1 is written as
 * ten bytes of 2^64 − 1). Enums are read the same way. */
osp_status osp_pb_read_int32(osp_pb_reader *r, int wire, int32_t *out);
osp_status osp_pb_read_bool(osp_pb_reader *r, int wire, bool *out);
osp_status osp_pb_read_float(osp_pb_reader *r, int wire, float *out);
/* A length-delimited payload; *data points into the buffer (no copy). */
osp_status osp_pb_read_bytes(osp_pb_reader *r, int wire, const uint8_t **data, size_t *len);

/* Skips the value of a field whose key was just read. */
osp_status osp_pb_skip(osp_pb_reader *r, uint32_t field, int wire);

#endif
