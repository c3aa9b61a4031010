#!/usr/bin/env python3
"""latte_torch.py — the PyTorch (CPU) reference for bench/latte: LatteT2V
written from spec/latte_t2v.md (our own translation of the math, laid out
as the Open-Sora-Plan v1.0.0 forward runs it: the projected caption
repeated for every frame, per-frame cross-attention keys and values, the
timestep modulation repeated per frame and per token, SDPA attention).

  make DIR [--layers 4 --hidden 384 --heads 6 --frames 5 --size 16
            --caption 4096 --text 120 --batch 2]
      writes DIR/model/{config.json, diffusion_pytorch_model.safetensors}
      (random weights, reference key names) and DIR/input.safetensors
      (hidden_states, timestep, encoder_hidden_states)
  time DIR [-t THREADS] [-r REPS]
      loads DIR/model, one warm-up and REPS timed forwards of the input;
      prints "latte<TAB>shape<TAB>median ms<TAB>GFLOP/s<TAB>peak RSS MiB"
      and writes the output to DIR/torch_out.safetensors
  compare DIR [--tol 1e-4]
      max |osp - torch| / max(1, max |torch|) of DIR/osp_out.safetensors
      against DIR/torch_out.safetensors; exit 1 above the tolerance
  flops [--config FILE] [--frames F --size S --text L --batch B] [--check DIR]
      FLOPs of one forward (2 x multiply-adds of the linear layers, the
      patch convolution and the two attention products, as spec §7
      counts), for a config.json (default: XL/122 at 65x512x512, L = 120,
      batch 2 = one guided sampling step); --check DIR compares the formula
      with torch's own operator count of the DIR model's forward.

Runs in bench/.venv (torch, numpy, safetensors); run.sh drives it."""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
try:
    from safetensors.numpy import save_file
    from safetensors.torch import load_file
except ImportError:  # train_torch.py gpu needs neither (a GPU image without safetensors)
    save_file = load_file = None
from torch import nn
from torch.utils.checkpoint import checkpoint

XL122 = {"num_layers": 28, "num_attention_heads": 16, "attention_head_dim": 72,
         "in_channels": 4, "out_channels": 8, "patch_size": 2, "sample_size": [64, 64],
         "video_length": 17, "caption_channels": 4096, "norm_eps": 1e-6}


# ---- the fixed tables (spec §4.2, §4.5) ----

