/* vae_train.c — see vae_train.h. */
#include "vae_train.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "core/log.h"
#include "core/path.h"
#include "core/rng.h"
#include "io/text_file.h"
#include "metrics/lpips.h"
#include "models/causalvae.h"
#include "nn/params.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/patchgan.h"
#include "train/tape.h"
#include "train/train_loop.h"
#include "train/train_rng.h"
#include "train/vae_data.h"
#include "train/vae_update.h"

#define DISC_FILE "discriminator.safetensors"
#define DISC_OPT_FILE "optimizer_disc.safetensors"
/* Configs are JSON files far below this. */
#define MAX_CONFIG_BYTES ((size_t)64 << 20)

osp_vae_train_opts osp_vae_train_defaults(void)
{
    return (osp_vae_train_opts){
        .common = {.batch = 1, .max_steps = 1000000, .max_grad_norm = 1.0,
                   .checkpoint_every = 500},
        .frames = 17, .sample_rate = 1, .size = 256, .lr = 1e-5, .disc_lr = 1e-5,
        .kl_weight = 1e-6, .perceptual_weight = 1.0, .disc_weight = 0.5, .disc_start = 2001,
        .ndf = 64, .disc_layers = 3,
    };
}

typedef struct trainer {
    const osp_vae_train_opts *o;
    osp_trainer core; /* core.opt: the VAE's optimizer */
    int64_t batch, frames, sample_rate, size, disc_start;
    uint64_t seed;
    char *config; /* the VAE's config.json */
    size_t config_len;
    osp_vae *vae;
    osp_params *vae_params; /* in vae: every tensor trains */
    osp_patchgan *disc;
    size_t n_disc;
    osp_tensor *const *disc_tensors;
    const char *const *disc_names;
    osp_lpips *lpips;
    osp_adamw opt_disc;
    osp_vae_data data;
    osp_epoch_order order;
    osp_vae_trainer batch_step; /* points into the above */
} trainer;

/* ---- train_state.json ---- */

/* Less world_size, which osp_trainer_save adds. */
static cJSON *state_json(const trainer *tr, int64_t step)
{
    const osp_vae_train_opts *o = tr->o;
    int64_t samples = step * tr->batch * tr->core.dist.size, n = (int64_t)tr->data.files.n;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "global_step", (double)step);
    cJSON_AddNumberToObject(j, "lightning_global_step", (double)(2 * step));
    cJSON_AddNumberToObject(j, "epoch", (double)(samples / n));
    cJSON_AddNumberToObject(j, "position", (double)(samples % n));
    cJSON_AddNumberToObject(j, "samples_seen", (double)samples);
    cJSON_AddNumberToObject(j, "seed", (double)tr->seed);
    cJSON_AddNumberToObject(j, "batch", (double)tr->batch);
    cJSON_AddNumberToObject(j, "frames", (double)tr->frames);
    cJSON_AddNumberToObject(j, "sample_rate", (double)tr->sample_rate);
    cJSON_AddNumberToObject(j, "size", (double)tr->size);
    cJSON_AddNumberToObject(j, "disc_start", (double)tr->disc_start);
    cJSON_AddNumberToObject(j, "clips", (double)n);
    cJSON_AddStringToObject(j, "data", o->common.data);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "disc_lr", o->disc_lr);
    cJSON_AddNumberToObject(j, "kl_weight", o->kl_weight);
    cJSON_AddNumberToObject(j, "perceptual_weight", o->perceptual_weight);
    cJSON_AddNumberToObject(j, "disc_weight", o->disc_weight);
    cJSON_AddNumberToObject(j, "max_grad_norm", o->common.max_grad_norm);
    return j;
}

/* What makes a resumed run continue the same sequence: the seed, the
 * clips' shape and the discriminator's schedule. */
