/* embed.cu — embedding lookup and its scatter-add backward, the sinusoidal
 * timestep embedding, and the Philox normal generator (CPU reference:
 * cpu_embed.c, cpu_random.c and core/rng.c). */
#include "common.cuh"

__device__ inline int64_t id_at(const void *ids, bool i32, int64_t i)
{
    return i32 ? ((const int32_t *)ids)[i] : ((const int64_t *)ids)[i];
}

__global__ void check_ids_kernel(const void *ids, bool i32, int64_t n, int64_t v,
                                 unsigned long long *first_bad)
{
    CU_FOR(i, n) {
        int64_t id = id_at(ids, i32, i);
        if (id < 0 || id >= v)
            atomicMin(first_bad, (unsigned long long)i);
    }
}

/* Error (OSP_ERR_DATA) naming the first id outside [0, v), as the CPU
 * reports it; this reads one word back, so it waits for the stream. */
static osp_status check_ids(const osp_node *n, const osp_tensor *ids, int64_t v)
{
    int64_t count = osp_numel(ids);
    if (count == 0)
        return OSP_OK;
    osp_storage *flag = cu_scratch(sizeof(unsigned long long));
    if (!flag)
        return osp_error_code();
    bool i32 = ids->dtype == OSP_I32;
    unsigned long long bad = ~0ull;
    int64_t id = 0;
    osp_status st = cu_check(n, cudaMemsetAsync(flag->data, 0xff, sizeof bad, cu_stream()),
                             "embedding id check");
    if (st == OSP_OK) {
        check_ids_kernel<<<cu_grid(count), CU_THREADS, 0, cu_stream()>>>(
            cu_ptr(ids), i32, count, v, (unsigned long long *)flag->data);
        st = CU_LAUNCHED(n, "embedding id check kernel");
    }
    if (st == OSP_OK)
        st = cu_check(n, cudaMemcpyAsync(&bad, flag->data, sizeof bad, cudaMemcpyDeviceToHost,
                                         cu_stream()), "embedding id check");
    if (st == OSP_OK)
        st = cu_check(n, cudaStreamSynchronize(cu_stream()), "embedding id check");
    if (st == OSP_OK && bad != ~0ull) {
        size_t item = osp_dtype_size(ids->dtype);
        int32_t id32 = 0;
        st = cu_check(n, cudaMemcpyAsync(i32 ? (void *)&id32 : (void *)&id,
                                         (const char *)cu_ptr(ids) + bad * item, item,
                                         cudaMemcpyDeviceToHost, cu_stream()),
                      "embedding id check");
        if (st == OSP_OK)
            st = cu_check(n, cudaStreamSynchronize(cu_stream()), "embedding id check");
        if (i32)
            id = id32;
    }
    osp_storage_release(flag);
    if (st == OSP_OK && bad != ~0ull)
        st = osp_error(OSP_ERR_DATA,
                       "embedding: id %lld at position %llu is outside the table's %lld rows",
                       (long long)id, bad, (long long)v);
    return st;
}

__global__ void embedding_kernel(const float *table, const void *ids, bool i32, float *y,
                                 int64_t rows, int64_t d)
{
    CU_FOR(i, rows * d) y[i] = table[id_at(ids, i32, i / d) * d + i % d];
}

extern "C" osp_status cuda_embedding(const osp_node *n)
{
    const osp_tensor *table = n->in[0], *ids = n->in[1];
    int64_t v = table->shape[0], d = table->shape[1], rows = osp_numel(ids);
    if (check_ids(n, ids, v))
        return osp_error_code();
    if (rows * d == 0)
        return OSP_OK;
    embedding_kernel<<<cu_grid(rows * d), CU_THREADS, 0, cu_stream()>>>(
        cu_f32(table), cu_ptr(ids), ids->dtype == OSP_I32, cu_f32(n->out[0]), rows, d);
    return CU_LAUNCHED(n, "embedding kernel");
}

