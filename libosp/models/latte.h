/* latte.h — the LatteT2V diffusion transformer of Open-Sora-Plan v1.0.0
 * (spec/latte_t2v.md) and its classifier-free-guided sampling loop
 * (spec/sampling.md §1.2-1.3).
 *
 * x [B, C_in, F, H, W] (noisy latent), timestep [B], T5 states
 * [B, L, caption_channels] --forward--> [B, C_out, F, H, W]
 * (channels 0..C_in-1 the noise prediction, the rest the learned variance).
 *
 * Any config of the family is read from config.json (the XL/122 release:
 * 28 spatial + 28 temporal blocks, hidden 1152 = 16 heads x 72, patch 2);
 * weights are read under the original state-dict names, shape-checked.
 * The forward is written with ops only (backend/ops.h), so it runs on any
 * backend and trains through the tape.
 *
 * Files: latte_config.c (config.json), latte_embed.c (sin-cos tables,
 * timestep, caption and patch embeddings, final layer), latte_blocks.c
 * (attention, feed-forward, spatial and temporal blocks), latte.c (loading,
 * the shape plan, the forward), latte_sample.c (guidance and sampling). */
#ifndef OSP_LATTE_H
#define OSP_LATTE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"
#include "io/config.h"
#include "sched/sched.h"

/* Width of the timestep sinusoid fed to the adaLN-single MLP. */
#define OSP_LATTE_TIMESTEP_DIM 256
/* Rows of the (unused) caption_projection.y_embedding buffer. */
#define OSP_LATTE_Y_EMBEDDING_TOKENS 120

typedef struct osp_latte_config {
    int num_layers;       /* spatial blocks = temporal blocks */
    int heads, head_dim;  /* hidden = heads * head_dim */
    int hidden;
    int in_channels, out_channels;
    int patch_size;       /* spatial patch p (patch_size_t must be 1) */
    int sample_size;      /* trained latent size (square) */
    int video_length;     /* trained latent frames: the temporal table's length */
    int caption_channels; /* text encoder width */
    float norm_eps;       /* the blocks' and the final layer's layer norms */
    float dropout;        /* kept for training; the forward is dropout-free */
} osp_latte_config;

/* Parses and validates a LatteT2V config.json: missing keys default to the
 * XL/122 values, keys starting with '_' are ignored (except a _class_name
 * other than LatteT2V, another model's folder), and configs this
 * implementation does not build are rejected naming the key (norm_type,
 * activation_fn, norm_elementwise_affine, patch_size_t, non-square
 * sample_size, cross_attention_dim != hidden, ...). */
osp_status osp_latte_config_parse(const osp_config *c, osp_latte_config *out);

/* ---- the shape plan: every checkpoint tensor a config implies ---- */

typedef struct osp_latte_param_info {
    char *name;
    int ndim;
    int64_t shape[4];
} osp_latte_param_info;

typedef struct osp_latte_plan {
    size_t n, cap;
    osp_latte_param_info *items;
} osp_latte_plan;

/* Lists the tensors the loader reads for cfg, with their shapes, in the
 * reference's state-dict order, without touching any file (the same code
 * path as loading). 968 entries for XL/122. */
osp_status osp_latte_plan_build(const osp_latte_config *cfg, osp_latte_plan *out);
void osp_latte_plan_free(osp_latte_plan *plan);

/* ---- the model ---- */

typedef struct osp_latte osp_latte;
struct osp_params;

/* Loads a model folder (config.json + diffusion_pytorch_model.safetensors)
 * onto device. keep_stored_dtype: f16/bf16 weights stay in their stored
 * dtype and are widened on use (half the memory; for inference), else all
 * are converted to float32 (training). A tensor the config does not imply
 * is an error. */
osp_latte *osp_latte_load(const char *dir, osp_device device, bool keep_stored_dtype);
void osp_latte_free(osp_latte *m); /* NULL-safe */
const osp_latte_config *osp_latte_get_config(const osp_latte *m);
struct osp_params *osp_latte_params(osp_latte *m);

