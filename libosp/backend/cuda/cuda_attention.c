/* cuda_attention.c — scaled-dot-product attention on the GPU (CPU
 * reference: cpu_attention.c).
 *
 * Forward: the fused flash kernel (kernels/attention.cu) for head dims 64
 * and 72 (Latte's 72, T5-sized 64); otherwise the GEMM path, which
 * materialises the scores of a group of heads at a time (at most
 * SCORE_BUDGET bytes, at least one head): S = q kᵀ (cuBLASLt, batched over
 * the heads), P = softmax(scale·S + mask) per row, o = P v. That path
 * serves the VAE's single-head 512-channel attention, where one head's
 * scores are a few tens of MiB and GEMMs run at full speed.
 *
 * Backward (GEMM path for every head dim), per group of heads:
 *   P recomputed, dP = go vᵀ, dS = P ⊙ (dP - rowsum(dP ⊙ P)),
 *   gq = scale·dS k,  gk = scale·dSᵀ q,  gv = Pᵀ go.
 *
 * The frontend passes per-head views of [B, L, H·D] as they are and stores
 * o and the gradients in their inputs' memory order. The flash kernels
 * read and write those through their strides; the GEMM paths gather such
 * operands into contiguous temporaries first and scatter the outputs
 * back. */
#include "cuda.h"
#include "cuda_kernels.h"
#include "cuda_util.h"

#include <limits.h>

#define SCORE_BUDGET ((size_t)1 << 30)

typedef struct attn {
    int64_t B, H, Lq, Lk, D, Dv;
    float scale;
    const float *q, *k, *v, *mask;
    int64_t mask_step[4];
} attn;

/* q, k, v, mask are inputs first..first+3 of n. */
static attn attn_of(const osp_node *n, int first)
{
    const osp_tensor *q = n->in[first], *k = n->in[first + 1], *v = n->in[first + 2];
    const osp_tensor *mask = first + 3 < n->n_in ? n->in[first + 3] : NULL;
    attn a = {q->shape[0], q->shape[1], q->shape[2], k->shape[2], q->shape[3], v->shape[3],
              n->p.attention.scale, cu_f32(q), cu_f32(k), cu_f32(v),
              mask ? cu_f32(mask) : NULL, {0, 0, 0, 0}};
    if (mask) { /* steps right-aligned against [B, H, Lq, Lk]; 0 = broadcast */
        int64_t s = 1;
        for (int i = 3; i >= 0; i--) {
            int d = i - (4 - mask->ndim);
            int64_t size = d >= 0 ? mask->shape[d] : 1;
            a.mask_step[i] = size == 1 ? 0 : s;
            s *= size;
        }
    }
    return a;
}

/* Heads per group so that `per_head` score matrices fit the budget. */
static int64_t heads_per_group(const attn *a, int per_head)
{
    size_t head = (size_t)a->Lq * (size_t)a->Lk * sizeof(float) * (size_t)per_head;
    int64_t g = head ? (int64_t)(SCORE_BUDGET / head) : a->B * a->H;
    g = g < 1 ? 1 : g;
    return g < a->B * a->H ? g : a->B * a->H;
}

/* P for heads [bh0, bh0 + g) into p [g, Lq, Lk]. */
static osp_status probabilities(const osp_node *n, const attn *a, int64_t bh0, int64_t g,
                                float *p)
{
    if (osp_cuda_gemm(false, true, a->Lq, a->Lk, a->D, 1.0f, a->q + bh0 * a->Lq * a->D, a->D,
                      a->Lq * a->D, a->k + bh0 * a->Lk * a->D, a->D, a->Lk * a->D, 0.0f, p,
                      a->Lk, a->Lq * a->Lk, g, OSP_F32, OSP_F32))
        return osp_error_code();
    return cu_softmax_rows(n, p, p, g * a->Lq, a->Lk, a->scale, a->mask, a->mask_step, a->H,
                           a->Lq, bh0);
}

/* The GEMM path over contiguous operands. */
static osp_status attention_gemm(const osp_node *n)
{
    attn a = attn_of(n, 0);
    float *o = cu_f32(n->out[0]);
    int64_t heads = a.B * a.H;
    int64_t group = heads_per_group(&a, 1);
    osp_storage *scores = cu_scratch((size_t)group * (size_t)(a.Lq * a.Lk) * sizeof(float));
    if (!scores)
        return osp_error_code();
    float *p = scores->data;
    osp_status st = OSP_OK;
    for (int64_t bh0 = 0; st == OSP_OK && bh0 < heads; bh0 += group) {
        int64_t g = heads - bh0 < group ? heads - bh0 : group;
        st = probabilities(n, &a, bh0, g, p);
        if (st == OSP_OK && osp_cuda_gemm(false, false, a.Lq, a.Dv, a.Lk, 1.0f, p, a.Lk,
                                          a.Lq * a.Lk, a.v + bh0 * a.Lk * a.Dv, a.Dv,
                                          a.Lk * a.Dv, 0.0f, o + bh0 * a.Lq * a.Dv, a.Dv,
                                          a.Lq * a.Dv, g, OSP_F32, OSP_F32))
            st = osp_error_code();
    }
    osp_storage_release(scores);
    return st;
}

