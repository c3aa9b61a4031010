/* norm.cu — group, layer and RMS normalisation, forward and backward (CPU
 * reference: cpu_norm.c). x is seen as [N, C, S] in G groups: group norm
 * directly, layer and RMS norm as [rows, D, 1] with one group. One block
 * per (n, group) block of C/G·S contiguous elements (blocks of 2^16 or
 * more elements are split over many, see split_forward); statistics in
 * double (RMS norm's variance rounded to float32 as T5 does). A layer
 * norm's gamma and beta may be per sample ([N0, 1, ..., D], adaLN): each
 * run of `per` rows reads, and sums its gradients into, its own row. */
#include "columns.cuh"
#include "common.cuh"

struct norm_shape {
    int64_t n, c, s, groups;
    int64_t per; /* rows (units of n) per row of gamma and beta */
};

static norm_shape group_norm_shape(const osp_tensor *x, int groups)
{
    norm_shape sh = {x->shape[0], x->shape[1], 1, groups, x->shape[0]};
    for (int i = 2; i < x->ndim; i++)
        sh.s *= x->shape[i];
    return sh;
}

static norm_shape last_axis_shape(const osp_tensor *x)
{
    int64_t d = x->shape[x->ndim - 1], rows = d ? osp_numel(x) / d : 0;
    norm_shape sh = {rows, d, 1, 1, rows};
    return sh;
}

/* sh with `per` from `affine` (gamma or beta, or their gradient): all
 * rows, or one sample's when it holds a row per sample. */
static norm_shape with_affine(norm_shape sh, const osp_tensor *affine)
{
    int64_t rows = affine && sh.c ? osp_numel(affine) / sh.c : 1;
    sh.per = rows > 1 ? sh.n / rows : sh.n;
    sh.per = sh.per > 0 ? sh.per : 1;
    return sh;
}

/* The first channel of block b in its row of gamma and beta. */
__device__ inline int64_t affine_c0(const norm_shape &sh, int64_t b)
{
    return (b % sh.groups) * (sh.c / sh.groups) + b / sh.groups / sh.per * sh.c;
}

/* Mean (0 for RMS) and 1/sqrt(var + eps) of one block, on every thread. */
__device__ inline double2 block_stats(const float *x, int64_t len, float eps, bool centred,
                                      double *sd)
{
    if (!centred) {
        double sq = 0;
        for (int64_t i = threadIdx.x; i < len; i += blockDim.x)
            sq += (double)x[i] * x[i];
        sq = block_sum(sq, sd);
        float var = len ? (float)(sq / (double)len) : 0.0f;
        return make_double2(0.0, (double)(1.0f / sqrtf(var + eps)));
    }
    double s = 0;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x)
        s += x[i];
    s = block_sum(s, sd);
    double mean = len ? s / (double)len : 0, sq = 0;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
        double d = x[i] - mean;
        sq += d * d;
    }
    sq = block_sum(sq, sd);
    double var = len ? sq / (double)len : 0;
    return make_double2(mean, 1.0 / sqrt(var + eps));
}

__global__ void norm_forward_kernel(const float *x, const float *gamma, const float *beta,
                                    float *y, norm_shape sh, float eps, bool centred)
{
    __shared__ double sd[32];
    int64_t cpg = sh.c / sh.groups, len = cpg * sh.s, blocks = sh.n * sh.groups;
    for (int64_t b = blockIdx.x; b < blocks; b += gridDim.x) {
        const float *xb = x + b * len;
        float *yb = y + b * len;
        double2 st = block_stats(xb, len, eps, centred, sd);
        int64_t c0 = affine_c0(sh, b);
        if (!centred) {
            float rstd = (float)st.y;
            for (int64_t i = threadIdx.x; i < len; i += blockDim.x)
                yb[i] = (gamma ? gamma[c0 + i / sh.s] : 1.0f) * (xb[i] * rstd);
            continue;
        }
        for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
            int64_t c = c0 + i / sh.s;
            double a = st.y * (gamma ? gamma[c] : 1.0f);
            double shift = (beta ? beta[c] : 0.0f) - st.x * a;
            yb[i] = (float)(xb[i] * a + shift);
        }
    }
}

