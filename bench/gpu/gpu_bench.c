/* gpu_bench.c — CUDA backend timings for bench/gpu.sh. Each subcommand
 * prints markdown table rows: what, shape, ms (median), TFLOP/s, and the
 * fraction of a peak where the op is compute-bound.
 *
 *   gpu_bench gemm                    f32, TF32 and bf16 GEMM at 8192^3
 *                                     (the bf16 figure is the peak MFU uses)
 *   gpu_bench attention               Latte XL/122 attention at 65x512x512
 *   gpu_bench conv3d                  CausalVideoVAE 3x3x3 convs, f32 and TF32
 *   gpu_bench conv-layout             the same shapes through cuDNN alone,
 *                                     NCDHW against channels-last NDHWC
 *                                     (cudnnFind's best of each)
 *   gpu_bench memory                  the memory-bound ops of a Latte XL/122
 *                                     block at 65x512x512 (broadcasts, head
 *                                     and frame permutes, column sums, norm,
 *                                     GELU, cast) and the spatial attention
 *                                     over per-head views: TB/s against a
 *                                     plain read + write pass
 *   gpu_bench latte CONFIG DIR PEAK   one XL/122 forward, batch 2 (one CFG
 *                                     step), random weights written to DIR
 *                                     when missing; PEAK in TFLOP/s for MFU
 *   gpu_bench train DIR PEAK BATCH    one training step of the Latte in DIR
 *                                     (osp-train dit's: forward with every
 *                                     block checkpointed, the hybrid loss,
 *                                     backward, AdamW) on a latent of the
 *                                     config's video_length x sample_size²,
 *                                     300 text tokens; MFU from the model
 *                                     FLOPs (3 x forward; the recompute is
 *                                     not counted), peak memory, samples/s
 *
 * Inputs are fresh uniform [-1, 1) (bench_util.h); every timed call ends
 * with osp_cuda_synchronize, so the time is the GPU's.
 *
 * GPU_BENCH_SMOKE=1 shrinks the fixed shapes (gemm, attention, memory,
 * conv3d, conv-layout) to a few dozen rows, so that every path runs in
 * seconds on the emulated GPU (tests/cuda/run.sh): a check that the
 * harness works, not a timing. */
#include "backend/cuda/cuda.h"
#include "backend/ops.h"
#include "backend/ops_random.h"
#include "bench_util.h"
#include "conv_layout.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "models/latte.h"
#include "train/adamw.h"
#include "train/diffusion.h"
#include "train/dit_step.h"
#include "train/train_loop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPS 5

static bool smoke; /* GPU_BENCH_SMOKE: small shapes */

/* v, or at most `small` in a smoke run. */
static int64_t dim(int64_t v, int64_t small) { return smoke && v > small ? small : v; }

static void die(const char *what)
{
    fprintf(stderr, "gpu_bench: %s: %s\n", what, osp_error_message());
    exit(1);
}

static osp_tensor *dev_random(int ndim, const int64_t *shape)
{
    osp_tensor *t = osp_to_device(bench_random(ndim, shape), OSP_DEVICE_CUDA);
    if (!t)
        die("device input");
    return t;
}

static void row(const char *what, const char *shape, double ms, double flops, double peak)
{
    double tf = flops / (ms * 1e-3) / 1e12;
    char frac[48] = "";
    if (peak > 0)
        snprintf(frac, sizeof frac, "%.0f%% of %.0f", 100.0 * tf / peak, peak);
    printf("| %s | %s | %.3f | %.1f | %s |\n", what, shape, ms, tf, frac);
    fflush(stdout);
}

/* ---- GEMM ---- */

typedef struct gemm_ctx {
    int64_t n;
    osp_dtype t;
    osp_tensor *a, *b, *c;
} gemm_ctx;

