/* checkpoint.c — see checkpoint.h. */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/ops.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

#define PREFIX "checkpoint-"
#define TMP_PREFIX ".checkpoint-"
#define TMP_SUFFIX ".tmp"

/* A malloc'd formatted string (NULL + OSP_ERR_NOMEM). */
static char *str_printf(const char *fmt, ...) OSP_PRINTF(1, 2);
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!p) {
        osp_error_nomem("path", (unsigned long long)len + 1);
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(p, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return p;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static osp_status rmtree(const char *path)
{
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return osp_error(OSP_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    return OSP_OK;
}

static osp_status sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return osp_error(OSP_ERR_IO, "%s: %s", dir, strerror(e));
    }
    close(fd);
    return OSP_OK;
}

/* step of "checkpoint-<digits>" (or the temporary form), else -1 */
static int64_t step_of(const char *name, const char *prefix, const char *suffix)
{
    size_t lp = strlen(prefix), ls = strlen(suffix), n = strlen(name);
    if (n <= lp + ls || strncmp(name, prefix, lp) != 0 || strcmp(name + n - ls, suffix) != 0)
        return -1;
    int64_t step = 0;
    for (size_t i = lp; i < n - ls; i++) {
        if (name[i] < '0' || name[i] > '9' || step > (INT64_MAX - 9) / 10)
            return -1;
        step = step * 10 + (name[i] - '0');
    }
    return step;
}

/* Calls fn for every checkpoint (or temporary) folder of the run. */
static osp_status scan(const osp_train_run *r, bool temporary,
                       osp_status (*fn)(const osp_train_run *, const char *, int64_t, void *), void *ctx)
{
    DIR *dp = opendir(r->dir);
    if (!dp)
        return osp_error(OSP_ERR_IO, "%s: %s", r->dir, strerror(errno));
    osp_status st = OSP_OK;
    struct dirent *e;
    while (!st && (e = readdir(dp))) {
        int64_t step = temporary ? step_of(e->d_name, TMP_PREFIX, TMP_SUFFIX)
                                 : step_of(e->d_name, PREFIX, "");
        if (step >= 0)
            st = fn(r, e->d_name, step, ctx);
    }
    closedir(dp);
    return st;
}

static osp_status remove_stale(const osp_train_run *r, const char *name, int64_t step, void *ctx)
{
    (void)step, (void)ctx;
    char *p = str_printf("%s/%s", r->dir, name);
    osp_status st = p ? rmtree(p) : osp_error_code();
    free(p);
    return st;
}

osp_status osp_train_run_open(osp_train_run *r, const char *dir, bool *busy)
{
    *busy = false;
    r->lock_fd = -1;
    if (!(r->dir = strdup(dir)))
        return osp_error_nomem("path", strlen(dir));
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        osp_error(OSP_ERR_IO, "cannot create the run folder %s: %s", dir, strerror(errno));
        goto fail;
    }
    char *lock = str_printf("%s/lock", dir);
    if (!lock)
        goto fail;
    r->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (r->lock_fd < 0) {
        osp_error(OSP_ERR_IO, "%s: %s", lock, strerror(errno));
        free(lock);
        goto fail;
    }
    if (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        *busy = errno == EWOULDBLOCK;
        osp_error(OSP_ERR_IO, "%s: %s", lock,
                  *busy ? "another osp-train run holds this run folder" : strerror(errno));
        free(lock);
        goto fail;
    }
    free(lock);
    if (scan(r, true, remove_stale, NULL))
        goto fail;
    return OSP_OK;
fail:
    osp_train_run_close(r);
    return osp_error_code();
}

void osp_train_run_close(osp_train_run *r)
{
    if (r->lock_fd >= 0)
        close(r->lock_fd); /* drops the flock */
    r->lock_fd = -1;
    free(r->dir);
    r->dir = NULL;
}

static osp_status note_max(const osp_train_run *r, const char *name, int64_t step, void *ctx)
{
    (void)r, (void)name;
    int64_t *max = ctx;
    if (step > *max)
        *max = step;
    return OSP_OK;
}

osp_status osp_train_run_latest(const osp_train_run *r, int64_t *step)
{
    *step = 0;
    return scan(r, false, note_max, step);
}

char *osp_train_run_checkpoint_dir(const osp_train_run *r, int64_t step)
{
    return str_printf("%s/" PREFIX "%" PRId64, r->dir, step);
}

