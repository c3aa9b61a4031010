/* prepare.h — `osp-train prepare`: videos and a caption file in the
 * reference's format (spec/training.md §1.1) -> the feature folder that
 * `osp-train dit` reads (train/dit_data.h).
 *
 * Per record i of the caption file (a JSON array of {"path": VIDEO,
 * "cap": [TEXT, ...]}; other fields ignored; paths opened as given):
 *  1. decode the video (FFmpeg; PNG folders too), draw the temporal window
 *     (§1.2: begin uniform in [0, max(0, n − F·s − 1)]) and the flip (§1.3
 *     step 4, probability 0.5) from the keyed streams of (seed, i);
 *  2. crop + antialiased resize to size², flip, 2x − 1 (train/clip_transform.h);
 *  3. VAE-encode the F frames -> moments [1, 2E, T_v, h, w], and each of the
 *     N image frames (linspace(0, F−1, N) of the same transformed clip, §1.5)
 *     alone as a one-frame clip, appended along T; meta image_frames = N;
 *  4. cap[0] -> training caption cleaning -> T5 tokenizer (max_length L,
 *     padded) -> T5 encoder: embedding [1, L, D] and mask u8 [1, L];
 *  5. write DATA/clip-<i, 6 digits>.msgpack (moments, embedding, mask)
 *     under a temporary name, renamed when complete.
 * A record whose video cannot be read or is too small, or whose caption the
 * cleaner rejects, is reported (one warning naming the record and file) and
 * skipped; a record already in DATA is kept as it is, so an interrupted
 * preparation resumes where it stopped. The window and flip are frozen per
 * record (the reference redraws them each epoch): preparing the same
 * captions again into another folder with another seed stores other
 * crops. */
#ifndef OSP_TRAIN_PREPARE_H
#define OSP_TRAIN_PREPARE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"
#include "models/causalvae.h"

#define OSP_PREPARE_MAX_IMAGES 256

typedef struct osp_prepare_opts {
    const char *captions; /* caption file (JSON) */
    const char *vae, *t5; /* model folders (the T5 folder holds spiece.model) */
    const char *data;     /* output feature folder (created when missing) */
    int64_t frames;       /* F: 1 + 4k (the VAE's time factor) */
    int64_t sample_rate;  /* s >= 1 */
    int64_t size;         /* square side, a multiple of the VAE's space factor */
    int64_t image_num;    /* N image frames per clip, 0..min(F, OSP_PREPARE_MAX_IMAGES) */
    int64_t max_length;   /* L tokens */
    bool flip;            /* random flips as the reference (else never) */
    bool tile;            /* the VAE's tiled encoder (the reference at 512²) */
    uint64_t seed;
    osp_device device;
} osp_prepare_opts;

typedef struct osp_prepare_stats {
    int64_t records, written, kept, skipped;
} osp_prepare_stats;

/* Fails with OSP_ERR_DATA for a caption file that is not an array of
 * records with a string `path` and an array `cap` whose first item is a
 * string (naming the record), OSP_ERR_USAGE for options the models cannot
 * take, and when not one record could be prepared. */
osp_status osp_prepare_features(const osp_prepare_opts *o, osp_prepare_stats *stats);

#endif
