#!/bin/sh
# osp-info: look inside tensor streams, safetensors files and model folders.
# Run from the repository root after `make` (or with the tools on PATH).
set -eu
PATH=${OSP_BIN:-$PWD/bin}:$PATH

# A stream: one line per tensor (name, dtype, shape, meta).
osp-info examples/data/sample.msgpack

# The same with statistics (min, max, mean, std of the finite values; NaN
# and Inf counts), read from stdin as at the end of a pipeline.
cat examples/data/sample.msgpack | osp-info --stats

# JSON for scripts: the shape of the first tensor.
osp-info --format json examples/data/sample.msgpack | grep '"name": "latent"'

# A model folder as released on Hugging Face (config.json + safetensors,
# sharded or not), when one has been downloaded (see README.md):
if [ -d Open-Sora-Plan-v1.0.0/vae ]; then
    osp-info Open-Sora-Plan-v1.0.0/vae | tail -n 1
fi