static osp_tensor *run_gemm(void *p)
{
    gemm_ctx *g = p;
    if (osp_cuda_gemm(false, false, g->n, g->n, g->n, 1.0f, g->a->storage->data, g->n, 0,
                      g->b->storage->data, g->n, 0, 0.0f, g->c->storage->data, g->n, 0, 1, g->t,
                      g->t) ||
        osp_cuda_synchronize())
        die("gemm");
    return g->c; /* the timing helper takes NULL for a failure */
}

static void gpu_gemm(void)
{
    const int64_t n = dim(8192, 64), shape[2] = {n, n};
    char dims[48];
    snprintf(dims, sizeof dims, "%lldx%lldx%lld", (long long)n, (long long)n, (long long)n);
    const struct { const char *name; osp_dtype t; bool tf32; } kinds[] = {
        {"GEMM f32", OSP_F32, false}, {"GEMM TF32", OSP_F32, true}, {"GEMM bf16 (f32 acc.)", OSP_BF16, false},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        osp_pool_push();
        osp_cuda_set_tf32(kinds[i].tf32);
        osp_tensor *a = osp_cast(dev_random(2, shape), kinds[i].t);
        osp_tensor *b = osp_cast(dev_random(2, shape), kinds[i].t);
        osp_tensor *c = osp_tensor_new(kinds[i].t, 2, shape, OSP_DEVICE_CUDA);
        if (!a || !b || !c)
            die("gemm inputs");
        gemm_ctx g = {n, kinds[i].t, a, b, c};
        double ms = bench_median_ms(run_gemm, &g, REPS);
        row(kinds[i].name, dims, ms, 2.0 * n * n * n, 0);
        osp_pool_pop();
    }
    osp_cuda_set_tf32(false);
}

/* ---- attention ---- */

typedef struct attn_ctx {
    osp_tensor *q, *k, *v, *mask;
    float scale;
} attn_ctx;

static osp_tensor *run_attention(void *p)
{
    attn_ctx *a = p;
    osp_tensor *o = osp_attention(a->q, a->k, a->v, a->mask, a->scale);
    if (!o || osp_cuda_synchronize())
        die("attention");
    return o;
}

static void gpu_attention(void)
{
    /* 65x512x512: latent 17x64x64, patch 2 -> 1024 tokens per frame,
     * batch 2 (CFG), 16 heads x 72; text 300 tokens; VAE 64x64 single head.
     * The flash cases run twice: float32, and on bf16 tensor cores (bf16
     * mode, OSP_CUDA_BF16). */
    const struct { const char *name; int64_t b, h, lq, lk, d; bool mask, flash; } cases[] = {
        {"attention spatial", 34, 16, 1024, 1024, 72, false, true},
        {"attention temporal", 2048, 16, 17, 17, 72, false, true},
        {"attention cross, text mask", 34, 16, 1024, 300, 72, true, true},
        {"attention VAE mid-block (GEMM path)", 1, 1, 4096, 4096, 512, false, false},
    };
    bool bf16 = osp_cuda_set_bf16(false);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int tc = 0; tc < (cases[i].flash ? 2 : 1); tc++) {
            osp_cuda_set_bf16(tc);
            osp_pool_push();
            /* smoke: query and key counts past one 32-row tile */
            int64_t b = dim(cases[i].b, 2), h = dim(cases[i].h, 2), d = cases[i].d;
            int64_t lq = dim(cases[i].lq, 40), lk = dim(cases[i].lk, 40);
            int64_t qs[4] = {b, h, lq, d}, ks[4] = {b, h, lk, d}, ms_[4] = {b, 1, 1, lk};
            attn_ctx a = {dev_random(4, qs), dev_random(4, ks), dev_random(4, ks),
                          cases[i].mask ? dev_random(4, ms_) : NULL, 1.0f / sqrtf((float)d)};
            double ms = bench_median_ms(run_attention, &a, REPS);
            char name[96], shape[96];
            snprintf(name, sizeof name, "%s%s", cases[i].name,
                     !cases[i].flash ? "" : tc ? " (flash, bf16 tensor cores)" : " (flash, f32)");
            snprintf(shape, sizeof shape, "[%lld,%lld,%lld,%lld] x %lld keys", (long long)b,
                     (long long)h, (long long)lq, (long long)d, (long long)lk);
            row(name, shape, ms, 4.0 * b * h * lq * lk * d, 0);
            osp_pool_pop();
        }
    osp_cuda_set_bf16(bf16);
}

