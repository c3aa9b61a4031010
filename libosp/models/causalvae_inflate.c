/* causalvae_inflate.c — tail initialisation of the 3D VAE from a 2D
 * Stable-Diffusion KL-VAE in LDM or diffusers naming (spec/causalvae.md
 * section 9). */
#include "causalvae.h"
#include "backend/ops.h"
#include "io/model.h"
#include "nn/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies s into out, replacing every "conv.weight" by "weight" and every
 * "conv.bias" by "bias", left to right without overlaps (Python's
 * str.replace, applied for both patterns). */
osp_status osp_vae_inflate_key(const char *k3, char *out, size_t cap)
{
    static const char *const from[] = {"conv.weight", "conv.bias"};
    size_t n = 0;
    for (const char *p = k3; *p;) {
        size_t skip = 0;
        for (int i = 0; i < 2 && !skip; i++)
            if (strncmp(p, from[i], strlen(from[i])) == 0)
                skip = strlen("conv.");
        if (skip) { /* drop "conv.", keep "weight"/"bias" */
            p += skip;
            continue;
        }
        if (n + 1 >= cap)
            return osp_error(OSP_ERR_RUNTIME, "inflate: key too long: %s", k3);
        out[n++] = *p++;
    }
    out[n] = '\0';
    return OSP_OK;
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The length of s's prefix that fmt (ending in %n) matches, or 0. */
static int scan1(const char *s, const char *fmt, int *i)
{
    int n = 0;
    return sscanf(s, fmt, i, &n) == 1 ? n : 0;
}

static int scan2(const char *s, const char *fmt, int *i, int *j)
{
    int n = 0;
    return sscanf(s, fmt, i, j, &n) == 2 ? n : 0;
}

osp_status osp_vae_diffusers_key(const char *ldm, int levels, bool legacy, char *out, size_t cap)
{
    /* the module after the block prefix: LDM, diffusers, older diffusers */
    static const char *const rename[][3] = {
        {"nin_shortcut.", "conv_shortcut.", "conv_shortcut."},
        {"norm_out.", "conv_norm_out.", "conv_norm_out."},
        {"norm.", "group_norm.", "group_norm."}, /* attention */
        {"q.", "to_q.", "query."},
        {"k.", "to_k.", "key."},
        {"v.", "to_v.", "value."},
        {"proj_out.", "to_out.0.", "proj_attn."},
    };
    size_t side = starts(ldm, "encoder.") || starts(ldm, "decoder.") ? strlen("encoder.") : 0;
    const char *rest = ldm + side;
    char head[64] = "";
    int i = 0, j = 0, n;
    if ((n = scan2(rest, "down.%d.block.%d.%n", &i, &j)))
        snprintf(head, sizeof head, "down_blocks.%d.resnets.%d.", i, j);
    else if ((n = scan1(rest, "down.%d.downsample.%n", &i)))
        snprintf(head, sizeof head, "down_blocks.%d.downsamplers.0.", i);
    else if ((n = scan2(rest, "up.%d.block.%d.%n", &i, &j))) /* numbered as they run */
        snprintf(head, sizeof head, "up_blocks.%d.resnets.%d.", levels - 1 - i, j);
    else if ((n = scan1(rest, "up.%d.upsample.%n", &i)))
        snprintf(head, sizeof head, "up_blocks.%d.upsamplers.0.", levels - 1 - i);
    else if ((n = scan1(rest, "mid.block_%d.%n", &i)))
        snprintf(head, sizeof head, "mid_block.resnets.%d.", i - 1);
    else if (starts(rest, "mid.attn_1.")) {
        n = (int)strlen("mid.attn_1.");
        snprintf(head, sizeof head, "mid_block.attentions.0.");
    }
    const char *tail = rest + n, *module = "";
    for (size_t r = 0; r < sizeof rename / sizeof *rename && !*module; r++)
        if (starts(tail, rename[r][0])) {
            module = rename[r][legacy ? 2 : 1];
            tail += strlen(rename[r][0]);
        }
    int len = snprintf(out, cap, "%.*s%s%s%s", (int)side, ldm, head, module, tail);
    if (len < 0 || (size_t)len >= cap)
        return osp_error(OSP_ERR_RUNTIME, "inflate: key too long: %s", ldm);
    return OSP_OK;
}

osp_vae2d osp_vae2d_of(osp_model_dir *dir, int levels)
{
    osp_vae2d s = {dir, OSP_VAE2D_LDM, levels};
    if (osp_model_find(dir, "encoder.conv_norm_out.weight"))
        s.naming = osp_model_find(dir, "encoder.mid_block.attentions.0.query.weight")
                       ? OSP_VAE2D_DIFFUSERS_LEGACY
                       : OSP_VAE2D_DIFFUSERS;
    return s;
}

osp_status osp_vae2d_key(const osp_vae2d *src, const char *k3, char *out, size_t cap)
{
    char ldm[512];
    if (src->naming == OSP_VAE2D_LDM)
        return osp_vae_inflate_key(k3, out, cap);
    if (osp_vae_inflate_key(k3, ldm, sizeof ldm))
        return osp_error_code();
    return osp_vae_diffusers_key(ldm, src->levels, src->naming == OSP_VAE2D_DIFFUSERS_LEGACY,
                                 out, cap);
}

osp_tensor *osp_vae_inflate_tensor(const osp_vae2d *src, const char *k3, const osp_tensor *like)
{
    char k2[512];
    if (osp_vae2d_key(src, k3, k2, sizeof k2))
        return NULL;
    if (like->ndim == 1) /* biases and norm parameters: copied */
        return osp_model_get(src->dir, k2, OSP_F32, 1, like->shape);
    if (like->ndim != 5)
        return osp_error(OSP_ERR_RUNTIME, "inflate: %s has rank %d, expected 1 or 5", k3,
                         like->ndim), NULL;
    /* [Co, Ci, kt, kh, kw] from [Co, Ci, kh, kw] (diffusers' attention
     * projections: a Linear [Co, Ci], the same numbers for kh = kw = 1):
     * zero but the last tap in time, which multiplies the current frame
     * under causal padding. */
    const int64_t *s = like->shape;
    int64_t shape2[4] = {s[0], s[1], s[3], s[4]};
    const osp_st_entry *e = osp_model_find(src->dir, k2);
    int ndim2 = e && e->ndim == 2 && s[3] == 1 && s[4] == 1 ? 2 : 4;
    osp_tensor *w2 = osp_model_get(src->dir, k2, OSP_F32, ndim2, shape2);
    osp_tensor *w3 = w2 ? osp_full(OSP_F32, 5, s, OSP_DEVICE_CPU, 0.0) : NULL;
    if (!w3)
        return NULL;
    const float *from2 = osp_f32(w2);
    float *to3 = osp_f32(w3);
    int64_t plane = s[3] * s[4];
    for (int64_t oc = 0; oc < s[0] * s[1]; oc++)
        memcpy(to3 + (oc * s[2] + s[2] - 1) * plane, from2 + oc * plane,
               (size_t)plane * sizeof *to3);
    return w3;
}

/* Every 2D tensor but loss.* must have been taken: a 2D VAE with more
 * levels or res-blocks than the 3D config would otherwise be mapped
 * silently onto the wrong blocks. */
static osp_status check_all_used(const osp_vae2d *src, const osp_st_entry **used, size_t n)
{
    for (size_t i = 0; i < osp_model_tensor_count(src->dir); i++) {
        const osp_st_entry *e = osp_model_entry(src->dir, i);
        bool hit = starts(e->name, "loss.");
        for (size_t j = 0; j < n && !hit; j++)
            hit = used[j] == e;
        if (!hit)
            return osp_error(OSP_ERR_DATA,
                             "%s: tensor '%s' has no counterpart in the 3D config (more levels "
                             "or res-blocks than it has?)",
                             osp_model_path(src->dir), e->name);
    }
    return OSP_OK;
}

osp_status osp_vae_inflate(osp_vae *vae, osp_model_dir *dir)
{
    osp_vae2d src = osp_vae2d_of(dir, osp_vae_get_config(vae)->levels);
    osp_params *p = osp_vae_params(vae);
    const osp_st_entry **used = calloc(p->n ? p->n : 1, sizeof *used);
    if (!used)
        return osp_error_nomem("inflate", p->n * sizeof *used);
    osp_status st = OSP_OK;
    for (size_t i = 0; i < p->n && !st; i++) {
        osp_tensor *dst = p->tensors[i];
        if (dst->storage->device != OSP_DEVICE_CPU || dst->dtype != OSP_F32) {
            st = osp_error(OSP_ERR_RUNTIME, "inflate: the 3D VAE must be float32 on the CPU");
            break;
        }
        char k2[512];
        osp_pool_push();
        osp_tensor *w = osp_vae_inflate_tensor(&src, p->names[i], dst);
        if (w) {
            memcpy(osp_f32(dst), osp_f32(w), (size_t)osp_numel(dst) * sizeof(float));
            osp_vae2d_key(&src, p->names[i], k2, sizeof k2);
            used[i] = osp_model_find(dir, k2);
        }
        osp_pool_pop();
        if (!w)
            st = osp_error_code();
    }
    if (!st)
        st = check_all_used(&src, used, p->n);
    free(used);
    return st;
}

osp_vae *osp_vae_init_2d(const osp_config *config, const char *path)
{
    osp_model_dir *dir = osp_model_open(path);
    osp_vae *vae = dir ? osp_vae_init(config, OSP_DEVICE_CPU, 0) : NULL;
    if (vae && osp_vae_inflate(vae, dir)) {
        osp_vae_free(vae);
        vae = NULL;
    }
    osp_model_close(dir);
    return vae;
}
