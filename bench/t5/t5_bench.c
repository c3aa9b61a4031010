/* t5_bench.c — libosp's side of bench/t5 (run.sh drives it).
 *
 *   t5_bench [-t THREADS] [-r REPS] encode DIR
 *       the T5 encoder of DIR/model on DIR/input.safetensors (input_ids,
 *       attention_mask, as t5_torch.py writes them): one warm-up and REPS
 *       timed forwards; prints "t5<TAB>shape<TAB>median ms<TAB>GFLOP/s<TAB>
 *       peak RSS MiB" and writes last_hidden_state to DIR/osp_out.safetensors
 *   t5_bench [-r REPS] tokenize SPIECE_MODEL PROMPTS
 *       the T5 tokenizer on every line of PROMPTS (all ids + EOS, no
 *       truncation: what t5_torch.py spm asks sentencepiece for), REPS
 *       times; prints "osp-tokenizer<TAB>N prompts<TAB>median ms<TAB>
 *       prompts/s<TAB>peak RSS MiB<TAB>hash of the ids" (t5_torch.py spm
 *       prints the same hash). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "bench_util.h"
#include "io/safetensors.h"
#include "models/t5.h"
#include "models/t5_tokenizer.h"

typedef struct {
    osp_t5 *model;
    osp_tensor *ids, *mask;
} forward_ctx;

static osp_tensor *run_forward(void *ctx)
{
    forward_ctx *c = ctx;
    return osp_t5_run(c->model, c->ids, c->mask);
}

/* spec/t5.md §8: 2 x multiply-adds of the projections and the attention. */
static double forward_flops(const osp_t5_config *c, int64_t B, int64_t L)
{
    double inner = (double)(c->num_heads * c->d_kv), d = (double)c->d_model;
    double proj = 2.0 * L * (4 * d * inner + 3 * d * (double)c->d_ff);
    return (double)B * (double)c->num_layers * (proj + 4.0 * L * L * inner);
}

static int encode(const char *dir, int reps)
{
    char path[4096], shape[160];
    snprintf(path, sizeof path, "%s/model", dir);
    forward_ctx c = {.model = osp_t5_load(path, OSP_DEVICE_CPU)};
    if (!c.model)
        bench_check(NULL, "model");
    snprintf(path, sizeof path, "%s/input.safetensors", dir);
    osp_safetensors *st = osp_safetensors_open(path);
    if (!st)
        bench_check(NULL, "input");
    c.ids = bench_check(osp_safetensors_get(st, "input_ids"), "input_ids");
    c.mask = bench_check(osp_safetensors_get(st, "attention_mask"), "attention_mask");
    const osp_t5_config *cfg = osp_t5_get_config(c.model);
    int64_t B = c.ids->shape[0], L = c.ids->shape[1];
    snprintf(shape, sizeof shape, "%lld layers D%lld H%lld ff%lld [%lld, %lld]",
             (long long)cfg->num_layers, (long long)cfg->d_model, (long long)cfg->num_heads,
             (long long)cfg->d_ff, (long long)B, (long long)L);
    double ms = bench_median_ms(run_forward, &c, reps);
    bench_report("t5", shape, ms, forward_flops(cfg, B, L));
    osp_tensor *y = bench_check(run_forward(&c), "forward");
    const char *name = "last_hidden_state";
    snprintf(path, sizeof path, "%s/osp_out.safetensors", dir);
    if (osp_safetensors_write(path, 1, &name, &y, NULL))
        bench_check(NULL, "output");
    osp_safetensors_close(st);
    osp_t5_free(c.model);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* All lines of path, split in place (the buffer is *text). */
static size_t read_lines(const char *path, char **text, char ***lines, size_t **lens)
{
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) || ftell(f) < 0) {
        fprintf(stderr, "t5_bench: cannot read %s\n", path);
        exit(1);
    }
    size_t size = (size_t)ftell(f), n = 0;
    rewind(f);
    *text = malloc(size + 1);
    if (!*text || fread(*text, 1, size, f) != size)
        exit(1);
    fclose(f);
    (*text)[size] = 0;
    for (size_t i = 0; i < size; i++)
        n += (*text)[i] == '\n';
    *lines = malloc((n + 1) * sizeof **lines);
    *lens = malloc((n + 1) * sizeof **lens);
    size_t k = 0;
    for (char *p = *text, *end = *text + size; p < end && k <= n; k++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        (*lines)[k] = p;
        (*lens)[k] = (size_t)((nl ? nl : end) - p);
        p = nl ? nl + 1 : end;
    }
    return k;
}

static int tokenize(const char *model, const char *prompts, int reps)
{
    osp_t5_tokenizer *tok = osp_t5_tokenizer_load(model);
    if (!tok) {
        fprintf(stderr, "t5_bench: %s\n", osp_error_message());
        return 1;
    }
    char *text, **lines;
    size_t *lens, n = read_lines(prompts, &text, &lines, &lens);
    double *ms = malloc((size_t)(reps + 1) * sizeof *ms);
    uint64_t hash = 0;
    for (int r = 0; r <= reps; r++) { /* r = 0: warm-up */
        double start = now_ms();
        hash = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t *ids;
            size_t m;
            if (osp_t5_tokenize(tok, lines[i], lens[i], &ids, &m)) {
                fprintf(stderr, "t5_bench: prompt %zu: %s\n", i + 1, osp_error_message());
                return 1;
            }
            for (size_t j = 0; j < m; j++)
                hash = hash * 1000003u + (uint64_t)ids[j];
            hash = hash * 1000003u + (uint64_t)osp_t5_eos_id(tok);
            free(ids);
        }
        ms[r] = now_ms() - start;
    }
    qsort(ms + 1, (size_t)reps, sizeof *ms, compare_double);
    double med = reps % 2 ? ms[1 + reps / 2] : 0.5 * (ms[reps / 2] + ms[reps / 2 + 1]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("osp-tokenizer\t%zu prompts\t%.3f\t%.0f\t%.0f\t%016llx\n", n, med, (double)n / med * 1e3,
           (double)ru.ru_maxrss / 1024, (unsigned long long)hash);
    free(ms);
    free(lines);
    free(lens);
    free(text);
    osp_t5_tokenizer_free(tok);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 0, reps = 3, opt;
    const char *usage = "usage: t5_bench [-t THREADS] [-r REPS] encode DIR\n"
                        "       t5_bench [-r REPS] tokenize SPIECE_MODEL PROMPTS\n";
    while ((opt = getopt(argc, argv, "t:r:")) != -1) {
        switch (opt) {
        case 't': threads = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (reps < 1 || threads < 0 || optind >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    osp_set_threads(threads);
    if (!strcmp(argv[optind], "encode") && optind + 2 == argc)
        return encode(argv[optind + 1], reps);
    if (!strcmp(argv[optind], "tokenize") && optind + 3 == argc)
        return tokenize(argv[optind + 1], argv[optind + 2], reps);
    fputs(usage, stderr);
    return 2;
}