static osp_status read_state(trainer *tr, const char *ckpt, int64_t step)
{
    cJSON *j = osp_train_state_read(ckpt, step, &tr->core.dist, &tr->seed, &tr->batch);
    osp_status st = j ? OSP_OK : osp_error_code();
    struct {
        const char *key;
        int64_t min, *out;
    } ints[] = {
        {"frames", 1, &tr->frames},
        {"size", 1, &tr->size},
        {"sample_rate", 1, &tr->sample_rate},
        {"disc_start", 0, &tr->disc_start},
    };
    for (size_t i = 0; !st && i < sizeof ints / sizeof *ints; i++)
        st = osp_train_state_int(j, ckpt, ints[i].key, ints[i].min, ints[i].out);
    cJSON_Delete(j);
    return st;
}

/* ---- setup ---- */

static osp_status check_shapes(const trainer *tr)
{
    const osp_vae_config *c = osp_vae_get_config(tr->vae);
    int tf = osp_vae_time_factor(c), sf = osp_vae_space_factor(c);
    /* the discriminator's stride-2 convs halve the side disc_layers times,
     * its last two k4 convs take 1 each and must leave one logit */
    int64_t disc_min = 3 * ((int64_t)1 << tr->o->disc_layers);
    if ((tr->frames - 1) % tf != 0)
        return osp_error(OSP_ERR_USAGE, "--frames %lld: this VAE takes 1 + %dk frames",
                         (long long)tr->frames, tf);
    if (tr->size % sf != 0)
        return osp_error(OSP_ERR_USAGE, "--size %lld: this VAE needs a multiple of %d",
                         (long long)tr->size, sf);
    if (tr->size < disc_min)
        return osp_error(OSP_ERR_USAGE, "--size %lld: the discriminator's %lld layers need at "
                         "least %lld", (long long)tr->size, (long long)tr->o->disc_layers,
                         (long long)disc_min);
    const osp_params *p = tr->vae_params;
    for (size_t i = 0; i < p->n; i++)
        if (p->tensors[i]->dtype != OSP_F32)
            return osp_error(OSP_ERR_RUNTIME, "training needs float32 parameters, %s is %s",
                             p->names[i], osp_dtype_name(p->tensors[i]->dtype));
    return OSP_OK;
}

/* The VAE from the checkpoint, the init folder or a fresh config (random, or
 * inflated from --init-2d), and the config text the checkpoints carry. */
static osp_status load_vae(trainer *tr, const char *ckpt)
{
    const osp_vae_train_opts *o = tr->o;
    char *dir = ckpt ? osp_path_join(ckpt, "model") : o->init ? strdup(o->init) : NULL;
    char *cfg = dir ? osp_path_join(dir, "config.json") : NULL;
    const char *text_path = dir ? cfg : o->config;
    osp_status st = (dir || o->config) && text_path ? OSP_OK
                                                    : osp_error_nomem("path", 4096);
    if (!st && !(tr->config = osp_read_text_file(text_path, MAX_CONFIG_BYTES, "a JSON config",
                                                 &tr->config_len)))
        st = osp_error_code();
    if (!st && dir) {
        tr->vae = osp_vae_load(dir, o->common.device);
    } else if (!st) {
        osp_config *conf = osp_config_parse(tr->config, tr->config_len, o->config);
        if (conf && o->init_2d)
            tr->vae = osp_vae_init_2d(conf, o->init_2d); /* on the host: moved below */
        else if (conf)
            tr->vae = osp_vae_init(conf, o->common.device,
                                   osp_stream_seed(tr->seed, OSP_STREAM_VAE_INIT, 0));
        osp_config_free(conf);
    }
    if (!st && !tr->vae)
        st = osp_error_code();
    const osp_params *p = tr->vae ? osp_vae_params(tr->vae) : NULL;
    for (size_t i = 0; !st && p && i < p->n; i++)
        st = osp_move_to_device(p->tensors[i], o->common.device);
    free(cfg);
    free(dir);
    return st;
}