/* ---- memory-bound ops ---- */

typedef struct mem_ctx {
    osp_tensor *(*fn)(osp_tensor *const *x);
    osp_tensor *x[3];
} mem_ctx;

static osp_tensor *run_mem(void *p)
{
    mem_ctx *m = p;
    osp_tensor *y = m->fn(m->x);
    if (!y || osp_cuda_synchronize())
        die("memory-bound op");
    return y;
}

static osp_tensor *m_pass(osp_tensor *const *x) { return osp_scale_shift(x[0], 1.0f, 0.0f); }
static osp_tensor *m_mul(osp_tensor *const *x) { return osp_mul(x[0], x[1]); }
static osp_tensor *m_add(osp_tensor *const *x) { return osp_add(x[0], x[1]); }
static osp_tensor *m_swap12(osp_tensor *const *x)
{
    return osp_contiguous(osp_permute(x[0], (const int[]){0, 2, 1, 3}));
}
static osp_tensor *m_rows_sum(osp_tensor *const *x) { return osp_sum(x[0], 1, (int[]){0}, false); }
static osp_tensor *m_mid_sum(osp_tensor *const *x) { return osp_sum(x[0], 1, (int[]){1}, true); }
static osp_tensor *m_norm(osp_tensor *const *x) { return osp_layer_norm(x[0], NULL, NULL, 1e-6f); }
static osp_tensor *m_gelu(osp_tensor *const *x) { return osp_gelu_tanh(x[0]); }
static osp_tensor *m_bf16(osp_tensor *const *x) { return osp_cast(x[0], OSP_BF16); }
/* The XL/122 block at 65x512x512, batch 2: 17 frames of 1024 tokens, 16
 * heads of 72 (a smoke run: 3 frames of 40 tokens, 2 heads). */
typedef struct block_geom {
    int64_t B, F, N, H, d;
} block_geom;
static block_geom xl = {2, 17, 1024, 16, 72};

static osp_tensor *m_heads_attention(osp_tensor *const *x)
{
    osp_tensor *h[3];
    for (int i = 0; i < 3; i++)
        h[i] = osp_permute(osp_reshape(x[i], 4, (int64_t[]){xl.B * xl.F, xl.N, xl.H, xl.d}),
                           (const int[]){0, 2, 1, 3});
    return osp_attention(h[0], h[1], h[2], NULL, 1.0f / sqrtf((float)xl.d));
}

