/* causalvae_chunks.c — temporal chunking of encode and decode (see
 * causalvae.h), and the memory estimate that decides when to use it. */
#include "causalvae.h"
#include "backend/ops.h"

#include <stdlib.h>

typedef osp_tensor *(*coder_fn)(osp_vae *v, osp_tensor *x, const osp_vae_tiling *t);

/* Writes src into the view dst. */
static osp_status copy_into(osp_tensor *dst, osp_tensor *src)
{
    if (!dst || !src)
        return osp_error_code();
    osp_node n = {.op = OSP_OP_COPY, .n_in = 1, .n_out = 1, .in = {src}, .out = {dst}};
    return osp_dispatch(&n);
}

/* Trapezoid weight of local index i of a part of length n: 0 over the
 * first `skip` entries of every part but the first, then ramping in over
 * `ramp` entries, and ramping out over the last `ramp` of every part but
 * the last. */
static double weight(int64_t i, int64_t n, int64_t skip, int64_t ramp, bool first, bool last)
{
    double w = 1.0;
    if (!first) {
        if (i < skip)
            return 0.0;
        double in = (double)(i - skip + 1) / (double)(ramp + 1);
        w = in < w ? in : w;
    }
    if (!last) {
        double out = (double)(n - i) / (double)(ramp + 1);
        w = out < w ? out : w;
    }
    return w;
}

/* Where finished frames go and what they are divided by: the sum of the
 * trapezoid weights each output frame received. */
typedef struct chunk_out {
    osp_vae_frames_fn fn;
    void *ctx;
    double *wsum; /* per output frame */
} chunk_out;

/* Hands frames [first, first + n) of the weighted sum `acc` (which starts
 * at frame acc_first) to the sink, normalised. */
static osp_status emit(const chunk_out *o, osp_tensor *acc, int64_t acc_first, int64_t first,
                       int64_t n)
{
    if (n <= 0)
        return OSP_OK;
    int64_t ws[5] = {1, 1, n, 1, 1};
    osp_tensor *w = osp_tensor_f32(5, ws);
    for (int64_t i = 0; w && i < n; i++)
        osp_f32(w)[i] = (float)o->wsum[first + i];
    osp_tensor *frames = osp_div(osp_slice(acc, 2, first - acc_first, first - acc_first + n, 1),
                                 osp_to_device(w, acc->storage->device));
    return frames ? o->fn(o->ctx, frames, first) : osp_error_code();
}

/* Runs fn on x[:, :, in_start[c] : in_start[c] + in_len] for every chunk and
 * blends the outputs, placed at out_start[c] (increasing), into `total`
 * output frames. Only the frames a later chunk can still blend into are
 * kept: the rest go to the sink as soon as a chunk starts past them. */
static osp_status run_chunks(osp_vae *v, osp_tensor *x, const osp_vae_tiling *t, coder_fn fn,
                             int n, const int64_t *in_start, int64_t in_len,
                             const int64_t *out_start, int64_t total, int64_t skip,
                             int64_t ramp, osp_vae_frames_fn fn_out, void *ctx)
{
    chunk_out out = {fn_out, ctx, calloc((size_t)total, sizeof(double))}, *sink = &out;
    if (!out.wsum)
        return osp_error_nomem("chunk weights", (unsigned long long)total * 8);
    osp_tensor *pending = NULL; /* weighted sum of frames [pend_first, ...) */
    int64_t pend_first = 0;
    osp_status st = OSP_OK;
    for (int c = 0; c < n && st == OSP_OK; c++) {
        int64_t end = in_start[c] + in_len < x->shape[2] ? in_start[c] + in_len : x->shape[2];
        osp_pool_push();
        osp_tensor *part = fn(v, osp_contiguous(osp_slice(x, 2, in_start[c], end, 1)), t);
        st = part ? OSP_OK : osp_error_code();
        int64_t len = part ? part->shape[2] : 0;
        int64_t pend_end = pending ? pend_first + pending->shape[2] : 0;
        if (st == OSP_OK && (out_start[c] + len > total || pend_end > out_start[c] + len))
            st = osp_error(OSP_ERR_RUNTIME, "chunk %d overruns the output", c);
        osp_tensor *acc = NULL;
        if (st == OSP_OK) {
            int64_t ws[5] = {1, 1, len, 1, 1};
            osp_tensor *w = osp_tensor_f32(5, ws);
            for (int64_t i = 0; w && i < len; i++) {
                double wi = weight(i, len, skip, ramp, c == 0, c == n - 1);
                osp_f32(w)[i] = (float)wi;
                sink->wsum[out_start[c] + i] += wi;
            }
            acc = osp_contiguous(osp_mul(part, osp_to_device(w, part->storage->device)));
            st = acc ? OSP_OK : osp_error_code();
        }
        if (st == OSP_OK && pending) {
            /* frames before this chunk are final; the rest of `pending`
             * adds into this chunk's first frames */
            st = emit(sink, pending, pend_first, pend_first, out_start[c] - pend_first);
            if (st == OSP_OK && pend_end > out_start[c]) {
                osp_tensor *window = osp_view_slice(acc, 2, 0, pend_end - out_start[c], 1);
                st = copy_into(window, osp_add(window, osp_slice(pending, 2, out_start[c] - pend_first,
                                                                 pending->shape[2], 1)));
            }
        }
        if (st == OSP_OK) {
            osp_release(pending);
            pending = osp_retain(acc);
            pend_first = out_start[c];
        }
        osp_pool_pop();
    }
    if (st == OSP_OK && (!pending || pend_first + pending->shape[2] != total))
        st = osp_error(OSP_ERR_RUNTIME, "chunks do not cover the %lld output frames",
                       (long long)total);
    if (st == OSP_OK) {
        osp_pool_push();
        st = emit(sink, pending, pend_first, pend_first, total - pend_first);
        osp_pool_pop();
    }
    osp_release(pending);
    free(out.wsum);
    return st;
}

