/* causalvae_tiling.c — spatial tiling of encode and decode exactly as the
 * reference does it (spec section 8): overlapping tiles, each run through
 * the whole encoder (or decoder), blended in place row by row, left to
 * right, vertical blend before horizontal, then cropped and assembled. */
#include "causalvae.h"
#include "backend/ops.h"

#include <stdlib.h>

/* Writes src into the view dst (a window of a larger tensor). */
static osp_status copy_into(osp_tensor *dst, osp_tensor *src)
{
    if (!dst || !src)
        return osp_error_code();
    osp_node n = {.op = OSP_OP_COPY, .n_in = 1, .n_out = 1, .in = {src}, .out = {dst}};
    return osp_dispatch(&n);
}

/* Blend ramps: ramp[k] = k/e and 1 - k/e, as float32 values of the double
 * quotients (the reference multiplies float32 tensors by Python floats).
 * Shaped to broadcast along axis 3 (rows, [e,1]) or 4 (columns, [e]). */
static osp_status ramps(int64_t e, int axis, osp_device dev, osp_tensor **up, osp_tensor **down)
{
    int64_t shape[2] = {e, 1};
    int nd = axis == 3 ? 2 : 1;
    osp_tensor *u = osp_tensor_f32(nd, shape), *d = osp_tensor_f32(nd, shape);
    if (!u || !d)
        return osp_error_code();
    for (int64_t k = 0; k < e; k++) {
        osp_f32(u)[k] = (float)((double)k / (double)e);
        osp_f32(d)[k] = (float)(1.0 - (double)k / (double)e);
    }
    *up = osp_to_device(u, dev);
    *down = osp_to_device(d, dev);
    return *up && *down ? OSP_OK : osp_error_code();
}

/* t's first e rows (axis 3) or columns (axis 4) become
 * a[last e] * (1 - k/e) + t[first e] * (k/e). */
static osp_status blend_edge(osp_tensor *a, osp_tensor *t, int axis, int64_t blend)
{
    int64_t e = a->shape[axis];
    if (t->shape[axis] < e) e = t->shape[axis];
    if (blend < e) e = blend;
    if (e <= 0)
        return OSP_OK;
    osp_pool_push();
    osp_tensor *up = NULL, *down = NULL;
    osp_status st = ramps(e, axis, t->storage->device, &up, &down);
    if (st == OSP_OK) {
        osp_tensor *from_a = osp_slice(a, axis, a->shape[axis] - e, a->shape[axis], 1);
        osp_tensor *window = osp_view_slice(t, axis, 0, e, 1);
        osp_tensor *mixed = osp_add(osp_mul(from_a, down), osp_mul(window, up));
        st = copy_into(window, mixed);
    }
    osp_pool_pop();
    return st;
}

osp_tensor *osp_vae_blend_tiles(osp_tensor **tiles, int rows, int cols, int64_t blend,
                                int64_t keep)
{
    osp_tensor **row_parts = calloc((size_t)rows, sizeof *row_parts);
    osp_tensor **pieces = calloc((size_t)cols, sizeof *pieces);
    osp_tensor *out = NULL;
    if (!row_parts || !pieces) {
        osp_error_nomem("tile list", (unsigned long long)(rows + cols) * sizeof *pieces);
        goto done;
    }
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            osp_tensor *t = tiles[r * cols + c];
            if ((r > 0 && blend_edge(tiles[(r - 1) * cols + c], t, 3, blend)) ||
                (c > 0 && blend_edge(tiles[r * cols + c - 1], t, 4, blend)))
                goto done;
            int64_t h = t->shape[3] < keep ? t->shape[3] : keep;
            int64_t w = t->shape[4] < keep ? t->shape[4] : keep;
            pieces[c] = osp_slice(osp_slice(t, 3, 0, h, 1), 4, 0, w, 1);
        }
        row_parts[r] = osp_concat(cols, pieces, 4);
        if (!row_parts[r])
            goto done;
    }
    out = osp_concat(rows, row_parts, 3);
done:
    free(row_parts);
    free(pieces);
    return out;
}

typedef osp_tensor *(*tile_fn)(osp_vae *v, osp_tensor *x);

/* Runs fn on overlapping size x size windows of x (stride `step`) and
 * blends the results. */
static osp_tensor *tiled(osp_vae *v, osp_tensor *x, tile_fn fn, int64_t size, int64_t step,
                         int64_t blend, int64_t keep)
{
    if (step < 1 || keep < 1) {
        osp_error(OSP_ERR_USAGE, "tile size %lld with this overlap leaves no room to step",
                  (long long)size);
        return NULL;
    }
    int64_t H = x->shape[3], W = x->shape[4];
    int rows = (int)((H + step - 1) / step), cols = (int)((W + step - 1) / step);
    osp_tensor **tiles = calloc((size_t)rows * (size_t)cols, sizeof *tiles);
    if (!tiles) {
        osp_error_nomem("tile grid", (unsigned long long)rows * (unsigned long long)cols);
        return NULL;
    }
    osp_tensor *out = NULL;
    osp_pool_push();
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            int64_t i = r * step, j = c * step;
            osp_tensor *win = osp_slice(osp_slice(x, 3, i, i + size < H ? i + size : H, 1), 4, j,
                                        j + size < W ? j + size : W, 1);
            /* Each tile's activations are freed before the next starts. */
            osp_pool_push();
            tiles[r * cols + c] = osp_pool_pop_keep(fn(v, osp_contiguous(win)));
            if (!tiles[r * cols + c])
                goto done;
        }
    }
    out = osp_vae_blend_tiles(tiles, rows, cols, blend, keep);
done:
    free(tiles);
    return osp_pool_pop_keep(out);
}

osp_tensor *osp_vae_encode(osp_vae *v, osp_tensor *x, const osp_vae_tiling *t)
{
    if (!x)
        return NULL;
    if (!t || !t->enabled || x->ndim != 5 ||
        (x->shape[3] <= t->sample_size && x->shape[4] <= t->sample_size))
        return osp_vae_encoder_forward(v, x);
    int64_t S = t->sample_size, L = t->latent_size;
    int64_t blend = (int64_t)((double)L * t->overlap);
    return tiled(v, x, osp_vae_encoder_forward, S, (int64_t)((double)S * (1.0 - t->overlap)),
                 blend, L - blend);
}

osp_tensor *osp_vae_decode(osp_vae *v, osp_tensor *z, const osp_vae_tiling *t)
{
    if (!z)
        return NULL;
    if (!t || !t->enabled || z->ndim != 5 ||
        (z->shape[3] <= t->latent_size && z->shape[4] <= t->latent_size))
        return osp_vae_decoder_forward(v, z);
    int64_t S = t->sample_size, L = t->latent_size;
    int64_t blend = (int64_t)((double)S * t->overlap);
    return tiled(v, z, osp_vae_decoder_forward, L, (int64_t)((double)L * (1.0 - t->overlap)),
                 blend, S - blend);
}
