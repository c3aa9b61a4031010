/* op.h — the op table: every operation a model may run, as data.
 *
 * An op call is an osp_node: an op code, its input tensors, the output
 * tensors (allocated by the frontend in ops_*.c with the shape the op
 * produces), and the op's parameters. osp_dispatch() hands a node to the
 * backend that owns the output's device (backend.h); every backend fills
 * one kernel per op code. When gradients are on, osp_run() also records
 * the node on the tape (train/tape.h), whose backward rules (train/grad_*.c)
 * are written with ops again, so they run on every backend.
 *
 * Kernel contract: inputs are contiguous and, for float ops, in the
 * backend's compute dtype (f32 on the CPU); outputs are contiguous, freshly
 * allocated and must be fully written. Optional inputs are NULL. The
 * optimizer updates are the exception: their outputs are their first
 * inputs, updated in place, and they are dispatched without the tape.
 *
 * The list (forward ops; "+bwd" = a *_BACKWARD op exists for the rule):
 *   elementwise  binary add/sub/mul/div with numpy broadcasting; unary exp,
 *                log, tanh, sqrt, abs, square, sin, cos, sigmoid, silu,
 *                gelu_tanh, gelu_erf, relu, leaky_relu, clamp, scale_shift
 *                (+bwd); fill; cast; copy (strided -> contiguous)
 *   reductions   sum, mean, var (with correction), max over any axis set
 *   linear alg.  matmul (batched, broadcast batch dims, transposes), linear
 *   convolution  conv 1/2/3-D (stride, zero padding, dilation) with its
 *                backward-data (= transposed conv) and backward-weight ops
 *   normalise    group norm, layer norm, RMS norm (+bwd each)
 *   attention    softmax over the last axis (+bwd); scaled-dot-product
 *                attention with an additive mask, memory-bounded (+bwd)
 *   shape        concat, pad constant/replicate (+bwd); reshape, permute,
 *                slice are views (tape-only codes, no kernel)
 *   resample     nearest / (bi,tri)linear interpolation (+bwd),
 *                average pooling (+bwd), max pooling (+bwd)
 *   lookup       embedding gather (+bwd = scatter-add)
 *   embeddings   sinusoidal timestep embedding
 *   random       Philox normal fill (core/rng.h)
 *   optimizer    AdamW and EMA updates, in place (train/adamw.h, ema.h)
 *   flow         PWC-Net cost-volume correlation, bilinear grid sampling
 *                (forward only: evaluation ops, refused by the tape) */
#ifndef OSP_OP_H
#define OSP_OP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"

#define OSP_MAX_INPUTS 8
#define OSP_MAX_OUTPUTS 3

