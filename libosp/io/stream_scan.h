/* stream_scan.h — the stream reader's guard: a resumable, byte-at-a-time
 * walk over msgpack messages that runs on every byte before msgpack-c sees
 * it (internal to stream.c; public for the fuzzer and tests).
 *
 * Why: msgpack_unpacker allocates n objects as soon as it reads an array or
 * map header, so a 5-byte message declaring 2^32 elements would cost
 * ~100 GB; and it buffers a message until its last byte arrives. The scan
 *   - finds where each message ends (so EOF inside a message is reported as
 *     a truncation, and msgpack-c is only ever handed complete messages),
 *   - rejects a message that does not start with a map, nests deeper than
 *     top map > meta map > meta array, declares more than
 *     OSP_SCAN_MAX_ITEMS container elements, more than OSP_SCAN_MAX_STR_BYTES
 *     of strings, more than one bin, or an ext type,
 *   - and, when `shape` and `dtype` precede `data` in the message (as osp
 *     writes them), checks the bin length against shape x itemsize from the
 *     bin header alone, before any of its bytes are buffered.
 * With these limits the reader's memory is bounded by the bytes actually
 * received, never by a declared size: a bin header claiming 4 GiB costs
 * nothing until 4 GiB arrive, and is refused at once when the shape seen
 * before it disagrees. (A sender that puts `data` first and then really
 * sends a mismatched 4 GiB is buffered before the mismatch is reported; the
 * msgpack bin32 format caps that at 4 GiB per message.) */
#ifndef OSP_STREAM_SCAN_H
#define OSP_STREAM_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

#define OSP_SCAN_MAX_DEPTH 3
#define OSP_SCAN_MAX_ITEMS 65536u
#define OSP_SCAN_MAX_STR_BYTES (16u << 20)

typedef struct osp_stream_scan {
    uint64_t messages;  /* complete messages seen so far */
    uint64_t msg_bytes; /* bytes of the current, incomplete message */
    bool failed;        /* sticky; `error` says why (message #messages) */
    char error[192];

    /* byte-level state */
    enum { SCAN_TYPE, SCAN_HEADER, SCAN_PAYLOAD } phase;
    uint8_t type;
    uint8_t hdr[8];
    unsigned hdr_need, hdr_have;
    uint64_t skip; /* payload bytes still to pass */
    int depth;     /* open containers */
    uint64_t remain[OSP_SCAN_MAX_DEPTH]; /* objects still due in each */
    uint64_t items, str_bytes;
    unsigned bins;

    /* what is learnt of the top-level map, for the early data-size check */
    int key;            /* top-level key whose value is being read */
    bool key_slot;      /* the object being read is a top-level key */
    bool value_slot;    /* ... or a top-level value */
    char capture[48];   /* a top-level key, dtype or name being read */
    unsigned capture_len;
    bool capturing;
    char name[48];      /* the tensor's name once read (for errors) */
    unsigned name_len;  /* 0: not known */
    bool in_shape, shape_ok, shape_done, dtype_known;
    int ndim;
    int64_t shape[OSP_MAX_DIMS];
    osp_dtype dtype;
} osp_stream_scan;

void osp_stream_scan_init(osp_stream_scan *s);
/* Walks n bytes; returns how many were consumed (n unless it failed). */
size_t osp_stream_scan_feed(osp_stream_scan *s, const uint8_t *p, size_t n);

/* Shared with the full validation in stream.c. */
/* The stream dtype names only ("f32", not "F32" or "float32"). */
bool osp_stream_dtype_parse(const char *s, size_t len, osp_dtype *out);
/* product(shape) x itemsize; false on overflow. */
bool osp_stream_data_size(osp_dtype dtype, int ndim, const int64_t *shape, uint64_t *out);

#endif