/* ---- saving ---- */

static osp_status write_text(const char *dir, const char *name, const char *text, size_t len)
{
    char *p = str_printf("%s/%s", dir, name);
    osp_atomic_file f;
    osp_status st = p ? osp_atomic_open(&f, p) : osp_error_code();
    if (!st) {
        st = osp_atomic_write(&f, text, len);
        st = st ? st : osp_atomic_commit(&f);
        osp_atomic_abort(&f);
    }
    free(p);
    return st;
}

/* The writer's data source for tensors of any device: entry k as the
 * inner source hands it (or as listed), copied to the host one entry at a
 * time when it lives on a device. */
typedef struct host_source {
    osp_st_fetch inner;
    void *ctx;
    osp_tensor *copy; /* the last entry's host copy */
} host_source;

static osp_status fetch_to_host(void *ctx, int k, osp_tensor **t)
{
    host_source *h = ctx;
    osp_release(h->copy);
    h->copy = NULL;
    if (h->inner && h->inner(h->ctx, k, t))
        return osp_error_code();
    if ((*t)->storage->device == OSP_DEVICE_CPU)
        return OSP_OK;
    if (!(h->copy = osp_pool_take(osp_to_device(*t, OSP_DEVICE_CPU))))
        return osp_error_code();
    *t = h->copy;
    return OSP_OK;
}

/* osp_safetensors_write_fetched for tensors of any device. */
static osp_status write_fetched(const char *path, int n, const char *const *names,
                                osp_tensor *const *tensors, const char *const *meta,
                                osp_st_fetch inner, void *ctx)
{
    host_source h = {.inner = inner, .ctx = ctx};
    osp_status st = osp_safetensors_write_fetched(path, n, names, tensors, meta, fetch_to_host, &h);
    osp_release(h.copy);
    return st;
}

osp_status osp_checkpoint_write_tensors(const char *path, int n, const char *const *names,
                                        osp_tensor *const *tensors, const char *const *meta)
{
    return write_fetched(path, n, names, tensors, meta, NULL, NULL);
}

/* DIR/SUB/: config.json and diffusion_pytorch_model.safetensors. */
static osp_status write_model(const char *dir, const char *sub, const osp_checkpoint *c,
                              osp_tensor *const *tensors)
{
    char *folder = str_printf("%s/%s", dir, sub);
    char *p = folder ? str_printf("%s/%s", folder, "diffusion_pytorch_model.safetensors") : NULL;
    const char *meta[] = {"format", "pt", NULL};
    osp_status st = p ? OSP_OK : osp_error_code();
    if (!st && mkdir(folder, 0777) != 0)
        st = osp_error(OSP_ERR_IO, "cannot create %s: %s", folder, strerror(errno));
    if (!st)
        st = write_text(folder, "config.json", c->config_text, c->config_len);
    if (!st)
        st = osp_checkpoint_write_tensors(p, (int)c->model->n,
                                          (const char *const *)c->model->names, tensors, meta);
    if (!st)
        st = sync_dir(folder);
    free(p);
    free(folder);
    return st;
}

osp_status osp_checkpoint_write_optimizer(const char *dir, const char *file, const osp_adamw *o,
                                          const char *const *tensor_names,
                                          const osp_moment_source *moments)
{
    size_t n = 2 * o->n;
    char **names = calloc(n ? n : 1, sizeof *names);
    osp_tensor **ts = calloc(n ? n : 1, sizeof *ts);
    char *p = str_printf("%s/%s", dir, file);
    osp_status st = names && ts && p ? OSP_OK : osp_error_nomem("optimizer names", n * 16);
    for (size_t i = 0; !st && i < o->n; i++) {
        names[2 * i] = str_printf("%s%s", "exp_avg.", tensor_names[i]);
        names[2 * i + 1] = str_printf("%s%s", "exp_avg_sq.", tensor_names[i]);
        bool held = o->exp_avg[i] != NULL;
        ts[2 * i] = held ? o->exp_avg[i] : moments ? moments->like[i] : NULL;
        ts[2 * i + 1] = held ? o->exp_avg_sq[i] : moments ? moments->like[i] : NULL;
        if (!names[2 * i] || !names[2 * i + 1])
            st = osp_error_code();
        else if (!ts[2 * i])
            st = osp_error(OSP_ERR_RUNTIME, "%s: no moments of %s to write", file,
                           tensor_names[i]);
    }
    char vals[6][40];
    snprintf(vals[0], sizeof vals[0], "%" PRId64, o->step);
    snprintf(vals[1], sizeof vals[1], "%.17g", o->h.lr);
    snprintf(vals[2], sizeof vals[2], "%.17g", o->h.beta1);
    snprintf(vals[3], sizeof vals[3], "%.17g", o->h.beta2);
    snprintf(vals[4], sizeof vals[4], "%.17g", o->h.eps);
    snprintf(vals[5], sizeof vals[5], "%.17g", o->h.weight_decay);
    const char *meta[] = {"step", vals[0], "lr", vals[1], "beta1", vals[2], "beta2", vals[3],
                          "eps", vals[4], "weight_decay", vals[5], NULL};
    if (!st)
        st = write_fetched(p, (int)n, (const char *const *)names, ts, meta,
                           moments ? moments->fetch : NULL, moments ? moments->ctx : NULL);
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    free(ts);
    free(p);
    return st;
}

