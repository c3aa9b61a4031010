/* ops_norm.c — frontends of group, layer and RMS normalisation (ops.h) and
 * of their backward ops (ops_norm_bwd.h). */
#include "ops_norm_bwd.h"
#include "ops_util.h"

#include <math.h>

/* Whether p is a per-sample affine parameter of a layer norm of x: rank
 * of x, [x.shape[0], 1, ..., 1, D] (numpy broadcasting gives every sample
 * its own gamma or beta: adaLN's modulation). */
static bool per_sample(const osp_tensor *x, const osp_tensor *p)
{
    if (p->ndim != x->ndim || x->ndim < 2 || p->shape[0] != x->shape[0] ||
        p->shape[p->ndim - 1] != x->shape[x->ndim - 1])
        return false;
    for (int d = 1; d < p->ndim - 1; d++)
        if (p->shape[d] != 1)
            return false;
    return true;
}

/* Validates x (float, at least min_rank dims), eps, and the optional affine
 * parameters: float [x.shape[channel_axis]] on x's device, or with
 * `samples` per-sample ones (per_sample), both of the same shape. */
static osp_status check_norm(const char *op, const osp_tensor *x, int min_rank, int channel_axis,
                             const osp_tensor *gamma, const osp_tensor *beta, float eps,
                             bool samples)
{
    if (ops_check_float(op, "x", x) || ops_check_rank(op, "x", x, min_rank, OSP_MAX_DIMS))
        return osp_error_code();
    if (!(eps >= 0) || isinf(eps))
        return osp_error(OSP_ERR_RUNTIME, "%s: eps must be finite and >= 0, got %g", op, eps);
    int64_t channels = x->shape[channel_axis < 0 ? x->ndim + channel_axis : channel_axis];
    const osp_tensor *params[2] = {gamma, beta};
    const char *names[2] = {"gamma", "beta"};
    for (int i = 0; i < 2; i++) {
        const osp_tensor *p = params[i];
        if (!p)
            continue;
        if (ops_check_float(op, names[i], p))
            return osp_error_code();
        bool plain = p->ndim == 1 && p->shape[0] == channels;
        if (!plain && !(samples && per_sample(x, p))) {
            char buf[128];
            return osp_error(OSP_ERR_RUNTIME, "%s: %s must have shape [%lld]%s, got %s", op,
                             names[i], (long long)channels,
                             samples ? " or [N, 1, ..., 1, D] (one per sample)" : "",
                             osp_shape_str(p, buf, sizeof buf));
        }
        if (p->storage->device != x->storage->device)
            return osp_error(OSP_ERR_RUNTIME, "%s: %s is on a different device than x", op,
                             names[i]);
    }
    if (gamma && beta && !osp_same_shape(gamma, beta))
        return osp_error(OSP_ERR_RUNTIME, "%s: gamma and beta differ in shape", op);
    return OSP_OK;
}

/* Runs a forward node: in x, gamma?, beta? (the first n_in of them). */
static osp_tensor *run_forward(osp_op op, int n_in, osp_tensor *x, osp_tensor *gamma,
                               osp_tensor *beta, int groups, float eps)
{
    osp_tensor *src[3] = {x, gamma, beta};
    osp_node n = ops_node(op);
    n.n_in = n_in;
    for (int i = 0; i < n_in; i++)
        if (src[i] && !(n.in[i] = osp_prepare(src[i])))
            return NULL;
    n.n_out = 1;
    n.out[0] = ops_output(x, x->ndim, x->shape);
    if (!n.out[0])
        return NULL;
    n.p.norm.groups = groups;
    n.p.norm.eps = eps;
    return osp_run(&n);
}

osp_tensor *osp_group_norm(osp_tensor *x, int groups, osp_tensor *gamma, osp_tensor *beta,
                           float eps)
{
    if (!x || check_norm("group_norm", x, 2, 1, gamma, beta, eps, false))
        return NULL;
    if (groups < 1 || x->shape[1] % groups) {
        osp_error(OSP_ERR_RUNTIME, "group_norm: %d groups do not divide %lld channels", groups,
                  (long long)x->shape[1]);
        return NULL;
    }
    return run_forward(OSP_OP_GROUP_NORM, 3, x, gamma, beta, groups, eps);
}