__global__ void embedding_backward_kernel(const float *gy, const void *ids, bool i32,
                                          float *gt, int64_t rows, int64_t d)
{
    CU_FOR(i, rows * d) atomicAdd(gt + id_at(ids, i32, i / d) * d + i % d, gy[i]);
}

extern "C" osp_status cuda_embedding_backward(const osp_node *n)
{
    const osp_tensor *gy = n->in[0], *ids = n->in[1];
    osp_tensor *gt = n->out[0];
    int64_t v = gt->shape[0], d = gt->shape[1], rows = osp_numel(ids);
    if (check_ids(n, ids, v))
        return osp_error_code();
    CU_TRY(n, cudaMemsetAsync(cu_ptr(gt), 0, osp_nbytes(gt), cu_stream()));
    if (rows * d == 0)
        return OSP_OK;
    embedding_backward_kernel<<<cu_grid(rows * d), CU_THREADS, 0, cu_stream()>>>(
        cu_f32(gy), cu_ptr(ids), ids->dtype == OSP_I32, cu_f32(gt), rows, d);
    return CU_LAUNCHED(n, "embedding backward kernel");
}

/* diffusers' get_timestep_embedding in float32, as cpu_embed.c rounds it;
 * exp, sin and cos are evaluated in double and rounded once, which is what
 * glibc's correctly rounded float versions give. */
__global__ void timestep_kernel(const float *t, float *y, int64_t b, int dim, float neg_log_period,
                                float denom, float scale, bool flip)
{
    int half = dim / 2;
    CU_FOR(idx, b * (int64_t)dim) {
        int64_t r = idx / dim;
        int col = (int)(idx % dim);
        if (col >= 2 * half) {
            y[idx] = 0.0f;
            continue;
        }
        bool first = col < half;
        int i = first ? col : col - half;
        float e = neg_log_period * (float)i / denom;
        float a = scale * (t[r] * (float)exp((double)e));
        bool want_sin = first != flip;
        y[idx] = want_sin ? (float)sin((double)a) : (float)cos((double)a);
    }
}

extern "C" osp_status cuda_timestep_embedding(const osp_node *n)
{
    int64_t b = n->in[0]->shape[0];
    int dim = n->p.timestep.dim, half = dim / 2;
    if (b * dim == 0)
        return OSP_OK;
    float neg_log_period = (float)-log((double)n->p.timestep.max_period);
    float denom = (float)((double)half - (double)n->p.timestep.downscale_freq_shift);
    timestep_kernel<<<cu_grid(b * dim), CU_THREADS, 0, cu_stream()>>>(
        cu_f32(n->in[0]), cu_f32(n->out[0]), b, dim, neg_log_period, denom,
        n->p.timestep.scale, n->p.timestep.flip_sin_to_cos);
    return CU_LAUNCHED(n, "timestep embedding kernel");
}

/* ---- Philox-4x32-10 normals, bit for bit as core/rng.c computes them:
 * the same double operations in the same order, each correctly rounded
 * and never contracted into an FMA (the __d*_rn intrinsics). ---- */

#define LN2 0x1.62e42fefa39efp-1
#define SQRT2 0x1.6a09e667f3bcdp+0
#define PI_2 0x1.921fb54442d18p+0

__constant__ double inv_factorial[19] = {
    1.0 / 1.0, 1.0 / 1.0, 1.0 / 2.0, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0,
    1.0 / 5040.0, 1.0 / 40320.0, 1.0 / 362880.0, 1.0 / 3628800.0, 1.0 / 39916800.0,
    1.0 / 479001600.0, 1.0 / 6227020800.0, 1.0 / 87178291200.0, 1.0 / 1307674368000.0,
    1.0 / 20922789888000.0, 1.0 / 355687428096000.0, 1.0 / 6402373705728000.0,
};