static void gpu_memory(void)
{
    if (smoke)
        xl = (block_geom){2, 3, 40, 2, 72};
    /* T tokens of D, the feed-forward 4 x wider; bytes = what the op must
     * read + write */
    const int64_t BF = xl.B * xl.F, T = BF * xl.N, D = xl.H * xl.d, L = T / xl.B;
    const struct {
        const char *name;
        osp_tensor *(*fn)(osp_tensor *const *x);
        int n;
        int64_t dims[3][4];
        int nd[3];
        double bytes;
    } cases[] = {
        {"read + write pass (scale-shift; the reference)", m_pass, 1, {{T, D}}, {2},
         8.0 * T * D},
        {"broadcast multiply x[B,N,D] s[B,1,D] (adaLN)", m_mul, 2, {{xl.B, L, D}, {xl.B, 1, D}},
         {3, 3}, 8.0 * T * D},
        {"same-shape add (residual)", m_add, 2, {{T, D}, {T, D}}, {2, 2}, 12.0 * T * D},
        {"permute copy to heads [B,L,H,d] -> [B,H,L,d]", m_swap12, 1, {{xl.B, L, xl.H, xl.d}},
         {4}, 8.0 * T * D},
        {"permute copy, frames <-> tokens (temporal blocks)", m_swap12, 1,
         {{xl.B, xl.F, xl.N, D}}, {4}, 8.0 * T * D},
        {"sum over rows (bias gradient)", m_rows_sum, 1, {{T, D}}, {2}, 4.0 * T * D},
        {"sum over tokens (adaLN gradient)", m_mid_sum, 1, {{xl.B, L, D}}, {3}, 4.0 * T * D},
        {"layer norm, no affine", m_norm, 1, {{T, D}}, {2}, 8.0 * T * D},
        {"GELU tanh (feed-forward)", m_gelu, 1, {{T, 4 * D}}, {2}, 32.0 * T * D},
        {"cast f32 -> bf16", m_bf16, 1, {{T, D}}, {2}, 6.0 * T * D},
        {"spatial attention over per-head views (flash, f32)", m_heads_attention, 3,
         {{BF, xl.N, D}, {BF, xl.N, D}, {BF, xl.N, D}}, {3, 3, 3}, 16.0 * T * D},
    };
    double reference = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        osp_pool_push();
        mem_ctx m = {cases[i].fn, {NULL, NULL, NULL}};
        for (int j = 0; j < cases[i].n; j++)
            m.x[j] = dev_random(cases[i].nd[j], cases[i].dims[j]);
        double ms = bench_median_ms(run_mem, &m, REPS);
        double tbs = cases[i].bytes / (ms * 1e-3) / 1e12;
        if (i == 0)
            reference = tbs;
        char shape[64] = "[";
        for (int k = 0; k < cases[i].nd[0]; k++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld",
                     k ? "," : "", (long long)cases[i].dims[0][k]);
        strcat(shape, "]");
        printf("| %s | %s | %.3f | %.2f TB/s | %.0f%% of the plain pass |\n", cases[i].name,
               shape, ms, tbs, 100.0 * tbs / reference);
        fflush(stdout);
        osp_pool_pop();
    }
}

/* ---- conv3d ---- */

typedef struct conv_ctx {
    osp_tensor *x, *w, *b;
    osp_window win;
} conv_ctx;

static osp_tensor *run_conv(void *p)
{
    conv_ctx *c = p;
    osp_tensor *y = osp_conv(c->x, c->w, c->b, &c->win);
    if (!y || osp_cuda_synchronize())
        die("conv3d");
    return y;
}

/* Decoder stages of the release VAE (65x512x512 video, tiled 256x256):
 * [1, c, t, h, w] 3x3x3 -> c, pad 1 (a smoke run: two small ones). */
typedef struct vae_conv {
    int64_t c, t, h, w;
} vae_conv;
static const vae_conv release_convs[] = {
    {512, 17, 32, 32}, {512, 33, 64, 64}, {256, 65, 128, 128}, {128, 65, 256, 256},
};
static const vae_conv smoke_convs[] = {{8, 3, 8, 8}, {4, 5, 12, 10}};

static const vae_conv *vae_convs(size_t *n)
{
    *n = smoke ? sizeof smoke_convs / sizeof *smoke_convs
               : sizeof release_convs / sizeof *release_convs;
    return smoke ? smoke_convs : release_convs;
}

static void conv_shape(char *buf, size_t len, const vae_conv *v)
{
    snprintf(buf, len, "[1,%lld,%lld,%lld,%lld] 3x3x3 -> %lld", (long long)v->c, (long long)v->t,
             (long long)v->h, (long long)v->w, (long long)v->c);
}

static double conv_flops(const vae_conv *v) { return 2.0 * v->c * v->c * 27 * v->t * v->h * v->w; }

