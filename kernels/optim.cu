/* optim.cu — the in-place optimizer updates, AdamW and EMA (CPU reference:
 * backend/cpu/cpu_optim.c). Memory-bound: AdamW reads p, m, v, g and
 * writes p, m, v, 28 bytes per element. The same operation order as the
 * CPU, with explicit round-to-nearest intrinsics so that nvcc fuses nothing
 * into FMAs the CPU does not have; the square root and the division are
 * IEEE-rounded in both. */
#include "common.cuh"

__global__ void adamw_kernel(float *p, float *m, float *v, const float *g, int64_t n,
                             osp_adamw_scalars c)
{
    bool low = c.w1 < 0.5f; /* torch.lerp's two formulas */
    CU_FOR(j, n)
    {
        float gj = g ? g[j] : 0.0f, mj = m[j], vj = v[j];
        mj = low ? __fadd_rn(mj, __fmul_rn(c.w1, __fsub_rn(gj, mj)))
                 : __fsub_rn(gj, __fmul_rn(__fsub_rn(gj, mj), __fsub_rn(1.0f, c.w1)));
        vj = __fadd_rn(__fmul_rn(vj, c.b2), __fmul_rn(__fmul_rn(c.w2, gj), gj));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vj), c.bc2_sqrt), c.eps);
        p[j] = __fadd_rn(__fmul_rn(p[j], c.decay), __fdiv_rn(__fmul_rn(c.step_size, mj), denom));
        m[j] = mj;
        v[j] = vj;
    }
}

__global__ void ema_kernel(float *s, const float *p, int64_t n, float w)
{
    CU_FOR(j, n) s[j] = __fsub_rn(s[j], __fmul_rn(w, __fsub_rn(s[j], p[j])));
}

extern "C" osp_status cuda_adamw(const osp_node *n)
{
    int64_t total = osp_numel(n->in[0]);
    if (total == 0)
        return OSP_OK;
    adamw_kernel<<<cu_grid(total), CU_THREADS, 0, cu_stream()>>>(
        cu_f32(n->in[0]), cu_f32(n->in[1]), cu_f32(n->in[2]), cu_opt(n, 3), total, n->p.adamw);
    return CU_LAUNCHED(n, "adamw kernel");
}

extern "C" osp_status cuda_ema(const osp_node *n)
{
    int64_t total = osp_numel(n->in[0]);
    if (total == 0)
        return OSP_OK;
    ema_kernel<<<cu_grid(total), CU_THREADS, 0, cu_stream()>>>(cu_f32(n->in[0]), cu_f32(n->in[1]),
                                                                 total, n->p.ema.weight);
    return CU_LAUNCHED(n, "ema kernel");
}
