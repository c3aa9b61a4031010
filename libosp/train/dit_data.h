/* dit_data.h — the prepared features osp-train dit reads (spec/training.md
 * §1.7, "what osp should do").
 *
 * Layout: DATA is a folder, every `*.msgpack` in it (sorted by name) one
 * training clip; or a text file listing one clip file per line (relative
 * paths resolved against the list's folder; blank lines and lines
 * starting with '#' skipped). A clip file is an osp tensor stream holding
 *   moments    f32 [1, 2C, T, h, w]  the VAE posterior (osp-encode
 *              --moments): mean then logvar; a fresh latent is drawn from
 *              it every time the clip is used, or instead
 *   latent     f32 [1, C, T, h, w]   a fixed latent (already x 0.18215),
 *   embedding  f32 [1, L, D]         T5 last hidden state (osp-textenc),
 *   mask       [1, L] (optional)     1 = token, 0 = padding.
 * T = the model's video_length + N: the last N latent frames are images
 * (one-frame encodings), N given by the meta key `image_frames` of the
 * moments/latent tensor (0 when absent). Other tensors are ignored.
 * Every clip must have the first clip's kind and shapes. */
#ifndef OSP_TRAIN_DIT_DATA_H
#define OSP_TRAIN_DIT_DATA_H

#include <stdbool.h>
#include <stddef.h>

#include "models/latte.h"

typedef struct osp_dit_data {
    char *label; /* DATA as given */
    size_t n;
    char **paths;
    /* from the first clip, checked against the model config */
    bool moments;        /* moments (else latent) */
    bool has_mask;
    int64_t C, T, h, w;  /* latent channels (C_in), frames, size */
    int64_t L, D;        /* text tokens and width */
    int n_img;           /* image frames at the end of T */
} osp_dit_data;

/* Lists the clips (each must exist) and checks the first against cfg.
 * OSP_ERR_IO naming a missing or unreadable file, OSP_ERR_DATA naming the
 * file and tensor whose shape does not fit. */
osp_status osp_dit_data_open(osp_dit_data *d, const char *path, const osp_latte_config *cfg);
void osp_dit_data_close(osp_dit_data *d);

typedef struct osp_dit_record {
    osp_tensor *x;         /* moments or latent, [1, ...] (current pool) */
    osp_tensor *embedding; /* [1, L, D] */
    osp_tensor *mask;      /* [1, L] or NULL */
} osp_dit_record;

/* Reads clip i and checks it has the first clip's kind and shapes. */
osp_status osp_dit_data_read(const osp_dit_data *d, size_t i, osp_dit_record *r);

#endif
