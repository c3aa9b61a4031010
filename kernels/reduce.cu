/* reduce.cu — sum/mean/var/max over an axis set and max's backward,
 * softmax over the last axis and its backward, and the row and channel
 * reductions other kernels share (CPU reference: cpu_reduce.c,
 * cpu_softmax.c). One block per output element or row; sums accumulate in
 * double like the CPU's. */
#include "columns.cuh"
#include "common.cuh"

/* Kept dims (outer) x reduced dims (inner) of a contiguous input. */
struct reduce_plan {
    int nk, nr;
    int64_t kshape[OSP_MAX_DIMS], kstride[OSP_MAX_DIMS];
    int64_t rshape[OSP_MAX_DIMS], rstride[OSP_MAX_DIMS];
    int64_t n_out, n_red;
};

static reduce_plan plan_reduce(const osp_tensor *x, uint32_t axes)
{
    reduce_plan p;
    int64_t stride = 1, strides[OSP_MAX_DIMS];
    for (int i = x->ndim - 1; i >= 0; i--) {
        strides[i] = stride;
        stride *= x->shape[i];
    }
    p.nk = p.nr = 0;
    p.n_out = p.n_red = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (axes & (1u << i)) {
            p.rshape[p.nr] = x->shape[i];
            p.rstride[p.nr++] = strides[i];
            p.n_red *= x->shape[i];
        } else {
            p.kshape[p.nk] = x->shape[i];
            p.kstride[p.nk++] = strides[i];
            p.n_out *= x->shape[i];
        }
    }
    return p;
}

__device__ inline int64_t kept_offset(const reduce_plan &p, int64_t o)
{
    int64_t off = 0;
    for (int d = p.nk - 1; d >= 0; d--) {
        off += (o % p.kshape[d]) * p.kstride[d];
        o /= p.kshape[d];
    }
    return off;
}

__device__ inline int64_t reduced_offset(const reduce_plan &p, int64_t r)
{
    int64_t off = 0;
    for (int d = p.nr - 1; d >= 0; d--) {
        off += (r % p.rshape[d]) * p.rstride[d];
        r /= p.rshape[d];
    }
    return off;
}

__global__ void reduce_kernel(const float *x, float *y, reduce_plan p, osp_reduce_kind kind,
                              double denom_var)
{
    __shared__ double sd[32];
    __shared__ float sf[32];
    for (int64_t o = blockIdx.x; o < p.n_out; o += gridDim.x) {
        const float *xb = x + kept_offset(p, o);
        if (kind == OSP_REDUCE_MAX) {
            float m = -INFINITY;
            int nan = 0;
            for (int64_t r = threadIdx.x; r < p.n_red; r += blockDim.x) {
                float v = xb[reduced_offset(p, r)];
                nan |= v != v;
                m = v > m ? v : m;
            }
            m = block_max(m, sf);
            nan = __syncthreads_or(nan);
            if (threadIdx.x == 0)
                y[o] = nan ? NAN : m;
            continue;
        }
        double s = 0;
        for (int64_t r = threadIdx.x; r < p.n_red; r += blockDim.x)
            s += xb[reduced_offset(p, r)];
        s = block_sum(s, sd);
        if (kind == OSP_REDUCE_VAR) {
            double mean = s / (double)p.n_red, ss = 0;
            for (int64_t r = threadIdx.x; r < p.n_red; r += blockDim.x) {
                double d = xb[reduced_offset(p, r)] - mean;
                ss += d * d;
            }
            ss = block_sum(ss, sd);
            if (threadIdx.x == 0)
                y[o] = denom_var > 0 ? (float)(ss / denom_var) : NAN;
        } else if (threadIdx.x == 0) {
            y[o] = kind == OSP_REDUCE_SUM ? (float)s : (float)(s / (double)p.n_red);
        }
    }
}

/* Threads per block for rows of `len` elements: a warp for short rows. */
static inline int row_threads(int64_t len)
{
    return len <= 32 ? 32 : len <= 128 ? 128 : CU_THREADS;
}

/* ---- sums over an outer run of axes (bias gradients: Σ over rows;
 * broadcast gradients: [B, N, D] -> [B, 1, D]): the column kernels of
 * columns.cuh ---- */

/* Whether the reduced axes of x are one run of dims with kept dims after
 * it; then x is [K1, R, K2]. */
