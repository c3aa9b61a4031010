#!/usr/bin/env python3
"""t5_torch.py — the PyTorch (CPU) reference for bench/t5: Hugging Face
transformers' T5EncoderModel (4.39.1, the version Open-Sora-Plan v1.0.0
pins), loaded from the same folder osp loads.

  make DIR [--layers 6 --d-model 1024 --heads 16 --d-kv 64 --d-ff 2816
            --vocab 32128 --batch 8 --length 300 --seed 0]
      writes DIR/model/{config.json, model.safetensors}: a T5 v1.1 encoder
      (gated-gelu) with transformers' own random initialisation, saved by
      save_pretrained; and DIR/input.safetensors: input_ids, attention_mask
      int64 [batch, length] for `batch` prompts of random lengths (token
      ids in [3, 32000), EOS 1, then padding 0; one row is the empty
      prompt's [1, 0, ...])
  inputs DIR [--batch 1 --length 300 --seed 0]
      only DIR/input.safetensors (for a model made elsewhere, e.g. mkt5)
  time DIR [-t THREADS] [-r REPS]
      loads DIR/model in float32, one warm-up and REPS timed forwards of
      the input under inference_mode; prints "t5<TAB>shape<TAB>median ms
      <TAB>GFLOP/s<TAB>peak RSS MiB" and writes last_hidden_state to
      DIR/torch_out.safetensors
  compare DIR [--tol 1e-4]
      elementwise |osp - torch| <= tol + tol * |torch| (the fixture's rule)
      of DIR/osp_out.safetensors against DIR/torch_out.safetensors; prints
      the max abs and relative differences, exit 1 if any element fails
  spm MODEL PROMPTS [-r REPS]
      the sentencepiece package on MODEL: encodes every line of PROMPTS
      (ids, EOS appended, as T5Tokenizer does), REPS times; prints
      "spiece<TAB>N prompts<TAB>median ms<TAB>prompts/s<TAB>peak RSS MiB<TAB>
      hash of the ids" (t5_bench tokenize prints the same hash)

FLOPs: 2 x multiply-adds of the projections and the two attention products
(spec/t5.md §8). Runs in bench/.venv; run.sh drives it."""
import argparse
import os
import resource
import statistics
import sys
import time

import torch
from safetensors.torch import load_file, save_file


def flops(cfg, batch, length):
    inner = cfg.num_heads * cfg.d_kv
    proj = 2 * length * (4 * cfg.d_model * inner + 3 * cfg.d_model * cfg.d_ff)
    att = 2 * 2 * length * length * inner
    return batch * cfg.num_layers * (proj + att)


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_inputs(path, batch, length, seed, vocab):
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(batch, length, dtype=torch.int64)
    mask = torch.zeros(batch, length, dtype=torch.int64)
    for b in range(batch):
        n = 0 if b == batch - 1 and batch > 1 else int(torch.randint(1, length, (1,), generator=g))
        ids[b, :n] = torch.randint(3, min(32000, vocab), (n,), generator=g)
        ids[b, n] = 1
        mask[b, :n + 1] = 1
    save_file({"input_ids": ids, "attention_mask": mask}, path)


def make(a):
    from transformers import T5Config, T5EncoderModel
    torch.manual_seed(a.seed)
    cfg = T5Config(vocab_size=a.vocab, d_model=a.d_model, d_kv=a.d_kv, num_heads=a.heads,
                   d_ff=a.d_ff, num_layers=a.layers, feed_forward_proj="gated-gelu",
                   relative_attention_num_buckets=32, relative_attention_max_distance=128,
                   layer_norm_epsilon=1e-6, tie_word_embeddings=False)
    model = T5EncoderModel(cfg).eval()
    os.makedirs(a.dir, exist_ok=True)
    model.save_pretrained(os.path.join(a.dir, "model"), safe_serialization=True)
    write_inputs(os.path.join(a.dir, "input.safetensors"), a.batch, a.length, a.seed, a.vocab)


