#!/usr/bin/env python3
"""eval_reference.py — the Python side of eval_bench.sh: Open-Sora-Plan
v1.0.0's metric functions (opensora/eval/cal_psnr.py, cal_ssim.py,
cal_lpips.py with the lpips 0.1.4 package), re-stated here from
../shared/spec/eval.md with the libraries they use (numpy; torch for LPIPS),
with the same loops and batch shapes, so that timing them is timing the
reference.

  eval_reference.py data DIR LIN     writes the inputs under DIR
  eval_reference.py psnr-ssim DIR    times PSNR + SSIM over DIR's pairs
  eval_reference.py lpips DIR        times LPIPS over DIR's LPIPS clips
  eval_reference.py compare OSP.json REF.json METRIC...

Inputs (`data`): seeded random 17x256x256 RGB clips as u8 `video` streams
[B, 3, T, H, W] (osp-tensor(5)) that osp-eval reads: clips.msgpack /
clips-rec.msgpack (10 videos; pairs.tsv names that pair 10 times: 100
pairs), lpips.msgpack / lpips-rec.msgpack (2 videos), and alex.safetensors:
an AlexNet trunk of the real widths under torchvision's names with
PyTorch's default random init, plus the REAL lpips v0.1 lin layers (LIN,
the fixture file). The reconstruction is the clip plus Gaussian noise
(sigma 6 grey levels), mixed 1:4 with its 3x3 box blur on every other frame.

`psnr-ssim` and `lpips` print one JSON object: the milliseconds (wall
clock, and CPU time of all threads) of the metric calls alone (decoding and data loading left out, which favours the
reference) and the values in osp-eval's JSON layout: per-frame means over
all videos and the final score as eval_common_metric prints it (batches of
2 videos). cv2 is not installed here: its filter2D (OpenCV correlation with
the 11x11 window) is stood in for by scipy's separable correlate1d over
rows then columns, which computes the same values and costs no more.
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np
import scipy.ndimage
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

FRAMES, SIZE = 17, 256
PSNR_VIDEOS, PSNR_REPEATS, LPIPS_VIDEOS, BATCH = 10, 10, 2, 2


# ---- inputs ----

def header(ndim):
    """The stream's bytes before the shape's values: the `video` map's keys,
    version, name and dtype, and the shape array's head."""
    def s(text):
        return bytes([0xA0 | len(text)]) + text.encode()
    return (b"\x85" + s("osp") + b"\x01" + s("name") + s("video") + s("dtype") + s("u8")
            + s("shape") + bytes([0x90 | ndim]))


def msgpack_video(path, u8):
    """One `video` tensor [B, 3, T, H, W] u8 as an osp tensor stream."""
    data = np.ascontiguousarray(u8).tobytes()
    with open(path, "wb") as f:
        f.write(header(u8.ndim) + b"".join(b"\xce" + struct.pack(">I", d) for d in u8.shape)
                + bytes([0xA4]) + b"data" + b"\xc6" + struct.pack(">I", len(data)) + data)


def make_clips(rng, videos):
    """Real and reconstructed u8 clips [B, 3, T, H, W]."""
    real = rng.integers(0, 256, (videos, 3, FRAMES, SIZE, SIZE), dtype=np.uint8)
    rec = real.astype(np.float32) + rng.normal(0, 6, real.shape).astype(np.float32)
    blur = scipy.ndimage.uniform_filter(rec[:, :, ::2], (1, 1, 1, 3, 3))
    rec[:, :, ::2] = 0.8 * rec[:, :, ::2] + 0.2 * blur
    return real, np.clip(np.rint(rec), 0, 255).astype(np.uint8)


def alexnet_lpips_weights(path, lin_path):
    """Real-width AlexNet features (torchvision names, default init) + lin layers."""
    torch.manual_seed(0)
    widths, kernels = [3, 64, 192, 384, 256, 256], [11, 5, 3, 3, 3]
    tensors = {}
    for k, index in enumerate([0, 3, 6, 8, 10]):
        conv = torch.nn.Conv2d(widths[k], widths[k + 1], kernels[k])
        tensors[f"features.{index}.weight"] = conv.weight.detach().contiguous()
        tensors[f"features.{index}.bias"] = conv.bias.detach().contiguous()
    tensors.update(load_file(lin_path))
    save_file(tensors, path)


