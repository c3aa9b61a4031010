#!/usr/bin/env python3
"""Writes the inputs of tests/bats/osp-train-inflate.bats: a small random
2-D Stable-Diffusion KL-VAE in diffusers layout and what it computes on one
image, to check that `osp-train inflate` (tail initialisation, spec
causalvae.md section 9) turns it into a CausalVideoVAE that reproduces it
on one frame.

  model/       diffusers AutoencoderKL (config.json +
               diffusion_pytorch_model.safetensors): widths 32 at all four
               levels, one resnet per encoder level, GroupNorm 32, 4 latent
               channels (1.5 MB); default initialisation with seed 0, then
               every norm scale and bias and every conv bias perturbed so
               none is trivial
  config3d.json
               the CausalVideoVAE config of the same shape (hidden_size 32,
               hidden_size_mult [1, 1, 1, 1], num_res_blocks 1)
  keys.json    names and shapes only, of a wider AutoencoderKL (widths 32,
               64, 64, 64, two resnets a level: it has resnet shortcuts),
               and its CausalVideoVAE config, for the unit test of the
               diffusers name mapping (tests/unit/test_inflate.c)
  io.safetensors
               video [1, 3, 1, 48, 64] in [-1, 1]; moments [1, 8, 1, 6, 8]
               = quant_conv(encoder(image)) (mean, then raw logvar);
               decoded [1, 3, 1, 48, 64] = decoder(post_quant_conv(mean))

The outputs are computed in float64 from the float32 weights and stored as
float32, so they are the exact 2-D results up to one final rounding.
Run with bench/.venv (torch, diffusers 0.24.0, safetensors):
  bench/.venv/bin/python tests/data/vae2d/make.py tests/data/vae2d"""
import json, os, sys

import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

WIDTHS = (32, 32, 32, 32)
KEY_WIDTHS = (32, 64, 64, 64)  # names only: resnet shortcuts, two resnets a level


def vae2d(widths, layers):
    """A random diffusers AutoencoderKL of these widths and
    layers_per_block, and the CausalVideoVAE config of the same shape."""
    vae = AutoencoderKL(in_channels=3, out_channels=3,
                        down_block_types=("DownEncoderBlock2D",) * len(widths),
                        up_block_types=("UpDecoderBlock2D",) * len(widths),
                        block_out_channels=widths, layers_per_block=layers,
                        latent_channels=4, norm_num_groups=32, sample_size=64)
    res, levels = "ResnetBlock3D", len(widths)
    conf = {
        "_class_name": "CausalVAEModel", "attn_resolutions": [], "double_z": True,
        "dropout": 0.0, "embed_dim": 4, "z_channels": 4, "resolution": 256,
        "hidden_size": widths[0], "hidden_size_mult": [w // widths[0] for w in widths],
        "num_res_blocks": layers, "q_conv": "CausalConv3d",
        "encoder_conv_in": "CausalConv3d", "encoder_conv_out": "CausalConv3d",
        "encoder_attention": "AttnBlock3D", "encoder_mid_resnet": res,
        "encoder_resnet_blocks": [res] * levels,
        "encoder_spatial_downsample": ["SpatialDownsample2x"] * 3 + [""],
        "encoder_temporal_downsample": ["TimeDownsample2x"] * 2 + [""] * 2,
        "decoder_conv_in": "CausalConv3d", "decoder_conv_out": "CausalConv3d",
        "decoder_attention": "AttnBlock3D", "decoder_mid_resnet": res,
        "decoder_resnet_blocks": [res] * levels,
        "decoder_spatial_upsample": [""] + ["SpatialUpsample2x"] * 3,
        "decoder_temporal_upsample": [""] * 2 + ["TimeUpsample2x"] * 2,
    }
    return vae, conf


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


def main(out):
    torch.manual_seed(0)
    vae, conf = vae2d(WIDTHS, 1)
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if p.ndim == 1 and "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn_like(p))
    vae.eval()
    vae.save_pretrained(os.path.join(out, "model"), safe_serialization=True)
    write_json(os.path.join(out, "config3d.json"), conf)

    wide, wide_conf = vae2d(KEY_WIDTHS, 2)
    write_json(os.path.join(out, "keys.json"), {
        "config3d": wide_conf,
        "keys": {k: list(v.shape) for k, v in wide.state_dict().items()}})

    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 48, 64, generator=g) * 2 - 1
    v64 = vae.double()
    with torch.no_grad():
        moments = v64.quant_conv(v64.encoder(image.double()))
        decoded = v64.decoder(v64.post_quant_conv(moments[:, :4]))
        vae32 = vae.float()
        m32 = vae32.quant_conv(vae32.encoder(image))
        d32 = vae32.decoder(vae32.post_quant_conv(m32[:, :4]))
    print("torch float32 vs float64: moments max abs %.3g, decoded max abs %.3g"
          % ((m32 - moments).abs().max(), (d32 - decoded).abs().max()))
    t = lambda x: x.float().unsqueeze(2).contiguous()  # [B, C, 1, H, W]
    save_file({"video": t(image), "moments": t(moments), "decoded": t(decoded)},
              os.path.join(out, "io.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
