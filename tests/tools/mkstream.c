/* mkstream — writes the test inputs of the bats suites: valid streams and
 * a sharded model folder through libosp's own writers, and malformed
 * streams packed by hand with msgpack-c (so the reader is tested against
 * bytes it did not write).
 *
 *   mkstream sample FILE       `latent` [1,4,2,4,4] f32 + `mask` [1,8] u8, with
 *                              meta (examples/data/sample.msgpack is this)
 *   mkstream known FILE        tensors with known statistics (see below)
 *   mkstream sharded DIR       config.json + 2 safetensors shards + index
 *   mkstream bad KIND FILE     KIND: version, missing-key, dtype, size,
 *                              overflow, negative-dim, not-a-map, rank
 *   mkstream convert ST FILE KEY[=NAME]...
 *                              tensors KEY of safetensors file ST, written
 *                              as stream tensors NAME (default KEY)
 *   FILE "-" is stdout. */
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "io/safetensors.h"
#include "io/stream.h"

static int fail(void)
{
    fprintf(stderr, "mkstream: %s\n", osp_error_message());
    return 1;
}

static osp_tensor *tensor(osp_dtype dtype, int ndim, const int64_t *shape, const void *data)
{
    return osp_tensor_from_data(dtype, ndim, shape, data);
}

static int write_sample(const char *path)
{
    float latent[1 * 4 * 2 * 4 * 4];
    for (size_t i = 0; i < sizeof latent / sizeof *latent; i++)
        latent[i] = (float)sin(0.37 * (double)i) * 1.5f;
    const uint8_t mask[8] = {1, 1, 1, 1, 1, 0, 0, 0};
    osp_meta meta;
    osp_meta_init(&meta);
    osp_stream_writer *w = osp_stream_open_write(path);
    osp_status st = w ? OSP_OK : osp_error_code();
    if (!st)
        st = osp_meta_set_float(&meta, "scale", 0.18215);
    if (!st)
        st = osp_meta_set_str(&meta, "prompt", "a red fox in snow");
    if (!st)
        st = osp_meta_set_int(&meta, "seed", 42);
    if (!st)
        st = osp_stream_write(w, "latent", tensor(OSP_F32, 5, (int64_t[]){1, 4, 2, 4, 4}, latent),
                              &meta);
    if (!st)
        st = osp_stream_write(w, "mask", tensor(OSP_U8, 2, (int64_t[]){1, 8}, mask), NULL);
    if (!st)
        st = osp_stream_commit(w);
    osp_meta_free(&meta);
    osp_stream_close_write(w);
    return st ? fail() : 0;
}

/* x: 1..6 (min 1, max 6, mean 3.5, std sqrt(35/12)); special: 1, NaN,
 * +Inf, -Inf, 3 (2 finite, 1 NaN, 2 Inf, mean 2, std 1); empty: [0, 3];
 * scalar: 0-d f64 2.5; d_<dtype>: 1, 2, 3, 4 in every dtype (mean 2.5,
 * std sqrt(1.25)); ramp: 0..9999 f32 (mean 4999.5, std sqrt((1e8-1)/12)),
 * longer than one statistics chunk. */
static int write_known(const char *path)
{
    osp_stream_writer *w = osp_stream_open_write(path);
    if (!w)
        return fail();
    osp_status st = OSP_OK;
#define PUT(name, t) \
    if (!st)         \
    st = osp_stream_write(w, name, t, NULL)
    PUT("x", tensor(OSP_F32, 2, (int64_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6}));
    PUT("special", tensor(OSP_F32, 1, (int64_t[]){5}, (float[]){1, NAN, INFINITY, -INFINITY, 3}));
    PUT("empty", tensor(OSP_F32, 2, (int64_t[]){0, 3}, (float[]){0}));
    PUT("scalar", tensor(OSP_F64, 0, NULL, (double[]){2.5}));
    const float ramp4[4] = {1, 2, 3, 4};
    for (int t = 0; t < OSP_DTYPE_COUNT; t++) {
        unsigned char buf[4 * 8];
        osp_convert(buf, (osp_dtype)t, ramp4, OSP_F32, 4);
        char name[16];
        snprintf(name, sizeof name, "d_%s", osp_dtype_name((osp_dtype)t));
        PUT(name, tensor((osp_dtype)t, 1, (int64_t[]){4}, buf));
    }
    static float ramp[10000];
    for (int i = 0; i < 10000; i++)
        ramp[i] = (float)i;
    PUT("ramp", tensor(OSP_F32, 1, (int64_t[]){10000}, ramp));
#undef PUT
    if (!st)
        st = osp_stream_commit(w);
    osp_stream_close_write(w);
    return st ? fail() : 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

static int write_sharded(const char *dir)
{
    if (mkdir(dir, 0777) != 0) {
        perror(dir);
        return 1;
    }
    char path[4096];
    osp_tensor *a = tensor(OSP_F32, 2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4});
    uint16_t b_bits[3];
    osp_convert(b_bits, OSP_BF16, (float[]){0.5f, -1, 2}, OSP_F32, 3);
    osp_tensor *b = tensor(OSP_BF16, 1, (int64_t[]){3}, b_bits);
    osp_tensor *c = tensor(OSP_I64, 1, (int64_t[]){2}, (int64_t[]){7, -7});
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
    if (osp_safetensors_write(path, 2, (const char *[]){"a", "b"}, (osp_tensor *[]){a, b}, NULL))
        return fail();
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    if (osp_safetensors_write(path, 1, (const char *[]){"c"}, (osp_tensor *[]){c}, NULL))
        return fail();
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (write_text(path, "{\"metadata\": {\"total_size\": 38}, \"weight_map\": {\n"
                         "  \"a\": \"model-00001-of-00002.safetensors\",\n"
                         "  \"b\": \"model-00001-of-00002.safetensors\",\n"
                         "  \"c\": \"model-00002-of-00002.safetensors\"}}\n"))
        return 1;
    snprintf(path, sizeof path, "%s/config.json", dir);
    return write_text(path, "{\"d_model\": 8, \"model_type\": \"test\"}\n");
}

