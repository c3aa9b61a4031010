/* stream.h — the osp tensor stream, version 1 (spec: man/man5/osp-tensor.5,
 * ../shared/spec/cli.md): msgpack maps {osp, name, dtype, shape, data,
 * meta?}, back to back, ended by EOF.
 *
 * Reading is incremental: osp_stream_read() returns one tensor at a time,
 * pulling only the bytes it needs from the file descriptor (works on pipes).
 * Writing emits each tensor as soon as it is given (no whole-stream
 * buffering). Every message is validated: version, required keys, known
 * dtype, shape rank <= 8 with non-negative dims whose byte size does not
 * overflow and equals the data length; a truncated message or garbage is
 * an OSP_ERR_DATA error naming the stream and the tensor index. */
#ifndef OSP_STREAM_H
#define OSP_STREAM_H

#include <stdbool.h>
#include <stdio.h>

#include "core/tensor.h"

/* Metadata: an ordered list of key -> value; values keep their msgpack
 * kind so unknown keys pass through unchanged. */
typedef enum osp_meta_kind {
    OSP_META_STR, OSP_META_INT, OSP_META_FLOAT, OSP_META_BOOL, OSP_META_ARRAY,
} osp_meta_kind;

typedef struct osp_meta_value osp_meta_value;
struct osp_meta_value {
    osp_meta_kind kind;
    union {
        char *s;
        int64_t i;
        double f;
        bool b;
        struct { osp_meta_value *items; size_t n; } array; /* of scalars */
    };
};

typedef struct osp_meta {
    size_t n;
    char **keys;
    osp_meta_value *values;
} osp_meta;

void osp_meta_init(osp_meta *m);
void osp_meta_free(osp_meta *m);
osp_status osp_meta_copy(osp_meta *dst, const osp_meta *src);
const osp_meta_value *osp_meta_get(const osp_meta *m, const char *key);
osp_status osp_meta_set_str(osp_meta *m, const char *key, const char *value);
osp_status osp_meta_set_int(osp_meta *m, const char *key, int64_t value);
osp_status osp_meta_set_float(osp_meta *m, const char *key, double value);
osp_status osp_meta_set_bool(osp_meta *m, const char *key, bool value);
/* Any value, arrays included (deep-copied; an array holds scalars only).
 * Setting an existing key replaces its value in place, keeping the order. */
osp_status osp_meta_set(osp_meta *m, const char *key, const osp_meta_value *value);

/* One tensor of a stream: its role name, data (host), and meta. */
typedef struct osp_named_tensor {
    char *name;
    osp_tensor *tensor; /* an owned reference (not in any pool) */
    osp_meta meta;
} osp_named_tensor;

void osp_named_tensor_free(osp_named_tensor *nt);

/* true when the file (NULL or "-" = stdin: assumed) starts like an osp
 * stream: a msgpack map of 5 or 6 entries whose first key is a string.
 * Video containers and PNGs never do; tools use this to tell a stream
 * from a media file. */
bool osp_stream_sniff(const char *path);

typedef struct osp_stream_reader osp_stream_reader;

/* path "-" or NULL = stdin. `label` names the stream in error messages.
 * A reader made from an fd does not close it. */
osp_stream_reader *osp_stream_open_read(const char *path);
osp_stream_reader *osp_stream_reader_from_fd(int fd, const char *label);
/* Reads a stream held in memory (the buffer must outlive the reader); for
 * tests and fuzzing. */
osp_stream_reader *osp_stream_reader_from_memory(const void *data, size_t size,
                                                 const char *label);
/* Reads the next tensor into *out (overwritten: free what it held first).
 * Returns OSP_OK with *got = true (the caller then owns *out), OSP_OK with
 * *got = false at a clean EOF (between messages), or an error (the reader
 * then stays failed). Unknown top-level keys are an error (cli.md: "exactly
 * these keys"; `meta` is the place for extensions). */
osp_status osp_stream_read(osp_stream_reader *r, osp_named_tensor *out, bool *got);
void osp_stream_close_read(osp_stream_reader *r);

typedef struct osp_stream_writer osp_stream_writer;

/* path "-" or NULL = stdout. A named file is written to a temporary name
 * in the same folder and renamed by osp_stream_commit(); closing without
 * committing (a failed run) removes it. */
osp_stream_writer *osp_stream_open_write(const char *path);
/* Does not close fd. */
osp_stream_writer *osp_stream_writer_from_fd(int fd, const char *label);
/* Writes one tensor (any host tensor; strided ones are made contiguous) and
 * hands all its bytes to the kernel before returning. meta may be NULL. */
osp_status osp_stream_write(osp_stream_writer *w, const char *name, const osp_tensor *t,
                            const osp_meta *meta);
osp_status osp_stream_commit(osp_stream_writer *w);
/* Closes; discards an uncommitted file output. */
void osp_stream_close_write(osp_stream_writer *w);

#endif
