/* train_loop.c — see train_loop.h. */
#include "train_loop.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/log.h"
#include "core/path.h"
#include "core/progress.h"
#include "io/text_file.h"
#include "train/adamw.h"

/* train_state.json files are far below this. */
#define MAX_STATE_BYTES ((size_t)64 << 20)

double osp_train_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double osp_train_max_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

osp_status osp_train_state_int(const cJSON *state, const char *ckpt, const char *key,
                               int64_t min, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(state, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < (double)min || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != floor(v->valuedouble))
        return osp_error(OSP_ERR_DATA, "%s/train_state.json: `%s` missing or not an integer "
                         ">= %lld", ckpt, key, (long long)min);
    *out = (int64_t)v->valuedouble;
    return OSP_OK;
}

cJSON *osp_train_state_read(const char *ckpt, int64_t step, const osp_dist *dist,
                            uint64_t *seed, int64_t *batch)
{
    char *file = osp_path_join(ckpt, "train_state.json");
    size_t len;
    char *text = file ? osp_read_text_file(file, MAX_STATE_BYTES, "a run state", &len) : NULL;
    cJSON *j = text ? cJSON_ParseWithLength(text, len) : NULL;
    osp_status st = text ? OSP_OK : osp_error_code();
    int64_t saved = 0, world = 0, run_seed = 0;
    if (!st && !j)
        st = osp_error(OSP_ERR_DATA, "%s: not valid JSON", file);
    if (!st)
        st = osp_train_state_int(j, ckpt, "global_step", 0, &saved);
    if (!st && saved != step)
        st = osp_error(OSP_ERR_DATA, "%s: global_step %lld, but the folder says %lld", file,
                       (long long)saved, (long long)step);
    if (!st)
        st = osp_train_state_int(j, ckpt, "world_size", 1, &world);
    if (!st && world != dist->size)
        st = osp_error(OSP_ERR_USAGE, "%s: the run used %lld processes, this one %d (the data "
                       "order depends on it)", file, (long long)world, dist->size);
    if (!st)
        st = osp_train_state_int(j, ckpt, "seed", 0, &run_seed);
    if (!st)
        st = osp_train_state_int(j, ckpt, "batch", 1, batch);
    free(text);
    free(file);
    if (st) {
        cJSON_Delete(j);
        return NULL;
    }
    *seed = (uint64_t)run_seed;
    return j;
}

osp_status osp_train_reduce_grads(const osp_dist *dist, osp_tensor *const *params, size_t n,
                                  double max_norm, osp_tensor ***grads, double *norm)
{
    osp_tensor **g = malloc((n ? n : 1) * sizeof *g);
    if (!g)
        return osp_error_nomem("gradient list", n * sizeof *g);
    osp_status st = OSP_OK;
    for (size_t i = 0; i < n; i++) {
        g[i] = params[i]->grad;
        if (!st && g[i])
            st = osp_dist_mean(dist, g[i]);
    }
    *norm = NAN;
    if (!st)
        st = osp_clip_grad_norm(g, n, max_norm, norm);
    if (st) {
        free(g);
        g = NULL;
    }
    *grads = g;
    return st;
}

osp_status osp_trainer_begin(osp_trainer *t, bool have_init, const char *init_hint, bool *busy,
                             char **ckpt)
{
    const char *dir = t->o->run;
    t->start_step = 0;
    *ckpt = NULL;
    /* rank 0 takes the lock and finds the latest checkpoint; the others
     * only read the folder */
    if (t->lead && (osp_train_run_open(&t->run, dir, busy) ||
                    osp_train_run_latest(&t->run, &t->start_step)))
        return osp_error_code();
    if (!t->lead && !(t->run.dir = strdup(dir)))
        return osp_error_nomem("path", strlen(dir));
    if (osp_dist_bcast_i64(&t->dist, &t->start_step, 1))
        return osp_error_code();
    if (t->start_step == 0)
        return have_init ? OSP_OK
                         : osp_error(OSP_ERR_USAGE, "%s has no checkpoint: give %s to start",
                                     dir, init_hint);
    if (!t->o->resume)
        return osp_error(OSP_ERR_USAGE, "%s already holds checkpoint-%lld: pass --resume to "
                         "continue that run, or use another run folder", dir,
                         (long long)t->start_step);
    *ckpt = osp_train_run_checkpoint_dir(&t->run, t->start_step);
    return *ckpt ? OSP_OK : osp_error_code();
}

