/* attention.cu — fused scaled-dot-product attention forward (flash
 * attention: online softmax over key tiles, no score matrix in memory) for
 * head dims 64 and 72 (CPU reference: cpu_attention.c). Other head dims
 * and the backward take the GEMM path in backend/cuda/cuda_attention.c.
 * Two kernels:
 *
 * float32 (flash_forward): one thread per query row, BQ rows per block
 * (128, or 32 for short query sequences such as the temporal attention's
 * 17 frames): the thread keeps its scaled q row and output accumulator in
 * registers; the block stages BK keys and values at a time in shared
 * memory (every thread reads the same key, a broadcast). Per tile: scores
 * s_j = q·k_j + mask, new running max m', acc and the running sum l
 * rescaled by e^(m - m'), then acc += e^(s_j - m')·v_j. A fully masked row
 * ends with l = 0 and comes out NaN, as on the CPU.
 *
 * bf16 tensor cores (flash_forward_tc, in bf16 mode: OSP_CUDA_BF16): the
 * same online softmax on mma.sync m16n8k16 products with float32
 * accumulation. Each warp owns 16 query rows; q, k and v are rounded to
 * bf16 as they are staged in shared memory, the probabilities as they
 * enter P·V; scores, softmax statistics and the output stay float32.
 *
 * Both read q, k, v and write o through their batch, head and row strides
 * (unit stride along the head dim), so the per-head views of a linear's
 * output [B, L, H·D] and an output stored as [B, Lq, H, D] need no copies. */
#include "common.cuh"

#include <cuda_bf16.h>

#define BK 32

struct mask_steps {
    int64_t st[4];
};

/* Element strides of a [B, H, L, D] operand along b, h and its rows (the
 * frontend keeps row strides below 2^31). */
struct head_strides {
    int64_t b, h;
    int row;
};

struct flash_layout {
    head_strides q, k, v, o;
};

/* Offset of head (b, h). */
__device__ inline int64_t head_at(const head_strides &s, int64_t b, int64_t h)
{
    return b * s.b + h * s.h;
}

