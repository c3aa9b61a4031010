#!/usr/bin/env bats
# osp-train vae end to end: the fixture CausalVideoVAE (or one built from a
# config) trained on clips made here (tests/tools/mkvideo: bars, a ramp and
# a moving square) with the tiny VGG LPIPS of tests/data/lpips_vgg and the
# PatchGAN: the reconstruction loss falls, the discriminator switches on
# where the reference's step counting says, resume is exact, checkpoints
# are VAE folders osp-encode/osp-decode load, the lock, and bad inputs.

load helpers

MKVIDEO=$TEST_BUILD/tests/tools/mkvideo
LPIPS=$REPO/tests/data/lpips_vgg/tiny.safetensors
TENSORCMP=$TEST_BUILD/tests/tools/tensorcmp

setup_file() {
    export SHARED=$BATS_FILE_TMPDIR
    mkdir -p "$SHARED/clips/sub"
    "$MKVIDEO" "$SHARED/clips/a.mp4" 12 40 36
    "$MKVIDEO" "$SHARED/clips/sub/b.avi" 9 32 32 default
    "$MKVIDEO" "$SHARED/clips/c.mp4" 7 48 32
    # one 5-frame video: every step sees the same clip (only the posterior
    # noise changes), so the loss curve is the model's, not the data's
    mkdir -p "$SHARED/one"
    "$MKVIDEO" "$SHARED/one/e.avi" 5 32 32 default
}

setup() {
    TMP=$(mktemp -d)
    VAE=$FIXTURES/vae/model
    CLIPS=$SHARED/clips
}

teardown() {
    rm -rf "$TMP"
}

# train RUN ARGS...: a small run on the shared clips (one thread: tiny
# models, and a loaded machine makes more threads slower)
train() {
    local run=$1
    shift
    "$BIN/osp-train" vae -q --threads 1 -m "$VAE" --lpips "$LPIPS" --data "$CLIPS" \
        --run "$run" --frames 5 --size 32 "$@"
}

stderr_has() {
    [[ $stderr == *"$1"* ]] || { echo "stderr: $stderr"; return 1; }
}

# mean_of FILE KEY FIRST LAST: mean of KEY over the lines FIRST..LAST
mean_of() {
    sed -n "$3,$4p" "$1" | sed -E "s/.*\"$2\": ([^,}]*).*/\\1/" |
        awk '{ s += $1; n++ } END { printf "%.6f\n", s / n }'
}

@test "a tiny VAE learns a clip: the reconstruction loss (L1 + LPIPS) falls" {
    need_fixtures
    # the fixture VAE has random weights: 60 steps at a high learning rate
    # take its loss down by about a fifth (0.81 here)
    CLIPS=$SHARED/one train "$TMP/run" --max-steps 60 --lr 2e-3 --checkpoint-every 1000 \
        > "$TMP/m.jsonl"
    [ "$(wc -l < "$TMP/m.jsonl")" -eq 60 ]
    first=$(mean_of "$TMP/m.jsonl" nll 1 5)
    last=$(mean_of "$TMP/m.jsonl" nll 56 60)
    echo "nll: first 5 steps $first, last 5 steps $last"
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.87 * a) }'
    # every term is reported and finite
    run "$JSONCHECK" .kl .d_weight .logits_real .grad_norm .disc_grad_norm < <(tail -n 1 "$TMP/m.jsonl")
    assert_success
}

