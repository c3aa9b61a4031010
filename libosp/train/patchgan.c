/* patchgan.c — see patchgan.h.
 *
 * The tensors live in one osp_params in the state dict's order (what save
 * writes and load reads); the struct keeps pointers into it by role. The
 * forward is composed of table ops, so the tape differentiates it exactly:
 * BatchNorm2d in training mode normalises each channel over (M, H, W),
 * which is a group norm with one group per channel once the frames are
 * brought into a single sample, [M, C, H, W] -> [1, C, M·H·W]. The running
 * statistics are side results computed with gradients off and applied on
 * the host, in double as torch's CPU kernel does, after the whole forward
 * has succeeded (a failed call changes nothing).
 *
 * Fresh weights (osp_patchgan_new): tensor i of the checkpoint order draws
 * elements 0.. of the Philox stream keyed osp_stream_seed(seed,
 * OSP_STREAM_DISC_INIT, i) (normals for conv and BatchNorm weights,
 * uniforms for conv biases), so each tensor's values depend only on the
 * seed and its position. */
#include "patchgan.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/ops.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"
#include "train/tape.h"
#include "train/train_rng.h"

#define MAX_LAYERS 16
#define MAX_WIDTH ((int64_t)1 << 16) /* in_channels and ndf */
#define KERNEL 4
#define SLOPE 0.2f
#define BN_EPS 1e-5f
#define MOMENTUM 0.1

typedef enum role { CONV_W, CONV_B, BN_W, BN_B, RUN_MEAN, RUN_VAR, TRACKED } role;

typedef struct bn_layer {
    osp_tensor *conv, *weight, *bias, *mean, *var, *tracked;
} bn_layer;

struct osp_patchgan {
    osp_params params;
    int64_t in, ndf;
    int n_layers;
    osp_tensor *first_w, *first_b, *last_w, *last_b;
    bn_layer bn[MAX_LAYERS + 1]; /* 1 .. n_layers */
    size_t n_train;
    osp_tensor *train[3 * MAX_LAYERS + 4];
    const char *train_names[3 * MAX_LAYERS + 4];
};

/* Output channels of conv n (0: the first). */
static int64_t width(int64_t ndf, int n)
{
    return ndf * (n >= 3 ? 8 : (int64_t)1 << n);
}

/* Makes one tensor of the checkpoint: `index` is its position there,
 * fan_in the conv's input count (for biases). Returns a pool tensor. */
typedef osp_tensor *(*make_fn)(void *ctx, const char *name, role r, int ndim,
                               const int64_t *shape, int64_t fan_in, size_t index);

static osp_status add(osp_patchgan *d, const char *name, role r, int ndim, const int64_t *shape,
                      int64_t fan_in, make_fn make, void *ctx, osp_tensor **slot)
{
    osp_tensor *t = make(ctx, name, r, ndim, shape, fan_in, d->params.n);
    osp_status st = t ? osp_params_add(&d->params, name, t) : osp_error_code();
    if (st)
        return st;
    *slot = d->params.tensors[d->params.n - 1];
    if (r == CONV_W || r == CONV_B || r == BN_W || r == BN_B) {
        d->train[d->n_train] = osp_requires_grad(*slot);
        d->train_names[d->n_train++] = d->params.names[d->params.n - 1];
    }
    return OSP_OK;
}

/* Every tensor in the state dict's order. */
static osp_status build_tensors(osp_patchgan *d, make_fn make, void *ctx)
{
    char name[64];
    int64_t prev = d->ndf, in16 = d->in * KERNEL * KERNEL;
    osp_status st = add(d, "main.0.weight", CONV_W, 4, (int64_t[]){d->ndf, d->in, KERNEL, KERNEL},
                        in16, make, ctx, &d->first_w);
    st = st ? st : add(d, "main.0.bias", CONV_B, 1, &d->ndf, in16, make, ctx, &d->first_b);
    for (int n = 1; !st && n <= d->n_layers; n++) {
        int64_t w = width(d->ndf, n), fan_in = prev * KERNEL * KERNEL;
        bn_layer *b = &d->bn[n];
        snprintf(name, sizeof name, "main.%d.weight", 3 * n - 1);
        st = add(d, name, CONV_W, 4, (int64_t[]){w, prev, KERNEL, KERNEL}, fan_in, make, ctx,
                 &b->conv);
        static const char *const field[] = {"weight", "bias", "running_mean", "running_var",
                                            "num_batches_tracked"};
        osp_tensor **slot[] = {&b->weight, &b->bias, &b->mean, &b->var, &b->tracked};
        for (int f = 0; !st && f < 5; f++) {
            snprintf(name, sizeof name, "main.%d.%s", 3 * n, field[f]);
            st = add(d, name, (role)(BN_W + f), f == 4 ? 0 : 1, &w, fan_in, make, ctx, slot[f]);
        }
        prev = w;
    }
    int64_t fan_in = prev * KERNEL * KERNEL, one = 1;
    snprintf(name, sizeof name, "main.%d.weight", 3 * d->n_layers + 2);
    st = st ? st : add(d, name, CONV_W, 4, (int64_t[]){1, prev, KERNEL, KERNEL}, fan_in, make,
                       ctx, &d->last_w);
    snprintf(name, sizeof name, "main.%d.bias", 3 * d->n_layers + 2);
    st = st ? st : add(d, name, CONV_B, 1, &one, fan_in, make, ctx, &d->last_b);
    return st;
}

