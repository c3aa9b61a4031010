/* dit_train.c — see dit_train.h. */
#include "dit_train.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/ops.h"
#include "core/log.h"
#include "core/path.h"
#include "io/text_file.h"
#include "nn/params.h"
#include "train/checkpoint.h"
#include "train/dit_batch.h"
#include "train/tape.h"
#include "train/train_loop.h"
#include "train/zero.h"

typedef struct trainer {
    const osp_dit_train_opts *o;
    osp_dist dist; /* a copy of o->dist, or rank 0 of 1 */
    bool lead;     /* rank 0: owns the run folder, logs */
    osp_train_run run;
    int64_t start_step, batch, accum;
    uint64_t seed;
    double ema_decay; /* 0: no EMA */
    char *model_dir;  /* where the weights come from */
    char *config;    /* its config.json */
    size_t config_len;
    osp_latte *model;
    osp_dit_data data;
    osp_dit_params params;
    osp_adamw opt;
    osp_zero zero; /* n 0: the optimizer holds every moment */
    osp_ema ema;
    osp_dit_sampler sampler;
    osp_diffusion sched;
} trainer;

/* Configs and run state: JSON files far below this. */
#define MAX_JSON_BYTES ((size_t)64 << 20)

static char *read_text(const char *path, size_t *len)
{
    return osp_read_text_file(path, MAX_JSON_BYTES, "a JSON config", len);
}

/* ---- train_state.json ---- */

static char *state_json(const trainer *tr, int64_t step)
{
    const osp_dit_train_opts *o = tr->o;
    int64_t samples = step * tr->accum * tr->batch * tr->dist.size, n = (int64_t)tr->data.n;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "global_step", (double)step);
    cJSON_AddNumberToObject(j, "epoch", (double)(samples / n));
    cJSON_AddNumberToObject(j, "position", (double)(samples % n));
    cJSON_AddNumberToObject(j, "samples_seen", (double)samples);
    cJSON_AddNumberToObject(j, "seed", (double)tr->seed);
    cJSON_AddNumberToObject(j, "batch", (double)tr->batch);
    cJSON_AddNumberToObject(j, "accumulation", (double)tr->accum);
    cJSON_AddNumberToObject(j, "clips", (double)n);
    cJSON_AddStringToObject(j, "data", o->data);
    cJSON_AddNumberToObject(j, "lr", o->adamw.lr);
    cJSON_AddNumberToObject(j, "warmup", (double)o->warmup);
    cJSON_AddNumberToObject(j, "beta1", o->adamw.beta1);
    cJSON_AddNumberToObject(j, "beta2", o->adamw.beta2);
    cJSON_AddNumberToObject(j, "eps", o->adamw.eps);
    cJSON_AddNumberToObject(j, "weight_decay", o->adamw.weight_decay);
    cJSON_AddNumberToObject(j, "max_grad_norm", o->max_grad_norm);
    cJSON_AddNumberToObject(j, "ema_decay", tr->ema_decay);
    cJSON_AddNumberToObject(j, "world_size", tr->dist.size);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text)
        osp_error_nomem("train_state.json", 4096);
    return text;
}

/* The run's identity (seed, batch, accumulation, EMA) from a checkpoint. */
static osp_status read_state(trainer *tr, const char *ckpt, int64_t step)
{
    cJSON *j = osp_train_state_read(ckpt, step, &tr->dist);
    int64_t seed = 0;
    osp_status st = j ? osp_train_state_int(j, ckpt, "seed", 0, &seed) : osp_error_code();
    if (!st)
        st = osp_train_state_int(j, ckpt, "batch", 1, &tr->batch);
    if (!st)
        st = osp_train_state_int(j, ckpt, "accumulation", 1, &tr->accum);
    const cJSON *ema = j ? cJSON_GetObjectItemCaseSensitive(j, "ema_decay") : NULL;
    if (!st && ema && !(cJSON_IsNumber(ema) && ema->valuedouble >= 0 && ema->valuedouble < 1))
        st = osp_error(OSP_ERR_DATA, "%s/train_state.json: `ema_decay` is not a number in "
                       "[0, 1)", ckpt);
    tr->ema_decay = !st && ema ? ema->valuedouble : 0.0;
    tr->seed = (uint64_t)seed;
    cJSON_Delete(j);
    return st;
}

/* ---- setup ---- */

