#!/usr/bin/env python3
"""make.py -- a tiny VGG16-shaped LPIPS and the perceptual loss it gives
(spec/training.md 3.2: taming's LPIPS, VGG16 trunk, spatial averages) for
tests/unit/test_lpips_loss.c and the VAE trainer's bats tests.

Run from the repository root with the bench virtualenv:
    bench/.venv/bin/python tests/data/lpips_vgg/make.py
Writes
  tiny.safetensors: torchvision VGG16 `features` keys
    features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.{weight,bias} with widths
    4,4 | 8,8 | 8,8,8 | 8,8,8 | 8,8,8 (He-scaled so activations stay O(1),
    small positive biases) and the heads lin{0..4}.model.1.weight
    [1, C_k, 1, 1] (non-negative, as the calibrated ones are). A few
    hundred positions of the first tap are all zero (every ReLU off):
    there sqrt's derivative is infinite, and PyTorch's ReLU backward
    drops the NaN that makes; the test checks that osp ends finite too;
  expected.safetensors: case a, frames [3, 3, 32, 32] (a.x, a.y = x plus
    noise, both in [-1, 1]), the loss a.loss [3], a cotangent a.r [3] and
    a.grad_y = d sum(loss * r) / dy; case b, [1, 3, 40, 24] frames (pools
    of odd sides, floored: 40 -> 20 -> 10 -> 5 -> 2, 24 -> 12 -> 6 -> 3 -> 1)
    with b.grad_x = d sum(loss * r) / dx instead.
The model below is written from the spec's math; it runs in float64 on
the float32-rounded weights and inputs."""
import os

import torch
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))

# (torchvision index, pool before, tapped) of VGG16's 13 convs
CONVS = [(0, False, False), (2, False, True),
         (5, True, False), (7, False, True),
         (10, True, False), (12, False, False), (14, False, True),
         (17, True, False), (19, False, False), (21, False, True),
         (24, True, False), (26, False, False), (28, False, True)]
WIDTHS = [4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]
SHIFT = [-0.030, -0.088, -0.188]
SCALE = [0.458, 0.448, 0.450]


def make_weights(g):
    w, cin, tap = {}, 3, 0
    for (index, _, tapped), cout in zip(CONVS, WIDTHS):
        std = (2.0 / (cin * 9)) ** 0.5
        w[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * std
        w[f"features.{index}.bias"] = 0.05 + 0.1 * torch.rand(cout, generator=g)
        if tapped:
            w[f"lin{tap}.model.1.weight"] = 0.1 + torch.rand(1, cout, 1, 1, generator=g)
            tap += 1
        cin = cout
    return {k: v.float() for k, v in w.items()}


def taps(w, x):
    shift = torch.tensor(SHIFT, dtype=x.dtype).view(1, 3, 1, 1)
    scale = torch.tensor(SCALE, dtype=x.dtype).view(1, 3, 1, 1)
    h, out = (x - shift) / scale, []
    for index, pool, tapped in CONVS:
        if pool:
            h = torch.nn.functional.max_pool2d(h, 2, 2)
        h = torch.nn.functional.conv2d(h, w[f"features.{index}.weight"],
                                       w[f"features.{index}.bias"], padding=1).relu()
        if tapped:
            out.append(h)
    return out


def unit(f):
    return f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)


def dead_positions(w, x):
    return sum(int((f.pow(2).sum(1) == 0).sum()) for f in taps(w, x))


def loss(w, x, y):
    total = 0
    for k, (fx, fy) in enumerate(zip(taps(w, x), taps(w, y))):
        d = (unit(fx) - unit(fy)).pow(2)
        total = total + torch.nn.functional.conv2d(d, w[f"lin{k}.model.1.weight"]).mean((1, 2, 3))
    return total


def frames(g, n, h, wd):
    x = (torch.rand(n, 3, h, wd, generator=g) * 1.6 - 0.8).float()
    y = (x + 0.15 * torch.randn(n, 3, h, wd, generator=g)).clamp(-1, 1).float()
    return x, y


def case(name, w64, g, n, h, wd, grad_of):
    x, y = frames(g, n, h, wd)
    r = (torch.rand(n, generator=g) + 0.5).float()
    xd, yd = x.double().requires_grad_(), y.double().requires_grad_()
    value = loss(w64, xd, yd)
    (value * r.double()).sum().backward()
    grad = xd.grad if grad_of == "x" else yd.grad
    print(f"{name}: loss {value.detach().numpy()}, all-zero tap positions "
          f"{dead_positions(w64, x.double()) + dead_positions(w64, y.double())}")
    return {f"{name}.x": x, f"{name}.y": y, f"{name}.loss": value.detach(), f"{name}.r": r,
            f"{name}.grad_{grad_of}": grad}


def main():
    g = torch.Generator().manual_seed(20261205)
    w = make_weights(g)
    w64 = {k: v.double() for k, v in w.items()}
    out = case("a", w64, g, 3, 32, 32, "y")
    out.update(case("b", w64, g, 1, 40, 24, "x"))
    save_file(w, os.path.join(here, "tiny.safetensors"))
    save_file({k: v.contiguous().float() for k, v in out.items()},
              os.path.join(here, "expected.safetensors"))


if __name__ == "__main__":
    main()