static bool column_shape(const osp_tensor *x, uint32_t axes, int64_t *K1, int64_t *R,
                         int64_t *K2)
{
    int first = -1, last = -1;
    for (int i = 0; i < x->ndim; i++)
        if (axes & (1u << i)) {
            if (first < 0)
                first = i;
            else if (last != i - 1)
                return false;
            last = i;
        }
    if (first < 0 || last == x->ndim - 1)
        return false;
    *K1 = *R = *K2 = 1;
    for (int i = 0; i < x->ndim; i++)
        *(i < first ? K1 : i <= last ? R : K2) *= x->shape[i];
    return *K2 > 1 && cu_column_sums_fit(*K1, *K2);
}

static osp_status column_sum(const osp_node *n, int64_t K1, int64_t R, int64_t K2, bool mean)
{
    if (R == 0) /* an empty sum is 0, an empty mean NaN (as on the CPU) */
        return cu_check(n, cudaMemsetAsync(cu_ptr(n->out[0]), mean ? 0xff : 0,
                                           osp_nbytes(n->out[0]), cu_stream()),
                        "reduce");
    column_of value = {cu_f32(n->in[0]), R, K2};
    return cu_column_sums(n, value, cu_f32(n->out[0]), K1, R, K2, mean ? (double)R : 1.0);
}

extern "C" osp_status cuda_reduce(const osp_node *n)
{
    reduce_plan p = plan_reduce(n->in[0], n->p.reduce.axes);
    if (p.n_out == 0)
        return OSP_OK;
    osp_reduce_kind kind = n->p.reduce.kind;
    int64_t K1, R, K2;
    if ((kind == OSP_REDUCE_SUM || kind == OSP_REDUCE_MEAN) &&
        column_shape(n->in[0], n->p.reduce.axes, &K1, &R, &K2))
        return column_sum(n, K1, R, K2, kind == OSP_REDUCE_MEAN);
    double denom = (double)(p.n_red - n->p.reduce.correction);
    reduce_kernel<<<cu_grid(p.n_out, 1), row_threads(p.n_red), 0, cu_stream()>>>(
        cu_f32(n->in[0]), cu_f32(n->out[0]), p, n->p.reduce.kind, denom);
    return CU_LAUNCHED(n, "reduce kernel");
}

__global__ void reduce_max_backward_kernel(const float *gy, const float *x, const float *y,
                                           float *gx, reduce_plan p)
{
    __shared__ double sd[32];
    for (int64_t o = blockIdx.x; o < p.n_out; o += gridDim.x) {
        int64_t base = kept_offset(p, o);
        double ties = 0;
        for (int64_t r = threadIdx.x; r < p.n_red; r += blockDim.x)
            ties += x[base + reduced_offset(p, r)] == y[o];
        ties = block_sum(ties, sd);
        float share = ties > 0 ? gy[o] / (float)ties : 0.0f;
        for (int64_t r = threadIdx.x; r < p.n_red; r += blockDim.x) {
            int64_t off = base + reduced_offset(p, r);
            gx[off] = x[off] == y[o] ? share : 0.0f;
        }
    }
}

extern "C" osp_status cuda_reduce_max_backward(const osp_node *n)
{
    reduce_plan p = plan_reduce(n->in[1], n->p.reduce.axes);
    if (p.n_out == 0)
        return OSP_OK;
    reduce_max_backward_kernel<<<cu_grid(p.n_out, 1), row_threads(p.n_red), 0, cu_stream()>>>(
        cu_f32(n->in[0]), cu_f32(n->in[1]), cu_f32(n->in[2]), cu_f32(n->out[0]), p);
    return CU_LAUNCHED(n, "reduce max backward kernel");
}

/* ---- softmax rows ----
 * The optional mask is added first (attention's GEMM path): row r of the
 * scores is query i = r % Lq of head bh = bh0 + r / Lq, and
 * mask[b, h, i, j] sits at b·st[0] + h·st[1] + i·st[2] + j·st[3]. */
struct row_mask {
    const float *mask; /* NULL: none */
    int64_t st[4];
    int64_t H, Lq, bh0;
};

