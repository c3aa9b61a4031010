/* dispatch.c — runs op-table nodes on their backend and records them on the
 * tape (see op.h). */
#include "backend.h"
#include "op.h"
#include "profile.h"
#include "train/tape.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const op_names[OSP_OP_COUNT] = {
    [OSP_OP_NONE] = "none",
    [OSP_OP_BINARY] = "binary",
    [OSP_OP_UNARY] = "unary",
    [OSP_OP_UNARY_BACKWARD] = "unary_backward",
    [OSP_OP_FILL] = "fill",
    [OSP_OP_CAST] = "cast",
    [OSP_OP_COPY] = "copy",
    [OSP_OP_REDUCE] = "reduce",
    [OSP_OP_REDUCE_MAX_BACKWARD] = "reduce_max_backward",
    [OSP_OP_MATMUL] = "matmul",
    [OSP_OP_LINEAR] = "linear",
    [OSP_OP_CONV] = "conv",
    [OSP_OP_CONV_BACKWARD_DATA] = "conv_backward_data",
    [OSP_OP_CONV_BACKWARD_WEIGHT] = "conv_backward_weight",
    [OSP_OP_GROUP_NORM] = "group_norm",
    [OSP_OP_GROUP_NORM_BACKWARD] = "group_norm_backward",
    [OSP_OP_LAYER_NORM] = "layer_norm",
    [OSP_OP_LAYER_NORM_BACKWARD] = "layer_norm_backward",
    [OSP_OP_RMS_NORM] = "rms_norm",
    [OSP_OP_RMS_NORM_BACKWARD] = "rms_norm_backward",
    [OSP_OP_SOFTMAX] = "softmax",
    [OSP_OP_SOFTMAX_BACKWARD] = "softmax_backward",
    [OSP_OP_ATTENTION] = "attention",
    [OSP_OP_ATTENTION_BACKWARD] = "attention_backward",
    [OSP_OP_CONCAT] = "concat",
    [OSP_OP_PAD] = "pad",
    [OSP_OP_PAD_BACKWARD] = "pad_backward",
    [OSP_OP_VIEW_RESHAPE] = "reshape",
    [OSP_OP_VIEW_PERMUTE] = "permute",
    [OSP_OP_VIEW_SLICE] = "slice",
    [OSP_OP_VIEW_EXPAND] = "expand",
    [OSP_OP_RECOMPUTE] = "recompute",
    [OSP_OP_INTERPOLATE] = "interpolate",
    [OSP_OP_INTERPOLATE_BACKWARD] = "interpolate_backward",
    [OSP_OP_AVG_POOL] = "avg_pool",
    [OSP_OP_AVG_POOL_BACKWARD] = "avg_pool_backward",
    [OSP_OP_MAX_POOL] = "max_pool",
    [OSP_OP_MAX_POOL_BACKWARD] = "max_pool_backward",
    [OSP_OP_EMBEDDING] = "embedding",
    [OSP_OP_EMBEDDING_BACKWARD] = "embedding_backward",
    [OSP_OP_TIMESTEP_EMBEDDING] = "timestep_embedding",
    [OSP_OP_RANDN] = "randn",
    [OSP_OP_ADAMW] = "adamw",
    [OSP_OP_EMA] = "ema",
    [OSP_OP_CORRELATION] = "correlation",
    [OSP_OP_GRID_SAMPLE] = "grid_sample",
};

const char *osp_op_name(osp_op op)
{
    return (unsigned)op < OSP_OP_COUNT && op_names[op] ? op_names[op] : "?";
}

static const osp_backend *backends[2];

void osp_backend_register(const osp_backend *b)
{
    if ((unsigned)b->device < 2)
        backends[b->device] = b;
}

const osp_backend *osp_backend_for(osp_device device)
{
    if (device == OSP_DEVICE_CPU)
        return osp_backend_cpu();
#ifdef OSP_CUDA
    if (device == OSP_DEVICE_CUDA)
        return osp_backend_cuda();
#endif
    return (unsigned)device < 2 ? backends[device] : NULL;
}

