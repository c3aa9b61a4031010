/* prepare.c — see prepare.h. */
#include "prepare.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/ops.h"
#include "core/log.h"
#include "core/progress.h"
#include "io/clip.h"
#include "io/stream.h"
#include "models/caption.h"
#include "models/t5.h"
#include "models/t5_tokenizer.h"
#include "train/captions.h"
#include "train/clip_transform.h"
#include "train/train_rng.h"

typedef struct preparer {
    const osp_prepare_opts *o;
    osp_vae *vae;
    osp_vae_tiling tiling;
    osp_t5 *t5;
    osp_t5_tokenizer *tok;
} preparer;

/* Frames idx[0..F) of an RGB24 clip as a u8 [F, 3, H, W] tensor. */
static osp_tensor *gather_frames(const osp_clip *clip, const int64_t *idx, int64_t F)
{
    const int64_t H = clip->height, W = clip->width, shape[4] = {F, 3, H, W};
    osp_tensor *t = osp_tensor_new(OSP_U8, 4, shape, OSP_DEVICE_CPU);
    if (!t)
        return NULL;
    uint8_t *dst = osp_data(t);
    for (int64_t f = 0; f < F; f++) {
        const uint8_t *src = clip->rgb + idx[f] * H * W * 3;
        for (int64_t c = 0; c < 3; c++)
            for (int64_t p = 0; p < H * W; p++)
                dst[(f * 3 + c) * H * W + p] = src[p * 3 + c];
    }
    return t;
}

/* What was drawn for a record, kept in its meta. */
typedef struct draw {
    int64_t begin;
    bool flip;
} draw;

/* The record's transformed clip [1, 3, F, S, S] in [-1, 1] (§1.2, §1.3). */
static osp_tensor *sample_clip(const preparer *p, size_t i, const osp_caption_record *r, draw *d)
{
    const osp_prepare_opts *o = p->o;
    osp_clip clip = {0};
    if (osp_clip_load(r->path, &(osp_frame_select){.start = 0, .stride = 1}, &clip))
        return NULL;
    int64_t *idx = malloc((size_t)o->frames * sizeof *idx);
    int64_t last = osp_frame_last_start(clip.frames, (int)o->frames, (int)o->sample_rate);
    d->begin = (int64_t)osp_random_below(osp_stream_seed(o->seed, OSP_STREAM_WINDOW, i), 0,
                                         (uint64_t)last + 1);
    d->flip = o->flip && osp_random_u32(osp_stream_seed(o->seed, OSP_STREAM_FLIP, i), 0) >> 31;
    osp_tensor *x = NULL;
    if (!idx)
        osp_error_nomem("frame indices", (size_t)o->frames * sizeof *idx);
    else if (!osp_frame_indices(clip.frames, (int)o->frames, (int)o->sample_rate, d->begin, idx))
        x = osp_clip_transform(gather_frames(&clip, idx, o->frames), o->size, d->flip);
    free(idx);
    osp_clip_free(&clip);
    /* [F, 3, S, S] -> [1, 3, F, S, S] */
    x = x ? osp_contiguous(osp_permute(x, (const int[]){1, 0, 2, 3})) : NULL;
    return x ? osp_reshape(x, 5, (const int64_t[]){1, 3, o->frames, o->size, o->size}) : NULL;
}

/* moments of the F video frames, then of each of the N image frames
 * encoded alone (§1.5), along T: [1, 2E, T_v + N, h, w]. */
