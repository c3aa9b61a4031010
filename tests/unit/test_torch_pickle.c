/* test_torch_pickle.c — PyTorch checkpoints (io/torch_pickle.h): files
 * written by osp_torch_save read back exactly (every dtype, 0-d and empty
 * tensors, more than 1000 entries, ZIP64 records, zero-copy views), a
 * committed archive written by CPython's pickle + zipfile (an OrderedDict
 * state dict with _metadata, unaligned data), one written by the real
 * torch.save (tied storage, Parameter, views), hand-built pickles for
 * strided and shared storages, and hostile or broken inputs: forbidden
 * globals and opcodes, storages and tensors out of bounds, truncated,
 * compressed, corrupt and mislaid zip entries. */
#include "io/torch_pickle.h"
#include "io/zip_stored.h"
#include "test.h"
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building archives by hand ---- */

typedef struct buf {
    uint8_t p[1 << 16];
    size_t n;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_le(buf *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        b->p[b->n++] = (uint8_t)(v >> (8 * i));
}

static void op(buf *b, uint8_t c) { b->p[b->n++] = c; }

static void str(buf *b, const char *s)
{
    op(b, 'X');
    put_le(b, strlen(s), 4);
    put(b, s, strlen(s));
}

static void global(buf *b, const char *module, const char *name)
{
    op(b, 'c');
    put(b, module, strlen(module));
    op(b, '\n');
    put(b, name, strlen(name));
    op(b, '\n');
}

static void int_(buf *b, int64_t v)
{
    op(b, 'J');
    put_le(b, (uint64_t)v, 4);
}

static void int_tuple(buf *b, int n, const int64_t *v)
{
    op(b, '(');
    for (int i = 0; i < n; i++)
        int_(b, v[i]);
    op(b, 't');
}

/* _rebuild_tensor_v2 of storage `key` (type T, numel) at offset, shape,
 * stride. */
static void tensor(buf *b, const char *type, const char *key, int64_t numel, int64_t offset,
                   int ndim, const int64_t *shape, const int64_t *stride)
{
    global(b, "torch._utils", "_rebuild_tensor_v2");
    op(b, '(');
    op(b, '(');
    str(b, "storage");
    global(b, "torch", type);
    str(b, key);
    str(b, "cpu");
    int_(b, numel);
    op(b, 't');
    op(b, 'Q');
    int_(b, offset);
    int_tuple(b, ndim, shape);
    int_tuple(b, ndim, stride);
    op(b, 0x89);
    global(b, "collections", "OrderedDict");
    op(b, ')');
    op(b, 'R');
    op(b, 't');
    op(b, 'R');
}

typedef struct entry {
    const char *name;
    const void *data;
    size_t size;
    uint16_t method;
} entry;

/* A zip of stored entries (method as given, CRCs right). */
static size_t build_zip(uint8_t *out, int n, const entry *e)
{
    buf *z = calloc(1, sizeof *z);
    size_t offsets[16];
    for (int i = 0; i < n; i++) {
        offsets[i] = z->n;
        put_le(z, 0x04034b50, 4);
        put_le(z, 20, 2);
        put_le(z, 0, 2);
        put_le(z, e[i].method, 2);
        put_le(z, 0, 4);
        put_le(z, osp_crc32(0, e[i].data, e[i].size), 4);
        put_le(z, e[i].size, 4);
        put_le(z, e[i].size, 4);
        put_le(z, strlen(e[i].name), 2);
        put_le(z, 0, 2);
        put(z, e[i].name, strlen(e[i].name));
        put(z, e[i].data, e[i].size);
    }
    size_t cd = z->n;
    for (int i = 0; i < n; i++) {
        put_le(z, 0x02014b50, 4);
        put_le(z, 20, 2);
        put_le(z, 20, 2);
        put_le(z, 0, 2);
        put_le(z, e[i].method, 2);
        put_le(z, 0, 4);
        put_le(z, osp_crc32(0, e[i].data, e[i].size), 4);
        put_le(z, e[i].size, 4);
        put_le(z, e[i].size, 4);
        put_le(z, strlen(e[i].name), 2);
        put_le(z, 0, 2);
        put_le(z, 0, 2);
        put_le(z, 0, 2);
        put_le(z, 0, 2);
        put_le(z, 0, 4);
        put_le(z, offsets[i], 4);
        put(z, e[i].name, strlen(e[i].name));
    }
    size_t cd_size = z->n - cd;
    put_le(z, 0x06054b50, 4);
    put_le(z, 0, 4); /* disk numbers */
    put_le(z, (uint64_t)n, 2);
    put_le(z, (uint64_t)n, 2);
    put_le(z, cd_size, 4);
    put_le(z, cd, 4);
    put_le(z, 0, 2);
    size_t size = z->n;
    memcpy(out, z->p, size);
    free(z);
    return size;
}

static float storage0[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* An archive with data.pkl = pkl and storage "0" = storage0 (64 bytes). */
static size_t archive(uint8_t *out, const buf *pkl)
{
    entry e[2] = {{"a/data.pkl", pkl->p, pkl->n, 0}, {"a/data/0", storage0, sizeof storage0, 0}};
    return build_zip(out, 2, e);
}

static uint8_t zip_buf[1 << 17];

/* Opening pkl (wrapped in an archive) fails with a message holding `want`. */
static void expect_pickle_error(const buf *pkl, const char *want)
{
    size_t n = archive(zip_buf, pkl);
    osp_torch_file *f = osp_torch_open_memory(zip_buf, n, "hostile");
    CHECK(f == NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA);
    if (!strstr(osp_error_message(), want)) {
        printf("#   expected '%s' in: %s\n", want, osp_error_message());
        CHECK(false);
    }
    osp_torch_close(f);
}

/* {"w": tensor(...)} */
static void one_tensor(buf *b, const char *type, int64_t numel, int64_t offset, int ndim,
                       const int64_t *shape, const int64_t *stride)
{
    b->n = 0;
    op(b, 0x80);
    op(b, 2);
    op(b, '}');
    str(b, "w");
    tensor(b, type, "0", numel, offset, ndim, shape, stride);
    op(b, 's');
    op(b, '.');
}

/* ---- round trips through osp_torch_save ---- */

static void check_round_trip(unsigned flags)
{
    char *dir = test_tmpdir();
    const int n = 1003; /* more than one SETITEMS batch, memo beyond 256 */
    const char **names = calloc(n, sizeof *names);
    osp_tensor **ts = calloc(n, sizeof *ts);
    static const osp_dtype dts[] = {OSP_F32, OSP_BF16, OSP_F16, OSP_F64, OSP_I64, OSP_I32, OSP_U8};
    for (int i = 0; i < n; i++) {
        char *name = malloc(32);
        snprintf(name, 32, "block.%d.weight", i);
        names[i] = name;
        int64_t shape[4] = {1 + i % 3, 2, 1 + i % 2, 3};
        int nd = i % 5 == 4 ? 0 : 1 + i % 4; /* some 0-d */
        if (i == 7)
            shape[0] = 0; /* an empty tensor */
        osp_tensor *f = test_random(nd, shape, -100, 100);
        ts[i] = osp_tensor_to_dtype(f, dts[i % 7]);
    }
    const char *path = test_path(dir, "pytorch_model.bin");
    CHECK(osp_torch_save(path, n, names, ts, flags) == OSP_OK);
    CHECK(osp_torch_is_archive(path));
    osp_torch_file *f = osp_torch_open(path);
    CHECK(f != NULL);
    if (f) {
        CHECK(osp_torch_count(f) == (size_t)n);
        int bad = 0;
        for (int i = 0; i < n; i++) {
            const osp_st_entry *e = osp_torch_entry(f, i);
            osp_tensor *t = osp_torch_get(f, names[i]);
            bad += !e || strcmp(e->name, names[i]) != 0 || !t || t->dtype != ts[i]->dtype ||
                   !osp_same_shape(t, ts[i]) ||
                   memcmp(osp_data(t), osp_data(ts[i]), osp_nbytes(t)) != 0;
            /* zero-copy: the data lies in the mapped file, 64-byte aligned */
            bad += t && osp_numel(t) && (uintptr_t)osp_data(t) % 64 != 0;
        }
        CHECK(bad == 0);
        CHECK(!osp_torch_get(f, "no.such.tensor"));
    }
    osp_torch_close(f);
    for (int i = 0; i < n; i++)
        free((char *)names[i]);
    free(names);
    free(ts);
    test_rmtree(dir);
    free(dir);
}

TEST(round_trip_every_dtype) { check_round_trip(0); }
TEST(round_trip_zip64_records) { check_round_trip(OSP_TORCH_SAVE_ZIP64); }

/* Tensors outlive their file handle (the mapping is reference counted). */
TEST(tensor_outlives_handle)
{
    char *dir = test_tmpdir();
    const int64_t shape[2] = {3, 5};
    osp_tensor *x = test_random(2, shape, -1, 1);
    const char *name = "x";
    CHECK(osp_torch_save(test_path(dir, "x.bin"), 1, &name, &x, 0) == OSP_OK);
    osp_torch_file *f = osp_torch_open(test_path(dir, "x.bin"));
    osp_tensor *t = f ? osp_torch_get(f, "x") : NULL;
    osp_torch_close(f);
    CHECK(t && memcmp(osp_data(t), osp_data(x), osp_nbytes(x)) == 0);
    test_rmtree(dir);
    free(dir);
}

/* Written by CPython (pickle protocol 2 with torch's classes stubbed,
 * zipfile without alignment): OrderedDict + _metadata BUILD, unaligned
 * storages, archive folder "archive/". */
TEST(cpython_written_archive)
{
    osp_torch_file *f = osp_torch_open("tests/data/torch/ordered_dict_metadata.bin");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(osp_torch_count(f) == 3);
    const osp_st_entry *e = osp_torch_find(f, "layer.2.weight");
    CHECK(e && e->dtype == OSP_F16 && e->ndim == 4 && e->shape[3] == 2);
    /* storage i holds bytes (7 j + i) mod 256, j = 0, 1, ... */
    osp_tensor *t = osp_torch_get(f, "layer.0.weight");
    CHECK(t && t->dtype == OSP_F32 && osp_numel(t) == 6);
    int bad = 0;
    for (int j = 0; t && j < 24; j++)
        bad += ((uint8_t *)osp_data(t))[j] != (uint8_t)(7 * j);
    CHECK(bad == 0);
    osp_torch_close(f);
}

/* Written by the real torch.save (tests/data/torch/make_torch_saved.py):
 * a module's state_dict with a tied embedding (one storage, two keys), a
 * Parameter, bf16/f16/f64/i64 storages, a transposed view and a view at an
 * offset. Element k of a ramp is (k - 3) / 4 + base. */
static bool ramp_equals(osp_tensor *t, int64_t n, double base)
{
    osp_tensor *f = t ? osp_tensor_to_dtype(t, OSP_F64) : NULL;
    if (!f || osp_numel(f) != n)
        return false;
    for (int64_t k = 0; k < n; k++)
        if (((const double *)osp_data(f))[k] != (double)(k - 3) * 0.25 + base)
            return false;
    return true;
}

TEST(torch_saved_archive)
{
    osp_torch_file *f = osp_torch_open("tests/data/torch/torch_saved.bin");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(osp_torch_count(f) == 9);
    static const char *const tied[2] = {"shared.weight", "encoder.embed_tokens.weight"};
    for (int i = 0; i < 2; i++) {
        osp_tensor *e = osp_torch_get(f, tied[i]);
        CHECK(e && e->dtype == OSP_F32 && e->ndim == 2 && e->shape[0] == 6 && e->shape[1] == 4);
        CHECK(ramp_equals(e, 24, 0));
    }
    const osp_st_entry *e0 = osp_torch_find(f, tied[0]), *e1 = osp_torch_find(f, tied[1]);
    CHECK(e0 && e1 && e0->offset == e1->offset); /* one storage, not two copies */
    osp_tensor *wi = osp_torch_get(f, "block.wi.weight"), *wo = osp_torch_get(f, "block.wo.weight");
    CHECK(wi && wi->dtype == OSP_BF16 && wi->shape[0] == 3 && ramp_equals(wi, 12, 1));
    CHECK(wo && wo->dtype == OSP_F16 && wo->shape[0] == 4 && ramp_equals(wo, 12, 2));
    CHECK(ramp_equals(osp_torch_get(f, "block.scale"), 4, 3)); /* _rebuild_parameter */
    osp_tensor *t = osp_torch_get(f, "transposed"), *w = osp_torch_get(f, "window");
    CHECK(t && t->shape[0] == 3 && t->shape[1] == 2 && w && w->shape[0] == 3);
    static const float t_want[6] = {0, 3, 1, 4, 2, 5}, w_want[3] = {4, 5, 6};
    CHECK(t && memcmp(osp_data(t), t_want, sizeof t_want) == 0);
    CHECK(w && memcmp(osp_data(w), w_want, sizeof w_want) == 0);
    osp_tensor *steps = osp_torch_get(f, "steps"), *scalar = osp_torch_get(f, "scalar");
    static const int64_t steps_want[5] = {-2, 0, 2, 4, (int64_t)1 << 40};
    CHECK(steps && steps->dtype == OSP_I64 && memcmp(osp_data(steps), steps_want,
                                                     sizeof steps_want) == 0);
    CHECK(scalar && scalar->dtype == OSP_F64 && scalar->ndim == 0 &&
          *(const double *)osp_data(scalar) == 2.5);
    osp_torch_close(f);
}

/* ---- hand-built pickles: views and shared storages ---- */

TEST(strided_and_shared_storages)
{
    buf *b = calloc(1, sizeof *b);
    const int64_t shape_t[2] = {4, 2}, stride_t[2] = {1, 4}; /* a transposed [2, 4] */
    const int64_t shape_v[1] = {3}, stride_v[1] = {1};
    op(b, 0x80);
    op(b, 2);
    op(b, '}');
    op(b, '(');
    str(b, "t");
    tensor(b, "FloatStorage", "0", 16, 0, 2, shape_t, stride_t);
    str(b, "v");
    tensor(b, "FloatStorage", "0", 16, 13, 1, shape_v, stride_v); /* same storage */
    op(b, 'u');
    op(b, '.');
    size_t n = archive(zip_buf, b);
    osp_torch_file *f = osp_torch_open_memory(zip_buf, n, "views");
    CHECK(f != NULL);
    osp_tensor *t = f ? osp_torch_get(f, "t") : NULL, *v = f ? osp_torch_get(f, "v") : NULL;
    CHECK(t && v && osp_is_contiguous(t));
    if (t && v) {
        const float *pt = osp_f32(t), *pv = osp_f32(v);
        CHECK(pt[0] == 0 && pt[1] == 4 && pt[2] == 1 && pt[7] == 7);
        CHECK(pv[0] == 13 && pv[2] == 15);
    }
    osp_torch_close(f);
    free(b);
}

/* ---- hostile pickles ---- */

TEST(forbidden_globals_and_opcodes)
{
    buf *b = calloc(1, sizeof *b);
    /* os.system("ls"): the classic */
    op(b, 0x80), op(b, 2), global(b, "os", "system"), str(b, "ls"), op(b, 0x85), op(b, 'R'),
        op(b, '.');
    expect_pickle_error(b, "forbidden global 'os.system'");
    /* builtins.eval through STACK_GLOBAL (protocol 4) */
    b->n = 0;
    const uint8_t sg[] = {0x80, 4, 0x8c, 8, 'b', 'u', 'i', 'l', 't', 'i', 'n', 's', 0x8c, 4,
                          'e', 'v', 'a', 'l', 0x93};
    put(b, sg, sizeof sg);
    expect_pickle_error(b, "forbidden global 'builtins.eval'");
    /* calling a storage type */
    b->n = 0;
    op(b, 0x80), op(b, 2), global(b, "torch", "FloatStorage"), op(b, ')'), op(b, 'R'), op(b, '.');
    expect_pickle_error(b, "only OrderedDict and the torch rebuild functions");
    /* opcodes a state dict never uses */
    const struct { uint8_t code; const char *name; } ops[] = {
        {'i', "INST"}, {'o', "OBJ"}, {0x81, "NEWOBJ"}, {']', "EMPTY_LIST"}, {'P', "PERSID"},
        {0x82, "EXT1"}, {'G', "BINFLOAT"}, {'0', "POP"}, {0xff, "unknown opcode"}};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        b->n = 0;
        op(b, 0x80), op(b, 2), op(b, ops[i].code), op(b, '.');
        char want[64];
        snprintf(want, sizeof want, "(%s): opcode not allowed", ops[i].name);
        expect_pickle_error(b, want);
    }
    /* BUILD on something that is not a dict */
    b->n = 0;
    op(b, 0x80), op(b, 2), str(b, "x"), op(b, '}'), op(b, 'b'), op(b, '.');
    expect_pickle_error(b, "BUILD is allowed only");
    free(b);
}

TEST(tensors_outside_their_storage)
{
    buf *b = calloc(1, sizeof *b);
    const int64_t s4[1] = {4}, one[1] = {1}, s17[1] = {17}, big[1] = {9};
    const int64_t sh2[2] = {4, 4}, st2[2] = {5, 1};
    one_tensor(b, "FloatStorage", 16, 0, 1, s17, one);
    expect_pickle_error(b, "reach past its storage");
    one_tensor(b, "FloatStorage", 16, 13, 1, s4, one);
    expect_pickle_error(b, "reach past its storage");
    one_tensor(b, "FloatStorage", 16, 0, 1, s4, big); /* stride 9: 0, 9, 18, 27 */
    expect_pickle_error(b, "reach past its storage");
    one_tensor(b, "FloatStorage", 16, 0, 2, sh2, st2);
    expect_pickle_error(b, "reach past its storage");
    one_tensor(b, "FloatStorage", 15, 0, 1, s4, one); /* numel disagrees with the entry */
    expect_pickle_error(b, "holds 64 bytes, not 15 x 4");
    one_tensor(b, "DoubleStorage", 16, 0, 1, s4, one);
    expect_pickle_error(b, "not 16 x 8");
    const int64_t neg[1] = {-4};
    one_tensor(b, "FloatStorage", 16, 0, 1, neg, one);
    expect_pickle_error(b, "negative");
    one_tensor(b, "FloatStorage", 16, -1, 1, s4, one);
    expect_pickle_error(b, "arguments are not");
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    one_tensor(b, "FloatStorage", 16, 0, 9, nine, nine);
    expect_pickle_error(b, "at most 8 ints");
    /* a storage key that is not in the archive */
    b->n = 0;
    op(b, 0x80), op(b, 2), op(b, '}'), str(b, "w");
    tensor(b, "FloatStorage", "7", 16, 0, 1, s4, one);
    op(b, 's'), op(b, '.');
    expect_pickle_error(b, "'a/data/7' is not in the archive");
    free(b);
}

TEST(malformed_pickles)
{
    buf *b = calloc(1, sizeof *b);
    op(b, 0x80), op(b, 2), op(b, '}');
    expect_pickle_error(b, "without STOP");
    b->n = 0;
    op(b, 0x80), op(b, 2), op(b, 's'), op(b, '.');
    expect_pickle_error(b, "stack underflow");
    b->n = 0;
    op(b, 0x80), op(b, 2), op(b, 'h'), op(b, 5), op(b, '.');
    expect_pickle_error(b, "memo entry not set");
    b->n = 0;
    op(b, 0x80), op(b, 2), op(b, '}'), op(b, 'r'), put_le(b, 0xfffffff0u, 4), op(b, '.');
    expect_pickle_error(b, "memo index out of range");
    b->n = 0;
    op(b, 0x80), op(b, 2), op(b, 'X'), put_le(b, 1000, 4), op(b, '.');
    expect_pickle_error(b, "truncated pickle");
    b->n = 0;
    op(b, 0x80), op(b, 2), op(b, '}'), op(b, '}'), op(b, '.');
    expect_pickle_error(b, "exactly one value");
    b->n = 0;
    op(b, 0x80), op(b, 2), str(b, "x"), op(b, '.');
    expect_pickle_error(b, "does not hold a dict of tensors");
    b->n = 0;
    op(b, 0x80), op(b, 2), op(b, '}'), str(b, "k"), op(b, 'N'), op(b, 's'), op(b, '.');
    expect_pickle_error(b, "entry 'k' is not a tensor");
    b->n = 0;
    op(b, 0x80), op(b, 9), op(b, '.');
    expect_pickle_error(b, "unsupported pickle protocol");
    b->n = 0;
    op(b, 0x80), op(b, 2), op(b, 0x8a), op(b, 9), put_le(b, 0, 8), op(b, 0), op(b, '.');
    expect_pickle_error(b, "wider than 64 bits");
    free(b);
}

/* ---- broken archives ---- */

static void expect_archive_error(const uint8_t *data, size_t n, const char *want)
{
    osp_torch_file *f = osp_torch_open_memory(data, n, "broken");
    CHECK(f == NULL && osp_error_code() == OSP_ERR_DATA);
    if (!strstr(osp_error_message(), want)) {
        printf("#   expected '%s' in: %s\n", want, osp_error_message());
        CHECK(false);
    }
    osp_torch_close(f);
}

TEST(broken_archives)
{
    buf *b = calloc(1, sizeof *b);
    const int64_t s4[1] = {4}, one[1] = {1};
    one_tensor(b, "FloatStorage", 16, 0, 1, s4, one);
    size_t n = archive(zip_buf, b);
    osp_torch_file *f = osp_torch_open_memory(zip_buf, n, "good");
    CHECK(f != NULL); /* the base case is fine */
    osp_torch_close(f);
    static uint8_t copy[1 << 17];
    /* truncated: the end record is gone, or the directory cut */
    expect_archive_error(zip_buf, n - 10, "no end of central directory");
    expect_archive_error(zip_buf, 10, "too short");
    memcpy(copy, zip_buf, n);
    memmove(copy + 40, copy + 80, n - 80); /* a hole in the middle */
    expect_archive_error(copy, n - 40, "not a valid zip archive");
    /* the central directory offset beyond the file */
    memcpy(copy, zip_buf, n);
    copy[n - 6] = 0xff, copy[n - 5] = 0xff;
    expect_archive_error(copy, n, "central directory outside the file");
    /* a local header offset pointing elsewhere */
    memcpy(copy, zip_buf, n);
    uint32_t cd = (uint32_t)(copy[n - 6] | copy[n - 5] << 8 | copy[n - 4] << 16);
    copy[cd + 42] = 3;
    expect_archive_error(copy, n, "local header out of place");
    /* a flipped byte inside data.pkl fails the CRC */
    memcpy(copy, zip_buf, n);
    copy[30 + strlen("a/data.pkl") + 5] ^= 0x20;
    expect_archive_error(copy, n, "CRC-32");
    /* compressed entries */
    entry e[2] = {{"a/data.pkl", b->p, b->n, 8}, {"a/data/0", storage0, sizeof storage0, 0}};
    n = build_zip(copy, 2, e);
    expect_archive_error(copy, n, "is compressed (method 8)");
    /* the same name twice */
    entry dup[3] = {{"a/data.pkl", b->p, b->n, 0}, {"a/data/0", storage0, 64, 0},
                    {"a/data/0", storage0, 64, 0}};
    n = build_zip(copy, 3, dup);
    expect_archive_error(copy, n, "appears twice");
    /* no data.pkl; big-endian; not a zip at all */
    entry none[1] = {{"a/data/0", storage0, 64, 0}};
    n = build_zip(copy, 1, none);
    expect_archive_error(copy, n, "no a/data.pkl");
    entry be[3] = {{"a/data.pkl", b->p, b->n, 0}, {"a/byteorder", "big", 3, 0},
                   {"a/data/0", storage0, 64, 0}};
    n = build_zip(copy, 3, be);
    expect_archive_error(copy, n, "big-endian");
    expect_archive_error((const uint8_t *)"PK\3\4 this is not a zip archive at all.", 38,
                         "not a valid zip archive");
    free(b);
}

TEST(files_that_are_not_archives)
{
    char *dir = test_tmpdir();
    FILE *fp = fopen(test_path(dir, "empty.bin"), "wb");
    fclose(fp);
    CHECK(!osp_torch_is_archive(test_path(dir, "empty.bin")));
    CHECK(!osp_torch_open(test_path(dir, "empty.bin")) && osp_error_code() == OSP_ERR_DATA);
    CHECK(!osp_torch_open(test_path(dir, "missing.bin")) && osp_error_code() == OSP_ERR_IO);
    CHECK(!osp_torch_is_archive(test_path(dir, "missing.bin")));
    test_rmtree(dir);
    free(dir);
}

int main(void)
{
    RUN(round_trip_every_dtype);
    RUN(round_trip_zip64_records);
    RUN(tensor_outlives_handle);
    RUN(cpython_written_archive);
    RUN(torch_saved_archive);
    RUN(strided_and_shared_storages);
    RUN(forbidden_globals_and_opcodes);
    RUN(tensors_outside_their_storage);
    RUN(malformed_pickles);
    RUN(broken_archives);
    RUN(files_that_are_not_archives);
    return test_summary();
}
