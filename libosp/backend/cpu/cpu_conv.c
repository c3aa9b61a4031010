/* cpu_conv.c — convolution on the CPU for 1, 2 and 3 spatial dims: forward,
 * backward-data (which is also the transposed convolution) and
 * backward-weight.
 *
 * All three lower the convolution to sgemm over a column matrix (im2col):
 *   col[c·taps + tap][p] = x[c][input position that output p sees through tap]
 * (0 where that position is padding), so that y[o][p] = Σ w[o][c·taps+tap] ·
 * col[c·taps+tap][p]. The column matrix is built for a range of output
 * positions at a time, so its size stays within COL_BUDGET floats however
 * large the frame (a 128-channel 3x3x3 conv over 17x256x256 would otherwise
 * need 15 GB). 1x1(x1) convs with stride 1 and no padding need no columns:
 * x itself is the matrix. 1-D and 2-D run as 3-D with unit leading dims.
 *
 * Threads: each kernel is one OpenMP region whose threads own disjoint
 * parts of the result (output positions, input channels or weight columns)
 * and call a single-threaded sgemm on them. */
#include "cpu_blas.h"
#include "cpu_kernels.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Column-matrix budget in floats (16 MiB): small enough to stay in the last
 * level cache, large enough that the sgemm sees a wide matrix. */
#define COL_BUDGET ((int64_t)1 << 22)
/* Narrowest column block worth a sgemm call, even past the budget. */
#define COL_MIN_WIDTH 256

typedef struct conv_geom {
    int64_t batch, C, O;     /* x channels C, y channels O */
    int64_t in[3], out[3];   /* spatial extents, unit-padded to 3-D */
    int64_t k[3], s[3], p[3], d[3];
    int64_t taps;            /* k[0]·k[1]·k[2] */
    int64_t rows;            /* C·taps: rows of the column matrix */
    int64_t in_size, out_size;
    bool pointwise;          /* 1x1x1, stride 1, no padding: col == x */
} conv_geom;

/* x [N, C, *in], y [N, O, *out], w [O, C, *k]; the frontend validated that
 * they agree with the window. */
static void geom_init(conv_geom *g, const osp_tensor *x, const osp_tensor *y,
                      const osp_tensor *w, const osp_window *win)
{
    int nsp = x->ndim - 2, lead = 3 - nsp;
    g->batch = x->shape[0];
    g->C = x->shape[1];
    g->O = y->shape[1];
    g->pointwise = true;
    for (int i = 0; i < 3; i++) {
        int j = i - lead; /* index into the window's dims */
        bool real = j >= 0;
        g->in[i] = real ? x->shape[2 + j] : 1;
        g->out[i] = real ? y->shape[2 + j] : 1;
        g->k[i] = real ? w->shape[2 + j] : 1;
        g->s[i] = real ? win->stride[j] : 1;
        g->p[i] = real ? win->pad[j] : 0;
        g->d[i] = real ? win->dilation[j] : 1;
        g->pointwise &= g->k[i] == 1 && g->s[i] == 1 && g->p[i] == 0;
    }
    g->taps = g->k[0] * g->k[1] * g->k[2];
    g->rows = g->C * g->taps;
    g->in_size = g->in[0] * g->in[1] * g->in[2];
    g->out_size = g->out[0] * g->out[1] * g->out[2];
}

/* Output positions per column block: as many as fit `budget` floats of
 * column matrix, but not fewer than COL_MIN_WIDTH nor more than exist. */
static int64_t block_width(const conv_geom *g, int64_t budget)
{
    int64_t w = budget / g->rows;
    if (w < COL_MIN_WIDTH)
        w = COL_MIN_WIDTH;
    return w < g->out_size ? w : g->out_size;
}

/* The output columns [lo, hi) of a row of `out` outputs for which
 * 0 <= o·s + off < in, i.e. that read inside the input. */
static void valid_range(int64_t off, int64_t s, int64_t in, int64_t out, int64_t *lo,
                        int64_t *hi)
{
    int64_t a = off < 0 ? (-off + s - 1) / s : 0;
    int64_t b = in - 1 - off < 0 ? 0 : (in - 1 - off) / s + 1;
    *lo = a < out ? a : out;
    *hi = b < out ? b : out;
    if (*hi < *lo)
        *hi = *lo;
}

/* One row of the column matrix and where it reads: tap (kt, kh, kw) of
 * channel c. */