static osp_tensor *encode_clip(const preparer *p, osp_tensor *video)
{
    const osp_prepare_opts *o = p->o;
    osp_tensor *dev = osp_to_device(video, o->device);
    osp_tensor *parts[2] = {osp_vae_encode(p->vae, dev, &p->tiling), NULL};
    if (!parts[0] || o->image_num == 0)
        return parts[0] ? osp_to_device(parts[0], OSP_DEVICE_CPU) : NULL;
    int64_t idx[OSP_PREPARE_MAX_IMAGES];
    osp_tensor *frames[OSP_PREPARE_MAX_IMAGES];
    if (osp_image_frame_indices((int)o->frames, (int)o->image_num, idx))
        return NULL;
    for (int64_t k = 0; k < o->image_num; k++) /* [1, 3, 1, S, S] each */
        if (!(frames[k] = osp_slice(dev, 2, idx[k], idx[k] + 1, 1)))
            return NULL;
    /* One batch of N one-frame clips: GroupNorm and attention act per sample. */
    osp_tensor *images = osp_vae_encode(p->vae, osp_concat((int)o->image_num, frames, 0),
                                        &p->tiling);
    /* [N, 2E, 1, h, w] -> [1, 2E, N, h, w] */
    parts[1] = images ? osp_permute(images, (const int[]){2, 1, 0, 3, 4}) : NULL;
    osp_tensor *all = parts[1] ? osp_concat(2, parts, 2) : NULL;
    return all ? osp_to_device(all, OSP_DEVICE_CPU) : NULL;
}

/* cap[0] -> embedding [1, L, D] and mask u8 [1, L] (§1.4). */
static osp_status encode_caption(const preparer *p, const char *caption, osp_tensor **embedding,
                                 osp_tensor **mask)
{
    const int64_t L = p->o->max_length, shape[2] = {1, L};
    size_t len;
    char *clean = osp_caption_clean(caption, strlen(caption), OSP_CLEAN_TRAINING, &len);
    osp_tensor *ids = osp_tensor_new(OSP_I64, 2, shape, OSP_DEVICE_CPU);
    osp_tensor *mask64 = osp_tensor_new(OSP_I64, 2, shape, OSP_DEVICE_CPU);
    osp_status st = clean && ids && mask64 ? OSP_OK : osp_error_code();
    if (!st)
        st = osp_t5_encode(p->tok, clean, len, L, osp_data(ids), osp_data(mask64));
    free(clean);
    if (st)
        return st;
    *mask = osp_cast(mask64, OSP_U8);
    osp_tensor *on_device = *mask ? osp_to_device(*mask, p->o->device) : NULL;
    *embedding = on_device ? osp_to_device(osp_t5_run(p->t5, osp_to_device(ids, p->o->device),
                                                      on_device), OSP_DEVICE_CPU)
                           : NULL;
    return *embedding && *mask ? OSP_OK : osp_error_code();
}

static osp_status write_record(const preparer *p, const char *out, const osp_caption_record *r,
                               const draw *d, osp_tensor *moments, osp_tensor *embedding,
                               osp_tensor *mask)
{
    osp_meta meta;
    osp_meta_init(&meta);
    osp_status st = osp_meta_set_int(&meta, "image_frames", p->o->image_num);
    st = st ? st : osp_meta_set_str(&meta, "source", r->path);
    st = st ? st : osp_meta_set_int(&meta, "window_start", d->begin);
    st = st ? st : osp_meta_set_bool(&meta, "flipped", d->flip);
    osp_stream_writer *w = st ? NULL : osp_stream_open_write(out);
    if (!st && !w)
        st = osp_error_code();
    st = st ? st : osp_stream_write(w, "moments", moments, &meta);
    st = st ? st : osp_stream_write(w, "embedding", embedding, NULL);
    st = st ? st : osp_stream_write(w, "mask", mask, NULL);
    st = st ? st : osp_stream_commit(w);
    osp_stream_close_write(w);
    osp_meta_free(&meta);
    return st;
}

static osp_status prepare_record(const preparer *p, size_t i, const osp_caption_record *r,
                                 const char *out)
{
    osp_pool_push();
    draw d = {0};
    osp_tensor *video = sample_clip(p, i, r, &d), *moments = NULL, *embedding = NULL, *mask = NULL;
    osp_status st = video ? OSP_OK : osp_error_code();
    if (!st && !(moments = encode_clip(p, video)))
        st = osp_error_code();
    st = st ? st : encode_caption(p, r->caption, &embedding, &mask);
    st = st ? st : write_record(p, out, r, &d, moments, embedding, mask);
    osp_pool_pop();
    return st;
}