__device__ inline void philox(uint32_t c[4], uint32_t k0, uint32_t k1)
{
#pragma unroll
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
        c[0] = n0;
        c[1] = (uint32_t)p1;
        c[2] = n2;
        c[3] = (uint32_t)p0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

__device__ inline double ln_unit_interval(uint32_t a)
{
    uint64_t m = 2 * (uint64_t)a + 1;
    int k = 63 - __clzll((long long)m);
    double mant = ldexp((double)m, -k);
    if (mant > SQRT2) {
        mant = __dmul_rn(mant, 0.5);
        k += 1;
    }
    double s = __ddiv_rn(__dsub_rn(mant, 1.0), __dadd_rn(mant, 1.0)), z = __dmul_rn(s, s);
    double poly = __ddiv_rn(1.0, 21.0);
    for (int n = 9; n >= 0; n--)
        poly = __dadd_rn(__dmul_rn(poly, z), __ddiv_rn(1.0, (double)(2 * n + 1)));
    return __dadd_rn(__dmul_rn(__dmul_rn(2.0, s), poly), __dmul_rn((double)(k - 33), LN2));
}

__device__ inline void cos_sin_turn(uint32_t b, double *cos_out, double *sin_out)
{
    unsigned q = b >> 30;
    double f = __dmul_rn((double)(b & 0x3FFFFFFFu), 0x1p-30);
    bool swap = f > 0.5;
    if (swap)
        f = __dsub_rn(1.0, f);
    double x = __dmul_rn(f, PI_2), w = __dmul_rn(x, x);
    double ps = inv_factorial[17], pc = inv_factorial[18];
    for (int k = 7; k >= 0; k--)
        ps = __dadd_rn(__dmul_rn(ps, -w), inv_factorial[2 * k + 1]);
    for (int k = 8; k >= 0; k--)
        pc = __dadd_rn(__dmul_rn(pc, -w), inv_factorial[2 * k]);
    double s = __dmul_rn(x, ps), c = pc;
    if (swap) {
        double t = s;
        s = c;
        c = t;
    }
    switch (q) {
    case 0: *cos_out = c; *sin_out = s; break;
    case 1: *cos_out = -s; *sin_out = c; break;
    case 2: *cos_out = -c; *sin_out = -s; break;
    default: *cos_out = s; *sin_out = -c; break;
    }
}

__device__ inline void box_muller(uint32_t a, uint32_t b, float *z)
{
    double r = __dsqrt_rn(__dmul_rn(-2.0, ln_unit_interval(a))), c, s;
    cos_sin_turn(b, &c, &s);
    z[0] = __double2float_rn(__dmul_rn(r, c));
    z[1] = __double2float_rn(__dmul_rn(r, s));
}

/* One thread per Philox block: element e = offset + j lands in dst[j]. */
__global__ void randn_kernel(float *dst, uint64_t seed, uint64_t offset, uint64_t last,
                             uint64_t first_blk, int64_t blocks)
{
    CU_FOR(i, blocks) {
        uint64_t blk = first_blk + (uint64_t)i;
        uint32_t c[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), 0, 0};
        philox(c, (uint32_t)seed, (uint32_t)(seed >> 32));
        float v[4];
        box_muller(c[0], c[1], v);
        box_muller(c[2], c[3], v + 2);
        for (unsigned lane = 0; lane < 4; lane++) {
            uint64_t e = blk * 4 + lane;
            if (e >= offset && e <= last)
                dst[e - offset] = v[lane];
        }
    }
}

extern "C" osp_status cuda_randn(const osp_node *n)
{
    osp_tensor *y = n->out[0];
    int64_t count = osp_numel(y);
    uint64_t offset = n->p.randn.offset;
    if (count == 0)
        return OSP_OK;
    if ((uint64_t)(count - 1) > UINT64_MAX - offset)
        return osp_error(OSP_ERR_RUNTIME,
                         "random fill: %lld elements from offset %llu run past 2^64",
                         (long long)count, (unsigned long long)offset);
    uint64_t last = offset + (uint64_t)(count - 1), first_blk = offset / 4;
    int64_t blocks = (int64_t)(last / 4 - first_blk) + 1;
    randn_kernel<<<cu_grid(blocks), CU_THREADS, 0, cu_stream()>>>(cu_f32(y), n->p.randn.seed,
                                                                  offset, last, first_blk, blocks);
    return CU_LAUNCHED(n, "randn kernel");
}