static void gpu_conv3d(void)
{
    for (int tf32 = 0; tf32 < 2; tf32++) {
        osp_cuda_set_tf32(tf32);
        size_t n;
        const vae_conv *convs = vae_convs(&n);
        for (size_t i = 0; i < n; i++) {
            osp_pool_push();
            const vae_conv *v = &convs[i];
            int64_t c = v->c, xs[5] = {1, c, v->t, v->h, v->w}, ws[5] = {c, c, 3, 3, 3};
            conv_ctx cc = {dev_random(5, xs), dev_random(5, ws), dev_random(1, &c),
                           osp_window_default(3)};
            for (int d = 0; d < 3; d++)
                cc.win.pad[d] = 1;
            double ms = bench_median_ms(run_conv, &cc, REPS);
            char shape[96];
            conv_shape(shape, sizeof shape, v);
            row(tf32 ? "conv3d TF32 (cuDNN)" : "conv3d f32 (cuDNN)", shape, ms, conv_flops(v), 0);
            osp_pool_pop();
        }
    }
    osp_cuda_set_tf32(false);
}

/* The layout question of the same shapes: cuDNN alone, NCDHW (osp's
 * layout) against channels-last NDHWC. */
static void gpu_conv_layout(void)
{
    size_t n;
    const vae_conv *convs = vae_convs(&n);
    for (int tf32 = 0; tf32 < 2; tf32++)
        for (size_t i = 0; i < n; i++)
            for (int last = 0; last < 2; last++) {
                const vae_conv *v = &convs[i];
                double best = cudnn_conv3d_best_ms(v->c, v->t, v->h, v->w, last, tf32);
                char what[64], shape[96];
                snprintf(what, sizeof what, "conv3d %s cuDNN %s, cudnnFind's best",
                         tf32 ? "TF32" : "f32", last ? "NDHWC" : "NCDHW");
                conv_shape(shape, sizeof shape, v);
                if (best > 0)
                    row(what, shape, best, conv_flops(v), 0);
            }
}

/* ---- Latte XL/122 forward ---- */

/* Writes random weights (N(0,1) x 0.02, Philox) for every tensor of cfg's
 * plan to dir, with config.json copied from `config`. */
static void make_latte(const char *config, const char *text, const osp_latte_config *cfg,
                       const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    struct stat st;
    if (stat(path, &st) == 0)
        return;
    mkdir(dir, 0755);
    osp_latte_plan plan;
    if (osp_latte_plan_build(cfg, &plan))
        die("latte plan");
    osp_pool_push();
    const char **names = calloc(plan.n, sizeof *names);
    osp_tensor **ts = calloc(plan.n, sizeof *ts);
    if (!names || !ts)
        die("latte weights");
    for (size_t i = 0; i < plan.n; i++) {
        names[i] = plan.items[i].name;
        ts[i] = osp_scale_shift(
            osp_randn(plan.items[i].ndim, plan.items[i].shape, OSP_DEVICE_CPU, 1000 + i, 0), 0.02f,
            0.0f);
        if (!ts[i])
            die("latte weights");
    }
    if (osp_safetensors_write(path, (int)plan.n, names, ts, NULL))
        die(path);
    osp_pool_pop();
    free(names);
    free(ts);
    osp_latte_plan_free(&plan);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) == EOF || fclose(f) != 0) {
        fprintf(stderr, "gpu_bench: cannot write %s (from %s)\n", path, config);
        exit(1);
    }
}

/* FLOPs of one forward (multiply-add = 2), h = hidden, N tokens per frame,
 * T = F·N, per block pair: T(8h² + 4h² + 16h²) spatial projections and
 * feed-forward + 4TNh self-attention + F·4Lh² text keys/values + 4TLh
 * cross-attention; temporal: T(8h² + 16h²) + 4TFh. */
static double latte_flops(const osp_latte_config *cfg, int64_t B, int64_t F, int64_t H, int64_t W,
                          int64_t L)
{
    double h = cfg->hidden, N = (double)(H / cfg->patch_size) * (W / cfg->patch_size), T = F * N;
    double per = T * 52 * h * h + 4 * T * N * h + F * 4.0 * L * h * h + 4 * T * L * h + 4 * T * F * h;
    return B * cfg->num_layers * per;
}