def time_forward(a):
    from transformers import T5EncoderModel
    torch.set_num_threads(a.threads)
    model = T5EncoderModel.from_pretrained(os.path.join(a.dir, "model"),
                                           torch_dtype=torch.float32).eval()
    inp = load_file(os.path.join(a.dir, "input.safetensors"))
    ids, mask = inp["input_ids"], inp["attention_mask"]
    with torch.inference_mode():
        def run():
            return model(input_ids=ids, attention_mask=mask).last_hidden_state
        out = run()
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter_ns()
            run()
            times.append((time.perf_counter_ns() - t0) / 1e6)
    save_file({"last_hidden_state": out.contiguous()}, os.path.join(a.dir, "torch_out.safetensors"))
    cfg = model.config
    ms = statistics.median(times)
    shape = f"{cfg.num_layers} layers D{cfg.d_model} H{cfg.num_heads} ff{cfg.d_ff} [{ids.shape[0]}, {ids.shape[1]}]"
    print(f"t5\t{shape}\t{ms:.3f}\t{flops(cfg, *ids.shape) / ms / 1e6:.1f}\t{rss_mib():.0f}")


def compare(a):
    o = load_file(os.path.join(a.dir, "osp_out.safetensors"))["last_hidden_state"].double()
    t = load_file(os.path.join(a.dir, "torch_out.safetensors"))["last_hidden_state"].double()
    if o.shape != t.shape:
        print(f"shape {tuple(o.shape)} != {tuple(t.shape)}")
        sys.exit(1)
    d = (o - t).abs()
    bad = int((d > a.tol + a.tol * t.abs()).sum())
    print(f"max |osp - torch| {d.max():.3g}, max relative {(d / t.abs().clamp_min(1e-30)).max():.3g}"
          f" (|torch| max {t.abs().max():.3g}); {bad} of {d.numel()} beyond {a.tol} + {a.tol}|torch|")
    sys.exit(1 if bad else 0)


def spm(a):
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=a.model)
    with open(a.prompts, encoding="utf-8") as f:
        prompts = f.read().split("\n")
    if prompts and prompts[-1] == "":
        prompts.pop()
    def run():
        return [sp.encode(p) + [1] for p in prompts]
    run()
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter_ns()
        run()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    ms = statistics.median(times)
    h = 0
    for ids in run():
        for i in ids:
            h = (h * 1000003 + i) & 0xFFFFFFFFFFFFFFFF
    print(f"spiece\t{len(prompts)} prompts\t{ms:.3f}\t{len(prompts) / ms * 1e3:.0f}\t{rss_mib():.0f}"
          f"\t{h:016x}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    for name, default in [("layers", 6), ("d-model", 1024), ("heads", 16), ("d-kv", 64),
                          ("d-ff", 2816), ("vocab", 32128), ("batch", 8), ("length", 300),
                          ("seed", 0)]:
        m.add_argument("--" + name, type=int, default=default)
    i = sub.add_parser("inputs")
    i.add_argument("dir")
    for name, default in [("batch", 1), ("length", 300), ("seed", 0), ("vocab", 32128)]:
        i.add_argument("--" + name, type=int, default=default)
    t = sub.add_parser("time")
    t.add_argument("dir")
    t.add_argument("-t", "--threads", type=int, default=os.cpu_count())
    t.add_argument("-r", "--reps", type=int, default=3)
    c = sub.add_parser("compare")
    c.add_argument("dir")
    c.add_argument("--tol", type=float, default=1e-4)
    s = sub.add_parser("spm")
    s.add_argument("model")
    s.add_argument("prompts")
    s.add_argument("-r", "--reps", type=int, default=3)
    a = p.parse_args()
    if a.cmd == "make":
        make(a)
    elif a.cmd == "inputs":
        os.makedirs(a.dir, exist_ok=True)
        write_inputs(os.path.join(a.dir, "input.safetensors"), a.batch, a.length, a.seed, a.vocab)
    elif a.cmd == "time":
        time_forward(a)
    elif a.cmd == "compare":
        compare(a)
    else:
        spm(a)


if __name__ == "__main__":
    main()
