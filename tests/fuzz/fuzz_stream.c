/* fuzz_stream.c — libFuzzer target for the tensor stream reader.
 *
 * Checks, beyond "no crash, no leak, no UB":
 *   - the scan (stream_scan.h) reaches the same verdict whatever the read
 *     chunking: the input is fed in one piece and in pieces of 1..16 bytes;
 *   - every tensor the reader accepts is written back by the writer, and
 *     that stream reads back to the same names, shapes, bytes and meta. */
#include "io/stream.h"
#include "io/stream_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static void check_chunking(const uint8_t *data, size_t size)
{
    osp_stream_scan whole, pieces;
    osp_stream_scan_init(&whole);
    osp_stream_scan_init(&pieces);
    osp_stream_scan_feed(&whole, data, size);
    uint32_t x = (uint32_t)size * 2654435761u + 1;
    for (size_t i = 0; i < size && !pieces.failed;) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t k = 1 + x % 16;
        if (k > size - i)
            k = size - i;
        osp_stream_scan_feed(&pieces, data + i, k);
        i += k;
    }
    REQUIRE(whole.messages == pieces.messages && whole.failed == pieces.failed);
    REQUIRE(whole.failed ? strcmp(whole.error, pieces.error) == 0
                         : whole.msg_bytes == pieces.msg_bytes);
}

static bool same_value(const osp_meta_value *a, const osp_meta_value *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case OSP_META_STR: return strcmp(a->s, b->s) == 0;
    case OSP_META_INT: return a->i == b->i;
    case OSP_META_FLOAT: return memcmp(&a->f, &b->f, sizeof a->f) == 0;
    case OSP_META_BOOL: return a->b == b->b;
    case OSP_META_ARRAY:
        if (a->array.n != b->array.n)
            return false;
        for (size_t i = 0; i < a->array.n; i++)
            if (!same_value(&a->array.items[i], &b->array.items[i]))
                return false;
        return true;
    }
    return false;
}

static bool same_tensor(const osp_named_tensor *a, const osp_named_tensor *b)
{
    if (strcmp(a->name, b->name) || !osp_same_shape(a->tensor, b->tensor) ||
        a->tensor->dtype != b->tensor->dtype || a->meta.n != b->meta.n ||
        memcmp(osp_data(a->tensor), osp_data(b->tensor), osp_nbytes(a->tensor)))
        return false;
    for (size_t i = 0; i < a->meta.n; i++)
        if (strcmp(a->meta.keys[i], b->meta.keys[i]) ||
            !same_value(&a->meta.values[i], &b->meta.values[i]))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_chunking(data, size);

    enum { MAX_KEEP = 8 };
    osp_named_tensor kept[MAX_KEEP];
    int n = 0, count = 0;
    osp_stream_reader *r = osp_stream_reader_from_memory(data, size, "fuzz");
    REQUIRE(r);
    for (;;) {
        bool got;
        osp_named_tensor nt;
        if (osp_stream_read(r, &nt, &got) != OSP_OK) {
            /* the scan and msgpack-c must agree on what a message is */
            char disagree[64];
            snprintf(disagree, sizeof disagree, "fuzz: tensor #%d: malformed msgpack", count);
            REQUIRE(strcmp(osp_error_message(), disagree) != 0);
            break;
        }
        if (!got)
            break;
        count++;
        if (n < MAX_KEEP)
            kept[n++] = nt;
        else
            osp_named_tensor_free(&nt);
    }
    osp_stream_close_read(r);

    int fd = memfd_create("fuzz_stream", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    osp_stream_writer *w = osp_stream_writer_from_fd(fd, "memfd");
    REQUIRE(w);
    for (int i = 0; i < n; i++)
        REQUIRE(osp_stream_write(w, kept[i].name, kept[i].tensor, &kept[i].meta) == OSP_OK);
    REQUIRE(osp_stream_commit(w) == OSP_OK);
    osp_stream_close_write(w);
    REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
    r = osp_stream_reader_from_fd(fd, "memfd");
    REQUIRE(r);
    for (int i = 0; i <= n; i++) {
        bool got;
        osp_named_tensor back;
        REQUIRE(osp_stream_read(r, &back, &got) == OSP_OK);
        REQUIRE(got == (i < n));
        if (got) {
            REQUIRE(same_tensor(&kept[i], &back));
            osp_named_tensor_free(&back);
        }
    }
    osp_stream_close_read(r);
    close(fd);
    for (int i = 0; i < n; i++)
        osp_named_tensor_free(&kept[i]);
    return 0;
}
