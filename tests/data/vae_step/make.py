#!/usr/bin/env python3
"""make.py -- expected values of one CausalVideoVAE generator step
(spec/training.md 3.2, optimizer_idx 0) for tests/unit/test_vae_step.c.

Run from the repository root with the bench virtualenv:
    bench/.venv/bin/python tests/data/vae_step/make.py
It loads the fixture VAE (../shared/fixtures/vae/model) into the PyTorch
CausalVAE of bench/torch_vae.py (written from spec/causalvae.md; matches
every VAE fixture), draws x, the posterior noise eps and two stand-ins
that osp's test computes the same way -- a perceptual term P = mean over
(c, h, w) of (X - Xr)^2 per frame and an adversarial term
g_loss = -mean(Xr * C) for a fixed random C (a linear "discriminator") --
and writes expected.safetensors: the inputs, the loss terms, d_weight
(autograd.grad of each term against decoder.conv_out.conv.weight) and the
gradients of L_G for a few parameters, with the adversarial term on."""
import os
import sys

import torch
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(os.path.dirname(here)))
sys.path.insert(0, os.path.join(root, "bench"))
import torch_vae  # noqa: E402

KL_WEIGHT, PERCEPTUAL_WEIGHT, DISC_WEIGHT = 1e-6, 0.7, 0.5
CHECKED = ["encoder.conv_in.conv.weight", "encoder.norm_out.weight", "quant_conv.conv.bias",
           "decoder.conv_out.conv.weight", "decoder.norm_out.bias",
           "decoder.mid.block_1.conv1.conv.weight"]


def frames(v):
    b, c, f, h, w = v.shape
    return v.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)


def main():
    model = torch_vae.load(os.path.join(root, "..", "shared", "fixtures", "vae", "model"))
    params = dict(model.named_parameters())
    torch.manual_seed(20261204)
    x = torch.rand(2, 3, 5, 16, 16) * 2 - 1
    eps = torch.randn(2, 4, 2, 2, 2)
    c = torch.randn(10, 3, 16, 16)

    moments = model.encode(x)
    mean, logvar = moments.chunk(2, dim=1)
    logvar = logvar.clamp(-30.0, 20.0)
    xr = model.decode(mean + torch.exp(0.5 * logvar) * eps)
    X, Xr = frames(x), frames(xr)
    m = X.shape[0]
    p = ((X - Xr) ** 2).mean(dim=(1, 2, 3)).reshape(m, 1, 1, 1)
    nll_loss = ((X - Xr).abs() + PERCEPTUAL_WEIGHT * p).sum() / m
    kl_loss = 0.5 * (mean ** 2 + torch.exp(logvar) - 1.0 - logvar).sum() / x.shape[0]
    g_loss = -(Xr * c).mean()
    w = params["decoder.conv_out.conv.weight"]
    g_nll = torch.autograd.grad(nll_loss, w, retain_graph=True)[0]
    g_adv = torch.autograd.grad(g_loss, w, retain_graph=True)[0]
    d_weight = DISC_WEIGHT * torch.clamp(g_nll.norm() / (g_adv.norm() + 1e-4), 0.0, 1e4).detach()
    total = nll_loss + KL_WEIGHT * kl_loss + d_weight * g_loss
    model.zero_grad()
    total.backward()
    out = {"x": x, "eps": eps, "c": c,
           "nll_loss": nll_loss.detach().reshape(1), "kl_loss": kl_loss.detach().reshape(1),
           "g_loss": g_loss.detach().reshape(1), "d_weight": d_weight.reshape(1),
           "total": total.detach().reshape(1)}
    for name in CHECKED:
        out["grad." + name] = params[name].grad.detach().clone()
    save_file({k: v.contiguous().float() for k, v in out.items()},
              os.path.join(here, "expected.safetensors"))
    print({k: float(v[0]) for k, v in out.items() if v.numel() == 1})


if __name__ == "__main__":
    main()