/* in: go, q, k, v, mask?   out: gq, gk, gv */
static osp_status attention_backward_gemm(const osp_node *n)
{
    attn a = attn_of(n, 1);
    const float *go = cu_f32(n->in[0]);
    float *gq = cu_f32(n->out[0]), *gk = cu_f32(n->out[1]), *gv = cu_f32(n->out[2]);
    int64_t heads = a.B * a.H;
    if (a.Lq == 0 || a.Lk == 0) { /* no query-key pairs: nothing flows */
        for (int i = 0; i < 3; i++)
            CU_TRY(n, cudaMemsetAsync(cu_ptr(n->out[i]), 0, osp_nbytes(n->out[i]), cu_stream()));
        return OSP_OK;
    }
    if (heads == 0)
        return OSP_OK;
    int64_t group = heads_per_group(&a, 2);
    size_t per = (size_t)group * (size_t)(a.Lq * a.Lk);
    osp_storage *scores = cu_scratch(2 * per * sizeof(float));
    if (!scores)
        return osp_error_code();
    float *p = scores->data, *ds = p + per;
    int64_t lqlk = a.Lq * a.Lk;
    osp_status st = OSP_OK;
    for (int64_t bh0 = 0; st == OSP_OK && bh0 < heads; bh0 += group) {
        int64_t g = heads - bh0 < group ? heads - bh0 : group;
        const float *qb = a.q + bh0 * a.Lq * a.D, *kb = a.k + bh0 * a.Lk * a.D;
        const float *vb = a.v + bh0 * a.Lk * a.Dv, *gob = go + bh0 * a.Lq * a.Dv;
        st = probabilities(n, &a, bh0, g, p);
        /* dP = go vᵀ into ds, then dS in place */
        if (st == OSP_OK)
            st = osp_cuda_gemm(false, true, a.Lq, a.Lk, a.Dv, 1.0f, gob, a.Dv, a.Lq * a.Dv, vb,
                               a.Dv, a.Lk * a.Dv, 0.0f, ds, a.Lk, lqlk, g, OSP_F32, OSP_F32);
        if (st == OSP_OK)
            st = cu_softmax_backward_rows(n, ds, p, ds, g * a.Lq, a.Lk);
        if (st == OSP_OK)
            st = osp_cuda_gemm(false, false, a.Lq, a.D, a.Lk, a.scale, ds, a.Lk, lqlk, kb, a.D,
                               a.Lk * a.D, 0.0f, gq + bh0 * a.Lq * a.D, a.D, a.Lq * a.D, g,
                               OSP_F32, OSP_F32);
        if (st == OSP_OK)
            st = osp_cuda_gemm(true, false, a.Lk, a.D, a.Lq, a.scale, ds, a.Lk, lqlk, qb, a.D,
                               a.Lq * a.D, 0.0f, gk + bh0 * a.Lk * a.D, a.D, a.Lk * a.D, g,
                               OSP_F32, OSP_F32);
        if (st == OSP_OK)
            st = osp_cuda_gemm(true, false, a.Lk, a.Dv, a.Lq, 1.0f, p, a.Lk, lqlk, gob, a.Dv,
                               a.Lq * a.Dv, 0.0f, gv + bh0 * a.Lk * a.Dv, a.Dv, a.Lk * a.Dv, g,
                               OSP_F32, OSP_F32);
    }
    osp_storage_release(scores);
    return st;
}

/* Runs fn on a copy of n whose strided operands are contiguous
 * temporaries: inputs gathered before, outputs scattered after. */
static osp_status run_contiguous(const osp_node *n, osp_status (*fn)(const osp_node *))
{
    osp_node m = *n;
    osp_tensor *temp[OSP_MAX_INPUTS + OSP_MAX_OUTPUTS];
    int n_temp = 0;
    osp_status st = OSP_OK;
    for (int i = 0; st == OSP_OK && i < n->n_in + n->n_out; i++) {
        bool input = i < n->n_in;
        osp_tensor *t = input ? n->in[i] : n->out[i - n->n_in];
        if (!t || osp_is_contiguous(t))
            continue;
        osp_tensor *c = osp_pool_take(osp_tensor_new(OSP_F32, t->ndim, t->shape, OSP_DEVICE_CUDA));
        if (!c) {
            st = osp_error_code();
            break;
        }
        temp[n_temp++] = c;
        if (input)
            st = cuda_copy_strided(n, c, t);
        *(input ? &m.in[i] : &m.out[i - n->n_in]) = c;
    }
    if (st == OSP_OK)
        st = fn(&m);
    for (int i = 0; st == OSP_OK && i < n->n_out; i++)
        if (m.out[i] != n->out[i])
            st = cuda_copy_strided(n, n->out[i], m.out[i]);
    for (int i = 0; i < n_temp; i++)
        osp_release(temp[i]);
    return st;
}

/* The flash kernels hold row strides in 32 bits: the frontend bounds q's,
 * k's and v's, and o follows q's memory order, but a q broadcast over a
 * huge batch could still give o a longer row stride. */
static bool row_strides_fit(const osp_node *n)
{
    for (int i = 0; i < 3; i++)
        if (n->in[i]->stride[2] > INT_MAX)
            return false;
    return n->out[0]->stride[2] <= INT_MAX;
}

osp_status cuda_attention(const osp_node *n)
{
    attn a = attn_of(n, 0);
    if (a.Lq == 0 || a.Dv == 0 || a.B * a.H == 0)
        return OSP_OK;
    if (a.Lk == 0) /* no keys: every output is an empty weighted sum (o is dense) */
        return cu_check(n, cudaMemsetAsync(cu_ptr(n->out[0]), 0, osp_nbytes(n->out[0]),
                                           cu_stream()),
                        "attention");
    /* the flash kernels take the strided operands as they are */
    if (cu_flash_supported(a.D, a.Dv) && row_strides_fit(n))
        return cu_flash_attention(n, a.mask_step);
    return run_contiguous(n, attention_gemm);
}

osp_status cuda_attention_backward(const osp_node *n)
{
    return run_contiguous(n, attention_backward_gemm);
}
