/* cpu_reduce.c — sum/mean/var/max over an axis set, and max's backward.
 *
 * The input is viewed as kept axes (outer) x reduced axes (inner); each
 * output element walks its reduced elements with an odometer over the
 * reduced dims. Sums accumulate in double. */
#include "cpu_kernels.h"
#include "core/simd.h"

#include <math.h>

typedef struct reduce_plan {
    int nk, nr;                                    /* kept / reduced dims */
    int64_t kshape[OSP_MAX_DIMS], kstride[OSP_MAX_DIMS];
    int64_t rshape[OSP_MAX_DIMS], rstride[OSP_MAX_DIMS];
    int64_t n_out, n_red;
} reduce_plan;

static void plan_reduce(const osp_tensor *x, uint32_t axes, reduce_plan *p)
{
    int64_t stride = 1, strides[OSP_MAX_DIMS];
    for (int i = x->ndim - 1; i >= 0; i--) {
        strides[i] = stride;
        stride *= x->shape[i];
    }
    p->nk = p->nr = 0;
    p->n_out = p->n_red = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (axes & (1u << i)) {
            p->rshape[p->nr] = x->shape[i];
            p->rstride[p->nr++] = strides[i];
            p->n_red *= x->shape[i];
        } else {
            p->kshape[p->nk] = x->shape[i];
            p->kstride[p->nk++] = strides[i];
            p->n_out *= x->shape[i];
        }
    }
}

static int64_t base_offset(const reduce_plan *p, int64_t o)
{
    int64_t off = 0;
    for (int d = p->nk - 1; d >= 0; d--) {
        off += (o % p->kshape[d]) * p->kstride[d];
        o /= p->kshape[d];
    }
    return off;
}

/* Calls body(offset) for each reduced element of output o, in order. */
#define FOR_REDUCED(p, base, off, body)                                       \
    do {                                                                      \
        int64_t idx_[OSP_MAX_DIMS] = {0}, off = (base);                       \
        for (int64_t r_ = 0; r_ < (p)->n_red; r_++) {                         \
            body;                                                             \
            for (int d_ = (p)->nr - 1; d_ >= 0; d_--) {                       \
                off += (p)->rstride[d_];                                      \
                if (++idx_[d_] < (p)->rshape[d_])                             \
                    break;                                                    \
                off -= idx_[d_] * (p)->rstride[d_];                           \
                idx_[d_] = 0;                                                 \
            }                                                                 \
        }                                                                     \
    } while (0)

/* y = finish(sum) for a sum, mean or variance's first pass. */
static float finish_sum(osp_reduce_kind kind, double s, int64_t n_red)
{
    return kind == OSP_REDUCE_SUM ? (float)s : (float)(s / (double)n_red);
}

/* Sums, means and variances when the innermost axis is kept (bias
 * gradients, gradients of broadcast operands): each output row of `inner`
 * contiguous elements is a sum of input rows, so whole rows are added with
 * unit stride instead of walking columns one element at a time. Same order
 * of terms, same double sums, so the results equal the general loop's. */
#define ROW_BLOCK 256

/* acc[j] += x[j], and acc[j] += (x[j] - mean[j])², over one block of a row:
 * vectorised across columns (GCC's -O2 leaves plain loops scalar), which
 * keeps each column's order of terms. */
ROW_CLONES static void add_row(double *acc, const float *x, int64_t n)
{
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        acc[j] += x[j];
}

ROW_CLONES static void add_squares_row(double *acc, const float *x, const double *mean,
                                       int64_t n)
{
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        double d = x[j] - mean[j];
        acc[j] += d * d;
    }
}

