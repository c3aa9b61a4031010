#!/usr/bin/env python3
"""torch_bench.py — the PyTorch (CPU) twin of osp_bench: same arguments,
same shapes, same FLOP counts, same output line
(op, shape, median ms, GFLOP/s, peak RSS MiB; tab-separated).

Runs in bench/.venv (a current torch from PyPI); run.sh calls it right
after osp_bench with the same thread count. Inputs are fresh uniform
[-1, 1) values; one warm-up run, then the median of REPS runs
(time.perf_counter_ns, a monotonic clock); inference_mode, as osp runs
without a tape."""
import argparse
import inspect
import math
import resource
import statistics
import sys
import time
import warnings

# torch warns at import when numpy is absent; the benchmark needs no numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def rand(*shape):
    return torch.rand(*shape) * 2 - 1


def median_ms(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(times)


def matmul(m, k, n):
    a, b = rand(m, k), rand(k, n)
    return f"{m}x{k} * {k}x{n}", 2.0 * m * k * n, lambda: torch.matmul(a, b)


def linear(t, i, o):
    x, w, bias = rand(t, i), rand(o, i), rand(o)
    return f"x {t}x{i}, w {o}x{i}, bias", 2.0 * t * i * o, lambda: F.linear(x, w, bias)


def conv3d(n, c, o, t, h, w, k):
    x, wt, bias = rand(n, c, t, h, w), rand(o, c, k, k, k), rand(o)
    grow = 2 * (k // 2) - k + 1
    flops = 2.0 * n * o * c * k ** 3 * (t + grow) * (h + grow) * (w + grow)
    return (f"{n}x{c}x{t}x{h}x{w} k{k} -> {o}", flops,
            lambda: F.conv3d(x, wt, bias, padding=k // 2))


def attention(b, h, l, d):
    q, k, v = rand(b, h, l, d), rand(b, h, l, d), rand(b, h, l, d)
    scores = float(b * h * l * l)
    return (f"B{b} H{h} L{l} D{d}", 4.0 * scores * d + 5.0 * scores,
            lambda: F.scaled_dot_product_attention(q, k, v, scale=1.0 / math.sqrt(d)))


CASES = {"matmul": matmul, "linear": linear, "conv3d": conv3d, "attention": attention}


def main():
    p = argparse.ArgumentParser(description="time one op with PyTorch on the CPU")
    p.add_argument("-t", type=int, default=0, help="threads (0: torch's default)")
    p.add_argument("-r", type=int, default=5, help="timed runs (median)")
    p.add_argument("op", choices=sorted(CASES))
    p.add_argument("dims", type=int, nargs="+")
    a = p.parse_args()
    if a.t > 0:
        torch.set_num_threads(a.t)
    case = CASES[a.op]
    names = list(inspect.signature(case).parameters)
    if len(a.dims) != len(names) or min(a.dims) < 1:
        p.error(f"{a.op} takes {len(names)} positive dims: {' '.join(names)}")
    with torch.inference_mode():
        shape, flops, fn = case(*a.dims)
        ms = median_ms(fn, a.r)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{a.op}\t{shape}\t{ms:.3f}\t{flops / (ms * 1e6):.1f}\t{rss_mib:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
