"""torch_gpu.py — PyTorch on the same GPU, same shapes as gpu_bench.c, for
bench/gpu.sh: GEMM 8192^3 (f32, TF32, bf16), scaled-dot-product attention
at the Latte XL/122 65x512x512 shapes and the VAE's single head, conv3d
3x3x3 at CausalVideoVAE decoder shapes (f32, TF32). Prints markdown rows:
| what | shape | ms | TFLOP/s | |, each the median of 5 timed runs after a
warm-up, synchronised. Usage: python torch_gpu.py"""
import statistics
import time

import torch
import torch.nn.functional as F

REPS = 5


def timed(fn):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def row(what, shape, ms, flops):
    print(f"| torch: {what} | {shape} | {ms:.3f} | {flops / (ms * 1e-3) / 1e12:.1f} | |", flush=True)


def rand(*shape, dtype=torch.float32):
    return (torch.rand(*shape, device="cuda", dtype=torch.float32) * 2 - 1).to(dtype)


def gemm():
    n = 8192
    for name, dtype, tf32 in (("GEMM f32", torch.float32, False), ("GEMM TF32", torch.float32, True),
                              ("GEMM bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a, b = rand(n, n, dtype=dtype), rand(n, n, dtype=dtype)
        row(name, "8192x8192x8192", timed(lambda: a @ b), 2.0 * n ** 3)
    torch.backends.cuda.matmul.allow_tf32 = False


def attention():
    cases = (("attention spatial", 34, 16, 1024, 1024, 72, False),
             ("attention temporal", 2048, 16, 17, 17, 72, False),
             ("attention cross, text mask", 34, 16, 1024, 300, 72, True),
             ("attention VAE mid-block", 1, 1, 4096, 4096, 512, False))
    for name, b, h, lq, lk, d, masked in cases:
        # bf16 too: what the reference runs under autocast
        for dtype, kind in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
            q, k, v = (rand(b, h, n, d, dtype=dtype) for n in (lq, lk, lk))
            mask = rand(b, 1, 1, lk, dtype=dtype) if masked else None
            ms = timed(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
            row(f"{name} {kind} SDPA", f"[{b},{h},{lq},{d}] x {lk} keys", ms,
                4.0 * b * h * lq * lk * d)


def conv3d():
    cases = ((512, 17, 32, 32), (512, 33, 64, 64), (256, 65, 128, 128), (128, 65, 256, 256))
    for tf32 in (False, True):
        torch.backends.cudnn.allow_tf32 = tf32
        for c, t, h, w in cases:
            x, wt, bias = rand(1, c, t, h, w), rand(c, c, 3, 3, 3), rand(c)
            ms = timed(lambda: F.conv3d(x, wt, bias, padding=1))
            row("conv3d " + ("TF32" if tf32 else "f32"), f"[1,{c},{t},{h},{w}] 3x3x3 -> {c}", ms,
                2.0 * c * c * 27 * t * h * w)
    torch.backends.cudnn.allow_tf32 = False


if __name__ == "__main__":
    torch.backends.cudnn.benchmark = True
    gemm()
    attention()
    conv3d()