typedef struct col_row {
    int64_t c, kt, kh, kw;
    int64_t w_lo, w_hi; /* output columns that read inside the input */
} col_row;

static col_row col_row_of(const conv_geom *g, int64_t r)
{
    col_row cr;
    int64_t tap = r % g->taps;
    cr.c = r / g->taps;
    cr.kt = tap / (g->k[1] * g->k[2]);
    cr.kh = tap / g->k[2] % g->k[1];
    cr.kw = tap % g->k[2];
    valid_range(cr.kw * g->d[2] - g->p[2], g->s[2], g->in[2], g->out[2], &cr.w_lo, &cr.w_hi);
    return cr;
}

/* The input row (t, h) that output row `orow` = (to, ho) reads through the
 * tap, or -1 when it lies in the padding. */
static int64_t input_row(const conv_geom *g, const col_row *cr, int64_t orow)
{
    int64_t to = orow / g->out[1], ho = orow % g->out[1];
    int64_t it = to * g->s[0] - g->p[0] + cr->kt * g->d[0];
    int64_t ih = ho * g->s[1] - g->p[1] + cr->kh * g->d[1];
    if (it < 0 || it >= g->in[0] || ih < 0 || ih >= g->in[1])
        return -1;
    return it * g->in[1] + ih;
}

/* Output row `orow` holds positions orow·W + w; the block [p0, p1) covers
 * its columns [*w0, *w1), which sit at block offset orow·W - p0 + w. */
static int64_t row_segment(const conv_geom *g, int64_t orow, int64_t p0, int64_t p1,
                           int64_t *w0, int64_t *w1)
{
    int64_t base = orow * g->out[2];
    *w0 = p0 > base ? p0 - base : 0;
    *w1 = p1 - base < g->out[2] ? p1 - base : g->out[2];
    return base - p0;
}

/* col[r - r0][j] for column-matrix rows [r0, r1) and output positions
 * p0 + j, j < p1 - p0. */
static void im2col(const conv_geom *g, const float *x, int64_t r0, int64_t r1, int64_t p0,
                   int64_t p1, float *col)
{
    int64_t width = p1 - p0, s = g->s[2];
    for (int64_t r = r0; r < r1; r++) {
        col_row cr = col_row_of(g, r);
        const float *xc = x + cr.c * g->in_size;
        float *dst = col + (r - r0) * width;
        int64_t off = cr.kw * g->d[2] - g->p[2];
        for (int64_t orow = p0 / g->out[2]; orow * g->out[2] < p1; orow++) {
            int64_t w0, w1, at = row_segment(g, orow, p0, p1, &w0, &w1);
            int64_t irow = input_row(g, &cr, orow);
            int64_t lo = cr.w_lo > w0 ? cr.w_lo : w0, hi = cr.w_hi < w1 ? cr.w_hi : w1;
            if (irow < 0 || lo >= hi) {
                memset(dst + at + w0, 0, (size_t)(w1 - w0) * sizeof *dst);
                continue;
            }
            /* xrow[w·s + off] is inside the input exactly for w in [lo, hi). */
            const float *xrow = xc + irow * g->in[2];
            for (int64_t w = w0; w < lo; w++)
                dst[at + w] = 0;
            if (s == 1) {
                memcpy(dst + at + lo, xrow + lo + off, (size_t)(hi - lo) * sizeof *dst);
            } else {
                for (int64_t w = lo; w < hi; w++)
                    dst[at + w] = xrow[w * s + off];
            }
            for (int64_t w = hi; w < w1; w++)
                dst[at + w] = 0;
        }
    }
}

/* The adjoint of im2col for the rows of channels [c0, c1): adds
 * col[(c - c0)·taps + tap][j] into x at the position that output p0 + j
 * reads through that tap. */
static void col2im_add(const conv_geom *g, const float *col, int64_t c0, int64_t c1, int64_t p0,
                       int64_t p1, float *x)
{
    int64_t width = p1 - p0, s = g->s[2];
    for (int64_t r = c0 * g->taps; r < c1 * g->taps; r++) {
        col_row cr = col_row_of(g, r);
        float *xc = x + cr.c * g->in_size;
        const float *src = col + (r - c0 * g->taps) * width;
        int64_t off = cr.kw * g->d[2] - g->p[2];
        for (int64_t orow = p0 / g->out[2]; orow * g->out[2] < p1; orow++) {
            int64_t w0, w1, at = row_segment(g, orow, p0, p1, &w0, &w1);
            int64_t irow = input_row(g, &cr, orow);
            int64_t lo = cr.w_lo > w0 ? cr.w_lo : w0, hi = cr.w_hi < w1 ? cr.w_hi : w1;
            if (irow < 0)
                continue;
            float *xrow = xc + irow * g->in[2];
            for (int64_t w = lo; w < hi; w++)
                xrow[w * s + off] += src[at + w];
        }
    }
}

