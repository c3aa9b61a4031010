/* causalvae.h — Open-Sora-Plan v1.0.0 CausalVideoVAE (spec/causalvae.md).
 *
 * video [B,3,T,H,W] in [-1,1] --encode--> moments [B,2E,T',H/8,W/8]
 * (posterior mean = channels 0..E-1, raw logvar = E..2E-1) --sample-->
 * latent --decode--> video. T' = (T-1)/4 + 1 for T = 1+4k (release
 * layout). Any config of the family is accepted: widths, level count and
 * resampler lists are read from config.json and checked against the
 * weights. */
#ifndef OSP_CAUSALVAE_H
#define OSP_CAUSALVAE_H

#include <stdbool.h>

#include "core/tensor.h"
#include "io/config.h"

#define OSP_VAE_MAX_LEVELS 8
/* The wrapper's latent scale (CausalVAEModelWrapper). */
#define OSP_VAE_LATENT_SCALE 0.18215

typedef struct osp_vae_config {
    int hidden_size, levels, num_res_blocks, z_channels, embed_dim;
    int mult[OSP_VAE_MAX_LEVELS];
    bool double_z;
    bool spatial_down[OSP_VAE_MAX_LEVELS], temporal_down[OSP_VAE_MAX_LEVELS];
    bool spatial_up[OSP_VAE_MAX_LEVELS], temporal_up[OSP_VAE_MAX_LEVELS];
} osp_vae_config;

/* Parses and validates a CausalVAEModel config.json (rejects classes and
 * layouts this implementation does not build, naming the key). */
osp_status osp_vae_config_parse(const osp_config *c, osp_vae_config *out);
/* Time / space compression factors implied by the config (4 and 8 for the
 * release). */
int osp_vae_time_factor(const osp_vae_config *c);
int osp_vae_space_factor(const osp_vae_config *c);

/* Spatial tiling (spec section 8). sample_size in pixels, latent_size in
 * latent cells; a tile size S sets latent_size = S / space factor. */
typedef struct osp_vae_tiling {
    bool enabled;
    int64_t sample_size, latent_size;
    double overlap; /* the reference computes the tile arithmetic in double */
} osp_vae_tiling;

typedef struct osp_vae osp_vae;

/* Loads a model folder (config.json + diffusion_pytorch_model.safetensors;
 * `loss.*` keys are ignored) onto device. */
osp_vae *osp_vae_load(const char *dir, osp_device device);
/* A VAE of this config with fresh random weights (params.h random_init:
 * N(0, 1/fan_in) weights, unit norm scales, zero biases; Philox `seed`),
 * for generated test and demo models and training from scratch. */
osp_vae *osp_vae_init(const osp_config *config, osp_device device, uint64_t seed);
void osp_vae_free(osp_vae *vae);

/* Tail initialisation from a 2D Stable-Diffusion KL-VAE (spec section 9;
 * causalvae_inflate.c). The LDM/CompVis 2D key of a 3D key drops the
 * "conv." of every "conv.weight" / "conv.bias" (osp_vae_inflate_key); a
 * source in diffusers naming (AutoencoderKL: down_blocks, mid_block,
 * conv_norm_out, ...; older files with query/key/value/proj_attn) is read
 * through osp_vae_diffusers_key, which renames an LDM key (levels: the
 * number of resolution levels, since diffusers numbers the decoder's blocks
 * in processing order). 1-D tensors are copied, a 2D kernel [Co,Ci,kh,kw]
 * (or a diffusers attention Linear [Co,Ci]) becomes the last temporal tap
 * of the 3D kernel [Co,Ci,kt,kh,kw] (zeros elsewhere), so each convolution
 * acts frame by frame like its source. */
struct osp_model_dir;
typedef enum osp_vae2d_naming {
    OSP_VAE2D_LDM,
    OSP_VAE2D_DIFFUSERS,
    OSP_VAE2D_DIFFUSERS_LEGACY, /* query, key, value, proj_attn */
} osp_vae2d_naming;
typedef struct osp_vae2d {
    struct osp_model_dir *dir;
    osp_vae2d_naming naming;
    int levels; /* of the 3D config */
} osp_vae2d;
/* The naming is told by the keys present (encoder.conv_norm_out.weight:
 * diffusers). */
osp_vae2d osp_vae2d_of(struct osp_model_dir *dir, int levels);
osp_status osp_vae_inflate_key(const char *key3d, char *key2d, size_t cap);
osp_status osp_vae_diffusers_key(const char *ldm, int levels, bool legacy, char *out,
                                 size_t cap);
/* The source's key of 3D key key3d. */
osp_status osp_vae2d_key(const osp_vae2d *src, const char *key3d, char *key2d, size_t cap);
osp_tensor *osp_vae_inflate_tensor(const osp_vae2d *src, const char *key3d,
                                   const osp_tensor *like);
