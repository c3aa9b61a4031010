/* attention.cu — fused scaled-dot-product attention forward (flash
 * attention: online softmax over key tiles, no score matrix in memory) for
 * head dims 64 and 72, float32 (CPU reference: cpu_attention.c). Other
 * head dims and the backward take the GEMM path in
 * backend/cuda/cuda_attention.c.
 *
 * One thread per query row, BQ rows per block (128, or 32 for short query
 * sequences such as the temporal attention's 17 frames): the thread keeps its scaled
 * q row and output accumulator in registers; the block stages BK keys and
 * values at a time in shared memory (every thread reads the same key, a
 * broadcast). Per tile: scores s_j = q·k_j + mask, new running max m',
 * acc and the running sum l rescaled by e^(m - m'), then
 * acc += e^(s_j - m')·v_j. A fully masked row ends with l = 0 and comes out
 * NaN, as on the CPU. */
#include "common.cuh"

#define BK 32

struct mask_steps {
    int64_t st[4];
};

template <int D, int BQ>
__global__ void __launch_bounds__(BQ)
flash_forward(const float *__restrict__ q, const float *__restrict__ k,
              const float *__restrict__ v, const float *__restrict__ mask, mask_steps ms,
              float *__restrict__ o, int64_t H, int64_t Lq, int64_t Lk, int64_t q_tiles,
              float scale)
{
    __shared__ float ks[BK][D];
    __shared__ float vs[BK][D];
    int64_t bh = blockIdx.x / q_tiles, i = blockIdx.x % q_tiles * BQ + threadIdx.x;
    bool active = i < Lq;
    int64_t ic = active ? i : Lq - 1;
    const float *qp = q + (bh * Lq + ic) * D;
    float qr[D], acc[D];
#pragma unroll
    for (int d = 0; d < D; d++) {
        qr[d] = qp[d] * scale;
        acc[d] = 0.0f;
    }
    const float *mrow = mask ? mask + (bh / H) * ms.st[0] + (bh % H) * ms.st[1] + ic * ms.st[2]
                             : NULL;
    const float *kb = k + bh * Lk * D, *vb = v + bh * Lk * D;
    float m = -INFINITY, l = 0.0f;
    for (int64_t j0 = 0; j0 < Lk; j0 += BK) {
        int nk = Lk - j0 < BK ? (int)(Lk - j0) : BK;
        __syncthreads();
        for (int t = threadIdx.x; t < nk * D; t += BQ) {
            ks[t / D][t % D] = kb[j0 * D + t];
            vs[t / D][t % D] = vb[j0 * D + t];
        }
        __syncthreads();
        float s[BK], tmax = -INFINITY;
#pragma unroll
        for (int j = 0; j < BK; j++) {
            float dot = -INFINITY;
            if (j < nk) {
                dot = 0.0f;
#pragma unroll
                for (int d = 0; d < D; d++)
                    dot += qr[d] * ks[j][d];
                if (mrow)
                    dot += mrow[(j0 + j) * ms.st[3]];
            }
            s[j] = dot;
            tmax = fmaxf(tmax, dot);
        }
        float mnew = fmaxf(m, tmax);
        bool none = mnew == -INFINITY; /* every score so far masked out */
        float alpha = none ? 1.0f : expf(m - mnew);
        l *= alpha;
#pragma unroll
        for (int d = 0; d < D; d++)
            acc[d] *= alpha;
#pragma unroll
        for (int j = 0; j < BK; j++) {
            float p = (none || j >= nk) ? 0.0f : expf(s[j] - mnew);
            l += p;
#pragma unroll
            for (int d = 0; d < D; d++)
                acc[d] += p * vs[j][d];
        }
        m = mnew;
    }
    if (active) {
        float *op = o + (bh * Lq + i) * D;
#pragma unroll
        for (int d = 0; d < D; d++)
            op[d] = acc[d] / l;
    }
}

extern "C" bool cu_flash_supported(int64_t D, int64_t Dv)
{
    return D == Dv && (D == 64 || D == 72);
}

extern "C" osp_status cu_flash_attention(const osp_node *n, const float *q, const float *k,
                                         const float *v, const float *mask,
                                         const int64_t *mask_step, float *o, int64_t B,
                                         int64_t H, int64_t Lq, int64_t Lk, int64_t D,
                                         float scale)
{
    mask_steps ms = {{0, 0, 0, 0}};
    for (int i = 0; mask && i < 4; i++)
        ms.st[i] = mask_step[i];
    if (D != 64 && D != 72)
        return cu_fail(n, OSP_ERR_RUNTIME, "flash attention", "head dim has no kernel instance");
    bool short_q = Lq <= 32;
    int bq = short_q ? 32 : 128;
    int64_t q_tiles = (Lq + bq - 1) / bq, blocks = B * H * q_tiles;
    if (blocks == 0)
        return OSP_OK;
    if (blocks > INT32_MAX)
        return cu_fail(n, OSP_ERR_RUNTIME, "flash attention", "too many heads and query rows");
    unsigned grid = (unsigned)blocks;
    cudaStream_t s = cu_stream();
    if (D == 64 && short_q)
        flash_forward<64, 32><<<grid, 32, 0, s>>>(q, k, v, mask, ms, o, H, Lq, Lk, q_tiles, scale);
    else if (D == 64)
        flash_forward<64, 128><<<grid, 128, 0, s>>>(q, k, v, mask, ms, o, H, Lq, Lk, q_tiles, scale);
    else if (short_q)
        flash_forward<72, 32><<<grid, 32, 0, s>>>(q, k, v, mask, ms, o, H, Lq, Lk, q_tiles, scale);
    else
        flash_forward<72, 128><<<grid, 128, 0, s>>>(q, k, v, mask, ms, o, H, Lq, Lk, q_tiles, scale);
    return CU_LAUNCHED(n, "flash attention kernel");
}