/* This thread's share [lo, hi) of n items inside a parallel region. */
static void thread_share(int64_t n, int64_t *lo, int64_t *hi)
{
    int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    *lo = n * t / nt;
    *hi = n * (t + 1) / nt;
}

static float *col_alloc(int64_t rows, int64_t width)
{
    return malloc((size_t)rows * (size_t)width * sizeof(float));
}

static osp_status col_nomem(const conv_geom *g, int64_t width)
{
    return osp_error_nomem("convolution column buffer",
                           (unsigned long long)g->rows * (unsigned long long)width * 4);
}

/* in: x [N, C, *in], w [O, C, *k], bias [O]?   out: y [N, O, *out].
 * Threads take blocks of output positions; y[:, block] = w · col(block). */
osp_status cpu_conv(const osp_node *n)
{
    if (cpu_conv_winograd_applies(n->in[1], &n->p.conv))
        return cpu_conv_winograd(n);
    conv_geom g;
    geom_init(&g, n->in[0], n->out[0], n->in[1], &n->p.conv);
    const float *x = osp_f32(n->in[0]), *w = osp_f32(n->in[1]);
    const float *bias = n->in[2] ? osp_f32(n->in[2]) : NULL;
    float *y = osp_f32(n->out[0]);
    int64_t nth = omp_get_max_threads();
    int64_t width = block_width(&g, COL_BUDGET / nth);
    if (width > (g.out_size + nth - 1) / nth) /* at least one block per thread */
        width = (g.out_size + nth - 1) / nth;
    int64_t nblocks = (g.out_size + width - 1) / width;
    bool failed = false;
    int blas = cpu_blas_serial_begin();
#pragma omp parallel
    {
        float *col = g.pointwise ? NULL : col_alloc(g.rows, width);
        if (!g.pointwise && !col)
            failed = true;
#pragma omp for schedule(dynamic)
        for (int64_t u = 0; u < g.batch * nblocks; u++) {
            int64_t b = u / nblocks, p0 = u % nblocks * width;
            int64_t p1 = p0 + width < g.out_size ? p0 + width : g.out_size, pw = p1 - p0;
            const float *xb = x + b * g.C * g.in_size;
            float *yb = y + b * g.O * g.out_size + p0;
            if (!g.pointwise && !col)
                continue;
            if (col)
                im2col(&g, xb, 0, g.rows, p0, p1, col);
            for (int64_t o = 0; bias && o < g.O; o++)
                for (int64_t j = 0; j < pw; j++)
                    yb[o * g.out_size + j] = bias[o];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g.O, (int)pw,
                        (int)g.rows, 1.0f, w, (int)g.rows, col ? col : xb + p0,
                        col ? (int)pw : (int)g.in_size, bias ? 1.0f : 0.0f, yb,
                        (int)g.out_size);
        }
        free(col);
    }
    cpu_blas_serial_end(blas);
    return failed ? col_nomem(&g, width) : OSP_OK;
}

/* in: gy [N, O, *out], w [O, C, *k], bias [C]?   out: gx [N, C, *in].
 * Threads take channel ranges of gx: col = wᵀ · gy(block) for their rows,
 * scattered back into their channels, so no two threads write one element. */