template <int D, int BQ>
__global__ void __launch_bounds__(BQ)
flash_forward(const float *__restrict__ q, const float *__restrict__ k,
              const float *__restrict__ v, const float *__restrict__ mask, mask_steps ms,
              float *__restrict__ o, flash_layout ly, int64_t H, int64_t Lq, int64_t Lk,
              int64_t q_tiles, float scale)
{
    __shared__ float ks[BK][D];
    __shared__ float vs[BK][D];
    int64_t bh = blockIdx.x / q_tiles, i = blockIdx.x % q_tiles * BQ + threadIdx.x;
    int64_t b = bh / H, h = bh % H;
    bool active = i < Lq;
    int64_t ic = active ? i : Lq - 1;
    const float *qp = q + head_at(ly.q, b, h) + ic * ly.q.row;
    float *op = o + head_at(ly.o, b, h) + ic * ly.o.row;
    float qr[D], acc[D];
#pragma unroll
    for (int d = 0; d < D; d++) {
        qr[d] = qp[d] * scale;
        acc[d] = 0.0f;
    }
    const float *mrow = mask ? mask + b * ms.st[0] + h * ms.st[1] + ic * ms.st[2] : NULL;
    const float *kb = k + head_at(ly.k, b, h), *vb = v + head_at(ly.v, b, h);
    float m = -INFINITY, l = 0.0f;
    for (int64_t j0 = 0; j0 < Lk; j0 += BK) {
        int nk = Lk - j0 < BK ? (int)(Lk - j0) : BK;
        __syncthreads();
        const float *kt = kb + j0 * ly.k.row, *vt = vb + j0 * ly.v.row;
        for (int t = threadIdx.x; t < nk * D; t += BQ) {
            int j = t / D, d = t % D;
            ks[j][d] = kt[(int64_t)j * ly.k.row + d];
            vs[j][d] = vt[(int64_t)j * ly.v.row + d];
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
        /* rows of vs at and past nk hold whatever an earlier tile or
         * kernel left there (NaN would survive a multiplication by 0) */
#pragma unroll
        for (int j = 0; j < BK; j++) {
            if (j >= nk)
                break;
            float p = none ? 0.0f : expf(s[j] - mnew);
            l += p;
#pragma unroll
            for (int d = 0; d < D; d++)
                acc[d] += p * vs[j][d];
        }
        m = mnew;
    }
    if (active) {
#pragma unroll
        for (int d = 0; d < D; d++)
            op[d] = acc[d] / l;
    }
}

/* ---- bf16 tensor cores ---- */

#define TC_BK 64 /* keys per tile */

/* Two bf16 in one register, lo in the low half (the element with the
 * smaller column index, as mma.sync's fragments hold them). */
__device__ inline uint32_t pack_bf16(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* Two adjacent bf16 of shared memory (the first at an even index). */
__device__ inline uint32_t pair_at(const __nv_bfloat16 *p)
{
    return *reinterpret_cast<const uint32_t *>(p);
}

/* c (16x8, f32) += a (16x16, bf16, row-major fragment) · b (16x8, bf16,
 * column-major fragment). Fragment layout (PTX ISA, mma.m16n8k16): with
 * g = lane / 4 and t = lane % 4, a holds rows g and g+8 at columns 2t, 2t+1
 * and 2t+8, 2t+9 (registers: (g, 2t), (g+8, 2t), (g, 2t+8), (g+8, 2t+8));
 * b holds column g at rows 2t, 2t+1 and 2t+8, 2t+9; c holds rows g and
 * g+8 at columns 2t, 2t+1. */
__device__ inline void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
#ifdef OSP_CUEMU /* the host emulation of tests/cuemu */
    cuemu::mma_m16n8k16_bf16(c, a, b0, b1);
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

/* Stages rows [r0, r0 + ROWS) of a [len, D] float32 matrix (rows ld
 * apart) as bf16 into dst[ROWS][STRIDE], zero past len and in the padding
 * columns up to COLS; TRANSPOSE writes dst[d][row] instead (v, for P·V's
 * b fragments). */
template <int D, int ROWS, int COLS, int STRIDE, bool TRANSPOSE>
__device__ inline void stage_bf16(__nv_bfloat16 *dst, const float *src, int64_t ld, int64_t r0,
                                  int64_t len)
{
    for (int e = threadIdx.x; e < ROWS * COLS; e += blockDim.x) {
        int r = e / COLS, d = e % COLS;
        float x = (r0 + r < len && d < D) ? src[(r0 + r) * ld + d] : 0.0f;
        if (TRANSPOSE)
            dst[d * STRIDE + r] = __float2bfloat16_rn(x);
        else
            dst[r * STRIDE + d] = __float2bfloat16_rn(x);
    }
}

template <int D, int WARPS>
__global__ void __launch_bounds__(WARPS * 32)
flash_forward_tc(const float *__restrict__ q, const float *__restrict__ k,
                 const float *__restrict__ v, const float *__restrict__ mask, mask_steps ms,
                 float *__restrict__ o, flash_layout ly, int64_t H, int64_t Lq, int64_t Lk,
                 int64_t q_tiles, float scale)
{
    constexpr int BQ = WARPS * 16;
    constexpr int DP = (D + 15) / 16 * 16; /* q·k runs in k-steps of 16 */
    constexpr int KSTEPS = DP / 16, NT = D / 8;
    /* Row strides padded by 8 bf16 (16 bytes): the 8 rows a fragment load
     * touches then fall in distinct banks. */
    constexpr int QK_STRIDE = DP + 8, VT_STRIDE = TC_BK + 8;
    __shared__ __align__(16) __nv_bfloat16 qs[BQ * QK_STRIDE];
    __shared__ __align__(16) __nv_bfloat16 ks[TC_BK * QK_STRIDE];
    __shared__ __align__(16) __nv_bfloat16 vt[D * VT_STRIDE];

    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    int64_t bh = blockIdx.x / q_tiles, q0 = blockIdx.x % q_tiles * BQ;
    int64_t b = bh / H, hd = bh % H; /* batch item and head */
    const float *kb = k + head_at(ly.k, b, hd), *vb = v + head_at(ly.v, b, hd);

    stage_bf16<D, BQ, DP, QK_STRIDE, false>(qs, q + head_at(ly.q, b, hd), ly.q.row, q0, Lq);
    __syncthreads();
    uint32_t qf[KSTEPS][4];
    const __nv_bfloat16 *qw = qs + warp * 16 * QK_STRIDE;
#pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) {
        int c = kk * 16 + 2 * t;
        qf[kk][0] = pair_at(qw + g * QK_STRIDE + c);
        qf[kk][1] = pair_at(qw + (g + 8) * QK_STRIDE + c);
        qf[kk][2] = pair_at(qw + g * QK_STRIDE + c + 8);
        qf[kk][3] = pair_at(qw + (g + 8) * QK_STRIDE + c + 8);
    }

    /* This thread's two rows: g and g + 8 of the warp's 16 (clamped for
     * the mask lookups; rows past Lq are computed and not stored). */
    int64_t row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
    const float *mrow[2] = {NULL, NULL};
    for (int h = 0; mask && h < 2; h++) {
        int64_t rc = row[h] < Lq ? row[h] : Lq - 1;
        mrow[h] = mask + b * ms.st[0] + hd * ms.st[1] + rc * ms.st[2];
    }
    float acc[NT][4];
#pragma unroll
    for (int n = 0; n < NT; n++)
        acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

    for (int64_t j0 = 0; j0 < Lk; j0 += TC_BK) {
        __syncthreads(); /* the previous tile has been read */
        stage_bf16<D, TC_BK, DP, QK_STRIDE, false>(ks, kb, ly.k.row, j0, Lk);
        stage_bf16<D, TC_BK, D, VT_STRIDE, true>(vt, vb, ly.v.row, j0, Lk);
        __syncthreads();

        /* S = q kᵀ: 8 column tiles of 8 keys */
        float s[TC_BK / 8][4];
#pragma unroll
        for (int j = 0; j < TC_BK / 8; j++) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
            const __nv_bfloat16 *kr = ks + (j * 8 + g) * QK_STRIDE + 2 * t;
#pragma unroll
            for (int kk = 0; kk < KSTEPS; kk++)
                mma_bf16(s[j], qf[kk], pair_at(kr + kk * 16), pair_at(kr + kk * 16 + 8));
        }
        /* scale, mask, keys past Lk; the tile's row maxima over the quad
         * of threads sharing a row */
        float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < TC_BK / 8; j++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                int h = c >> 1;
                int64_t key = j0 + j * 8 + 2 * t + (c & 1);
                float x = -INFINITY;
                if (key < Lk)
                    x = s[j][c] * scale + (mrow[h] ? mrow[h][key * ms.st[3]] : 0.0f);
                s[j][c] = x;
                tmax[h] = fmaxf(tmax[h], x);
            }
        bool none[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            tmax[h] = fmaxf(tmax[h], __shfl_xor_sync(0xffffffffu, tmax[h], 1));
            tmax[h] = fmaxf(tmax[h], __shfl_xor_sync(0xffffffffu, tmax[h], 2));
            float mnew = fmaxf(m[h], tmax[h]);
            none[h] = mnew == -INFINITY; /* every score so far masked out */
            float alpha = none[h] ? 1.0f : __expf(m[h] - mnew);
            l[h] *= alpha;
#pragma unroll
            for (int n = 0; n < NT; n++) {
                acc[n][2 * h] *= alpha;
                acc[n][2 * h + 1] *= alpha;
            }
            m[h] = mnew;
        }
#pragma unroll
        for (int j = 0; j < TC_BK / 8; j++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                int h = c >> 1;
                float p = none[h] ? 0.0f : __expf(s[j][c] - m[h]);
                s[j][c] = p;
                l[h] += p; /* this thread's columns; the quad is summed at the end */
            }
        /* acc += P v: the score tiles 2kk and 2kk+1 are P's k-step kk as
         * an a fragment (their c layout is a's, two columns at a time) */
#pragma unroll
        for (int kk = 0; kk < TC_BK / 16; kk++) {
            uint32_t a[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]),
                             pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                             pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int n = 0; n < NT; n++) {
                const __nv_bfloat16 *vr = vt + (n * 8 + g) * VT_STRIDE + kk * 16 + 2 * t;
                mma_bf16(acc[n], a, pair_at(vr), pair_at(vr + 8));
            }
        }
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        if (row[h] >= Lq)
            continue;
        float *orow = o + head_at(ly.o, b, hd) + row[h] * ly.o.row + 2 * t;