static osp_status load_disc(trainer *tr, const char *ckpt)
{
    const osp_vae_train_opts *o = tr->o;
    if (ckpt) {
        char *file = osp_path_join(ckpt, DISC_FILE);
        tr->disc = file ? osp_patchgan_load(file) : NULL;
        free(file);
    } else {
        tr->disc = osp_patchgan_new(3, o->ndf, (int)o->disc_layers,
                                    osp_stream_seed(tr->seed, OSP_STREAM_DISC_INIT, 0));
    }
    if (!tr->disc)
        return osp_error_code();
    tr->n_disc = osp_patchgan_trainable(tr->disc, &tr->disc_tensors, &tr->disc_names);
    /* the trained tensors go to the device; the running BatchNorm
     * statistics stay on the host, where patchgan.c updates them */
    for (size_t i = 0; i < tr->n_disc; i++)
        if (osp_move_to_device(tr->disc_tensors[i], o->common.device))
            return osp_error_code();
    return OSP_OK;
}

static osp_status init_optimizers(trainer *tr, const char *ckpt)
{
    const osp_vae_train_opts *o = tr->o;
    osp_adamw_hparams h = {.lr = o->lr, .beta1 = 0.5, .beta2 = 0.9, .eps = 1e-8};
    osp_adamw_hparams hd = h;
    hd.lr = o->disc_lr;
    const osp_params *p = tr->vae_params;
    const osp_trainer *core = &tr->core;
    osp_status st = osp_trainer_init_opt(&tr->core, &h, p->tensors,
                                         (const char *const *)p->names, p->n, ckpt);
    st = st ? st : osp_adamw_init(&tr->opt_disc, &hd, tr->n_disc, tr->disc_tensors);
    if (!st && ckpt)
        st = osp_checkpoint_load_optimizer_file(ckpt, DISC_OPT_FILE, &tr->opt_disc,
                                                tr->disc_names);
    if (!st && ckpt &&
        (core->opt.step != core->start_step || tr->opt_disc.step != core->start_step))
        st = osp_error(OSP_ERR_DATA, "%s: optimizer steps %lld and %lld, expected %lld", ckpt,
                       (long long)core->opt.step, (long long)tr->opt_disc.step,
                       (long long)core->start_step);
    return st;
}

static osp_status setup(void *ctx, bool *busy)
{
    trainer *tr = ctx;
    const osp_vae_train_opts *o = tr->o;
    osp_trainer *core = &tr->core;
    tr->batch = o->common.batch;
    tr->frames = o->frames;
    tr->sample_rate = o->sample_rate;
    tr->size = o->size;
    tr->disc_start = o->disc_start;
    tr->seed = o->common.seed;
    char *ckpt = NULL;
    if (!o->init == !o->config && !o->common.resume)
        return osp_error(OSP_ERR_USAGE, "give one of --init VAE and --config FILE");
    if (o->init_2d && !o->config)
        return osp_error(OSP_ERR_USAGE, "--init-2d needs -m CONFIG.json: the CausalVideoVAE "
                         "to inflate the 2-D VAE into");
    if (o->perceptual_weight != 0 && !o->lpips)
        return osp_error(OSP_ERR_USAGE, "--lpips FILE is needed (the frozen VGG16 LPIPS of the "
                         "reference's loss), or a perceptual weight of 0");
    if (osp_trainer_begin(core, o->init || o->config, "--init VAE or --config FILE", busy, &ckpt))
        return osp_error_code();
    osp_status st = ckpt ? read_state(tr, ckpt, core->start_step) : OSP_OK;
    st = st ? st : load_vae(tr, ckpt);
    if (!st) {
        tr->vae_params = osp_vae_params(tr->vae);
        st = check_shapes(tr);
    }
    st = st ? st : load_disc(tr, ckpt);
    st = st ? st : init_optimizers(tr, ckpt);
    if (st && ckpt)
        osp_error_context("cannot resume from %s", ckpt);
    free(ckpt);
    if (!st && o->perceptual_weight != 0 &&
        !(tr->lpips = osp_lpips_load(o->lpips, o->common.device)))
        st = osp_error_code();
    if (!st)
        st = osp_vae_data_open(&tr->data, o->common.data, tr->frames, tr->sample_rate, tr->size);
    if (!st)
        st = osp_epoch_order_init(&tr->order, tr->data.files.n, tr->seed);
    for (size_t i = 0; !st && i < tr->vae_params->n; i++)
        osp_requires_grad(tr->vae_params->tensors[i]);
    tr->batch_step = (osp_vae_trainer){
        .vae = tr->vae, .vae_params = tr->vae_params, .disc = tr->disc,
        .disc_tensors = tr->disc_tensors, .n_disc = tr->n_disc, .lpips = tr->lpips,
        .opt = &core->opt, .opt_disc = &tr->opt_disc,
        .zero = core->zero.n ? &core->zero : NULL, .kl_weight = o->kl_weight,
        .perceptual_weight = o->perceptual_weight, .disc_weight = o->disc_weight,
        .max_grad_norm = o->common.max_grad_norm, .disc_start = tr->disc_start,
        .dist = &core->dist,
    };
    if (!st && core->start_step < o->common.max_steps)
        osp_log_info("training the VAE %s from step %lld to %lld on %zu videos (%lld x %lldx%lld)",
                     core->start_step ? o->common.run : o->init ? o->init : o->config,
                     (long long)core->start_step, (long long)o->common.max_steps,
                     tr->data.files.n, (long long)tr->frames, (long long)tr->size,
                     (long long)tr->size);
    return st;
}