@test "the discriminator starts where the reference's two-steps-a-batch counting says" {
    need_fixtures
    # --disc-start 3: batch 0 (steps 0, 1) no GAN; batch 1: D learns (step 3),
    # the adversarial term is still off (step 2); batch 2: both on
    train "$TMP/run" --max-steps 3 --disc-start 3 > "$TMP/m.jsonl"
    run "$JSONCHECK" .disc_loss .disc_grad_norm < <(sed -n 1p "$TMP/m.jsonl")
    assert_output "$(printf '0\n0')"
    run "$JSONCHECK" .disc_loss < <(sed -n 2p "$TMP/m.jsonl")
    [ "$output" != 0 ]
    # the total is nll + kl_weight·kl until the adversarial term is on
    for n in 1 2; do
        line=$(sed -n "${n}p" "$TMP/m.jsonl")
        awk -v l="$(echo "$line" | "$JSONCHECK" .loss)" -v n="$(echo "$line" | "$JSONCHECK" .nll)" \
            -v k="$(echo "$line" | "$JSONCHECK" .kl)" \
            'BEGIN { d = l - (n + 1e-6 * k); t = 1e-7 * (l < 0 ? -l : l) + 1e-6
                     exit !(d < t && d > -t) }'
    done
    line=$(sed -n 3p "$TMP/m.jsonl")
    awk -v l="$(echo "$line" | "$JSONCHECK" .loss)" -v n="$(echo "$line" | "$JSONCHECK" .nll)" \
        -v k="$(echo "$line" | "$JSONCHECK" .kl)" -v g="$(echo "$line" | "$JSONCHECK" .g_loss)" \
        -v w="$(echo "$line" | "$JSONCHECK" .d_weight)" \
        'BEGIN { a = w * g; d = l - (n + 1e-6 * k + a)
                 t = 1e-7 * ((l < 0 ? -l : l) + (a < 0 ? -a : a)) + 1e-6
                 exit !(d < t && d > -t && w > 0) }'
}

@test "resume continues exactly as the uninterrupted run (both models, both optimisers)" {
    need_fixtures
    train "$TMP/full" --max-steps 4 --disc-start 1 --lr 1e-3 > "$TMP/full.jsonl"
    train "$TMP/part" --max-steps 2 --disc-start 1 --lr 1e-3 > "$TMP/part.jsonl"
    train "$TMP/part" --max-steps 4 --disc-start 1 --lr 1e-3 --resume >> "$TMP/part.jsonl"
    strip() { sed -E 's/, "samples_per_s".*//' "$1"; }
    diff <(strip "$TMP/full.jsonl") <(strip "$TMP/part.jsonl")
    cmp "$TMP/full/checkpoint-4/model/diffusion_pytorch_model.safetensors" \
        "$TMP/part/checkpoint-4/model/diffusion_pytorch_model.safetensors"
    cmp "$TMP/full/checkpoint-4/discriminator.safetensors" \
        "$TMP/part/checkpoint-4/discriminator.safetensors"
}

@test "mpirun -np 2 trains the VAE as one process with twice the batch" {
    need_fixtures
    command -v mpirun > /dev/null || skip "no mpirun"
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    # the discriminator off: its batch statistics are per rank, as under DDP
    # lr 1e-5: Adam's first steps move every weight by about ±lr whatever
    # the size of its gradient, so a gradient near zero whose sign the
    # summation order flips (an all-reduce of two halves against one batch
    # of two) moves its weight by 2 lr; at lr 1e-3 that reached 1.5e-3 of
    # step 3's loss, and the size of it changes with the BLAS build
    mpirun --oversubscribe -np 2 "$BIN/osp-train" vae -q --threads 1 -m "$VAE" \
        --lpips "$LPIPS" --data "$CLIPS" --run "$TMP/dp" --frames 5 --size 32 --batch 1 \
        --lr 1e-5 --max-steps 3 --disc-start 1000 > "$TMP/dp.jsonl"
    train "$TMP/one" --batch 2 --lr 1e-5 --max-steps 3 --disc-start 1000 > "$TMP/one.jsonl"
    [ "$(wc -l < "$TMP/dp.jsonl")" -eq 3 ]
    # the same clips and noise, the gradients averaged (step 1's norm), and
    # the losses after the updates within 1e-5 (ranks that kept their own
    # gradients differ by 2e-4 at step 2)
    a=$(sed -n 1p "$TMP/dp.jsonl" | "$JSONCHECK" .grad_norm)
    b=$(sed -n 1p "$TMP/one.jsonl" | "$JSONCHECK" .grad_norm)
    near "$a" "$b" "$(awk -v b="$b" 'BEGIN { print 1e-5 * b }')"
    paste -d'\n' "$TMP/dp.jsonl" "$TMP/one.jsonl" | sed -E 's/.*"nll": ([^,]*),.*/\1/' |
        awk 'NR % 2 { a = $1; next } { d = a - $1; if (d < 0) d = -d; t = NR == 2 ? 1e-6 : 1e-5
                                       if (d > t * $1) { print NR / 2 ": " a " vs " $1; bad = 1 } }
             END { exit bad }'
    "$TENSORCMP" --files "$TMP/dp/checkpoint-3/model/diffusion_pytorch_model.safetensors" \
        "$TMP/one/checkpoint-3/model/diffusion_pytorch_model.safetensors" 1e-4
    run "$JSONCHECK" .world_size < "$TMP/dp/checkpoint-3/train_state.json"
    assert_output 2
}

