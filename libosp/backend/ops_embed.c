/* ops_embed.c — frontends of the embedding lookup, its backward
 * (ops_embed_bwd.h) and the sinusoidal timestep embedding. */
#include "ops_embed_bwd.h"
#include "ops_util.h"

#include <math.h>
#include <string.h>

/* Error unless ids is an i32/i64 tensor that leaves room for one more
 * dimension. */
static osp_status check_ids(const char *op, const osp_tensor *ids)
{
    if (ids->dtype != OSP_I32 && ids->dtype != OSP_I64)
        return osp_error(OSP_ERR_RUNTIME, "%s: ids must be i32 or i64, got %s", op,
                         osp_dtype_name(ids->dtype));
    return ops_check_rank(op, "ids", ids, 0, OSP_MAX_DIMS - 1);
}

/* The output shape ids.shape + [d]. */
static int out_shape(const osp_tensor *ids, int64_t d, int64_t *shape)
{
    memcpy(shape, ids->shape, (size_t)ids->ndim * sizeof *shape);
    shape[ids->ndim] = d;
    return ids->ndim + 1;
}

osp_tensor *osp_embedding(osp_tensor *table, osp_tensor *ids)
{
    if (!table || !ids)
        return NULL;
    osp_tensor *both[2] = {table, ids};
    if (ops_check_float("embedding", "table", table) ||
        ops_check_rank("embedding", "table", table, 2, 2) || check_ids("embedding", ids) ||
        ops_check_devices("embedding", 2, both))
        return NULL;
    osp_node n = ops_node(OSP_OP_EMBEDDING);
    n.n_in = 2;
    n.in[0] = osp_prepare(table);
    n.in[1] = osp_contiguous(ids);
    if (!n.in[0] || !n.in[1])
        return NULL;
    int64_t shape[OSP_MAX_DIMS];
    int nd = out_shape(ids, table->shape[1], shape);
    n.n_out = 1;
    n.out[0] = ops_output(table, nd, shape);
    if (!n.out[0])
        return NULL;
    return osp_run(&n);
}

osp_tensor *osp_embedding_backward(osp_tensor *gy, osp_tensor *ids, int64_t rows)
{
    if (!gy || !ids)
        return NULL;
    osp_tensor *both[2] = {gy, ids};
    if (check_ids("embedding_backward", ids) || ops_check_devices("embedding_backward", 2, both))
        return NULL;
    if (rows < 0) {
        osp_error(OSP_ERR_RUNTIME, "embedding_backward: %lld table rows", (long long)rows);
        return NULL;
    }
    int64_t d = gy->ndim ? gy->shape[gy->ndim - 1] : 0;
    int64_t expect[OSP_MAX_DIMS];
    int nd = out_shape(ids, d, expect);
    if (gy->ndim != nd || memcmp(gy->shape, expect, (size_t)nd * sizeof *expect)) {
        char a[128], b[128];
        osp_error(OSP_ERR_RUNTIME, "embedding_backward: gy %s does not fit ids %s",
                  osp_shape_str(gy, a, sizeof a), osp_shape_str(ids, b, sizeof b));
        return NULL;
    }
    osp_node n = ops_node(OSP_OP_EMBEDDING_BACKWARD);
    n.n_in = 2;
    n.in[0] = osp_prepare(gy);
    n.in[1] = osp_contiguous(ids);
    if (!n.in[0] || !n.in[1])
        return NULL;
    const int64_t shape[2] = {rows, d};
    n.n_out = 1;
    n.out[0] = ops_output(gy, 2, shape);
    if (!n.out[0])
        return NULL;
    return osp_run(&n);
}

osp_tensor *osp_timestep_embedding(osp_tensor *t, int dim, bool flip_sin_to_cos,
                                   float downscale_freq_shift, float scale, float max_period)
{
    if (!t || ops_check_rank("timestep_embedding", "t", t, 1, 1))
        return NULL;
    /* half - shift is the divisor of every exponent: zero would give NaN. */
    if (dim < 1 || !isfinite(downscale_freq_shift) || !isfinite(scale) || !(max_period > 0) ||
        isinf(max_period) || (dim >= 2 && (double)(dim / 2) == downscale_freq_shift)) {
        osp_error(OSP_ERR_RUNTIME,
                  "timestep_embedding: bad parameters (dim %d, shift %g, scale %g, max_period %g)",
                  dim, downscale_freq_shift, scale, max_period);
        return NULL;
    }
    osp_node n = ops_node(OSP_OP_TIMESTEP_EMBEDDING);
    n.n_in = 1;
    n.in[0] = osp_prepare(t);
    if (!n.in[0])
        return NULL;
    const int64_t shape[2] = {t->shape[0], dim};
    n.n_out = 1;
    n.out[0] = ops_output(t, 2, shape);
    if (!n.out[0])
        return NULL;
    n.p.timestep.dim = dim;
    n.p.timestep.flip_sin_to_cos = flip_sin_to_cos;
    n.p.timestep.downscale_freq_shift = downscale_freq_shift;
    n.p.timestep.scale = scale;
    n.p.timestep.max_period = max_period;
    return osp_run(&n);
}