/* A sink that assembles the frames into one tensor (owned by *ctx). */
typedef struct collected {
    osp_tensor *out;
    int64_t total;
} collected;

static osp_status collect(void *ctx, osp_tensor *frames, int64_t first)
{
    collected *c = ctx;
    if (!c->out) {
        int64_t shape[5] = {frames->shape[0], frames->shape[1], c->total, frames->shape[3],
                            frames->shape[4]};
        c->out = osp_retain(osp_tensor_new(OSP_F32, 5, shape, frames->storage->device));
        if (!c->out)
            return osp_error_code();
    }
    return copy_into(osp_view_slice(c->out, 2, first, first + frames->shape[2], 1), frames);
}

/* Chunk starts (in units of `unit`-frame steps) covering [0, last] with
 * chunks spanning `span` units, advancing `step`; the last chunk is moved
 * back to end exactly at `last`. Returns the count. */
static int plan_starts(int64_t last, int64_t span, int64_t step, int64_t **starts)
{
    int n = 0, cap = 16;
    int64_t *s = malloc((size_t)cap * sizeof *s);
    for (int64_t at = 0; s;) {
        if (at + span > last)
            at = last - span > 0 ? last - span : 0;
        if (n == cap) {
            int64_t *grown = realloc(s, (size_t)(cap *= 2) * sizeof *s);
            if (!grown) {
                free(s);
                s = NULL;
                break;
            }
            s = grown;
        }
        s[n++] = at;
        if (at + span >= last)
            break;
        at += step;
    }
    *starts = s;
    if (!s)
        osp_error_nomem("chunk plan", (unsigned long long)cap * 8);
    return s ? n : 0;
}

static osp_status check_chunking(const osp_vae_chunking *c, int64_t min_frames, const char *what)
{
    if (c->overlap < 1 || c->frames < min_frames)
        return osp_error(OSP_ERR_USAGE, "%s chunks of %lld frames with overlap %lld: chunks need "
                         "at least %lld frames for this overlap", what, (long long)c->frames,
                         (long long)c->overlap, (long long)min_frames);
    return OSP_OK;
}

osp_tensor *osp_vae_encode_chunked(osp_vae *v, osp_tensor *x, const osp_vae_tiling *t,
                                   const osp_vae_chunking *c)
{
    if (!x)
        return NULL;
    int f = osp_vae_time_factor(osp_vae_get_config(v));
    if (!c || c->frames == 0 || x->ndim != 5 || x->shape[2] <= c->frames)
        return osp_vae_encode(v, x, t);
    /* chunk = 1 + f*m input frames -> m + 1 latents; latent 0 of a later
     * chunk has no history and is dropped. */
    int64_t m = (c->frames - 1) / f, step = m - c->overlap;
    if ((c->frames - 1) % f)
        return osp_error(OSP_ERR_USAGE, "chunks of %lld frames: need 1 + %dk",
                         (long long)c->frames, f), NULL;
    if (check_chunking(c, 1 + f * (c->overlap + 1), "encode"))
        return NULL;
    if ((x->shape[2] - 1) % f)
        return osp_error(OSP_ERR_DATA, "chunked encode needs 1 + %dk frames", f), NULL;
    int64_t last = (x->shape[2] - 1) / f, *starts;
    int n = plan_starts(last, m, step, &starts);
    if (!n)
        return NULL;
    int64_t *in_start = malloc((size_t)n * sizeof *in_start);
    collected out = {NULL, last + 1};
    osp_status st = in_start ? OSP_OK : osp_error_nomem("chunk plan", (unsigned long long)n * 8);
    for (int i = 0; st == OSP_OK && i < n; i++)
        in_start[i] = starts[i] * f;
    if (st == OSP_OK)
        st = run_chunks(v, x, t, osp_vae_encode, n, in_start, c->frames, starts, last + 1, 1,
                        c->overlap, collect, &out);
    free(in_start);
    free(starts);
    if (st != OSP_OK) {
        osp_release(out.out);
        return NULL;
    }
    return osp_autorelease(out.out);
}