def sincos(dim, pos):
    """[len(pos), dim]: sin | cos of pos (float32 values) at 10000^(-k/(dim/2))."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.asarray(pos, dtype=np.float32).astype(np.float64)[:, None] * omega[None]
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def table_2d(dim, h, w, sample_size, p):
    base = sample_size // p
    interp = max(sample_size // 64, 1)
    gy = (np.arange(h, dtype=np.float32) / np.float32(h / base)) / np.float32(interp)
    gx = (np.arange(w, dtype=np.float32) / np.float32(w / base)) / np.float32(interp)
    ex = sincos(dim // 2, np.tile(gx, h))          # column of token r*w + c
    ey = sincos(dim // 2, np.repeat(gy, w))        # row
    return torch.from_numpy(np.concatenate([ex, ey], axis=1).astype(np.float32))


def table_1d(dim, video_length):
    s = max(video_length // 5, 1)
    pos = np.arange(video_length, dtype=np.float32) / np.float32(s)
    return torch.from_numpy(sincos(dim, pos).astype(np.float32))


def timestep_sinusoid(t, dim=256):
    """diffusers' get_timestep_embedding(t, 256, flip_sin_to_cos=True,
    downscale_freq_shift=0) in float32 (spec §4.3)."""
    half = dim // 2
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    args = t.float()[:, None] * torch.exp(exponent)[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


# ---- the network, under the reference's parameter names ----

class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, dim) for _ in range(3))
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x, ctx=None, bias=None):
        ctx = x if ctx is None else ctx
        b, hd = x.shape[0], x.shape[-1] // self.heads
        q = self.to_q(x).view(b, -1, self.heads, hd).transpose(1, 2)
        k = self.to_k(ctx).view(b, -1, self.heads, hd).transpose(1, 2)
        v = self.to_v(ctx).view(b, -1, self.heads, hd).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.to_out[0](o.transpose(1, 2).reshape(b, -1, self.heads * hd))


class GeluProj(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner)

    def forward(self, x):
        return gelu_tanh(self.proj(x))


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.ModuleList([GeluProj(dim, 4 * dim), nn.Identity(), nn.Linear(4 * dim, dim)])

    def forward(self, x):
        for layer in self.net:
            x = layer(x)
        return x


class Block(nn.Module):
    """PixArt-alpha block (spec §4.6, §4.7); t6 is [rows, 6D], one per row."""

    def __init__(self, dim, heads, eps, cross):
        super().__init__()
        self.eps = eps
        self.scale_shift_table = nn.Parameter(torch.zeros(6, dim))
        self.attn1 = Attention(dim, heads)
        self.attn2 = Attention(dim, heads) if cross else None
        self.ff = FeedForward(dim)

    def forward(self, x, t6, ctx=None):
        m = self.scale_shift_table[None] + t6.reshape(x.shape[0], 6, -1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = m.chunk(6, dim=1)
        n = F.layer_norm(x, x.shape[-1:], eps=self.eps) * (1 + scale_msa) + shift_msa
        x = x + gate_msa * self.attn1(n)
        if self.attn2 is not None:
            x = x + self.attn2(x, ctx)
        n = F.layer_norm(x, x.shape[-1:], eps=self.eps) * (1 + scale_mlp) + shift_mlp
        return x + gate_mlp * self.ff(n)


class Mlp2(nn.Module):
    def __init__(self, din, dout, act):
        super().__init__()
        self.linear_1, self.linear_2, self.act = nn.Linear(din, dout), nn.Linear(dout, dout), act

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


class Latte(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d = c["num_attention_heads"] * c["attention_head_dim"]
        p, heads, eps = c["patch_size"], c["num_attention_heads"], c["norm_eps"]
        self.d = d
        self.pos_embed = nn.Module()
        self.pos_embed.proj = nn.Conv2d(c["in_channels"], d, p, stride=p)
        self.adaln_single = nn.Module()
        self.adaln_single.emb = nn.Module()
        self.adaln_single.emb.timestep_embedder = Mlp2(256, d, F.silu)
        self.adaln_single.linear = nn.Linear(d, 6 * d)
        self.caption_projection = Mlp2(c["caption_channels"], d, gelu_tanh)
        self.caption_projection.register_buffer("y_embedding",
                                                torch.zeros(120, c["caption_channels"]))
        self.transformer_blocks = nn.ModuleList(
            Block(d, heads, eps, True) for _ in range(c["num_layers"]))
        self.temporal_transformer_blocks = nn.ModuleList(
            Block(d, heads, eps, False) for _ in range(c["num_layers"]))
        self.scale_shift_table = nn.Parameter(torch.zeros(2, d))
        self.proj_out = nn.Linear(d, p * p * c["out_channels"])
        self.register_buffer("temp_pos_embed", table_1d(d, c["video_length"]), persistent=False)
        self.checkpointing = False

    def forward(self, x, t, text):
        c, d, p = self.c, self.d, self.c["patch_size"]
        b, _, f, hh, ww = x.shape
        h, w = hh // p, ww // p
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * f, -1, hh, ww)
        tok = self.pos_embed.proj(frames).flatten(2).transpose(1, 2)
        tok = tok + table_2d(d, h, w, c["sample_size"][0], p).to(tok.device)[None]
        emb = self.adaln_single.emb.timestep_embedder(timestep_sinusoid(t))
        t6 = self.adaln_single.linear(F.silu(emb))
        ctx = self.caption_projection(text)
        ctx_f = ctx.repeat_interleave(f, dim=0)            # (b f) L D, as the reference
        t6_spatial = t6.repeat_interleave(f, dim=0)
        t6_temporal = t6.repeat_interleave(h * w, dim=0)
        # training with checkpointing (the reference's setting): each block
        # recomputed in backward
        run = (lambda blk, *a: checkpoint(blk, *a, use_reentrant=False)) \
            if self.checkpointing and self.training else (lambda blk, *a: blk(*a))
        for i, (sb, tb) in enumerate(zip(self.transformer_blocks,
                                         self.temporal_transformer_blocks)):
            tok = run(sb, tok, t6_spatial, ctx_f)
            tok = tok.reshape(b, f, h * w, d).transpose(1, 2).reshape(b * h * w, f, d)
            if i == 0:
                tok = tok + self.temp_pos_embed
            tok = run(tb, tok, t6_temporal)
            tok = tok.reshape(b, h * w, f, d).transpose(1, 2).reshape(b * f, h * w, d)
        table = self.scale_shift_table[None] + emb.repeat_interleave(f, dim=0)[:, None]
        shift, scale = table.chunk(2, dim=1)
        y = F.layer_norm(tok, (d,), eps=c["norm_eps"]) * (1 + scale) + shift
        y = self.proj_out(y).reshape(b, f, h, w, p, p, -1)
        return y.permute(0, 6, 1, 2, 4, 3, 5).reshape(b, -1, f, hh, ww)


# ---- FLOPs (spec §7) ----

def forward_flops(c, frames, size, text, batch):
    """2 x multiply-adds of one forward: blocks, cross-attention K/V per
    frame as the reference, patch embedding, caption projection, timestep
    MLP and final layer."""
    d = c["num_attention_heads"] * c["attention_head_dim"]
    p, lay = c["patch_size"], c["num_layers"]
    n = (size // p) ** 2
    m = frames * n
    per = (lay * (28 * m * d * d + 4 * frames * n * n * d + 4 * frames * text * d * d
                  + 4 * m * text * d + 24 * m * d * d + 4 * n * frames * frames * d)
           + 2 * m * d * c["in_channels"] * p * p              # patch embedding
           + 2 * text * d * (c["caption_channels"] + d)        # caption projection
           + 2 * (256 * d + d * d + 6 * d * d)                 # timestep MLP + adaln linear
           + 2 * m * d * p * p * c["out_channels"])            # proj_out
    return batch * per


# ---- subcommands ----

def cmd_make(a):
    cfg = dict(XL122, num_layers=a.layers, num_attention_heads=a.heads,
               attention_head_dim=a.hidden // a.heads, sample_size=[a.size, a.size],
               video_length=a.frames, caption_channels=a.caption)
    full = {"_class_name": "LatteT2V", "activation_fn": "gelu-approximate",
            "attention_bias": True, "cross_attention_dim": a.hidden,
            "norm_elementwise_affine": False, "norm_type": "ada_norm_single",
            "num_embeds_ada_norm": 1000, "patch_size_t": 1, **cfg}
    model = Latte(cfg)
    rng = np.random.default_rng(a.seed)
    weights = {}
    for name, t in model.state_dict().items():
        fan_in = int(np.prod(t.shape[1:])) if t.ndim > 1 else 1
        scale = 1 / math.sqrt(fan_in) if t.ndim > 1 else 0.05
        if name.endswith("scale_shift_table"):
            scale = 0.2
        weights[name] = (rng.standard_normal(t.shape) * scale).astype(np.float32)
    os.makedirs(os.path.join(a.dir, "model"), exist_ok=True)
    with open(os.path.join(a.dir, "model", "config.json"), "w") as f:
        json.dump(full, f, indent=2, sort_keys=True)
    save_file(weights, os.path.join(a.dir, "model", "diffusion_pytorch_model.safetensors"))
    pix = a.size
    save_file({
        "hidden_states": rng.standard_normal((a.batch, 4, a.frames, pix, pix)).astype(np.float32),
        "timestep": rng.integers(0, 1000, a.batch).astype(np.int64),
        "encoder_hidden_states": rng.standard_normal((a.batch, a.text, a.caption))
                                    .astype(np.float32) * 0.2,
    }, os.path.join(a.dir, "input.safetensors"))
    return 0


def load(directory):
    with open(os.path.join(directory, "model", "config.json")) as f:
        cfg = json.load(f)
    model = Latte(cfg).eval()
    sd = load_file(os.path.join(directory, "model", "diffusion_pytorch_model.safetensors"))
    model.load_state_dict(sd, strict=True)
    return model, cfg, load_file(os.path.join(directory, "input.safetensors"))


def cmd_time(a):
    if a.t > 0:
        torch.set_num_threads(a.t)
    model, cfg, inp = load(a.dir)
    x, t, text = inp["hidden_states"], inp["timestep"], inp["encoder_hidden_states"]
    times = []
    with torch.inference_mode():
        out = model(x, t, text)                      # warm-up
        for _ in range(a.r):
            start = time.perf_counter_ns()
            model(x, t, text)
            times.append((time.perf_counter_ns() - start) / 1e6)
    from safetensors.torch import save_file as save_torch
    save_torch({"prediction": out.contiguous()}, os.path.join(a.dir, "torch_out.safetensors"))
    ms = statistics.median(times)
    flops = forward_flops(cfg, x.shape[2], x.shape[3], text.shape[1], x.shape[0])
    shape = (f"{cfg['num_layers']}+{cfg['num_layers']} blocks D{model.d} "
             f"x{list(x.shape)} L{text.shape[1]}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"latte\t{shape}\t{ms:.3f}\t{flops / (ms * 1e6):.1f}\t{rss:.1f}")
    return 0


def cmd_compare(a):
    ref = load_file(os.path.join(a.dir, "torch_out.safetensors"))["prediction"]
    ours = load_file(os.path.join(a.dir, "osp_out.safetensors"))["prediction"]
    if ours.shape != ref.shape:
        print(f"shape {list(ours.shape)} != {list(ref.shape)}")
        return 1
    err = (ours - ref).abs().max().item() / max(1.0, ref.abs().max().item())
    print(f"max |osp - torch| / max(1, max|torch|) = {err:.2e} (max |torch| "
          f"{ref.abs().max().item():.3g}, tolerance {a.tol:g})")
    return 0 if err <= a.tol else 1


def cmd_flops(a):
    cfg = XL122
    if a.config:
        with open(a.config) as f:
            cfg = dict(XL122, **{k: v for k, v in json.load(f).items() if not k.startswith("_")})
    frames = a.frames or cfg["video_length"]
    size = a.size or cfg["sample_size"][0]
    n = forward_flops(cfg, frames, size, a.text, a.batch)
    print(f"formula: {n / 1e12:.3f} TFLOP per forward (batch {a.batch}, {frames}x{size}x{size} "
          f"latent, L {a.text})")
    if a.check:
        from torch.utils.flop_counter import FlopCounterMode
        model, cfg2, inp = load(a.check)
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            model(inp["hidden_states"], inp["timestep"], inp["encoder_hidden_states"])
        x, text = inp["hidden_states"], inp["encoder_hidden_states"]
        want = forward_flops(cfg2, x.shape[2], x.shape[3], text.shape[1], x.shape[0])
        got = counter.get_total_flops()
        print(f"check on {a.check}: torch counts {got}, formula {want}: "
              f"{'match' if got == want else 'MISMATCH'}")
        return 0 if got == want else 1
    return 0


def main():
    p = argparse.ArgumentParser(description="LatteT2V reference forward in PyTorch (CPU)")
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    for name, v in (("layers", 4), ("hidden", 384), ("heads", 6), ("frames", 5), ("size", 16),
                    ("caption", 4096), ("text", 120), ("batch", 2), ("seed", 0)):
        m.add_argument(f"--{name}", type=int, default=v)
    t = sub.add_parser("time")
    t.add_argument("dir")
    t.add_argument("-t", type=int, default=0)
    t.add_argument("-r", type=int, default=5)
    c = sub.add_parser("compare")
    c.add_argument("dir")
    c.add_argument("--tol", type=float, default=1e-4)
    f = sub.add_parser("flops")
    f.add_argument("--config")
    f.add_argument("--frames", type=int, default=0)
    f.add_argument("--size", type=int, default=0)
    f.add_argument("--text", type=int, default=120)
    f.add_argument("--batch", type=int, default=2)
    f.add_argument("--check")
    a = p.parse_args()
    return {"make": cmd_make, "time": cmd_time, "compare": cmd_compare, "flops": cmd_flops}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
