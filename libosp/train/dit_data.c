/* dit_data.c — see dit_data.h. */
#include "dit_data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/ops.h"
#include "io/stream.h"
#include "train/file_list.h"

/* ---- one clip ---- */

static osp_status shape_error(const char *file, const char *name, const osp_tensor *t,
                              const char *expected)
{
    char buf[96];
    return osp_error(OSP_ERR_DATA, "%s: `%s` has shape %s, expected %s", file, name,
                     osp_shape_str(t, buf, sizeof buf), expected);
}

/* Reads the tensors of one file into r (pool-owned) and its image count. */
static osp_status read_file(const char *path, osp_dit_record *r, bool *moments, int *n_img)
{
    memset(r, 0, sizeof *r);
    osp_stream_reader *rd = osp_stream_open_read(path);
    if (!rd)
        return osp_error_code();
    osp_status st = OSP_OK;
    *n_img = 0;
    for (;;) {
        osp_named_tensor nt = {0};
        bool got;
        if ((st = osp_stream_read(rd, &nt, &got)) || !got)
            break;
        osp_tensor **slot = NULL;
        bool is_x = strcmp(nt.name, "moments") == 0 || strcmp(nt.name, "latent") == 0;
        if (is_x)
            slot = &r->x;
        else if (strcmp(nt.name, "embedding") == 0)
            slot = &r->embedding;
        else if (strcmp(nt.name, "mask") == 0)
            slot = &r->mask;
        if (slot && *slot)
            st = osp_error(OSP_ERR_DATA, "%s: a second `%s` tensor", path, is_x ? "moments or "
                                                                                  "latent"
                                                                                : nt.name);
        else if (slot) {
            *slot = osp_autorelease(nt.tensor);
            nt.tensor = NULL;
            if (is_x) {
                *moments = strcmp(nt.name, "moments") == 0;
                const osp_meta_value *v = osp_meta_get(&nt.meta, "image_frames");
                if (v && (v->kind != OSP_META_INT || v->i < 0 || v->i > 1 << 20))
                    st = osp_error(OSP_ERR_DATA, "%s: meta image_frames must be an integer >= 0",
                                   path);
                else if (v)
                    *n_img = (int)v->i;
            }
        }
        osp_named_tensor_free(&nt);
        if (st)
            break;
    }
    osp_stream_close_read(rd);
    if (st)
        return st;
    if (!r->x)
        return osp_error(OSP_ERR_DATA, "%s: no `moments` or `latent` tensor", path);
    if (!r->embedding)
        return osp_error(OSP_ERR_DATA, "%s: no `embedding` tensor", path);
    return OSP_OK;
}

/* Checks r against the reference shapes in d (those of the first clip). */
static osp_status check_record(const osp_dit_data *d, const char *path, const osp_dit_record *r,
                               bool moments, int n_img)
{
    char want[128];
    int64_t c = moments ? 2 * d->C : d->C;
    const osp_tensor *x = r->x;
    snprintf(want, sizeof want, "f32 [1, %lld, %lld, %lld, %lld]", (long long)c, (long long)d->T,
             (long long)d->h, (long long)d->w);
    if (moments != d->moments)
        return osp_error(OSP_ERR_DATA, "%s: holds `%s` but the first clip `%s`", path,
                         moments ? "moments" : "latent", d->moments ? "moments" : "latent");
    if (x->dtype != OSP_F32 || x->ndim != 5 || x->shape[0] != 1 || x->shape[1] != c ||
        x->shape[2] != d->T || x->shape[3] != d->h || x->shape[4] != d->w)
        return shape_error(path, moments ? "moments" : "latent", x, want);
    if (n_img != d->n_img)
        return osp_error(OSP_ERR_DATA, "%s: image_frames %d, the first clip has %d", path, n_img,
                         d->n_img);
    const osp_tensor *e = r->embedding;
    snprintf(want, sizeof want, "f32 [1, %lld, %lld]", (long long)d->L, (long long)d->D);
    if (e->dtype != OSP_F32 || e->ndim != 3 || e->shape[0] != 1 || e->shape[1] != d->L ||
        e->shape[2] != d->D)
        return shape_error(path, "embedding", e, want);
    if ((r->mask != NULL) != d->has_mask)
        return osp_error(OSP_ERR_DATA, "%s: %s `mask`, unlike the first clip", path,
                         r->mask ? "has a" : "has no");
    snprintf(want, sizeof want, "[1, %lld]", (long long)d->L);
    if (r->mask && (r->mask->ndim != 2 || r->mask->shape[0] != 1 || r->mask->shape[1] != d->L ||
                    r->mask->dtype == OSP_F16 || r->mask->dtype == OSP_BF16))
        return shape_error(path, "mask", r->mask, want);
    return OSP_OK;
}

