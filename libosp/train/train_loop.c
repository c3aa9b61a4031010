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

osp_status osp_train_begin(osp_train_run *run, const char *dir, const osp_dist *dist,
                           bool resume, bool have_init, const char *init_hint, bool *busy,
                           int64_t *start, char **ckpt)
{
    *start = 0;
    *ckpt = NULL;
    /* rank 0 takes the lock and finds the latest checkpoint; the others
     * only read the folder */
    if (dist->rank == 0 && (osp_train_run_open(run, dir, busy) || osp_train_run_latest(run, start)))
        return osp_error_code();
    if (dist->rank != 0 && !(run->dir = strdup(dir)))
        return osp_error_nomem("path", strlen(dir));
    if (osp_dist_bcast_i64(dist, start, 1))
        return osp_error_code();
    if (*start == 0)
        return have_init ? OSP_OK
                         : osp_error(OSP_ERR_USAGE, "%s has no checkpoint: give %s to start",
                                     dir, init_hint);
    if (!resume)
        return osp_error(OSP_ERR_USAGE, "%s already holds checkpoint-%lld: pass --resume to "
                         "continue that run, or use another run folder", dir, (long long)*start);
    return (*ckpt = osp_train_run_checkpoint_dir(run, *start)) ? OSP_OK : osp_error_code();
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

cJSON *osp_train_state_read(const char *ckpt, int64_t step, const osp_dist *dist)
{
    char *file = osp_path_join(ckpt, "train_state.json");
    size_t len;
    char *text = file ? osp_read_text_file(file, MAX_STATE_BYTES, "a run state", &len) : NULL;
    cJSON *j = text ? cJSON_ParseWithLength(text, len) : NULL;
    osp_status st = text ? OSP_OK : osp_error_code();
    int64_t saved = 0, world = 0;
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
    free(text);
    free(file);
    if (st) {
        cJSON_Delete(j);
        return NULL;
    }
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

osp_status osp_train_save(osp_train_run *run, int64_t step, const osp_checkpoint *c,
                          int64_t keep)
{
    osp_status st = osp_train_run_save(run, step, c);
    if (!st)
        st = osp_train_run_prune(run, keep);
    if (!st)
        osp_log_info("saved %s/checkpoint-%lld", run->dir, (long long)step);
    return st;
}

osp_status osp_train_loop_run(const osp_train_loop *l)
{
    bool lead = l->dist->rank == 0;
    int64_t step = l->start;
    if (step >= l->max_steps)
        osp_log_info("%s is at step %lld, --max-steps %lld: nothing to do", l->run,
                     (long long)step, (long long)l->max_steps);
    osp_status st = OSP_OK;
    osp_progress bar;
    osp_progress_start(&bar, "train", lead && step < l->max_steps ? l->max_steps - step : 0);
    while (!st && step < l->max_steps) {
        if ((st = l->step(l->ctx, step + 1)))
            break;
        step++;
        osp_progress_step(&bar, 1);
        bool signalled = osp_dist_any(l->dist, l->stop && *l->stop);
        bool spent = l->time_budget > 0 && osp_train_clock() - l->started >= l->time_budget;
        bool stopping = signalled || osp_dist_any(l->dist, spent);
        bool due = step % l->checkpoint_every == 0 || step == l->max_steps || stopping;
        if (due && lead)
            st = l->save(l->ctx, step);
        else if (due && l->serve)
            st = l->serve(l->ctx, step);
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