/* ---- large blocks (the VAE's group norms: 32 blocks of millions of
 * elements) split over many thread blocks: partial sums of x per chunk,
 * added in chunk order into per-block totals, then the same for (x -
 * mean)², then one elementwise pass. No atomics: the same input gives
 * the same bits in every run. ---- */

#define SPLIT_MIN ((int64_t)1 << 16) /* block lengths from here are split */
#define CHUNK ((int64_t)1 << 14)     /* elements per thread block */

/* part[b·chunks + c] = Σ x (mean_of == NULL) or Σ (x - mean_of[b]/len)²
 * over chunk c of block b. */
__global__ void split_sum_kernel(const float *x, int64_t len, int64_t chunks,
                                 const double *mean_of, double *part)
{
    __shared__ double sd[32];
    int64_t b = blockIdx.x / chunks, lo = blockIdx.x % chunks * CHUNK;
    int64_t hi = lo + CHUNK < len ? lo + CHUNK : len;
    const float *xb = x + b * len;
    double mean = mean_of ? mean_of[b] / (double)len : 0, s = 0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        double v = xb[i];
        s += mean_of ? (v - mean) * (v - mean) : v;
    }
    s = block_sum(s, sd);
    if (threadIdx.x == 0)
        part[blockIdx.x] = s;
}

/* total[b] = Σ_c part[b·chunks + c], in chunk order. */
__global__ void split_total_kernel(const double *part, int64_t blocks, int64_t chunks,
                                   double *total)
{
    CU_FOR(b, blocks) {
        double s = 0;
        for (int64_t c = 0; c < chunks; c++)
            s += part[b * chunks + c];
        total[b] = s;
    }
}

__global__ void split_apply_kernel(const float *x, const float *gamma, const float *beta,
                                   float *y, norm_shape sh, const double *sum, const double *sq,
                                   float eps)
{
    int64_t cpg = sh.c / sh.groups, len = cpg * sh.s;
    CU_FOR(i, sh.n * sh.c * sh.s) {
        int64_t b = i / len, c = affine_c0(sh, b) + i % len / sh.s;
        double mean = sum[b] / (double)len, rstd = 1.0 / sqrt(sq[b] / (double)len + eps);
        double a = rstd * (gamma ? gamma[c] : 1.0f);
        double shift = (beta ? beta[c] : 0.0f) - mean * a;
        y[i] = (float)(x[i] * a + shift);
    }
}

static osp_status split_forward(const osp_node *n, norm_shape sh, int64_t blocks, int64_t len)
{
    int64_t chunks = (len + CHUNK - 1) / CHUNK;
    osp_storage *acc = cu_scratch((size_t)blocks * (2 + (size_t)chunks) * sizeof(double));
    if (!acc)
        return osp_error_code();
    double *sum = (double *)acc->data, *sq = sum + blocks, *part = sq + blocks;
    const float *x = cu_f32(n->in[0]);
    unsigned grid = (unsigned)(blocks * chunks);
    split_sum_kernel<<<grid, CU_THREADS, 0, cu_stream()>>>(x, len, chunks, nullptr, part);
    split_total_kernel<<<cu_grid(blocks), CU_THREADS, 0, cu_stream()>>>(part, blocks, chunks, sum);
    split_sum_kernel<<<grid, CU_THREADS, 0, cu_stream()>>>(x, len, chunks, sum, part);
    split_total_kernel<<<cu_grid(blocks), CU_THREADS, 0, cu_stream()>>>(part, blocks, chunks, sq);
    split_apply_kernel<<<cu_grid(blocks * len), CU_THREADS, 0, cu_stream()>>>(
        x, cu_opt(n, 1), cu_opt(n, 2), cu_f32(n->out[0]), sh, sum, sq, n->p.norm.eps);
    osp_status st = CU_LAUNCHED(n, "split normalisation kernels");
    osp_storage_release(acc);
    return st;
}

