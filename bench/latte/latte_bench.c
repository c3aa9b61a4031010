/* latte_bench.c — times one LatteT2V forward with libosp on the CPU, the
 * twin of latte_torch.py's `time` (same model folder, same inputs), and
 * writes the output so run.sh can check that both agree.
 *
 *   latte_bench [-t THREADS] [-r REPS] DIR
 *
 * DIR as latte_torch.py `make` writes it: DIR/model (config.json +
 * diffusion_pytorch_model.safetensors) and DIR/input.safetensors
 * (hidden_states, timestep, encoder_hidden_states). One warm-up and REPS
 * timed forwards; prints "latte<TAB>shape<TAB>median ms<TAB>GFLOP/s<TAB>
 * peak RSS MiB" (FLOPs as latte_torch.py counts them) and writes the output
 * as `prediction` to DIR/osp_out.safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "backend/backend.h"
#include "bench_util.h"
#include "io/safetensors.h"
#include "models/latte.h"

typedef struct {
    osp_latte *model;
    osp_latte_input in;
} forward_ctx;

static osp_tensor *run_forward(void *ctx)
{
    forward_ctx *c = ctx;
    return osp_latte_forward(c->model, &c->in);
}

/* 2 x multiply-adds of the linear layers, the patch convolution and the
 * attention products, the cross-attention keys and values counted per
 * frame as the reference computes them (spec/latte_t2v.md §7). */
static double forward_flops(const osp_latte_config *c, const int64_t *x_shape, int64_t L)
{
    int64_t B = x_shape[0], F = x_shape[2];
    double d = c->hidden, p = c->patch_size;
    double n = (double)(x_shape[3] / c->patch_size) * (double)(x_shape[4] / c->patch_size);
    double m = F * n;
    double block = 28 * m * d * d + 4 * F * n * n * d + 4 * F * L * d * d + 4 * m * L * d +
                   24 * m * d * d + 4 * n * F * F * d;
    double rest = 2 * m * d * c->in_channels * p * p + 2 * L * d * (c->caption_channels + d) +
                  2 * (256 * d + 7 * d * d) + 2 * m * d * p * p * c->out_channels;
    return B * (c->num_layers * block + rest);
}

static void *need(void *p, const char *what)
{
    return bench_check(p, what);
}

int main(int argc, char **argv)
{
    int threads = 0, reps = 5, opt;
    while ((opt = getopt(argc, argv, "t:r:")) != -1) {
        switch (opt) {
        case 't': threads = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        default: fprintf(stderr, "usage: latte_bench [-t THREADS] [-r REPS] DIR\n"); return 2;
        }
    }
    if (optind != argc - 1 || reps < 1 || threads < 0) {
        fprintf(stderr, "usage: latte_bench [-t THREADS] [-r REPS] DIR\n");
        return 2;
    }
    const char *dir = argv[optind];
    char path[4096];
    osp_set_threads(threads);
    snprintf(path, sizeof path, "%s/model", dir);
    forward_ctx c = {.model = need(osp_latte_load(path, OSP_DEVICE_CPU, true), "model")};
    snprintf(path, sizeof path, "%s/input.safetensors", dir);
    osp_safetensors *st = need(osp_safetensors_open(path), "input");
    c.in = (osp_latte_input){
        .x = need(osp_safetensors_get(st, "hidden_states"), "hidden_states"),
        .timestep = need(osp_safetensors_get(st, "timestep"), "timestep"),
        .context = need(osp_safetensors_get(st, "encoder_hidden_states"), "text"),
        .temporal = true,
    };
    const osp_latte_config *cfg = osp_latte_get_config(c.model);
    const int64_t *xs = c.in.x->shape;
    int64_t L = c.in.context->shape[1];
    char shape[128];
    snprintf(shape, sizeof shape, "%d+%d blocks D%d x[%lld, %lld, %lld, %lld, %lld] L%lld",
             cfg->num_layers, cfg->num_layers, cfg->hidden, (long long)xs[0], (long long)xs[1],
             (long long)xs[2], (long long)xs[3], (long long)xs[4], (long long)L);
    double ms = bench_median_ms(run_forward, &c, reps);
    bench_report("latte", shape, ms, forward_flops(cfg, xs, L));

    osp_tensor *y = need(run_forward(&c), "forward");
    const char *name = "prediction";
    snprintf(path, sizeof path, "%s/osp_out.safetensors", dir);
    if (osp_safetensors_write(path, 1, &name, &y, NULL))
        need(NULL, "output");
    osp_safetensors_close(st);
    osp_latte_free(c.model);
    return 0;
}