@test "mpirun --shard-optimizer (ZeRO-1) trains and saves exactly what the unsharded run does" {
    need_fixtures
    command -v mpirun > /dev/null || skip "no mpirun"
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    local r
    for r in full shard; do
        mpirun --oversubscribe -np 2 "$BIN/osp-train" vae -q --threads 1 -m "$VAE" \
            --lpips "$LPIPS" --data "$CLIPS" --run "$TMP/$r" --frames 5 --size 32 --lr 1e-3 \
            --max-steps 3 --checkpoint-every 2 --disc-start 2 \
            $([ $r = shard ] && echo --shard-optimizer) > "$TMP/$r.jsonl"
    done
    local c f
    for c in checkpoint-2 checkpoint-3; do
        for f in model/diffusion_pytorch_model.safetensors optimizer.safetensors \
            discriminator.safetensors optimizer_disc.safetensors train_state.json; do
            cmp "$TMP/full/$c/$f" "$TMP/shard/$c/$f"
        done
    done
    diff <(sed -E 's/, "samples_per_s".*//' "$TMP/full.jsonl") \
        <(sed -E 's/, "samples_per_s".*//' "$TMP/shard.jsonl")
}

@test "a checkpoint is a VAE folder osp-encode and osp-decode load; it holds the discriminator" {
    need_fixtures
    train "$TMP/run" --max-steps 1 > /dev/null
    c=$TMP/run/checkpoint-1
    cmp "$VAE/config.json" "$c/model/config.json"
    for f in optimizer.safetensors discriminator.safetensors optimizer_disc.safetensors \
        train_state.json; do
        [ -s "$c/$f" ]
    done
    run "$BIN/osp-info" "$c/discriminator.safetensors"
    assert_output --partial "main.11.weight"
    "$BIN/osp-encode" -q -m "$c/model" "$CLIPS/a.mp4" --frames 5 --size 32x32 |
        "$BIN/osp-decode" -q -m "$c/model" -o "$TMP/rec.msgpack"
    run "$BIN/osp-info" "$TMP/rec.msgpack"
    assert_output --partial "video"
}

@test "-m config.json trains from random weights; --loss-weights 1e-6,0,0.5 needs no LPIPS" {
    need_fixtures
    "$BIN/osp-train" vae -q --threads 1 -m "$VAE/config.json" --data "$CLIPS" \
        --run "$TMP/run" --frames 5 --size 32 --max-steps 2 --loss-weights 1e-6,0,0.5 \
        > "$TMP/m.jsonl"
    [ "$(wc -l < "$TMP/m.jsonl")" -eq 2 ]
    [ -s "$TMP/run/checkpoint-2/model/diffusion_pytorch_model.safetensors" ]
}

@test "a second run on a locked run folder exits 6 at once" {
    mkdir "$TMP/run"
    flock "$TMP/run/lock" sleep 30 &
    local holder=$!
    sleep 0.3
    fails_with 6 "$BIN/osp-train" vae -m "$VAE" --lpips "$LPIPS" --data "$CLIPS" \
        --run "$TMP/run" --frames 5 --size 32 --resume
    stderr_has "another osp-train run"
    kill "$holder"
}

