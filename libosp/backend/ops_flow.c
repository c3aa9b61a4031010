/* ops_flow.c — frontends of the optical-flow ops PWC-Net needs (ops.h):
 * the cost-volume correlation and bilinear grid sampling. Forward only;
 * with gradients on, the tape refuses them (no rule in grad_table.c). */
#include "ops_util.h"

#include <math.h>

/* Largest displacement accepted: (2d+1)^2 output channels stay small. */
#define MAX_DISPLACEMENT 64

static osp_status check_4d(const char *op, const char *what, const osp_tensor *t)
{
    if (ops_check_float(op, what, t) || ops_check_rank(op, what, t, 4, 4))
        return osp_error_code();
    return OSP_OK;
}

osp_tensor *osp_correlation(osp_tensor *a, osp_tensor *b, int max_displacement)
{
    const char *op = "correlation";
    if (!a || !b)
        return NULL;
    if (check_4d(op, "a", a) || check_4d(op, "b", b))
        return NULL;
    if (!osp_same_shape(a, b)) {
        char sa[96], sb[96];
        osp_error(OSP_ERR_RUNTIME, "%s: a %s and b %s differ in shape", op,
                  osp_shape_str(a, sa, sizeof sa), osp_shape_str(b, sb, sizeof sb));
        return NULL;
    }
    if (a->shape[1] < 1) {
        osp_error(OSP_ERR_RUNTIME, "%s: the inputs have no channels", op);
        return NULL;
    }
    if (max_displacement < 0 || max_displacement > MAX_DISPLACEMENT) {
        osp_error(OSP_ERR_RUNTIME, "%s: max displacement %d is outside 0..%d", op,
                  max_displacement, MAX_DISPLACEMENT);
        return NULL;
    }
    osp_tensor *in[2] = {a, b};
    if (ops_check_devices(op, 2, in))
        return NULL;
    int64_t side = 2 * (int64_t)max_displacement + 1;
    int64_t shape[4] = {a->shape[0], side * side, a->shape[2], a->shape[3]};
    osp_node n = ops_node(OSP_OP_CORRELATION);
    n.p.corr.max_displacement = max_displacement;
    n.n_in = 2;
    n.n_out = 1;
    if (!(n.in[0] = osp_prepare(a)) || !(n.in[1] = osp_prepare(b)) ||
        !(n.out[0] = ops_output(a, 4, shape)))
        return NULL;
    return osp_run(&n);
}

osp_tensor *osp_grid_sample(osp_tensor *x, osp_tensor *grid, bool align_corners,
                            float mask_threshold)
{
    const char *op = "grid_sample";
    if (!x || !grid)
        return NULL;
    if (check_4d(op, "x", x) || check_4d(op, "grid", grid))
        return NULL;
    if (grid->shape[0] != x->shape[0] || grid->shape[3] != 2) {
        char sx[96], sg[96];
        osp_error(OSP_ERR_RUNTIME, "%s: grid %s must be [N, Ho, Wo, 2] for x %s", op,
                  osp_shape_str(grid, sg, sizeof sg), osp_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    if (x->shape[2] < 1 || x->shape[3] < 1) {
        osp_error(OSP_ERR_RUNTIME, "%s: x has an empty spatial dim", op);
        return NULL;
    }
    if (!(mask_threshold >= 0 && isfinite(mask_threshold))) {
        osp_error(OSP_ERR_RUNTIME, "%s: mask threshold %g must be finite and >= 0", op,
                  (double)mask_threshold);
        return NULL;
    }
    osp_tensor *in[2] = {x, grid};
    if (ops_check_devices(op, 2, in))
        return NULL;
    int64_t shape[4] = {x->shape[0], x->shape[1], grid->shape[1], grid->shape[2]};
    osp_node n = ops_node(OSP_OP_GRID_SAMPLE);
    n.p.grid_sample.align_corners = align_corners;
    n.p.grid_sample.mask_threshold = mask_threshold;
    n.n_in = 2;
    n.n_out = 1;
    if (!(n.in[0] = osp_prepare(x)) || !(n.in[1] = osp_prepare(grid)) ||
        !(n.out[0] = ops_output(x, 4, shape)))
        return NULL;
    return osp_run(&n);
}
