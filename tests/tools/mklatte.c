/* mklatte — writes a tiny random LatteT2V model folder whose caption width
 * is chosen, so a bats suite can join the fixture text encoder (whose
 * width no fixture Latte shares) to osp-denoise and the fixture VAE.
 *
 *   mklatte DIR CAPTION_CHANNELS
 *
 * DIR/config.json: 2 layers, 2 heads x 16, patch 2, sample_size 8 (64 px),
 * video_length 5 (17 frames), in 4 / out 8 channels; DIR/diffusion_pytorch_
 * model.safetensors: every tensor of the shape plan, N(0, 1) x 0.05 from
 * the Philox generator (seed = the tensor's index). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/ops.h"
#include "backend/ops_random.h"
#include "io/safetensors.h"
#include "models/latte.h"

static const char config_fmt[] =
    "{\n"
    "  \"_class_name\": \"LatteT2V\",\n"
    "  \"activation_fn\": \"gelu-approximate\",\n"
    "  \"attention_bias\": true,\n"
    "  \"attention_head_dim\": 16,\n"
    "  \"caption_channels\": %d,\n"
    "  \"cross_attention_dim\": 32,\n"
    "  \"in_channels\": 4,\n"
    "  \"norm_elementwise_affine\": false,\n"
    "  \"norm_eps\": 1e-06,\n"
    "  \"norm_type\": \"ada_norm_single\",\n"
    "  \"num_attention_heads\": 2,\n"
    "  \"num_layers\": 2,\n"
    "  \"out_channels\": 8,\n"
    "  \"patch_size\": 2,\n"
    "  \"patch_size_t\": 1,\n"
    "  \"sample_size\": [8, 8],\n"
    "  \"video_length\": 5\n"
    "}\n";

static int fail(void)
{
    fprintf(stderr, "mklatte: %s\n", osp_error_message());
    return 1;
}

int main(int argc, char **argv)
{
    int width = argc == 3 ? atoi(argv[2]) : 0;
    if (argc != 3 || width < 1) {
        fprintf(stderr, "usage: mklatte DIR CAPTION_CHANNELS\n");
        return 2;
    }
    char path[4096], text[2048];
    snprintf(text, sizeof text, config_fmt, width);
    mkdir(argv[1], 0755);
    snprintf(path, sizeof path, "%s/config.json", argv[1]);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) == EOF || fclose(f) != 0) {
        fprintf(stderr, "mklatte: cannot write %s\n", path);
        return 1;
    }
    osp_config *conf = osp_config_parse(text, strlen(text), "mklatte config");
    osp_latte_config cfg;
    osp_latte_plan plan;
    if (!conf || osp_latte_config_parse(conf, &cfg) || osp_latte_plan_build(&cfg, &plan))
        return fail();
    osp_config_free(conf);
    osp_pool_push();
    const char **names = calloc(plan.n, sizeof *names);
    osp_tensor **tensors = calloc(plan.n, sizeof *tensors);
    if (!names || !tensors)
        return fprintf(stderr, "mklatte: out of memory\n"), 1;
    for (size_t i = 0; i < plan.n; i++) {
        names[i] = plan.items[i].name;
        tensors[i] = osp_scale_shift(osp_randn(plan.items[i].ndim, plan.items[i].shape,
                                               OSP_DEVICE_CPU, i, 0),
                                     0.05f, 0.0f);
        if (!tensors[i])
            return fail();
    }
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", argv[1]);
    if (osp_safetensors_write(path, (int)plan.n, names, tensors, NULL))
        return fail();
    osp_pool_pop();
    free(names);
    free(tensors);
    osp_latte_plan_free(&plan);
    return 0;
}
