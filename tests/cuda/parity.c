/* parity.c — every op of the op table on the CUDA backend against the CPU
 * reference (make test-cuda).
 *
 * Each case builds fresh random host inputs, runs the same frontend call on
 * the CPU and on copies of the inputs on the GPU, and compares the outputs
 * by ||gpu - cpu|| / ||cpu|| with the tolerance of its precision (f32
 * 1e-5; products that may use TF32, with OSP_CUDA_TF32=1, 1e-3; matmul,
 * linear and the flash attention in bf16, with OSP_CUDA_BF16=1, 1e-2). Cases with
 * a gradient also run backward from loss = Σ y·w (w random) through the
 * tape, which calls the ops' *_BACKWARD kernels, and compare every input's
 * gradient. Outputs are poisoned (OSP_POISON=1: NaN on both backends)
 * before each kernel, so an element a kernel leaves unwritten fails. The
 * Philox generator and dtype casts must match bit for bit. Prints TAP
 * lines; with no usable GPU it prints one skip line and exits 0.
 * OSP_PARITY_SELFTEST=1 runs every case CPU against CPU (on cloned
 * inputs), which checks the cases themselves on a machine without a GPU. */
#include "backend/cuda/cuda.h"
#include "backend/ops.h"
#include "backend/ops_random.h"
#include "test.h"
#include "train/tape.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IN 6
#define F32_TOL 1e-5

typedef osp_tensor *(*case_fn)(osp_tensor **in);

static double gemm_tol; /* f32 products: 1e-5, or 1e-3 when TF32 is on */
static int passed, failed;
static osp_device target = OSP_DEVICE_CUDA; /* OSP_DEVICE_CPU in self-test */

/* x on the device under test (a clone in self-test, so gradients stay
 * apart). */
static osp_tensor *to_target(osp_tensor *x)
{
    return target == OSP_DEVICE_CPU ? osp_tensor_clone(x) : osp_to_device(x, target);
}

/* Host f32 copy of t (any device, any float dtype). */
static osp_tensor *host_f32(osp_tensor *t)
{
    return osp_contiguous(osp_cast(osp_to_device(t, OSP_DEVICE_CPU), OSP_F32));
}

static bool close_enough(const char *what, osp_tensor *got, osp_tensor *want, double tol)
{
    if (!got || !want) {
        printf("#   %s: %s (osp error: %s)\n", what, got ? "CPU failed" : "CUDA failed",
               osp_error_message());
        return false;
    }
    osp_tensor *g = host_f32(got), *w = host_f32(want);
    if (!g || !w || !osp_same_shape(g, w)) {
        printf("#   %s: shapes differ\n", what);
        return false;
    }
    double err = osp_numel(w) ? test_rel_error(g, w) : 0.0;
    if (!(err <= tol)) {
        printf("#   %s: ||cuda - cpu|| / ||cpu|| = %.3g > %.0e\n", what, err, tol);
        return false;
    }
    return true;
}

/* Runs fn on the CPU inputs and on their GPU copies; with grad, also the
 * backward of Σ y·w, comparing the gradient of every float input. */
static void check(const char *name, double tol, bool grad, case_fn fn, int n, osp_tensor **in)
{
    osp_pool_push();
    osp_error_clear();
    osp_tensor *dev[MAX_IN] = {0};
    for (int i = 0; i < n; i++) {
        dev[i] = to_target(in[i]);
        if (grad && osp_dtype_is_float(in[i]->dtype)) {
            osp_requires_grad(in[i]);
            osp_requires_grad(dev[i]);
        }
    }
    /* Each backward clears the tape, so each side runs forward and
     * backward before the other starts. */
    osp_grad_set_enabled(grad);
    osp_tensor *want = fn(in), *w = NULL;
    bool ok = want != NULL, backward_ok = true;
    if (ok && grad) {
        w = test_random(want->ndim, want->shape, -1, 1);
        osp_tensor *loss = osp_sum(osp_mul(want, w), 0, NULL, false);
        backward_ok = loss && osp_backward(loss, NULL) == OSP_OK;
    }
    osp_tensor *got = ok ? fn(dev) : NULL;
    if (got && grad && backward_ok) {
        osp_tensor *loss = osp_sum(osp_mul(got, to_target(w)), 0, NULL, false);
        backward_ok = loss && osp_backward(loss, NULL) == OSP_OK;
    }
    ok = close_enough("forward", got, want, tol);
    if (ok && !backward_ok) {
        printf("#   backward failed (osp error: %s)\n", osp_error_message());
        ok = false;
    }
    for (int i = 0; ok && grad && i < n; i++) {
        /* integer ids, and inputs without a gradient rule (masks) */
        if (!osp_dtype_is_float(in[i]->dtype) || (!in[i]->grad && !dev[i]->grad))
            continue;
        char what[32];
        snprintf(what, sizeof what, "gradient of input %d", i);
        ok = close_enough(what, dev[i]->grad, in[i]->grad, tol);
    }
    osp_grad_set_enabled(false);
    osp_tape_clear();
    for (int i = 0; i < n; i++) {
        osp_zero_grad(in[i]);
        osp_zero_grad(dev[i]);
    }
    osp_pool_pop();
    printf("%s %d - %s\n", ok ? "ok" : "not ok", passed + failed + 1, name);
    fflush(stdout);
    ok ? passed++ : failed++;
}

