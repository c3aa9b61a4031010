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
    osp_trainer core;
    int64_t batch, accum;
    uint64_t seed;
    double ema_decay; /* 0: no EMA */
    char *model_dir;  /* where the weights come from */
    char *config;    /* its config.json */
    size_t config_len;
    osp_latte *model;
    osp_dit_data data;
    osp_dit_params params;
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

/* Less world_size, which osp_trainer_save adds. */
static cJSON *state_json(const trainer *tr, int64_t step)
{
    const osp_dit_train_opts *o = tr->o;
    int64_t samples = step * tr->accum * tr->batch * tr->core.dist.size, n = (int64_t)tr->data.n;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "global_step", (double)step);
    cJSON_AddNumberToObject(j, "epoch", (double)(samples / n));
    cJSON_AddNumberToObject(j, "position", (double)(samples % n));
    cJSON_AddNumberToObject(j, "samples_seen", (double)samples);
    cJSON_AddNumberToObject(j, "seed", (double)tr->seed);
    cJSON_AddNumberToObject(j, "batch", (double)tr->batch);
    cJSON_AddNumberToObject(j, "accumulation", (double)tr->accum);
    cJSON_AddNumberToObject(j, "clips", (double)n);
    cJSON_AddStringToObject(j, "data", o->common.data);
    cJSON_AddNumberToObject(j, "lr", o->adamw.lr);
    cJSON_AddNumberToObject(j, "warmup", (double)o->warmup);
    cJSON_AddNumberToObject(j, "beta1", o->adamw.beta1);
    cJSON_AddNumberToObject(j, "beta2", o->adamw.beta2);
    cJSON_AddNumberToObject(j, "eps", o->adamw.eps);
    cJSON_AddNumberToObject(j, "weight_decay", o->adamw.weight_decay);
    cJSON_AddNumberToObject(j, "max_grad_norm", o->common.max_grad_norm);
    cJSON_AddNumberToObject(j, "ema_decay", tr->ema_decay);
    return j;
}

