/* test_stream.c — the osp tensor stream: round trips (every dtype, rank
 * 0..8, meta of every kind, files, pipes) and the malformed-input suite
 * (truncation at every byte, wrong sizes, hostile headers, bad keys). */
#include "test.h"
#include "tmpdir.h"

#include "io/stream.h"

#include <fcntl.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* Random bytes, never all zero. */
static void fill_random(osp_tensor *t)
{
    uint8_t *p = osp_data(t);
    for (size_t i = 0; i < osp_nbytes(t); i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        p[i] = (uint8_t)(rng >> 24) | 1;
    }
}

static osp_tensor *random_tensor(osp_dtype dt, int ndim, const int64_t *shape)
{
    osp_tensor *t = osp_tensor_new(dt, ndim, shape, OSP_DEVICE_CPU);
    if (t)
        fill_random(t);
    return t;
}

static bool same_bytes(const osp_tensor *a, const osp_tensor *b)
{
    return a->dtype == b->dtype && osp_same_shape(a, b) &&
           memcmp(osp_data(a), osp_data(b), osp_nbytes(a)) == 0;
}

/* The bytes written to a memfd by `write_fn`, as a malloc'd buffer. */
static uint8_t *capture(void (*write_fn)(osp_stream_writer *), size_t *size)
{
    int fd = memfd_create("stream", 0);
    osp_stream_writer *w = osp_stream_writer_from_fd(fd, "memfd");
    write_fn(w);
    osp_stream_commit(w);
    osp_stream_close_write(w);
    off_t n = lseek(fd, 0, SEEK_END);
    uint8_t *buf = malloc((size_t)n + 1);
    pread(fd, buf, (size_t)n, 0);
    close(fd);
    *size = (size_t)n;
    return buf;
}

/* Reads every tensor; returns how many, *st the final status (OSP_OK after
 * a clean EOF). */
static int read_all(const void *buf, size_t n, osp_status *st)
{
    osp_stream_reader *r = osp_stream_reader_from_memory(buf, n, "test.msgpack");
    int count = 0;
    for (;;) {
        osp_named_tensor nt;
        bool got;
        *st = osp_stream_read(r, &nt, &got);
        if (*st != OSP_OK || !got)
            break;
        count++;
        osp_named_tensor_free(&nt);
    }
    osp_stream_close_read(r);
    return count;
}

#define CHECK_DATA_ERROR(buf, n, want_count, text)                                    \
    do {                                                                              \
        osp_status st_;                                                               \
        CHECK(read_all(buf, n, &st_) == (want_count));                                \
        CHECK(st_ == OSP_ERR_DATA);                                                   \
        CHECK(strstr(osp_error_message(), text) != NULL);                             \
        CHECK(strstr(osp_error_message(), "test.msgpack: tensor #") != NULL);         \
    } while (0)

/* ---------------- round trips ---------------- */

TEST(every_dtype_and_rank_through_a_file)
{
    char *dir = test_tmpdir();
    const char *path = test_path(dir, "all.msgpack");
    osp_stream_writer *w = osp_stream_open_write(path);
    CHECK(w != NULL);
    osp_tensor *sent[OSP_DTYPE_COUNT * 9];
    int n = 0;
    for (int dt = 0; dt < OSP_DTYPE_COUNT; dt++) {
        for (int rank = 0; rank <= OSP_MAX_DIMS; rank++) {
            int64_t shape[OSP_MAX_DIMS];
            for (int d = 0; d < rank; d++)
                shape[d] = 1 + (d + dt) % 3;
            sent[n] = random_tensor((osp_dtype)dt, rank, shape);
            char name[32];
            snprintf(name, sizeof name, "t%d_%d", dt, rank);
            CHECK(osp_stream_write(w, name, sent[n], NULL) == OSP_OK);
            n++;
        }
    }
    struct stat sb;
    CHECK(stat(path, &sb) != 0); /* not visible before commit */
    CHECK(osp_stream_commit(w) == OSP_OK);
    osp_stream_close_write(w);
    CHECK(stat(path, &sb) == 0);

    osp_stream_reader *r = osp_stream_open_read(path);
    CHECK(r != NULL);
    for (int i = 0; i <= n; i++) {
        osp_named_tensor nt;
        bool got;
        CHECK(osp_stream_read(r, &nt, &got) == OSP_OK);
        CHECK(got == (i < n));
        if (!got)
            break;
        char name[32];
        snprintf(name, sizeof name, "t%d_%d", i / 9, i % 9);
        CHECK(strcmp(nt.name, name) == 0);
        CHECK(same_bytes(nt.tensor, sent[i]));
        CHECK(nt.meta.n == 0);
        osp_named_tensor_free(&nt);
    }
    osp_stream_close_read(r);
    test_rmtree(dir);
    free(dir);
}