/* Fresh inputs: uniform in [lo, hi) (host, f32). */
static osp_tensor *rnd(int ndim, const int64_t *shape, float lo, float hi)
{
    return test_random(ndim, shape, lo, hi);
}
#define SHAPE(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}
#define RND(...) rnd(SHAPE(__VA_ARGS__), -1, 1)
#define CHECK_OP(name, tol, grad, fn, ...)                                                 \
    do {                                                                                   \
        osp_tensor *in_[] = {__VA_ARGS__};                                                 \
        check(name, tol, grad, fn, (int)(sizeof in_ / sizeof *in_), in_);                  \
    } while (0)

/* ---- elementwise ---- */

static osp_tensor *f_add(osp_tensor **x) { return osp_add(x[0], x[1]); }
static osp_tensor *f_sub(osp_tensor **x) { return osp_sub(x[0], x[1]); }
static osp_tensor *f_mul(osp_tensor **x) { return osp_mul(x[0], x[1]); }
static osp_tensor *f_div(osp_tensor **x) { return osp_div(x[0], x[1]); }

static osp_unary_kind unary_kind;
static float unary_alpha, unary_beta;
static osp_tensor *f_unary(osp_tensor **x)
{
    return osp_unary(x[0], unary_kind, unary_alpha, unary_beta);
}

static void elementwise_cases(void)
{
    CHECK_OP("add same shape", F32_TOL, true, f_add, RND(3, 5, 7), RND(3, 5, 7));
    CHECK_OP("add broadcast [2,1,4,1]+[3,1,5]", F32_TOL, true, f_add, RND(2, 1, 4, 1), RND(3, 1, 5));
    CHECK_OP("sub broadcast row", F32_TOL, true, f_sub, RND(6, 33), RND(33));
    CHECK_OP("mul broadcast channel", F32_TOL, true, f_mul, RND(2, 8, 3, 5), RND(1, 8, 1, 1));
    CHECK_OP("div", F32_TOL, true, f_div, RND(4, 9), rnd(SHAPE(4, 9), 0.5f, 2.0f));
    static const struct { const char *name; osp_unary_kind k; float lo, hi, a, b; } u[] = {
        {"exp", OSP_UNARY_EXP, -3, 3, 0, 0}, {"log", OSP_UNARY_LOG, 0.1f, 4, 0, 0},
        {"tanh", OSP_UNARY_TANH, -3, 3, 0, 0}, {"sqrt", OSP_UNARY_SQRT, 0.1f, 4, 0, 0},
        {"abs", OSP_UNARY_ABS, -2, 2, 0, 0}, {"square", OSP_UNARY_SQUARE, -2, 2, 0, 0},
        {"sin", OSP_UNARY_SIN, -4, 4, 0, 0}, {"cos", OSP_UNARY_COS, -4, 4, 0, 0},
        {"sigmoid", OSP_UNARY_SIGMOID, -6, 6, 0, 0}, {"silu", OSP_UNARY_SILU, -6, 6, 0, 0},
        {"gelu tanh", OSP_UNARY_GELU_TANH, -5, 5, 0, 0},
        {"gelu erf", OSP_UNARY_GELU_ERF, -5, 5, 0, 0}, {"relu", OSP_UNARY_RELU, -2, 2, 0, 0},
        {"leaky relu", OSP_UNARY_LEAKY_RELU, -2, 2, 0.2f, 0},
        {"clamp", OSP_UNARY_CLAMP, -2, 2, -0.5f, 0.7f},
        {"scale shift", OSP_UNARY_SCALE_SHIFT, -2, 2, 0.18215f, -0.3f},
    };
    for (size_t i = 0; i < sizeof u / sizeof *u; i++) {
        char name[64];
        snprintf(name, sizeof name, "unary %s", u[i].name);
        unary_kind = u[i].k;
        unary_alpha = u[i].a;
        unary_beta = u[i].b;
        CHECK_OP(name, F32_TOL, true, f_unary, rnd(SHAPE(5, 1031), u[i].lo, u[i].hi));
    }
}

