/* osp-train — training stages. `osp-train dit` trains the LatteT2V
 * transformer on prepared features (libosp/train/dit_train.h), on one
 * process or data-parallel under mpirun (libosp/train/dist.h); this file
 * only parses options, wires the metrics output and the stop signals. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/cli.h"
#include "core/log.h"
#include "train/dit_train.h"

/* Exit status when another run holds the run folder's lock. */
#define EXIT_BUSY 6

static const char *opt_init, *opt_config, *opt_data, *opt_run;
static int64_t opt_batch = 1, opt_accum = 1, opt_max_steps = 1000000, opt_warmup, opt_seed,
               opt_every = 500, opt_keep;
static double opt_time_budget, opt_lr = 2e-5, opt_wd = 1e-2, opt_clip, opt_ema;
static bool opt_resume;

static const cli_option options[] = {
    {.name = "init", .short_name = 'm', .kind = CLI_STRING, .metavar = "DIR", .s = &opt_init,
     .help = "Latte folder to start from (config.json + weights)"},
    {.name = "config", .kind = CLI_STRING, .metavar = "FILE", .s = &opt_config,
     .help = "train this config.json with the -m weights"},
    {.name = "data", .kind = CLI_STRING, .metavar = "PATH", .s = &opt_data,
     .help = "feature folder of *.msgpack clips, or a list file"},
    {.name = "run", .kind = CLI_STRING, .metavar = "DIR", .s = &opt_run,
     .help = "run folder: lock, checkpoint-<step>/ folders"},
    {.name = "batch", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1 << 20,
     .i = &opt_batch, .help = "clips per micro-batch (default 1)"},
    {.name = "accum", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1 << 20,
     .i = &opt_accum, .help = "micro-batches per optimizer step (default 1)"},
    {.name = "max-steps", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1e15,
     .i = &opt_max_steps, .help = "stop at this global step (default 1000000)"},
    {.name = "time-budget", .kind = CLI_NUMBER, .metavar = "SEC", .min = 0, .max = 1e9,
     .f = &opt_time_budget, .help = "checkpoint and stop after SEC seconds"},
    {.name = "lr", .kind = CLI_NUMBER, .metavar = "LR", .min = 0, .max = 1,
     .f = &opt_lr, .help = "AdamW learning rate, constant (default 2e-5)"},
    {.name = "warmup", .kind = CLI_INT, .metavar = "N", .min = 0, .max = 1e15,
     .i = &opt_warmup, .help = "linear warmup over the first N steps (default 0)"},
    {.name = "weight-decay", .kind = CLI_NUMBER, .metavar = "W", .min = 0, .max = 1,
     .f = &opt_wd, .help = "AdamW weight decay (default 0.01)"},
    {.name = "max-grad-norm", .kind = CLI_NUMBER, .metavar = "G", .min = 0, .max = 1e30,
     .f = &opt_clip, .help = "clip the gradient norm to G (default 0: off)"},
    {.name = "ema", .kind = CLI_NUMBER, .metavar = "DECAY", .min = 0, .max = 0.9999999,
     .f = &opt_ema, .help = "also keep an EMA of the weights (default 0: none)"},
    {.name = "seed", .kind = CLI_INT, .metavar = "N", .min = 0, .max = 9007199254740991.0,
     .i = &opt_seed, .help = "seed of data order, timesteps and noise (default 0)"},
    {.name = "checkpoint-every", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1e15,
     .i = &opt_every, .help = "checkpoint every N steps (default 500)"},
    {.name = "keep", .kind = CLI_INT, .metavar = "N", .min = 0, .max = 1e9, .i = &opt_keep,
     .help = "keep the newest N checkpoints (default 0: all)"},
    {.name = "resume", .kind = CLI_FLAG, .flag = &opt_resume,
     .help = "continue from the run's latest checkpoint, if any"},
    {0},
};

static const cli_tool tool = {
    .name = "osp-train",
    .summary = "Train the LatteT2V transformer (dit) on prepared features.",
    .args = "dit",
    .example = "osp-train dit -m 17x256x256 --data feats/ --run runs/s1 --resume",
    .options = options,
    .min_args = 1,
    .max_args = 1,
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int main(int argc, char **argv)
{
    osp_dist dist;
    if (osp_dist_init(&dist, &argc, &argv)) {
        fprintf(stderr, "osp-train: %s\n", osp_error_message());
        return OSP_ERR_RUNTIME;
    }
    cli_common common;
    cli_parse(&tool, argc, argv, &common);
    if (dist.rank > 0) /* rank 0 speaks for the run */
        osp_log_set_level(OSP_LOG_ERROR);
    if (strcmp(common.argv[0], "dit") != 0)
        cli_usage_error("unknown stage '%s': this version trains `dit` (the VAE stage is not "
                        "built yet)", common.argv[0]);
    if (!opt_data || !opt_run)
        cli_usage_error("dit needs --data PATH and --run DIR (see --help)");
    if (common.device != OSP_DEVICE_CPU)
        osp_log_warn("the trainer runs on the CPU in this version");
    FILE *metrics = dist.rank > 0 ? NULL : stdout;
    if (metrics && common.output && !(metrics = fopen(common.output, "a"))) {
        osp_log_error("%s: cannot open for appending", common.output);
        return OSP_ERR_IO;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    osp_adamw_hparams h = osp_adamw_defaults();
    h.lr = opt_lr;
    h.weight_decay = opt_wd;
    osp_dit_train_opts o = {
        .init = opt_init, .config = opt_config, .data = opt_data, .run = opt_run,
        .batch = opt_batch, .accum = opt_accum, .max_steps = opt_max_steps,
        .time_budget = opt_time_budget, .warmup = opt_warmup, .max_grad_norm = opt_clip, .ema = opt_ema,
        .adamw = h, .seed = (uint64_t)opt_seed, .checkpoint_every = opt_every,
        .keep = opt_keep, .resume = opt_resume, .metrics = metrics, .stop = &stop_requested,
        .dist = &dist,
    };
    bool busy = false;
    osp_status st = osp_dit_train(&o, &busy);
    bool to_file = metrics && metrics != stdout;
    int closed = to_file ? fclose(metrics) : fflush(stdout);
    if (closed != 0 && !st)
        st = osp_error(OSP_ERR_IO, "%s: write error", to_file ? common.output : "stdout");
    if (st) {
        int code = busy ? EXIT_BUSY : (int)st;
        osp_log_error("%s", osp_error_message());
        osp_dist_abort(&dist, code); /* the other ranks would wait forever */
        return code;
    }
    osp_dist_finalize(&dist);
    return 0;
}
