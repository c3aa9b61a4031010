#!/usr/bin/env python3
"""make.py -- two whole batches of the CausalVideoVAE trainer
(spec/training.md 3.2) in PyTorch, for tests/unit/test_vae_train.c.

Run from the repository root with the bench virtualenv:
    bench/.venv/bin/python tests/data/vae_train/make.py
The models: the fixture VAE (../shared/fixtures/vae/model) in
bench/torch_vae.py, the tiny VGG16 LPIPS of tests/data/lpips_vgg
(tiny.safetensors and the loss written in its make.py), and the
NLayerDiscriminator of tests/data/patchgan/make.py with ndf 4, 3 layers
and fixed random weights (disc.safetensors, main.* names; random
BatchNorm affine and running statistics). Each batch k = 0, 1 runs, as
the spec's manual optimisation does:
  1. L_G = nll + kw kl + d_weight f g_loss, f = [2k >= disc_start],
     d_weight from autograd.grad against decoder.conv_out.conv.weight;
     backward; clip_grad_norm_(VAE, 1); Adam step (betas 0.5, 0.9);
  2. D(X), D(Xr) in train mode (second and third D calls of the batch),
     L_D = f' 0.5 (mean relu(1 - D(X)) + mean relu(1 + D(Xr))),
     f' = [2k + 1 >= disc_start]; D's grads zeroed; backward;
     clip_grad_norm_(D, 1); Adam step.
disc_start 1: batch 0 steps D's optimiser on L_D but keeps the
adversarial term out of L_G; batch 1 has both.

Two cases: a with the spec's Adam eps 1e-8, b with eps 1e-4 (Adam's
first step turns float noise in near-zero gradients into +-lr moves; a
larger eps keeps that out, see test_vae_train.c). The same clip x is the
batch both times, with two draws of the posterior noise.

The reference runs in float64 on the float32 weights and inputs (the
truth the test measures osp's float32 against); the same run in float32
is printed beside it: the float noise a float32 PyTorch shows.
expected.safetensors: inputs x [1, 3, 5, 32, 32], eps0, eps1
[1, 4, 2, 4, 4]; per case c and batch k c.b{k}.{nll, kl, g_loss,
d_weight, total, disc_loss, logits_real, logits_fake, grad_norm,
disc_grad_norm}; after batch 1, c.vae.<name> for a few VAE parameters and
c.disc.<name> for every discriminator tensor (running statistics and
num_batches_tracked too)."""
import importlib.util
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from torch import nn

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(os.path.dirname(here)))
sys.path.insert(0, os.path.join(root, "bench"))
import torch_vae  # noqa: E402

LR, KL_WEIGHT, PERCEPTUAL_WEIGHT, DISC_WEIGHT, MAX_NORM, DISC_START = 1e-3, 1e-6, 1.0, 0.5, 1.0, 1
NDF, N_LAYERS = 4, 3
# a: the spec's Adam eps; b: a larger one that keeps Adam's first step
# from amplifying float noise (see test_vae_train.c)
CASES = {"a": 1e-8, "b": 1e-4}
CHECKED = ["encoder.conv_in.conv.weight", "decoder.conv_out.conv.weight", "quant_conv.conv.bias",
           "decoder.norm_out.weight"]
TERMS = ["nll", "kl", "g_loss", "d_weight", "total", "disc_loss", "logits_real", "logits_fake",
         "grad_norm", "disc_grad_norm"]


def sibling(name):
    """tests/data/<name>/make.py as a module (its main() does not run)."""
    spec = importlib.util.spec_from_file_location(name + "_make",
                                                  os.path.join(root, "tests", "data", name,
                                                               "make.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


patchgan, lpips_vgg = sibling("patchgan"), sibling("lpips_vgg")


def frames(v):
    b, c, f, h, w = v.shape
    return v.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)


def make_disc(g):
    """The discriminator's starting state dict (float32)."""
    d = patchgan.NLayerDiscriminator(3, NDF, N_LAYERS)
    with torch.no_grad():
        for m in d.main:
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.1)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(3)
    return {k: v.clone().contiguous() for k, v in d.state_dict().items()}