static void reduce_rows(const osp_node *n, const reduce_plan *p)
{
    const float *x = osp_f32(n->in[0]);
    float *y = osp_f32(n->out[0]);
    osp_reduce_kind kind = n->p.reduce.kind;
    double denom_var = (double)(p->n_red - n->p.reduce.correction);
    /* the trailing kept axes that are contiguous form a row */
    reduce_plan rows = *p;
    int64_t inner = 1;
    while (rows.nk > 0 && rows.kstride[rows.nk - 1] == inner) {
        inner *= rows.kshape[rows.nk - 1];
        rows.nk--;
    }
    rows.n_out = p->n_out / inner;
    int64_t blocks = (inner + ROW_BLOCK - 1) / ROW_BLOCK;
#pragma omp parallel for schedule(static) if (p->n_out * p->n_red > 32768)
    for (int64_t task = 0; task < rows.n_out * blocks; task++) {
        int64_t o = task / blocks, j0 = task % blocks * ROW_BLOCK;
        int64_t len = inner - j0 < ROW_BLOCK ? inner - j0 : ROW_BLOCK;
        int64_t base = base_offset(&rows, o) + j0;
        double acc[ROW_BLOCK] = {0};
        FOR_REDUCED(&rows, base, off, add_row(acc, x + off, len));
        float *out = y + o * inner + j0;
        if (kind != OSP_REDUCE_VAR) {
            for (int64_t j = 0; j < len; j++)
                out[j] = finish_sum(kind, acc[j], p->n_red);
            continue;
        }
        double mean[ROW_BLOCK];
        for (int64_t j = 0; j < len; j++) {
            mean[j] = acc[j] / (double)p->n_red;
            acc[j] = 0;
        }
        FOR_REDUCED(&rows, base, off, add_squares_row(acc, x + off, mean, len));
        for (int64_t j = 0; j < len; j++)
            out[j] = denom_var > 0 ? (float)(acc[j] / denom_var) : NAN;
    }
}

osp_status cpu_reduce(const osp_node *n)
{
    const float *x = osp_f32(n->in[0]);
    float *y = osp_f32(n->out[0]);
    reduce_plan p;
    plan_reduce(n->in[0], n->p.reduce.axes, &p);
    osp_reduce_kind kind = n->p.reduce.kind;
    if (kind != OSP_REDUCE_MAX && p.nk > 0 && p.kstride[p.nk - 1] == 1 && p.n_red > 1) {
        reduce_rows(n, &p);
        return OSP_OK;
    }
    double denom_var = (double)(p.n_red - n->p.reduce.correction);
#pragma omp parallel for schedule(static) if (p.n_out * p.n_red > 32768)
    for (int64_t o = 0; o < p.n_out; o++) {
        int64_t base = base_offset(&p, o);
        if (kind == OSP_REDUCE_MAX) {
            float m = -INFINITY;
            bool nan = false;
            FOR_REDUCED(&p, base, off, {
                float v = x[off];
                nan |= v != v;
                if (v > m) m = v;
            });
            y[o] = nan ? NAN : m;
            continue;
        }
        double s = 0;
        FOR_REDUCED(&p, base, off, s += x[off]);
        if (kind != OSP_REDUCE_VAR) {
            y[o] = finish_sum(kind, s, p.n_red);
        } else {
            double mean = s / (double)p.n_red, ss = 0;
            FOR_REDUCED(&p, base, off, {
                double d = x[off] - mean;
                ss += d * d;
            });
            y[o] = denom_var > 0 ? (float)(ss / denom_var) : NAN;
        }
    }
    return OSP_OK;
}

osp_status cpu_reduce_max_backward(const osp_node *n)
{
    const float *gy = osp_f32(n->in[0]), *x = osp_f32(n->in[1]), *y = osp_f32(n->in[2]);
    float *gx = osp_f32(n->out[0]);
    reduce_plan p;
    plan_reduce(n->in[1], n->p.reduce.axes, &p);
#pragma omp parallel for schedule(static) if (p.n_out * p.n_red > 32768)
    for (int64_t o = 0; o < p.n_out; o++) {
        int64_t base = base_offset(&p, o), ties = 0;
        FOR_REDUCED(&p, base, off, ties += x[off] == y[o]);
        float share = ties ? gy[o] / (float)ties : 0.0f;
        FOR_REDUCED(&p, base, off, gx[off] = x[off] == y[o] ? share : 0.0f);
    }
    return OSP_OK;
}