typedef enum osp_op {
    OSP_OP_NONE = 0,
    /* elementwise */
    OSP_OP_BINARY,          /* in: a, b          out: y (broadcast shape) */
    OSP_OP_UNARY,           /* in: x             out: y */
    OSP_OP_UNARY_BACKWARD,  /* in: gy, x         out: gx */
    OSP_OP_FILL,            /* in: -             out: y = value */
    OSP_OP_CAST,            /* in: x (any dtype) out: y (out dtype) */
    OSP_OP_COPY,            /* in: x (may be strided, any device) out: y contiguous */
    /* reductions */
    OSP_OP_REDUCE,          /* in: x             out: y */
    OSP_OP_REDUCE_MAX_BACKWARD, /* in: gy, x, y (keepdim shapes) out: gx */
    /* linear algebra */
    OSP_OP_MATMUL,          /* in: a [..,M,K] (or [..,K,M]), b   out: [..,M,N] */
    OSP_OP_LINEAR,          /* in: x [..,I], w [O,I], bias [O]?  out: [..,O] */
    /* convolution: x [N,C,*S], w [O,C,*K], bias [O]? */
    OSP_OP_CONV,
    OSP_OP_CONV_BACKWARD_DATA,   /* in: gy, w, bias [C]?   out: gx (shape given by out);
                                    also the transposed conv (x as gy, plus bias) */
    OSP_OP_CONV_BACKWARD_WEIGHT, /* in: gy, x   out: gw, gbias? */
    /* normalisation */
    OSP_OP_GROUP_NORM,          /* in: x [N,C,*], gamma [C]?, beta [C]? */
    OSP_OP_GROUP_NORM_BACKWARD, /* in: gy, x, gamma?  out: gx, ggamma?, gbeta? */
    OSP_OP_LAYER_NORM,          /* in: x [..,D], gamma [D]?, beta [D]? */
    OSP_OP_LAYER_NORM_BACKWARD, /* in: gy, x, gamma?  out: gx, ggamma?, gbeta? */
    OSP_OP_RMS_NORM,            /* in: x [..,D], gamma [D]? */
    OSP_OP_RMS_NORM_BACKWARD,   /* in: gy, x, gamma?  out: gx, ggamma? */
    /* attention */
    OSP_OP_SOFTMAX,             /* in: x   out: y  (last axis) */
    OSP_OP_SOFTMAX_BACKWARD,    /* in: gy, y   out: gx */
    OSP_OP_ATTENTION,           /* in: q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv], mask? */
    OSP_OP_ATTENTION_BACKWARD,  /* in: go, q, k, v, mask?  out: gq, gk, gv */
    /* shape */
    OSP_OP_CONCAT,              /* in: x0..xn-1   out: y */
    OSP_OP_PAD,                 /* in: x   out: y */
    OSP_OP_PAD_BACKWARD,        /* in: gy  out: gx */
    OSP_OP_VIEW_RESHAPE,        /* tape only */
    OSP_OP_VIEW_PERMUTE,        /* tape only */
    OSP_OP_VIEW_SLICE,          /* tape only */
    OSP_OP_VIEW_EXPAND,         /* tape only (broadcast view, stride 0) */
    OSP_OP_RECOMPUTE,           /* tape only: a checkpointed region (train/recompute.h) */
    /* resampling */
    OSP_OP_INTERPOLATE,         /* in: x [N,C,*S]   out: [N,C,*S'] */
    OSP_OP_INTERPOLATE_BACKWARD,/* in: gy   out: gx */
    OSP_OP_AVG_POOL,            /* in: x [N,C,*S] */
    OSP_OP_AVG_POOL_BACKWARD,   /* in: gy   out: gx */
    OSP_OP_MAX_POOL,            /* in: x [N,C,*S]   out: y (padding never wins) */
    OSP_OP_MAX_POOL_BACKWARD,   /* in: gy, x   out: gx (to each window's first maximum) */
    /* lookup and embeddings */
    OSP_OP_EMBEDDING,           /* in: table [V,D], ids (i32/i64) [*]   out: [*,D] */
    OSP_OP_EMBEDDING_BACKWARD,  /* in: gy, ids   out: gtable [V,D] */
    OSP_OP_TIMESTEP_EMBEDDING,  /* in: t [B]   out: [B, dim] */
    OSP_OP_RANDN,               /* in: -   out: y ~ N(0,1), Philox (core/rng.h) */
    /* optimizer updates, in place: out[i] is in[i] */
    OSP_OP_ADAMW,               /* in: p, m, v, g? (NULL: zeros)   out: p, m, v */
    OSP_OP_EMA,                 /* in: s, p   out: s <- s - w (s - p) */
    /* optical flow */
    OSP_OP_CORRELATION,         /* in: a, b [N,C,H,W]   out: [N,(2d+1)^2,H,W] */
    OSP_OP_GRID_SAMPLE,         /* in: x [N,C,H,W], grid [N,Ho,Wo,2]   out: [N,C,Ho,Wo] */
    OSP_OP_COUNT
} osp_op;

typedef enum osp_binary_kind {
    OSP_BINARY_ADD, OSP_BINARY_SUB, OSP_BINARY_MUL, OSP_BINARY_DIV,
} osp_binary_kind;

typedef enum osp_unary_kind {
    OSP_UNARY_EXP, OSP_UNARY_LOG, OSP_UNARY_TANH, OSP_UNARY_SQRT,
    OSP_UNARY_ABS, OSP_UNARY_SQUARE, OSP_UNARY_SIN, OSP_UNARY_COS,
    OSP_UNARY_SIGMOID, OSP_UNARY_SILU, OSP_UNARY_GELU_TANH, OSP_UNARY_GELU_ERF,
    OSP_UNARY_RELU,
    OSP_UNARY_LEAKY_RELU, /* alpha = negative slope */
    OSP_UNARY_CLAMP,      /* alpha = low, beta = high */
    OSP_UNARY_SCALE_SHIFT,/* y = alpha * x + beta */
} osp_unary_kind;

typedef enum osp_reduce_kind {
    OSP_REDUCE_SUM, OSP_REDUCE_MEAN, OSP_REDUCE_VAR, OSP_REDUCE_MAX,
} osp_reduce_kind;

