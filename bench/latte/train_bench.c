/* train_bench.c — times LatteT2V training steps with libosp on the CPU,
 * the twin of train_torch.py's `time` (same model folder, same inputs):
 * forward on the tape, the hybrid loss, backward, AdamW.
 *
 *   train_bench [-t THREADS] [-r STEPS] [-c] DIR      (-c: gradient checkpointing)
 *
 * DIR/model as latte_torch.py `make` writes it, DIR/train_input.safetensors
 * (x0, noise, t, text) as train_torch.py `make` writes it. One warm-up step
 * and STEPS timed ones; prints "latte-train<TAB>shape<TAB>median ms<TAB>
 * losses of steps 1 and 2<TAB>peak RSS MiB" (step 2's loss is after one
 * AdamW update, so it checks the gradients and the optimizer too). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "models/latte.h"
#include "train/adamw.h"
#include "train/dit_step.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what)
{
    fprintf(stderr, "train_bench: %s: %s\n", what, osp_error_message());
    exit(1);
}

int main(int argc, char **argv)
{
    static const char usage[] = "usage: train_bench [-t THREADS] [-r STEPS] [-c] DIR\n";
    int threads = 0, steps = 3, opt;
    bool checkpointing = false;
    while ((opt = getopt(argc, argv, "t:r:c")) != -1) {
        switch (opt) {
        case 't': threads = atoi(optarg); break;
        case 'r': steps = atoi(optarg); break;
        case 'c': checkpointing = true; break;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind != argc - 1 || steps < 1 || steps > 1000 || threads < 0) {
        fputs(usage, stderr);
        return 2;
    }
    const char *dir = argv[optind];
    char path[4096];
    osp_set_threads(threads);
    snprintf(path, sizeof path, "%s/model", dir);
    osp_latte *m = osp_latte_load(path, OSP_DEVICE_CPU, false);
    if (!m)
        die("model");
    osp_latte_set_checkpointing(m, checkpointing);
    snprintf(path, sizeof path, "%s/train_input.safetensors", dir);
    osp_safetensors *st = osp_safetensors_open(path);
    if (!st)
        die("input");
    osp_tensor *t = osp_tensor_to_dtype(osp_safetensors_get(st, "t"), OSP_I64);
    osp_dit_batch b = {
        .x0 = osp_safetensors_get(st, "x0"), .noise = osp_safetensors_get(st, "noise"),
        .context = osp_safetensors_get(st, "text"), .t = t ? osp_data(t) : NULL,
    };
    if (!b.x0 || !b.noise || !b.context || !t)
        die("input tensors");
    static osp_diffusion d;
    osp_diffusion_init(&d);
    osp_dit_params p;
    osp_adamw optim;
    osp_adamw_hparams h = osp_adamw_defaults();
    if (osp_dit_params_init(m, &p) || osp_adamw_init(&optim, &h, p.n, p.tensors))
        die("optimizer");
    osp_tensor **grads = calloc(p.n, sizeof *grads);
    double *ms = calloc((size_t)steps, sizeof *ms), loss[2] = {0};
    for (int i = 0; grads && ms && i <= steps; i++) {
        double start = now_ms();
        osp_diffusion_terms terms = {0};
        if (osp_dit_micro_step(m, &d, &b, 1.0, &terms))
            die("step");
        for (size_t j = 0; j < p.n; j++)
            grads[j] = p.tensors[j]->grad;
        if (osp_adamw_step(&optim, p.tensors, grads, h.lr))
            die("AdamW");
        osp_dit_params_zero_grad(&p);
        if (i < 2)
            loss[i] = terms.loss_mean;
        if (i > 0)
            ms[i - 1] = now_ms() - start;
    }
    if (!grads || !ms)
        die("memory");
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    const osp_latte_config *cfg = osp_latte_get_config(m);
    const int64_t *xs = b.x0->shape;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("latte-train\t%d+%d blocks D%d x[%lld, %lld, %lld, %lld, %lld] L%lld\t%.3f\t%.9g "
           "%.9g\t%.1f\n", cfg->num_layers, cfg->num_layers, cfg->hidden, (long long)xs[0],
           (long long)xs[1], (long long)xs[2], (long long)xs[3], (long long)xs[4],
           (long long)b.context->shape[1], ms[steps / 2], loss[0], loss[1], ru.ru_maxrss / 1024.0);
    free(grads);
    free(ms);
    osp_adamw_free(&optim);
    osp_dit_params_free(&p);
    osp_safetensors_close(st);
    osp_latte_free(m);
    return 0;
}