/* One forward call (spec §3-§5). */
typedef struct osp_latte_input {
    osp_tensor *x;        /* [B, C_in, F, H, W], F = F_v + n_img */
    osp_tensor *timestep; /* [B], integer or float */
    /* [B, L, caption_channels] when n_img = 0; [B, 1 + n_img, L, ...] in
     * the joint image-video layout (row 0 the video caption, row 1 + j the
     * caption of image j). */
    osp_tensor *context;
    /* NULL, or 1 = keep / 0 = padding, any numeric dtype: [B, L], or
     * [B, 1 + n_img, L] in the joint layout. */
    osp_tensor *mask;
    int n_img;     /* use_image_num: the last n_img frames are images (training) */
    bool temporal; /* enable_temporal_attentions (false: image mode, F = 1) */
    /* Optional [B, 256]: replaces the computed timestep sinusoid (tests
     * feed the reference's to isolate the rest of the network). */
    osp_tensor *t_sinusoid;
    /* Optional debug taps, named as the fixtures' (tap_t6, tap_tokens_in,
     * tap_spatial0_out, ...): called with intermediate tensors. */
    void (*tap)(void *ctx, const char *name, osp_tensor *t);
    void *tap_ctx;
} osp_latte_input;

/* Gradient checkpointing for training (off by default): the forward keeps
 * only each layer's input and the backward recomputes the layer
 * (train/recompute.h); the same gradients, bit for bit, in less memory. */
void osp_latte_set_checkpointing(osp_latte *m, bool on);

/* [B, C_out, F, H, W]; NULL + error on inputs that do not fit the model
 * (the message names the tensor and the expected shape). */
osp_tensor *osp_latte_forward(osp_latte *m, const osp_latte_input *in);

/* ---- fixed tables (exposed for tests) ---- */

/* The 2-D sin-cos table [h * w, hidden] for an h x w token grid (spec
 * §4.2; recomputed for any grid, relative to the trained size). */
osp_tensor *osp_latte_pos_embed_2d(const osp_latte_config *cfg, int64_t h, int64_t w);
/* The temporal table [video_length, hidden] (spec §4.5). */
osp_tensor *osp_latte_temp_pos_embed(const osp_latte_config *cfg);

/* ---- sampling (spec/sampling.md §1.3) ---- */

typedef struct osp_latte_sampling {
    osp_sched *sched; /* timesteps already set; reset by the loop */
    double guidance;  /* > 1: classifier-free guidance with the null context */
    /* N(0, 1) noise of the latent's shape for a step that needs it (DDPM),
     * as a tensor in the current pool; NULL + error on failure. */
    osp_tensor *(*step_noise)(void *ctx, int step, const osp_tensor *like);
    void *step_noise_ctx;
    /* Optional: called after every scheduler step with the new latents. */
    void (*on_step)(void *ctx, int step, osp_tensor *latents);
    void *on_step_ctx;
} osp_latte_sampling;

/* Prompt b's text context as sample_t2v.py builds it (spec/sampling.md
 * §1.2): keep = the number of ones in mask[b] (L without a mask), cond =
 * embedding[b, :keep] and, when null_embedding is given, uncond =
 * null_embedding[0, :keep] (its first keep positions, whatever its own
 * mask says). embedding [B, L, D], mask [B, L] (any numeric dtype) or
 * NULL, null_embedding [1, L', D] or NULL (then *uncond = NULL). */
osp_status osp_latte_prompt_context(osp_tensor *embedding, osp_tensor *mask,
                                    osp_tensor *null_embedding, int64_t b, osp_tensor **cond,
                                    osp_tensor **uncond);

/* The guided noise prediction at timestep t (spec §1.3): one transformer
 * call on the batch [uncond, cond] (or [cond] without guidance), g = u +
 * s (c - u) on all channels, then the first C_in channels (the
 * learned-sigma split). x [1, C_in, T', h, w]; cond and uncond [1, L, D];
 * T' = 1 runs image mode (temporal blocks off). */
osp_tensor *osp_latte_guided_eps(osp_latte *m, osp_tensor *x, double t, osp_dtype t_dtype,
                                 osp_tensor *cond, osp_tensor *uncond, double guidance);

/* The whole denoising loop for one prompt: latents = noise x
 * init_noise_sigma, then one guided call and one scheduler step per
 * timestep. noise [1, C_in, T', h, w] N(0, 1); uncond is required when
 * guidance > 1 (both already cut to the prompt's real tokens). Returns the
 * final latents (current pool). */
osp_tensor *osp_latte_sample(osp_latte *m, const osp_latte_sampling *s, osp_tensor *noise,
                             osp_tensor *cond, osp_tensor *uncond);

#endif