/* --config: RUN/.init-model-<rank> holding a copy of that config.json and a link
 * to the init weights, loaded like any model folder (the position tables
 * follow the new config). Returns the folder (malloc'd). */
static char *stage_folder(trainer *tr)
{
    const osp_dit_train_opts *o = tr->o;
    struct stat sb;
    char name[32], *src = NULL, *real = NULL, *link = NULL, *cfg = NULL;
    snprintf(name, sizeof name, ".init-model-%d", tr->dist.rank); /* one per process */
    char *dir = osp_path_join(o->run, name);
    if (!dir || stat(o->init, &sb) != 0) {
        if (dir)
            osp_error(OSP_ERR_IO, "%s: %s", o->init, strerror(errno));
        goto fail;
    }
    src = S_ISDIR(sb.st_mode) ? osp_path_join(o->init, "diffusion_pytorch_model.safetensors")
                              : strdup(o->init);
    if (!src || !(real = realpath(src, NULL))) {
        osp_error(OSP_ERR_IO, "%s: %s (--config takes the weights of a single "
                  "diffusion_pytorch_model.safetensors)", src ? src : o->init, strerror(errno));
        goto fail;
    }
    if (!(tr->config = read_text(o->config, &tr->config_len)) ||
        !(link = osp_path_join(dir, "diffusion_pytorch_model.safetensors")) ||
        !(cfg = osp_path_join(dir, "config.json")))
        goto fail;
    remove(link);
    remove(cfg);
    rmdir(dir);
    if (mkdir(dir, 0777) != 0 || symlink(real, link) != 0) {
        osp_error(OSP_ERR_IO, "cannot prepare %s: %s", dir, strerror(errno));
        goto fail;
    }
    FILE *f = fopen(cfg, "wb");
    if (!f || fwrite(tr->config, 1, tr->config_len, f) != tr->config_len || fclose(f) != 0) {
        if (f)
            fclose(f);
        osp_error(OSP_ERR_IO, "cannot write %s", cfg);
        goto fail;
    }
    free(src);
    free(real);
    free(link);
    free(cfg);
    return dir;
fail:
    free(src);
    free(real);
    free(link);
    free(cfg);
    free(dir);
    return NULL;
}

/* Removes what stage_folder made (the loaded weights are copies). */
static void stage_folder_remove(const char *dir)
{
    char *link = osp_path_join(dir, "diffusion_pytorch_model.safetensors"), *cfg = osp_path_join(dir, "config.json");
    if (link)
        remove(link);
    if (cfg)
        remove(cfg);
    rmdir(dir);
    free(link);
    free(cfg);
}

static osp_status setup(trainer *tr, bool *busy)
{
    const osp_dit_train_opts *o = tr->o;
    tr->batch = o->batch;
    tr->accum = o->accum;
    tr->seed = o->seed;
    tr->ema_decay = o->ema;
    char *ckpt = NULL;
    if (osp_train_begin(&tr->run, o->run, &tr->dist, o->resume, o->init != NULL,
                        "--init MODEL", busy, &tr->start_step, &ckpt))
        return osp_error_code();
    if (ckpt)
        tr->model_dir = osp_path_join(ckpt, "model");
    else
        tr->model_dir = o->config ? stage_folder(tr) : strdup(o->init);
    if (!tr->model_dir) {
        free(ckpt);
        return osp_error_code() ? osp_error_code() : osp_error_nomem("path", strlen(o->init));
    }
    osp_status st = ckpt ? read_state(tr, ckpt, tr->start_step) : OSP_OK;
    char *cfg = st || tr->config ? NULL : osp_path_join(tr->model_dir, "config.json");
    if (!st && !tr->config && !(tr->config = cfg ? read_text(cfg, &tr->config_len) : NULL))
        st = osp_error_code();
    free(cfg);
    if (!st && !(tr->model = osp_latte_load(tr->model_dir, o->device, false)))
        st = osp_error_code();
    if (!st)
        osp_latte_set_checkpointing(tr->model, o->checkpointing);
    if (!ckpt && o->config) {
        stage_folder_remove(tr->model_dir);
        if (st)
            osp_error_context("--init %s with --config %s", o->init, o->config);
    }
    if (!st)
        st = osp_dit_params_init(tr->model, &tr->params);
    if (!st && o->shard_optimizer && tr->dist.size > 1)
        st = osp_zero_init(&tr->zero, &tr->dist, tr->params.tensors, tr->params.n);
    if (!st)
        st = osp_adamw_init_held(&tr->opt, &o->adamw, tr->params.n, tr->params.tensors,
                                 tr->zero.n ? tr->zero.held : NULL);
    if (!st && ckpt)
        st = osp_checkpoint_load_optimizer(ckpt, &tr->opt, tr->params.names);
    if (!st && tr->ema_decay > 0)
        st = osp_ema_init(&tr->ema, tr->ema_decay, tr->params.n, tr->params.tensors);
    if (!st && ckpt && tr->ema_decay > 0)
        st = osp_checkpoint_load_ema(ckpt, &tr->ema, tr->params.names);
    if (!st && ckpt && tr->opt.step != tr->start_step)
        st = osp_error(OSP_ERR_DATA, "%s/optimizer.safetensors: step %lld, expected %lld", ckpt,
                       (long long)tr->opt.step, (long long)tr->start_step);
    if (st && ckpt)
        osp_error_context("cannot resume from %s", ckpt);
    free(ckpt);
    if (!st)
        st = osp_dit_data_open(&tr->data, o->data, osp_latte_get_config(tr->model));
    if (!st)
        st = osp_dit_sampler_init(&tr->sampler, &tr->data, tr->seed, tr->batch);
    osp_diffusion_init(&tr->sched);
    return st;
}