/* ---- malformed streams, packed by hand ---- */

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* One message; a field is left out when its value is NULL / n_shape < 0. */
static void pack_message(msgpack_packer *pk, int version, const char *dtype,
                         const int64_t *shape, int n_shape, size_t data_bytes)
{
    msgpack_pack_map(pk, 3 + (size_t)(dtype != NULL) + (size_t)(n_shape >= 0));
    pack_str(pk, "osp");
    msgpack_pack_int(pk, version);
    pack_str(pk, "name");
    pack_str(pk, "latent");
    if (dtype) {
        pack_str(pk, "dtype");
        pack_str(pk, dtype);
    }
    if (n_shape >= 0) {
        pack_str(pk, "shape");
        msgpack_pack_array(pk, (size_t)n_shape);
        for (int i = 0; i < n_shape; i++)
            msgpack_pack_int64(pk, shape[i]);
    }
    pack_str(pk, "data");
    msgpack_pack_bin(pk, data_bytes);
    static const char zeros[64];
    msgpack_pack_bin_body(pk, zeros, data_bytes);
}

static int write_bad(const char *kind, const char *path)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    const int64_t two_three[2] = {2, 3}, huge[2] = {INT64_C(1) << 40, INT64_C(1) << 40},
                  negative[1] = {-1}, nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    /* a valid first message, so errors must name the second tensor */
    pack_message(&pk, 1, "f32", two_three, 2, 24);
    if (strcmp(kind, "version") == 0)
        pack_message(&pk, 2, "f32", two_three, 2, 24);
    else if (strcmp(kind, "missing-key") == 0)
        pack_message(&pk, 1, NULL, two_three, 2, 24);
    else if (strcmp(kind, "dtype") == 0)
        pack_message(&pk, 1, "f8", two_three, 2, 24);
    else if (strcmp(kind, "size") == 0)
        pack_message(&pk, 1, "f32", two_three, 2, 20);
    else if (strcmp(kind, "overflow") == 0)
        pack_message(&pk, 1, "f32", huge, 2, 4);
    else if (strcmp(kind, "negative-dim") == 0)
        pack_message(&pk, 1, "f32", negative, 1, 0);
    else if (strcmp(kind, "rank") == 0)
        pack_message(&pk, 1, "f32", nine, 9, 4);
    else if (strcmp(kind, "not-a-map") == 0)
        msgpack_pack_array(&pk, 0);
    else {
        fprintf(stderr, "mkstream: unknown malformation '%s'\n", kind);
        msgpack_sbuffer_destroy(&buf);
        return 2;
    }
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    int rc = !f || fwrite(buf.data, 1, buf.size, f) != buf.size || fclose(f) != 0;
    if (rc)
        perror(path);
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

static int convert(const char *src, const char *path, int n, char **keys)
{
    osp_safetensors *st = osp_safetensors_open(src);
    osp_stream_writer *w = st ? osp_stream_open_write(path) : NULL;
    int rc = !w;
    for (int i = 0; i < n && !rc; i++) {
        char key[256];
        snprintf(key, sizeof key, "%s", keys[i]);
        char *eq = strchr(key, '=');
        const char *name = eq ? eq + 1 : key;
        if (eq)
            *eq = 0;
        osp_tensor *t = osp_safetensors_get(st, key);
        rc = !t || osp_stream_write(w, name, t, NULL) != OSP_OK;
    }
    if (!rc)
        rc = osp_stream_commit(w) != OSP_OK;
    osp_stream_close_write(w);
    osp_safetensors_close(st);
    return rc ? fail() : 0;
}

static int run(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "convert") == 0)
        return convert(argv[2], argv[3], argc - 4, argv + 4);
    if (argc == 3 && strcmp(argv[1], "sample") == 0)
        return write_sample(argv[2]);
    if (argc == 3 && strcmp(argv[1], "known") == 0)
        return write_known(argv[2]);
    if (argc == 3 && strcmp(argv[1], "sharded") == 0)
        return write_sharded(argv[2]);
    if (argc == 4 && strcmp(argv[1], "bad") == 0)
        return write_bad(argv[2], argv[3]);
    fprintf(stderr, "usage: mkstream sample|known FILE | sharded DIR | bad KIND FILE | "
                    "convert ST FILE KEY[=NAME]...\n");
    return 2;
}

int main(int argc, char **argv)
{
    osp_log_set_program("mkstream");
    osp_pool_push(); /* owns every tensor made above */
    int rc = run(argc, argv);
    osp_pool_pop();
    return rc;
}