typedef enum osp_pad_mode { OSP_PAD_CONSTANT, OSP_PAD_REPLICATE } osp_pad_mode;

typedef enum osp_interp_mode {
    OSP_INTERP_NEAREST, /* PyTorch 'nearest': src = floor(dst * in/out) */
    OSP_INTERP_LINEAR,  /* linear / bilinear / trilinear by rank */
} osp_interp_mode;

/* Spatial parameters shared by conv and pooling; nsp = 1, 2 or 3 spatial
 * dims (the trailing dims of x). */
typedef struct osp_window {
    int nsp;
    int64_t kernel[3];   /* pooling only; conv reads the kernel from w */
    int64_t stride[3];
    int64_t pad[3];      /* zero padding on both sides */
    int64_t dilation[3]; /* conv only */
} osp_window;

/* One AdamW step's scalars for every element (train/adamw.h computes them
 * in double): p <- p·decay + step_size·m' / (sqrt(v') / bc2_sqrt + eps),
 * m' = lerp(m, g, w1), v' = b2·v + w2·g². */
typedef struct osp_adamw_scalars {
    float decay, w1, b2, w2, step_size, bc2_sqrt, eps;
} osp_adamw_scalars;

typedef struct osp_op_params {
    union {
        struct { osp_binary_kind kind; } binary;
        struct { osp_unary_kind kind; float alpha, beta; } unary;
        struct { double value; } fill;
        struct {
            osp_reduce_kind kind;
            uint32_t axes; /* bit i set: reduce axis i */
            bool keepdim;
            int correction; /* var: divide by n - correction */
        } reduce;
        struct { bool trans_a, trans_b; float alpha; } matmul;
        /* GELU-tanh applied to the result (inference only: the op then has
         * no gradient rule; osp_linear_gelu composes ops under grad) */
        struct { bool gelu_tanh; } linear;
        osp_window conv;
        osp_window pool; /* avg pool counts padding (PyTorch default) */
        struct { int max_displacement; } corr;
        /* mask_threshold > 0: zero each output pixel whose in-range corner
         * weights sum to <= the threshold (PWC-Net's backwarp mask) */
        struct { bool align_corners; float mask_threshold; } grid_sample;
        struct { int groups; float eps; } norm;
        struct { float scale; } attention;
        struct { int axis; } concat;
        struct {
            int64_t before[OSP_MAX_DIMS], after[OSP_MAX_DIMS];
            osp_pad_mode mode;
            float value;
        } pad;
        struct { int perm[OSP_MAX_DIMS]; } permute;
        struct { int axis; int64_t start, end, step; } slice;
        /* reshape and expand read the target shape from out[0] */
        struct { osp_interp_mode mode; bool align_corners; int nsp; } interp;
        struct {
            int dim;
            bool flip_sin_to_cos;
            float downscale_freq_shift, scale, max_period;
        } timestep;
        struct { uint64_t seed, offset; } randn;
        osp_adamw_scalars adamw;
        struct { float weight; } ema;
        struct {
            osp_tensor *(*fn)(const void *ctx, osp_tensor *const *in);
            const void *ctx;
        } recompute;
    };
} osp_op_params;

typedef struct osp_node {
    osp_op op;
    int n_in, n_out;
    osp_tensor *in[OSP_MAX_INPUTS];
    osp_tensor *out[OSP_MAX_OUTPUTS];
    osp_op_params p;
} osp_node;

const char *osp_op_name(osp_op op);

/* Runs a node on the backend of out[0]'s device. Inputs must live on that
 * device. With OSP_POISON=1 in the environment, float outputs are filled
 * with NaN first, so a kernel that leaves elements unwritten is caught. */
osp_status osp_dispatch(osp_node *n);

/* osp_dispatch, then (gradients on and an input requires grad) records the
 * node on the tape. Returns n->out[0], or NULL after releasing the outputs
 * on failure. Frontends end with `return osp_run(&n);`. */
osp_tensor *osp_run(osp_node *n);

/* Gradient mode (thread-local; off by default). Returns the previous mode. */
bool osp_grad_set_enabled(bool on);
bool osp_grad_enabled(void);
/* Set while ops run without gradients that will be run again with them
 * (gradient checkpointing's first pass): the inference-only fusions (such
 * as osp_linear_gelu's) stay off, so both passes compute bit-identical
 * values. Thread-local; returns the previous value. */
bool osp_grad_set_deferred(bool on);
bool osp_grad_deferred(void);

#endif