def run(dtype, adam_eps, disc_state, lpips_w, xs, epss):
    """Two batches in `dtype`: the per-batch terms and the final models."""
    vae = torch_vae.load(os.path.join(root, "..", "shared", "fixtures", "vae", "model"))
    vae = vae.to(dtype)
    disc = patchgan.NLayerDiscriminator(3, NDF, N_LAYERS)
    disc.load_state_dict(disc_state)
    disc = disc.to(dtype).train()
    w = {k: v.to(dtype) for k, v in lpips_w.items()}
    opt_ae = torch.optim.Adam(vae.parameters(), lr=LR, betas=(0.5, 0.9), eps=adam_eps,
                              weight_decay=0.0)
    opt_d = torch.optim.Adam(disc.parameters(), lr=LR, betas=(0.5, 0.9), eps=adam_eps,
                             weight_decay=0.0)
    last = dict(vae.named_parameters())["decoder.conv_out.conv.weight"]
    terms = []
    for k, (x, eps) in enumerate(zip(xs, epss)):
        x, eps = x.to(dtype), eps.to(dtype)
        t = {}
        moments = vae.encode(x)
        mean, logvar = moments.chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)
        xr = vae.decode(mean + torch.exp(0.5 * logvar) * eps)
        X, Xr = frames(x), frames(xr)
        m = X.shape[0]
        p = lpips_vgg.loss(w, X.contiguous(), Xr.contiguous()).reshape(m, 1, 1, 1)
        nll_loss = ((X - Xr).abs() + PERCEPTUAL_WEIGHT * p).sum() / m
        kl_loss = 0.5 * (mean ** 2 + torch.exp(logvar) - 1.0 - logvar).sum() / x.shape[0]
        g_loss = -disc(Xr).mean()  # D's first call of the batch
        g_nll = torch.autograd.grad(nll_loss, last, retain_graph=True)[0]
        g_adv = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
        d_weight = DISC_WEIGHT * torch.clamp(g_nll.norm() / (g_adv.norm() + 1e-4), 0.0,
                                             1e4).detach()
        f = 1.0 if 2 * k >= DISC_START else 0.0
        total = nll_loss + KL_WEIGHT * kl_loss + d_weight * f * g_loss
        opt_ae.zero_grad()
        total.backward()
        t["grad_norm"] = torch.nn.utils.clip_grad_norm_(vae.parameters(), MAX_NORM)
        opt_ae.step()

        fd = 1.0 if 2 * k + 1 >= DISC_START else 0.0
        logits_real = disc(X.detach())
        logits_fake = disc(Xr.detach())
        d_loss = fd * 0.5 * (torch.relu(1 - logits_real).mean() +
                             torch.relu(1 + logits_fake).mean())
        opt_d.zero_grad()
        d_loss.backward()
        t["disc_grad_norm"] = torch.nn.utils.clip_grad_norm_(disc.parameters(), MAX_NORM)
        opt_d.step()
        t.update(nll=nll_loss, kl=kl_loss, g_loss=g_loss, d_weight=d_weight, total=total,
                 disc_loss=d_loss, logits_real=logits_real.mean(),
                 logits_fake=logits_fake.mean())
        terms.append({n: float(v.detach()) for n, v in t.items()})
    params = dict(vae.named_parameters())
    return terms, {n: params[n].detach() for n in CHECKED}, disc.state_dict()


def main():
    g = torch.Generator().manual_seed(20261206)
    disc_state = make_disc(g)
    lpips_w = load_file(os.path.join(root, "tests", "data", "lpips_vgg", "tiny.safetensors"))
    x = torch.rand(1, 3, 5, 32, 32, generator=g) * 2 - 1
    epss = [torch.randn(1, 4, 2, 4, 4, generator=g) for _ in range(2)]
    out = {"x": x, "eps0": epss[0], "eps1": epss[1]}
    for case, adam_eps in CASES.items():
        print(f"case {case}: Adam eps {adam_eps:g}")
        terms, vae_after, disc_after = run(torch.float64, adam_eps, disc_state, lpips_w,
                                           [x, x], epss)
        terms32, vae32, disc32 = run(torch.float32, adam_eps, disc_state, lpips_w, [x, x], epss)
        for k in range(2):
            for n in TERMS:
                out[f"{case}.b{k}.{n}"] = torch.tensor([terms[k][n]])
            print(f"  batch {k}: " + ", ".join(
                f"{n} {terms[k][n]:.9g} (f32 {rel(terms32[k][n], terms[k][n]):.1e})"
                for n in TERMS))
        for n, v in vae_after.items():
            out[f"{case}.vae.{n}"] = v
        for n, v in disc_after.items():
            out[f"{case}.disc.{n}"] = v
        for after, after32 in ((vae_after, vae32), (disc_after, disc32)):
            for n, v in after.items():
                if v.is_floating_point():
                    err = (v - after32[n].double()).abs()
                    print(f"  {n}: float32 PyTorch off by {err.max().item() / LR:.3f} lr at "
                          f"worst, {int((err > 0.02 * LR).sum())} of {err.numel()} by > 0.02 lr")
    save_file({k: (v.float() if v.is_floating_point() else v).contiguous()
               for k, v in out.items()}, os.path.join(here, "expected.safetensors"))
    save_file(disc_state, os.path.join(here, "disc.safetensors"), metadata={"format": "pt"})


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


if __name__ == "__main__":
    main()
