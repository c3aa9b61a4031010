/* stream.c — osp tensor stream v1: incremental reader and writer (see
 * stream.h; the size guard is explained in stream_scan.h).
 *
 * Reader: bytes come from read(2) (or memory) into msgpack_unpacker's
 * buffer, 64 KiB or more at a time. Every byte goes through the scan first;
 * msgpack_unpacker_next() is only called once the scan has seen a complete
 * message, so msgpack-c never parses a partial or oversized one. The data
 * bin is copied into a fresh tensor and the message's buffer released
 * before the next one is read: memory holds one message (plus one read
 * chunk of the next), never the whole stream.
 * Writer: each message's header is packed with msgpack_packer into a small
 * buffer and written, then the tensor bytes are written straight from the
 * tensor, so nothing is copied and nothing waits for the stream's end. */
#include "stream.h"

#include "atomic_file.h"
#include "printable.h"
#include "stream_meta.h"
#include "stream_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "stream data is little-endian; a big-endian host needs byte swapping here");

#define READ_CHUNK (64 * 1024)

void osp_named_tensor_free(osp_named_tensor *nt)
{
    free(nt->name);
    osp_release(nt->tensor);
    osp_meta_free(&nt->meta);
    nt->name = NULL;
    nt->tensor = NULL;
}

/* ---------------- reader ---------------- */

struct osp_stream_reader {
    char *label;
    int fd;
    bool own_fd;
    const uint8_t *mem; /* memory source instead of fd */
    size_t mem_size, mem_pos;
    msgpack_unpacker up;
    msgpack_unpacked msg;
    osp_stream_scan scan;
    uint64_t delivered; /* tensors returned so far */
    bool eof, failed;
};

static osp_stream_reader *reader_new(const char *label)
{
    osp_stream_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->label = strdup(label))) {
        free(r);
        osp_error_nomem("stream reader", sizeof *r);
        return NULL;
    }
    if (!msgpack_unpacker_init(&r->up, READ_CHUNK)) {
        free(r->label);
        free(r);
        osp_error_nomem("stream buffer", READ_CHUNK);
        return NULL;
    }
    msgpack_unpacked_init(&r->msg);
    osp_stream_scan_init(&r->scan);
    r->fd = -1;
    return r;
}

osp_stream_reader *osp_stream_reader_from_fd(int fd, const char *label)
{
    osp_stream_reader *r = reader_new(label ? label : "stream");
    if (r)
        r->fd = fd;
    return r;
}

osp_stream_reader *osp_stream_reader_from_memory(const void *data, size_t size, const char *label)
{
    osp_stream_reader *r = reader_new(label ? label : "memory");
    if (r) {
        r->mem = data;
        r->mem_size = size;
    }
    return r;
}

osp_stream_reader *osp_stream_open_read(const char *path)
{
    if (!path || strcmp(path, "-") == 0)
        return osp_stream_reader_from_fd(STDIN_FILENO, "stdin");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        osp_error(OSP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    osp_stream_reader *r = osp_stream_reader_from_fd(fd, path);
    if (!r) {
        close(fd);
        return NULL;
    }
    r->own_fd = true;
    return r;
}

void osp_stream_close_read(osp_stream_reader *r)
{
    if (!r)
        return;
    if (r->own_fd)
        close(r->fd);
    msgpack_unpacked_destroy(&r->msg);
    msgpack_unpacker_destroy(&r->up);
    free(r->label);
    free(r);
}

/* Reads what is available (at least one byte, or sets eof) and scans it. */
static osp_status refill(osp_stream_reader *r)
{
    if (!msgpack_unpacker_reserve_buffer(&r->up, READ_CHUNK))
        return osp_error_nomem("stream buffer", msgpack_unpacker_buffer_capacity(&r->up));
    char *buf = msgpack_unpacker_buffer(&r->up);
    size_t cap = msgpack_unpacker_buffer_capacity(&r->up);
    size_t got;
    if (r->mem) {
        got = r->mem_size - r->mem_pos < cap ? r->mem_size - r->mem_pos : cap;
        memcpy(buf, r->mem + r->mem_pos, got);
        r->mem_pos += got;
    } else {
        ssize_t n;
        do
            n = read(r->fd, buf, cap);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return osp_error(OSP_ERR_IO, "%s: read failed: %s", r->label, strerror(errno));
        got = (size_t)n;
    }
    if (got == 0) {
        r->eof = true;
        return OSP_OK;
    }
    osp_stream_scan_feed(&r->scan, (const uint8_t *)buf, got);
    msgpack_unpacker_buffer_consumed(&r->up, got);
    return OSP_OK;
}

enum { F_OSP, F_NAME, F_DTYPE, F_SHAPE, F_DATA, F_META, F_COUNT };
static const char *const field_names[F_COUNT] = {"osp", "name", "dtype", "shape", "data", "meta"};

static osp_status wrong_type(int field, const char *want, const msgpack_object *o)
{
    return osp_error(OSP_ERR_DATA, "key '%s' must be %s, found %s", field_names[field], want,
                     osp_msgpack_kind(o));
}

/* Sorts the message's values into fields[], rejecting unknown, repeated
 * and missing keys. */
static osp_status collect_fields(const msgpack_object *o, const msgpack_object *fields[F_COUNT])
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return osp_error(OSP_ERR_DATA, "not an osp tensor message (found %s)",
                         osp_msgpack_kind(o));
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            return osp_error(OSP_ERR_DATA, "message keys must be strings, found %s",
                             osp_msgpack_kind(k));
        int f = 0;
        while (f < F_COUNT && !(strlen(field_names[f]) == k->via.str.size &&
                                memcmp(field_names[f], k->via.str.ptr, k->via.str.size) == 0))
            f++;
        if (f == F_COUNT) {
            char buf[48];
            return osp_error(OSP_ERR_DATA, "unknown key '%s' (a v1 tensor has exactly osp, name, "
                             "dtype, shape, data and optionally meta)",
                             osp_printable(k->via.str.ptr, k->via.str.size, buf, sizeof buf));
        }
        if (fields[f])
            return osp_error(OSP_ERR_DATA, "key '%s' appears twice", field_names[f]);
        fields[f] = &o->via.map.ptr[i].val;
    }
    for (int f = 0; f < F_META; f++)
        if (!fields[f])
            return osp_error(OSP_ERR_DATA, "missing key '%s'", field_names[f]);
    return OSP_OK;
}

