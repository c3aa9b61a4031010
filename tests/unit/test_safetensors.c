/* test_safetensors.c — safetensors reader and writer: round trips of every
 * dtype and rank, lifetime of mapped tensors, the malformed-header suite,
 * and every safetensors file under the shared fixtures. */
#include "test.h"
#include "tmpdir.h"

#include "io/safetensors.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;

static osp_tensor *random_tensor(osp_dtype dt, int ndim, const int64_t *shape)
{
    osp_tensor *t = osp_tensor_new(dt, ndim, shape, OSP_DEVICE_CPU);
    uint8_t *p = osp_data(t);
    for (size_t i = 0; i < osp_nbytes(t); i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        p[i] = (uint8_t)(rng >> 24) | 1;
    }
    return t;
}

static bool same_bytes(const osp_tensor *a, const osp_tensor *b)
{
    return a && b && a->dtype == b->dtype && osp_same_shape(a, b) &&
           memcmp(osp_data(a), osp_data(b), osp_nbytes(a)) == 0;
}

/* A safetensors image: 8-byte length, the JSON as given, data_len bytes. */
static uint8_t *image(const char *json, size_t data_len, size_t *size)
{
    size_t n = strlen(json);
    *size = 8 + n + data_len;
    uint8_t *b = malloc(*size);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(b + 8, json, n);
    for (size_t i = 0; i < data_len; i++)
        b[8 + n + i] = (uint8_t)(i * 7 + 1);
    return b;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

/* Opens the image from memory and expects failure with `text`. */
static void expect_bad(const char *json, size_t data_len, const char *text)
{
    size_t size;
    uint8_t *b = image(json, data_len, &size);
    osp_safetensors *st = osp_safetensors_open_memory(b, size, "bad.safetensors");
    CHECK(st == NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA);
    CHECK(strstr(osp_error_message(), "bad.safetensors: ") == osp_error_message());
    if (!strstr(osp_error_message(), text)) {
        printf("#   expected '%s'\n", text);
        CHECK(strstr(osp_error_message(), text) != NULL);
    }
    osp_safetensors_close(st);
    free(b);
}

TEST(every_dtype_and_rank_round_trips)
{
    char *dir = test_tmpdir();
    const char *path = test_path(dir, "all.safetensors");
    enum { N = OSP_DTYPE_COUNT * 9 };
    osp_tensor *ts[N];
    char names[N][32];
    const char *name_ptrs[N];
    for (int dt = 0, k = 0; dt < OSP_DTYPE_COUNT; dt++) {
        for (int rank = 0; rank <= OSP_MAX_DIMS; rank++, k++) {
            int64_t shape[OSP_MAX_DIMS];
            for (int d = 0; d < rank; d++)
                shape[d] = 1 + (d * 5 + dt) % 3;
            ts[k] = random_tensor((osp_dtype)dt, rank, shape);
            snprintf(names[k], sizeof names[k], "block.%d.w%d", dt, rank);
            name_ptrs[k] = names[k];
        }
    }
    const char *meta[] = {"format", "pt", "note", "written by test", NULL};
    CHECK(osp_safetensors_write(path, N, name_ptrs, ts, meta) == OSP_OK);

    osp_safetensors *st = osp_safetensors_open(path);
    CHECK(st != NULL);
    CHECK(osp_safetensors_count(st) == N);
    CHECK(strcmp(osp_safetensors_metadata(st, "note"), "written by test") == 0);
    CHECK(osp_safetensors_metadata(st, "absent") == NULL);
    osp_tensor *kept = NULL;
    size_t prev_item = 8;
    for (int k = 0; k < N; k++) {
        /* written largest element first, so each is aligned and in place */
        const osp_st_entry *e = osp_safetensors_entry(st, k);
        CHECK(osp_dtype_size(e->dtype) <= prev_item);
        prev_item = osp_dtype_size(e->dtype);
        e = osp_safetensors_find(st, names[k]);
        CHECK(e && e->offset % osp_dtype_size(e->dtype) == 0);
        osp_tensor *t = osp_safetensors_get(st, names[k]);
        CHECK(t && t->storage->owner != NULL); /* a view of the mapping, not a copy */
        CHECK(same_bytes(t, ts[k]));
        if (k == N - 3)
            kept = osp_retain(t);
    }
    CHECK(osp_safetensors_get(st, "missing") == NULL);
    CHECK(strstr(osp_error_message(), "no tensor 'missing'") != NULL);
    osp_safetensors_close(st);
    /* the mapping outlives the handle while a tensor uses it */
    CHECK(same_bytes(kept, ts[N - 3]));
    osp_release(kept);
    test_rmtree(dir);
    free(dir);
}

TEST(header_is_padded_to_8_bytes_with_spaces)
{
    char *dir = test_tmpdir();
    const char *path = test_path(dir, "pad.safetensors");
    int64_t shape[1] = {3};
    osp_tensor *t = random_tensor(OSP_F32, 1, shape);
    const char *name = "x";
    CHECK(osp_safetensors_write(path, 1, &name, &t, NULL) == OSP_OK);
    FILE *f = fopen(path, "rb");
    uint8_t buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--)
        len = len << 8 | buf[i];
    CHECK(len % 8 == 0 && n == 8 + len + 12);
    CHECK(buf[8] == '{' && buf[8 + len - 1] == ' ');
    CHECK(memcmp(buf + 8, "{\"x\":{", 6) == 0);
    test_rmtree(dir);
    free(dir);
}