osp_status cpu_conv_backward_data(const osp_node *n)
{
    if (cpu_conv_winograd_applies(n->in[1], &n->p.conv))
        return cpu_conv_winograd_backward_data(n);
    conv_geom g;
    geom_init(&g, n->out[0], n->in[0], n->in[1], &n->p.conv);
    const float *gy = osp_f32(n->in[0]), *w = osp_f32(n->in[1]);
    const float *bias = n->in[2] ? osp_f32(n->in[2]) : NULL;
    float *gx = osp_f32(n->out[0]);
    int64_t width = block_width(&g, COL_BUDGET);
    bool failed = false;
    int blas = cpu_blas_serial_begin();
#pragma omp parallel
    {
        int64_t c0, c1;
        thread_share(g.C, &c0, &c1);
        int64_t rows = (c1 - c0) * g.taps;
        float *col = g.pointwise || rows == 0 ? NULL : col_alloc(rows, width);
        if (rows && !g.pointwise && !col)
            failed = true;
        for (int64_t b = 0; rows && (g.pointwise || col) && b < g.batch; b++) {
            const float *gyb = gy + b * g.O * g.out_size;
            float *gxb = gx + b * g.C * g.in_size;
            for (int64_t c = c0; c < c1; c++)
                for (int64_t i = 0; i < g.in_size; i++)
                    gxb[c * g.in_size + i] = bias ? bias[c] : 0.0f;
            if (g.pointwise) {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(c1 - c0),
                            (int)g.in_size, (int)g.O, 1.0f, w + c0, (int)g.C, gyb,
                            (int)g.out_size, 1.0f, gxb + c0 * g.in_size, (int)g.in_size);
                continue;
            }
            for (int64_t p0 = 0; p0 < g.out_size; p0 += width) {
                int64_t p1 = p0 + width < g.out_size ? p0 + width : g.out_size;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)rows, (int)(p1 - p0),
                            (int)g.O, 1.0f, w + c0 * g.taps, (int)g.rows, gyb + p0,
                            (int)g.out_size, 0.0f, col, (int)(p1 - p0));
                col2im_add(&g, col, c0, c1, p0, p1, gxb);
            }
        }
        free(col);
    }
    cpu_blas_serial_end(blas);
    return failed ? col_nomem(&g, width) : OSP_OK;
}

/* in: gy [N, O, *out], x [N, C, *in]   out: gw [O, C, *k], gbias [O]?
 * Threads take column-matrix row ranges (= columns of gw):
 * gw[:, rows] = Σ over batch and blocks of gy(block) · col(rows, block)ᵀ. */
osp_status cpu_conv_backward_weight(const osp_node *n)
{
    conv_geom g;
    geom_init(&g, n->in[1], n->in[0], n->out[0], &n->p.conv);
    const float *gy = osp_f32(n->in[0]), *x = osp_f32(n->in[1]);
    float *gw = osp_f32(n->out[0]);
    float *gbias = n->n_out > 1 && n->out[1] ? osp_f32(n->out[1]) : NULL;
    int64_t width = block_width(&g, COL_BUDGET);
    bool failed = false;
    int blas = cpu_blas_serial_begin();
#pragma omp parallel
    {
        int64_t r0, r1;
        thread_share(g.rows, &r0, &r1);
        float *col = g.pointwise || r0 == r1 ? NULL : col_alloc(r1 - r0, width);
        if (r0 < r1 && !g.pointwise && !col)
            failed = true;
        for (int64_t o = 0; o < g.O; o++)
            for (int64_t r = r0; r < r1; r++)
                gw[o * g.rows + r] = 0.0f;
        for (int64_t b = 0; r0 < r1 && (g.pointwise || col) && b < g.batch; b++) {
            const float *gyb = gy + b * g.O * g.out_size;
            const float *xb = x + b * g.C * g.in_size;
            if (g.pointwise) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g.O, (int)(r1 - r0),
                            (int)g.out_size, 1.0f, gyb, (int)g.out_size, xb + r0 * g.in_size,
                            (int)g.in_size, 1.0f, gw + r0, (int)g.rows);
                continue;
            }
            for (int64_t p0 = 0; p0 < g.out_size; p0 += width) {
                int64_t p1 = p0 + width < g.out_size ? p0 + width : g.out_size;
                im2col(&g, xb, r0, r1, p0, p1, col);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g.O, (int)(r1 - r0),
                            (int)(p1 - p0), 1.0f, gyb + p0, (int)g.out_size, col,
                            (int)(p1 - p0), 1.0f, gw + r0, (int)g.rows);
            }
        }
        free(col);
        /* gbias[o] = Σ over batch and positions of gy[b][o], in double. */
#pragma omp for schedule(static)
        for (int64_t o = 0; o < (gbias ? g.O : 0); o++) {
            double acc = 0;
            for (int64_t b = 0; b < g.batch; b++)
                for (int64_t p = 0; p < g.out_size; p++)
                    acc += gy[(b * g.O + o) * g.out_size + p];
            gbias[o] = (float)acc;
        }
    }
    cpu_blas_serial_end(blas);
    return failed ? col_nomem(&g, width) : OSP_OK;
}