/* ---- creation, casts, copies (bit for bit) ---- */

static bool same_bits(osp_tensor *a, osp_tensor *b)
{
    a = osp_contiguous(osp_to_device(a, OSP_DEVICE_CPU));
    b = osp_contiguous(osp_to_device(b, OSP_DEVICE_CPU));
    return a && b && a->dtype == b->dtype && osp_same_shape(a, b) &&
           memcmp(osp_data(a), osp_data(b), osp_nbytes(a)) == 0;
}

static void report(const char *name, bool ok)
{
    if (!ok)
        printf("#   results differ (osp error: %s)\n", osp_error_message());
    printf("%s %d - %s\n", ok ? "ok" : "not ok", passed + failed + 1, name);
    ok ? passed++ : failed++;
}

static void exact_cases(void)
{
    osp_pool_push();
    int64_t shape[3] = {3, 7, 129};
    /* Philox normals at an unaligned offset, and a split of the same range */
    osp_tensor *cpu = osp_randn(3, shape, OSP_DEVICE_CPU, 42, 5);
    osp_tensor *gpu = osp_randn(3, shape, target, 42, 5);
    report("randn bit-identical (seed 42, offset 5)", same_bits(gpu, cpu));
    int64_t tail = 3 * 7 * 129 - 1000;
    osp_tensor *part = osp_randn(1, &tail, target, 42, 1005);
    osp_tensor *flat = osp_reshape(cpu, 1, (int64_t[]){3 * 7 * 129});
    report("randn split range", same_bits(part, osp_slice(flat, 0, 1000, 3 * 7 * 129, 1)));
    report("fill", same_bits(osp_full(OSP_F32, 3, shape, target, -2.5),
                             osp_full(OSP_F32, 3, shape, OSP_DEVICE_CPU, -2.5)));
    /* casts between every float dtype and the integer ones */
    osp_tensor *x = rnd(SHAPE(4, 257), -300, 300), *xd = to_target(x);
    const osp_dtype types[] = {OSP_BF16, OSP_F16, OSP_F64, OSP_I32, OSP_I64, OSP_U8};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        char name[64];
        snprintf(name, sizeof name, "cast f32 -> %s -> f32", osp_dtype_name(types[i]));
        osp_tensor *c = osp_cast(osp_cast(x, types[i]), OSP_F32);
        osp_tensor *g = osp_cast(osp_cast(xd, types[i]), OSP_F32);
        report(name, same_bits(g, c));
    }
    /* copies of strided views: permute, slice with step, expand */
    int perm[3] = {2, 0, 1};
    osp_tensor *y = RND(5, 6, 7), *yd = to_target(y);
    report("copy of a permuted view (device)",
           same_bits(osp_contiguous(osp_permute(yd, perm)), osp_contiguous(osp_permute(y, perm))));
    report("copy of a sliced view to the device",
           same_bits(to_target(osp_slice(y, 2, 1, 7, 3)),
                     osp_contiguous(osp_slice(y, 2, 1, 7, 3))));
    report("copy of a device slice to the host",
           same_bits(osp_to_device(osp_slice(yd, 1, 0, 6, 2), OSP_DEVICE_CPU),
                     osp_contiguous(osp_slice(y, 1, 0, 6, 2))));
    report("copy of an expanded view",
           same_bits(osp_contiguous(osp_expand(osp_slice(yd, 0, 0, 1, 1), 3, (int64_t[]){4, 6, 7})),
                     osp_contiguous(osp_expand(osp_slice(y, 0, 0, 1, 1), 3, (int64_t[]){4, 6, 7}))));
    osp_pool_pop();
}

/* ---- reductions ---- */

static int red_axes[2], red_naxes;
static osp_tensor *f_sum(osp_tensor **x) { return osp_sum(x[0], red_naxes, red_axes, true); }
static osp_tensor *f_mean(osp_tensor **x) { return osp_mean(x[0], red_naxes, red_axes, false); }
static osp_tensor *f_var(osp_tensor **x) { return osp_var(x[0], red_naxes, red_axes, 1, true); }
static osp_tensor *f_max(osp_tensor **x) { return osp_max(x[0], red_naxes, red_axes, false); }

