/* eval_score.h — osp-eval's scoring of one pair: load both sides, check
 * that they match, PSNR and SSIM of all their videos in one parallel call,
 * LPIPS and FloLPIPS per video, and the per-frame sums (eval_score.c). */
#ifndef OSP_TOOLS_EVAL_SCORE_H
#define OSP_TOOLS_EVAL_SCORE_H

#include "core/progress.h"
#include "metrics/eval_input.h"
#include "metrics/eval_reduce.h"
#include "metrics/flolpips.h"

#include <stdbool.h>
#include <stdint.h>

enum { M_PSNR, M_SSIM, M_LPIPS, M_FLOLPIPS, METRICS };

typedef struct evaluator {
    bool on[METRICS];
    osp_lpips *lpips;
    osp_pwcnet *pwc;
    osp_eval_options input;
    osp_eval_series total[METRICS]; /* every video (reference batch when asked) */
    int64_t pairs, videos, failed;
    osp_progress progress;
} evaluator;

/* One comparison: A and B's videos pairwise (a stream may hold several). */
typedef struct pair_result {
    int64_t videos, frames;
    osp_eval_series series[METRICS]; /* plain, over this pair's videos */
} pair_result;

void eval_pair_result_free(pair_result *r);

/* Scores pair (a, b) into r (zeroed first) and adds it to ev's totals;
 * a pair whose sides do not match adds nothing (OSP_ERR_DATA). */
osp_status eval_score_pair(evaluator *ev, const char *a, const char *b, pair_result *r);

#endif
