#!/bin/sh
# demo.sh — what `make demo` runs: text to video end to end with every tool,
# on tiny models with random weights made on the spot (so it needs no
# download; the video is coloured noise, the plumbing is the real one).
#
#   examples/demo.sh [OUT.mp4]          (default demo.mp4)
#
#   1. tiny T5 (examples/data/spiece.model, a 1000-piece tokenizer), Latte
#      and CausalVideoVAE folders, written by the generators in tests/tools
#   2. osp-textenc | osp-denoise | osp-decode -> OUT (17 frames, 64x64)
#   3. osp-encode OUT | osp-decode -> a reconstruction, and osp-eval of the
#      two (PSNR and SSIM)
#
# Environment: OSP_BIN (tools, default bin/), OSP_TEST_BUILD (build folder
# holding tests/tools, default build/), PROMPT.
# With the released checkpoints, use examples/t2v.sh instead.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${OSP_BIN:-$root/bin}
gen=${OSP_TEST_BUILD:-$root/build}/tests/tools
out=${1:-demo.mp4}
prompt=${PROMPT:-"a red fox running in the snow"}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "demo: making tiny random models in $work"
"$gen/mkt5" "$work/t5" vocab=1000 d_model=48 spiece="$root/examples/data/spiece.model"
"$gen/mklatte" "$work/latte" 48
"$gen/mkvae" "$work/vae"

echo "demo: osp-textenc | osp-denoise | osp-decode -> $out"
"$bin/osp-textenc" -q -m "$work/t5" "$prompt" |
    "$bin/osp-denoise" -q -m "$work/latte" --scheduler dpmpp --steps 10 --seed 42 |
    tee "$work/latent.msgpack" |
    "$bin/osp-decode" -q -m "$work/vae" -o "$out"
"$bin/osp-info" "$work/latent.msgpack"

echo "demo: osp-encode | osp-decode, then osp-eval against $out"
"$bin/osp-encode" -q -m "$work/vae" "$out" --mode mean |
    "$bin/osp-decode" -q -m "$work/vae" -o "$work/rec.mp4"
"$bin/osp-eval" --metrics psnr,ssim "$out" "$work/rec.mp4"
echo "demo: wrote $out"
