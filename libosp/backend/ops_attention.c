/* ops_attention.c — frontends of softmax and scaled-dot-product attention
 * (ops.h) and of their backward ops (ops_attention_bwd.h). */
#include "ops_attention_bwd.h"
#include "ops_util.h"

#include <limits.h>

osp_tensor *osp_softmax(osp_tensor *x)
{
    if (!x || ops_check_float("softmax", "x", x) ||
        ops_check_rank("softmax", "x", x, 1, OSP_MAX_DIMS))
        return NULL;
    osp_node n = ops_node(OSP_OP_SOFTMAX);
    n.n_in = 1;
    if (!(n.in[0] = osp_prepare(x)))
        return NULL;
    n.n_out = 1;
    if (!(n.out[0] = ops_output(x, x->ndim, x->shape)))
        return NULL;
    return osp_run(&n);
}

osp_tensor *osp_softmax_backward(osp_tensor *gy, osp_tensor *y)
{
    if (!gy || !y)
        return NULL;
    osp_tensor *both[2] = {gy, y};
    if (ops_check_float("softmax_backward", "gy", gy) ||
        ops_check_float("softmax_backward", "y", y) ||
        ops_check_rank("softmax_backward", "y", y, 1, OSP_MAX_DIMS) ||
        ops_check_devices("softmax_backward", 2, both))
        return NULL;
    if (!osp_same_shape(gy, y)) {
        char a[128], b[128];
        osp_error(OSP_ERR_RUNTIME, "softmax_backward: gy %s does not match y %s",
                  osp_shape_str(gy, a, sizeof a), osp_shape_str(y, b, sizeof b));
        return NULL;
    }
    osp_node n = ops_node(OSP_OP_SOFTMAX_BACKWARD);
    n.n_in = 2;
    n.in[0] = osp_prepare(gy);
    n.in[1] = osp_prepare(y);
    if (!n.in[0] || !n.in[1])
        return NULL;
    n.n_out = 1;
    if (!(n.out[0] = ops_output(y, y->ndim, y->shape)))
        return NULL;
    return osp_run(&n);
}

/* Validates q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv] and an optional mask
 * of rank <= 4 that broadcasts (numpy rules, right-aligned) to
 * [B,H,Lq,Lk]. */
static osp_status check_attention(const char *op, osp_tensor *q, osp_tensor *k, osp_tensor *v,
                                  osp_tensor *mask)
{
    osp_tensor *all[4] = {q, k, v, mask};
    const char *names[4] = {"q", "k", "v", "mask"};
    for (int i = 0; i < 4; i++)
        if (all[i] && (ops_check_float(op, names[i], all[i]) ||
                       ops_check_rank(op, names[i], all[i], i < 3 ? 4 : 0, 4)))
            return osp_error_code();
    if (ops_check_devices(op, 4, all))
        return osp_error_code();
    char sq[128], sk[128], sv[128];
    if (k->shape[0] != q->shape[0] || k->shape[1] != q->shape[1] ||
        v->shape[0] != q->shape[0] || v->shape[1] != q->shape[1] ||
        k->shape[3] != q->shape[3] || v->shape[2] != k->shape[2])
        return osp_error(OSP_ERR_RUNTIME,
                         "%s: q %s, k %s, v %s do not fit [B,H,Lq,D], [B,H,Lk,D], [B,H,Lk,Dv]",
                         op, osp_shape_str(q, sq, sizeof sq), osp_shape_str(k, sk, sizeof sk),
                         osp_shape_str(v, sv, sizeof sv));
    if (mask) {
        const int64_t scores[4] = {q->shape[0], q->shape[1], q->shape[2], k->shape[2]};
        for (int d = 0; d < mask->ndim; d++) {
            int64_t size = mask->shape[d], want = scores[4 - mask->ndim + d];
            if (size != want && size != 1)
                return osp_error(OSP_ERR_RUNTIME,
                                 "%s: mask %s does not broadcast to the scores [%lld, %lld, "
                                 "%lld, %lld]",
                                 op, osp_shape_str(mask, sq, sizeof sq), (long long)scores[0],
                                 (long long)scores[1], (long long)scores[2],
                                 (long long)scores[3]);
        }
    }
    /* sgemm's int sizes: the key count and head widths are matrix sizes. */
    const int64_t dims[3] = {k->shape[2], q->shape[3], v->shape[3]};
    for (int i = 0; i < 3; i++)
        if (dims[i] > INT_MAX)
            return osp_error(OSP_ERR_RUNTIME, "%s: dimension %lld exceeds the BLAS limit %d", op,
                             (long long)dims[i], INT_MAX);
    return OSP_OK;
}