/* The first clip sets the shapes; they must fit the model. */
static osp_status adopt_first(osp_dit_data *d, const osp_latte_config *cfg)
{
    osp_pool_push();
    osp_dit_record r;
    bool moments = false;
    int n_img = 0;
    const char *path = d->paths[0];
    osp_status st = read_file(path, &r, &moments, &n_img);
    if (!st) {
        const osp_tensor *x = r.x, *e = r.embedding;
        d->moments = moments;
        d->has_mask = r.mask != NULL;
        d->n_img = n_img;
        d->C = cfg->in_channels;
        d->T = (int64_t)cfg->video_length + n_img;
        d->h = x->ndim == 5 ? x->shape[3] : 0;
        d->w = x->ndim == 5 ? x->shape[4] : 0;
        d->L = e->ndim == 3 ? e->shape[1] : 0;
        d->D = cfg->caption_channels;
        if (d->h < cfg->patch_size || d->w < cfg->patch_size || d->h % cfg->patch_size ||
            d->w % cfg->patch_size)
            st = osp_error(OSP_ERR_DATA, "%s: latent size %lldx%lld is not a multiple of the "
                           "model's patch size %d", path, (long long)d->h, (long long)d->w,
                           cfg->patch_size);
        else if (d->L < 1)
            st = shape_error(path, "embedding", e, "[1, L, D] with L >= 1");
        else
            st = check_record(d, path, &r, moments, n_img);
        if (st)
            osp_error_context("the model (config: %d latent channels, %d video frames, "
                              "caption_channels %d)", cfg->in_channels, cfg->video_length,
                              cfg->caption_channels);
    }
    osp_pool_pop();
    return st;
}

osp_status osp_dit_data_open(osp_dit_data *d, const char *path, const osp_latte_config *cfg)
{
    memset(d, 0, sizeof *d);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return osp_error(OSP_ERR_IO, "%s: %s", path, strerror(errno));
    if (!(d->label = strdup(path)))
        return osp_error_nomem("path", strlen(path));
    osp_file_list files;
    osp_status st = osp_file_list_load(&files, path, (const char *const[]){".msgpack", NULL},
                                       false);
    if (st)
        osp_error_context("feature files");
    d->n = files.n;
    d->paths = files.paths; /* owned by d from here */
    if (!st && d->n == 0)
        st = osp_error(OSP_ERR_DATA, "%s: no clips (*.msgpack feature files)", path);
    if (!st)
        st = adopt_first(d, cfg);
    if (st)
        osp_dit_data_close(d);
    return st;
}

void osp_dit_data_close(osp_dit_data *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->paths[i]);
    free(d->paths);
    free(d->label);
    memset(d, 0, sizeof *d);
}

osp_status osp_dit_data_read(const osp_dit_data *d, size_t i, osp_dit_record *r)
{
    bool moments = false;
    int n_img = 0;
    if (i >= d->n)
        return osp_error(OSP_ERR_RUNTIME, "clip %zu of %zu", i, d->n);
    osp_status st = read_file(d->paths[i], r, &moments, &n_img);
    return st ? st : check_record(d, d->paths[i], r, moments, n_img);
}