static void teardown(void *ctx)
{
    trainer *tr = ctx;
    osp_epoch_order_free(&tr->order);
    osp_vae_data_close(&tr->data);
    osp_adamw_free(&tr->opt_disc);
    if (tr->vae_params)
        osp_vae_trainer_set_grad(tr->vae_params->tensors, tr->vae_params->n, false);
    if (tr->disc)
        osp_vae_trainer_set_grad(tr->disc_tensors, tr->n_disc, false);
    osp_lpips_free(tr->lpips);
    osp_patchgan_free(tr->disc);
    osp_vae_free(tr->vae);
    free(tr->config);
}

/* ---- steps ---- */

typedef struct step_stats {
    osp_vae_batch_stats b; /* averaged over the ranks together */
    double seconds;
} step_stats;

/* The batch of step k (0-based) on this rank: [B, 3, F, S, S]. */
static osp_tensor *batch_clips(trainer *tr, int64_t k)
{
    const osp_dist *dist = &tr->core.dist;
    int64_t B = tr->batch, first = (k * dist->size + dist->rank) * B;
    osp_tensor **clips = malloc((size_t)B * sizeof *clips);
    if (!clips) {
        osp_error_nomem("batch", (size_t)B * sizeof *clips);
        return NULL;
    }
    osp_tensor *x = NULL;
    int64_t b = 0;
    for (; b < B; b++) {
        uint64_t i = (uint64_t)(first + b);
        size_t item = osp_epoch_order_item(&tr->order, (int64_t)i);
        if (!(clips[b] = osp_vae_data_clip(&tr->data, item,
                                           osp_stream_seed(tr->seed, OSP_STREAM_WINDOW, i))))
            break;
    }
    if (b == B)
        x = B == 1 ? clips[0] : osp_concat((int)B, clips, 0);
    free(clips);
    return x;
}

/* The posterior noise of step k: the latent's shape, each clip's part keyed
 * by its global index (as its window), so R ranks of batch B draw what one
 * process of batch R·B does. */
