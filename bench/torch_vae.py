#!/usr/bin/env python3
"""torch_vae.py -- a PyTorch CausalVideoVAE for the VAE benchmark (bench only).

Written from spec/causalvae.md (sections 3-6), not from the Open-Sora-Plan
sources: the same modules under the same state-dict names, so it loads the
very safetensors file osp loads and the two can be timed and compared on the
same weights and the same input.

  torch_vae.py init DIR [--hidden 128 --mult 1,2,4,4 --blocks 2 --seed 0]
      writes DIR/config.json (release format) and random weights
      DIR/diffusion_pytorch_model.safetensors (conv weights ~ N(0, 1/fan_in),
      biases ~ N(0, 0.05^2), GroupNorm gamma ~ 1 + N(0, 0.2^2),
      beta ~ N(0, 0.1^2), as the fixtures)
  torch_vae.py video FILE T H W [--seed 1]
      writes FILE (safetensors): `video` [1, 3, T, H, W] uniform in [-1, 1]
  torch_vae.py encode DIR IN OUT [-t THREADS]
      moments of IN's `video`; OUT gets `moments` and `latent`
      (mean * 0.18215); prints "encode_ms <wall ms> <cpu ms>"
  torch_vae.py decode DIR IN OUT [-t THREADS]
      decodes IN's `latent` (divided by 0.18215); OUT gets `video`;
      prints "decode_ms <wall ms> <cpu ms>"
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

SCALE = 0.18215


class CausalConv3d(nn.Module):
    """Frame 0 replicated kt-1 times in front, zero padding p in H and W."""

    def __init__(self, cin, cout, k, pad=0, stride=1):
        super().__init__()
        k = (k, k, k) if isinstance(k, int) else k
        self.kt = k[0]
        self.conv = nn.Conv3d(cin, cout, k, stride=(1, stride, stride), padding=(0, pad, pad))

    def forward(self, x):
        if self.kt > 1:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.kt - 1, -1, -1), x], dim=2)
        return self.conv(x)


def norm(c):
    return nn.GroupNorm(32, c, eps=1e-6)


class ResnetBlock3D(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1, self.conv1 = norm(cin), CausalConv3d(cin, cout, 3, 1)
        self.norm2, self.conv2 = norm(cout), CausalConv3d(cout, cout, 3, 1)
        if cin != cout:
            self.nin_shortcut = CausalConv3d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        s = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return s + h


class AttnBlock3D(nn.Module):
    """Single-head attention over H*W positions on [B,C,T,H,W] read as
    [B*T, C, H*W] without moving T (the regrouping of spec 3.5)."""

    def __init__(self, c):
        super().__init__()
        self.norm = norm(c)
        self.q, self.k, self.v = (CausalConv3d(c, c, 1) for _ in range(3))
        self.proj_out = CausalConv3d(c, c, 1)

    def forward(self, x):
        b, c, t, h, w = x.shape
        n = self.norm(x)
        q, k, v = (m(n).reshape(b * t, c, h * w) for m in (self.q, self.k, self.v))
        s = torch.bmm(q.transpose(1, 2), k) * (c ** -0.5)      # [BT, N, N]
        o = torch.bmm(v, s.softmax(dim=2).transpose(1, 2))      # [BT, C, N]
        return x + self.proj_out(o.reshape(b, c, t, h, w))


class SpatialDownsample2x(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = CausalConv3d(c, c, (1, 3, 3), 0, 2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class SpatialUpsample2x(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = CausalConv3d(c, c, (1, 3, 3), 1, 1)

    def forward(self, x):
        return self.conv(x.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4))


def time_down(x):
    x = torch.cat([x[:, :, :1], x[:, :, :1], x], dim=2)
    return F.avg_pool3d(x, (3, 1, 1), (2, 1, 1))


def time_up(x):
    if x.shape[2] == 1:
        return x
    rest = F.interpolate(x[:, :, 1:], scale_factor=(2, 1, 1), mode="trilinear",
                         align_corners=False)
    return torch.cat([x[:, :, :1], rest], dim=2)


class Level(nn.Module):
    def __init__(self, cin, cout, n, spatial, temporal, up):
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock3D(cin if j == 0 else cout, cout)
                                   for j in range(n))
        if spatial:
            setattr(self, "upsample" if up else "downsample",
                    (SpatialUpsample2x if up else SpatialDownsample2x)(cout))
        self.temporal, self.up = temporal, up

    def forward(self, x):
        for b in self.block:
            x = b(x)
        resample = getattr(self, "upsample" if self.up else "downsample", None)
        if resample is not None:
            x = resample(x)
        if self.temporal:
            x = time_up(x) if self.up else time_down(x)
        return x


class Mid(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block_1, self.attn_1, self.block_2 = ResnetBlock3D(c, c), AttnBlock3D(c), \
            ResnetBlock3D(c, c)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, m = cfg["hidden_size"], cfg["hidden_size_mult"]
        self.conv_in = CausalConv3d(3, ch, 3, 1)
        self.down = nn.ModuleList(
            Level(ch * (m[i - 1] if i else 1), ch * m[i], cfg["num_res_blocks"],
                  cfg["encoder_spatial_downsample"][i], cfg["encoder_temporal_downsample"][i],
                  False) for i in range(len(m)))
        top = ch * m[-1]
        self.mid = Mid(top)
        self.norm_out = norm(top)
        self.conv_out = CausalConv3d(top, 2 * cfg["z_channels"], 3, 1)

    def forward(self, x):
        x = self.conv_in(x)
        for lv in self.down:
            x = lv(x)
        return self.conv_out(F.silu(self.norm_out(self.mid(x))))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, m = cfg["hidden_size"], cfg["hidden_size_mult"]
        top = ch * m[-1]
        self.conv_in = CausalConv3d(cfg["z_channels"], top, 3, 1)
        self.mid = Mid(top)
        ins = [ch * m[i + 1] if i + 1 < len(m) else top for i in range(len(m))]
        self.up = nn.ModuleList(
            Level(ins[i], ch * m[i], cfg["num_res_blocks"] + 1,
                  cfg["decoder_spatial_upsample"][i], cfg["decoder_temporal_upsample"][i],
                  True) for i in range(len(m)))
        self.norm_out = norm(ch * m[0])
        self.conv_out = CausalConv3d(ch * m[0], 3, 3, 1)

    def forward(self, z):
        x = self.mid(self.conv_in(z))
        for lv in reversed(self.up):
            x = lv(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class CausalVAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)
        self.quant_conv = CausalConv3d(2 * cfg["z_channels"], 2 * cfg["embed_dim"], 1)
        self.post_quant_conv = CausalConv3d(cfg["embed_dim"], cfg["z_channels"], 1)

    def encode(self, x):
        return self.quant_conv(self.encoder(x))

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


def release_config(hidden, mult, blocks):
    """The release config.json (scripts/causalvae/release.json, spec 2)
    with the widths given."""
    n = len(mult)
    return {
        "_class_name": "CausalVAEModel", "_diffusers_version": "0.27.2",
        "attn_resolutions": [], "decoder_attention": "AttnBlock3D",
        "decoder_conv_in": "CausalConv3d", "decoder_conv_out": "CausalConv3d",
        "decoder_mid_resnet": "ResnetBlock3D", "decoder_resnet_blocks": ["ResnetBlock3D"] * n,
        "decoder_spatial_upsample": [""] + ["SpatialUpsample2x"] * (n - 1),
        "decoder_temporal_upsample": [""] * (n - 2) + ["TimeUpsample2x"] * 2,
        "double_z": True, "dropout": 0.0, "embed_dim": 4, "encoder_attention": "AttnBlock3D",
        "encoder_conv_in": "CausalConv3d", "encoder_conv_out": "CausalConv3d",
        "encoder_mid_resnet": "ResnetBlock3D", "encoder_resnet_blocks": ["ResnetBlock3D"] * n,
        "encoder_spatial_downsample": ["SpatialDownsample2x"] * (n - 1) + [""],
        "encoder_temporal_downsample": ["TimeDownsample2x"] * 2 + [""] * (n - 2),
        "hidden_size": hidden, "hidden_size_mult": mult,
        "loss_params": {"disc_start": 2001, "disc_weight": 0.5, "kl_weight": 1e-06,
                        "logvar_init": 0.0},
        "loss_type": "opensora.models.ae.videobase.losses.LPIPSWithDiscriminator",
        "lr": 1e-05, "num_res_blocks": blocks, "q_conv": "CausalConv3d", "resolution": 256,
        "z_channels": 4,
    }


def load(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    model = CausalVAE(cfg)
    state = load_file(os.path.join(folder, "diffusion_pytorch_model.safetensors"))
    state = {k: v.float() for k, v in state.items() if not k.startswith("loss.")}
    model.load_state_dict(state, strict=True)
    return model.eval()


def init(a):
    mult = [int(v) for v in a.mult.split(",")]
    cfg = release_config(a.hidden, mult, a.blocks)
    g = torch.Generator().manual_seed(a.seed)
    model = CausalVAE(cfg)
    state = {}
    for name, p in model.state_dict().items():
        if p.ndim == 5:
            fan_in = p.shape[1] * p.shape[2] * p.shape[3] * p.shape[4]
            v = torch.randn(p.shape, generator=g) / math.sqrt(fan_in)
        elif ".norm" in name and name.endswith(".weight"):
            v = 1 + 0.2 * torch.randn(p.shape, generator=g)
        elif ".norm" in name:
            v = 0.1 * torch.randn(p.shape, generator=g)
        else:
            v = 0.05 * torch.randn(p.shape, generator=g)
        state[name] = v.contiguous()
    os.makedirs(a.dir, exist_ok=True)
    save_file(state, os.path.join(a.dir, "diffusion_pytorch_model.safetensors"))
    with open(os.path.join(a.dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    print(f"{a.dir}: {sum(v.numel() for v in state.values())} parameters")


def video(a):
    g = torch.Generator().manual_seed(a.seed)
    v = torch.rand((1, 3, a.T, a.H, a.W), generator=g) * 2 - 1
    save_file({"video": v}, a.file)


def timed(fn, x):
    """fn(x), its wall and process CPU milliseconds"""
    t0, c0 = time.perf_counter(), time.process_time()
    y = fn(x)
    return y, (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("init")
    q.add_argument("dir")
    q.add_argument("--hidden", type=int, default=128)
    q.add_argument("--mult", default="1,2,4,4")
    q.add_argument("--blocks", type=int, default=2)
    q.add_argument("--seed", type=int, default=0)
    q = sub.add_parser("video")
    q.add_argument("file")
    for d in ("T", "H", "W"):
        q.add_argument(d, type=int)
    q.add_argument("--seed", type=int, default=1)
    for cmd in ("encode", "decode"):
        q = sub.add_parser(cmd)
        q.add_argument("dir")
        q.add_argument("input")
        q.add_argument("output")
        q.add_argument("-t", type=int, default=0)
    a = p.parse_args()
    if a.cmd == "init":
        return init(a)
    if a.cmd == "video":
        return video(a)
    if a.t > 0:
        torch.set_num_threads(a.t)
    model = load(a.dir)
    with torch.inference_mode():
        if a.cmd == "encode":
            moments, ms, cpu = timed(model.encode, load_file(a.input)["video"])
            e = moments.shape[1] // 2
            save_file({"moments": moments.contiguous(),
                       "latent": (moments[:, :e] * SCALE).contiguous()}, a.output)
        else:
            out, ms, cpu = timed(model.decode, load_file(a.input)["latent"] / SCALE)
            save_file({"video": out.contiguous()}, a.output)
    print(f"{a.cmd}_ms {ms:.1f} {cpu:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