static bool decode_unchunked(const osp_tensor *z, const osp_vae_chunking *c)
{
    return !c || c->frames == 0 || z->ndim != 5 || z->shape[2] <= c->frames;
}

osp_status osp_vae_decode_each(osp_vae *v, osp_tensor *z, const osp_vae_tiling *t,
                               const osp_vae_chunking *c, osp_vae_frames_fn fn, void *ctx)
{
    if (!z)
        return osp_error_code() ? osp_error_code() : OSP_ERR_RUNTIME;
    if (decode_unchunked(z, c)) {
        osp_pool_push();
        osp_tensor *y = osp_vae_decode(v, z, t);
        osp_status st = y ? fn(ctx, y, 0) : osp_error_code();
        osp_pool_pop();
        return st;
    }
    if (check_chunking(c, c->overlap + 2, "decode"))
        return osp_error_code();
    /* M latents -> f(M-1)+1 frames; a later chunk's first f frames derive
     * from its history-less first latent and are dropped. */
    int f = osp_vae_time_factor(osp_vae_get_config(v));
    int64_t span = c->frames - 1, step = span - c->overlap, last = z->shape[2] - 1, *starts;
    int n = plan_starts(last, span, step, &starts);
    if (!n)
        return osp_error_code();
    int64_t *out_start = malloc((size_t)n * sizeof *out_start);
    osp_status st = out_start ? OSP_OK : osp_error_nomem("chunk plan", (unsigned long long)n * 8);
    for (int i = 0; st == OSP_OK && i < n; i++)
        out_start[i] = starts[i] * f;
    if (st == OSP_OK)
        st = run_chunks(v, z, t, osp_vae_decode, n, starts, c->frames, out_start, last * f + 1,
                        f, f * c->overlap - f + 1, fn, ctx);
    free(out_start);
    free(starts);
    return st;
}

osp_tensor *osp_vae_decode_chunked(osp_vae *v, osp_tensor *z, const osp_vae_tiling *t,
                                   const osp_vae_chunking *c)
{
    if (!z || decode_unchunked(z, c))
        return osp_vae_decode(v, z, t);
    int f = osp_vae_time_factor(osp_vae_get_config(v));
    collected out = {NULL, (z->shape[2] - 1) * f + 1};
    if (osp_vae_decode_each(v, z, t, c, collect, &out)) {
        osp_release(out.out);
        return NULL;
    }
    return osp_autorelease(out.out);
}

double osp_vae_estimate_bytes(const osp_vae *v, bool decode, int64_t batch, int64_t frames,
                              int64_t height, int64_t width)
{
    const osp_vae_config *c = osp_vae_get_config(v);
    int tf = osp_vae_time_factor(c), sf = osp_vae_space_factor(c);
    /* Work in the pixel domain. Encoder level i runs at the size its
     * predecessors' downsamplers leave; the decoder's level i emits its
     * ch*mult[i] channels at the size after its own upsampler, which is
     * where it is largest (the release's up.1: 256 channels at full size). */
    double t = decode ? (double)((frames - 1) * tf + 1) : (double)frames;
    double hw = decode ? (double)(height * sf) * (double)(width * sf) : (double)height * width;
    double largest = 0, scale_t = 1, scale_s = 1;
    for (int i = 0; i < c->levels; i++) {
        double act = (double)c->hidden_size * c->mult[i] * (t / scale_t) * (hw / scale_s);
        largest = act > largest ? act : largest;
        if (decode ? c->temporal_up[i] : c->temporal_down[i]) scale_t *= 2;
        if (decode ? c->spatial_up[i] : c->spatial_down[i]) scale_s *= 4;
    }
    /* A res-block step holds its input, the normalised, activated and
     * padded copies and the conv output at once (measured peaks: about 5x
     * the largest activation, plus the weights). */
    return 5.0 * largest * (double)batch * sizeof(float);
}
