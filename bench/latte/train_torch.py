#!/usr/bin/env python3
"""train_torch.py — the PyTorch (CPU) reference training step for
bench/latte: latte_torch.py's LatteT2V, the hybrid diffusion loss of
spec/training.md §2.2 (MSE on the noise + the VLB term of the learned
variance with the noise prediction detached; decoder NLL at t = 0),
backward, torch.optim.AdamW. Our own translation of the spec's math.

  make DIR      writes DIR/train_input.safetensors (x0, noise, t, text) next
                to the model latte_torch.py `make` wrote
  time DIR [-t THREADS] [-r STEPS]
                one warm-up step and STEPS timed steps (forward, loss,
                backward, AdamW); prints "latte-train<TAB>shape<TAB>median
                ms<TAB>losses of steps 1 and 2<TAB>peak RSS MiB"
  gpu CONFIG --frames F --size S --batch B [--text L] [-r STEPS]
                the same step on CUDA as the reference trains (bf16
                autocast, float32 master weights and AdamW, each block
                checkpointed) with random weights and inputs; prints a
                markdown row for bench/gpu.sh: ms, samples/s, peak memory

Runs in bench/.venv (CPU) or the GPU image's python (gpu); train_run.sh
drives `time` against train_bench.c, bench/gpu.sh drives `gpu`."""
import argparse
import math
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
try:
    from safetensors.numpy import save_file
    from safetensors.torch import load_file
except ImportError:  # train_torch.py gpu needs neither (a GPU image without safetensors)
    save_file = load_file = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import latte_torch  # noqa: E402


def schedule():
    b0 = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    ac0 = np.cumprod(1 - b0)
    betas = 1 - ac0 / np.append(1.0, ac0[:-1])
    alphas = 1 - betas
    ac = np.cumprod(alphas)
    acp = np.append(1.0, ac[:-1])
    pv = betas * (1 - acp) / (1 - ac)
    return {
        "c1": np.sqrt(ac), "c2": np.sqrt(1 - ac), "r1": np.sqrt(1 / ac),
        "r2": np.sqrt(1 / ac - 1), "plvc": np.log(np.append(pv[1], pv[1:])),
        "k1": betas * np.sqrt(acp) / (1 - ac), "k2": (1 - acp) * np.sqrt(alphas) / (1 - ac),
        "lb": np.log(betas),
    }


def pick(tab, t, ndim):
    """float64 table entries at t, cast to float32, broadcastable, on t's device."""
    picked = torch.from_numpy(tab[t.cpu().numpy()]).float().to(t.device)
    return picked.reshape(-1, *([1] * (ndim - 1)))


def cdf(z):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z ** 3)))


def hybrid_loss(model, s, x0, noise, t, text):
    n = x0.ndim
    dims = tuple(range(1, n))
    x_t = pick(s["c1"], t, n) * x0 + pick(s["c2"], t, n) * noise
    out = model(x_t, t, text)
    c = x0.shape[1]
    eps, v = out[:, :c], out[:, c:]
    mse = ((noise - eps) ** 2).mean(dim=dims)
    k1, k2 = pick(s["k1"], t, n), pick(s["k2"], t, n)
    l1 = pick(s["plvc"], t, n)
    mu1 = k1 * x0 + k2 * x_t
    x0_hat = pick(s["r1"], t, n) * x_t - pick(s["r2"], t, n) * eps.detach()
    mu2 = k1 * x0_hat + k2 * x_t
    frac = (v + 1) / 2
    l2 = frac * pick(s["lb"], t, n) + (1 - frac) * l1
    kl = 0.5 * (-1.0 + l2 - l1 + torch.exp(l1 - l2) + (mu1 - mu2) ** 2 * torch.exp(-l2))
    kl = kl.mean(dim=dims) / math.log(2.0)
    inv = torch.exp(-0.5 * l2)
    d = x0 - mu2
    cp, cm = cdf(inv * (d + 1 / 255)), cdf(inv * (d - 1 / 255))
    logp = torch.where(x0 < -0.999, torch.log(cp.clamp(min=1e-12)),
                       torch.where(x0 > 0.999, torch.log((1 - cm).clamp(min=1e-12)),
                                   torch.log((cp - cm).clamp(min=1e-12))))
    nll = (-logp).mean(dim=dims) / math.log(2.0)
    vb = torch.where(t == 0, nll, kl)
    return (mse + vb).mean()


