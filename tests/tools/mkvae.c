/* mkvae — writes a CausalVideoVAE model folder with random weights, laid
 * out as the release (config.json + diffusion_pytorch_model.safetensors),
 * for `make demo` and tests that need a VAE without ../shared/fixtures.
 *
 *   mkvae DIR [HIDDEN [SEED]]
 *
 * The config is the release's layout (4 levels, spatial 8x, temporal 4x,
 * 4 latent channels) at width HIDDEN (default 32; the release has 128)
 * with one res-block per level. Weights come from osp_vae_init: N(0,
 * 1/fan_in) weights, unit norm scales, zero biases, Philox seed SEED
 * (default 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/safetensors.h"
#include "models/causalvae.h"
#include "nn/params.h"

static const char config_fmt[] =
    "{\n"
    "  \"_class_name\": \"CausalVAEModel\",\n"
    "  \"attn_resolutions\": [],\n"
    "  \"decoder_attention\": \"AttnBlock3D\",\n"
    "  \"decoder_conv_in\": \"CausalConv3d\",\n"
    "  \"decoder_conv_out\": \"CausalConv3d\",\n"
    "  \"decoder_mid_resnet\": \"ResnetBlock3D\",\n"
    "  \"decoder_resnet_blocks\": [\"ResnetBlock3D\", \"ResnetBlock3D\", \"ResnetBlock3D\",\n"
    "                            \"ResnetBlock3D\"],\n"
    "  \"decoder_spatial_upsample\": [\"\", \"SpatialUpsample2x\", \"SpatialUpsample2x\",\n"
    "                               \"SpatialUpsample2x\"],\n"
    "  \"decoder_temporal_upsample\": [\"\", \"\", \"TimeUpsample2x\", \"TimeUpsample2x\"],\n"
    "  \"double_z\": true,\n"
    "  \"dropout\": 0.0,\n"
    "  \"embed_dim\": 4,\n"
    "  \"encoder_attention\": \"AttnBlock3D\",\n"
    "  \"encoder_conv_in\": \"CausalConv3d\",\n"
    "  \"encoder_conv_out\": \"CausalConv3d\",\n"
    "  \"encoder_mid_resnet\": \"ResnetBlock3D\",\n"
    "  \"encoder_resnet_blocks\": [\"ResnetBlock3D\", \"ResnetBlock3D\", \"ResnetBlock3D\",\n"
    "                            \"ResnetBlock3D\"],\n"
    "  \"encoder_spatial_downsample\": [\"SpatialDownsample2x\", \"SpatialDownsample2x\",\n"
    "                                 \"SpatialDownsample2x\", \"\"],\n"
    "  \"encoder_temporal_downsample\": [\"TimeDownsample2x\", \"TimeDownsample2x\", \"\", \"\"],\n"
    "  \"hidden_size\": %d,\n"
    "  \"hidden_size_mult\": [1, 1, 1, 1],\n"
    "  \"num_res_blocks\": 1,\n"
    "  \"q_conv\": \"CausalConv3d\",\n"
    "  \"resolution\": 256,\n"
    "  \"z_channels\": 4\n"
    "}\n";

static int fail(void)
{
    fprintf(stderr, "mkvae: %s\n", osp_error_message());
    return 1;
}

int main(int argc, char **argv)
{
    int hidden = argc >= 3 ? atoi(argv[2]) : 32;
    long long seed = argc >= 4 ? atoll(argv[3]) : 1;
    if (argc < 2 || argc > 4 || hidden < 32 || hidden % 32 || seed < 0) {
        fprintf(stderr, "usage: mkvae DIR [HIDDEN (a multiple of 32) [SEED]]\n");
        return 2;
    }
    char path[4096], text[4096];
    snprintf(text, sizeof text, config_fmt, hidden);
    mkdir(argv[1], 0755);
    snprintf(path, sizeof path, "%s/config.json", argv[1]);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) == EOF || fclose(f) != 0) {
        fprintf(stderr, "mkvae: cannot write %s\n", path);
        return 1;
    }
    osp_config *conf = osp_config_parse(text, strlen(text), "mkvae config");
    osp_vae *vae = conf ? osp_vae_init(conf, OSP_DEVICE_CPU, (uint64_t)seed) : NULL;
    osp_config_free(conf);
    if (!vae)
        return fail();
    const osp_params *p = osp_vae_params(vae);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", argv[1]);
    osp_status st = osp_safetensors_write(path, (int)p->n, (const char *const *)p->names,
                                          p->tensors, NULL);
    osp_vae_free(vae);
    return st ? fail() : 0;
}
