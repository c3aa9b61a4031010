/* eval_reduce.h — the reduction of per-frame metric values over videos
 * (spec/eval.md 1.3), in constant memory per frame index: videos are added
 * one at a time as they are scored.
 *
 * Per frame index t the mean over the videos that have frame t (the
 * reference's `value` dict). The overall score is, by default, the plain
 * mean over every (video, frame) value; with a reference batch size B it is
 * what eval_common_metric.py prints with --batch_size B: consecutive videos
 * form batches of B (the last may be shorter), each batch contributes its
 * per-frame means, and the score is the plain mean of all of those, so a
 * short last batch weighs more per video. NaN propagates either way. */
#ifndef OSP_EVAL_REDUCE_H
#define OSP_EVAL_REDUCE_H

#include <stdint.h>

#include "core/error.h"

typedef struct osp_eval_frames {
    double *sum;
    int64_t *count;
    int64_t len, cap;
} osp_eval_frames;

typedef struct osp_eval_series {
    osp_eval_frames all;   /* every video */
    osp_eval_frames batch; /* the reference batch being filled */
    int64_t batch_size;    /* 0 = plain mean */
    int64_t in_batch;
    double value_sum, batch_mean_sum; /* plain: over values; batched: over batch frame means */
    int64_t value_count, batch_mean_count;
} osp_eval_series;

/* batch_size: 0 for the plain mean, else the reference's --batch_size. */
void osp_eval_series_init(osp_eval_series *s, int64_t batch_size);
void osp_eval_series_free(osp_eval_series *s);
/* One video's values v[0..n). */
osp_status osp_eval_series_add(osp_eval_series *s, const double *v, int64_t n);
/* The overall score (closes a partly filled reference batch first);
 * NaN when nothing was added. */
double osp_eval_series_mean(osp_eval_series *s);
/* Frame indices seen so far, and the mean at index t over the videos that
 * have it. */
int64_t osp_eval_series_frames(const osp_eval_series *s);
double osp_eval_series_frame_mean(const osp_eval_series *s, int64_t t);

#endif