osp_tensor *osp_layer_norm(osp_tensor *x, osp_tensor *gamma, osp_tensor *beta, float eps)
{
    if (!x || check_norm("layer_norm", x, 1, -1, gamma, beta, eps, true))
        return NULL;
    return run_forward(OSP_OP_LAYER_NORM, 3, x, gamma, beta, 1, eps);
}

osp_tensor *osp_rms_norm(osp_tensor *x, osp_tensor *gamma, float eps)
{
    if (!x || check_norm("rms_norm", x, 1, -1, gamma, NULL, eps, false))
        return NULL;
    return run_forward(OSP_OP_RMS_NORM, 2, x, gamma, NULL, 1, eps);
}

/* Runs a backward node: in gy, x, gamma?; out gx, ggamma?, gbeta? (RMS
 * norm has no gbeta output), the affine gradients shaped like `affine`
 * (gamma or beta), or [channels] without one. */
static osp_status run_backward(osp_op op, osp_tensor *gy, osp_tensor *x, osp_tensor *gamma,
                               const osp_tensor *affine, int groups, float eps, int64_t channels,
                               osp_tensor **gx, osp_tensor **ggamma, osp_tensor **gbeta)
{
    if (!gy || !x)
        return osp_error_code() ? osp_error_code() : OSP_ERR_RUNTIME;
    if (!osp_same_shape(gy, x)) {
        char a[128], b[128];
        return osp_error(OSP_ERR_RUNTIME, "%s: gy %s does not match x %s", osp_op_name(op),
                         osp_shape_str(gy, a, sizeof a), osp_shape_str(x, b, sizeof b));
    }
    osp_node n = ops_node(op);
    n.n_in = 3;
    n.in[0] = osp_prepare(gy);
    n.in[1] = osp_prepare(x);
    n.in[2] = gamma ? osp_prepare(gamma) : NULL;
    if (!n.in[0] || !n.in[1] || (gamma && !n.in[2]))
        return osp_error_code();
    n.n_out = op == OSP_OP_RMS_NORM_BACKWARD ? 2 : 3;
    int pd = affine ? affine->ndim : 1;
    const int64_t *ps = affine ? affine->shape : &channels;
    if (!(n.out[0] = ops_output(x, x->ndim, x->shape)) ||
        (ggamma && !(n.out[1] = ops_output(x, pd, ps))) ||
        (gbeta && !(n.out[2] = ops_output(x, pd, ps))))
        return osp_error_code();
    n.p.norm.groups = groups;
    n.p.norm.eps = eps;
    if (!osp_run(&n))
        return osp_error_code();
    *gx = n.out[0];
    if (ggamma)
        *ggamma = n.out[1];
    if (gbeta)
        *gbeta = n.out[2];
    return OSP_OK;
}

osp_status osp_group_norm_backward(osp_tensor *gy, osp_tensor *x, osp_tensor *gamma, int groups,
                                   float eps, osp_tensor **gx, osp_tensor **ggamma,
                                   osp_tensor **gbeta)
{
    int64_t channels = x && x->ndim >= 2 ? x->shape[1] : 0;
    return run_backward(OSP_OP_GROUP_NORM_BACKWARD, gy, x, gamma, NULL, groups, eps, channels, gx,
                        ggamma, gbeta);
}

osp_status osp_layer_norm_backward(osp_tensor *gy, osp_tensor *x, osp_tensor *gamma,
                                   const osp_tensor *beta, float eps, osp_tensor **gx,
                                   osp_tensor **ggamma, osp_tensor **gbeta)
{
    int64_t channels = x && x->ndim >= 1 ? x->shape[x->ndim - 1] : 0;
    return run_backward(OSP_OP_LAYER_NORM_BACKWARD, gy, x, gamma, gamma ? gamma : beta, 1, eps,
                        channels, gx, ggamma, gbeta);
}

osp_status osp_rms_norm_backward(osp_tensor *gy, osp_tensor *x, osp_tensor *gamma, float eps,
                                 osp_tensor **gx, osp_tensor **ggamma)
{
    int64_t channels = x && x->ndim >= 1 ? x->shape[x->ndim - 1] : 0;
    return run_backward(OSP_OP_RMS_NORM_BACKWARD, gy, x, gamma, NULL, 1, eps, channels, gx,
                        ggamma, NULL);
}
