/* cuda_conv.c — convolution on the GPU through cuDNN: forward,
 * backward-data (also the transposed convolution) and backward-weight, for
 * 1, 2 and 3 spatial dims (1-D runs as 2-D with a unit height); CPU
 * reference: cpu_conv.c. float32 NCDHW tensors; TF32 only when enabled
 * (cuda.h), since cuDNN's default math would use it on Ampere and later.
 * Algorithms are measured (cudnnFind*Ex) the first time a shape comes, and
 * the list is kept per shape: cuDNN's heuristic order put algorithms 20x
 * slower than the best first at some VAE shapes (bench/RESULTS.md, cuda).
 * The fastest deterministic one that fits WORKSPACE_LIMIT runs (the next
 * if it refuses); workspaces come from the caching allocator. The bias is
 * added (and its gradient summed) by our own kernels.
 * cuDNN's legacy API counts elements in 32 bits: a tensor of 2^31 or more
 * elements is refused with a message (tile or chunk the input). */
#include "cuda.h"
#include "cuda_kernels.h"
#include "cuda_util.h"

#include <cudnn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKSPACE_LIMIT ((size_t)1 << 30)
#define MAX_ALGOS 16

static cudnnHandle_t dnn;

static osp_status dnn_fail(const osp_node *n, const char *what, cudnnStatus_t s)
{
    return cu_fail(n, s == CUDNN_STATUS_ALLOC_FAILED ? OSP_ERR_NOMEM : OSP_ERR_RUNTIME, what,
                   cudnnGetErrorString(s));
}

#define DNN_TRY(n, call)                                                       \
    do {                                                                       \
        cudnnStatus_t s_ = (call);                                             \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                      \
            st = dnn_fail((n), #call, s_);                                     \
            goto done;                                                         \
        }                                                                      \
    } while (0)

/* What a measured algorithm list depends on. */
typedef struct algo_key {
    int kind; /* 0 forward, 1 backward data, 2 backward filter */
    int nd, xd[5], wd[5], yd[5], pad[3], stride[3], dil[3];
    bool tf32;
} algo_key;

typedef struct conv_desc {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    int64_t batch, C, O, in_size, out_size;
    algo_key key;
} conv_desc;

/* One algorithm of a list, whichever of the three directions. */
typedef struct measured {
    cudnnStatus_t status;
    int algo;
    size_t memory;
    cudnnDeterminism_t determinism;
} measured;

typedef struct algo_list {
    algo_key key;
    int count;
    measured perf[MAX_ALGOS];
} algo_list;

static algo_list *lists;
static size_t n_lists, cap_lists;

static algo_list *find_list(const algo_key *k)
{
    for (size_t i = 0; i < n_lists; i++)
        if (memcmp(&lists[i].key, k, sizeof *k) == 0)
            return &lists[i];
    return NULL;
}

static algo_list *new_list(const algo_key *k)
{
    if (n_lists == cap_lists) {
        size_t cap = cap_lists ? 2 * cap_lists : 32;
        algo_list *grown = realloc(lists, cap * sizeof *grown);
        if (!grown) {
            osp_error_nomem("cuDNN algorithm lists", cap * sizeof *grown);
            return NULL;
        }
        lists = grown;
        cap_lists = cap;
    }
    algo_list *l = &lists[n_lists++];
    memset(l, 0, sizeof *l); /* padding too: keys are compared bytewise */
    memcpy(&l->key, k, sizeof *k);
    return l;
}

/* The workspace the measurement may use: WORKSPACE_LIMIT, or less when the
 * device has less free. */
static osp_storage *find_workspace(size_t *bytes)
{
    for (*bytes = WORKSPACE_LIMIT; *bytes >= ((size_t)16 << 20); *bytes /= 4) {
        osp_storage *m = cu_scratch(*bytes);
        if (m)
            return m;
        osp_error_clear();
    }
    *bytes = 0;
    return NULL;
}

static void desc_destroy(conv_desc *d)
{
    cudnnDestroyTensorDescriptor(d->x);
    cudnnDestroyTensorDescriptor(d->y);
    cudnnDestroyFilterDescriptor(d->w);
    cudnnDestroyConvolutionDescriptor(d->conv);
}

