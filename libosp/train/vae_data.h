/* vae_data.h — the videos `osp-train vae` trains on, as the reference's
 * VideoDataset reads them (spec/training.md §3.1): every *.avi, *.mp4 and
 * *.webm under a folder (searched recursively), or a list file; per draw
 * F frames at sample rate s (the §1.2 window, its start drawn from a
 * key), x/255, a plain centre crop to size x size (no resize; offsets
 * rounded half to even; a smaller frame is an error), 2x − 1. */
#ifndef OSP_TRAIN_VAE_DATA_H
#define OSP_TRAIN_VAE_DATA_H

#include <stdint.h>

#include "core/tensor.h"
#include "train/file_list.h"

typedef struct osp_vae_data {
    osp_file_list files;
    int64_t frames, rate, size;
} osp_vae_data;

/* OSP_ERR_IO for an unreadable PATH or listed file, OSP_ERR_DATA when it
 * holds no video. */
osp_status osp_vae_data_open(osp_vae_data *d, const char *path, int64_t frames, int64_t rate,
                             int64_t size);
void osp_vae_data_close(osp_vae_data *d);

/* Video i, window start drawn with key: [1, 3, F, size, size] in [-1, 1]
 * (current pool); NULL + OSP_ERR_IO/OSP_ERR_DATA naming the file. */
osp_tensor *osp_vae_data_clip(const osp_vae_data *d, size_t i, uint64_t key);

#endif