/* Options against the models, before any record is read. */
static osp_status check_options(const preparer *p)
{
    const osp_prepare_opts *o = p->o;
    const osp_vae_config *c = osp_vae_get_config(p->vae);
    int tf = osp_vae_time_factor(c), sf = osp_vae_space_factor(c);
    if ((o->frames - 1) % tf)
        return osp_error(OSP_ERR_USAGE, "--frames %lld: the VAE needs 1 + %dk frames",
                         (long long)o->frames, tf);
    if (o->size % sf)
        return osp_error(OSP_ERR_USAGE, "--size %lld: the VAE needs a multiple of %d",
                         (long long)o->size, sf);
    if (o->image_num > o->frames || o->image_num > OSP_PREPARE_MAX_IMAGES)
        return osp_error(OSP_ERR_USAGE, "--image-num %lld: at most --frames (%lld) and at most "
                         "%d images", (long long)o->image_num, (long long)o->frames,
                         OSP_PREPARE_MAX_IMAGES);
    return OSP_OK;
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static osp_status run_records(preparer *p, const osp_captions *caps, osp_prepare_stats *s)
{
    const osp_prepare_opts *o = p->o;
    size_t cap = strlen(o->data) + 32;
    char *out = malloc(cap);
    if (!out)
        return osp_error_nomem("output path", cap);
    osp_progress bar;
    osp_progress_start(&bar, "prepare", (int64_t)caps->n);
    osp_status st = OSP_OK;
    for (size_t i = 0; i < caps->n && !st; i++, osp_progress_step(&bar, 1)) {
        snprintf(out, cap, "%s/clip-%06zu.msgpack", o->data, i);
        if (exists(out)) {
            s->kept++;
            continue;
        }
        st = prepare_record(p, i, &caps->items[i], out);
        if (st == OSP_ERR_IO || st == OSP_ERR_DATA) { /* this record's video or caption */
            osp_log_warn("%s: record %zu (%s): %s; skipped", o->captions, i,
                         caps->items[i].path, osp_error_message());
            s->skipped++;
            st = OSP_OK;
        } else if (!st) {
            s->written++;
        }
    }
    osp_progress_end(&bar);
    free(out);
    return st;
}

osp_status osp_prepare_features(const osp_prepare_opts *o, osp_prepare_stats *stats)
{
    *stats = (osp_prepare_stats){0};
    osp_captions caps;
    osp_status st = osp_captions_load(o->captions, &caps);
    if (st)
        return st;
    stats->records = (int64_t)caps.n;
    preparer p = {.o = o};
    if (!(p.vae = osp_vae_load(o->vae, o->device)) || (st = check_options(&p)))
        st = st ? st : osp_error_code();
    if (!st) {
        p.tiling = osp_vae_default_tiling(p.vae);
        p.tiling.enabled = o->tile;
    }
    if (!st && (!(p.tok = osp_t5_tokenizer_load(o->t5)) || !(p.t5 = osp_t5_load(o->t5, o->device))))
        st = osp_error_code();
    if (!st && mkdir(o->data, 0777) != 0 && errno != EEXIST)
        st = osp_error(OSP_ERR_IO, "%s: cannot create: %s", o->data, strerror(errno));
    st = st ? st : run_records(&p, &caps, stats);
    if (!st && caps.n && stats->written + stats->kept == 0)
        st = osp_error(OSP_ERR_DATA, "%s: not one of its %zu records could be prepared",
                       o->captions, caps.n);
    osp_t5_free(p.t5);
    osp_t5_tokenizer_free(p.tok);
    osp_vae_free(p.vae);
    osp_captions_free(&caps);
    return st;
}