/* Dims of t as int, with a unit height inserted for 1-D (nsp = 1). */
static osp_status int_dims(const osp_node *n, const osp_tensor *t, int *dims, int *nd)
{
    if (osp_numel(t) > INT_MAX)
        return cu_fail(n, OSP_ERR_RUNTIME, "convolution",
                       "a tensor has 2^31 or more elements, beyond cuDNN (tile the input)");
    int nsp = t->ndim - 2, at = 0;
    dims[at++] = (int)t->shape[0];
    dims[at++] = (int)t->shape[1];
    if (nsp == 1)
        dims[at++] = 1;
    for (int i = 2; i < t->ndim; i++)
        dims[at++] = (int)t->shape[i];
    *nd = at;
    return OSP_OK;
}

static void packed_strides(const int *dims, int nd, int *strides)
{
    int s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

/* Descriptors for x [N, C, *in] * w [O, C, *k] -> y [N, O, *out]. */
static osp_status describe(const osp_node *n, const osp_tensor *x, const osp_tensor *w,
                           const osp_tensor *y, const osp_window *win, conv_desc *d)
{
    osp_status st = OSP_OK;
    memset(d, 0, sizeof *d); /* the key's padding too: keys are compared bytewise */
    if (!dnn) { /* a handle on our stream, or none (tried again next time) */
        if (!osp_cuda_available())
            return osp_error(OSP_ERR_RUNTIME, "CUDA: %s", osp_cuda_unavailable_reason());
        cudnnHandle_t h;
        DNN_TRY(n, cudnnCreate(&h));
        cudnnStatus_t s = cudnnSetStream(h, cu_stream());
        if (s != CUDNN_STATUS_SUCCESS) {
            cudnnDestroy(h);
            return dnn_fail(n, "cudnnSetStream", s);
        }
        dnn = h;
    }
    /* zeroed past nd: the key copies all 5 and is compared bytewise */
    int xd[5] = {0}, yd[5] = {0}, wd[5] = {0}, xs[5] = {0}, ys[5] = {0}, nd = 0;
    if (int_dims(n, x, xd, &nd) || int_dims(n, y, yd, &nd) || int_dims(n, w, wd, &nd))
        return osp_error_code();
    packed_strides(xd, nd, xs);
    packed_strides(yd, nd, ys);
    int nsp = nd - 2, pad[3] = {0}, stride[3] = {0}, dil[3] = {0}, lead = nsp - win->nsp;
    for (int i = 0; i < nsp; i++) {
        int j = i - lead; /* 1-D: the inserted height has a unit window */
        pad[i] = j >= 0 ? (int)win->pad[j] : 0;
        stride[i] = j >= 0 ? (int)win->stride[j] : 1;
        dil[i] = j >= 0 ? (int)win->dilation[j] : 1;
    }
    DNN_TRY(n, cudnnCreateTensorDescriptor(&d->x));
    DNN_TRY(n, cudnnCreateTensorDescriptor(&d->y));
    DNN_TRY(n, cudnnCreateFilterDescriptor(&d->w));
    DNN_TRY(n, cudnnCreateConvolutionDescriptor(&d->conv));
    DNN_TRY(n, cudnnSetTensorNdDescriptor(d->x, CUDNN_DATA_FLOAT, nd, xd, xs));
    DNN_TRY(n, cudnnSetTensorNdDescriptor(d->y, CUDNN_DATA_FLOAT, nd, yd, ys));
    DNN_TRY(n, cudnnSetFilterNdDescriptor(d->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, nd, wd));
    DNN_TRY(n, cudnnSetConvolutionNdDescriptor(d->conv, nsp, pad, stride, dil,
                                               CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    DNN_TRY(n, cudnnSetConvolutionMathType(d->conv, cu_tf32() ? CUDNN_DEFAULT_MATH
                                                              : CUDNN_FMA_MATH));
    d->key.nd = nd;
    memcpy(d->key.xd, xd, sizeof xd);
    memcpy(d->key.wd, wd, sizeof wd);
    memcpy(d->key.yd, yd, sizeof yd);
    memcpy(d->key.pad, pad, sizeof pad);
    memcpy(d->key.stride, stride, sizeof stride);
    memcpy(d->key.dil, dil, sizeof dil);
    d->key.tf32 = cu_tf32();
    d->batch = x->shape[0];
    d->C = x->shape[1];
    d->O = y->shape[1];
    d->in_size = d->out_size = 1;
    for (int i = 2; i < x->ndim; i++) {
        d->in_size *= x->shape[i];
        d->out_size *= y->shape[i];
    }
    return OSP_OK;
done:
    desc_destroy(d);
    return st;
}

/* Runs `call` (which reads algo_, wsp_ and ws_) with each algorithm of a
 * measured list that succeeded and fits WORKSPACE_LIMIT, in the list's
 * order (fastest first), until one runs: an algorithm may still refuse
 * the descriptors (CUDNN_STATUS_NOT_SUPPORTED). Deterministic
 * algorithms first: some backward-data ones (conv_transpose's forward)
 * add with atomics, and the same frames must give the same flow bit for
 * bit (FloLPIPS of identical videos is 0/0 = NaN only then). An algorithm
 * whose workspace cannot be allocated now is passed over for the next (the
 * list is ordered by time measured when memory may have been freer). Sets
 * st and jumps to done on failure. The workspace is released once the call is
 * queued (the allocator is stream-ordered). */
#define RUN_ALGOS(n, perf, count, call)                                                \
    do {                                                                               \
        cudnnStatus_t last_ = CUDNN_STATUS_NOT_SUPPORTED;                              \
        for (int i_ = 0; i_ < 2 * (count) && last_ != CUDNN_STATUS_SUCCESS; i_++) {    \
            bool any_ = i_ >= (count); /* second pass: the non-deterministic ones */   \
            int a_ = i_ % (count);                                                     \
            if ((perf)[a_].status != CUDNN_STATUS_SUCCESS ||                           \
                (perf)[a_].memory > WORKSPACE_LIMIT ||                                 \
                ((perf)[a_].determinism == CUDNN_DETERMINISTIC) == any_)               \
                continue;                                                              \
            size_t ws_ = (perf)[a_].memory;                                            \
            osp_storage *mem_ = ws_ ? cu_scratch(ws_) : NULL;                          \
            if (ws_ && !mem_) { /* no room for its workspace: try the next one */      \
                osp_error_clear();                                                     \
                last_ = CUDNN_STATUS_ALLOC_FAILED;                                     \
                continue;                                                              \
            }                                                                          \
            void *wsp_ = mem_ ? mem_->data : NULL;                                     \
            __typeof__((perf)[a_].algo) algo_ = (perf)[a_].algo;                       \
            last_ = (call);                                                            \
            osp_storage_release(mem_);                                                 \
            if (last_ != CUDNN_STATUS_SUCCESS && last_ != CUDNN_STATUS_NOT_SUPPORTED)  \
                break;                                                                 \
        }                                                                              \
        if (last_ != CUDNN_STATUS_SUCCESS) {                                           \
            st = dnn_fail((n), "no cuDNN algorithm ran", last_);                       \
            goto done;                                                                 \
        }                                                                              \
    } while (0)

/* list = the algorithm list of d's shape in direction kind: measured on
 * first use by find_call (a cudnnFind*Ex call that fills count_ and perf_,
 * an array of PerfT, given the workspace ws_ of wsb_ bytes), or, where the
 * measurement fails, finds no deterministic algorithm that ran (the
 * workspace it could be given may have been too small for all of them) or
 * OSP_CUDA_REPRODUCIBLE is set, the heuristics' order (heur_call, filling
 * the same), kept after. Timing may rank two
 * algorithms differently in two processes, whose results then differ in
 * the last bits; the heuristics do not. Sets st and jumps to done on
 * failure. */
#define MEASURED(n, d, kind_, PerfT, find_call, heur_call, list)                          \
    do {                                                                                  \
        (d).key.kind = (kind_);                                                           \
        if (((list) = find_list(&(d).key)))                                               \
            break;                                                                        \
        PerfT perf_[MAX_ALGOS];                                                           \
        int count_ = 0;                                                                   \
        size_t wsb_ = 0;                                                                  \
        osp_storage *wsm_ = cu_reproducible() ? NULL : find_workspace(&wsb_);             \
        void *ws_ = wsm_ ? wsm_->data : NULL;                                             \
        cudnnStatus_t s_ = cu_reproducible() ? CUDNN_STATUS_NOT_SUPPORTED : (find_call);  \
        osp_storage_release(wsm_);                                                        \
        bool det_ = false; /* a deterministic algorithm measured that fits the limit */   \
        for (int i_ = 0; s_ == CUDNN_STATUS_SUCCESS && i_ < count_; i_++)                 \
            det_ |= perf_[i_].status == CUDNN_STATUS_SUCCESS &&                           \
                    perf_[i_].memory <= WORKSPACE_LIMIT &&                                \
                    perf_[i_].determinism == CUDNN_DETERMINISTIC;                         \
        if (s_ != CUDNN_STATUS_SUCCESS || !det_) /* (no room for their workspaces?) */     \
            s_ = (heur_call);                                                             \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                                 \
            st = dnn_fail((n), "choosing a convolution algorithm", s_);                   \
            goto done;                                                                    \
        }                                                                                 \
        if (!((list) = new_list(&(d).key))) {                                             \
            st = osp_error_code();                                                        \
            goto done;                                                                    \
        }                                                                                 \
        for (int i_ = 0; i_ < count_; i_++)                                               \
            (list)->perf[i_] = (measured){perf_[i_].status, (int)perf_[i_].algo,           \
                                          perf_[i_].memory, perf_[i_].determinism};        \
        (list)->count = count_;                                                           \
    } while (0)

/* cuDNN refuses zero dims: a convolution with an empty operand and a
 * non-empty result is a sum over nothing, zeros, plus the bias if any
 * ([N, channels, *spatial] t gets bias[channel]). */
static osp_status zero_plus_bias(const osp_node *n, osp_tensor *t, const float *bias)
{
    osp_status st = cu_check(n, cudaMemsetAsync(cu_ptr(t), 0, osp_nbytes(t), cu_stream()),
                             "zero an empty convolution's result");
    if (st == OSP_OK && bias) {
        int64_t planes = t->shape[0] * t->shape[1];
        st = cu_add_channel_bias(n, cu_f32(t), bias, t->shape[0], t->shape[1],
                                 osp_numel(t) / planes);
    }
    return st;
}

static bool any_empty(const osp_tensor *a, const osp_tensor *b)
{
    return osp_numel(a) == 0 || osp_numel(b) == 0;
}

/* in: x, w, bias?   out: y */
osp_status cuda_conv(const osp_node *n)
{
    conv_desc d;
    if (osp_numel(n->out[0]) == 0)
        return OSP_OK;
    if (any_empty(n->in[0], n->in[1]))
        return zero_plus_bias(n, n->out[0], cu_opt(n, 2));
    if (describe(n, n->in[0], n->in[1], n->out[0], &n->p.conv, &d))
        return osp_error_code();
    osp_status st = OSP_OK;
    algo_list *l;
    float one = 1.0f, zero = 0.0f;
    MEASURED(n, d, 0, cudnnConvolutionFwdAlgoPerf_t,
             cudnnFindConvolutionForwardAlgorithmEx(
                 dnn, d.x, cu_f32(n->in[0]), d.w, cu_f32(n->in[1]), d.conv, d.y,
                 cu_f32(n->out[0]), MAX_ALGOS, &count_, perf_, ws_, wsb_),
             cudnnGetConvolutionForwardAlgorithm_v7(dnn, d.x, d.w, d.conv, d.y, MAX_ALGOS,
                                                    &count_, perf_),
             l);
    RUN_ALGOS(n, l->perf, l->count,
              cudnnConvolutionForward(dnn, &one, d.x, cu_f32(n->in[0]), d.w, cu_f32(n->in[1]),
                                      d.conv, algo_, wsp_, ws_, &zero, d.y, cu_f32(n->out[0])));
    if (cu_opt(n, 2))
        st = cu_add_channel_bias(n, cu_f32(n->out[0]), cu_opt(n, 2), d.batch, d.O, d.out_size);
done:
    desc_destroy(&d);
    return st;
}

/* in: gy, w, bias [C]?   out: gx */
osp_status cuda_conv_backward_data(const osp_node *n)
{
    conv_desc d;
    osp_tensor *gx = n->out[0];
    if (osp_numel(gx) == 0)
        return OSP_OK;
    if (any_empty(n->in[0], n->in[1]))
        return zero_plus_bias(n, gx, cu_opt(n, 2));
    if (describe(n, gx, n->in[1], n->in[0], &n->p.conv, &d))
        return osp_error_code();
    osp_status st = OSP_OK;
    algo_list *l;
    float one = 1.0f, zero = 0.0f;
    MEASURED(n, d, 1, cudnnConvolutionBwdDataAlgoPerf_t,
             cudnnFindConvolutionBackwardDataAlgorithmEx(
                 dnn, d.w, cu_f32(n->in[1]), d.y, cu_f32(n->in[0]), d.conv, d.x, cu_f32(gx),
                 MAX_ALGOS, &count_, perf_, ws_, wsb_),
             cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn, d.w, d.y, d.conv, d.x, MAX_ALGOS,
                                                         &count_, perf_),
             l);
    RUN_ALGOS(n, l->perf, l->count,
              cudnnConvolutionBackwardData(dnn, &one, d.w, cu_f32(n->in[1]), d.y,
                                           cu_f32(n->in[0]), d.conv, algo_, wsp_, ws_, &zero,
                                           d.x, cu_f32(gx)));
    if (cu_opt(n, 2))
        st = cu_add_channel_bias(n, cu_f32(gx), cu_opt(n, 2), d.batch, d.C, d.in_size);
done:
    desc_destroy(&d);
    return st;
}

/* in: gy, x   out: gw, gbias? */
osp_status cuda_conv_backward_weight(const osp_node *n)
{
    conv_desc d;
    osp_tensor *gw = n->out[0], *gb = n->n_out > 1 ? n->out[1] : NULL;
    const osp_tensor *gy = n->in[0];
    if (any_empty(gy, n->in[1])) {
        osp_status st = osp_numel(gw) ? zero_plus_bias(n, gw, NULL) : OSP_OK;
        if (st != OSP_OK || !gb || !osp_numel(gb))
            return st;
        if (!osp_numel(gy))
            return zero_plus_bias(n, gb, NULL);
        int64_t planes = gy->shape[0] * gy->shape[1]; /* gbias sums gy over batch and space */
        return cu_channel_sum(n, cu_f32(gy), cu_f32(gb), gy->shape[0], gy->shape[1],
                              osp_numel(gy) / planes);
    }
    if (osp_numel(gw) == 0)
        return OSP_OK;
    if (describe(n, n->in[1], gw, n->in[0], &n->p.conv, &d))
        return osp_error_code();
    osp_status st = OSP_OK;
    algo_list *l;
    float one = 1.0f, zero = 0.0f;
    MEASURED(n, d, 2, cudnnConvolutionBwdFilterAlgoPerf_t,
             cudnnFindConvolutionBackwardFilterAlgorithmEx(
                 dnn, d.x, cu_f32(n->in[1]), d.y, cu_f32(n->in[0]), d.conv, d.w, cu_f32(gw),
                 MAX_ALGOS, &count_, perf_, ws_, wsb_),
             cudnnGetConvolutionBackwardFilterAlgorithm_v7(dnn, d.x, d.y, d.conv, d.w, MAX_ALGOS,
                                                           &count_, perf_),
             l);
    RUN_ALGOS(n, l->perf, l->count,
              cudnnConvolutionBackwardFilter(dnn, &one, d.x, cu_f32(n->in[1]), d.y,
                                             cu_f32(n->in[0]), d.conv, algo_, wsp_, ws_, &zero,
                                             d.w, cu_f32(gw)));
    if (gb)
        st = cu_channel_sum(n, cu_f32(n->in[0]), cu_f32(gb), d.batch, d.O, d.out_size);
done:
    desc_destroy(&d);
    return st;
}
