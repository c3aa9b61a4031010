/* osp-train — training stages. `osp-train inflate` makes a CausalVideoVAE
 * from a 2D Stable-Diffusion VAE (tail initialisation,
 * models/causalvae.h osp_vae_init_2d); `osp-train prepare` turns videos and a
 * caption file into features (libosp/train/prepare.h); `osp-train dit`
 * trains the LatteT2V transformer on them (libosp/train/dit_train.h) and
 * `osp-train vae` the CausalVideoVAE on videos (libosp/train/vae_train.h),
 * on one process or data-parallel under mpirun (libosp/train/dist.h); this
 * file only parses options, wires the metrics output and the stop
 * signals. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cli.h"
#include "core/log.h"
#include "io/text_file.h"
#include "models/causalvae.h"
#include "train/checkpoint.h"
#include "train/dit_train.h"
#include "train/prepare.h"
#include "train/vae_train.h"

/* Exit status when another run holds the run folder's lock. */
#define EXIT_BUSY 6

static const char *opt_init, *opt_config, *opt_data, *opt_run;
static int64_t opt_batch = 1, opt_accum = 1, opt_max_steps = 1000000, opt_warmup, opt_seed,
               opt_every = 500, opt_keep;
static double opt_time_budget, opt_lr = 2e-5, opt_wd = 1e-2, opt_clip, opt_ema;
static bool opt_resume, opt_checkpointing, opt_shard_optimizer;
/* prepare */
static const char *opt_captions, *opt_vae, *opt_t5;
static int64_t opt_frames = 17, opt_sample_rate = 1, opt_size = 256, opt_image_num,
               opt_max_length = 300;
static bool opt_no_flip, opt_tile;
/* inflate */
static const char *opt_init_2d;
/* vae */
static const char *opt_lpips, *opt_loss_weights;
static int64_t opt_disc_start = 2001;
static double opt_vae_lr = 1e-5;

/* Options the trainers (dit, vae) share, each spelled once. */
#define RUN_OPTION                                                                          \
    {.name = "run", .kind = CLI_STRING, .metavar = "DIR", .s = &opt_run,                    \
     .help = "run folder: lock, checkpoint-<step>/ folders"}
#define STOP_OPTIONS                                                                        \
    {.name = "max-steps", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1e15,           \
     .i = &opt_max_steps, .help = "stop at this global step (default 1000000)"},            \
    {.name = "time-budget", .kind = CLI_NUMBER, .metavar = "SEC", .min = 0, .max = 1e9,     \
     .f = &opt_time_budget, .help = "checkpoint and stop after SEC seconds"}
#define CHECKPOINT_OPTIONS                                                                  \
    {.name = "checkpoint-every", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1e15,    \
     .i = &opt_every, .help = "checkpoint every N steps (default 500)"},                     \
    {.name = "keep", .kind = CLI_INT, .metavar = "N", .min = 0, .max = 1e9, .i = &opt_keep, \
     .help = "keep the newest N checkpoints (default 0: all)"},                             \
    {.name = "resume", .kind = CLI_FLAG, .flag = &opt_resume,                               \
     .help = "continue from the run's latest checkpoint, if any"}

#define SHARD_OPTION                                                                        \
    {.name = "shard-optimizer", .kind = CLI_FLAG, .flag = &opt_shard_optimizer,             \
     .help = "under mpirun: each rank keeps 1/N of AdamW's state"}

static const cli_option dit_options[] = {
    {.name = "init", .short_name = 'm', .kind = CLI_STRING, .metavar = "DIR", .s = &opt_init,
     .help = "Latte folder to start from (config.json + weights)"},
    {.name = "config", .kind = CLI_STRING, .metavar = "FILE", .s = &opt_config,
     .help = "train this config.json with the -m weights"},
    {.name = "data", .kind = CLI_STRING, .metavar = "PATH", .s = &opt_data,
     .help = "feature folder of *.msgpack clips, or a list file"},
    RUN_OPTION,
    {.name = "batch", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1 << 20,
     .i = &opt_batch, .help = "clips per micro-batch (default 1)"},
    {.name = "accum", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1 << 20,
     .i = &opt_accum, .help = "micro-batches per optimizer step (default 1)"},
    STOP_OPTIONS,
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
    CHECKPOINT_OPTIONS,
    {.name = "checkpointing", .kind = CLI_FLAG, .flag = &opt_checkpointing,
     .help = "recompute each layer in backward: less memory"},
    SHARD_OPTION,
    {0},
};