static void teardown(trainer *tr)
{
    osp_dit_sampler_free(&tr->sampler);
    osp_dit_data_close(&tr->data);
    osp_adamw_free(&tr->opt);
    osp_zero_free(&tr->zero);
    osp_ema_free(&tr->ema);
    if (tr->params.tensors)
        osp_dit_params_zero_grad(&tr->params);
    osp_dit_params_free(&tr->params);
    osp_latte_free(tr->model);
    free(tr->config);
    free(tr->model_dir);
    osp_train_run_close(&tr->run);
}

/* ---- steps ---- */

typedef struct step_stats {
    double loss, mse, vb; /* together: one all-reduce */
    double grad_norm, lr, seconds;
} step_stats;

static double lr_at(const osp_dit_train_opts *o, int64_t step)
{
    if (o->warmup > 0 && step < o->warmup)
        return o->adamw.lr * (double)step / (double)o->warmup;
    return o->adamw.lr;
}

static osp_status train_step(trainer *tr, int64_t step, step_stats *s)
{
    double t0 = osp_train_clock();
    int64_t B = tr->batch;
    double *mse = calloc((size_t)B, sizeof *mse), *vb = calloc((size_t)B, sizeof *vb);
    int64_t *t = calloc((size_t)B, sizeof *t);
    osp_status st = mse && vb && t ? OSP_OK : osp_error_nomem("step", (unsigned long long)B * 24);
    memset(s, 0, sizeof *s);
    osp_dit_params_zero_grad(&tr->params);
    for (int64_t a = 0; !st && a < tr->accum; a++) {
        osp_pool_push();
        osp_dit_batch b;
        osp_diffusion_terms terms = {.mse = mse, .vb = vb};
        int64_t k = ((step - 1) * tr->accum + a) * tr->dist.size + tr->dist.rank;
        st = osp_dit_sampler_batch(&tr->sampler, k, &b, t);
        st = st ? st : osp_dit_micro_step(tr->model, &tr->sched, &b, 1.0 / (double)tr->accum,
                                          &terms);
        for (int64_t i = 0; !st && i < B; i++) {
            s->mse += mse[i];
            s->vb += vb[i];
        }
        s->loss += terms.loss_mean;
        osp_pool_pop();
    }
    free(mse);
    free(vb);
    free(t);
    if (st)
        return st;
    s->loss /= (double)tr->accum;
    s->mse /= (double)(tr->accum * B);
    s->vb /= (double)(tr->accum * B);
    if (osp_dist_mean_f64(&tr->dist, &s->loss, 3)) /* loss, mse, vb */
        return osp_error_code();
    osp_tensor **grads = NULL;
    if (osp_train_reduce_grads(&tr->dist, tr->params.tensors, tr->params.n,
                               tr->o->max_grad_norm, &grads, &s->grad_norm))
        return osp_error_code();
    s->lr = lr_at(tr->o, step);
    st = isfinite(s->loss) ? osp_adamw_step(&tr->opt, tr->params.tensors, grads, s->lr)
                           : osp_error(OSP_ERR_RUNTIME, "step %lld: the loss is not finite",
                                       (long long)step);
    free(grads);
    osp_dit_params_zero_grad(&tr->params);
    if (!st && tr->zero.n)
        st = osp_zero_share(&tr->zero);
    if (!st && tr->ema_decay > 0)
        st = osp_ema_update(&tr->ema, tr->params.tensors);
    s->seconds = osp_train_clock() - t0;
    return st;
}

