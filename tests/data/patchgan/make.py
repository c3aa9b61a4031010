#!/usr/bin/env python3
"""make.py -- expected values of the VAE trainer's PatchGAN discriminator
(spec/training.md 3.2) for tests/unit/test_patchgan.c.

Run from the repository root with the bench virtualenv:
    bench/.venv/bin/python tests/data/patchgan/make.py
The discriminator is written here from the spec's description
(NLayerDiscriminator(3, ndf, n_layers), BatchNorm2d in training mode).
ndf 4 and n_layers 3 keep both files under 200 KB (ndf 8 would take
~180 KB for the weights alone and as much again for their gradients).

weights.safetensors: the state dict (main.* names, num_batches_tracked
as I64) before the calls; random BatchNorm affine and running statistics
and larger-than-init conv weights so the logits cross the hinge's kinks.
expected.safetensors: inputs `real` and `fake` [3, 3, 32, 32], the logits
of D(real) then D(fake) (two train-mode calls, separate batch statistics),
g_loss = -mean(D(fake)), d_loss (hinge), the running statistics after
both calls (`main.N.running_mean`, ...), `grad_d.<param>` = d d_loss /
d param for every parameter and `grad_g.fake` = d g_loss / d fake."""
import os

import torch
from safetensors.torch import save_file
from torch import nn

IN, NDF, N_LAYERS, M, SIDE = 3, 4, 3, 3, 32


class NLayerDiscriminator(nn.Module):
    def __init__(self, in_ch, ndf, n_layers):
        super().__init__()
        layers = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        prev = ndf
        for n in range(1, n_layers + 1):
            width = ndf * min(2 ** n, 8)
            layers += [nn.Conv2d(prev, width, 4, 2 if n < n_layers else 1, 1, bias=False),
                       nn.BatchNorm2d(width, eps=1e-5, momentum=0.1), nn.LeakyReLU(0.2)]
            prev = width
        layers += [nn.Conv2d(prev, 1, 4, 1, 1)]
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    torch.manual_seed(20261205)
    d = NLayerDiscriminator(IN, NDF, N_LAYERS).train()
    with torch.no_grad():
        for m in d.main:
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0.0, 0.15)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1.0, 0.2)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(5)
    save_file({k: v.clone().contiguous() for k, v in d.state_dict().items()},
              os.path.join(here, "weights.safetensors"), metadata={"format": "pt"})

    real = torch.rand(M, IN, SIDE, SIDE) * 2 - 1
    fake = (torch.randn(M, IN, SIDE, SIDE) * 0.5).requires_grad_()
    logits_real = d(real)
    logits_fake = d(fake)
    g_loss = -logits_fake.mean()
    d_loss = 0.5 * (torch.relu(1 - logits_real).mean() + torch.relu(1 + logits_fake).mean())
    names = [k for k, _ in d.named_parameters()]
    params = [p for _, p in d.named_parameters()]
    grads = torch.autograd.grad(d_loss, params, retain_graph=True)
    grad_fake = torch.autograd.grad(g_loss, fake)[0]

    out = {"real": real, "fake": fake.detach(), "logits_real": logits_real.detach(),
           "logits_fake": logits_fake.detach(), "g_loss": g_loss.detach().reshape(1),
           "d_loss": d_loss.detach().reshape(1), "grad_g.fake": grad_fake}
    for k, v in d.state_dict().items():
        if "running" in k or "num_batches" in k:
            out[k] = v.clone()
    for k, g in zip(names, grads):
        out["grad_d." + k] = g
    save_file({k: v.contiguous() for k, v in out.items()},
              os.path.join(here, "expected.safetensors"))
    hinge = lambda t: (t.abs() < 1).float().mean().item()  # noqa: E731
    print("d_loss %.6f g_loss %.6f; logits inside (-1, 1): real %.2f fake %.2f"
          % (d_loss.item(), g_loss.item(), hinge(logits_real), hinge(logits_fake)))


if __name__ == "__main__":
    main()
