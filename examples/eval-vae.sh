#!/bin/sh
# Reconstruction quality of the CausalVideoVAE: encode | decode a clip, then
# score the reconstruction against its source with osp-eval, as
# scripts/causalvae/eval.sh does for the published table.
# Run from the repository root after `make` (or with the tools on PATH).
#   VAE=DIR     the VAE folder (default: the release if downloaded, see
#               README.md, else the small random test model of the fixtures)
#   CLIP=FILE   a clip to use instead of the generated one; it must already
#               have 1+4k frames and sides that are multiples of 8
#   LPIPS=FILE  LPIPS AlexNet weights and PWC=FILE PWC-Net weights, to add
#               LPIPS and FloLPIPS (conversion: osp-eval(1), WEIGHTS)
set -eu
PATH=${OSP_BIN:-$PWD/bin}:$PATH
VAE=${VAE:-Open-Sora-Plan-v1.0.0/vae}
[ -d "$VAE" ] || VAE=../shared/fixtures/vae/model
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. A clip: the sample latent decoded by the same VAE (5 frames of 32x32),
#    written losslessly (FFV1) so that only the VAE changes the pixels.
clip=${CLIP:-$work/clip.mkv}
if [ -z "${CLIP:-}" ]; then
    osp-decode -m "$VAE" --codec ffv1 -o "$clip" examples/data/sample.msgpack
fi

# 2. Encode and decode in one pipe; --mode mean makes it deterministic (the
#    reference samples the posterior: add --seed N instead to match that).
osp-encode -m "$VAE" --mode mean "$clip" | osp-decode -m "$VAE" --codec ffv1 -o "$work/rec.mkv"

# 3. Score: PSNR and SSIM always, LPIPS and FloLPIPS when weights are given.
set --
if [ -n "${LPIPS:-}" ]; then
    set -- --lpips-model "$LPIPS"
    [ -z "${PWC:-}" ] || set -- "$@" --flow-model "$PWC"
fi
osp-eval "$@" --per-frame "$clip" "$work/rec.mkv"
osp-eval "$@" --format json "$clip" "$work/rec.mkv"