static osp_status norm_forward(const osp_node *n, norm_shape sh, bool centred)
{
    sh = with_affine(sh, n->in[1] ? n->in[1] : n->n_in > 2 ? n->in[2] : NULL);
    int64_t blocks = sh.n * sh.groups, len = sh.groups ? sh.c / sh.groups * sh.s : 0;
    if (blocks == 0 || len == 0)
        return OSP_OK;
    if (centred && len >= SPLIT_MIN && blocks * ((len + CHUNK - 1) / CHUNK) <= INT32_MAX)
        return split_forward(n, sh, blocks, len);
    int threads = len <= 32 ? 32 : len <= 256 ? 128 : CU_THREADS;
    norm_forward_kernel<<<cu_grid(blocks, 1), threads, 0, cu_stream()>>>(
        cu_f32(n->in[0]), cu_opt(n, 1), centred ? cu_opt(n, 2) : NULL, cu_f32(n->out[0]), sh,
        n->p.norm.eps, centred);
    return CU_LAUNCHED(n, "normalisation kernel");
}

extern "C" osp_status cuda_group_norm(const osp_node *n)
{
    return norm_forward(n, group_norm_shape(n->in[0], n->p.norm.groups), true);
}

extern "C" osp_status cuda_layer_norm(const osp_node *n)
{
    return norm_forward(n, last_axis_shape(n->in[0]), true);
}

extern "C" osp_status cuda_rms_norm(const osp_node *n)
{
    return norm_forward(n, last_axis_shape(n->in[0]), false);
}

/* ---- backward ----
 * With xhat = (x - mean)·rstd and g = gy·gamma over one block:
 * gx = rstd·(g - mean(g) - xhat·mean(g·xhat)) (no mean(g) term for RMS). */
__global__ void norm_backward_kernel(const float *gy, const float *x, const float *gamma,
                                     float *gx, double2 *stats, norm_shape sh, float eps,
                                     bool centred)
{
    __shared__ double sd[32];
    int64_t cpg = sh.c / sh.groups, len = cpg * sh.s, blocks = sh.n * sh.groups;
    for (int64_t b = blockIdx.x; b < blocks; b += gridDim.x) {
        const float *xb = x + b * len, *gyb = gy + b * len;
        double2 st = block_stats(xb, len, eps, centred, sd);
        int64_t c0 = affine_c0(sh, b);
        double sum_g = 0, sum_gx = 0;
        for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
            double g = gyb[i] * (double)(gamma ? gamma[c0 + i / sh.s] : 1.0f);
            sum_g += g;
            sum_gx += g * (xb[i] - st.x) * st.y;
        }
        sum_g = block_sum(sum_g, sd);
        sum_gx = block_sum(sum_gx, sd);
        double mean_g = centred ? sum_g / (double)len : 0, mean_gx = sum_gx / (double)len;
        for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
            double w = gamma ? gamma[c0 + i / sh.s] : 1.0f;
            double xhat = (xb[i] - st.x) * st.y;
            gx[b * len + i] = (float)(st.y * (gyb[i] * w - mean_g - xhat * mean_gx));
        }
        if (threadIdx.x == 0 && stats)
            stats[b] = st;
    }
}

/* ggamma[p, c] = Σ gy·xhat, gbeta[p, c] = Σ gy over the rows of sample p
 * (all rows when the parameters are shared) and s; one block per (p, c),
 * threads over (rows, s). */
__global__ void affine_grads_kernel(const float *gy, const float *x, const double2 *stats,
                                    norm_shape sh, float *ggamma, float *gbeta)
{
    __shared__ double sd[32];
    int64_t cpg = sh.c / sh.groups, samples = sh.n / sh.per;
    for (int64_t pc = blockIdx.x; pc < samples * sh.c; pc += gridDim.x) {
        int64_t p = pc / sh.c, c = pc % sh.c, r0 = p * sh.per;
        double sg = 0, sb = 0;
        for (int64_t i = threadIdx.x; i < sh.per * sh.s; i += blockDim.x) {
            int64_t row = r0 + i / sh.s, at = (row * sh.c + c) * sh.s + i % sh.s;
            double2 st = stats[row * sh.groups + c / cpg];
            sg += gy[at] * (x[at] - st.x) * st.y;
            sb += gy[at];
        }
        sg = block_sum(sg, sd);
        sb = block_sum(sb, sd);
        if (threadIdx.x == 0) {
            if (ggamma)
                ggamma[pc] = (float)sg;
            if (gbeta)
                gbeta[pc] = (float)sb;
        }
    }
}

