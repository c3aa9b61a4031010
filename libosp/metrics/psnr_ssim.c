/* psnr_ssim.c — PSNR and SSIM over whole videos (metrics.h): every
 * colour plane of every frame of every video pair is one task, and the
 * tasks are spread over the threads in a single parallel loop (one wait
 * for the slowest thread per batch, not one per video and metric). A task
 * sums PSNR's squared differences over its plane first, a streaming read
 * that leaves the plane in cache for SSIM's column strips. The per-frame
 * values are combined from the per-plane ones in a fixed order, so they do
 * not depend on the number of threads. */
#include "metrics.h"
#include "frames_check.h"
#include "plane_metrics.h"

#include <math.h>
#include <stdlib.h>

/* One plane pair. */
typedef struct plane_task {
    const uint8_t *a, *b;
    int64_t video;
} plane_task;

/* Checks the pairs and lists their planes (frame-major, then channel). */
static osp_status list_planes(const char *name, const osp_tensor *const *x,
                              const osp_tensor *const *y, int64_t n, bool ssim,
                              plane_task **tasks, int64_t *count)
{
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (metrics_check_frames(name, x[i], y[i]))
            return osp_error_code();
        int64_t C = x[i]->shape[1];
        if (ssim && C != 1 && C != 3)
            return osp_error(OSP_ERR_DATA, "ssim: frames must have 3 (RGB) or 1 channel, got %lld",
                             (long long)C);
        total += x[i]->shape[0] * C;
    }
    *tasks = malloc((size_t)(total + 1) * sizeof **tasks);
    if (!*tasks)
        return osp_error_nomem("plane list", (unsigned long long)(total + 1) * sizeof **tasks);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t elem = osp_dtype_size(x[i]->dtype);
        const uint8_t *a = osp_data(x[i]), *b = osp_data(y[i]);
        for (int64_t t = 0; t < x[i]->shape[0]; t++)
            for (int64_t c = 0; c < x[i]->shape[1]; c++) {
                size_t at = (size_t)(t * x[i]->stride[0] + c * x[i]->stride[1]) * elem;
                size_t bt = (size_t)(t * y[i]->stride[0] + c * y[i]->stride[1]) * elem;
                (*tasks)[k++] = (plane_task){a + at, b + bt, i};
            }
    }
    *count = total;
    return OSP_OK;
}

/* Per-plane sums (sq) and SSIM means (ss) of every task; NULL skips. */
static osp_status run_planes(const osp_tensor *const *x, const plane_task *tasks, int64_t count,
                             double *sq, double *ss)
{
    size_t scratch = metrics_ssim_scratch_bytes();
    int failed = 0;
#pragma omp parallel
    {
        double *buf = ss ? aligned_alloc(64, scratch) : NULL;
        if (ss && !buf) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic)
        for (int64_t k = 0; k < count; k++) {
            const osp_tensor *v = x[tasks[k].video];
            int64_t H = v->shape[2], W = v->shape[3];
            size_t elem = osp_dtype_size(v->dtype);
            if (sq)
                sq[k] = metrics_sq_diff_sum(tasks[k].a, tasks[k].b, H * W, elem);
            if (ss && buf)
                ss[k] = H < SSIM_MIN_SIDE || W < SSIM_MIN_SIDE
                            ? NAN /* the reference's mean over an empty valid region */
                            : metrics_ssim_plane(tasks[k].a, tasks[k].b, elem, H, W, buf);
        }
        free(buf);
    }
    return failed ? osp_error_nomem("ssim scratch", scratch) : OSP_OK;
}

osp_status osp_psnr_ssim(const osp_tensor *const *x, const osp_tensor *const *y, int64_t n,
                         double *const *psnr, double *const *ssim)
{
    const char *name = psnr && ssim ? "psnr+ssim" : psnr ? "psnr" : "ssim";
    plane_task *tasks = NULL;
    int64_t count = 0;
    if (list_planes(name, x, y, n, ssim != NULL, &tasks, &count))
        return osp_error_code();
    size_t bytes = (size_t)(count + 1) * sizeof(double);
    double *sq = psnr ? malloc(bytes) : NULL, *ss = ssim ? malloc(bytes) : NULL;
    osp_status st = (psnr && !sq) || (ssim && !ss) ? osp_error_nomem("plane values", bytes)
                                                   : run_planes(x, tasks, count, sq, ss);
    for (int64_t i = 0, k = 0; i < n && !st; i++) {
        int64_t T = x[i]->shape[0], C = x[i]->shape[1];
        for (int64_t t = 0; t < T; t++, k += C) {
            double sum_sq = 0, sum_ss = 0;
            for (int64_t c = 0; c < C; c++) {
                sum_sq += sq ? sq[k + c] : 0;
                sum_ss += ss ? ss[k + c] : 0;
            }
            if (psnr)
                psnr[i][t] = metrics_psnr_from_sum(sum_sq, osp_numel(x[i]) / T);
            if (ssim)
                ssim[i][t] = sum_ss / (double)C;
        }
    }
    free(sq);
    free(ss);
    free(tasks);
    return st;
}

osp_status osp_psnr(const osp_tensor *x, const osp_tensor *y, double *out)
{
    return osp_psnr_ssim(&x, &y, 1, &out, NULL);
}

osp_status osp_ssim(const osp_tensor *x, const osp_tensor *y, double *out)
{
    return osp_psnr_ssim(&x, &y, 1, NULL, &out);
}