static osp_patchgan *build(int64_t in, int64_t ndf, int n_layers, make_fn make, void *ctx)
{
    if (in < 1 || in > MAX_WIDTH || ndf < 1 || ndf > MAX_WIDTH || n_layers < 1 ||
        n_layers > MAX_LAYERS) {
        osp_error(OSP_ERR_DATA,
                  "patchgan: %" PRId64 " input channels, ndf %" PRId64 ", %d layers: "
                  "channels and ndf must be 1 .. %" PRId64 ", layers 1 .. %d",
                  in, ndf, n_layers, MAX_WIDTH, MAX_LAYERS);
        return NULL;
    }
    osp_patchgan *d = calloc(1, sizeof *d);
    if (!d) {
        osp_error_nomem("discriminator", sizeof *d);
        return NULL;
    }
    osp_params_init(&d->params, NULL, OSP_DEVICE_CPU);
    d->in = in;
    d->ndf = ndf;
    d->n_layers = n_layers;
    osp_pool_push();
    osp_status st = build_tensors(d, make, ctx);
    osp_pool_pop();
    if (st) {
        osp_patchgan_free(d);
        return NULL;
    }
    return d;
}

/* ---- fresh weights ---- */

static osp_tensor *make_fresh(void *ctx, const char *name, role r, int ndim,
                              const int64_t *shape, int64_t fan_in, size_t index)
{
    (void)name;
    uint64_t key = osp_stream_seed(*(const uint64_t *)ctx, OSP_STREAM_DISC_INIT, index);
    if (r == TRACKED)
        return osp_tensor_zeros(OSP_I64, 0, shape, OSP_DEVICE_CPU);
    osp_tensor *t = osp_tensor_zeros(OSP_F32, ndim, shape, OSP_DEVICE_CPU);
    if (!t)
        return NULL;
    float *v = osp_f32(t);
    int64_t n = osp_numel(t);
    osp_status st = OSP_OK;
    if (r == CONV_W || r == BN_W) {
        st = osp_rng_normal_fill(v, n, key, 0);
        for (int64_t i = 0; !st && i < n; i++)
            v[i] = (r == BN_W ? 1.0f : 0.0f) + 0.02f * v[i];
    } else if (r == CONV_B) { /* torch's default: U(−1/√fan_in, 1/√fan_in) */
        st = osp_rng_uniform_fill(v, n, key, 0);
        double bound = 1.0 / sqrt((double)fan_in);
        for (int64_t i = 0; !st && i < n; i++)
            v[i] = (float)((2.0 * v[i] - 1.0) * bound);
    } else if (r == RUN_VAR) {
        for (int64_t i = 0; i < n; i++)
            v[i] = 1.0f;
    } /* BatchNorm biases and running means stay 0 */
    return st ? NULL : t;
}

osp_patchgan *osp_patchgan_new(int64_t in_channels, int64_t ndf, int n_layers, uint64_t seed)
{
    return build(in_channels, ndf, n_layers, make_fresh, &seed);
}

/* ---- loading ---- */

typedef struct load_ctx {
    osp_safetensors *st;
    const char *path;
} load_ctx;

static const char *shape_text(int ndim, const int64_t *shape, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (at < len)
        snprintf(buf + at, len - at, "]");
    return buf;
}

static osp_tensor *make_loaded(void *ctx, const char *name, role r, int ndim,
                               const int64_t *shape, int64_t fan_in, size_t index)
{
    (void)fan_in;
    (void)index;
    const load_ctx *c = ctx;
    const osp_st_entry *e = osp_safetensors_find(c->st, name);
    if (!e && r == TRACKED) /* as torch: older state dicts lack the counter */
        return osp_tensor_zeros(OSP_I64, 0, shape, OSP_DEVICE_CPU);
    if (!e) {
        osp_error(OSP_ERR_DATA, "%s: no tensor %s", c->path, name);
        return NULL;
    }
    bool ok = e->ndim == ndim && (r == TRACKED ? !osp_dtype_is_float(e->dtype)
                                               : osp_dtype_is_float(e->dtype));
    for (int i = 0; ok && i < ndim; i++)
        ok = e->shape[i] == shape[i];
    if (!ok) {
        char got[128], want[128];
        osp_error(OSP_ERR_DATA, "%s: %s is %s %s, expected %s %s", c->path, name,
                  osp_dtype_name(e->dtype), shape_text(e->ndim, e->shape, got, sizeof got),
                  r == TRACKED ? "an integer" : "a float", shape_text(ndim, shape, want,
                                                                       sizeof want));
        return NULL;
    }
    return osp_tensor_to_dtype(osp_safetensors_get(c->st, name), r == TRACKED ? OSP_I64 : OSP_F32);
}