typedef struct latte_ctx {
    osp_latte *m;
    osp_latte_input in;
} latte_ctx;

static osp_tensor *run_latte(void *p)
{
    latte_ctx *l = p;
    osp_tensor *y = osp_latte_forward(l->m, &l->in);
    if (!y || osp_cuda_synchronize())
        die("latte forward");
    return y;
}

static void gpu_latte(const char *config, const char *dir, double peak)
{
    FILE *f = fopen(config, "r");
    static char text[1 << 16];
    size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (!f || len == 0) {
        fprintf(stderr, "gpu_bench: cannot read %s\n", config);
        exit(1);
    }
    fclose(f);
    text[len] = 0;
    osp_config *conf = osp_config_parse(text, len, config);
    osp_latte_config cfg;
    if (!conf || osp_latte_config_parse(conf, &cfg))
        die(config);
    osp_config_free(conf);
    make_latte(config, text, &cfg, dir);
    osp_latte *m = osp_latte_load(dir, OSP_DEVICE_CUDA, false);
    if (!m)
        die(dir);
    const int64_t B = 2, F = 17, H = 64, W = 64, L = 300;
    int64_t xs[5] = {B, cfg.in_channels, F, H, W}, cs[3] = {B, L, cfg.caption_channels};
    int64_t ts[1] = {B}, ms_[2] = {B, L};
    osp_pool_push();
    latte_ctx l = {m, {0}};
    l.in.x = dev_random(5, xs);
    l.in.context = dev_random(3, cs);
    l.in.timestep = osp_to_device(osp_full(OSP_F32, 1, ts, OSP_DEVICE_CPU, 500.0), OSP_DEVICE_CUDA);
    l.in.mask = osp_to_device(osp_full(OSP_F32, 2, ms_, OSP_DEVICE_CPU, 1.0), OSP_DEVICE_CUDA);
    l.in.temporal = true;
    double flops = latte_flops(&cfg, B, F, H, W, L);
    double ms = bench_median_ms(run_latte, &l, 3);
    char shape[96];
    snprintf(shape, sizeof shape, "x [2,%d,17,64,64], text [2,300,%d], f32 weights",
             cfg.in_channels, cfg.caption_channels);
    bool tf32 = osp_cuda_set_tf32(false), bf16 = osp_cuda_set_bf16(false);
    osp_cuda_set_tf32(tf32);
    osp_cuda_set_bf16(bf16);
    row(bf16   ? "Latte XL/122 forward, one CFG step (bf16 GEMMs)"
        : tf32 ? "Latte XL/122 forward, one CFG step (TF32)"
               : "Latte XL/122 forward, one CFG step (f32)",
        shape, ms, flops, peak);
    osp_cuda_memory mem = osp_cuda_memory_stats();
    printf("| Latte XL/122 peak device memory | %.2f GiB | | | |\n", (double)mem.peak / (1 << 30));
    osp_pool_pop();
    osp_latte_free(m);
}

/* ---- one training step ---- */

typedef struct train_ctx {
    osp_latte *m;
    osp_dit_params params;
    osp_adamw opt;
    osp_diffusion sched;
    osp_dit_batch batch;
    osp_dist dist;
} train_ctx;

static osp_tensor *run_train_step(void *p)
{
    train_ctx *c = p;
    osp_diffusion_terms terms = {0};
    osp_tensor **grads = NULL;
    double norm;
    osp_dit_params_zero_grad(&c->params);
    if (osp_dit_micro_step(c->m, &c->sched, &c->batch, 1.0, &terms) ||
        osp_train_reduce_grads(&c->dist, c->params.tensors, c->params.n, 0.0, &grads, &norm) ||
        osp_adamw_step(&c->opt, c->params.tensors, grads, 2e-5) || osp_cuda_synchronize())
        die("training step");
    free(grads);
    return c->params.tensors[0];
}

