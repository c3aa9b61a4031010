#!/bin/sh
# One slice of CausalVideoVAE training, cron-safe, then the reconstruction
# score of the newest checkpoint (examples/eval-vae.sh) appended to a log.
# Run it from a crontab as often as you like: a slice that finds the run
# folder locked by the previous one exits at once (status 6), and every
# slice resumes where the last checkpoint stopped.
# Run from the repository root after `make` (or with the tools on PATH).
#   VAE=DIR      the VAE to start from: a folder made by `osp-train inflate`
#                or a released VAE (default: the fixtures' small random one)
#   LPIPS=FILE   VGG16 LPIPS weights (README.md, Training; default: the tiny
#                random test network, fit for a smoke test only)
#   DATA=PATH    a folder of videos or a list (default: one clip decoded
#                from examples/data/sample.msgpack)
#   RUN=DIR      the run folder (default runs/vae)
#   FRAMES=F SIZE=N   clip shape (default 5 and 32; the reference: 17, 256)
#   SLICE=SEC    training time per slice (default 3300: 55 minutes)
#   MAX_STEPS=N  where training ends (default 20000 batches)
#   EVAL_CLIP=FILE  the clip to score (1+4k frames, sides multiples of 8)
set -eu
PATH=${OSP_BIN:-$PWD/bin}:$PATH
VAE=${VAE:-../shared/fixtures/vae/model}
LPIPS=${LPIPS:-tests/data/lpips_vgg/tiny.safetensors}
RUN=${RUN:-runs/vae}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$RUN")"

if [ -z "${DATA:-}" ]; then
    DATA=$work/clips
    mkdir -p "$DATA"
    osp-decode -q -m "$VAE" --codec ffv1 -o "$DATA/sample.avi" examples/data/sample.msgpack
fi

# The metrics (one JSON line a step) go to RUN.jsonl; status 6 (another
# slice still holds the run) is not a failure of this one.
status=0
osp-train vae -q -m "$VAE" --lpips "$LPIPS" --data "$DATA" --run "$RUN" \
    --frames "${FRAMES:-5}" --size "${SIZE:-32}" --max-steps "${MAX_STEPS:-20000}" \
    --time-budget "${SLICE:-3300}" --resume >> "$RUN.jsonl" || status=$?
[ "$status" -ne 6 ] || { echo "train-vae.sh: $RUN is busy; next slice" >&2; exit 0; }
[ "$status" -eq 0 ] || exit "$status"

# Score the newest checkpoint as eval-vae.sh does (on EVAL_CLIP, else on
# the sample latent decoded by that checkpoint): one line a slice in
# RUN.eval.jsonl.
latest=$(ls -d "$RUN"/checkpoint-* | sort -t- -k2 -n | tail -n 1)
score=$(VAE=$latest/model CLIP=${EVAL_CLIP:-} sh examples/eval-vae.sh | tail -n 1)
printf '{"step": %s, "eval": %s}\n' "${latest##*-}" "$score" >> "$RUN.eval.jsonl"