/* The run's identity (seed, batch, accumulation, EMA) from a checkpoint. */
static osp_status read_state(trainer *tr, const char *ckpt, int64_t step)
{
    cJSON *j = osp_train_state_read(ckpt, step, &tr->core.dist, &tr->seed, &tr->batch);
    osp_status st = j ? osp_train_state_int(j, ckpt, "accumulation", 1, &tr->accum)
                      : osp_error_code();
    const cJSON *ema = j ? cJSON_GetObjectItemCaseSensitive(j, "ema_decay") : NULL;
    if (!st && ema && !(cJSON_IsNumber(ema) && ema->valuedouble >= 0 && ema->valuedouble < 1))
        st = osp_error(OSP_ERR_DATA, "%s/train_state.json: `ema_decay` is not a number in "
                       "[0, 1)", ckpt);
    tr->ema_decay = !st && ema ? ema->valuedouble : 0.0;
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
    snprintf(name, sizeof name, ".init-model-%d", tr->core.dist.rank); /* one per process */
    char *dir = osp_path_join(o->common.run, name);
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

static osp_status setup(void *ctx, bool *busy)
{
    trainer *tr = ctx;
    const osp_dit_train_opts *o = tr->o;
    osp_trainer *core = &tr->core;
    tr->batch = o->common.batch;
    tr->accum = o->accum;
    tr->seed = o->common.seed;
    tr->ema_decay = o->ema;
    char *ckpt = NULL;
    if (osp_trainer_begin(core, o->init != NULL, "--init MODEL", busy, &ckpt))
        return osp_error_code();
    if (ckpt)
        tr->model_dir = osp_path_join(ckpt, "model");
    else
        tr->model_dir = o->config ? stage_folder(tr) : strdup(o->init);
    if (!tr->model_dir) {
        free(ckpt);
        return osp_error_code() ? osp_error_code() : osp_error_nomem("path", strlen(o->init));
    }
    osp_status st = ckpt ? read_state(tr, ckpt, core->start_step) : OSP_OK;
    char *cfg = st || tr->config ? NULL : osp_path_join(tr->model_dir, "config.json");
    if (!st && !tr->config && !(tr->config = cfg ? read_text(cfg, &tr->config_len) : NULL))
        st = osp_error_code();
    free(cfg);
    if (!st && !(tr->model = osp_latte_load(tr->model_dir, o->common.device, false)))
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
    if (!st)
        st = osp_trainer_init_opt(core, &o->adamw, tr->params.tensors, tr->params.names,
                                  tr->params.n, ckpt);
    if (!st && tr->ema_decay > 0)
        st = osp_ema_init(&tr->ema, tr->ema_decay, tr->params.n, tr->params.tensors);
    if (!st && ckpt && tr->ema_decay > 0)
        st = osp_checkpoint_load_ema(ckpt, &tr->ema, tr->params.names);
    if (!st && ckpt && core->opt.step != core->start_step)
        st = osp_error(OSP_ERR_DATA, "%s/optimizer.safetensors: step %lld, expected %lld", ckpt,
                       (long long)core->opt.step, (long long)core->start_step);
    if (st && ckpt)
        osp_error_context("cannot resume from %s", ckpt);
    free(ckpt);
    if (!st)
        st = osp_dit_data_open(&tr->data, o->common.data, osp_latte_get_config(tr->model));
    if (!st)
        st = osp_dit_sampler_init(&tr->sampler, &tr->data, tr->seed, tr->batch);
    osp_diffusion_init(&tr->sched);
    if (!st && core->start_step < o->common.max_steps)
        osp_log_info("training %s from step %lld to %lld on %zu clips%s",
                     core->start_step || !o->config ? tr->model_dir : o->config,
                     (long long)core->start_step, (long long)o->common.max_steps, tr->data.n,
                     tr->data.n_img ? " (joint images)" : "");
    return st;
}

static void teardown(void *ctx)
{
    trainer *tr = ctx;
    osp_dit_sampler_free(&tr->sampler);
    osp_dit_data_close(&tr->data);
    osp_ema_free(&tr->ema);
    if (tr->params.tensors)
        osp_dit_params_zero_grad(&tr->params);
    osp_dit_params_free(&tr->params);
    osp_latte_free(tr->model);
    free(tr->config);
    free(tr->model_dir);
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

static void log_metrics(const trainer *tr, int64_t step, const step_stats *s)
{
    FILE *f = tr->o->common.metrics;
    if (!f || !tr->core.lead)
        return;
    int64_t samples = step * tr->accum * tr->batch * tr->core.dist.size;
    fprintf(f, "{\"step\": %" PRId64 ", \"epoch\": %" PRId64 ", \"loss\": %.9g, \"mse\": %.9g, "
               "\"vb\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"samples_per_s\": %.4g, "
               "\"max_rss_mb\": %.1f}\n",
            step, samples / (int64_t)tr->data.n, s->loss, s->mse, s->vb, s->lr, s->grad_norm,
            (double)(tr->batch * tr->accum * tr->core.dist.size) / fmax(s->seconds, 1e-9),
            osp_train_max_rss_mb());
    fflush(f);
}

/* Runs and logs step `step`. */
static osp_status train_step(void *ctx, int64_t step)
{
    trainer *tr = ctx;
    const osp_dist *dist = &tr->core.dist;
    step_stats s = {0};
    double t0 = osp_train_clock();
    int64_t B = tr->batch;
    double *mse = calloc((size_t)B, sizeof *mse), *vb = calloc((size_t)B, sizeof *vb);
    int64_t *t = calloc((size_t)B, sizeof *t);
    osp_status st = mse && vb && t ? OSP_OK : osp_error_nomem("step", (unsigned long long)B * 24);
    osp_dit_params_zero_grad(&tr->params);
    for (int64_t a = 0; !st && a < tr->accum; a++) {
        osp_pool_push();
        osp_dit_batch b;
        osp_diffusion_terms terms = {.mse = mse, .vb = vb};
        int64_t k = ((step - 1) * tr->accum + a) * dist->size + dist->rank;
        st = osp_dit_sampler_batch(&tr->sampler, k, &b, t);
        st = st ? st : osp_dit_micro_step(tr->model, &tr->sched, &b, 1.0 / (double)tr->accum,
                                          &terms);
        for (int64_t i = 0; !st && i < B; i++) {
            s.mse += mse[i];
            s.vb += vb[i];
        }
        s.loss += terms.loss_mean;
        osp_pool_pop();
    }
    free(mse);
    free(vb);
    free(t);
    if (st)
        return st;
    s.loss /= (double)tr->accum;
    s.mse /= (double)(tr->accum * B);
    s.vb /= (double)(tr->accum * B);
    if (osp_dist_mean_f64(dist, &s.loss, 3)) /* loss, mse, vb */
        return osp_error_code();
    osp_tensor **grads = NULL;
    if (osp_train_reduce_grads(dist, tr->params.tensors, tr->params.n,
                               tr->o->common.max_grad_norm, &grads, &s.grad_norm))
        return osp_error_code();
    s.lr = lr_at(tr->o, step);
    st = isfinite(s.loss) ? osp_adamw_step(&tr->core.opt, tr->params.tensors, grads, s.lr)
                          : osp_error(OSP_ERR_RUNTIME, "step %lld: the loss is not finite",
                                      (long long)step);
    free(grads);
    osp_dit_params_zero_grad(&tr->params);
    if (!st && tr->core.zero.n)
        st = osp_zero_share(&tr->core.zero);
    if (!st && tr->ema_decay > 0)
        st = osp_ema_update(&tr->ema, tr->params.tensors);
    s.seconds = osp_train_clock() - t0;
    if (!st)
        log_metrics(tr, step, &s);
    return st;
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
    osp_tensor **ema = tr->ema_decay > 0 ? ema_tensors(tr) : NULL;
    if (!ema && tr->ema_decay > 0)
        return osp_error_code();
    osp_checkpoint c = {
        .config_text = tr->config, .config_len = tr->config_len,
        .model = osp_latte_params(tr->model), .names = tr->params.names, .ema = ema,
    };
    osp_status st = osp_trainer_save(&tr->core, step, &c, state_json(tr, step));
    free(ema);
    return st;
}

osp_status osp_dit_train(const osp_dit_train_opts *o, bool *busy)
{
    static const osp_trainer_ops ops = {setup, train_step, save, teardown};
    trainer tr = {.o = o};
    return osp_trainer_run(&tr.core, &o->common, &ops, &tr, busy);
}
