/* vae_data.c — see vae_data.h. */
#include "vae_data.h"

#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "io/clip.h"
#include "train/clip_transform.h"
#include "train/train_rng.h"

osp_status osp_vae_data_open(osp_vae_data *d, const char *path, int64_t frames, int64_t rate,
                             int64_t size)
{
    *d = (osp_vae_data){.frames = frames, .rate = rate, .size = size};
    static const char *const videos[] = {".avi", ".mp4", ".webm", NULL};
    osp_status st = osp_file_list_load(&d->files, path, videos, true);
    if (!st && d->files.n == 0)
        st = osp_error(OSP_ERR_DATA, "%s: no videos (*.avi, *.mp4, *.webm)", path);
    if (st)
        osp_vae_data_close(d);
    return st;
}

void osp_vae_data_close(osp_vae_data *d)
{
    osp_file_list_free(&d->files);
}

osp_tensor *osp_vae_data_clip(const osp_vae_data *d, size_t i, uint64_t key)
{
    const char *path = d->files.paths[i];
    osp_clip all = {0};
    if (osp_clip_load(path, &(osp_frame_select){.start = 0, .stride = 1}, &all))
        return NULL;
    int64_t F = d->frames, *idx = malloc((size_t)F * sizeof *idx);
    size_t frame = (size_t)all.width * (size_t)all.height * 3;
    osp_clip sel = all;
    sel.frames = F;
    sel.rgb = idx ? malloc((size_t)F * frame) : NULL;
    int64_t last = osp_frame_last_start(all.frames, (int)F, (int)d->rate);
    int64_t begin = (int64_t)osp_random_below(key, 0, (uint64_t)last + 1);
    osp_tensor *v = NULL;
    if (!sel.rgb)
        osp_error_nomem("frames", (size_t)F * frame);
    else if (!osp_frame_indices(all.frames, (int)F, (int)d->rate, begin, idx)) {
        for (int64_t f = 0; f < F; f++)
            memcpy(sel.rgb + (size_t)f * frame, all.rgb + (size_t)idx[f] * frame, frame);
        osp_tensor *video = osp_clip_to_video(&sel);
        if (video && (all.height < d->size || all.width < d->size))
            osp_error(OSP_ERR_DATA, "frames of %dx%d are smaller than the crop %lldx%lld",
                      all.width, all.height, (long long)d->size, (long long)d->size);
        else if (video)
            v = osp_contiguous(osp_video_center_crop(video, d->size, d->size));
    }
    free(sel.rgb);
    free(idx);
    osp_clip_free(&all);
    if (!v)
        osp_error_context("%s", path);
    return v;
}
