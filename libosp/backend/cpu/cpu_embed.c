/* cpu_embed.c — embedding lookup (gather), its scatter-add backward, and
 * the sinusoidal timestep embedding. */
#include "cpu_kernels.h"

#include <math.h>
#include <string.h>

/* Row index ids[i] of an i32 or i64 ids tensor, widened. */
static int64_t id_at(const osp_tensor *ids, int64_t i)
{
    return ids->dtype == OSP_I32 ? ((const int32_t *)osp_data(ids))[i]
                                 : ((const int64_t *)osp_data(ids))[i];
}

/* Error (OSP_ERR_DATA) naming the first id outside [0, v), else OSP_OK. */
static osp_status check_ids(const osp_tensor *ids, int64_t v)
{
    int64_t n = osp_numel(ids);
    for (int64_t i = 0; i < n; i++) {
        int64_t id = id_at(ids, i);
        if (id < 0 || id >= v)
            return osp_error(OSP_ERR_DATA,
                             "embedding: id %lld at position %lld is outside the table's %lld rows",
                             (long long)id, (long long)i, (long long)v);
    }
    return OSP_OK;
}

/* in: table [V, D], ids [*]   out: [*, D] */
osp_status cpu_embedding(const osp_node *n)
{
    const osp_tensor *table = n->in[0], *ids = n->in[1];
    int64_t v = table->shape[0], d = table->shape[1], rows = osp_numel(ids);
    if (check_ids(ids, v))
        return osp_error_code();
    const float *t = osp_f32(table);
    float *y = osp_f32(n->out[0]);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; i++)
        memcpy(y + i * d, t + id_at(ids, i) * d, (size_t)d * sizeof *y);
    return OSP_OK;
}

/* in: gy [*, D], ids [*]   out: gtable [V, D] (zero where no id points).
 * Parallel over column tiles: each thread adds every row's slice in id
 * order, so the sums do not depend on the thread count. */
osp_status cpu_embedding_backward(const osp_node *n)
{
    const osp_tensor *gy = n->in[0], *ids = n->in[1];
    osp_tensor *gt = n->out[0];
    int64_t v = gt->shape[0], d = gt->shape[1], rows = osp_numel(ids);
    if (check_ids(ids, v))
        return osp_error_code();
    const float *g = osp_f32(gy);
    float *out = osp_f32(gt);
    memset(out, 0, (size_t)v * (size_t)d * sizeof *out);
    const int64_t tile = 64;
#pragma omp parallel for schedule(static)
    for (int64_t c0 = 0; c0 < d; c0 += tile) {
        int64_t c1 = c0 + tile < d ? c0 + tile : d;
        for (int64_t i = 0; i < rows; i++) {
            float *dst = out + id_at(ids, i) * d;
            const float *src = g + i * d;
            for (int64_t c = c0; c < c1; c++)
                dst[c] += src[c];
        }
    }
    return OSP_OK;
}

/* in: t [B] (f32)   out: [B, dim]. diffusers' get_timestep_embedding in
 * float32, step by step as PyTorch rounds it (see ops.h):
 *   e_i = fl(fl(-ln(max_period)) · i) / fl(half - shift),  i < half = dim/2
 *   a_i = fl(scale · fl(t · expf(e_i)))
 *   row = [sin a | cos a] (flip: [cos a | sin a]), a 0 appended when dim is odd. */
osp_status cpu_timestep_embedding(const osp_node *n)
{
    const float *t = osp_f32(n->in[0]);
    float *y = osp_f32(n->out[0]);
    int64_t b = n->in[0]->shape[0];
    int dim = n->p.timestep.dim, half = dim / 2;
    float neg_log_period = (float)-log((double)n->p.timestep.max_period);
    float denom = (float)((double)half - (double)n->p.timestep.downscale_freq_shift);
    float scale = n->p.timestep.scale;
    bool flip = n->p.timestep.flip_sin_to_cos;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < b; r++) {
        float *row = y + r * dim;
        float *first = row, *second = row + half; /* sin, cos unless flipped */
        if (flip) {
            first = row + half;
            second = row;
        }
        for (int i = 0; i < half; i++) {
            float e = neg_log_period * (float)i / denom;
            float a = scale * (t[r] * expf(e));
            first[i] = sinf(a);
            second[i] = cosf(a);
        }
        if (dim % 2)
            row[dim - 1] = 0.0f;
    }
    return OSP_OK;
}
