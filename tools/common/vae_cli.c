/* vae_cli.c — see vae_cli.h. */
#include "vae_cli.h"

vae_cli vae_opts = {.tile_overlap = -1};

osp_vae *vae_cli_load(const cli_common *common)
{
    if (!vae_opts.model)
        cli_usage_error("-m/--model DIR is required (the VAE folder)");
    return osp_vae_load(vae_opts.model, common->device);
}

osp_vae_tiling vae_cli_tiling(const osp_vae *vae)
{
    if (vae_opts.tile && vae_opts.no_tile)
        cli_usage_error("--tile and --no-tile contradict each other");
    osp_vae_tiling t = osp_vae_default_tiling(vae);
    int space = osp_vae_space_factor(osp_vae_get_config(vae));
    if (vae_opts.tile_size) {
        if (vae_opts.no_tile)
            cli_usage_error("--tile-size and --no-tile contradict each other");
        if (vae_opts.tile_size % space)
            cli_usage_error("--tile-size: %lld is not a multiple of %d",
                            (long long)vae_opts.tile_size, space);
        t.sample_size = vae_opts.tile_size;
        t.latent_size = vae_opts.tile_size / space;
        t.enabled = true;
    }
    if (vae_opts.tile_overlap >= 0)
        t.overlap = vae_opts.tile_overlap;
    if (vae_opts.tile)
        t.enabled = true;
    return t;
}