osp_status osp_train_run_save(osp_train_run *r, int64_t step, const osp_checkpoint *c)
{
    char *tmp = str_printf("%s/" TMP_PREFIX "%" PRId64 TMP_SUFFIX, r->dir, step);
    char *final = osp_train_run_checkpoint_dir(r, step);
    osp_status st = tmp && final ? rmtree(tmp) : osp_error_code();
    if (!st && mkdir(tmp, 0777) != 0)
        st = osp_error(OSP_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    if (!st)
        st = write_model(tmp, "model", c, c->model->tensors);
    if (!st && c->ema)
        st = write_model(tmp, "ema", c, c->ema);
    if (!st)
        st = osp_checkpoint_write_optimizer(tmp, "optimizer.safetensors", c->opt, c->names,
                                            c->moments);
    if (!st && c->extra)
        st = c->extra(c->extra_ctx, tmp);
    if (!st)
        st = write_text(tmp, "train_state.json", c->state_json, strlen(c->state_json));
    if (!st)
        st = sync_dir(tmp);
    if (!st && rename(tmp, final) != 0)
        st = osp_error(OSP_ERR_IO, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
    if (!st)
        st = sync_dir(r->dir);
    if (st && tmp) {
        osp_status keep = st; /* report the first failure, not the clean-up's */
        rmtree(tmp);
        st = keep;
    }
    free(tmp);
    free(final);
    return st;
}

osp_status osp_model_folder_publish(const char *dir, const char *config_text, size_t config_len,
                                    const osp_params *model)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    struct stat sb;
    char *final = str_printf("%.*s", (int)n, dir);
    char *stage = final ? str_printf("%s.tmp.XXXXXX", final) : NULL;
    char *built = stage ? str_printf("%s/model", stage) : NULL;
    char *parent = final ? strdup(final) : NULL;
    osp_status st = built && parent ? OSP_OK : osp_error_nomem("path", n);
    bool staged = false;
    if (!st && lstat(final, &sb) == 0)
        st = osp_error(OSP_ERR_IO, "%s: already exists (not overwritten)", final);
    if (!st && !(staged = mkdtemp(stage) != NULL))
        st = osp_error(OSP_ERR_IO, "cannot create %s: %s", final, strerror(errno));
    if (staged) /* mkdtemp filled in the name: STAGE/model, renamed to DIR */
        snprintf(built, strlen(built) + 1, "%s/model", stage);
    osp_checkpoint c = {.config_text = config_text, .config_len = config_len, .model = model};
    if (!st)
        st = write_model(stage, "model", &c, model->tensors);
    if (!st && rename(built, final) != 0)
        st = osp_error(OSP_ERR_IO, "cannot rename %s to %s: %s", built, final, strerror(errno));
    if (!st)
        st = sync_dir(dirname(parent));
    if (staged) {
        osp_status keep = st; /* report the first failure, not the clean-up's */
        rmtree(stage);
        st = keep;
    }
    free(parent);
    free(built);
    free(stage);
    free(final);
    return st;
}

typedef struct step_list {
    int64_t *steps;
    size_t n, cap;
} step_list;

static osp_status collect(const osp_train_run *r, const char *name, int64_t step, void *ctx)
{
    (void)r, (void)name;
    step_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        int64_t *s = realloc(l->steps, cap * sizeof *s);
        if (!s)
            return osp_error_nomem("checkpoint list", cap * sizeof *s);
        l->steps = s;
        l->cap = cap;
    }
    l->steps[l->n++] = step;
    return OSP_OK;
}

