/* causalvae_inflate.c — tail initialisation of the 3D VAE from a 2D
 * Stable-Diffusion KL-VAE in LDM naming (spec/causalvae.md section 9). */
#include "causalvae.h"
#include "backend/ops.h"
#include "io/model.h"
#include "nn/params.h"

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

osp_tensor *osp_vae_inflate_tensor(osp_model_dir *src, const char *k3, const osp_tensor *like)
{
    char k2[512];
    if (osp_vae_inflate_key(k3, k2, sizeof k2))
        return NULL;
    if (like->ndim == 1) /* biases and norm parameters: copied */
        return osp_model_get(src, k2, OSP_F32, 1, like->shape);
    if (like->ndim != 5)
        return osp_error(OSP_ERR_RUNTIME, "inflate: %s has rank %d, expected 1 or 5", k3,
                         like->ndim), NULL;
    /* [Co, Ci, kt, kh, kw] from [Co, Ci, kh, kw]: zero but the last tap in
     * time, which multiplies the current frame under causal padding. */
    const int64_t *s = like->shape;
    int64_t shape2[4] = {s[0], s[1], s[3], s[4]};
    osp_tensor *w2 = osp_model_get(src, k2, OSP_F32, 4, shape2);
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

osp_status osp_vae_inflate(osp_vae *vae, osp_model_dir *src)
{
    osp_params *p = osp_vae_params(vae);
    for (size_t i = 0; i < p->n; i++) {
        osp_tensor *dst = p->tensors[i];
        if (dst->storage->device != OSP_DEVICE_CPU || dst->dtype != OSP_F32)
            return osp_error(OSP_ERR_RUNTIME, "inflate: the 3D VAE must be float32 on the CPU");
        osp_pool_push();
        osp_tensor *w = osp_vae_inflate_tensor(src, p->names[i], dst);
        if (w)
            memcpy(osp_f32(dst), osp_f32(w), (size_t)osp_numel(dst) * sizeof(float));
        osp_pool_pop();
        if (!w)
            return osp_error_code();
    }
    return OSP_OK;
}