/* A layer norm's affine gradients as column sums over each sample's rows
 * ([P, per, D], coalesced; columns.cuh): gy·xhat for gamma, gy for beta. */
struct gy_xhat {
    const float *gy, *x;
    const double2 *stats;
    int64_t per, D;
    __device__ double operator()(int64_t p, int64_t r, int64_t c) const
    {
        int64_t row = p * per + r;
        double2 st = stats[row];
        return gy[row * D + c] * (x[row * D + c] - st.x) * st.y;
    }
};

static osp_status affine_grads(const osp_node *n, norm_shape sh, const double2 *stats,
                               osp_tensor *gg, osp_tensor *gb)
{
    const float *gy = cu_f32(n->in[0]), *x = cu_f32(n->in[1]);
    if (sh.s == 1 && sh.groups == 1) { /* layer norm: rows of D */
        int64_t P = sh.n / sh.per;
        osp_status st = OSP_OK;
        if (gg)
            st = cu_column_sums(n, gy_xhat{gy, x, stats, sh.per, sh.c}, cu_f32(gg), P, sh.per,
                                sh.c, 1.0);
        if (st == OSP_OK && gb)
            st = cu_column_sums(n, column_of{gy, sh.per, sh.c}, cu_f32(gb), P, sh.per, sh.c,
                                1.0);
        return st;
    }
    affine_grads_kernel<<<cu_grid(sh.n / sh.per * sh.c, 1), CU_THREADS, 0, cu_stream()>>>(
        gy, x, stats, sh, gg ? cu_f32(gg) : NULL, gb ? cu_f32(gb) : NULL);
    return CU_LAUNCHED(n, "normalisation parameter gradient kernel");
}

static osp_status norm_backward(const osp_node *n, norm_shape sh, bool centred)
{
    int64_t blocks = sh.n * sh.groups, len = sh.groups ? sh.c / sh.groups * sh.s : 0;
    osp_tensor *gg = n->n_out > 1 ? n->out[1] : NULL, *gb = n->n_out > 2 ? n->out[2] : NULL;
    sh = with_affine(sh, n->in[2] ? n->in[2] : gg ? gg : gb);
    if (blocks == 0 || len == 0) {
        for (int i = 0; i < n->n_out; i++)
            if (n->out[i] && osp_nbytes(n->out[i]))
                CU_TRY(n, cudaMemsetAsync(cu_ptr(n->out[i]), 0, osp_nbytes(n->out[i]),
                                          cu_stream()));
        return OSP_OK;
    }
    osp_storage *stats = NULL;
    if (gg || gb) {
        stats = cu_scratch((size_t)blocks * sizeof(double2));
        if (!stats)
            return osp_error_code();
    }
    int threads = len <= 32 ? 32 : len <= 256 ? 128 : CU_THREADS;
    norm_backward_kernel<<<cu_grid(blocks, 1), threads, 0, cu_stream()>>>(
        cu_f32(n->in[0]), cu_f32(n->in[1]), cu_opt(n, 2), cu_f32(n->out[0]),
        stats ? (double2 *)stats->data : NULL, sh, n->p.norm.eps, centred);
    osp_status st = CU_LAUNCHED(n, "normalisation backward kernel");
    if (st == OSP_OK && stats)
        st = affine_grads(n, sh, (const double2 *)stats->data, gg, gb);
    osp_storage_release(stats);
    return st;
}

extern "C" osp_status cuda_group_norm_backward(const osp_node *n)
{
    return norm_backward(n, group_norm_shape(n->in[1], n->p.norm.groups), true);
}

extern "C" osp_status cuda_layer_norm_backward(const osp_node *n)
{
    return norm_backward(n, last_axis_shape(n->in[1]), true);
}

extern "C" osp_status cuda_rms_norm_backward(const osp_node *n)
{
    return norm_backward(n, last_axis_shape(n->in[1]), false);
}