static void reduce_cases(void)
{
    red_naxes = 1;
    red_axes[0] = -1;
    CHECK_OP("sum last axis", F32_TOL, true, f_sum, RND(6, 5, 300));
    red_naxes = 2;
    red_axes[0] = 0;
    red_axes[1] = 2;
    CHECK_OP("mean axes 0,2", F32_TOL, true, f_mean, RND(4, 7, 33, 3));
    CHECK_OP("var axes 0,2", F32_TOL, true, f_var, RND(4, 7, 33, 3));
    CHECK_OP("max axes 0,2", F32_TOL, true, f_max, RND(4, 7, 33, 3));
    red_naxes = 0;
    CHECK_OP("sum all", F32_TOL, true, f_sum, RND(3, 1000));
    /* outer axes with kept inner dims: the column kernels */
    red_naxes = 1;
    red_axes[0] = 0;
    CHECK_OP("sum over rows (bias gradient), 3 column tiles", F32_TOL, true, f_sum,
             RND(1500, 70));
    red_axes[0] = 1;
    CHECK_OP("mean over the middle axis [3,130,45] -> [3,45]", F32_TOL, true, f_mean,
             RND(3, 130, 45));
    red_naxes = 2;
    red_axes[0] = 1;
    red_axes[1] = 2;
    CHECK_OP("sum axes 1,2 of [2,5,7,33] (two reduced dims, one run)", F32_TOL, true, f_sum,
             RND(2, 5, 7, 33));
}

/* ---- linear algebra ---- */

static bool mm_ta, mm_tb;
static osp_tensor *f_matmul(osp_tensor **x) { return osp_matmul(x[0], x[1], mm_ta, mm_tb); }
static osp_tensor *f_linear(osp_tensor **x) { return osp_linear(x[0], x[1], x[2]); }
static osp_tensor *f_linear_nobias(osp_tensor **x) { return osp_linear(x[0], x[1], NULL); }
static osp_tensor *f_linear_gelu(osp_tensor **x) { return osp_linear_gelu(x[0], x[1], x[2]); }
static osp_tensor *f_linear_gelu_nobias(osp_tensor **x)
{
    return osp_linear_gelu(x[0], x[1], NULL);
}

static void linalg_cases(void)
{
    CHECK_OP("matmul [37,45]x[45,29]", gemm_tol, true, f_matmul, RND(37, 45), RND(45, 29));
    CHECK_OP("matmul batched, b shared", gemm_tol, true, f_matmul, RND(3, 4, 17, 9), RND(9, 11));
    CHECK_OP("matmul broadcast batch [2,1]x[3]", gemm_tol, true, f_matmul, RND(2, 1, 8, 5),
             RND(3, 5, 6));
    mm_ta = true;
    CHECK_OP("matmul trans_a batched", gemm_tol, true, f_matmul, RND(2, 3, 9, 8), RND(2, 3, 9, 7));
    mm_ta = false;
    mm_tb = true;
    CHECK_OP("matmul trans_b batched (q kT)", gemm_tol, true, f_matmul, RND(2, 3, 16, 72),
             RND(2, 3, 20, 72));
    mm_tb = false;
    CHECK_OP("linear with bias", gemm_tol, true, f_linear, RND(2, 19, 96), RND(130, 96), RND(130));
    CHECK_OP("linear without bias", gemm_tol, true, f_linear_nobias, RND(77, 64), RND(40, 64));
    /* without gradients: the fused node (cuBLASLt's GELU epilogues) */
    CHECK_OP("linear + GELU, bias (one fused op)", gemm_tol, false, f_linear_gelu,
             rnd(SHAPE(2, 19, 96), -3, 3), RND(130, 96), RND(130));
    CHECK_OP("linear + GELU, no bias (one fused op)", gemm_tol, false, f_linear_gelu_nobias,
             rnd(SHAPE(77, 64), -3, 3), RND(40, 64));
    /* an empty sum (cuBLASLt takes no empty matrices): zeros, the bias */
    CHECK_OP("matmul k = 0", gemm_tol, true, f_matmul, RND(2, 4, 0), RND(0, 6));
    CHECK_OP("linear, 0 in-features", gemm_tol, true, f_linear, RND(5, 0), RND(7, 0), RND(7));
    CHECK_OP("linear + GELU, 0 in-features", gemm_tol, false, f_linear_gelu, RND(5, 0),
             RND(7, 0), RND(7));
}

/* ---- convolution ---- */

static osp_window conv_win;
static int64_t conv_outpad[3];
static osp_tensor *f_conv(osp_tensor **x) { return osp_conv(x[0], x[1], x[2], &conv_win); }
static osp_tensor *f_conv_t(osp_tensor **x)
{
    return osp_conv_transpose(x[0], x[1], x[2], &conv_win, conv_outpad);
}

static void set_window(int nsp, int64_t stride, int64_t pad, int64_t dil)
{
    conv_win = osp_window_default(nsp);
    for (int i = 0; i < nsp; i++) {
        conv_win.stride[i] = stride;
        conv_win.pad[i] = pad;
        conv_win.dilation[i] = dil;
    }
}