TEST(writer_rejects_bad_arguments)
{
    int64_t shape[1] = {2};
    osp_tensor *ts[2] = {random_tensor(OSP_F32, 1, shape), random_tensor(OSP_F32, 1, shape)};
    const char *dup[2] = {"a", "a"}, *meta_name[1] = {"__metadata__"};
    char *dir = test_tmpdir();
    CHECK(osp_safetensors_write(test_path(dir, "x"), 2, dup, ts, NULL) != OSP_OK);
    CHECK(strstr(osp_error_message(), "given twice") != NULL);
    CHECK(osp_safetensors_write(test_path(dir, "x"), 1, meta_name, ts, NULL) != OSP_OK);
    const char *bad_meta[] = {"key", NULL};
    CHECK(osp_safetensors_write(test_path(dir, "x"), 1, dup, ts, bad_meta) != OSP_OK);
    CHECK(osp_safetensors_write("/nonexistent/dir/x.safetensors", 1, dup, ts, NULL) == OSP_ERR_IO);
    rmdir(dir); /* nothing may have been left behind */
    CHECK(access(dir, F_OK) != 0);
    free(dir);
}

/* fetch for the test below: entry 1 comes from ctx (a tensor), the others
 * stay; k is recorded to check the order. */
typedef struct fetch_log {
    osp_tensor *substitute;
    int calls[4], n;
} fetch_log;

static osp_status substitute_entry_1(void *ctx, int k, osp_tensor **t)
{
    fetch_log *log = ctx;
    log->calls[log->n++ & 3] = k;
    if (k == 1)
        *t = log->substitute;
    return OSP_OK;
}

TEST(writer_takes_fetched_data)
{
    int64_t shape[2] = {3, 5}, other[2] = {5, 3};
    osp_tensor *ts[3] = {random_tensor(OSP_F32, 2, shape), random_tensor(OSP_F32, 2, shape),
                         random_tensor(OSP_F32, 2, shape)};
    const char *names[3] = {"a", "b", "c"};
    fetch_log log = {.substitute = random_tensor(OSP_F32, 2, shape)};
    char *dir = test_tmpdir();
    CHECK(osp_safetensors_write_fetched(test_path(dir, "f.safetensors"), 3, names, ts, NULL,
                                        substitute_entry_1, &log) == OSP_OK);
    CHECK(log.n == 3 && log.calls[0] == 0 && log.calls[1] == 1 && log.calls[2] == 2);
    osp_safetensors *st = osp_safetensors_open(test_path(dir, "f.safetensors"));
    CHECK(st != NULL);
    const osp_tensor *want[3] = {ts[0], log.substitute, ts[2]};
    for (int i = 0; st && i < 3; i++) {
        osp_tensor *t = osp_safetensors_get(st, names[i]);
        CHECK(t && memcmp(osp_data(t), osp_data(want[i]), osp_nbytes(t)) == 0);
    }
    osp_safetensors_close(st);
    /* a fetched tensor of another shape is refused, and no file is left */
    log = (fetch_log){.substitute = random_tensor(OSP_F32, 2, other)};
    CHECK(osp_safetensors_write_fetched(test_path(dir, "g.safetensors"), 3, names, ts, NULL,
                                        substitute_entry_1, &log) == OSP_ERR_RUNTIME);
    CHECK(access(test_path(dir, "g.safetensors"), F_OK) != 0);
    test_rmtree(dir);
    free(dir);
}

TEST(misaligned_data_is_copied)
{
    /* header of 13 bytes: the data region starts at an odd address */
    const char *json = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t size;
    uint8_t *b = image(json, 8, &size);
    CHECK((8 + strlen(json)) % 4 != 0);
    float want[2];
    memcpy(want, b + size - 8, 8);
    char *dir = test_tmpdir();
    write_file(test_path(dir, "odd.safetensors"), b, size);
    osp_safetensors *st = osp_safetensors_open(test_path(dir, "odd.safetensors"));
    CHECK(st != NULL);
    osp_tensor *t = osp_safetensors_get(st, "x");
    CHECK(t && (uintptr_t)osp_data(t) % 4 == 0);
    CHECK(t && memcmp(osp_data(t), want, 8) == 0);
    osp_safetensors_close(st);
    test_rmtree(dir);
    free(dir);
    free(b);
}

