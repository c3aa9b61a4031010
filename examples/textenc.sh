#!/bin/sh
# osp-textenc: prompts to T5 text embeddings, the way Open-Sora-Plan's
# sampling computes them (see README.md for the DeepFloyd/t5-v1_1-xxl folder).
#
#   examples/textenc.sh [T5-FOLDER]
#
# Without a folder (or when it is missing), runs on the tiny test model and
# tokenizer of ../shared/fixtures/t5 so the commands can be tried at once.
set -eu
PATH=${OSP_BIN:-$PWD/bin}:$PATH
T5=${1:-t5-v1_1-xxl}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -f "$T5/config.json" ]; then
    fixtures=${OSP_FIXTURES:-../shared/fixtures}/t5
    echo "textenc.sh: no $T5/config.json; using the tiny test model" >&2
    T5=$tmp/t5
    mkdir "$T5"
    ln -s "$PWD/$fixtures/encoder/config.json" "$PWD/$fixtures/encoder/model.safetensors" \
        "$PWD/$fixtures/tokenizer/spiece.model" "$T5/"
fi

# One prompt: `embedding` [1, 300, D] and `mask` [1, 300], after the empty
# negative prompt's `null_embedding` and `null_mask`.
osp-textenc -m "$T5" "a cat in the park" | osp-info

# Many prompts, one per line, 2 per message, constant memory:
printf 'a cat in the park\na girl and a dog\na man in the street\n' |
    osp-textenc -m "$T5" --batch 2 --no-negative -o "$tmp/text.msgpack"
osp-info "$tmp/text.msgpack"

# The tokenizer alone (only spiece.model is needed), then the encoder alone:
# the pipe writes exactly what a direct run writes.
osp-textenc -m "$T5" --tokens "a cat in the park" | osp-info --stats
osp-textenc -m "$T5" "a cat in the park" -o "$tmp/direct.msgpack"
osp-textenc -m "$T5" --tokens "a cat in the park" | osp-textenc -m "$T5" --from-tokens |
    cmp - "$tmp/direct.msgpack" && echo "tokens | from-tokens = the direct run"