static void conv_cases(void)
{
    set_window(1, 2, 1, 1);
    CHECK_OP("conv1d stride 2 pad 1", gemm_tol, true, f_conv, RND(2, 5, 31), RND(6, 5, 3), RND(6));
    set_window(2, 1, 1, 1);
    CHECK_OP("conv2d 3x3 pad 1", gemm_tol, true, f_conv, RND(2, 8, 13, 11), RND(12, 8, 3, 3),
             RND(12));
    CHECK_OP("conv2d, empty batch (cuDNN refuses zero dims)", gemm_tol, true, f_conv,
             RND(0, 8, 13, 11), RND(12, 8, 3, 3), RND(12));
    set_window(2, 2, 0, 2);
    CHECK_OP("conv2d stride 2 dilation 2", gemm_tol, true, f_conv, RND(1, 4, 17, 15),
             RND(5, 4, 3, 3), RND(5));
    set_window(3, 1, 0, 1);
    CHECK_OP("conv3d 3x3x3 (causal VAE, pre-padded)", gemm_tol, true, f_conv,
             RND(1, 8, 7, 10, 9), RND(8, 8, 3, 3, 3), RND(8));
    set_window(3, 2, 0, 1);
    CHECK_OP("conv3d stride 2 downsample", gemm_tol, true, f_conv, RND(1, 4, 9, 12, 12),
             RND(6, 4, 3, 3, 3), RND(6));
    set_window(3, 1, 0, 1);
    conv_win.pad[0] = 0;
    CHECK_OP("conv3d 1x1x1", gemm_tol, true, f_conv, RND(2, 16, 3, 5, 6), RND(8, 16, 1, 1, 1),
             RND(8));
    set_window(2, 2, 1, 1);
    conv_outpad[0] = conv_outpad[1] = 1;
    CHECK_OP("conv_transpose2d stride 2", gemm_tol, true, f_conv_t, RND(2, 6, 7, 8),
             RND(6, 4, 3, 3), RND(4));
    conv_outpad[0] = conv_outpad[1] = 0;
}

/* ---- normalisation, softmax, attention ---- */

static int norm_groups;
static osp_tensor *f_group_norm(osp_tensor **x)
{
    return osp_group_norm(x[0], norm_groups, x[1], x[2], 1e-6f);
}
static osp_tensor *f_layer_norm(osp_tensor **x) { return osp_layer_norm(x[0], x[1], x[2], 1e-6f); }
static osp_tensor *f_layer_norm_plain(osp_tensor **x)
{
    return osp_layer_norm(x[0], NULL, NULL, 1e-6f);
}
static osp_tensor *f_rms_norm(osp_tensor **x) { return osp_rms_norm(x[0], x[1], 1e-6f); }
static osp_tensor *f_softmax(osp_tensor **x) { return osp_softmax(x[0]); }

static float attn_scale;
static osp_tensor *f_attention(osp_tensor **x)
{
    return osp_attention(x[0], x[1], x[2], x[3], attn_scale);
}
static osp_tensor *f_attention_nomask(osp_tensor **x)
{
    return osp_attention(x[0], x[1], x[2], NULL, attn_scale);
}

/* The models' multi-head attention over [B, L, H·D] inputs: per-head
 * views in (strided: the flash kernels read them in place, the GEMM path
 * gathers them), o stored as [B, Lq, H, Dv] merged back without a copy. */
static int64_t attn_heads;
static osp_tensor *per_head(osp_tensor *x)
{
    int64_t s[] = {x->shape[0], x->shape[1], attn_heads, x->shape[2] / attn_heads};
    return osp_permute(osp_reshape(x, 4, s), (const int[]){0, 2, 1, 3});
}
static osp_tensor *multi_head(osp_tensor **x, osp_tensor *mask)
{
    osp_tensor *o = osp_attention(per_head(x[0]), per_head(x[1]), per_head(x[2]), mask,
                                  attn_scale);
    if (!o)
        return NULL;
    int64_t merged[] = {o->shape[0], o->shape[2], o->shape[1] * o->shape[3]};
    return osp_reshape(osp_permute(o, (const int[]){0, 2, 1, 3}), 3, merged);
}
static osp_tensor *f_multi_head(osp_tensor **x) { return multi_head(x, x[3]); }
static osp_tensor *f_multi_head_nomask(osp_tensor **x) { return multi_head(x, NULL); }