static int by_step(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

osp_status osp_train_run_prune(osp_train_run *r, int64_t keep)
{
    if (keep <= 0)
        return OSP_OK;
    step_list l = {0};
    osp_status st = scan(r, false, collect, &l);
    if (!st)
        qsort(l.steps, l.n, sizeof *l.steps, by_step);
    for (size_t i = 0; !st && l.n > (size_t)keep && i < l.n - (size_t)keep; i++) {
        /* renamed away first, so a crash mid-delete leaves a stale temporary
         * folder (removed by the next run), never a half checkpoint */
        char *p = osp_train_run_checkpoint_dir(r, l.steps[i]);
        char *tmp = str_printf("%s/" TMP_PREFIX "%" PRId64 TMP_SUFFIX, r->dir, l.steps[i]);
        st = p && tmp ? OSP_OK : osp_error_code();
        if (!st && rename(p, tmp) != 0)
            st = osp_error(OSP_ERR_IO, "cannot rename %s: %s", p, strerror(errno));
        if (!st)
            st = rmtree(tmp);
        free(p);
        free(tmp);
    }
    free(l.steps);
    return st;
}

/* ---- loading the optimizer ---- */

/* Tensor PREFIX + NAME of an open file into dst (same f32 shape). */
static osp_status load_named(osp_safetensors *st, const char *file, const char *prefix,
                             const char *name, osp_tensor *dst)
{
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    const osp_st_entry *e = osp_safetensors_find(st, key);
    if (!e)
        return osp_error(OSP_ERR_DATA, "%s: no tensor %s", file, key);
    bool ok = e->dtype == OSP_F32 && e->ndim == dst->ndim;
    for (int d = 0; ok && d < e->ndim; d++)
        ok = e->shape[d] == dst->shape[d];
    if (!ok) {
        char buf[96];
        return osp_error(OSP_ERR_DATA, "%s: %s must be f32 %s", file, key,
                         osp_shape_str(dst, buf, sizeof buf));
    }
    osp_tensor *t = osp_safetensors_get(st, key);
    return t ? osp_copy_into(dst, t) : osp_error_code();
}

osp_status osp_checkpoint_load_optimizer(const char *dir, osp_adamw *opt,
                                         const char *const *names)
{
    return osp_checkpoint_load_optimizer_file(dir, "optimizer.safetensors", opt, names);
}

osp_status osp_checkpoint_load_optimizer_file(const char *dir, const char *name, osp_adamw *opt,
                                              const char *const *names)
{
    char *file = str_printf("%s/%s", dir, name);
    osp_safetensors *st = file ? osp_safetensors_open(file) : NULL;
    osp_status s = st ? OSP_OK : osp_error_code();
    const char *step = st ? osp_safetensors_metadata(st, "step") : NULL;
    char *end = NULL;
    long long k = step ? strtoll(step, &end, 10) : -1;
    if (!s && (!step || *end || k < 0))
        s = osp_error(OSP_ERR_DATA, "%s: metadata `step` missing or not a count", file);
    osp_pool_push();
    for (size_t i = 0; !s && i < opt->n; i++) {
        if (!opt->exp_avg[i])
            continue; /* another rank's */
        s = load_named(st, file, "exp_avg.", names[i], opt->exp_avg[i]);
        if (!s)
            s = load_named(st, file, "exp_avg_sq.", names[i], opt->exp_avg_sq[i]);
    }
    osp_pool_pop();
    if (!s)
        opt->step = k;
    osp_safetensors_close(st);
    free(file);
    return s;
}

osp_status osp_checkpoint_load_ema(const char *dir, osp_ema *ema, const char *const *names)
{
    char *file = str_printf("%s/%s", dir, "ema/diffusion_pytorch_model.safetensors");
    osp_safetensors *st = file ? osp_safetensors_open(file) : NULL;
    osp_status s = st ? OSP_OK : osp_error_code();
    osp_pool_push();
    for (size_t i = 0; !s && i < ema->n; i++)
        s = load_named(st, file, "", names[i], ema->shadow[i]);
    osp_pool_pop();
    osp_safetensors_close(st);
    free(file);
    return s;
}