static const cli_option prepare_options[] = {
    {.name = "captions", .kind = CLI_STRING, .metavar = "FILE", .s = &opt_captions,
     .help = "[{\"path\": video, \"cap\": [text]}] JSON"},
    {.name = "vae", .kind = CLI_STRING, .metavar = "DIR", .s = &opt_vae,
     .help = "CausalVideoVAE folder"},
    {.name = "t5", .kind = CLI_STRING, .metavar = "DIR", .s = &opt_t5,
     .help = "T5 folder (with spiece.model)"},
    {.name = "data", .kind = CLI_STRING, .metavar = "DIR", .s = &opt_data,
     .help = "feature folder to write (created if needed)"},
    {.name = "frames", .kind = CLI_INT, .metavar = "F", .min = 1, .max = 4097, .i = &opt_frames,
     .help = "frames per clip, 1+4k (default 17)"},
    {.name = "sample-rate", .kind = CLI_INT, .metavar = "S", .min = 1, .max = 1000,
     .i = &opt_sample_rate, .help = "take every S-th frame (default 1)"},
    {.name = "size", .kind = CLI_INT, .metavar = "N", .min = 8, .max = 8192, .i = &opt_size,
     .help = "square frame side (default 256)"},
    {.name = "image-num", .kind = CLI_INT, .metavar = "N", .min = 0, .max = 256,
     .i = &opt_image_num, .help = "image frames per clip (default 0)"},
    {.name = "max-length", .kind = CLI_INT, .metavar = "L", .min = 1, .max = 8192,
     .i = &opt_max_length, .help = "caption tokens (default 300)"},
    {.name = "no-flip", .kind = CLI_FLAG, .flag = &opt_no_flip,
     .help = "never flip (default: half the clips)"},
    {.name = "tile", .kind = CLI_FLAG, .flag = &opt_tile,
     .help = "the VAE's tiled encoder (512² stage)"},
    {.name = "seed", .kind = CLI_INT, .metavar = "N", .min = 0, .max = 9007199254740991.0,
     .i = &opt_seed, .help = "seed of the windows and flips (default 0)"},
    {0},
};

static const cli_option inflate_options[] = {
    {.name = "init-2d", .kind = CLI_STRING, .metavar = "DIR", .s = &opt_init_2d,
     .help = "2-D SD VAE: diffusers folder or .safetensors file"},
    {.name = "config", .kind = CLI_STRING, .metavar = "FILE", .s = &opt_config,
     .help = "config.json of the CausalVideoVAE to make"},
    {0},
};

static const cli_option vae_options[] = {
    {.name = "init", .short_name = 'm', .kind = CLI_STRING, .metavar = "DIR", .s = &opt_init,
     .help = "VAE folder to start from, or a config.json (random)"},
    {.name = "init-2d", .kind = CLI_STRING, .metavar = "DIR", .s = &opt_init_2d,
     .help = "with -m CONFIG: inflate this 2-D SD VAE (tail init)"},
    {.name = "lpips", .kind = CLI_STRING, .metavar = "FILE", .s = &opt_lpips,
     .help = "VGG16 LPIPS weights (the perceptual loss)"},
    {.name = "data", .kind = CLI_STRING, .metavar = "PATH", .s = &opt_data,
     .help = "folder of .mp4/.avi/.webm videos, or a list file"},
    RUN_OPTION,
    {.name = "frames", .kind = CLI_INT, .metavar = "F", .min = 1, .max = 4097, .i = &opt_frames,
     .help = "frames per clip, 1+4k (default 17)"},
    {.name = "size", .kind = CLI_INT, .metavar = "N", .min = 8, .max = 8192, .i = &opt_size,
     .help = "centre crop side (default 256)"},
    {.name = "sample-rate", .kind = CLI_INT, .metavar = "S", .min = 1, .max = 1000,
     .i = &opt_sample_rate, .help = "take every S-th frame (default 1)"},
    {.name = "batch", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1 << 20,
     .i = &opt_batch, .help = "clips per step (default 1)"},
    STOP_OPTIONS,
    {.name = "lr", .kind = CLI_NUMBER, .metavar = "LR", .min = 0, .max = 1,
     .f = &opt_vae_lr, .help = "Adam learning rate of both models (default 1e-5)"},
    {.name = "disc-start", .kind = CLI_INT, .metavar = "N", .min = 0, .max = 1e15,
     .i = &opt_disc_start, .help = "GAN from reference step N, 2 a batch (default 2001)"},
    {.name = "loss-weights", .kind = CLI_STRING, .metavar = "K,P,D", .s = &opt_loss_weights,
     .help = "KL, LPIPS, GAN weights (default 1e-6,1,0.5)"},
    {.name = "seed", .kind = CLI_INT, .metavar = "N", .min = 0, .max = 9007199254740991.0,
     .i = &opt_seed, .help = "seed of data order, windows, noise, init (default 0)"},
    CHECKPOINT_OPTIONS,
    SHARD_OPTION,
    {0},
};

static const cli_option no_options[] = {{0}};

