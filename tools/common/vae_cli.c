/* vae_cli.c — see vae_cli.h. */
#include "vae_cli.h"

#include <string.h>

#include <stdio.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/log.h"

vae_cli vae_opts = {.tile_overlap = -1, .chunk_overlap = 1};

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

/* --max-memory: bytes with an optional K/M/G/T suffix (powers of 1024);
 * by default three quarters of the memory the model runs in: the GPU's
 * when it runs on one that reports its capacity, else the host's. */
static double memory_budget(osp_device device)
{
    if (!vae_opts.max_memory) {
        osp_device_memory m;
        if (device != OSP_DEVICE_CPU && osp_device_memory_stats(device, &m) && m.total)
            return 0.75 * (double)m.total;
        double pages = (double)sysconf(_SC_PHYS_PAGES), page = (double)sysconf(_SC_PAGESIZE);
        return pages > 0 && page > 0 ? 0.75 * pages * page : 8e9;
    }
    char unit = 0, extra;
    double v;
    int n = sscanf(vae_opts.max_memory, "%lf%c%c", &v, &unit, &extra);
    static const char units[] = "KMGT";
    const char *u = unit ? strchr(units, unit & ~0x20) : NULL;
    if (n < 1 || n > 2 || !(v > 0) || (n == 2 && !u))
        cli_usage_error("--max-memory: expected a size such as 512M or 8G, got '%s'",
                        vae_opts.max_memory);
    for (const char *p = units; u && p <= u; p++)
        v *= 1024.0;
    return v;
}

osp_vae_chunking vae_cli_chunking(const osp_vae *vae, bool decode, const osp_tensor *x,
                                  const osp_vae_tiling *tiling, osp_device device)
{
    osp_vae_chunking c = {vae_opts.chunk_frames, vae_opts.chunk_overlap};
    if (c.frames || !x || x->ndim != 5)
        return c;
    int f = osp_vae_time_factor(osp_vae_get_config(vae));
    int64_t h = x->shape[3], w = x->shape[4];
    if (tiling->enabled) { /* a tile bounds the frame size the model sees */
        int64_t tile = decode ? tiling->latent_size : tiling->sample_size;
        h = h < tile ? h : tile;
        w = w < tile ? w : tile;
    }
    double budget = memory_budget(device);
    int64_t T = x->shape[2];
    if (osp_vae_estimate_bytes(vae, decode, x->shape[0], T, h, w) <= budget)
        return c;
    /* The longest chunk under budget: 1+f*m input frames, or m+1 latents. */
    int64_t best = 0;
    for (int64_t m = c.overlap + 1;; m++) {
        int64_t len = decode ? m + 1 : 1 + f * m;
        if (len >= T || osp_vae_estimate_bytes(vae, decode, x->shape[0], len, h, w) > budget)
            break;
        best = len;
    }
    if (!best)
        best = decode ? c.overlap + 2 : 1 + f * (c.overlap + 1);
    c.frames = best;
    bool gib = budget >= 1073741824.0;
    osp_log_info("%s %lld %sframes in chunks of %lld to stay within %.1f %s (%s); "
                 "the result is approximate", decode ? "decoding" : "encoding", (long long)T,
                 decode ? "latent " : "", (long long)best,
                 budget / (gib ? 1073741824.0 : 1048576.0), gib ? "GiB" : "MiB",
                 vae_opts.max_memory ? "--max-memory" : "3/4 of the memory, see --max-memory");
    return c;
}