__global__ void softmax_rows_kernel(const float *x, float *y, int64_t rows, int64_t cols,
                                    row_mask m, float scale)
{
    __shared__ float sf[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        const float *mr = NULL;
        if (m.mask) {
            int64_t bh = m.bh0 + r / m.Lq, i = r % m.Lq;
            mr = m.mask + (bh / m.H) * m.st[0] + (bh % m.H) * m.st[1] + i * m.st[2];
        }
        float mx = -INFINITY;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
            float v = xr[j] * scale + (mr ? mr[j * m.st[3]] : 0.0f);
            yr[j] = v;
            mx = fmaxf(mx, v);
        }
        mx = block_max(mx, sf);
        float sum = 0;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
            float e = expf(yr[j] - mx);
            yr[j] = e;
            sum += e;
        }
        sum = block_sum(sum, sf);
        float inv = 1.0f / sum;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
            yr[j] *= inv;
    }
}

__global__ void softmax_backward_rows_kernel(const float *gy, const float *y, float *gx,
                                             int64_t rows, int64_t cols)
{
    __shared__ float sf[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *gr = gy + r * cols, *yr = y + r * cols;
        float d = 0;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
            d += gr[j] * yr[j];
        d = block_sum(d, sf);
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
            gx[r * cols + j] = yr[j] * (gr[j] - d);
    }
}

extern "C" osp_status cu_softmax_rows(const osp_node *n, const float *x, float *y, int64_t rows,
                                      int64_t cols, float scale, const float *mask,
                                      const int64_t *mask_step, int64_t H, int64_t Lq,
                                      int64_t bh0)
{
    if (rows == 0 || cols == 0)
        return OSP_OK;
    row_mask m = {mask, {0, 0, 0, 0}, H > 0 ? H : 1, Lq > 0 ? Lq : 1, bh0};
    for (int i = 0; mask && i < 4; i++)
        m.st[i] = mask_step[i];
    softmax_rows_kernel<<<cu_grid(rows, 1), row_threads(cols), 0, cu_stream()>>>(x, y, rows,
                                                                                 cols, m, scale);
    return CU_LAUNCHED(n, "softmax kernel");
}

extern "C" osp_status cu_softmax_backward_rows(const osp_node *n, const float *gy,
                                               const float *y, float *gx, int64_t rows,
                                               int64_t cols)
{
    if (rows == 0 || cols == 0)
        return OSP_OK;
    softmax_backward_rows_kernel<<<cu_grid(rows, 1), row_threads(cols), 0, cu_stream()>>>(
        gy, y, gx, rows, cols);
    return CU_LAUNCHED(n, "softmax backward kernel");
}

extern "C" osp_status cuda_softmax(const osp_node *n)
{
    int64_t rows, cols;
    cu_rows_cols(n->in[0], &rows, &cols);
    return cu_softmax_rows(n, cu_f32(n->in[0]), cu_f32(n->out[0]), rows, cols, 1.0f, NULL, NULL,
                           1, 1, 0);
}

extern "C" osp_status cuda_softmax_backward(const osp_node *n)
{
    int64_t rows, cols;
    cu_rows_cols(n->in[1], &rows, &cols);
    return cu_softmax_backward_rows(n, cu_f32(n->in[0]), cu_f32(n->in[1]), cu_f32(n->out[0]),
                                    rows, cols);
}

/* ---- per-channel sums: out[c] = Σ over n, s of x[n, c, s] (conv bias
 * gradient) ---- */

__global__ void channel_sum_kernel(const float *x, float *out, int64_t batch, int64_t channels,
                                   int64_t spatial)
{
    __shared__ double sd[32];
    for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
        double s = 0;
        for (int64_t i = threadIdx.x; i < batch * spatial; i += blockDim.x)
            s += x[(i / spatial * channels + c) * spatial + i % spatial];
        s = block_sum(s, sd);
        if (threadIdx.x == 0)
            out[c] = (float)s;
    }
}

extern "C" osp_status cu_channel_sum(const osp_node *n, const float *x, float *out,
                                     int64_t batch, int64_t channels, int64_t spatial)
{
    if (channels == 0)
        return OSP_OK;
    channel_sum_kernel<<<cu_grid(channels, 1), CU_THREADS, 0, cu_stream()>>>(x, out, batch,
                                                                             channels, spatial);
    return CU_LAUNCHED(n, "channel sum kernel");
}
