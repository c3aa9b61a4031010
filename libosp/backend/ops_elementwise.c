/* ops_elementwise.c — frontends for binary/unary elementwise ops, fill,
 * cast, copy and device transfer. */
#include "ops_util.h"

#include <string.h>

#include "train/tape.h"

static osp_tensor *binary(osp_tensor *a, osp_tensor *b, osp_binary_kind kind, const char *name)
{
    if (!a || !b)
        return NULL;
    osp_tensor *ab[2] = {a, b};
    if (ops_check_float(name, "a", a) || ops_check_float(name, "b", b) ||
        ops_check_devices(name, 2, ab))
        return NULL;
    int nd;
    int64_t shape[OSP_MAX_DIMS];
    if (ops_broadcast_shape(name, a->ndim, a->shape, b->ndim, b->shape, &nd, shape))
        return NULL;
    osp_node n = ops_node(OSP_OP_BINARY);
    n.n_in = 2;
    n.in[0] = osp_prepare(a);
    n.in[1] = osp_prepare(b);
    if (!n.in[0] || !n.in[1])
        return NULL;
    n.n_out = 1;
    n.out[0] = ops_output(a, nd, shape);
    if (!n.out[0])
        return NULL;
    n.p.binary.kind = kind;
    return osp_run(&n);
}

osp_tensor *osp_add(osp_tensor *a, osp_tensor *b) { return binary(a, b, OSP_BINARY_ADD, "add"); }
osp_tensor *osp_sub(osp_tensor *a, osp_tensor *b) { return binary(a, b, OSP_BINARY_SUB, "sub"); }
osp_tensor *osp_mul(osp_tensor *a, osp_tensor *b) { return binary(a, b, OSP_BINARY_MUL, "mul"); }
osp_tensor *osp_div(osp_tensor *a, osp_tensor *b) { return binary(a, b, OSP_BINARY_DIV, "div"); }

osp_tensor *osp_unary(osp_tensor *x, osp_unary_kind kind, float alpha, float beta)
{
    if (!x || ops_check_float("unary", "x", x))
        return NULL;
    osp_node n = ops_node(OSP_OP_UNARY);
    n.n_in = 1;
    n.in[0] = osp_prepare(x);
    if (!n.in[0])
        return NULL;
    n.n_out = 1;
    n.out[0] = ops_output(x, x->ndim, x->shape);
    if (!n.out[0])
        return NULL;
    n.p.unary.kind = kind;
    n.p.unary.alpha = alpha;
    n.p.unary.beta = beta;
    return osp_run(&n);
}

osp_tensor *osp_exp(osp_tensor *x) { return osp_unary(x, OSP_UNARY_EXP, 0, 0); }
osp_tensor *osp_log(osp_tensor *x) { return osp_unary(x, OSP_UNARY_LOG, 0, 0); }
osp_tensor *osp_tanh(osp_tensor *x) { return osp_unary(x, OSP_UNARY_TANH, 0, 0); }
osp_tensor *osp_sqrt(osp_tensor *x) { return osp_unary(x, OSP_UNARY_SQRT, 0, 0); }
osp_tensor *osp_abs(osp_tensor *x) { return osp_unary(x, OSP_UNARY_ABS, 0, 0); }
osp_tensor *osp_square(osp_tensor *x) { return osp_unary(x, OSP_UNARY_SQUARE, 0, 0); }
osp_tensor *osp_sin(osp_tensor *x) { return osp_unary(x, OSP_UNARY_SIN, 0, 0); }
osp_tensor *osp_cos(osp_tensor *x) { return osp_unary(x, OSP_UNARY_COS, 0, 0); }
osp_tensor *osp_sigmoid(osp_tensor *x) { return osp_unary(x, OSP_UNARY_SIGMOID, 0, 0); }
osp_tensor *osp_silu(osp_tensor *x) { return osp_unary(x, OSP_UNARY_SILU, 0, 0); }
osp_tensor *osp_gelu_tanh(osp_tensor *x) { return osp_unary(x, OSP_UNARY_GELU_TANH, 0, 0); }
osp_tensor *osp_gelu_erf(osp_tensor *x) { return osp_unary(x, OSP_UNARY_GELU_ERF, 0, 0); }
osp_tensor *osp_relu(osp_tensor *x) { return osp_unary(x, OSP_UNARY_RELU, 0, 0); }

osp_tensor *osp_leaky_relu(osp_tensor *x, float negative_slope)
{
    return osp_unary(x, OSP_UNARY_LEAKY_RELU, negative_slope, 0);
}