static osp_tensor *posterior_noise(const trainer *tr, int64_t k)
{
    const osp_vae_config *c = osp_vae_get_config(tr->vae);
    int64_t sf = osp_vae_space_factor(c), tf = osp_vae_time_factor(c);
    int64_t shape[5] = {tr->batch, c->embed_dim, 1 + (tr->frames - 1) / tf, tr->size / sf,
                        tr->size / sf};
    osp_tensor *eps = osp_tensor_new(OSP_F32, 5, shape, OSP_DEVICE_CPU);
    int64_t per_clip = eps ? osp_numel(eps) / tr->batch : 0;
    const osp_dist *dist = &tr->core.dist;
    int64_t first = (k * dist->size + dist->rank) * tr->batch;
    for (int64_t b = 0; eps && b < tr->batch; b++) {
        uint64_t key = osp_stream_seed(tr->seed, OSP_STREAM_VAE_NOISE, (uint64_t)(first + b));
        if (osp_rng_normal_fill(osp_f32(eps) + b * per_clip, per_clip, key, 0))
            return NULL;
    }
    return eps;
}

static void log_metrics(const trainer *tr, int64_t step, const step_stats *s)
{
    FILE *f = tr->o->common.metrics;
    const osp_vae_batch_stats *b = &s->b;
    if (!f || !tr->core.lead)
        return;
    int64_t samples = step * tr->batch * tr->core.dist.size;
    fprintf(f, "{\"step\": %" PRId64 ", \"epoch\": %" PRId64 ", \"loss\": %.9g, \"nll\": %.9g, "
               "\"kl\": %.9g, \"g_loss\": %.9g, \"d_weight\": %.9g, \"disc_loss\": %.9g, "
               "\"logits_real\": %.9g, \"logits_fake\": %.9g, \"grad_norm\": %.9g, "
               "\"disc_grad_norm\": %.9g, \"samples_per_s\": %.4g, \"max_rss_mb\": %.1f}\n",
            step, samples / (int64_t)tr->data.files.n, b->loss, b->nll, b->kl, b->g_loss,
            b->d_weight, b->disc_loss, b->logits_real, b->logits_fake, b->grad_norm,
            b->disc_grad_norm, (double)(tr->batch * tr->core.dist.size) / fmax(s->seconds, 1e-9),
            osp_train_max_rss_mb());
    fflush(f);
}

/* Runs and logs step `step`. */
static osp_status train_step(void *ctx, int64_t step)
{
    trainer *tr = ctx;
    osp_device device = tr->o->common.device;
    step_stats s = {0};
    double t0 = osp_train_clock();
    int64_t k = step - 1;
    osp_pool_push();
    /* made on the host, trained on where the VAE is */
    osp_tensor *x = osp_to_device(batch_clips(tr, k), device);
    osp_tensor *eps = x ? osp_to_device(posterior_noise(tr, k), device) : NULL;
    osp_status st = eps ? osp_vae_train_batch(&tr->batch_step, k, x, eps, &s.b)
                        : osp_error_code();
    osp_pool_pop();
    s.seconds = osp_train_clock() - t0;
    if (!st)
        log_metrics(tr, step, &s);
    return st;
}

/* The discriminator and its optimiser, beside the VAE's files. */
static osp_status save_extra(void *ctx, const char *dir)
{
    const trainer *tr = ctx;
    char *file = osp_path_join(dir, DISC_FILE);
    osp_status st = file ? osp_patchgan_save(tr->disc, file) : osp_error_code();
    free(file);
    return st ? st : osp_checkpoint_write_optimizer(dir, DISC_OPT_FILE, &tr->opt_disc,
                                                    tr->disc_names, NULL);
}

static osp_status save(void *ctx, int64_t step)
{
    trainer *tr = ctx;
    osp_checkpoint c = {
        .config_text = tr->config, .config_len = tr->config_len, .model = tr->vae_params,
        .names = (const char *const *)tr->vae_params->names, .extra = save_extra,
        .extra_ctx = tr,
    };
    return osp_trainer_save(&tr->core, step, &c, state_json(tr, step));
}

osp_status osp_vae_train(const osp_vae_train_opts *o, bool *busy)
{
    static const osp_trainer_ops ops = {setup, train_step, save, teardown};
    trainer tr = {.o = o};
    return osp_trainer_run(&tr.core, &o->common, &ops, &tr, busy);
}