/* A [B, H, L, D] operand as the kernels read it: float32 with unit stride
 * along D and rows at least D apart, any batch and head strides, so the
 * per-head view of a linear's output [B, L, H·D] (x.reshape(B, L, H,
 * D).permute(0, 2, 1, 3)) passes without a copy. Anything else is made
 * contiguous. */
static osp_tensor *prepare_heads(osp_tensor *x)
{
    bool rows = x->dtype == OSP_F32 && (x->shape[3] <= 1 || x->stride[3] == 1) &&
                (x->shape[2] <= 1 || (x->stride[2] >= x->shape[3] && x->stride[2] <= INT_MAX));
    return rows ? x : osp_prepare(x);
}

/* Prepares q, k, v and the optional mask (contiguous) into
 * n->in[first..first+3]. */
static osp_status prepare_qkvm(osp_node *n, int first, osp_tensor *q, osp_tensor *k,
                               osp_tensor *v, osp_tensor *mask)
{
    osp_tensor *src[4] = {q, k, v, mask};
    for (int i = 0; i < 4; i++)
        if (src[i] && !(n->in[first + i] = i < 3 ? prepare_heads(src[i]) : osp_prepare(src[i])))
            return osp_error_code();
    return OSP_OK;
}

osp_tensor *osp_attention(osp_tensor *q, osp_tensor *k, osp_tensor *v, osp_tensor *mask,
                          float scale)
{
    if (!q || !k || !v || check_attention("attention", q, k, v, mask))
        return NULL;
    osp_node n = ops_node(OSP_OP_ATTENTION);
    n.n_in = 4;
    if (prepare_qkvm(&n, 0, q, k, v, mask))
        return NULL;
    const int64_t shape[4] = {q->shape[0], q->shape[1], q->shape[2], v->shape[3]};
    n.n_out = 1;
    /* o in q's memory order: with per-head views of [B, Lq, H·D], o's
     * merge back to [B, Lq, H·Dv] needs no copy */
    if (!(n.out[0] = ops_output_ordered(n.in[0], 4, shape)))
        return NULL;
    n.p.attention.scale = scale;
    return osp_run(&n);
}

osp_status osp_attention_backward(osp_tensor *go, osp_tensor *q, osp_tensor *k, osp_tensor *v,
                                  osp_tensor *mask, float scale, osp_tensor **gq,
                                  osp_tensor **gk, osp_tensor **gv)
{
    if (!go || !q || !k || !v)
        return osp_error_code() ? osp_error_code() : OSP_ERR_RUNTIME;
    if (check_attention("attention_backward", q, k, v, mask) ||
        ops_check_float("attention_backward", "go", go))
        return osp_error_code();
    const int64_t o_shape[4] = {q->shape[0], q->shape[1], q->shape[2], v->shape[3]};
    if (go->ndim != 4 || go->shape[0] != o_shape[0] || go->shape[1] != o_shape[1] ||
        go->shape[2] != o_shape[2] || go->shape[3] != o_shape[3]) {
        char s[128];
        return osp_error(OSP_ERR_RUNTIME,
                         "attention_backward: go %s does not match the output [%lld, %lld, "
                         "%lld, %lld]",
                         osp_shape_str(go, s, sizeof s), (long long)o_shape[0],
                         (long long)o_shape[1], (long long)o_shape[2], (long long)o_shape[3]);
    }
    if (go->storage->device != q->storage->device)
        return osp_error(OSP_ERR_RUNTIME, "attention_backward: go is on a different device");
    osp_node n = ops_node(OSP_OP_ATTENTION_BACKWARD);
    n.n_in = 5;
    if (!(n.in[0] = prepare_heads(go)) || prepare_qkvm(&n, 1, q, k, v, mask))
        return osp_error_code();
    n.n_out = 3;
    /* each gradient in its input's memory order (no copy on the way back
     * through a per-head view) */
    for (int i = 0; i < 3; i++)
        if (!(n.out[i] = ops_output_ordered(n.in[1 + i], 4, n.in[1 + i]->shape)))
            return osp_error_code();
    n.p.attention.scale = scale;
    if (!osp_run(&n))
        return osp_error_code();
    *gq = n.out[0];
    *gk = n.out[1];
    *gv = n.out[2];
    return OSP_OK;
}