static const cli_tool stages[] = {
    {
        .name = "osp-train",
        .summary = "Make a CausalVideoVAE folder (-o DIR) from a 2-D Stable-Diffusion VAE\n"
                   "by tail initialisation: on one frame it computes what the 2-D VAE does.",
        .args = "inflate",
        .example = "osp-train inflate --init-2d sd-vae-ft-mse --config vae3d.json -o vae0",
        .options = inflate_options,
        .min_args = 1,
        .max_args = 1,
    },
    {
        .name = "osp-train",
        .summary = "Prepare training features from videos and a caption file.",
        .args = "prepare",
        .example = "osp-train prepare --captions caps.json --vae vae --t5 t5 --data feats/",
        .options = prepare_options,
        .min_args = 1,
        .max_args = 1,
    },
    {
        .name = "osp-train",
        .summary = "Train the LatteT2V transformer (dit) on prepared features.",
        .args = "dit",
        .example = "osp-train dit -m 17x256x256 --data feats/ --run runs/s1 --resume",
        .options = dit_options,
        .min_args = 1,
        .max_args = 1,
    },
    {
        .name = "osp-train",
        .summary = "Train the CausalVideoVAE (vae) on videos: L1 + LPIPS + KL + PatchGAN.",
        .args = "vae",
        .example = "osp-train vae -m vae0 --lpips vgg.safetensors --data clips/ --run vae1",
        .options = vae_options,
        .min_args = 1,
        .max_args = 1,
    },
};

static const cli_tool general = {
    .name = "osp-train",
    .summary = "Training stages: inflate (a CausalVideoVAE from a 2-D VAE), prepare\n"
               "(features from videos and captions), dit (the LatteT2V transformer),\n"
               "vae (the CausalVideoVAE).\n"
               "`osp-train STAGE --help` lists a stage's options.",
    .args = "inflate|prepare|dit|vae",
    .example = "osp-train inflate --init-2d sd-vae-ft-mse --config vae3d.json -o vae0\n"
               "osp-train prepare --captions caps.json --vae vae --t5 t5 --data feats/\n"
               "osp-train dit -m 17x256x256 --data feats/ --run runs/s1 --resume\n"
               "osp-train vae -m vae0 --lpips vgg.safetensors --data clips/ --run runs/vae",
    .options = no_options,
    .min_args = 1,
    .max_args = 1,
};

/* The stage named on the command line (usually right after the tool name)
 * picks the option table; without one, the general help. */
static const cli_tool *stage_tool(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        for (size_t k = 0; k < sizeof stages / sizeof *stages; k++)
            if (strcmp(argv[i], stages[k].args) == 0)
                return &stages[k];
    return &general;
}


static int prepare(const cli_common *common)
{
    if (!opt_captions || !opt_vae || !opt_t5 || !opt_data)
        cli_usage_error("prepare needs --captions FILE, --vae DIR, --t5 DIR and --data DIR");
    osp_prepare_opts o = {
        .captions = opt_captions, .vae = opt_vae, .t5 = opt_t5, .data = opt_data,
        .frames = opt_frames, .sample_rate = opt_sample_rate, .size = opt_size,
        .image_num = opt_image_num, .max_length = opt_max_length, .flip = !opt_no_flip,
        .tile = opt_tile, .seed = (uint64_t)opt_seed, .device = common->device,
    };
    osp_prepare_stats s;
    osp_status st = osp_prepare_features(&o, &s);
    if (st) {
        osp_log_error("%s", osp_error_message());
        return (int)st;
    }
    osp_log_info("%s: %lld records: %lld prepared, %lld already there, %lld skipped",
                 opt_data, (long long)s.records, (long long)s.written, (long long)s.kept,
                 (long long)s.skipped);
    return 0;
}

/* Configs are JSON files far below this. */
#define MAX_CONFIG_BYTES ((size_t)64 << 20)