TEST(uncommitted_file_is_removed)
{
    char *dir = test_tmpdir();
    osp_stream_writer *w = osp_stream_open_write(test_path(dir, "out.msgpack"));
    int64_t shape[1] = {4};
    CHECK(osp_stream_write(w, "x", test_random(1, shape, -1, 1), NULL) == OSP_OK);
    osp_stream_close_write(w); /* a failed run: no commit */
    rmdir(dir);                /* succeeds only when nothing was left behind */
    struct stat sb;
    CHECK(stat(dir, &sb) != 0);
    test_rmtree(dir);
    free(dir);
}

TEST(special_files_are_written_in_place)
{
    /* A FIFO (as /dev/null or a named pipe would be) must be written
     * directly: a temp file renamed over it would replace it. */
    char *dir = test_tmpdir();
    const char *fifo = test_path(dir, "pipe");
    CHECK(mkfifo(fifo, 0600) == 0);
    int rfd = open(fifo, O_RDONLY | O_NONBLOCK); /* so the writer's open does not block */
    osp_stream_writer *w = osp_stream_open_write(fifo);
    CHECK(w != NULL);
    int64_t shape[1] = {3};
    osp_tensor *t = test_random(1, shape, -1, 1);
    CHECK(w && osp_stream_write(w, "x", t, NULL) == OSP_OK);
    CHECK(w && osp_stream_commit(w) == OSP_OK);
    osp_stream_close_write(w);
    struct stat sb;
    CHECK(stat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    osp_stream_reader *r = osp_stream_reader_from_fd(rfd, "fifo");
    osp_named_tensor nt;
    bool got;
    CHECK(osp_stream_read(r, &nt, &got) == OSP_OK && got && same_bytes(nt.tensor, t));
    osp_named_tensor_free(&nt);
    osp_stream_close_read(r);
    close(rfd);
    test_rmtree(dir);
    free(dir);
}

TEST(symlink_target_is_replaced_not_the_link)
{
    char *dir = test_tmpdir();
    char target[4096], link[4096];
    snprintf(target, sizeof target, "%s", test_path(dir, "real.msgpack"));
    snprintf(link, sizeof link, "%s", test_path(dir, "link.msgpack"));
    FILE *f = fopen(target, "w");
    fputs("old", f);
    fclose(f);
    CHECK(symlink(target, link) == 0);
    osp_stream_writer *w = osp_stream_open_write(link);
    int64_t shape[1] = {2};
    CHECK(w && osp_stream_write(w, "x", test_random(1, shape, 0, 1), NULL) == OSP_OK);
    CHECK(w && osp_stream_commit(w) == OSP_OK);
    osp_stream_close_write(w);
    struct stat sb;
    CHECK(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK(stat(target, &sb) == 0 && sb.st_size > 3);
    test_rmtree(dir);
    free(dir);
}

TEST(strided_tensor_is_written_contiguous)
{
    int64_t shape[2] = {3, 4};
    osp_tensor *t = test_random(2, shape, -1, 1);
    int perm[2] = {1, 0};
    osp_tensor *v = osp_view_permute(t, perm);
    int fd = memfd_create("s", 0);
    osp_stream_writer *w = osp_stream_writer_from_fd(fd, "memfd");
    CHECK(osp_stream_write(w, "transposed", v, NULL) == OSP_OK);
    osp_stream_close_write(w);
    lseek(fd, 0, SEEK_SET);
    osp_stream_reader *r = osp_stream_reader_from_fd(fd, "memfd");
    osp_named_tensor nt;
    bool got;
    CHECK(osp_stream_read(r, &nt, &got) == OSP_OK && got);
    CHECK(nt.tensor->shape[0] == 4 && nt.tensor->shape[1] == 3);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            CHECK(osp_f32(nt.tensor)[i * 3 + j] == osp_f32(t)[j * 4 + i]);
    osp_named_tensor_free(&nt);
    osp_stream_close_read(r);
    close(fd);
}

static bool same_value(const osp_meta_value *a, const osp_meta_value *b)
{
    if (!a || !b || a->kind != b->kind)
        return false;
    switch (a->kind) {
    case OSP_META_STR: return strcmp(a->s, b->s) == 0;
    case OSP_META_INT: return a->i == b->i;
    case OSP_META_FLOAT: return a->f == b->f;
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

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

TEST(meta_of_every_kind_passes_through)
{
    /* A message as another program might write it: float32 and uint
     * encodings, keys osp does not know, arrays of mixed scalars. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    pack_str(&pk, "meta");
    msgpack_pack_map(&pk, 7);
    pack_str(&pk, "fps"), msgpack_pack_float(&pk, 24.5f);
    pack_str(&pk, "prompt"), pack_str(&pk, "a red fox in snow");
    pack_str(&pk, "seed"), msgpack_pack_uint64(&pk, 1ull << 40);
    pack_str(&pk, "offset"), msgpack_pack_int8(&pk, -3);
    pack_str(&pk, "x_unknown_flag"), msgpack_pack_false(&pk);
    pack_str(&pk, "x_empty"), msgpack_pack_array(&pk, 0);
    pack_str(&pk, "x_list"), msgpack_pack_array(&pk, 4);
    msgpack_pack_int(&pk, 7), msgpack_pack_double(&pk, -0.25), pack_str(&pk, "s"),
        msgpack_pack_true(&pk);
    pack_str(&pk, "data"), msgpack_pack_bin(&pk, 2), msgpack_pack_bin_body(&pk, "\x01\x02", 2);
    pack_str(&pk, "shape"), msgpack_pack_array(&pk, 1), msgpack_pack_int(&pk, 2);
    pack_str(&pk, "dtype"), pack_str(&pk, "u8");
    pack_str(&pk, "name"), pack_str(&pk, "mask");
    pack_str(&pk, "osp"), msgpack_pack_int(&pk, 1);

    osp_stream_reader *r = osp_stream_reader_from_memory(sb.data, sb.size, "in");
    osp_named_tensor first;
    bool got;
    CHECK(osp_stream_read(r, &first, &got) == OSP_OK && got);
    osp_stream_close_read(r);
    msgpack_sbuffer_destroy(&sb);
    CHECK(first.meta.n == 7);
    CHECK(strcmp(first.meta.keys[0], "fps") == 0 && strcmp(first.meta.keys[6], "x_list") == 0);
    const osp_meta_value *v = osp_meta_get(&first.meta, "fps");
    CHECK(v && v->kind == OSP_META_FLOAT && v->f == 24.5);
    v = osp_meta_get(&first.meta, "seed");
    CHECK(v && v->kind == OSP_META_INT && v->i == 1ll << 40);
    v = osp_meta_get(&first.meta, "x_list");
    CHECK(v && v->kind == OSP_META_ARRAY && v->array.n == 4 &&
          v->array.items[2].kind == OSP_META_STR && strcmp(v->array.items[2].s, "s") == 0);

    /* Re-written by osp (as a tool passing it on) and read again. */
    osp_meta copy;
    CHECK(osp_meta_copy(&copy, &first.meta) == OSP_OK);
    CHECK(osp_meta_set_int(&copy, "offset", 5) == OSP_OK); /* replaced in place */
    CHECK(osp_meta_set_str(&copy, "added", "yes") == OSP_OK);
    int fd = memfd_create("s", 0);
    osp_stream_writer *w = osp_stream_writer_from_fd(fd, "memfd");
    CHECK(osp_stream_write(w, first.name, first.tensor, &copy) == OSP_OK);
    osp_stream_close_write(w);
    lseek(fd, 0, SEEK_SET);
    r = osp_stream_reader_from_fd(fd, "memfd");
    osp_named_tensor back;
    CHECK(osp_stream_read(r, &back, &got) == OSP_OK && got);
    osp_stream_close_read(r);
    close(fd);
    CHECK(back.meta.n == 8);
    for (size_t i = 0; i < copy.n && i < back.meta.n; i++) {
        CHECK(strcmp(copy.keys[i], back.meta.keys[i]) == 0);
        CHECK(same_value(&copy.values[i], &back.meta.values[i]));
    }
    CHECK(strcmp(back.meta.keys[3], "offset") == 0 && back.meta.values[3].i == 5);
    CHECK(same_bytes(back.tensor, first.tensor));
    osp_meta_free(&copy);
    osp_named_tensor_free(&first);
    osp_named_tensor_free(&back);
}

TEST(meta_rejects_values_outside_the_format)
{
    osp_meta m;
    osp_meta_init(&m);
    osp_meta_value inner = {.kind = OSP_META_INT, .i = 1};
    osp_meta_value arr = {.kind = OSP_META_ARRAY, .array = {&inner, 1}};
    osp_meta_value nested = {.kind = OSP_META_ARRAY, .array = {&arr, 1}};
    CHECK(osp_meta_set(&m, "ok", &arr) == OSP_OK);
    CHECK(osp_meta_set(&m, "nested", &nested) != OSP_OK);
    CHECK(osp_meta_set(&m, "", &inner) != OSP_OK);
    CHECK(osp_meta_set_str(&m, "s", NULL) != OSP_OK);
    CHECK(m.n == 1);
    osp_meta_free(&m);
}

/* ---------------- pipes ---------------- */

typedef struct pipe_job {
    int fd;
    int n;
    osp_tensor **tensors;
    bool stop_halfway; /* write the last tensor only in part */
} pipe_job;

static void *pipe_writer(void *arg)
{
    pipe_job *job = arg;
    osp_stream_writer *w = osp_stream_writer_from_fd(job->fd, "pipe");
    for (int i = 0; i < job->n; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        osp_stream_write(w, name, job->tensors[i], NULL);
    }
    osp_stream_close_write(w);
    if (job->stop_halfway) {
        /* a writer dying in the middle of a message */
        static const uint8_t half[] = {0x85, 0xa3, 'o', 's', 'p', 0x01, 0xa4, 'n', 'a'};
        write(job->fd, half, sizeof half);
    }
    close(job->fd);
    return NULL;
}

static int read_pipe(bool stop_halfway, osp_status *st)
{
    int64_t small[2] = {2, 3}, big[2] = {512, 640}; /* 1.25 MB: many pipe buffers */
    osp_tensor *ts[3] = {test_random(2, small, -1, 1), test_random(2, big, -1, 1),
                         random_tensor(OSP_I64, 0, NULL)};
    int fds[2];
    CHECK(pipe(fds) == 0);
    pipe_job job = {fds[1], 3, ts, stop_halfway};
    pthread_t th;
    pthread_create(&th, NULL, pipe_writer, &job);
    osp_stream_reader *r = osp_stream_reader_from_fd(fds[0], "pipe");
    int count = 0;
    for (;;) {
        osp_named_tensor nt;
        bool got;
        *st = osp_stream_read(r, &nt, &got);
        if (*st != OSP_OK || !got)
            break;
        CHECK(same_bytes(nt.tensor, ts[count]));
        count++;
        osp_named_tensor_free(&nt);
    }
    osp_stream_close_read(r);
    pthread_join(th, NULL);
    close(fds[0]);
    return count;
}

TEST(stream_over_a_pipe)
{
    osp_status st;
    CHECK(read_pipe(false, &st) == 3 && st == OSP_OK);
}

TEST(pipe_closed_mid_message_is_truncation)
{
    osp_status st;
    CHECK(read_pipe(true, &st) == 3);
    CHECK(st == OSP_ERR_DATA && strstr(osp_error_message(), "pipe: tensor #3: truncated"));
}

/* ---------------- malformed input ---------------- */

static void write_two(osp_stream_writer *w)
{
    int64_t s1[3] = {2, 1, 3}, s2[1] = {5};
    osp_meta m;
    osp_meta_init(&m);
    osp_meta_set_float(&m, "fps", 8);
    osp_stream_write(w, "video", random_tensor(OSP_F32, 3, s1), &m);
    osp_stream_write(w, "tokens", random_tensor(OSP_I64, 1, s2), NULL);
    osp_meta_free(&m);
}

TEST(every_prefix_is_eof_or_a_clear_error)
{
    size_t size;
    uint8_t *buf = capture(write_two, &size);
    /* where the first message ends: the one prefix besides 0 and size that
     * is a clean end of stream */
    size_t first_end = 0;
    for (size_t n = 1; n < size && !first_end; n++) {
        osp_status st;
        if (read_all(buf, n, &st) == 1 && st == OSP_OK)
            first_end = n;
    }
    CHECK(first_end > 0);
    for (size_t n = 0; n <= size; n++) {
        osp_status st;
        int count = read_all(buf, n, &st);
        bool boundary = n == 0 || n == first_end || n == size;
        CHECK(count == (n < first_end ? 0 : n < size ? 1 : 2));
        if (boundary) {
            CHECK(st == OSP_OK);
        } else {
            CHECK(st == OSP_ERR_DATA);
            CHECK(strstr(osp_error_message(), "truncated message") != NULL);
        }
    }
    free(buf);
}

/* A message built key by key, to be broken on purpose. */
typedef struct msg {
    long long version;
    const char *name, *dtype;
    int ndim;
    int64_t shape[10];
    long long data_len; /* -1: what shape and dtype need */
    const char *omit;   /* a key left out */
    const char *extra;  /* an unknown key added */
} msg;

static msg good(void)
{
    return (msg){.version = 1, .name = "latent", .dtype = "f32", .ndim = 2, .shape = {2, 3},
                 .data_len = -1};
}

static void pack_msg(msgpack_packer *pk, const msg *m)
{
    int keys = 5 - (m->omit != NULL) + (m->extra != NULL);
    msgpack_pack_map(pk, (size_t)keys);
    if (!m->omit || strcmp(m->omit, "osp"))
        pack_str(pk, "osp"), msgpack_pack_int64(pk, m->version);
    if (!m->omit || strcmp(m->omit, "name"))
        pack_str(pk, "name"), pack_str(pk, m->name);
    if (!m->omit || strcmp(m->omit, "dtype"))
        pack_str(pk, "dtype"), pack_str(pk, m->dtype);
    if (!m->omit || strcmp(m->omit, "shape")) {
        pack_str(pk, "shape");
        msgpack_pack_array(pk, (size_t)m->ndim);
        for (int i = 0; i < m->ndim; i++)
            msgpack_pack_int64(pk, m->shape[i]);
    }
    if (m->extra)
        pack_str(pk, m->extra), msgpack_pack_int(pk, 0);
    if (!m->omit || strcmp(m->omit, "data")) {
        long long n = m->data_len;
        if (n < 0) {
            n = 4;
            for (int i = 0; i < m->ndim; i++)
                n *= m->shape[i];
        }
        uint8_t *bytes = malloc((size_t)n + 1);
        memset(bytes, 0x5a, (size_t)n);
        pack_str(pk, "data"), msgpack_pack_bin(pk, (size_t)n);
        msgpack_pack_bin_body(pk, bytes, (size_t)n);
        free(bytes);
    }
}

/* A valid message followed by `bad`: the error must name tensor #1. */
#define CHECK_BAD_MSG(m, text)                                      \
    do {                                                            \
        msgpack_sbuffer sb_;                                        \
        msgpack_packer pk_;                                         \
        msgpack_sbuffer_init(&sb_);                                 \
        msgpack_packer_init(&pk_, &sb_, msgpack_sbuffer_write);     \
        msg ok_ = good();                                           \
        pack_msg(&pk_, &ok_);                                       \
        pack_msg(&pk_, &(m));                                       \
        CHECK_DATA_ERROR(sb_.data, sb_.size, 1, text);              \
        CHECK(strstr(osp_error_message(), "tensor #1") != NULL);    \
        msgpack_sbuffer_destroy(&sb_);                              \
    } while (0)

TEST(wrong_byte_counts)
{
    msg m = good();
    m.data_len = 23;
    CHECK_BAD_MSG(m, "data holds 23 bytes but shape [2, 3] of f32 needs 24");
    m.data_len = 25;
    CHECK_BAD_MSG(m, "data holds 25 bytes but shape [2, 3] of f32 needs 24");
    m = good();
    m.dtype = "f64"; /* same bytes, wrong dtype for them */
    m.data_len = 24;
    CHECK_BAD_MSG(m, "needs 48");
}

TEST(shapes_that_overflow_or_are_invalid)
{
    msg m = good();
    m.ndim = 3;
    m.shape[0] = 1ll << 40, m.shape[1] = 1ll << 40, m.shape[2] = 1ll << 40;
    m.data_len = 0;
    CHECK_BAD_MSG(m, "overflows 64 bits");
    m.ndim = 2;
    m.shape[0] = 1ll << 62, m.shape[1] = 1; /* numel fits, bytes do not */
    CHECK_BAD_MSG(m, "overflows 64 bits");
    m = good();
    m.shape[1] = -3;
    m.data_len = 0;
    CHECK_BAD_MSG(m, "shape dimension 1 is negative (-3)");
    m = good();
    m.ndim = 9;
    for (int i = 0; i < 9; i++)
        m.shape[i] = 1;
    CHECK_BAD_MSG(m, "rank 9");
}

TEST(unknown_dtype_version_and_keys)
{
    msg m = good();
    m.dtype = "f8";
    CHECK_BAD_MSG(m, "unknown dtype 'f8'");
    m.dtype = "F32"; /* the safetensors spelling is not a stream dtype */
    CHECK_BAD_MSG(m, "unknown dtype 'F32'");
    m = good();
    m.version = 2;
    CHECK_BAD_MSG(m, "unsupported stream version 2");
    m.version = -1;
    CHECK_BAD_MSG(m, "unsupported stream version -1");
    static const char *const keys[] = {"osp", "name", "dtype", "shape", "data"};
    for (int k = 0; k < 5; k++) {
        m = good();
        m.omit = keys[k];
        char text[64];
        snprintf(text, sizeof text, "missing key '%s'", keys[k]);
        CHECK_BAD_MSG(m, text);
    }
    m = good();
    m.extra = "scale";
    CHECK_BAD_MSG(m, "unknown key 'scale'");
    m.extra = "name";
    CHECK_BAD_MSG(m, "key 'name' appears twice");
    m = good();
    m.name = "";
    CHECK_BAD_MSG(m, "name must be a non-empty string");
}

TEST(error_names_the_tensor)
{
    msg m = good();
    m.name = "embedding";
    m.data_len = 3;
    CHECK_BAD_MSG(m, "test.msgpack: tensor #1 ('embedding'): data holds 3 bytes");
}

TEST(garbage_bytes)
{
    const char *text = "hello, world";
    CHECK_DATA_ERROR(text, strlen(text), 0, "not an osp tensor message");
    static const uint8_t array_top[] = {0x92, 0x01, 0x02};
    CHECK_DATA_ERROR(array_top, sizeof array_top, 0, "expected a msgpack map");
    static const uint8_t reserved[] = {0x81, 0xc1};
    CHECK_DATA_ERROR(reserved, sizeof reserved, 0, "invalid msgpack byte 0xc1");
    static const uint8_t ext[] = {0x81, 0xa1, 'x', 0xd4, 0x01, 0x00};
    CHECK_DATA_ERROR(ext, sizeof ext, 0, "ext type");
    static const uint8_t int_key[] = {0x81, 0x01, 0x02};
    CHECK_DATA_ERROR(int_key, sizeof int_key, 0, "keys must be strings");

    /* garbage after a good message: the good one is delivered first */
    size_t size;
    uint8_t *buf = capture(write_two, &size);
    buf = realloc(buf, size + 3);
    memcpy(buf + size, "\x07\x08\x09", 3);
    CHECK_DATA_ERROR(buf, size + 3, 2, "tensor #2: not an osp tensor message");
    buf[size] = 0x85; /* the start of a map, then nothing */
    CHECK_DATA_ERROR(buf, size + 1, 2, "tensor #2: truncated message");
    free(buf);
}

static void pack_head(msgpack_packer *pk, int keys)
{
    msgpack_pack_map(pk, (size_t)keys);
    pack_str(pk, "osp"), msgpack_pack_int(pk, 1);
    pack_str(pk, "name"), pack_str(pk, "x");
}

TEST(hostile_sizes_are_refused_from_the_header)
{
    /* shape and dtype first, then a bin32 header claiming 4 GiB and no
     * bytes: refused at the header, not waited for. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_head(&pk, 5);
    pack_str(&pk, "dtype"), pack_str(&pk, "f32");
    pack_str(&pk, "shape"), msgpack_pack_array(&pk, 1), msgpack_pack_int(&pk, 2);
    pack_str(&pk, "data");
    msgpack_sbuffer_write(&sb, "\xc6\xff\xff\xff\xff", 5);
    CHECK_DATA_ERROR(sb.data, sb.size, 0,
                     "data holds 4294967295 bytes but shape [2] of f32 needs 8");

    /* data before shape: the claim cannot be checked yet, and nothing is
     * allocated for it; the stream simply ends short */
    msgpack_sbuffer_clear(&sb);
    pack_head(&pk, 5);
    pack_str(&pk, "data");
    msgpack_sbuffer_write(&sb, "\xc6\xff\xff\xff\xff" "abc", 8);
    CHECK_DATA_ERROR(sb.data, sb.size, 0, "truncated message");

    /* containers declaring 2^32 - 1 elements */
    msgpack_sbuffer_clear(&sb);
    pack_head(&pk, 3);
    pack_str(&pk, "meta");
    msgpack_sbuffer_write(&sb, "\xdf\xff\xff\xff\xff", 5);
    CHECK_DATA_ERROR(sb.data, sb.size, 0, "more than 65536 msgpack elements");
    msgpack_sbuffer_clear(&sb);
    pack_head(&pk, 3);
    pack_str(&pk, "shape");
    msgpack_sbuffer_write(&sb, "\xdd\xff\xff\xff\xff", 5);
    CHECK_DATA_ERROR(sb.data, sb.size, 0, "more than 65536 msgpack elements");

    /* a str32 claiming 4 GiB */
    msgpack_sbuffer_clear(&sb);
    pack_head(&pk, 3);
    pack_str(&pk, "dtype");
    msgpack_sbuffer_write(&sb, "\xdb\xff\xff\xff\xff", 5);
    CHECK_DATA_ERROR(sb.data, sb.size, 0, "bytes of strings");
    msgpack_sbuffer_destroy(&sb);
}

TEST(bad_meta)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (int c = 0; c < 5; c++) {
        msgpack_sbuffer_clear(&sb);
        pack_head(&pk, 6);
        pack_str(&pk, "dtype"), pack_str(&pk, "u8");
        pack_str(&pk, "shape"), msgpack_pack_array(&pk, 0);
        pack_str(&pk, "data"), msgpack_pack_bin(&pk, 1), msgpack_pack_bin_body(&pk, "z", 1);
        pack_str(&pk, "meta");
        const char *want = NULL;
        switch (c) {
        case 0:
            msgpack_pack_map(&pk, 1), pack_str(&pk, "k"), msgpack_pack_nil(&pk);
            want = "meta 'k': found nil; values are str, int, float, bool or arrays";
            break;
        case 1:
            msgpack_pack_map(&pk, 1), pack_str(&pk, "k"), msgpack_pack_map(&pk, 0);
            want = "meta 'k': found a map;";
            break;
        case 2:
            msgpack_pack_map(&pk, 1), pack_str(&pk, "k"), msgpack_pack_array(&pk, 1);
            msgpack_pack_array(&pk, 1), msgpack_pack_int(&pk, 1);
            want = "nested deeper than 3 levels";
            break;
        case 3:
            msgpack_pack_map(&pk, 2), pack_str(&pk, "k"), msgpack_pack_int(&pk, 1);
            pack_str(&pk, "k"), msgpack_pack_int(&pk, 2);
            want = "meta key 'k' appears twice";
            break;
        default:
            msgpack_pack_array(&pk, 0);
            want = "meta must be a map";
            break;
        }
        CHECK_DATA_ERROR(sb.data, sb.size, 0, want);
    }
    msgpack_sbuffer_destroy(&sb);
}

TEST(reader_stays_failed_and_eof_repeats)
{
    size_t size;
    uint8_t *buf = capture(write_two, &size);
    osp_stream_reader *r = osp_stream_reader_from_memory(buf, size, "m");
    osp_named_tensor nt;
    bool got;
    for (int i = 0; i < 4; i++) {
        CHECK(osp_stream_read(r, &nt, &got) == OSP_OK);
        CHECK(got == (i < 2));
        osp_named_tensor_free(&nt);
    }
    osp_stream_close_read(r);
    r = osp_stream_reader_from_memory(buf, size - 1, "m");
    CHECK(osp_stream_read(r, &nt, &got) == OSP_OK && got);
    osp_named_tensor_free(&nt);
    CHECK(osp_stream_read(r, &nt, &got) == OSP_ERR_DATA && !got && nt.tensor == NULL);
    CHECK(osp_stream_read(r, &nt, &got) == OSP_ERR_DATA && !got);
    osp_stream_close_read(r);
    free(buf);
}

TEST(open_errors)
{
    CHECK(osp_stream_open_read("/nonexistent/dir/x.msgpack") == NULL);
    CHECK(osp_error_code() == OSP_ERR_IO && strstr(osp_error_message(), "/nonexistent/dir"));
    CHECK(osp_stream_open_write("/nonexistent/dir/x.msgpack") == NULL);
    CHECK(osp_error_code() == OSP_ERR_IO);
    osp_stream_writer *w = osp_stream_writer_from_fd(-1, "closed");
    int64_t shape[1] = {2};
    CHECK(osp_stream_write(w, "", test_random(1, shape, 0, 1), NULL) != OSP_OK);
    CHECK(osp_stream_write(w, "x", test_random(1, shape, 0, 1), NULL) == OSP_ERR_IO);
    CHECK(strstr(osp_error_message(), "closed: write failed") != NULL);
    osp_stream_close_write(w);
}

int main(void)
{
    RUN(every_dtype_and_rank_through_a_file);
    RUN(uncommitted_file_is_removed);
    RUN(special_files_are_written_in_place);
    RUN(symlink_target_is_replaced_not_the_link);
    RUN(strided_tensor_is_written_contiguous);
    RUN(meta_of_every_kind_passes_through);
    RUN(meta_rejects_values_outside_the_format);
    RUN(stream_over_a_pipe);
    RUN(pipe_closed_mid_message_is_truncation);
    RUN(every_prefix_is_eof_or_a_clear_error);
    RUN(wrong_byte_counts);
    RUN(shapes_that_overflow_or_are_invalid);
    RUN(unknown_dtype_version_and_keys);
    RUN(error_names_the_tensor);
    RUN(garbage_bytes);
    RUN(hostile_sizes_are_refused_from_the_header);
    RUN(bad_meta);
    RUN(reader_stays_failed_and_eof_repeats);
    RUN(open_errors);
    return test_summary();
}