static void norm_attention_cases(void)
{
    norm_groups = 32;
    CHECK_OP("group norm 32 groups, 3-D frames", F32_TOL, true, f_group_norm,
             RND(2, 64, 3, 6, 5), RND(64), RND(64));
    norm_groups = 8;
    CHECK_OP("group norm, 147456-element groups (split statistics)", F32_TOL, true,
             f_group_norm, RND(1, 32, 9, 64, 64), RND(32), RND(32));
    norm_groups = 4;
    CHECK_OP("group norm 4 groups, 2-D", F32_TOL, true, f_group_norm, RND(3, 8, 9, 7), RND(8),
             RND(8));
    CHECK_OP("layer norm with affine", F32_TOL, true, f_layer_norm, RND(5, 9, 96), RND(96),
             RND(96));
    CHECK_OP("layer norm, gamma and beta per sample (adaLN)", F32_TOL, true, f_layer_norm,
             RND(3, 50, 96), RND(3, 1, 96), RND(3, 1, 96));
    /* 300 rows a sample: the affine gradients' column sums in 5 chunks of
     * rows (50 rows above: one chunk, written directly) */
    CHECK_OP("layer norm per sample, affine sums in several row chunks", F32_TOL, true,
             f_layer_norm, RND(2, 300, 96), RND(2, 1, 96), RND(2, 1, 96));
    CHECK_OP("layer norm without affine (adaLN)", F32_TOL, true, f_layer_norm_plain,
             RND(3, 300, 72));
    CHECK_OP("RMS norm (T5)", F32_TOL, true, f_rms_norm, RND(2, 11, 64), RND(64));
    CHECK_OP("softmax", F32_TOL, true, f_softmax, rnd(SHAPE(7, 3, 257), -8, 8));
    attn_scale = 0.11785113f; /* 1/sqrt(72) */
    CHECK_OP("attention D=72 flash, key mask [B,1,1,Lk]", gemm_tol, true, f_attention,
             RND(2, 3, 150, 72), RND(2, 3, 41, 72), RND(2, 3, 41, 72),
             rnd(SHAPE(2, 1, 1, 41), -3, 0));
    CHECK_OP("attention D=72 flash, no mask, 4 key tiles", gemm_tol, true, f_attention_nomask,
             RND(1, 3, 100, 72), RND(1, 3, 230, 72), RND(1, 3, 230, 72));
    CHECK_OP("attention D=72 flash, no mask, Lq 17 (temporal)", gemm_tol, true,
             f_attention_nomask, RND(6, 2, 17, 72), RND(6, 2, 17, 72), RND(6, 2, 17, 72));
    attn_scale = 0.125f;
    CHECK_OP("attention D=64 flash, full mask [Lq,Lk]", gemm_tol, true, f_attention,
             RND(1, 4, 129, 64), RND(1, 4, 77, 64), RND(1, 4, 77, 64), RND(129, 77));
    attn_scale = 0.0441941738f; /* 1/sqrt(512): the VAE's single head */
    attn_heads = 3;
    CHECK_OP("multi-head D=72 flash over per-head views, key mask", gemm_tol, true,
             f_multi_head, RND(2, 100, 216), RND(2, 70, 216), RND(2, 70, 216),
             rnd(SHAPE(2, 1, 1, 70), -3, 0));
    CHECK_OP("multi-head D=72 flash over per-head views, Lq 17", gemm_tol, true,
             f_multi_head_nomask, RND(4, 17, 216), RND(4, 17, 216), RND(4, 17, 216));
    attn_heads = 2;
    CHECK_OP("multi-head D=16 GEMM path over per-head views", gemm_tol, true, f_multi_head,
             RND(2, 9, 32), RND(2, 11, 32), RND(2, 11, 32), rnd(SHAPE(2, 1, 9, 11), -3, 0));
    CHECK_OP("attention D=512 GEMM path (VAE)", gemm_tol, true, f_attention_nomask,
             RND(1, 1, 96, 512), RND(1, 1, 96, 512), RND(1, 1, 96, 512));
    attn_scale = 0.25f;
    CHECK_OP("attention D=16, Dv=24 GEMM path, mask", gemm_tol, true, f_attention,
             RND(2, 2, 33, 16), RND(2, 2, 45, 16), RND(2, 2, 45, 24), RND(2, 1, 33, 45));
}

/* ---- shape, resampling, lookup, flow ---- */

static osp_tensor *f_concat(osp_tensor **x) { return osp_concat(3, x, 1); }
static osp_pad_mode pad_mode;
static osp_tensor *f_pad(osp_tensor **x)
{
    int64_t before[4] = {0, 1, 2, 0}, after[4] = {1, 0, 1, 3};
    return osp_pad(x[0], before, after, pad_mode, 0.5f);
}