static int inflate(const cli_common *common)
{
    if (!opt_init_2d || !opt_config || !common->output)
        cli_usage_error("inflate needs --init-2d DIR, --config FILE and -o DIR");
    size_t len = 0;
    char *text = osp_read_text_file(opt_config, MAX_CONFIG_BYTES, "a JSON config", &len);
    osp_config *conf = text ? osp_config_parse(text, len, opt_config) : NULL;
    osp_vae *vae = conf ? osp_vae_init_2d(conf, opt_init_2d) : NULL;
    osp_status st = vae ? osp_model_folder_publish(common->output, text, len,
                                                   osp_vae_params(vae))
                        : osp_error_code();
    if (st)
        osp_log_error("%s", osp_error_message());
    else
        osp_log_info("%s: inflated from %s", common->output, opt_init_2d);
    osp_vae_free(vae);
    osp_config_free(conf);
    free(text);
    return (int)st;
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* The options both trainers take. */
static osp_train_opts common_opts(FILE *metrics, const osp_dist *dist, osp_device device,
                                  double max_grad_norm)
{
    return (osp_train_opts){
        .data = opt_data, .run = opt_run, .device = device, .batch = opt_batch,
        .max_steps = opt_max_steps, .time_budget = opt_time_budget,
        .max_grad_norm = max_grad_norm, .seed = (uint64_t)opt_seed,
        .checkpoint_every = opt_every, .keep = opt_keep, .resume = opt_resume,
        .shard_optimizer = opt_shard_optimizer, .metrics = metrics, .dist = dist,
        .stop = &stop_requested,
    };
}

static osp_status train_dit(FILE *metrics, const osp_dist *dist, osp_device device, bool *busy)
{
    osp_adamw_hparams h = osp_adamw_defaults();
    h.lr = opt_lr;
    h.weight_decay = opt_wd;
    osp_dit_train_opts o = {
        .common = common_opts(metrics, dist, device, opt_clip),
        .init = opt_init, .config = opt_config, .accum = opt_accum, .warmup = opt_warmup,
        .ema = opt_ema, .adamw = h, .checkpointing = opt_checkpointing,
    };
    return osp_dit_train(&o, busy);
}

/* --loss-weights K,P,D: three numbers >= 0. */
static void parse_loss_weights(osp_vae_train_opts *o)
{
    if (!opt_loss_weights)
        return;
    char tail;
    if (sscanf(opt_loss_weights, "%lf,%lf,%lf%c", &o->kl_weight, &o->perceptual_weight,
               &o->disc_weight, &tail) != 3 || !(o->kl_weight >= 0) ||
        !(o->perceptual_weight >= 0) || !(o->disc_weight >= 0) || isinf(o->kl_weight) ||
        isinf(o->perceptual_weight) || isinf(o->disc_weight))
        cli_usage_error("--loss-weights: expected three numbers >= 0 as KL,LPIPS,GAN, got '%s'",
                        opt_loss_weights);
}

static osp_status train_vae(FILE *metrics, const osp_dist *dist, osp_device device, bool *busy)
{
    osp_vae_train_opts o = osp_vae_train_defaults();
    /* the reference's gradient clipping: `vae` has no --max-grad-norm */
    o.common = common_opts(metrics, dist, device, o.common.max_grad_norm);
    /* -m takes a model folder or, to start from random weights, a config */
    struct stat sb;
    bool config = opt_init && stat(opt_init, &sb) == 0 && S_ISREG(sb.st_mode);
    o.init = config ? NULL : opt_init;
    o.config = config ? opt_init : NULL;
    o.init_2d = opt_init_2d;
    o.lpips = opt_lpips;
    o.frames = opt_frames;
    o.sample_rate = opt_sample_rate;
    o.size = opt_size;
    o.lr = o.disc_lr = opt_vae_lr;
    o.disc_start = opt_disc_start;
    parse_loss_weights(&o);
    return osp_vae_train(&o, busy);
}

int main(int argc, char **argv)
{
    osp_dist dist;
    if (osp_dist_init(&dist, &argc, &argv)) {
        fprintf(stderr, "osp-train: %s\n", osp_error_message());
        return OSP_ERR_RUNTIME;
    }
    cli_common common;
    cli_parse(stage_tool(argc, argv), argc, argv, &common);
    if (dist.rank > 0) /* rank 0 speaks for the run */
        osp_log_set_level(OSP_LOG_ERROR);
    bool inflating = strcmp(common.argv[0], "inflate") == 0;
    if (inflating || strcmp(common.argv[0], "prepare") == 0) {
        if (dist.size > 1)
            cli_usage_error("%s runs as one process (not under mpirun)", common.argv[0]);
        int rc = inflating ? inflate(&common) : prepare(&common);
        osp_dist_finalize(&dist);
        return rc;
    }
    bool vae = strcmp(common.argv[0], "vae") == 0;
    if (!vae && strcmp(common.argv[0], "dit") != 0)
        cli_usage_error("unknown stage '%s': this version has `inflate`, `prepare`, `dit` "
                        "and `vae`", common.argv[0]);
    if (!opt_data || !opt_run)
        cli_usage_error("%s needs --data PATH and --run DIR (see --help)", common.argv[0]);
    FILE *metrics = dist.rank > 0 ? NULL : stdout;
    if (metrics && common.output && !(metrics = fopen(common.output, "a"))) {
        osp_log_error("%s: cannot open for appending", common.output);
        return OSP_ERR_IO;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool busy = false;
    osp_status st = vae ? train_vae(metrics, &dist, common.device, &busy)
                        : train_dit(metrics, &dist, common.device, &busy);
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