static osp_status decode_name(const msgpack_object *o, char **out)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return wrong_type(F_NAME, "a str", o);
    if (o->via.str.size == 0 || memchr(o->via.str.ptr, 0, o->via.str.size))
        return osp_error(OSP_ERR_DATA, "name must be a non-empty string without NUL bytes");
    *out = strndup(o->via.str.ptr, o->via.str.size);
    return *out ? OSP_OK : osp_error_nomem("tensor name", o->via.str.size);
}

static osp_status decode_shape(const msgpack_object *o, int *ndim, int64_t *shape)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return wrong_type(F_SHAPE, "an array of ints", o);
    if (o->via.array.size > OSP_MAX_DIMS)
        return osp_error(OSP_ERR_DATA, "shape has rank %u; the maximum is %d", o->via.array.size,
                         OSP_MAX_DIMS);
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *d = &o->via.array.ptr[i];
        if (d->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            return osp_error(OSP_ERR_DATA, "shape dimension %u is negative (%lld)", i,
                             (long long)d->via.i64);
        if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return osp_error(OSP_ERR_DATA, "shape dimension %u must be an int, found %s", i,
                             osp_msgpack_kind(d));
        if (d->via.u64 > INT64_MAX)
            return osp_error(OSP_ERR_DATA, "shape dimension %u (%llu) exceeds the int64 range", i,
                             (unsigned long long)d->via.u64);
        shape[i] = (int64_t)d->via.u64;
    }
    *ndim = (int)o->via.array.size;
    return OSP_OK;
}

