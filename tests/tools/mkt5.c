/* mkt5 — writes a T5 v1.1 encoder folder with random weights, laid out as
 * a Hugging Face release: config.json, the weights (with both tied
 * embedding keys) as safetensors or PyTorch .bin, one file or shards with
 * an index, and optionally a copy of a spiece.model. For the bats suites
 * (a tokenizer and an encoder that fit together) and the benchmarks (an
 * XXL-shaped bf16 checkpoint, generated shard by shard so memory stays
 * at one shard).
 *
 *   mkt5 DIR [KEY=VALUE ...]
 *     vocab=1100 d_model=32 d_kv=8 heads=4 d_ff=64 layers=2 buckets=32
 *     max_distance=128 seed=1  (sizes)
 *     dtype=f32|bf16|f16   format=safetensors|bin   shards=1
 *     spiece=FILE          (copied to DIR/spiece.model)
 *   xxl=1 sets the DeepFloyd/t5-v1_1-xxl sizes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/safetensors.h"
#include "io/torch_pickle.h"

typedef struct spec {
    long vocab, d_model, d_kv, heads, d_ff, layers, buckets, max_distance, seed, shards;
    const char *dtype, *format, *spiece;
} spec;

static uint64_t rng;

static float uniform(void) /* [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1p-52 - 1.0);
}

/* uniform with standard deviation std around mean */
static osp_tensor *random_tensor(int ndim, const int64_t *shape, float mean, float std,
                                 osp_dtype dtype)
{
    osp_tensor *t = osp_tensor_f32(ndim, shape);
    if (!t)
        return NULL;
    float *p = osp_f32(t);
    for (int64_t i = 0; i < osp_numel(t); i++)
        p[i] = mean + 1.7320508f * std * uniform();
    return dtype == OSP_F32 ? t : osp_tensor_to_dtype(t, dtype);
}

typedef struct shard {
    int n;
    char *names[64];
    osp_tensor *tensors[64];
} shard;

static void add(shard *s, const char *name, osp_tensor *t)
{
    s->names[s->n] = strdup(name);
    s->tensors[s->n++] = t;
}

static void add_block(shard *s, const spec *c, long i, osp_dtype dt)
{
    char k[128];
    int64_t inner = c->heads * c->d_kv, norm[1] = {c->d_model};
    int64_t qkv[2] = {inner, c->d_model}, o[2] = {c->d_model, inner};
    int64_t wi[2] = {c->d_ff, c->d_model}, wo[2] = {c->d_model, c->d_ff};
    const char *names[4] = {"q", "k", "v", "o"};
    for (int j = 0; j < 4; j++) {
        snprintf(k, sizeof k, "encoder.block.%ld.layer.0.SelfAttention.%s.weight", i, names[j]);
        float std = 1.0f / sqrtf((float)(j < 3 ? c->d_model : inner));
        add(s, k, random_tensor(2, j < 3 ? qkv : o, 0, std, dt));
    }
    snprintf(k, sizeof k, "encoder.block.%ld.layer.0.layer_norm.weight", i);
    add(s, k, random_tensor(1, norm, 1, 0.29f, dt));
    for (int j = 0; j < 2; j++) {
        snprintf(k, sizeof k, "encoder.block.%ld.layer.1.DenseReluDense.wi_%d.weight", i, j);
        add(s, k, random_tensor(2, wi, 0, 1.0f / sqrtf((float)c->d_model), dt));
    }
    snprintf(k, sizeof k, "encoder.block.%ld.layer.1.DenseReluDense.wo.weight", i);
    add(s, k, random_tensor(2, wo, 0, 1.0f / sqrtf((float)c->d_ff), dt));
    snprintf(k, sizeof k, "encoder.block.%ld.layer.1.layer_norm.weight", i);
    add(s, k, random_tensor(1, norm, 1, 0.29f, dt));
}

static int write_config(const char *dir, const spec *c)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return 1;
    fprintf(f, "{\n  \"architectures\": [\"T5EncoderModel\"],\n  \"model_type\": \"t5\",\n"
               "  \"vocab_size\": %ld,\n  \"d_model\": %ld,\n  \"d_kv\": %ld,\n"
               "  \"num_heads\": %ld,\n  \"d_ff\": %ld,\n  \"num_layers\": %ld,\n"
               "  \"relative_attention_num_buckets\": %ld,\n"
               "  \"relative_attention_max_distance\": %ld,\n"
               "  \"layer_norm_epsilon\": 1e-06,\n  \"feed_forward_proj\": \"gated-gelu\",\n"
               "  \"pad_token_id\": 0,\n  \"eos_token_id\": 1,\n  \"torch_dtype\": \"float32\"\n}\n",
            c->vocab, c->d_model, c->d_kv, c->heads, c->d_ff, c->layers, c->buckets,
            c->max_distance);
    return fclose(f) != 0;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int bad = !in || !out;
    while (!bad && (n = fread(buf, 1, sizeof buf, in)) > 0)
        bad = fwrite(buf, 1, n, out) != n;
    if (in)
        fclose(in);
    if (out)
        bad |= fclose(out) != 0;
    return bad;
}