static osp_interp_mode interp_mode;
static bool interp_corners;
static int interp_nsp;
static int64_t interp_size[3];
static osp_tensor *f_interp(osp_tensor **x)
{
    return osp_interpolate(x[0], interp_nsp, interp_size, interp_mode, interp_corners);
}

static osp_window pool_win;
static osp_tensor *f_avg_pool(osp_tensor **x) { return osp_avg_pool(x[0], &pool_win); }
static osp_tensor *f_max_pool(osp_tensor **x) { return osp_max_pool(x[0], &pool_win); }

static osp_tensor *f_embedding(osp_tensor **x) { return osp_embedding(x[0], x[1]); }
static osp_tensor *f_timestep(osp_tensor **x)
{
    return osp_timestep_embedding(x[0], 257, true, 0.0f, 1.0f, 10000.0f);
}
static osp_tensor *f_correlation(osp_tensor **x) { return osp_correlation(x[0], x[1], 4); }
static osp_tensor *f_grid_sample(osp_tensor **x)
{
    return osp_grid_sample(x[0], x[1], false, 0.999f);
}

static osp_tensor *ids_tensor(osp_dtype t, int64_t n, int64_t vocab)
{
    osp_tensor *f = rnd(SHAPE(n), 0, (float)vocab - 0.01f);
    return osp_cast(f, t);
}

static void misc_cases(void)
{
    CHECK_OP("concat axis 1", F32_TOL, true, f_concat, RND(2, 3, 5), RND(2, 1, 5), RND(2, 4, 5));
    pad_mode = OSP_PAD_CONSTANT;
    CHECK_OP("pad constant", F32_TOL, true, f_pad, RND(2, 3, 4, 5));
    pad_mode = OSP_PAD_REPLICATE;
    CHECK_OP("pad replicate", F32_TOL, true, f_pad, RND(2, 3, 4, 5));
    interp_nsp = 2;
    interp_mode = OSP_INTERP_NEAREST;
    interp_size[0] = 14;
    interp_size[1] = 10;
    CHECK_OP("interpolate nearest 2-D x2", F32_TOL, true, f_interp, RND(2, 3, 7, 5));
    interp_mode = OSP_INTERP_LINEAR;
    interp_size[0] = 11;
    interp_size[1] = 4;
    CHECK_OP("interpolate bilinear", F32_TOL, true, f_interp, RND(2, 3, 7, 5));
    interp_corners = true;
    interp_nsp = 3;
    interp_size[0] = 5;
    interp_size[1] = 9;
    interp_size[2] = 6;
    CHECK_OP("interpolate trilinear align corners", F32_TOL, true, f_interp, RND(1, 2, 3, 4, 5));
    interp_corners = false;
    pool_win = osp_window_default(3);
    for (int i = 0; i < 3; i++)
        pool_win.kernel[i] = pool_win.stride[i] = 2;
    CHECK_OP("avg pool 3-D 2x2x2", F32_TOL, true, f_avg_pool, RND(2, 3, 4, 6, 8));
    pool_win = osp_window_default(2);
    pool_win.kernel[0] = pool_win.kernel[1] = 3;
    pool_win.stride[0] = pool_win.stride[1] = 2;
    pool_win.pad[0] = pool_win.pad[1] = 1;
    CHECK_OP("avg pool 2-D 3x3 stride 2 pad 1", F32_TOL, true, f_avg_pool, RND(2, 3, 9, 10));
    CHECK_OP("max pool 2-D 3x3 stride 2 pad 1", F32_TOL, true, f_max_pool, RND(2, 3, 9, 10));
    CHECK_OP("embedding i64 ids", F32_TOL, true, f_embedding, RND(50, 24),
             ids_tensor(OSP_I64, 37, 50));
    CHECK_OP("embedding i32 ids", F32_TOL, true, f_embedding, RND(9, 8), ids_tensor(OSP_I32, 100, 9));
    CHECK_OP("timestep embedding (odd dim, flipped)", F32_TOL, false, f_timestep,
             rnd(SHAPE(6), 0, 999));
    CHECK_OP("correlation d=4", F32_TOL, false, f_correlation, RND(2, 7, 12, 13), RND(2, 7, 12, 13));
    CHECK_OP("grid sample with mask", F32_TOL, false, f_grid_sample, RND(2, 3, 9, 11),
             rnd(SHAPE(2, 7, 8, 2), -1.2f, 1.2f));
}

/* ---- in-place optimizer updates: same operation order, IEEE-rounded
 * square root and division on both sides, so bit for bit ---- */

/* Runs fn on host copies and on target copies of the state, then compares
 * every updated tensor bit for bit. */
