/* shape.cu — concatenation and constant/replicate padding with its
 * backward (CPU reference: cpu_shape.c, cpu_pad.c). */
#include "common.cuh"

extern "C" {
#include "backend/cuda/cu_index.h"
}

/* x [outer, block] into columns [at, at + block) of y [outer, row]; the
 * 32-bit path divides by multiply and shift (cu_index.h). */
template <bool NARROW>
__global__ void concat_kernel(const float *x, float *y, int64_t outer, int64_t block,
                              cu_divider by_block, int64_t row, int64_t at)
{
    CU_FOR(i, outer * block) {
        int64_t o = NARROW ? cu_div(by_block, (uint32_t)i) : i / block;
        y[o * row + at + (i - o * block)] = x[i];
    }
}

extern "C" osp_status cuda_concat(const osp_node *n)
{
    const osp_tensor *y = n->out[0];
    int axis = n->p.concat.axis;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= y->shape[d];
    for (int d = axis + 1; d < y->ndim; d++)
        inner *= y->shape[d];
    int64_t row = y->shape[axis] * inner, at = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t block = n->in[i]->shape[axis] * inner;
        if (outer * block > 0) {
            /* (y's size bounds every index of the narrow path) */
            bool narrow = osp_numel(y) < ((int64_t)1 << 31) && !cu_wide_index();
            cu_divider by_block = cu_divider_of(narrow ? (uint32_t)block : 1);
            unsigned grid = cu_grid(outer * block);
            if (narrow)
                concat_kernel<true><<<grid, CU_THREADS, 0, cu_stream()>>>(
                    cu_f32(n->in[i]), cu_f32(y), outer, block, by_block, row, at);
            else
                concat_kernel<false><<<grid, CU_THREADS, 0, cu_stream()>>>(
                    cu_f32(n->in[i]), cu_f32(y), outer, block, by_block, row, at);
            osp_status st = CU_LAUNCHED(n, "concat kernel");
            if (st)
                return st;
        }
        at += block;
    }
    return OSP_OK;
}

struct pad_geom {
    int ndim;
    int64_t in[OSP_MAX_DIMS], out[OSP_MAX_DIMS], before[OSP_MAX_DIMS];
    bool replicate;
    float value;
};

static pad_geom pad_geom_of(const osp_tensor *x, const osp_node *n)
{
    pad_geom g;
    g.ndim = x->ndim ? x->ndim : 1;
    for (int d = 0; d < g.ndim; d++) {
        g.in[d] = x->ndim ? x->shape[d] : 1;
        g.before[d] = x->ndim ? n->p.pad.before[d] : 0;
        g.out[d] = g.in[d] + g.before[d] + (x->ndim ? n->p.pad.after[d] : 0);
    }
    g.replicate = n->p.pad.mode == OSP_PAD_REPLICATE;
    g.value = n->p.pad.value;
    return g;
}

__global__ void pad_kernel(const float *x, float *y, int64_t total, pad_geom g)
{
    CU_FOR(o, total) {
        int64_t rem = o, src = 0, stride = 1;
        bool border = false;
        for (int d = g.ndim - 1; d >= 0; d--) {
            int64_t i = rem % g.out[d] - g.before[d];
            rem /= g.out[d];
            if (i < 0 || i >= g.in[d]) {
                border = true;
                i = i < 0 ? 0 : g.in[d] - 1;
            }
            src += i * stride;
            stride *= g.in[d];
        }
        y[o] = border && !g.replicate ? g.value : x[src];
    }
}

extern "C" osp_status cuda_pad(const osp_node *n)
{
    pad_geom g = pad_geom_of(n->in[0], n);
    int64_t total = osp_numel(n->out[0]);
    if (total == 0)
        return OSP_OK;
    if (osp_numel(n->in[0]) == 0) /* nothing to replicate: all border */
        g.replicate = false;
    pad_kernel<<<cu_grid(total), CU_THREADS, 0, cu_stream()>>>(cu_f32(n->in[0]),
                                                               cu_f32(n->out[0]), total, g);
    return CU_LAUNCHED(n, "pad kernel");
}

/* gx[i] = Σ of the gy elements that came from x[i]: its own position, plus
 * under replicate padding the whole border beside an edge element. */
__global__ void pad_backward_kernel(const float *gy, float *gx, int64_t total, pad_geom g)
{
    CU_FOR(xi, total) {
        int64_t lo[OSP_MAX_DIMS], hi[OSP_MAX_DIMS], at[OSP_MAX_DIMS], rem = xi;
        for (int d = g.ndim - 1; d >= 0; d--) {
            int64_t i = rem % g.in[d];
            rem /= g.in[d];
            lo[d] = i + g.before[d];
            hi[d] = lo[d] + 1;
            if (g.replicate && i == 0)
                lo[d] = 0;
            if (g.replicate && i == g.in[d] - 1)
                hi[d] = g.out[d];
            at[d] = lo[d];
        }
        float sum = 0;
        for (;;) {
            int64_t yi = 0;
            for (int d = 0; d < g.ndim; d++)
                yi = yi * g.out[d] + at[d];
            sum += gy[yi];
            int d = g.ndim - 1;
            while (d >= 0 && ++at[d] == hi[d]) {
                at[d] = lo[d];
                d--;
            }
            if (d < 0)
                break;
        }
        gx[xi] = sum;
    }
}

extern "C" osp_status cuda_pad_backward(const osp_node *n)
{
    pad_geom g = pad_geom_of(n->out[0], n);
    int64_t total = osp_numel(n->out[0]);
    if (total == 0)
        return OSP_OK;
    pad_backward_kernel<<<cu_grid(total), CU_THREADS, 0, cu_stream()>>>(
        cu_f32(n->in[0]), cu_f32(n->out[0]), total, g);
    return CU_LAUNCHED(n, "pad backward kernel");
}
