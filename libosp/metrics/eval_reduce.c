/* eval_reduce.c — see eval_reduce.h. */
#include "eval_reduce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static osp_status frames_add(osp_eval_frames *f, const double *v, int64_t n)
{
    if (n > f->cap) {
        int64_t cap = f->cap ? f->cap : 16;
        while (cap < n)
            cap *= 2;
        double *sum = realloc(f->sum, (size_t)cap * sizeof *sum);
        if (sum)
            f->sum = sum;
        int64_t *count = sum ? realloc(f->count, (size_t)cap * sizeof *count) : NULL;
        if (!count)
            return osp_error_nomem("per-frame sums", (unsigned long long)cap * sizeof *count);
        f->count = count;
        f->cap = cap;
    }
    for (int64_t t = f->len; t < n; t++) {
        f->sum[t] = 0;
        f->count[t] = 0;
    }
    if (n > f->len)
        f->len = n;
    for (int64_t t = 0; t < n; t++) {
        f->sum[t] += v[t];
        f->count[t]++;
    }
    return OSP_OK;
}

static void frames_free(osp_eval_frames *f)
{
    free(f->sum);
    free(f->count);
    memset(f, 0, sizeof *f);
}

void osp_eval_series_init(osp_eval_series *s, int64_t batch_size)
{
    memset(s, 0, sizeof *s);
    s->batch_size = batch_size;
}

void osp_eval_series_free(osp_eval_series *s)
{
    frames_free(&s->all);
    frames_free(&s->batch);
}

/* Adds the finished batch's per-frame means to the batched score. */
static void close_batch(osp_eval_series *s)
{
    for (int64_t t = 0; t < s->batch.len; t++) {
        s->batch_mean_sum += s->batch.sum[t] / (double)s->batch.count[t];
        s->batch_mean_count++;
    }
    s->batch.len = 0;
    s->in_batch = 0;
}

osp_status osp_eval_series_add(osp_eval_series *s, const double *v, int64_t n)
{
    if (frames_add(&s->all, v, n))
        return osp_error_code();
    for (int64_t t = 0; t < n; t++)
        s->value_sum += v[t];
    s->value_count += n;
    if (s->batch_size <= 0)
        return OSP_OK;
    if (frames_add(&s->batch, v, n))
        return osp_error_code();
    if (++s->in_batch == s->batch_size)
        close_batch(s);
    return OSP_OK;
}

double osp_eval_series_mean(osp_eval_series *s)
{
    if (s->batch_size <= 0)
        return s->value_count ? s->value_sum / (double)s->value_count : NAN;
    if (s->in_batch)
        close_batch(s);
    return s->batch_mean_count ? s->batch_mean_sum / (double)s->batch_mean_count : NAN;
}

int64_t osp_eval_series_frames(const osp_eval_series *s) { return s->all.len; }

double osp_eval_series_frame_mean(const osp_eval_series *s, int64_t t)
{
    return t >= 0 && t < s->all.len && s->all.count[t] ? s->all.sum[t] / (double)s->all.count[t]
                                                       : NAN;
}
