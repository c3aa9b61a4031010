/* cu_interp.h — the interpolation backward as a gather, for the CUDA
 * kernels (kernels/resample.cu).
 *
 * The forward reads, for each output index along an axis, `taps` input
 * indices with weights (tables idx[t·out + o], wt[t·out + o]). Its
 * backward as a scatter — each output adds its share into the inputs it
 * read, with atomicAdd on a GPU — sums every input's terms in whatever
 * order the threads happen to run, so the same gradient came out with
 * different bits from run to run. Here the host inverts each axis's
 * tables into, per input index, the list of (output, weight) that read it,
 * sorted by output then tap; a thread per input element then sums its
 * terms in that fixed order.
 *
 * Plain C, so that tests/unit/test_cu_interp.c runs this arithmetic on
 * the host against the scatter. */
#ifndef OSP_CU_INTERP_H
#define OSP_CU_INTERP_H

#include <stdint.h>

#include "backend/cuda/cu_index.h" /* CU_HD */

/* One axis inverted: input i is read by outputs o[e] with weights w[e]
 * for e in [start[i], start[i + 1]). */
typedef struct cu_axis_inverse {
    const int64_t *start; /* in + 1 */
    const int64_t *o;     /* taps · out */
    const float *w;       /* taps · out */
} cu_axis_inverse;

/* Fills start (in + 1), o and w (taps · out each) from one axis's forward
 * tables, whose indices lie in [0, in). */
static inline void cu_invert_axis(int64_t in, int64_t out, int taps, const int64_t *idx,
                                  const float *wt, int64_t *start, int64_t *o, float *w)
{
    for (int64_t i = 0; i <= in; i++)
        start[i] = 0;
    for (int64_t ot = 0; ot < out; ot++)
        for (int t = 0; t < taps; t++)
            start[idx[t * out + ot] + 1]++;
    for (int64_t i = 0; i < in; i++)
        start[i + 1] += start[i];
    /* start[i] serves as input i's cursor, which ends at start[i + 1] */
    for (int64_t ot = 0; ot < out; ot++)
        for (int t = 0; t < taps; t++) {
            int64_t e = start[idx[t * out + ot]]++;
            o[e] = ot;
            w[e] = wt[t * out + ot];
        }
    for (int64_t i = in; i > 0; i--)
        start[i] = start[i - 1];
    start[0] = 0;
}

/* The gradient of input element (it, ih, iw) of one plane, gy being that
 * plane's output gradient [out[0], out[1], out[2]]: the sum of wt·wh·ww·gy
 * over the outputs that read it, in the order of the axes' lists. */
CU_HD float cu_interp_grad_at(const float *gy, const int64_t *out, cu_axis_inverse t,
                              cu_axis_inverse h, cu_axis_inverse w, int64_t it, int64_t ih,
                              int64_t iw)
{
    float acc = 0.0f;
    for (int64_t a = t.start[it]; a < t.start[it + 1]; a++)
        for (int64_t b = h.start[ih]; b < h.start[ih + 1]; b++) {
            float wth = t.w[a] * h.w[b];
            const float *row = gy + (t.o[a] * out[1] + h.o[b]) * out[2];
            for (int64_t c = w.start[iw]; c < w.start[iw + 1]; c++)
                acc += wth * w.w[c] * row[w.o[c]];
        }
    return acc;
}

#endif