/* Validates one message completely and builds the tensor. */
static osp_status decode_message(const msgpack_object *o, osp_named_tensor *out)
{
    const msgpack_object *fields[F_COUNT] = {0};
    osp_status st = collect_fields(o, fields);
    if (st == OSP_OK)
        st = decode_name(fields[F_NAME], &out->name);
    if (st != OSP_OK)
        return st;

    const msgpack_object *v = fields[F_OSP];
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 != 1)
        return osp_error(OSP_ERR_DATA, "unsupported stream version %llu (this reader knows 1)",
                         (unsigned long long)v->via.u64);
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return osp_error(OSP_ERR_DATA, "unsupported stream version %lld (this reader knows 1)",
                         (long long)v->via.i64);
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return wrong_type(F_OSP, "an int", v);

    v = fields[F_DTYPE];
    osp_dtype dtype;
    if (v->type != MSGPACK_OBJECT_STR)
        return wrong_type(F_DTYPE, "a str", v);
    if (!osp_stream_dtype_parse(v->via.str.ptr, v->via.str.size, &dtype)) {
        char buf[40];
        return osp_error(OSP_ERR_DATA, "unknown dtype '%s' (f32 f16 bf16 f64 i32 i64 u8)",
                         osp_printable(v->via.str.ptr, v->via.str.size, buf, sizeof buf));
    }

    int ndim = 0;
    int64_t shape[OSP_MAX_DIMS];
    if ((st = decode_shape(fields[F_SHAPE], &ndim, shape)) != OSP_OK)
        return st;

    v = fields[F_DATA];
    if (v->type != MSGPACK_OBJECT_BIN)
        return wrong_type(F_DATA, "a bin", v);
    uint64_t need;
    char shape_str[160];
    osp_format_shape(shape_str, sizeof shape_str, ndim, shape);
    if (!osp_stream_data_size(dtype, ndim, shape, &need))
        return osp_error(OSP_ERR_DATA, "shape %s of %s overflows 64 bits", shape_str,
                         osp_dtype_name(dtype));
    if (need != v->via.bin.size)
        return osp_error(OSP_ERR_DATA, "data holds %u bytes but shape %s of %s needs %llu",
                         v->via.bin.size, shape_str, osp_dtype_name(dtype),
                         (unsigned long long)need);

    if (fields[F_META] && (st = osp_meta_from_msgpack(&out->meta, fields[F_META])) != OSP_OK)
        return st;

    out->tensor = osp_pool_take(osp_tensor_new(dtype, ndim, shape, OSP_DEVICE_CPU));
    if (!out->tensor)
        return osp_error_code();
    if (need)
        memcpy(osp_data(out->tensor), v->via.bin.ptr, need);
    return OSP_OK;
}

/* "label: tensor #3 ('name')" into buf; the name part only when known. */
static const char *where(const osp_stream_reader *r, const char *name, size_t name_len, char *buf,
                         size_t len)
{
    char quoted[48];
    if (name_len)
        snprintf(buf, len, "%s: tensor #%llu ('%s')", r->label, (unsigned long long)r->delivered,
                 osp_printable(name, name_len, quoted, sizeof quoted));
    else
        snprintf(buf, len, "%s: tensor #%llu", r->label, (unsigned long long)r->delivered);
    return buf;
}

osp_status osp_stream_read(osp_stream_reader *r, osp_named_tensor *out, bool *got)
{
    memset(out, 0, sizeof *out);
    *got = false;
    if (r->failed)
        return osp_error(OSP_ERR_DATA, "%s: read after an earlier error", r->label);
    osp_status st = OSP_OK;
    char at[512];
    while (r->scan.messages == r->delivered && st == OSP_OK) {
        if (r->scan.failed) {
            st = osp_error(OSP_ERR_DATA, "%s: %s",
                           where(r, r->scan.name, r->scan.name_len, at, sizeof at), r->scan.error);
        } else if (r->eof) {
            if (r->scan.msg_bytes == 0)
                return OSP_OK; /* clean end of stream */
            st = osp_error(OSP_ERR_DATA, "%s: truncated message (the stream ends after %llu "
                           "bytes of it)", where(r, r->scan.name, r->scan.name_len, at, sizeof at),
                           (unsigned long long)r->scan.msg_bytes);
        } else {
            st = refill(r);
        }
    }
    if (st == OSP_OK) {
        /* The scan saw a complete message, so msgpack-c must parse it whole. */
        if (msgpack_unpacker_next(&r->up, &r->msg) != MSGPACK_UNPACK_SUCCESS)
            st = osp_error(OSP_ERR_DATA, "%s: malformed msgpack", where(r, NULL, 0, at, sizeof at));
        else if ((st = decode_message(&r->msg.data, out)) != OSP_OK)
            osp_error_context("%s", where(r, out->name, out->name ? strlen(out->name) : 0, at,
                                          sizeof at));
        msgpack_unpacked_destroy(&r->msg); /* frees the message's buffer share */
    }
    if (st != OSP_OK) {
        osp_named_tensor_free(out);
        r->failed = true;
        return st;
    }
    r->delivered++;
    *got = true;
    return OSP_OK;
}

/* ---------------- writer ---------------- */

struct osp_stream_writer {
    char *label;
    int fd;
    bool atomic, committed, failed;
    osp_atomic_file file;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint64_t written;
};

static osp_stream_writer *writer_new(const char *label)
{
    osp_stream_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->label = strdup(label))) {
        free(w);
        osp_error_nomem("stream writer", sizeof *w);
        return NULL;
    }
    w->fd = -1;
    msgpack_sbuffer_init(&w->sb);
    msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
    return w;
}

osp_stream_writer *osp_stream_writer_from_fd(int fd, const char *label)
{
    osp_stream_writer *w = writer_new(label ? label : "stream");
    if (w)
        w->fd = fd;
    return w;
}