TEST(bad_offsets_and_sizes)
{
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
               "tensor 'x': data_offsets out of range ([0, 8] in a data region of 4 bytes)");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
               "data_offsets out of range");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16,
               "tensor 'x': size mismatch (data_offsets span 8 bytes, shape x F32 needs 12)");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
               "data_offsets must be two integers");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.5,8]}}", 8,
               "data_offsets must be two integers");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
               "data_offsets must be two integers");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e300]}}", 8,
               "data_offsets must be two integers");
}

TEST(overlapping_tensors)
{
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
               "tensors 'a' and 'b' overlap");
    expect_bad("{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]},"
               "\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
               "tensors 'a' and 'b' overlap");
    /* touching is fine, and an empty tensor overlaps nothing */
    size_t size;
    uint8_t *b = image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]}}", 12,
                       &size);
    osp_safetensors *st = osp_safetensors_open_memory(b, size, "ok");
    CHECK(st && osp_safetensors_count(st) == 3);
    osp_tensor *e = st ? osp_safetensors_get(st, "e") : NULL;
    CHECK(e && osp_numel(e) == 0 && e->ndim == 2);
    osp_tensor *s = st ? osp_safetensors_get(st, "b") : NULL;
    CHECK(s && s->ndim == 0 && memcmp(osp_data(s), b + size - 4, 4) == 0);
    osp_safetensors_close(st);
    free(b);
}

TEST(header_length_checks)
{
    uint8_t b[64] = {0};
    /* claims more than the file holds */
    b[0] = 200;
    memcpy(b + 8, "{}", 2);
    CHECK(osp_safetensors_open_memory(b, 64, "bad") == NULL);
    CHECK(strstr(osp_error_message(), "header length 200 exceeds the file (64 bytes)"));
    /* absurd: 2^63 */
    memset(b, 0, 8);
    b[7] = 0x80;
    CHECK(osp_safetensors_open_memory(b, 64, "bad") == NULL);
    CHECK(strstr(osp_error_message(), "header length 9223372036854775808 exceeds the file"));
    /* too short for the length prefix */
    CHECK(osp_safetensors_open_memory(b, 7, "bad") == NULL);
    CHECK(strstr(osp_error_message(), "too short"));
    /* within the file but over the sanity cap: only address space, the
     * pages are never touched */
    size_t big = 100u * 1000 * 1000 + 64;
    uint8_t *huge = calloc(1, big);
    uint64_t n = 100u * 1000 * 1000 + 1;
    for (int i = 0; i < 8; i++)
        huge[i] = (uint8_t)(n >> (8 * i));
    CHECK(osp_safetensors_open_memory(huge, big, "big") == NULL);
    CHECK(strstr(osp_error_message(), "exceeds the 100000000-byte limit"));
    free(huge);
    /* a file of 0 and of 5 bytes */
    char *dir = test_tmpdir();
    write_file(test_path(dir, "empty"), "", 0);
    CHECK(osp_safetensors_open(test_path(dir, "empty")) == NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA && strstr(osp_error_message(), "too short"));
    CHECK(osp_safetensors_open(dir) == NULL); /* a folder */
    CHECK(osp_error_code() == OSP_ERR_IO);
    CHECK(osp_safetensors_open(test_path(dir, "absent")) == NULL);
    CHECK(osp_error_code() == OSP_ERR_IO && strstr(osp_error_message(), "absent"));
    test_rmtree(dir);
    free(dir);
}

TEST(invalid_json)
{
    expect_bad("{\"x\":{\"dtype\":\"F32\",", 0, "header is not valid JSON");
    expect_bad("not json at all", 0, "header is not valid JSON");
    expect_bad("{} trailing", 0, "bytes after its JSON object");
    expect_bad("[1, 2]", 0, "header must be a JSON object");
    expect_bad("{\"x\":[1]}", 0, "tensor 'x': expected an object");
    expect_bad("{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype must be a string");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "shape must be an array");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
               "shape entries must be integers");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
               4, "rank 9, the maximum is 8");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[9007199254740992,9007199254740992],"
               "\"data_offsets\":[0,4]}}", 4, "shape size overflows");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
               "tensor 'x' appears twice");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ value of 'k' is not a string");
    expect_bad("{\"__metadata__\":[]}", 0, "__metadata__ must be an object");
    /* valid: whitespace padding, empty header object */
    size_t size;
    uint8_t *b = image("{}      ", 0, &size);
    osp_safetensors *st = osp_safetensors_open_memory(b, size, "empty");
    CHECK(st && osp_safetensors_count(st) == 0 && osp_safetensors_entry(st, 0) == NULL);
    osp_safetensors_close(st);
    free(b);
}