osp_tensor *osp_clamp(osp_tensor *x, float lo, float hi)
{
    if (x && !(lo <= hi)) {
        osp_error(OSP_ERR_RUNTIME, "clamp: low %g is above high %g", lo, hi);
        return NULL;
    }
    return osp_unary(x, OSP_UNARY_CLAMP, lo, hi);
}

osp_tensor *osp_scale_shift(osp_tensor *x, float scale, float shift)
{
    return osp_unary(x, OSP_UNARY_SCALE_SHIFT, scale, shift);
}

/* The derivative op used by the unary backward rule: gy * f'(x). */
osp_tensor *osp_unary_backward(osp_tensor *gy, osp_tensor *x, osp_unary_kind kind, float alpha,
                               float beta)
{
    if (!gy || !x)
        return NULL;
    osp_node n = ops_node(OSP_OP_UNARY_BACKWARD);
    n.n_in = 2;
    n.in[0] = osp_prepare(gy);
    n.in[1] = osp_prepare(x);
    if (!n.in[0] || !n.in[1])
        return NULL;
    n.n_out = 1;
    n.out[0] = ops_output(x, x->ndim, x->shape);
    if (!n.out[0])
        return NULL;
    n.p.unary.kind = kind;
    n.p.unary.alpha = alpha;
    n.p.unary.beta = beta;
    return osp_run(&n);
}

osp_tensor *osp_full(osp_dtype dtype, int ndim, const int64_t *shape, osp_device device,
                     double value)
{
    osp_node n = ops_node(OSP_OP_FILL);
    n.n_out = 1;
    n.out[0] = osp_tensor_new(dtype, ndim, shape, device);
    if (!n.out[0])
        return NULL;
    n.p.fill.value = value;
    return osp_run(&n);
}

osp_tensor *osp_full_like(osp_tensor *x, double value)
{
    if (!x)
        return NULL;
    osp_dtype t = osp_dtype_is_float(x->dtype) ? x->dtype : OSP_F32;
    return osp_full(t, x->ndim, x->shape, x->storage->device, value);
}

osp_tensor *osp_cast(osp_tensor *x, osp_dtype dtype)
{
    if (!x)
        return NULL;
    if ((unsigned)dtype >= OSP_DTYPE_COUNT) {
        osp_error(OSP_ERR_RUNTIME, "cast: unknown dtype %d", (int)dtype);
        return NULL;
    }
    if (x->dtype == dtype)
        return osp_contiguous(x);
    if (x->requires_grad && osp_grad_enabled() && !osp_dtype_is_float(dtype)) {
        osp_error(OSP_ERR_RUNTIME, "cast: a tensor that requires grad cannot become %s",
                  osp_dtype_name(dtype));
        return NULL;
    }
    osp_node n = ops_node(OSP_OP_CAST);
    n.n_in = 1;
    n.in[0] = osp_contiguous(x);
    if (!n.in[0])
        return NULL;
    n.n_out = 1;
    n.out[0] = osp_tensor_new(dtype, x->ndim, x->shape, x->storage->device);
    if (!n.out[0])
        return NULL;
    return osp_run(&n);
}

static osp_tensor *copy_to(osp_tensor *x, osp_device device)
{
    osp_node n = ops_node(OSP_OP_COPY);
    n.n_in = 1;
    n.in[0] = x;
    n.n_out = 1;
    n.out[0] = osp_tensor_new(x->dtype, x->ndim, x->shape, device);
    if (!n.out[0])
        return NULL;
    return osp_run(&n);
}

osp_tensor *osp_contiguous(osp_tensor *x)
{
    if (!x)
        return NULL;
    return osp_is_contiguous(x) ? x : copy_to(x, x->storage->device);
}

osp_tensor *osp_to_device(osp_tensor *x, osp_device device)
{
    if (!x)
        return NULL;
    return x->storage->device == device ? x : copy_to(x, device);
}

osp_status osp_move_to_device(osp_tensor *x, osp_device device)
{
    if (x->storage->device == device)
        return OSP_OK;
    osp_pool_push();
    osp_tensor *c = copy_to(x, device);
    if (c) {
        osp_storage *old = x->storage;
        osp_storage_retain(c->storage);
        x->storage = c->storage;
        x->offset = c->offset;
        memcpy(x->stride, c->stride, sizeof x->stride);
        osp_storage_release(old);
    }
    osp_pool_pop();
    return c ? OSP_OK : osp_error_code();
}

osp_tensor *osp_prepare(osp_tensor *x)
{
    if (!x)
        return NULL;
    /* The CPU computes in float32; a device backend with native half
     * kernels will widen this rule. */
    return x->dtype == OSP_F32 ? osp_contiguous(x) : osp_cast(x, OSP_F32);
}
