#!/bin/sh
# Text to video with the released checkpoints: T5 text encoder -> Latte
# denoiser -> causal VAE decoder, one pipe (see README.md, "Text to video",
# for the folders to download).
#
#   examples/t2v.sh "a red fox running in the snow" fox.mp4
#
# Environment (defaults in brackets):
#   T5      text encoder folder             [t5-v1_1-xxl]
#   LATTE   transformer stage folder        [Open-Sora-Plan-v1.0.0/65x512x512]
#   VAE     VAE folder                      [Open-Sora-Plan-v1.0.0/vae]
#   STEPS   sampling steps                  [250, as the reference scripts]
#   SCHED   pndm|ddim|ddpm|euler|dpmpp      [pndm]
#   SEED    noise seed                      [42]
#   OSP_BIN folder of the tools             [bin, after `make`]
# Add --frames 1 through DENOISE_ARGS for one image (then name the output
# .png). The 65x512x512 stage costs about 75 TFLOP per step: use a GPU, or
# try LATTE=Open-Sora-Plan-v1.0.0/17x256x256 STEPS=50 first.
set -eu
PATH=${OSP_BIN:-$PWD/bin}:$PATH

prompt=${1:-"a red fox running in the snow"}
out=${2:-t2v.mp4}
T5=${T5:-t5-v1_1-xxl}
LATTE=${LATTE:-Open-Sora-Plan-v1.0.0/65x512x512}
VAE=${VAE:-Open-Sora-Plan-v1.0.0/vae}

for dir in "$T5" "$LATTE" "$VAE"; do
    if [ ! -f "$dir/config.json" ]; then
        echo "t2v.sh: no model folder at $dir (see README.md, \"Text to video\")" >&2
        exit 1
    fi
done

# shellcheck disable=SC2086 # DENOISE_ARGS is a list of options
osp-textenc -m "$T5" "$prompt" |
    osp-denoise -m "$LATTE" --scheduler "${SCHED:-pndm}" --steps "${STEPS:-250}" \
        --seed "${SEED:-42}" ${DENOISE_ARGS:-} |
    osp-decode -m "$VAE" -o "$out"
echo "wrote $out"