osp_status osp_trainer_init_opt(osp_trainer *t, const osp_adamw_hparams *h,
                                osp_tensor *const *params, const char *const *names, size_t n,
                                const char *ckpt)
{
    osp_status st = t->o->shard_optimizer && t->dist.size > 1
                        ? osp_zero_init(&t->zero, &t->dist, params, n)
                        : OSP_OK;
    st = st ? st : osp_adamw_init_held(&t->opt, h, n, params, t->zero.n ? t->zero.held : NULL);
    if (!st && ckpt)
        st = osp_checkpoint_load_optimizer(ckpt, &t->opt, names);
    return st;
}

osp_status osp_trainer_save(osp_trainer *t, int64_t step, osp_checkpoint *c, cJSON *state)
{
    cJSON_AddNumberToObject(state, "world_size", t->dist.size);
    char *text = cJSON_Print(state);
    cJSON_Delete(state);
    osp_moment_source moments = osp_zero_moments(&t->zero);
    c->opt = &t->opt;
    c->moments = t->zero.n ? &moments : NULL;
    c->state_json = text;
    osp_status st = text ? osp_train_run_save(&t->run, step, c)
                         : osp_error_nomem("train_state.json", 4096);
    if (!st)
        st = osp_train_run_prune(&t->run, t->o->keep);
    if (!st)
        osp_log_info("saved %s/checkpoint-%lld", t->run.dir, (long long)step);
    osp_zero_moments_done(&t->zero);
    free(text);
    return st;
}

static osp_status run_steps(osp_trainer *t, const osp_trainer_ops *ops, void *ctx)
{
    const osp_train_opts *o = t->o;
    int64_t step = t->start_step;
    if (step >= o->max_steps)
        osp_log_info("%s is at step %lld, --max-steps %lld: nothing to do", o->run,
                     (long long)step, (long long)o->max_steps);
    osp_status st = OSP_OK;
    osp_progress bar;
    osp_progress_start(&bar, "train", t->lead && step < o->max_steps ? o->max_steps - step : 0);
    while (!st && step < o->max_steps) {
        if ((st = ops->step(ctx, step + 1)))
            break;
        step++;
        osp_progress_step(&bar, 1);
        bool signalled = osp_dist_any(&t->dist, o->stop && *o->stop);
        bool spent = o->time_budget > 0 && osp_train_clock() - t->started >= o->time_budget;
        bool stopping = signalled || osp_dist_any(&t->dist, spent);
        bool due = step % o->checkpoint_every == 0 || step == o->max_steps || stopping;
        if (due && t->lead)
            st = ops->save(ctx, step);
        else if (due && t->zero.n)
            st = osp_zero_send_moments(&t->zero, &t->opt);
        if (st)
            break;
        if (stopping) {
            osp_log_info("stopping at step %lld (%s)", (long long)step,
                         signalled ? "signal" : "time budget");
            break;
        }
    }
    osp_progress_end(&bar);
    return st;
}

osp_status osp_trainer_run(osp_trainer *t, const osp_train_opts *o, const osp_trainer_ops *ops,
                           void *ctx, bool *busy)
{
    *t = (osp_trainer){.o = o, .dist = {.rank = 0, .size = 1}, .run = {.lock_fd = -1},
                       .started = osp_train_clock()};
    if (o->dist)
        t->dist = *o->dist;
    t->lead = t->dist.rank == 0;
    osp_status st = ops->setup(ctx, busy);
    if (!st)
        st = run_steps(t, ops, ctx);
    ops->teardown(ctx);
    osp_adamw_free(&t->opt);
    osp_zero_free(&t->zero);
    osp_train_run_close(&t->run);
    return st;
}
