#!/usr/bin/env python3
"""Writes torch_saved.bin with the real torch.save (any torch 2.x; run once,
the output is committed): a model's state_dict (an OrderedDict with
_metadata) holding what Hugging Face checkpoints hold, so the C reader is
checked against bytes torch itself wrote:

  shared.weight, encoder.embed_tokens.weight  f32 [6, 4], ONE storage (tied)
  block.wi.weight   bf16 [3, 4]     block.wo.weight  f16 [4, 3]
  block.scale       f32 [4] (an nn.Parameter -> _rebuild_parameter)
  transposed        f32 [3, 2], stride (1, 3) (a view of a [2, 3] storage)
  window            f32 [3], offset 4 into a 10-element storage
  steps             i64 [5]           scalar  f64 0-d

Values: element k (row-major over the tensor's own shape) of every float
tensor is (k - 3) * 0.25 + base, exact in bf16/f16; base = 0 for the
embedding, 1 for wi, 2 for wo, 3 for scale; transposed = t of
[[0,1,2],[3,4,5]]; window = [4, 5, 6]; steps = [-2, 0, 2, 4, 1<<40];
scalar = 2.5. Usage: bench/.venv/bin/python make_torch_saved.py DIR"""
import collections
import sys

import torch


def ramp(shape, base, dtype):
    n = 1
    for d in shape:
        n *= d
    return ((torch.arange(n, dtype=torch.float64) - 3) * 0.25 + base).reshape(shape).to(dtype)


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wi = torch.nn.Linear(4, 3, bias=False, dtype=torch.bfloat16)
        self.wo = torch.nn.Linear(3, 4, bias=False, dtype=torch.float16)
        self.scale = torch.nn.Parameter(ramp((4,), 3, torch.float32))


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = torch.nn.Embedding(6, 4)
        self.encoder = torch.nn.Module()
        self.encoder.embed_tokens = self.shared  # tied, as in T5
        self.block = Block()


def main(out_dir):
    m = Model()
    with torch.no_grad():
        m.shared.weight.copy_(ramp((6, 4), 0, torch.float32))
        m.block.wi.weight.copy_(ramp((3, 4), 1, torch.bfloat16))
        m.block.wo.weight.copy_(ramp((4, 3), 2, torch.float16))
    sd = m.state_dict()
    assert isinstance(sd, collections.OrderedDict) and hasattr(sd, "_metadata")
    sd["block.scale"] = m.block.scale  # the Parameter itself, not its .data
    sd["transposed"] = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()
    sd["window"] = torch.arange(10, dtype=torch.float32)[4:7]
    sd["steps"] = torch.tensor([-2, 0, 2, 4, 1 << 40], dtype=torch.int64)
    sd["scalar"] = torch.tensor(2.5, dtype=torch.float64)
    torch.save(sd, out_dir + "/torch_saved.bin")


if __name__ == "__main__":
    main(sys.argv[1])