/* Widths and depth from the shapes: main.0.weight is [ndf, in, 4, 4], and
 * the BatchNorm layers main.3, main.6, ... run up to the depth. */
static osp_status read_layout(osp_safetensors *st, const char *path, int64_t *in, int64_t *ndf,
                              int *n_layers)
{
    const osp_st_entry *e = osp_safetensors_find(st, "main.0.weight");
    if (!e)
        return osp_error(OSP_ERR_DATA, "%s: no tensor main.0.weight", path);
    if (e->ndim != 4 || e->shape[2] != KERNEL || e->shape[3] != KERNEL) {
        char got[128];
        return osp_error(OSP_ERR_DATA, "%s: main.0.weight is %s, expected [ndf, in, 4, 4]", path,
                         shape_text(e->ndim, e->shape, got, sizeof got));
    }
    *ndf = e->shape[0];
    *in = e->shape[1];
    int n = 0;
    char name[64];
    do
        snprintf(name, sizeof name, "main.%d.weight", 3 * ++n);
    while (n <= MAX_LAYERS && osp_safetensors_find(st, name));
    *n_layers = n - 1;
    if (*n_layers == 0)
        return osp_error(OSP_ERR_DATA, "%s: no tensor main.3.weight (the first BatchNorm)", path);
    return OSP_OK;
}

osp_patchgan *osp_patchgan_load(const char *path)
{
    osp_safetensors *st = osp_safetensors_open(path);
    int64_t in = 0, ndf = 0;
    int n_layers = 0;
    if (!st || read_layout(st, path, &in, &ndf, &n_layers)) {
        osp_safetensors_close(st);
        return NULL;
    }
    load_ctx c = {st, path};
    osp_patchgan *d = build(in, ndf, n_layers, make_loaded, &c);
    for (size_t i = 0; d && i < osp_safetensors_count(st); i++) {
        const char *name = osp_safetensors_entry(st, i)->name;
        if (!osp_params_find(&d->params, name)) {
            osp_error(OSP_ERR_DATA, "%s: unexpected tensor %s for a discriminator of %d layers",
                      path, name, n_layers);
            osp_patchgan_free(d);
            d = NULL;
        }
    }
    osp_safetensors_close(st);
    return d;
}

osp_status osp_patchgan_save(const osp_patchgan *d, const char *path)
{
    const char *meta[] = {"format", "pt", NULL};
    return osp_checkpoint_write_tensors(path, (int)d->params.n,
                                        (const char *const *)d->params.names, d->params.tensors,
                                        meta);
}

void osp_patchgan_free(osp_patchgan *d)
{
    if (!d)
        return;
    osp_params_free(&d->params);
    free(d);
}

const osp_params *osp_patchgan_params(const osp_patchgan *d)
{
    return &d->params;
}

size_t osp_patchgan_trainable(const osp_patchgan *d, osp_tensor *const **tensors,
                              const char *const **names)
{
    *tensors = d->train;
    *names = d->train_names;
    return d->n_train;
}

/* ---- forward ---- */

/* Side of a k4 p1 conv's output, or 0 when the input is too small. */
static int64_t conv_out(int64_t s, int stride)
{
    return s < KERNEL - 2 ? 0 : (s + 2 - KERNEL) / stride + 1;
}

/* Side of the logits of an s-sided input, or 0 when it is too small. */
static int64_t logits_side(int64_t s, int n_layers)
{
    s = conv_out(s, 2);
    for (int n = 1; n <= n_layers && s > 0; n++)
        s = conv_out(s, n < n_layers ? 2 : 1);
    return s > 0 ? conv_out(s, 1) : 0;
}

static osp_status check_frames(const osp_patchgan *d, const osp_tensor *x)
{
    char buf[128];
    if (x->ndim != 4 || !osp_dtype_is_float(x->dtype) || x->shape[0] < 1)
        return osp_error(OSP_ERR_DATA, "patchgan: frames must be float [M, C, H, W], got %s %s",
                         osp_dtype_name(x->dtype), osp_shape_str(x, buf, sizeof buf));
    if (x->shape[1] != d->in)
        return osp_error(OSP_ERR_DATA,
                         "patchgan: frames have %" PRId64 " channels, the discriminator takes %"
                         PRId64, x->shape[1], d->in);
    if (logits_side(x->shape[2], d->n_layers) < 1 || logits_side(x->shape[3], d->n_layers) < 1) {
        int64_t min = 1;
        while (logits_side(min, d->n_layers) < 1)
            min++;
        return osp_error(OSP_ERR_DATA,
                         "patchgan: %" PRId64 "x%" PRId64 " frames are too small for %d layers "
                         "(at least %" PRId64 "x%" PRId64 ")",
                         x->shape[2], x->shape[3], d->n_layers, min, min);
    }
    /* every BatchNorm then sees >= 2x2 positions per frame, so the batch
     * variance is defined */
    return OSP_OK;
}