def data(out, lin_path):
    rng = np.random.default_rng(2024)
    real, rec = make_clips(rng, PSNR_VIDEOS)
    msgpack_video(f"{out}/clips.msgpack", real)
    msgpack_video(f"{out}/clips-rec.msgpack", rec)
    with open(f"{out}/pairs.tsv", "w") as f:
        f.write(f"{out}/clips.msgpack\t{out}/clips-rec.msgpack\n" * PSNR_REPEATS)
    real, rec = make_clips(rng, LPIPS_VIDEOS)
    msgpack_video(f"{out}/lpips.msgpack", real)
    msgpack_video(f"{out}/lpips-rec.msgpack", rec)
    alexnet_lpips_weights(f"{out}/alex.safetensors", lin_path)


def load_videos(path):
    """A stream written by msgpack_video as float32 [B, T, 3, H, W] in [0, 1],
    as eval_common_metric hands videos to the metrics (x / 255 in float32)."""
    with open(path, "rb") as f:
        raw = f.read()
    head = len(header(5))
    shape = struct.unpack(">5I", b"".join(raw[head + 5 * i + 1:head + 5 * i + 5] for i in range(5)))
    data = np.frombuffer(raw, np.uint8, offset=len(raw) - math.prod(shape)).reshape(shape)
    return torch.from_numpy(data.transpose(0, 2, 1, 3, 4).astype(np.float32) / np.float32(255))


# ---- the reference's metrics (cal_psnr.py, cal_ssim.py, cal_lpips.py) ----

def img_psnr(img1, img2):
    mse = np.mean((img1 / 1.0 - img2 / 1.0) ** 2)
    if mse < 1e-10:
        return 100
    return 20 * math.log10(1 / math.sqrt(mse))


GAUSS = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
GAUSS /= GAUSS.sum()  # cv2.getGaussianKernel(11, 1.5)


def filter2d(img):
    """cv2.filter2D(img, -1, outer(g, g)) (reflect-101 border, as OpenCV)."""
    rows = scipy.ndimage.correlate1d(img, GAUSS, axis=1, mode="mirror")
    return scipy.ndimage.correlate1d(rows, GAUSS, axis=0, mode="mirror")


def ssim(img1, img2):
    C1, C2 = 0.01 ** 2, 0.03 ** 2
    img1, img2 = img1.astype(np.float64), img2.astype(np.float64)
    mu1 = filter2d(img1)[5:-5, 5:-5]
    mu2 = filter2d(img2)[5:-5, 5:-5]
    mu1_sq, mu2_sq, mu1_mu2 = mu1 ** 2, mu2 ** 2, mu1 * mu2
    sigma1_sq = filter2d(img1 ** 2)[5:-5, 5:-5] - mu1_sq
    sigma2_sq = filter2d(img2 ** 2)[5:-5, 5:-5] - mu2_sq
    sigma12 = filter2d(img1 * img2)[5:-5, 5:-5] - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + C1) * (2 * sigma12 + C2)) / ((mu1_sq + mu2_sq + C1) *
                                                            (sigma1_sq + sigma2_sq + C2))
    return ssim_map.mean()


def calculate_ssim_function(img1, img2):
    return np.array([ssim(img1[i], img2[i]) for i in range(3)]).mean()


def per_frame(fn, videos1, videos2):
    """The reference's loop: per video, per frame, on numpy [3, H, W] frames;
    returns its `value` dict as a list (mean over the batch per frame)."""
    results = [[fn(v1[t].numpy(), v2[t].numpy()) for t in range(len(v1))]
               for v1, v2 in zip(videos1, videos2)]
    return list(np.mean(np.array(results), axis=0))


# lpips 0.1.4, net='alex', version 0.1, spatial=True
SHIFT = torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None]
SCALE = torch.tensor([0.458, 0.448, 0.450])[None, :, None, None]


