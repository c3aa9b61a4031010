/* vae_cli.h — the options osp-encode and osp-decode share: the model
 * folder and the tiling controls, as cli_option table entries. */
#ifndef OSP_TOOLS_VAE_CLI_H
#define OSP_TOOLS_VAE_CLI_H

#include "common/cli.h"
#include "models/causalvae.h"

typedef struct vae_cli {
    const char *model;
    bool tile, no_tile;
    int64_t tile_size;   /* 0 = the model's default */
    double tile_overlap; /* < 0 = the default */
    int64_t chunk_frames, chunk_overlap;
    const char *max_memory;
} vae_cli;

extern vae_cli vae_opts;

#define VAE_CLI_OPTIONS                                                                        \
    {.name = "model", .short_name = 'm', .kind = CLI_STRING, .metavar = "DIR",                 \
     .s = &vae_opts.model, .help = "VAE folder (config.json + safetensors)"}, \
    {.name = "tile", .kind = CLI_FLAG, .flag = &vae_opts.tile,                                 \
     .help = "tile large frames (the reference's enable_tiling)"},         \
    {.name = "no-tile", .kind = CLI_FLAG, .flag = &vae_opts.no_tile,                           \
     .help = "never tile (the default)"},                                                      \
    {.name = "tile-size", .kind = CLI_INT, .metavar = "PX", .min = 16, .max = 65536,           \
     .i = &vae_opts.tile_size, .help = "tile size in pixels (default 256; implies --tile)"},   \
    {.name = "tile-overlap", .kind = CLI_NUMBER, .metavar = "F", .min = 0, .max = 0.9,         \
     .f = &vae_opts.tile_overlap, .help = "tile overlap factor (default 0.25)"},               \
    {.name = "chunk-frames", .kind = CLI_INT, .metavar = "N", .min = 2, .max = 1e9,          \
     .i = &vae_opts.chunk_frames, .help = "process time in overlapping chunks of N frames"},   \
    {.name = "chunk-overlap", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1e6,         \
     .i = &vae_opts.chunk_overlap, .help = "latent frames shared by chunks (default 1)"},     \
    {.name = "max-memory", .kind = CLI_STRING, .metavar = "SIZE", .s = &vae_opts.max_memory, \
     .help = "chunk above this size, e.g. 8G (default 3/4 of RAM/GPU)"}

/* Loads the -m folder onto the chosen device; NULL + error. */
osp_vae *vae_cli_load(const cli_common *common);
/* The tiling the options ask for (usage error on contradictions). */
osp_vae_tiling vae_cli_tiling(const osp_vae *vae);
/* The chunking for an input of this shape (pixels for encode, latent cells
 * for decode) on `device`: --chunk-frames when given, else none when the
 * estimated memory fits the budget (--max-memory, else 3/4 of the device's
 * memory), else the longest chunk that fits (with a one-line notice). */
osp_vae_chunking vae_cli_chunking(const osp_vae *vae, bool decode, const osp_tensor *input,
                                  const osp_vae_tiling *tiling, osp_device device);

#endif