def cmd_make(a):
    inp = load_file(os.path.join(a.dir, "input.safetensors"))
    x = inp["hidden_states"].numpy()
    rng = np.random.default_rng(a.seed)
    t = rng.integers(0, 1000, x.shape[0]).astype(np.int64)
    t[0] = 0 if x.shape[0] > 1 else t[0]  # one sample on the decoder-NLL branch
    save_file({
        "x0": (0.5 * x).astype(np.float32),
        "noise": rng.standard_normal(x.shape).astype(np.float32),
        "t": t,
        "text": inp["encoder_hidden_states"].numpy(),
    }, os.path.join(a.dir, "train_input.safetensors"))
    return 0


def cmd_time(a):
    if a.t > 0:
        torch.set_num_threads(a.t)
    model, cfg, _ = latte_torch.load(a.dir)
    model.train()
    inp = load_file(os.path.join(a.dir, "train_input.safetensors"))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
    s = schedule()
    times, losses = [], []
    for i in range(a.r + 1):
        start = time.perf_counter_ns()
        opt.zero_grad(set_to_none=True)
        loss = hybrid_loss(model, s, inp["x0"], inp["noise"], inp["t"], inp["text"])
        loss.backward()
        opt.step()
        if i < 2:
            losses.append(loss.item())
        if i > 0:
            times.append((time.perf_counter_ns() - start) / 1e6)
    x = inp["x0"]
    shape = (f"{cfg['num_layers']}+{cfg['num_layers']} blocks D{model.d} "
             f"x{list(x.shape)} L{inp['text'].shape[1]}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"latte-train\t{shape}\t{statistics.median(times):.3f}\t"
          f"{losses[0]:.9g} {losses[1]:.9g}\t{rss:.1f}")
    return 0


def cmd_gpu(a):
    import json
    with open(a.config) as f:
        cfg = json.load(f)
    cfg["video_length"], cfg["sample_size"] = a.frames, [a.size, a.size]
    torch.manual_seed(0)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model = latte_torch.Latte(cfg).to(dev).train()
    for prm in model.parameters():  # the reference's zero-initialised tables would hide nothing here
        torch.nn.init.normal_(prm, std=0.02)
    model.checkpointing = True
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
    s = schedule()
    shape = (a.batch, cfg["in_channels"], a.frames, a.size, a.size)
    x0, noise = torch.randn(shape, device=dev) * 0.5, torch.randn(shape, device=dev)
    t = torch.randint(0, 1000, (a.batch,), device=dev)
    text = torch.randn(a.batch, a.text, cfg["caption_channels"], device=dev) * 0.2
    times = []
    for i in range(a.r + 1):
        sync()
        start = time.perf_counter_ns()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            loss = hybrid_loss(model, s, x0, noise, t, text)
        loss.backward()
        opt.step()
        sync()
        if i > 0:
            times.append((time.perf_counter_ns() - start) / 1e6)
    ms = statistics.median(times)
    mem = torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else float("nan")
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    print(f"| torch: Latte {cfg['num_layers']}x2 blocks D{d} training step, bf16 autocast, "
          f"checkpointing | "
          f"x [{a.batch},{cfg['in_channels']},{a.frames},{a.size},{a.size}], text {a.text} | "
          f"{ms:.1f} | | {a.batch / (ms / 1e3):.2f} samples/s, peak {mem:.1f} GiB |", flush=True)
    return 0


def main():
    p = argparse.ArgumentParser(description="LatteT2V reference training step (CPU, or CUDA)")
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    m.add_argument("--seed", type=int, default=1)
    t = sub.add_parser("time")
    t.add_argument("dir")
    t.add_argument("-t", type=int, default=0)
    t.add_argument("-r", type=int, default=3)
    g = sub.add_parser("gpu")
    g.add_argument("config")
    g.add_argument("--frames", type=int, required=True)
    g.add_argument("--size", type=int, required=True)
    g.add_argument("--batch", type=int, required=True)
    g.add_argument("--text", type=int, default=300)
    g.add_argument("-r", type=int, default=3)
    g.add_argument("--device", default="cuda", help="cpu: a quick check of the script")
    a = p.parse_args()
    return {"make": cmd_make, "time": cmd_time, "gpu": cmd_gpu}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