#pragma unroll
        for (int n = 0; n < NT; n++) {
            orow[n * 8] = acc[n][2 * h] / l[h];
            orow[n * 8 + 1] = acc[n][2 * h + 1] / l[h];
        }
    }
}

/* Launches flash_forward_tc for head dim D: 4 warps (64 query rows) per
 * block, 2 (32 rows) for short query sequences. */
template <int D>
static void launch_tc(unsigned grid, int64_t q_tiles, const float *q, const float *k,
                      const float *v, const float *mask, mask_steps ms, float *o,
                      const flash_layout &ly, int64_t H, int64_t Lq, int64_t Lk, float scale,
                      cudaStream_t s)
{
    if (Lq <= 32)
        flash_forward_tc<D, 2><<<grid, 64, 0, s>>>(q, k, v, mask, ms, o, ly, H, Lq, Lk, q_tiles,
                                                   scale);
    else
        flash_forward_tc<D, 4><<<grid, 128, 0, s>>>(q, k, v, mask, ms, o, ly, H, Lq, Lk,
                                                    q_tiles, scale);
}

static head_strides strides_of(const osp_tensor *t)
{
    return {t->stride[0], t->stride[1], (int)(t->shape[2] > 1 ? t->stride[2] : t->shape[3])};
}

extern "C" bool cu_flash_supported(int64_t D, int64_t Dv)
{
    return D == Dv && (D == 64 || D == 72);
}

