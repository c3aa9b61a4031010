/* stream_scan.c — message framing and size limits for the stream reader
 * (see stream_scan.h for why). */
#include "stream_scan.h"

#include "core/checked.h"
#include "printable.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { KEY_OTHER, KEY_NAME, KEY_DTYPE, KEY_SHAPE, KEY_DATA };

bool osp_stream_dtype_parse(const char *s, size_t len, osp_dtype *out)
{
    for (int t = 0; t < OSP_DTYPE_COUNT; t++) {
        const char *name = osp_dtype_name((osp_dtype)t);
        if (strlen(name) == len && memcmp(name, s, len) == 0) {
            *out = (osp_dtype)t;
            return true;
        }
    }
    return false;
}

bool osp_stream_data_size(osp_dtype dtype, int ndim, const int64_t *shape, uint64_t *out)
{
    int64_t n;
    size_t bytes;
    if (!osp_shape_numel(shape, ndim, &n) ||
        !osp_mul_size((size_t)n, osp_dtype_size(dtype), &bytes))
        return false;
    *out = bytes;
    return true;
}

void osp_stream_scan_init(osp_stream_scan *s)
{
    memset(s, 0, sizeof *s);
}

static void fail(osp_stream_scan *s, const char *fmt, ...) OSP_PRINTF(2, 3);
static void fail(osp_stream_scan *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof s->error, fmt, ap);
    va_end(ap);
    s->failed = true;
}

static void reset_message(osp_stream_scan *s)
{
    uint64_t messages = s->messages;
    memset(s, 0, sizeof *s);
    s->messages = messages;
}

/* The object just finished; close every container it completes, and the
 * message when the top-level map is done. */
static void value_done(osp_stream_scan *s)
{
    for (;;) {
        if (s->depth == 0) {
            s->messages++;
            reset_message(s);
            return;
        }
        if (--s->remain[s->depth - 1] > 0)
            return;
        if (s->depth == 2 && s->in_shape) {
            s->shape_done = s->shape_ok;
            s->in_shape = false;
        }
        s->depth--;
    }
}

/* A finished scalar; `dim` is its value when it is an int >= 0, else -1. */
static void scalar_done(osp_stream_scan *s, int64_t dim)
{
    if (s->in_shape && s->depth == 2) {
        if (dim >= 0 && s->ndim < OSP_MAX_DIMS)
            s->shape[s->ndim++] = dim;
        else
            s->shape_ok = false;
    }
    value_done(s);
}

static void push(osp_stream_scan *s, uint64_t count, bool is_map)
{
    uint64_t total = is_map ? 2 * count : count;
    if (total > OSP_SCAN_MAX_ITEMS - s->items) {
        fail(s, "message declares more than %u msgpack elements", OSP_SCAN_MAX_ITEMS);
        return;
    }
    s->items += total;
    bool shape_array = !is_map && s->value_slot && s->key == KEY_SHAPE;
    if (s->in_shape && s->depth == 2)
        s->shape_ok = false; /* a container inside shape */
    if (total == 0) {
        if (shape_array) {
            s->ndim = 0;
            s->shape_done = true;
        }
        value_done(s);
        return;
    }
    if (s->depth == OSP_SCAN_MAX_DEPTH) {
        fail(s, "msgpack nested deeper than %d levels (map > meta > array)", OSP_SCAN_MAX_DEPTH);
        return;
    }
    if (shape_array) {
        s->in_shape = true;
        s->shape_ok = count <= OSP_MAX_DIMS;
        s->ndim = 0;
    }
    s->remain[s->depth++] = total;
}

static void payload_start(osp_stream_scan *s, uint64_t len)
{
    if (len == 0) {
        s->phase = SCAN_TYPE;
        return;
    }
    s->phase = SCAN_PAYLOAD;
    s->skip = len;
}

static void str_done(osp_stream_scan *s)
{
    if (s->capturing) {
        s->capturing = false;
        if (s->key_slot) {
            static const char *const names[] = {[KEY_NAME] = "name", [KEY_DTYPE] = "dtype",
                                                [KEY_SHAPE] = "shape", [KEY_DATA] = "data"};
            for (int k = KEY_NAME; k <= KEY_DATA; k++)
                if (strlen(names[k]) == s->capture_len &&
                    memcmp(names[k], s->capture, s->capture_len) == 0)
                    s->key = k;
        } else if (s->key == KEY_NAME) {
            memcpy(s->name, s->capture, s->capture_len);
            s->name_len = s->capture_len;
        } else {
            s->dtype_known = osp_stream_dtype_parse(s->capture, s->capture_len, &s->dtype);
        }
    }
    scalar_done(s, -1);
}

static void str_start(osp_stream_scan *s, uint64_t len)
{
    if (len > OSP_SCAN_MAX_STR_BYTES - s->str_bytes) {
        fail(s, "message holds more than %u bytes of strings", OSP_SCAN_MAX_STR_BYTES);
        return;
    }
    s->str_bytes += len;
    bool dtype_value = s->value_slot && s->key == KEY_DTYPE;
    bool name_value = s->value_slot && s->key == KEY_NAME;
    s->capturing = (s->key_slot || dtype_value || name_value) && len <= sizeof s->capture;
    s->capture_len = 0;
    if (dtype_value)
        s->dtype_known = false;
    payload_start(s, len);
    if (len == 0)
        str_done(s);
}