typedef osp_status (*update_fn)(osp_tensor **state);
static void check_update(const char *name, update_fn fn, int n, osp_tensor **state)
{
    osp_pool_push();
    osp_error_clear();
    osp_tensor *host[MAX_IN], *dev[MAX_IN];
    for (int i = 0; i < n; i++) {
        host[i] = state[i] ? osp_tensor_clone(state[i]) : NULL;
        dev[i] = state[i] ? to_target(state[i]) : NULL;
    }
    bool ok = fn(host) == OSP_OK && fn(dev) == OSP_OK;
    for (int i = 0; ok && i < n; i++)
        ok = !state[i] || same_bits(dev[i], host[i]);
    osp_pool_pop();
    report(name, ok);
}

static osp_adamw_scalars adamw_c;
static osp_status u_adamw(osp_tensor **s) { return osp_adamw_inplace(s[0], s[1], s[2], s[3], &adamw_c); }
static osp_status u_ema(osp_tensor **s) { return osp_ema_inplace(s[0], s[1], 0.0625f); }

static void optim_cases(void)
{
    osp_pool_push();
    int64_t shape[2] = {37, 1029}; /* not a multiple of any block */
    osp_tensor *p = rnd(2, shape, -1, 1), *m = rnd(2, shape, -0.1f, 0.1f);
    osp_tensor *v = rnd(2, shape, 0, 0.01f), *g = rnd(2, shape, -0.5f, 0.5f);
    /* step 3 of lr 1e-3, wd 1e-2; betas 0.9/0.999, then 0.3 (lerp's other formula) */
    const double lr = 1e-3, b2 = 0.999, bc2 = 1 - b2 * b2 * b2;
    for (int variant = 0; variant < 3; variant++) {
        double b1 = variant == 1 ? 0.3 : 0.9, bc1 = 1 - b1 * b1 * b1;
        adamw_c = (osp_adamw_scalars){
            .decay = (float)(1 - lr * 1e-2), .w1 = (float)(1 - b1), .b2 = (float)b2,
            .w2 = (float)(1 - b2), .step_size = (float)(-lr / bc1), .bc2_sqrt = (float)sqrt(bc2),
            .eps = 1e-8f,
        };
        osp_tensor *state[] = {p, m, v, variant == 2 ? NULL : g};
        check_update(variant == 0   ? "adamw in place, bit-identical"
                     : variant == 1 ? "adamw in place, beta1 0.3 (the other lerp form)"
                                    : "adamw in place, no gradient (zeros)",
                     u_adamw, 4, state);
    }
    osp_tensor *ema_state[] = {p, rnd(2, shape, -1, 1)};
    check_update("ema in place, bit-identical", u_ema, 2, ema_state);
    osp_pool_pop();
}

int main(void)
{
    const char *self = getenv("OSP_PARITY_SELFTEST");
    if (self && *self && strcmp(self, "0") != 0)
        target = OSP_DEVICE_CPU;
    else if (!osp_cuda_available()) {
        printf("1..0 # SKIP no usable CUDA device (%s)\n", osp_cuda_unavailable_reason());
        return 0;
    }
    setenv("OSP_POISON", "1", 1);
    const char *tf32 = getenv("OSP_CUDA_TF32"), *bf16 = getenv("OSP_CUDA_BF16");
    bool on_tf32 = tf32 && *tf32 && strcmp(tf32, "0"), on_bf16 = bf16 && *bf16 && strcmp(bf16, "0");
    gemm_tol = on_bf16 ? 1e-2 : on_tf32 ? 1e-3 : F32_TOL;
    printf("# device: %s; %s; tolerance of matmul, linear, conv and attention %.0e\n",
           target == OSP_DEVICE_CPU ? "cpu (self-test)" : osp_cuda_device_name(),
           on_bf16   ? "bf16 GEMMs and flash attention, f32 accumulation (OSP_CUDA_BF16)"
           : on_tf32 ? "GEMMs and convolutions may use TF32 (OSP_CUDA_TF32)"
                     : "all in f32",
           gemm_tol);
    osp_pool_push();
    elementwise_cases();
    exact_cases();
    reduce_cases();
    linalg_cases();
    conv_cases();
    norm_attention_cases();
    misc_cases();
    optim_cases();
    osp_pool_pop();
    osp_cuda_memory mem = osp_cuda_memory_stats();
    printf("# device memory: peak %zu bytes, %zu in use at exit, %zu cached\n", mem.peak,
           mem.in_use, mem.cached);
    printf("1..%d\n# passed %d failed %d\n", passed + failed, passed, failed);
    return failed ? 1 : 0;
}