static void log_metrics(const trainer *tr, int64_t step, const step_stats *s)
{
    FILE *f = tr->o->metrics;
    if (!f || !tr->lead)
        return;
    int64_t samples = step * tr->accum * tr->batch * tr->dist.size;
    fprintf(f, "{\"step\": %" PRId64 ", \"epoch\": %" PRId64 ", \"loss\": %.9g, \"mse\": %.9g, "
               "\"vb\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"samples_per_s\": %.4g, "
               "\"max_rss_mb\": %.1f}\n",
            step, samples / (int64_t)tr->data.n, s->loss, s->mse, s->vb, s->lr, s->grad_norm,
            (double)(tr->batch * tr->accum * tr->dist.size) / fmax(s->seconds, 1e-9),
            osp_train_max_rss_mb());
    fflush(f);
}

/* The ema/ folder's tensors: the EMA of each trained tensor, the model's
 * own for the rest (the y_embedding buffer), in checkpoint order. */
static osp_tensor **ema_tensors(const trainer *tr)
{
    const osp_params *mp = osp_latte_params(tr->model);
    osp_tensor **out = malloc((mp->n ? mp->n : 1) * sizeof *out);
    if (!out) {
        osp_error_nomem("EMA list", mp->n * sizeof *out);
        return NULL;
    }
    for (size_t i = 0, j = 0; i < mp->n; i++) {
        bool trained = j < tr->params.n && mp->tensors[i] == tr->params.tensors[j];
        out[i] = trained ? tr->ema.shadow[j++] : mp->tensors[i];
    }
    return out;
}

static osp_status save(void *ctx, int64_t step)
{
    trainer *tr = ctx;
    char *state = state_json(tr, step);
    osp_tensor **ema = tr->ema_decay > 0 ? ema_tensors(tr) : NULL;
    osp_moment_source moments = osp_zero_moments(&tr->zero);
    osp_checkpoint c = {
        .config_text = tr->config, .config_len = tr->config_len,
        .model = osp_latte_params(tr->model), .opt = &tr->opt, .names = tr->params.names,
        .moments = tr->zero.n ? &moments : NULL, .state_json = state, .ema = ema,
    };
    osp_status st = state && (ema || tr->ema_decay == 0)
                        ? osp_train_save(&tr->run, step, &c, tr->o->keep)
                        : osp_error_code();
    osp_zero_moments_done(&tr->zero);
    free(ema);
    free(state);
    return st;
}

/* The other ranks while rank 0 saves: their shares of the moments. */
static osp_status serve(void *ctx, int64_t step)
{
    (void)step;
    trainer *tr = ctx;
    return tr->zero.n ? osp_zero_send_moments(&tr->zero, &tr->opt) : OSP_OK;
}

static osp_status step(void *ctx, int64_t step)
{
    trainer *tr = ctx;
    step_stats s;
    osp_status st = train_step(tr, step, &s);
    if (!st)
        log_metrics(tr, step, &s);
    return st;
}

osp_status osp_dit_train(const osp_dit_train_opts *o, bool *busy)
{
    trainer tr = {.o = o, .run = {.lock_fd = -1}, .dist = {.rank = 0, .size = 1}};
    if (o->dist)
        tr.dist = *o->dist;
    tr.lead = tr.dist.rank == 0;
    osp_train_loop loop = {
        .run = o->run, .dist = &tr.dist, .max_steps = o->max_steps,
        .checkpoint_every = o->checkpoint_every, .time_budget = o->time_budget,
        .started = osp_train_clock(), .stop = o->stop, .step = step, .save = save, .serve = serve,
        .ctx = &tr,
    };
    osp_status st = setup(&tr, busy);
    if (!st && tr.start_step < o->max_steps)
        osp_log_info("training %s from step %lld to %lld on %zu clips%s",
                     tr.start_step || !o->config ? tr.model_dir : o->config,
                     (long long)tr.start_step, (long long)o->max_steps, tr.data.n,
                     tr.data.n_img ? " (joint images)" : "");
    loop.start = tr.start_step;
    if (!st)
        st = osp_train_loop_run(&loop);
    teardown(&tr);
    return st;
}