/* Overwrites every parameter of a float32 CPU VAE (e.g. from osp_vae_init)
 * from src; OSP_ERR_DATA naming the 2D tensor when one is missing or of
 * another shape (widths that differ from the 3D config), or when a 2D
 * tensor other than loss.* has no 3D counterpart. */
osp_status osp_vae_inflate(osp_vae *vae, struct osp_model_dir *src);
/* A VAE of this config (float32, CPU) inflated from the 2D VAE at path: a
 * diffusers folder (config.json + diffusion_pytorch_model.safetensors) or
 * a single .safetensors file, in either naming. */
osp_vae *osp_vae_init_2d(const osp_config *config, const char *path);
const osp_vae_config *osp_vae_get_config(const osp_vae *vae);
/* The reference's tiling defaults for this model (off, 256 px, overlap 0.25). */
osp_vae_tiling osp_vae_default_tiling(const osp_vae *vae);
struct osp_params *osp_vae_params(osp_vae *vae);

/* moments = quant_conv(encoder(video)); tiled when tiling says so. */
osp_tensor *osp_vae_encode(osp_vae *vae, osp_tensor *video, const osp_vae_tiling *tiling);
/* video = decoder(post_quant_conv(z)) for an unscaled latent z. */
osp_tensor *osp_vae_decode(osp_vae *vae, osp_tensor *z, const osp_vae_tiling *tiling);

/* The untiled halves (also used per tile). */
osp_tensor *osp_vae_encoder_forward(osp_vae *vae, osp_tensor *video);
osp_tensor *osp_vae_decoder_forward(osp_vae *vae, osp_tensor *z);
/* The decoder in two parts, decoder = head(body(z)): the head is norm_out,
 * SiLU and conv_out, whose weight the VAE trainer's adaptive GAN weight
 * differentiates against. */
osp_tensor *osp_vae_decoder_body(osp_vae *vae, osp_tensor *z);
osp_tensor *osp_vae_decoder_head(osp_vae *vae, osp_tensor *h);

/* Posterior from moments: mean (channels 0..E-1) and logvar clamped to
 * [-30, 20]. */
osp_status osp_vae_posterior(osp_tensor *moments, osp_tensor **mean, osp_tensor **logvar);
/* mean + exp(0.5 logvar) * noise. */
osp_tensor *osp_vae_sample(osp_tensor *mean, osp_tensor *logvar, osp_tensor *noise);

/* Temporal chunking (an osp extension; the reference never splits time):
 * the clip is cut into overlapping causal chunks that are encoded (or
 * decoded) one at a time and blended in time with trapezoid weights, so
 * memory depends on the chunk length, not the clip length. Approximate:
 * GroupNorm statistics and the middle attention see one chunk, and a
 * chunk's first frames lack their causal history (they are dropped where
 * a previous chunk covers them). frames = chunk length in input frames
 * (encode, 1+4m) or latent frames (decode); overlap in latent frames. */
typedef struct osp_vae_chunking {
    int64_t frames;  /* 0 = no chunking */
    int64_t overlap; /* latent frames shared by neighbouring chunks (>= 1) */
} osp_vae_chunking;

osp_tensor *osp_vae_encode_chunked(osp_vae *vae, osp_tensor *video, const osp_vae_tiling *tiling,
                                   const osp_vae_chunking *chunking);
osp_tensor *osp_vae_decode_chunked(osp_vae *vae, osp_tensor *z, const osp_vae_tiling *tiling,
                                   const osp_vae_chunking *chunking);
/* Receives decoded frames [first, first + frames->shape[2]) as
 * [B, 3, n, H, W], in order; `frames` lives until the callback returns.
 * A non-OK return stops the decode and is passed on. */
typedef osp_status (*osp_vae_frames_fn)(void *ctx, osp_tensor *frames, int64_t first);
/* The decode of osp_vae_decode_chunked (bit for bit), handed out as it
 * finishes: with chunking, each chunk's frames that no later chunk
 * blends into, so a caller that writes them out holds one chunk's worth
 * of frames, not the clip; without, the whole clip in one call. */
osp_status osp_vae_decode_each(osp_vae *vae, osp_tensor *z, const osp_vae_tiling *tiling,
                               const osp_vae_chunking *chunking, osp_vae_frames_fn fn,
                               void *ctx);
/* Rough peak bytes of an untiled, unchunked encode (decode = false) or
 * decode of a [batch, *, frames, height, width] input (pixels for encode,
 * latent cells for decode): the largest activation times the number of
 * live copies a res-block holds. Used to pick chunking under a budget. */
double osp_vae_estimate_bytes(const osp_vae *vae, bool decode, int64_t batch, int64_t frames,
                              int64_t height, int64_t width);

/* The in-place blend-and-assemble of spec section 8 over a rows x cols
 * grid of tiles [B,C,T,h,w] (row-major array), blend width `blend`, kept
 * extent `keep`. Exposed for tests. */
osp_tensor *osp_vae_blend_tiles(osp_tensor **tiles, int rows, int cols, int64_t blend,
                                int64_t keep);

#endif
