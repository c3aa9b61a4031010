#!/bin/sh
# One cron slice of the three-stage training cascade (17x256x256 ->
# 65x256x256 -> 65x512x512, spec/training.md §4). Each call finds the first
# stage whose last checkpoint does not exist yet and trains it for at most
# TIME_BUDGET seconds with `osp-train dit --resume`; a stage starts from
# the previous stage's final weights under its own config (the position
# tables follow it). Run it from cron (see examples/cron/crontab) until it
# prints "all stages are done".
#
#   examples/cron/stages.sh examples/cron/stages.conf
#
# The conf file (a shell fragment) sets RUNS (folder of the run folders),
# INIT (the weights stage 1 starts from), TIME_BUDGET (seconds per slice),
# BATCH, and for each stage N = 1, 2, 3: STAGEN_CONFIG (config.json),
# STAGEN_DATA (feature folder), STAGEN_STEPS and optionally STAGEN_BATCH
# (else BATCH); optional EXTRA (more osp-train options). Metrics go to RUNS/stageN.jsonl. A slice that finds
# the previous one still running (osp-train exit 6) exits 0.
#
# From raw videos: with CAPTIONS (the reference's caption JSON), VAE and T5
# (model folders) set, and STAGEN_FRAMES, STAGEN_SIZE, optionally
# STAGEN_IMAGES (image frames) and STAGEN_PREPARE (more prepare options,
# e.g. --tile at 512²) for a stage, the slice first runs `osp-train
# prepare` into STAGEN_DATA (resumable; marked done by STAGEN_DATA/.prepared,
# delete it to prepare again) under a lock, then trains.
# OSP_BIN: folder of the tools [bin, after `make`].
set -eu
PATH=${OSP_BIN:-$PWD/bin}:$PATH
conf=${1:?usage: stages.sh CONF}
EXTRA=
# shellcheck source=stages.conf
. "$conf"
mkdir -p "$RUNS"

# prepare_stage N DATA: the stage's features from raw videos, when asked
# for and not done yet; a preparation already running elsewhere ends this
# slice (exit 0 from the script).
prepare_stage() {
    frames='' size='' images=0 opts=''
    eval "frames=\${STAGE${1}_FRAMES:-} size=\${STAGE${1}_SIZE:-}"
    eval "images=\${STAGE${1}_IMAGES:-0} opts=\${STAGE${1}_PREPARE:-}"
    if [ -z "${CAPTIONS:-}" ] || [ -z "$frames" ] || [ -f "$2/.prepared" ]; then
        return 0
    fi
    mkdir -p "$2"
    status=0
    # shellcheck disable=SC2086 # opts holds several options
    flock -n -E 75 "$2.lock" osp-train prepare --captions "$CAPTIONS" --vae "$VAE" --t5 "$T5" \
        --data "$2" --frames "$frames" --size "$size" --image-num "$images" $opts || status=$?
    if [ "$status" -eq 75 ]; then
        exit 0 # another slice is preparing
    fi
    [ "$status" -eq 0 ] && touch "$2/.prepared"
    return "$status"
}

model=$INIT
config='' data='' steps='' batch=''
for n in 1 2 3; do
    eval "config=\$STAGE${n}_CONFIG data=\$STAGE${n}_DATA steps=\$STAGE${n}_STEPS"
    eval "batch=\${STAGE${n}_BATCH:-\$BATCH}"
    run=$RUNS/stage$n
    if [ -d "$run/checkpoint-$steps" ]; then
        model=$run/checkpoint-$steps/model
        continue
    fi
    prepare_stage "$n" "$data" || exit "$?"
    status=0
    # shellcheck disable=SC2086 # EXTRA holds several options
    osp-train dit -m "$model" --config "$config" --data "$data" --run "$run" --resume \
        --max-steps "$steps" --batch "$batch" --time-budget "$TIME_BUDGET" $EXTRA \
        -o "$RUNS/stage$n.jsonl" || status=$?
    if [ "$status" -eq 6 ]; then
        exit 0 # the previous slice still holds the run folder
    fi
    exit "$status"
done
echo "all stages are done: $model"