extern "C" osp_status cu_flash_attention(const osp_node *n, const int64_t *mask_step)
{
    const osp_tensor *qt = n->in[0], *kt = n->in[1], *vt = n->in[2], *ot = n->out[0];
    const float *q = cu_f32(qt), *k = cu_f32(kt), *v = cu_f32(vt);
    const float *mask = n->n_in > 3 && n->in[3] ? cu_f32(n->in[3]) : NULL;
    float *o = cu_f32(ot);
    int64_t B = qt->shape[0], H = qt->shape[1], Lq = qt->shape[2], Lk = kt->shape[2];
    int64_t D = qt->shape[3];
    float scale = n->p.attention.scale;
    flash_layout ly = {strides_of(qt), strides_of(kt), strides_of(vt), strides_of(ot)};
    mask_steps ms = {{0, 0, 0, 0}};
    for (int i = 0; mask && i < 4; i++)
        ms.st[i] = mask_step[i];
    if (D != 64 && D != 72)
        return cu_fail(n, OSP_ERR_RUNTIME, "flash attention", "head dim has no kernel instance");
    bool short_q = Lq <= 32, tc = cu_bf16();
    /* query rows per block: the float32 kernel's BQ, or 16 per warp */
    int bq = tc ? (short_q ? 32 : 64) : (short_q ? 32 : 128);
    int64_t q_tiles = (Lq + bq - 1) / bq, blocks = B * H * q_tiles;
    if (blocks == 0)
        return OSP_OK;
    if (blocks > INT32_MAX)
        return cu_fail(n, OSP_ERR_RUNTIME, "flash attention", "too many heads and query rows");
    unsigned grid = (unsigned)blocks;
    cudaStream_t s = cu_stream();
    if (tc && D == 64)
        launch_tc<64>(grid, q_tiles, q, k, v, mask, ms, o, ly, H, Lq, Lk, scale, s);
    else if (tc)
        launch_tc<72>(grid, q_tiles, q, k, v, mask, ms, o, ly, H, Lq, Lk, scale, s);
    else if (D == 64 && short_q)
        flash_forward<64, 32><<<grid, 32, 0, s>>>(q, k, v, mask, ms, o, ly, H, Lq, Lk, q_tiles,
                                                  scale);
    else if (D == 64)
        flash_forward<64, 128><<<grid, 128, 0, s>>>(q, k, v, mask, ms, o, ly, H, Lq, Lk, q_tiles,
                                                    scale);
    else if (short_q)
        flash_forward<72, 32><<<grid, 32, 0, s>>>(q, k, v, mask, ms, o, ly, H, Lq, Lk, q_tiles,
                                                  scale);
    else
        flash_forward<72, 128><<<grid, 128, 0, s>>>(q, k, v, mask, ms, o, ly, H, Lq, Lk, q_tiles,
                                                    scale);
    return CU_LAUNCHED(n, "flash attention kernel");
}