bool osp_device_memory_stats(osp_device device, osp_device_memory *m)
{
    const osp_backend *b = osp_backend_for(device);
    if (!b || !b->memory)
        return false;
    *m = b->memory();
    return true;
}

static bool poison_enabled(void)
{
    static int cached = -1;
    if (cached < 0) {
        const char *e = getenv("OSP_POISON");
        cached = e && *e && strcmp(e, "0") != 0;
    }
    return cached;
}

static void poison(const osp_backend *b, osp_tensor *t)
{
    /* A COPY may write through a strided view into a larger tensor whose
     * other elements must survive; a dense view (an output stored in
     * another dim order) owns its numel slots from the first element. */
    if (!t || !osp_is_dense(t))
        return;
    if (t->storage->device != OSP_DEVICE_CPU) { /* NaN (0 for integers) via the backend */
        osp_node fill = {.op = OSP_OP_FILL, .n_out = 1, .out = {t}, .p.fill.value = NAN};
        if (b->kernels[OSP_OP_FILL])
            b->kernels[OSP_OP_FILL](&fill);
        return;
    }
    int64_t n = osp_numel(t);
    if (t->dtype == OSP_F32) {
        float *p = osp_f32(t);
        for (int64_t i = 0; i < n; i++)
            p[i] = NAN;
    } else {
        memset(osp_data(t), 0xA5, osp_nbytes(t));
    }
}

static bool is_input(const osp_node *n, const osp_tensor *t)
{
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && t && n->in[i]->storage == t->storage)
            return true;
    return false;
}

osp_status osp_dispatch(osp_node *n)
{
    osp_device dev = n->out[0]->storage->device;
    for (int i = 0; i < n->n_in; i++) {
        /* COPY moves data between devices; everything else stays on one. */
        if (n->in[i] && n->in[i]->storage->device != dev && n->op != OSP_OP_COPY)
            return osp_error(OSP_ERR_RUNTIME, "%s: inputs are on different devices",
                             osp_op_name(n->op));
    }
    /* A copy from a device runs on that device's backend. */
    if (n->op == OSP_OP_COPY && n->in[0] && n->in[0]->storage->device != OSP_DEVICE_CPU)
        dev = n->in[0]->storage->device;
    const osp_backend *b = osp_backend_for(dev);
    if (!b)
        return osp_error(OSP_ERR_RUNTIME, "%s: no backend for device %d", osp_op_name(n->op),
                         (int)dev);
    osp_kernel_fn k = b->kernels[n->op];
    if (!k)
        return osp_error(OSP_ERR_RUNTIME, "op %s is not available on the %s backend",
                         osp_op_name(n->op), b->name);
    if (poison_enabled())
        for (int i = 0; i < n->n_out; i++)
            if (!is_input(n, n->out[i])) /* an in-place update reads it */
                poison(b, n->out[i]);
    if (!osp_profile_enabled())
        return k(n);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    osp_status st = k(n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    osp_profile_record(n, (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    return st;
}

osp_tensor *osp_run(osp_node *n)
{
    if (osp_dispatch(n) != OSP_OK) {
        for (int i = 0; i < n->n_out; i++)
            osp_release(osp_pool_take(n->out[i]));
        return NULL;
    }
    if (osp_tape_record(n) != OSP_OK)
        return NULL;
    return n->out[0];
}

static _Thread_local bool grad_on, grad_deferred;

/* Sets a thread-local mode flag; returns its previous value. */
static bool set_mode(bool *flag, bool on)
{
    bool old = *flag;
    *flag = on;
    return old;
}

bool osp_grad_set_enabled(bool on) { return set_mode(&grad_on, on); }
bool osp_grad_enabled(void) { return grad_on; }
bool osp_grad_set_deferred(bool on) { return set_mode(&grad_deferred, on); }
bool osp_grad_deferred(void) { return grad_deferred; }