TEST(unsupported_dtypes)
{
    static const char *const dtypes[] = {"BOOL", "I8", "I16", "U16", "U32", "U64", "F8_E4M3",
                                         "F8_E5M2", "f32", "complex"};
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++) {
        char json[160], want[80];
        snprintf(json, sizeof json,
                 "{\"mask\":{\"dtype\":\"%s\",\"shape\":[1],\"data_offsets\":[0,1]}}", dtypes[i]);
        snprintf(want, sizeof want, "unsupported dtype %s for tensor 'mask'", dtypes[i]);
        expect_bad(json, 1, want);
    }
}

/* ---------------- the shared fixtures ---------------- */

static int n_files, n_tensors, n_failed;

static int visit(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)ftw;
    size_t n = strlen(path);
    if (flag != FTW_F || n < 12 || strcmp(path + n - 12, ".safetensors") != 0)
        return 0;
    n_files++;
    osp_safetensors *st = osp_safetensors_open(path);
    if (!st) {
        printf("#   %s\n", osp_error_message());
        n_failed++;
        return 0;
    }
    size_t count = osp_safetensors_count(st);
    if (count == 0)
        n_failed++;
    for (size_t i = 0; i < count; i++) {
        const osp_st_entry *e = osp_safetensors_entry(st, i);
        osp_tensor *t = osp_safetensors_get(st, e->name);
        if (!t || osp_nbytes(t) != e->nbytes || osp_safetensors_find(st, e->name) != e)
            n_failed++;
        osp_release(osp_pool_take(t));
    }
    n_tensors += (int)count;
    osp_safetensors_close(st);
    return 0;
}

static const osp_st_entry *fixture_entry(osp_safetensors **st, const char *file, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", test_fixtures_dir(), file);
    *st = osp_safetensors_open(path);
    return *st ? osp_safetensors_find(*st, name) : NULL;
}

TEST(every_fixture_file_opens)
{
    n_files = n_tensors = n_failed = 0;
    nftw(test_fixtures_dir(), visit, 16, FTW_PHYS);
    printf("# %d fixture files, %d tensors\n", n_files, n_tensors);
    CHECK(n_files >= 50);
    CHECK(n_tensors >= 1000);
    CHECK(n_failed == 0);

    osp_safetensors *st;
    const osp_st_entry *e = fixture_entry(&st, "t5/encoder/model.safetensors",
                                          "encoder.block.0.layer.0.SelfAttention.k.weight");
    CHECK(e && e->dtype == OSP_F32 && e->ndim == 2 && e->shape[0] == 64 && e->shape[1] == 48);
    CHECK(st && osp_safetensors_count(st) == 31);
    CHECK(st && strcmp(osp_safetensors_metadata(st, "format"), "pt") == 0);
    osp_safetensors_close(st);
    e = fixture_entry(&st, "eval/videos.safetensors", "generated");
    CHECK(e && e->dtype == OSP_U8 && e->ndim == 5 && e->shape[0] == 3 && e->shape[4] == 3);
    osp_safetensors_close(st);
    e = fixture_entry(&st, "vae/wide/model/diffusion_pytorch_model.safetensors",
                      "decoder.conv_in.conv.bias");
    CHECK(e && e->dtype == OSP_F16 && e->ndim == 1 && e->shape[0] == 64);
    CHECK(st && osp_safetensors_count(st) == 244);
    osp_safetensors_close(st);
    e = fixture_entry(&st, "sched/timesteps.safetensors", "alphas_cumprod");
    CHECK(e && e->dtype == OSP_F32 && e->ndim == 1 && e->shape[0] == 1000);
    osp_tensor *t = st ? osp_safetensors_get(st, "alphas_cumprod") : NULL;
    /* a cumulative product of alphas: decreasing, within (0, 1) */
    CHECK(t && osp_f32(t)[0] < 1 && osp_f32(t)[999] > 0 && osp_f32(t)[999] < osp_f32(t)[0]);
    osp_safetensors_close(st);
}

int main(void)
{
    RUN(every_dtype_and_rank_round_trips);
    RUN(header_is_padded_to_8_bytes_with_spaces);
    RUN(writer_rejects_bad_arguments);
    RUN(writer_takes_fetched_data);
    RUN(misaligned_data_is_copied);
    RUN(bad_offsets_and_sizes);
    RUN(overlapping_tensors);
    RUN(header_length_checks);
    RUN(invalid_json);
    RUN(unsupported_dtypes);
    RUN(every_fixture_file_opens);
    return test_summary();
}