@test "bad inputs: one line naming the problem, no checkpoint" {
    need_fixtures
    # fails_with checks the message's prefix against the program's name
    local vae=("$BIN/osp-train" vae -q -m "$VAE" --data "$CLIPS")
    fails_with 2 "${vae[@]}" --run "$TMP/r" --frames 5 --size 32
    stderr_has "--lpips"
    fails_with 2 "${vae[@]}" --lpips "$LPIPS" --run "$TMP/r" --frames 6 --size 32
    stderr_has "1 + 4k"
    fails_with 2 "${vae[@]}" --lpips "$LPIPS" --run "$TMP/r" --frames 5 --size 36
    stderr_has "multiple of 8"
    fails_with 2 "${vae[@]}" --lpips "$LPIPS" --run "$TMP/r" --frames 5 --size 16
    stderr_has "discriminator"
    fails_with 2 "${vae[@]}" --lpips "$LPIPS" --run "$TMP/r" --loss-weights 1,2
    stderr_has "--loss-weights"
    # frames smaller than the crop
    fails_with 3 "${vae[@]}" --lpips "$LPIPS" --run "$TMP/r" --frames 5 --size 40
    stderr_has "smaller than the crop"
    # no videos; a listed video that is missing; a file that is not a video
    mkdir "$TMP/empty"
    fails_with 3 "${vae[@]}" --lpips "$LPIPS" --data "$TMP/empty" --run "$TMP/r2" --frames 5 --size 32
    stderr_has "no videos"
    printf 'a.mp4\nmissing.mp4\n' > "$TMP/list"
    cp "$CLIPS/a.mp4" "$TMP/"
    fails_with 5 "${vae[@]}" --lpips "$LPIPS" --data "$TMP/list" --run "$TMP/r3" --frames 5 --size 32
    stderr_has "missing.mp4"
    mkdir "$TMP/junk" && echo "not a video" > "$TMP/junk/x.mp4"
    run --separate-stderr "$BIN/osp-train" vae -q -m "$VAE" --lpips "$LPIPS" \
        --data "$TMP/junk" --run "$TMP/r4" --frames 5 --size 32
    [ "$status" -ne 0 ] && [[ $stderr == *x.mp4* ]]
    # LPIPS weights that are not a network
    echo junk > "$TMP/lpips.safetensors"
    fails_with 3 "${vae[@]}" --lpips "$TMP/lpips.safetensors" --run "$TMP/r5" --frames 5 --size 32
    for r in r r2 r3 r4 r5; do
        [ -z "$(ls "$TMP/$r" 2>/dev/null | grep checkpoint)" ]
    done
}

@test "a corrupted discriminator on resume is an error naming it, never a restart" {
    need_fixtures
    train "$TMP/run" --max-steps 1 > /dev/null
    truncate -s 100 "$TMP/run/checkpoint-1/discriminator.safetensors"
    fails_with 3 "$BIN/osp-train" vae -q -m "$VAE" --lpips "$LPIPS" --data "$CLIPS" \
        --run "$TMP/run" --frames 5 --size 32 --resume --max-steps 2
    stderr_has "discriminator.safetensors"
    [ ! -e "$TMP/run/checkpoint-2" ]
}

@test "examples/train-vae.sh: cron slices resume, score each checkpoint, skip a busy run" {
    need_fixtures
    cd "$REPO"
    export OSP_BIN=$BIN RUN=$TMP/runs/vae SLICE=0
    MAX_STEPS=1 run sh examples/train-vae.sh
    assert_success
    MAX_STEPS=2 run sh examples/train-vae.sh
    assert_success
    [ "$(wc -l < "$RUN.jsonl")" -eq 2 ]
    run "$JSONCHECK" .step < <(tail -n 1 "$RUN.eval.jsonl")
    assert_output 2
    run "$JSONCHECK" .eval.metrics.psnr.mean < <(tail -n 1 "$RUN.eval.jsonl")
    assert_success
    # a slice that finds the previous one still running leaves at once
    flock "$RUN/lock" sleep 30 &
    local holder=$!
    sleep 0.3
    MAX_STEPS=3 run sh examples/train-vae.sh
    kill "$holder"
    assert_success
    assert_output --partial "busy"
    [ "$(wc -l < "$RUN.jsonl")" -eq 2 ]
}