/* BatchNorm2d in training mode on x [M, C, H, W]; the batch mean and
 * unbiased variance per channel go to *mean and *var (off the tape). */
static osp_tensor *batch_norm(const bn_layer *b, osp_tensor *x, osp_tensor **mean,
                              osp_tensor **var)
{
    if (!x)
        return NULL;
    int64_t m = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3];
    static const int swap[] = {1, 0, 2, 3};
    osp_tensor *flat = osp_reshape(osp_contiguous(osp_permute(x, swap)), 3,
                                   (const int64_t[]){1, c, m * h * w});
    static const int axes[] = {0, 2};
    bool was = osp_grad_set_enabled(false);
    *mean = osp_mean(flat, 2, axes, false);
    *var = osp_var(flat, 2, axes, 1, false);
    osp_grad_set_enabled(was);
    if (!*mean || !*var)
        return NULL;
    osp_tensor *y = osp_group_norm(flat, (int)c, b->weight, b->bias, BN_EPS);
    return osp_permute(osp_reshape(y, 4, (const int64_t[]){c, m, h, w}), swap);
}

/* running = (1 − momentum)·running + momentum·batch, in double as torch;
 * mean and var are host [C] tensors. */
static void update_running(const bn_layer *b, const osp_tensor *mean, const osp_tensor *var)
{
    const float *bm = osp_f32(mean), *bv = osp_f32(var);
    float *rm = osp_f32(b->mean), *rv = osp_f32(b->var);
    for (int64_t i = 0; i < osp_numel(b->mean); i++) {
        rm[i] = (float)(MOMENTUM * bm[i] + (1.0 - MOMENTUM) * rm[i]);
        rv[i] = (float)(MOMENTUM * bv[i] + (1.0 - MOMENTUM) * rv[i]);
    }
    ((int64_t *)osp_data(b->tracked))[0]++;
}

osp_tensor *osp_patchgan_forward(osp_patchgan *d, osp_tensor *frames)
{
    if (!frames || check_frames(d, frames))
        return NULL;
    osp_window s2 = osp_window_default(2), s1 = s2;
    s2.stride[0] = s2.stride[1] = 2;
    s2.pad[0] = s2.pad[1] = s1.pad[0] = s1.pad[1] = 1;
    osp_pool_push();
    osp_tensor *mean[MAX_LAYERS + 1] = {0}, *var[MAX_LAYERS + 1] = {0};
    osp_tensor *x = osp_leaky_relu(osp_conv(frames, d->first_w, d->first_b, &s2), SLOPE);
    for (int n = 1; n <= d->n_layers; n++) {
        x = osp_conv(x, d->bn[n].conv, NULL, n < d->n_layers ? &s2 : &s1);
        x = osp_leaky_relu(batch_norm(&d->bn[n], x, &mean[n], &var[n]), SLOPE);
    }
    x = osp_conv(x, d->last_w, d->last_b, &s1);
    for (int n = 1; x && n <= d->n_layers; n++) { /* all on the host first ... */
        mean[n] = osp_contiguous(osp_to_device(mean[n], OSP_DEVICE_CPU));
        var[n] = osp_contiguous(osp_to_device(var[n], OSP_DEVICE_CPU));
        if (!mean[n] || !var[n])
            x = NULL;
    }
    for (int n = 1; x && n <= d->n_layers; n++) /* ... then applied together */
        update_running(&d->bn[n], mean[n], var[n]);
    return osp_pool_pop_keep(x);
}

/* ---- losses ---- */

osp_tensor *osp_patchgan_g_loss(osp_tensor *fake_logits)
{
    return osp_scale_shift(osp_mean(fake_logits, 0, NULL, false), -1.0f, 0.0f);
}

osp_tensor *osp_patchgan_d_loss(osp_tensor *real_logits, osp_tensor *fake_logits)
{
    osp_tensor *real = osp_mean(osp_relu(osp_scale_shift(real_logits, -1.0f, 1.0f)), 0, NULL,
                                false);
    osp_tensor *fake = osp_mean(osp_relu(osp_scale_shift(fake_logits, 1.0f, 1.0f)), 0, NULL,
                                false);
    return osp_scale_shift(osp_add(real, fake), 0.5f, 0.0f);
}