osp_stream_writer *osp_stream_open_write(const char *path)
{
    if (!path || strcmp(path, "-") == 0)
        return osp_stream_writer_from_fd(STDOUT_FILENO, "stdout");
    osp_stream_writer *w = writer_new(path);
    if (w && osp_atomic_open(&w->file, path) != OSP_OK) {
        osp_stream_close_write(w);
        return NULL;
    }
    if (w)
        w->atomic = true;
    return w;
}

static osp_status sink(osp_stream_writer *w, const void *data, size_t n)
{
    return w->atomic ? osp_atomic_write(&w->file, data, n)
                     : osp_write_all(w->fd, data, n, w->label);
}

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

/* Packs everything but the data bytes: the map with the bin header last. */
static osp_status pack_header(osp_stream_writer *w, const char *name, const osp_tensor *t,
                              const osp_meta *meta, size_t nbytes)
{
    msgpack_packer *pk = &w->pk;
    bool has_meta = meta && meta->n;
    msgpack_sbuffer_clear(&w->sb);
    int rc = msgpack_pack_map(pk, has_meta ? 6 : 5) || pack_str(pk, "osp") ||
             msgpack_pack_int(pk, 1) || pack_str(pk, "name") || pack_str(pk, name) ||
             pack_str(pk, "dtype") || pack_str(pk, osp_dtype_name(t->dtype)) ||
             pack_str(pk, "shape") || msgpack_pack_array(pk, (size_t)t->ndim);
    for (int i = 0; i < t->ndim && !rc; i++)
        rc = msgpack_pack_int64(pk, t->shape[i]);
    if (!rc && has_meta) {
        if (pack_str(pk, "meta"))
            rc = 1;
        else if (osp_meta_pack(pk, meta) != OSP_OK)
            return osp_error_code();
    }
    if (!rc)
        rc = pack_str(pk, "data") || msgpack_pack_bin(pk, nbytes);
    return rc ? osp_error_nomem("stream message header", w->sb.size) : OSP_OK;
}

osp_status osp_stream_write(osp_stream_writer *w, const char *name, const osp_tensor *t,
                            const osp_meta *meta)
{
    if (w->failed || w->committed)
        return osp_error(OSP_ERR_IO, "%s: write after %s", w->label,
                         w->committed ? "commit" : "an earlier error");
    if (!name || !*name)
        return osp_error(OSP_ERR_RUNTIME, "%s: tensor #%llu: a stream tensor needs a name",
                         w->label, (unsigned long long)w->written);
    if (!t || (unsigned)t->dtype >= OSP_DTYPE_COUNT || !t->storage ||
        t->storage->device != OSP_DEVICE_CPU)
        return osp_error(OSP_ERR_RUNTIME, "%s: tensor #%llu ('%s'): only host tensors can be "
                         "written", w->label, (unsigned long long)w->written, name);
    size_t nbytes = osp_nbytes(t);
    if (nbytes > UINT32_MAX)
        return osp_error(OSP_ERR_RUNTIME, "%s: tensor #%llu ('%s'): %zu bytes exceed the 4 GiB "
                         "a stream message can hold", w->label, (unsigned long long)w->written,
                         name, nbytes);
    osp_tensor *copy = NULL;
    if (!osp_is_contiguous(t) && !(copy = osp_pool_take(osp_tensor_contiguous((osp_tensor *)t))))
        return osp_error_code();
    const osp_tensor *c = copy ? copy : t;
    osp_status st = pack_header(w, name, c, meta, nbytes);
    if (st != OSP_OK) { /* nothing written yet: the stream stays usable */
        osp_release(copy);
        osp_error_context("%s: tensor #%llu ('%s')", w->label, (unsigned long long)w->written,
                          name);
        return st;
    }
    st = sink(w, w->sb.data, w->sb.size);
    if (st == OSP_OK && nbytes)
        st = sink(w, osp_data(c), nbytes);
    osp_release(copy);
    if (st != OSP_OK) {
        w->failed = true; /* a partial message may be out */
        return st;
    }
    w->written++;
    return OSP_OK;
}

osp_status osp_stream_commit(osp_stream_writer *w)
{
    if (w->failed)
        return osp_error(OSP_ERR_IO, "%s: not committed after an earlier error", w->label);
    if (w->committed)
        return OSP_OK;
    osp_status st = w->atomic ? osp_atomic_commit(&w->file) : OSP_OK;
    if (st != OSP_OK)
        w->failed = true;
    else
        w->committed = true;
    return st;
}

void osp_stream_close_write(osp_stream_writer *w)
{
    if (!w)
        return;
    if (w->atomic)
        osp_atomic_abort(&w->file); /* removes the temp file unless committed */
    msgpack_sbuffer_destroy(&w->sb);
    free(w->label);
    free(w);
}
