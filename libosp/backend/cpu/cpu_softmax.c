/* cpu_softmax.c — softmax over the last axis and its backward, and the row
 * primitives the attention kernel shares (cpu_softmax.h). */
#include "cpu_kernels.h"
#include "cpu_softmax.h"
#include "cpu_vexp.h"

#include <math.h>
#include <string.h>

/* Rows are processed in parallel once the tensor is this large. */
#define PARALLEL_MIN_ELEMS (1 << 15)

ROW_CLONES float cpu_row_max(const float *x, int64_t n)
{
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

ROW_CLONES float cpu_row_exp_sum(float *dst, const float *src, int64_t n, float shift)
{
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++) {
        float e = exp_poly(src[i] - shift);
        dst[i] = e;
        sum += e;
    }
    return sum;
}

ROW_CLONES void cpu_row_scale(float *x, int64_t n, float s)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        x[i] *= s;
}

/* Σ a[i]·b[i] (float accumulation, vectorised). */
ROW_CLONES static float row_dot(const float *a, const float *b, int64_t n)
{
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

ROW_CLONES void cpu_row_softmax_backward(float *gx, const float *gy, const float *y, int64_t n)
{
    float d = row_dot(gy, y, n);
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        gx[i] = y[i] * (gy[i] - d);
}

/* Rows and row length of a tensor viewed as [rows, last axis]. */
static void rows_cols(const osp_tensor *t, int64_t *rows, int64_t *cols)
{
    *cols = t->shape[t->ndim - 1];
    *rows = *cols ? osp_numel(t) / *cols : 0;
}

osp_status cpu_softmax(const osp_node *n)
{
    int64_t rows, cols;
    rows_cols(n->in[0], &rows, &cols);
    const float *x = osp_f32(n->in[0]);
    float *y = osp_f32(n->out[0]);
#pragma omp parallel for schedule(static) if (rows * cols >= PARALLEL_MIN_ELEMS)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float sum = cpu_row_exp_sum(yr, xr, cols, cpu_row_max(xr, cols));
        cpu_row_scale(yr, cols, 1.0f / sum);
    }
    return OSP_OK;
}

osp_status cpu_softmax_backward(const osp_node *n)
{
    int64_t rows, cols;
    rows_cols(n->in[1], &rows, &cols);
    const float *gy = osp_f32(n->in[0]), *y = osp_f32(n->in[1]);
    float *gx = osp_f32(n->out[0]);
#pragma omp parallel for schedule(static) if (rows * cols >= PARALLEL_MIN_ELEMS)
    for (int64_t r = 0; r < rows; r++)
        cpu_row_softmax_backward(gx + r * cols, gy + r * cols, y + r * cols, cols);
    return OSP_OK;
}