class LPIPS(torch.nn.Module):
    def __init__(self, path):
        super().__init__()
        w = load_file(path)
        self.convs = [(w[f"features.{i}.weight"], w[f"features.{i}.bias"], s, p)
                      for i, s, p in [(0, 4, 2), (3, 1, 2), (6, 1, 1), (8, 1, 1), (10, 1, 1)]]
        # the lin layers are trainable parameters in lpips (the trunk is not)
        self.lins = torch.nn.ParameterList(w[f"lin{k}.model.1.weight"] for k in range(5))

    def taps(self, x):
        out = []
        for k, (weight, bias, stride, pad) in enumerate(self.convs):
            if k in (1, 2):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(F.conv2d(x, weight, bias, stride, pad), inplace=True)
            out.append(x)
        return out

    def forward(self, in0, in1):
        outs0, outs1 = self.taps((in0 - SHIFT) / SCALE), self.taps((in1 - SHIFT) / SCALE)
        val = 0
        for k in range(5):
            f0 = outs0[k] / (torch.sqrt(torch.sum(outs0[k] ** 2, dim=1, keepdim=True)) + 1e-10)
            f1 = outs1[k] / (torch.sqrt(torch.sum(outs1[k] ** 2, dim=1, keepdim=True)) + 1e-10)
            lin = F.conv2d((f0 - f1) ** 2, self.lins[k])
            val = val + F.interpolate(lin, size=in0.shape[2:], mode="bilinear",
                                      align_corners=False)
        return val


def calculate_lpips(loss_fn, videos1, videos2):
    videos1, videos2 = videos1 * 2 - 1, videos2 * 2 - 1
    results = [[loss_fn.forward(v1[t].unsqueeze(0), v2[t].unsqueeze(0)).mean().detach().tolist()
                for t in range(len(v1))] for v1, v2 in zip(videos1, videos2)]
    return list(np.mean(np.array(results), axis=0))


# ---- timing and output ----

def reduce(frame_lists):
    """eval_common_metric: per-frame means of every batch, then their mean."""
    frames = np.array(frame_lists)
    return {"mean": float(np.mean(frames)), "per_frame": list(np.mean(frames, axis=0))}


def run_batches(metrics, real, rec, repeats):
    """Calls every metric on batches of BATCH videos, `repeats` times over the
    videos (eval_common_metric's loop); returns ms and the reduced values."""
    lists = {name: [] for name in metrics}
    start, cpu = time.perf_counter_ns(), time.process_time_ns()
    for _ in range(repeats):
        for b in range(0, len(real), BATCH):
            for name, fn in metrics.items():
                lists[name].append(fn(real[b:b + BATCH], rec[b:b + BATCH]))
    return {"ms": (time.perf_counter_ns() - start) / 1e6,
            "cpu_ms": (time.process_time_ns() - cpu) / 1e6,
            "metrics": {name: reduce(v) for name, v in lists.items()}}


def compare(osp_path, ref_path, names):
    """Max errors of osp-eval's JSON against the reference's, README
    tolerances; exit 1 on a mismatch."""
    tol = {"psnr": (1e-4, False), "ssim": (1e-7, False), "lpips": (1e-4, True)}
    with open(osp_path) as f:
        osp = json.load(f)["metrics"]
    with open(ref_path) as f:
        ref = json.load(f)["metrics"]
    ok = True
    for name in names:
        got = [osp[name]["mean"]] + osp[name]["per_frame"]
        want = [ref[name]["mean"]] + ref[name]["per_frame"]
        limit, rel = tol[name]
        err = max(abs(g - w) / (abs(w) if rel else 1) for g, w in zip(got, want))
        ok = ok and len(got) == len(want) and err <= limit
        print(f"{name}: {len(want)} values (mean + per frame), max {'rel' if rel else 'abs'} "
              f"error {err:.2g} (tolerance {limit:g})")
    return 0 if ok else 1


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if os.environ.get("BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
    if cmd == "data":
        data(*args)
    elif cmd == "psnr-ssim":
        real, rec = load_videos(f"{args[0]}/clips.msgpack"), load_videos(f"{args[0]}/clips-rec.msgpack")
        out = run_batches({"psnr": lambda a, b: per_frame(img_psnr, a, b),
                           "ssim": lambda a, b: per_frame(calculate_ssim_function, a, b)},
                          real, rec, PSNR_REPEATS)
        print(json.dumps(out))
    elif cmd == "lpips":
        real, rec = load_videos(f"{args[0]}/lpips.msgpack"), load_videos(f"{args[0]}/lpips-rec.msgpack")
        loss_fn = LPIPS(f"{args[0]}/alex.safetensors").eval()
        out = run_batches({"lpips": lambda a, b: calculate_lpips(loss_fn, a, b)}, real, rec, 1)
        print(json.dumps(out))
    elif cmd == "compare":
        return compare(args[0], args[1], args[2:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