static void bin_start(osp_stream_scan *s, uint64_t len)
{
    if (++s->bins > 1) {
        fail(s, "message holds more than one bin (only `data` is binary)");
        return;
    }
    if (s->value_slot && s->key == KEY_DATA && s->shape_done && s->dtype_known) {
        uint64_t need;
        char shape[160];
        osp_format_shape(shape, sizeof shape, s->ndim, s->shape);
        if (!osp_stream_data_size(s->dtype, s->ndim, s->shape, &need)) {
            fail(s, "shape %s of %s overflows 64 bits", shape, osp_dtype_name(s->dtype));
            return;
        }
        if (need != len) {
            fail(s, "data holds %llu bytes but shape %s of %s needs %llu", (unsigned long long)len,
                 shape, osp_dtype_name(s->dtype), (unsigned long long)need);
            return;
        }
    }
    payload_start(s, len);
    if (len == 0)
        scalar_done(s, -1);
}

static uint64_t big_endian(const uint8_t *h, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | h[i];
    return v;
}

static void header_done(osp_stream_scan *s)
{
    uint8_t t = s->type;
    uint64_t v = big_endian(s->hdr, s->hdr_need);
    s->phase = SCAN_TYPE;
    if (t >= 0xc4 && t <= 0xc6) {
        bin_start(s, v);
    } else if (t == 0xca || t == 0xcb) {
        scalar_done(s, -1);
    } else if (t >= 0xcc && t <= 0xcf) {
        scalar_done(s, v <= INT64_MAX ? (int64_t)v : -1);
    } else if (t >= 0xd0 && t <= 0xd3) {
        /* sign bit set: negative, not a dimension */
        bool negative = (v >> (8 * s->hdr_need - 1)) & 1;
        scalar_done(s, negative ? -1 : (int64_t)v);
    } else if (t >= 0xd9 && t <= 0xdb) {
        str_start(s, v);
    } else if (t == 0xdc || t == 0xdd) {
        push(s, v, false);
    } else { /* 0xde, 0xdf */
        push(s, v, true);
    }
}

static void need_header(osp_stream_scan *s, unsigned n)
{
    s->phase = SCAN_HEADER;
    s->hdr_need = n;
    s->hdr_have = 0;
}

static void start_object(osp_stream_scan *s, uint8_t b)
{
    s->type = b;
    s->key_slot = s->depth == 1 && s->remain[0] % 2 == 0;
    s->value_slot = s->depth == 1 && !s->key_slot;
    if (s->key_slot)
        s->key = KEY_OTHER;
    if (s->depth == 0 && !(b >= 0x80 && b <= 0x8f) && b != 0xde && b != 0xdf) {
        fail(s, "not an osp tensor message (expected a msgpack map, found byte 0x%02x)", b);
        return;
    }
    if (b <= 0x7f) {
        scalar_done(s, b);
    } else if (b <= 0x8f) {
        push(s, b & 0x0f, true);
    } else if (b <= 0x9f) {
        push(s, b & 0x0f, false);
    } else if (b <= 0xbf) {
        str_start(s, b & 0x1f);
    } else if (b == 0xc0 || b == 0xc2 || b == 0xc3) {
        scalar_done(s, -1);
    } else if (b == 0xc1) {
        fail(s, "invalid msgpack byte 0xc1");
    } else if (b >= 0xc4 && b <= 0xc6) {
        need_header(s, 1u << (b - 0xc4));
    } else if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8)) {
        fail(s, "msgpack ext type 0x%02x is not part of the osp stream format", b);
    } else if (b == 0xca) {
        need_header(s, 4);
    } else if (b == 0xcb) {
        need_header(s, 8);
    } else if (b >= 0xcc && b <= 0xcf) {
        need_header(s, 1u << (b - 0xcc));
    } else if (b >= 0xd0 && b <= 0xd3) {
        need_header(s, 1u << (b - 0xd0));
    } else if (b >= 0xd9 && b <= 0xdb) {
        need_header(s, 1u << (b - 0xd9));
    } else if (b == 0xdc || b == 0xde) {
        need_header(s, 2);
    } else if (b == 0xdd || b == 0xdf) {
        need_header(s, 4);
    } else { /* 0xe0..0xff: negative fixint */
        scalar_done(s, -1);
    }
}

size_t osp_stream_scan_feed(osp_stream_scan *s, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && !s->failed) {
        if (s->phase == SCAN_PAYLOAD) {
            size_t k = n - i < s->skip ? n - i : (size_t)s->skip;
            if (s->capturing) { /* at most sizeof capture bytes in all */
                memcpy(s->capture + s->capture_len, p + i, k);
                s->capture_len += (unsigned)k;
            }
            i += k;
            s->skip -= k;
            s->msg_bytes += k;
            if (s->skip == 0) {
                s->phase = SCAN_TYPE;
                if (s->type >= 0xc4 && s->type <= 0xc6)
                    scalar_done(s, -1);
                else
                    str_done(s);
            }
            continue;
        }
        uint8_t b = p[i++];
        s->msg_bytes++;
        if (s->phase == SCAN_TYPE) {
            start_object(s, b);
        } else {
            s->hdr[s->hdr_have++] = b;
            if (s->hdr_have == s->hdr_need)
                header_done(s);
        }
    }
    return i;
}