static long value(const char *arg, const char *key)
{
    size_t n = strlen(key);
    return strncmp(arg, key, n) == 0 && arg[n] == '=' ? atol(arg + n + 1) : -1;
}

int main(int argc, char **argv)
{
    spec c = {1100, 32, 8, 4, 64, 2, 32, 128, 1, 1, "f32", "safetensors", NULL};
    if (argc < 2) {
        fprintf(stderr, "usage: mkt5 DIR [KEY=VALUE ...] (see the source)\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        long *slots[] = {&c.vocab, &c.d_model, &c.d_kv, &c.heads, &c.d_ff, &c.layers,
                         &c.buckets, &c.max_distance, &c.seed, &c.shards};
        const char *keys[] = {"vocab", "d_model", "d_kv", "heads", "d_ff", "layers", "buckets",
                              "max_distance", "seed", "shards"};
        bool known = false;
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            if (value(argv[i], keys[k]) >= 0)
                *slots[k] = value(argv[i], keys[k]), known = true;
        if (strncmp(argv[i], "dtype=", 6) == 0)
            c.dtype = argv[i] + 6, known = true;
        if (strncmp(argv[i], "format=", 7) == 0)
            c.format = argv[i] + 7, known = true;
        if (strncmp(argv[i], "spiece=", 7) == 0)
            c.spiece = argv[i] + 7, known = true;
        if (strcmp(argv[i], "xxl=1") == 0) {
            c.vocab = 32128, c.d_model = 4096, c.d_kv = 64, c.heads = 64, c.d_ff = 10240;
            c.layers = 24, known = true;
        }
        if (!known) {
            fprintf(stderr, "mkt5: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    osp_dtype dt;
    bool bin = strcmp(c.format, "bin") == 0;
    if (!osp_dtype_parse(c.dtype, strlen(c.dtype), &dt) || c.shards < 1 || c.shards > c.layers) {
        fprintf(stderr, "mkt5: bad dtype or shard count\n");
        return 2;
    }
    rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)c.seed;
    const char *dir = argv[1];
    mkdir(dir, 0777);
    if (write_config(dir, &c)) {
        fprintf(stderr, "mkt5: cannot write %s/config.json\n", dir);
        return 1;
    }
    char path[4096], file[256];
    if (c.spiece) {
        snprintf(path, sizeof path, "%s/spiece.model", dir);
        if (copy_file(c.spiece, path)) {
            fprintf(stderr, "mkt5: cannot copy %s\n", c.spiece);
            return 1;
        }
    }
    const char *stem = bin ? "pytorch_model" : "model", *ext = bin ? "bin" : "safetensors";
    snprintf(path, sizeof path, "%s/%s.%s.index.json", dir, stem, ext);
    FILE *index = c.shards > 1 ? fopen(path, "w") : NULL;
    if (index)
        fputs("{\"metadata\": {}, \"weight_map\": {", index);
    long per = (c.layers + c.shards - 1) / c.shards, first_key = 1;
    for (long s = 0; s < c.shards; s++) {
        shard sh = {0};
        osp_pool_push();
        if (s == 0) {
            int64_t emb[2] = {c.vocab, c.d_model}, rel[2] = {c.buckets, c.heads};
            osp_tensor *e = random_tensor(2, emb, 0, 1, dt);
            add(&sh, "shared.weight", e);
            add(&sh, "encoder.embed_tokens.weight", e);
            add(&sh, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                random_tensor(2, rel, 0, 1, dt));
        }
        for (long i = s * per; i < (s + 1) * per && i < c.layers; i++)
            add_block(&sh, &c, i, dt);
        if (s == c.shards - 1) {
            int64_t norm[1] = {c.d_model};
            add(&sh, "encoder.final_layer_norm.weight", random_tensor(1, norm, 1, 0.29f, dt));
        }
        if (c.shards > 1)
            snprintf(file, sizeof file, "%s-%05ld-of-%05ld.%s", stem, s + 1, c.shards, ext);
        else
            snprintf(file, sizeof file, "%s.%s", stem, ext);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        osp_status st = bin ? osp_torch_save(path, sh.n, (const char *const *)sh.names,
                                             sh.tensors, 0)
                            : osp_safetensors_write(path, sh.n, (const char *const *)sh.names,
                                                    sh.tensors, NULL);
        for (int i = 0; i < sh.n; i++) {
            if (index)
                fprintf(index, "%s\"%s\": \"%s\"", first_key ? "" : ", ", sh.names[i], file);
            first_key = 0;
            free(sh.names[i]);
        }
        osp_pool_pop();
        if (st) {
            fprintf(stderr, "mkt5: %s\n", osp_error_message());
            return 1;
        }
    }
    if (index) {
        fputs("}}\n", index);
        if (fclose(index) != 0)
            return 1;
    }
    return 0;
}