static void gpu_train(const char *dir, double peak, int64_t B)
{
    train_ctx c = {.dist = {.rank = 0, .size = 1}};
    if (!(c.m = osp_latte_load(dir, OSP_DEVICE_CUDA, false)))
        die(dir);
    osp_latte_set_checkpointing(c.m, true);
    const osp_latte_config *cfg = osp_latte_get_config(c.m);
    osp_adamw_hparams h = osp_adamw_defaults();
    if (osp_dit_params_init(c.m, &c.params) ||
        osp_adamw_init(&c.opt, &h, c.params.n, c.params.tensors))
        die("training state");
    osp_diffusion_init(&c.sched);
    const int64_t F = cfg->video_length, S = cfg->sample_size, L = 300;
    int64_t xs[5] = {B, cfg->in_channels, F, S, S}, cs[3] = {B, L, cfg->caption_channels};
    int64_t t[64];
    for (int64_t i = 0; i < B && i < 64; i++)
        t[i] = (137 * i + 11) % 1000;
    osp_pool_push();
    c.batch = (osp_dit_batch){.x0 = bench_random(5, xs), .noise = osp_randn(5, xs, OSP_DEVICE_CPU, 7, 0),
                              .context = bench_random(3, cs), .t = t};
    if (B > 64 || !c.batch.x0 || !c.batch.noise || !c.batch.context)
        die("training batch");
    double ms = bench_median_ms(run_train_step, &c, 3);
    bool bf16 = osp_cuda_set_bf16(false);
    osp_cuda_set_bf16(bf16);
    char what[96], shape[96];
    snprintf(what, sizeof what, "Latte XL/122 training step, %s GEMMs, checkpointing",
             bf16 ? "bf16" : "f32");
    snprintf(shape, sizeof shape, "x [%lld,%d,%lld,%lld,%lld], text %lld; %.2f samples/s",
             (long long)B, cfg->in_channels, (long long)F, (long long)S, (long long)S,
             (long long)L, (double)B / (ms * 1e-3));
    row(what, shape, ms, 3 * latte_flops(cfg, B, F, S, S, L), peak);
    osp_cuda_memory mem = osp_cuda_memory_stats();
    printf("| %s: peak device memory | %.2f GiB | | | |\n", what, (double)mem.peak / (1 << 30));
    osp_pool_pop();
    osp_adamw_free(&c.opt);
    osp_dit_params_zero_grad(&c.params);
    osp_dit_params_free(&c.params);
    osp_latte_free(c.m);
}

int main(int argc, char **argv)
{
    const char *smoke_env = getenv("GPU_BENCH_SMOKE");
    smoke = smoke_env && *smoke_env && strcmp(smoke_env, "0") != 0;
    if (!osp_cuda_available()) {
        fprintf(stderr, "gpu_bench: no usable CUDA device (%s)\n", osp_cuda_unavailable_reason());
        return 1;
    }
    if (argc == 2 && strcmp(argv[1], "gemm") == 0)
        gpu_gemm();
    else if (argc == 2 && strcmp(argv[1], "attention") == 0)
        gpu_attention();
    else if (argc == 2 && strcmp(argv[1], "conv3d") == 0)
        gpu_conv3d();
    else if (argc == 2 && strcmp(argv[1], "conv-layout") == 0)
        gpu_conv_layout();
    else if (argc == 2 && strcmp(argv[1], "memory") == 0)
        gpu_memory();
    else if (argc == 5 && strcmp(argv[1], "latte") == 0)
        gpu_latte(argv[2], argv[3], atof(argv[4]));
    else if (argc == 5 && strcmp(argv[1], "train") == 0)
        gpu_train(argv[2], atof(argv[3]), atoll(argv[4]));
    else {
        fprintf(stderr, "usage: gpu_bench gemm | attention | conv3d | conv-layout | memory | "
                        "latte CONFIG DIR PEAK | train DIR PEAK BATCH\n");
        return 2;
    }
    return 0;
}
