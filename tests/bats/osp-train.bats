#!/usr/bin/env bats
# osp-train dit end to end on a synthetic dataset made here (coloured
# squares moving across a latent grid, tests/tools/mkfeatures) and a tiny
# random Latte (tests/tools/mklatte): the loss falls, a resumed run equals
# the uninterrupted one bit for bit, checkpoints load in osp-denoise, --keep,
# the lock, stopping on a signal or a time budget, and the bad inputs.

load helpers

MKFEATURES=$TEST_BUILD/tests/tools/mkfeatures
TENSORCMP=$TEST_BUILD/tests/tools/tensorcmp

setup_file() {
    tiny_latte_suite
}

setup() {
    tiny_latte_case
}

teardown() {
    rm -rf "$TMP"
}

# train RUN ARGS...: a small run on the shared dataset (one thread: the
# model is tiny, and a loaded machine makes more threads slower)
train() {
    local run=$1
    shift
    "$BIN/osp-train" dit -q --threads 1 -m "$MODEL" --data "$FEATS" --run "$run" --batch 2 \
        --lr 1e-3 "$@"
}

# stderr_has TEXT: the last command's stderr contains TEXT
stderr_has() {
    [[ $stderr == *"$1"* ]] || { echo "stderr: $stderr"; return 1; }
}

# mean_loss FILE FIRST LAST: mean of "loss" over the lines FIRST..LAST
mean_loss() {
    sed -n "$2,$3p" "$1" | sed -E 's/.*"loss": ([^,]*),.*/\1/' |
        awk '{ s += $1; n++ } END { printf "%.6f\n", s / n }'
}

@test "a tiny Latte learns the synthetic clips: the loss falls" {
    train "$TMP/run" --max-steps 300 --checkpoint-every 300 > "$TMP/m.jsonl"
    [ "$(wc -l < "$TMP/m.jsonl")" -eq 300 ]
    run "$JSONCHECK" .step < <(tail -n 1 "$TMP/m.jsonl")
    assert_output 300
    first=$(mean_loss "$TMP/m.jsonl" 1 30)
    last=$(mean_loss "$TMP/m.jsonl" 271 300)
    echo "mean loss: first 30 steps $first, last 30 steps $last"
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.5 * a) }'
    [ -f "$TMP/run/checkpoint-300/model/diffusion_pytorch_model.safetensors" ]
}

@test "resume continues exactly as the uninterrupted run (EMA included)" {
    train "$TMP/a" --max-steps 12 --checkpoint-every 6 --ema 0.9 > "$TMP/a.jsonl"
    train "$TMP/b" --max-steps 6 --checkpoint-every 6 --ema 0.9 > "$TMP/b.jsonl"
    # the run's EMA setting comes from its checkpoint, like the seed
    train "$TMP/b" --max-steps 12 --checkpoint-every 6 --resume >> "$TMP/b.jsonl"
    # everything but the timing fields, bit for bit
    diff <(cut -d, -f1-7 "$TMP/a.jsonl") <(cut -d, -f1-7 "$TMP/b.jsonl")
    for f in model/diffusion_pytorch_model.safetensors ema/diffusion_pytorch_model.safetensors \
        optimizer.safetensors train_state.json; do
        cmp "$TMP/a/checkpoint-12/$f" "$TMP/b/checkpoint-12/$f"
    done
    ! cmp -s "$TMP/a/checkpoint-12/model/diffusion_pytorch_model.safetensors" \
        "$TMP/a/checkpoint-12/ema/diffusion_pytorch_model.safetensors"
    "$BIN/osp-denoise" -m "$TMP/a/checkpoint-12/ema" --scheduler ddim --steps 2 \
        --guidance 1 "$FEATS/clip-000.msgpack" -o "$TMP/out.msgpack"
    # resuming a finished run does nothing
    train "$TMP/b" --max-steps 12 --resume > "$TMP/c.jsonl"
    [ ! -s "$TMP/c.jsonl" ]
}

@test "gradient accumulation and warmup run, and the state records them" {
    train "$TMP/run" --max-steps 4 --accum 2 --warmup 4 --max-grad-norm 0.5 > "$TMP/m.jsonl"
    run "$JSONCHECK" .lr < <(head -n 1 "$TMP/m.jsonl")
    assert_output 0.00025
    run "$JSONCHECK" .accumulation < "$TMP/run/checkpoint-4/train_state.json"
    assert_output 2
    run "$JSONCHECK" .samples_seen < "$TMP/run/checkpoint-4/train_state.json"
    assert_output 16
}

@test "--checkpointing (layers recomputed in the backward) trains bit for bit like the plain run" {
    train "$TMP/plain" --max-steps 3 > "$TMP/plain.jsonl"
    train "$TMP/ckpt" --max-steps 3 --checkpointing > "$TMP/ckpt.jsonl"
    cmp "$TMP/plain/checkpoint-3/model/diffusion_pytorch_model.safetensors" \
        "$TMP/ckpt/checkpoint-3/model/diffusion_pytorch_model.safetensors"
    local terms='"loss": [^,]*, "mse": [^,]*, "vb": [^,]*, "lr": [^,]*, "grad_norm": [^,]*'
    diff <(grep -o "$terms" "$TMP/plain.jsonl") <(grep -o "$terms" "$TMP/ckpt.jsonl")
}

@test "a checkpoint is a model folder osp-denoise loads as is" {
    train "$TMP/run" --max-steps 2 > /dev/null
    cmp "$MODEL/config.json" "$TMP/run/checkpoint-2/model/config.json"
    "$BIN/osp-denoise" -m "$TMP/run/checkpoint-2/model" --scheduler ddim --steps 2 \
        --guidance 1 "$FEATS/clip-000.msgpack" -o "$TMP/out.msgpack"
    run "$BIN/osp-info" "$TMP/out.msgpack"
    assert_output --partial "latent"
}

@test "--keep N keeps the newest N checkpoints" {
    train "$TMP/run" --max-steps 5 --checkpoint-every 1 --keep 2 > /dev/null
    run ls "$TMP/run"
    assert_output "$(printf '%s\n' checkpoint-4 checkpoint-5 lock)"
}

@test "a second run on a locked run folder exits 6 at once" {
    mkdir "$TMP/run"
    flock "$TMP/run/lock" sleep 30 &
    local holder=$!
    sleep 0.3
    fails_with 6 "$BIN/osp-train" dit -m "$MODEL" --data "$FEATS" --run "$TMP/run" --resume
    stderr_has "another osp-train run"
    kill "$holder"
}

@test "SIGTERM finishes the step, checkpoints and exits 0; --time-budget stops too" {
    "$BIN/osp-train" dit -q --threads 1 -m "$MODEL" --data "$FEATS" --run "$TMP/run" \
        --checkpoint-every 1000000 > "$TMP/m.jsonl" &
    local pid=$!
    for _ in $(seq 100); do [ -s "$TMP/m.jsonl" ] && break; sleep 0.1; done
    kill -TERM "$pid"
    wait "$pid"
    n=$(wc -l < "$TMP/m.jsonl")
    [ -d "$TMP/run/checkpoint-$n" ]
    train "$TMP/budget" --max-steps 1000000 --time-budget 0.001 > /dev/null
    [ -d "$TMP/budget/checkpoint-1" ]
}

@test "bad inputs: one line naming the problem" {
    # a feature file listed but missing
    printf 'clip-000.msgpack\nclip-999.msgpack\n' > "$TMP/list"
    cp "$FEATS/clip-000.msgpack" "$TMP/"
    fails_with 5 "$BIN/osp-train" dit -m "$MODEL" --data "$TMP/list" --run "$TMP/r1"
    stderr_has "clip-999.msgpack"
    # features whose text width disagrees with the model's caption_channels
    "$MKFEATURES" "$TMP/wide" 2 16 2
    fails_with 3 "$BIN/osp-train" dit -m "$MODEL" --data "$TMP/wide" --run "$TMP/r2"
    stderr_has "embedding"
    # frames that disagree with the model's video_length
    "$MKFEATURES" "$TMP/noimg" 2 32 0 latent
    mv "$TMP/noimg/clip-001.msgpack" "$TMP/noimg/clip-001.bak"
    "$MKFEATURES" "$TMP/img" 1 32 2 latent
    cp "$TMP/img/clip-000.msgpack" "$TMP/noimg/clip-001.msgpack"
    fails_with 3 "$BIN/osp-train" dit -q -m "$MODEL" --data "$TMP/noimg" --run "$TMP/r3" \
        --batch 2
    stderr_has "clip-001.msgpack"
    # a truncated feature file
    mkdir "$TMP/notext"
    head -c 8000 "$FEATS/clip-000.msgpack" > "$TMP/notext/clip-000.msgpack"
    fails_with 3 "$BIN/osp-train" dit -m "$MODEL" --data "$TMP/notext" --run "$TMP/r4"
    stderr_has "clip-000.msgpack"
    # a --config whose architecture the weights do not fit
    sed 's/"num_layers": 2/"num_layers": 3/' "$MODEL/config.json" > "$TMP/deep.json"
    fails_with 3 "$BIN/osp-train" dit -q -m "$MODEL" --config "$TMP/deep.json" \
        --data "$FEATS" --run "$TMP/r6"
    stderr_has "transformer_blocks.2"
    # usage: no stage, another stage, no --init on a fresh run folder
    fails_with 2 "$BIN/osp-train" --data "$FEATS" --run "$TMP/r5"
    fails_with 2 "$BIN/osp-train" gan --data "$FEATS" --run "$TMP/r5"
    fails_with 2 "$BIN/osp-train" dit --data "$FEATS" --run "$TMP/r5"
    stderr_has "--init"
}

@test "a run folder with checkpoints needs --resume; a corrupted one is never restarted" {
    train "$TMP/run" --max-steps 2 --checkpoint-every 1 > /dev/null
    fails_with 2 "$BIN/osp-train" dit -m "$MODEL" --data "$FEATS" --run "$TMP/run"
    stderr_has "--resume"
    truncate -s 1000 "$TMP/run/checkpoint-2/model/diffusion_pytorch_model.safetensors"
    fails_with 3 "$BIN/osp-train" dit -m "$MODEL" --data "$FEATS" --run "$TMP/run" --resume
    stderr_has "checkpoint-2"
    run ls "$TMP/run"
    assert_output "$(printf '%s\n' checkpoint-1 checkpoint-2 lock)"
    echo '{"global_step": 1}' > "$TMP/run/checkpoint-1/train_state.json"
    rm -r "$TMP/run/checkpoint-2"
    fails_with 3 "$BIN/osp-train" dit -m "$MODEL" --data "$FEATS" --run "$TMP/run" --resume
    stderr_has "train_state.json"
}

@test "a stale temporary checkpoint (a crash mid-write) is removed, the last one is used" {
    train "$TMP/run" --max-steps 2 > /dev/null
    mkdir -p "$TMP/run/.checkpoint-3.tmp/model"
    echo partial > "$TMP/run/.checkpoint-3.tmp/model/config.json"
    train "$TMP/run" --max-steps 3 --resume > "$TMP/m.jsonl"
    run "$JSONCHECK" .step < "$TMP/m.jsonl"
    assert_output 3
    [ ! -e "$TMP/run/.checkpoint-3.tmp" ]
}

@test "kill -9 at any moment leaves every checkpoint whole, and the run resumes" {
    local delay pid c f
    for delay in 0.05 0.1 0.2 0.3 0.45 0.6 0.8 1.0; do
        "$BIN/osp-train" dit -q --threads 1 -m "$MODEL" --data "$FEATS" --run "$TMP/run" \
            --batch 2 --checkpoint-every 1 --keep 2 --resume > /dev/null &
        pid=$!
        sleep "$delay"
        kill -9 "$pid"
        wait "$pid" || true
        for c in "$TMP"/run/checkpoint-*; do
            [ -e "$c" ] || continue
            for f in model/config.json optimizer.safetensors train_state.json; do
                [ -s "$c/$f" ] || { echo "after ${delay}s: $c/$f missing"; false; }
            done
            "$BIN/osp-info" "$c/model" > /dev/null
            "$BIN/osp-info" "$c/optimizer.safetensors" > /dev/null
        done
    done
    last=$(ls "$TMP/run" | sed -n 's/^checkpoint-//p' | sort -n | tail -n 1)
    echo "latest checkpoint after the kills: $last"
    [ -n "$last" ]
    train "$TMP/run" --resume --max-steps $((last + 1)) > "$TMP/m.jsonl"
    run "$JSONCHECK" .step < "$TMP/m.jsonl"
    assert_output $((last + 1))
}

@test "examples/cron: a three-stage tiny cascade, one cron slice at a time" {
    local d=$TMP/cascade i
    mkdir -p "$d"
    # stage 2: more frames (the temporal table interpolates), stage 3: a
    # larger latent (the 2-D table extends), as 17x256 -> 65x256 -> 65x512
    sed 's/"video_length": 5/"video_length": 9/' "$MODEL/config.json" > "$d/s2.json"
    sed 's/"sample_size": \[8, 8\]/"sample_size": [16, 16]/' "$d/s2.json" > "$d/s3.json"
    "$MKFEATURES" "$d/f2" 4 32 2 9 8
    "$MKFEATURES" "$d/f3" 4 32 2 9 16
    cat > "$d/conf" <<CONF
RUNS=$d/runs
INIT=$MODEL
TIME_BUDGET=0.001
BATCH=2
EXTRA="-q --threads 1 --lr 1e-3"
STAGE1_CONFIG=$MODEL/config.json
STAGE1_DATA=$FEATS
STAGE1_STEPS=2
STAGE2_CONFIG=$d/s2.json
STAGE2_DATA=$d/f2
STAGE2_STEPS=2
STAGE3_CONFIG=$d/s3.json
STAGE3_DATA=$d/f3
STAGE3_STEPS=2
STAGE3_BATCH=1
CONF
    # the time budget makes each slice one step: 6 slices, then "done"
    for i in $(seq 7); do
        run env OSP_BIN="$BIN" "$REPO/examples/cron/stages.sh" "$d/conf"
        assert_success
    done
    assert_output "all stages are done: $d/runs/stage3/checkpoint-2/model"
    for n in 1 2 3; do
        [ "$(wc -l < "$d/runs/stage$n.jsonl")" -eq 2 ]
    done
    cmp "$d/s3.json" "$d/runs/stage3/checkpoint-2/model/config.json"
    # a slice that finds the run folder locked exits 0 at once
    rm -r "$d/runs/stage3/checkpoint-2"
    flock "$d/runs/stage3/lock" sleep 30 >/dev/null 2>&1 3>&- &
    local holder=$!
    sleep 0.3
    run env OSP_BIN="$BIN" "$REPO/examples/cron/stages.sh" "$d/conf"
    kill "$holder"
    assert_success
    [ ! -d "$d/runs/stage3/checkpoint-2" ]
}

# dp NP RUN ARGS...: a data-parallel run of NP ranks, metrics on stdout
dp() {
    local np=$1 run=$2
    shift 2
    mpirun --oversubscribe -np "$np" "$BIN/osp-train" dit -q --threads 1 -m "$MODEL" \
        --data "$FEATS" --run "$run" --batch 1 --lr 1e-3 "$@"
}

# same_checkpoint A B: the weights, EMA weights and optimizer state agree byte for byte
same_checkpoint() {
    local f
    for f in model/diffusion_pytorch_model.safetensors ema/diffusion_pytorch_model.safetensors \
        optimizer.safetensors train_state.json; do
        cmp "$1/$f" "$2/$f" || return 1
    done
}

@test "mpirun --shard-optimizer (ZeRO-1) computes and saves exactly what the unsharded run does" {
    command -v mpirun > /dev/null || skip "no mpirun"
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    # clipping and EMA on: the norm is the whole model's, the EMA follows the shared weights
    local opts=(--max-grad-norm 0.05 --ema 0.9 --checkpoint-every 2)
    dp 2 "$TMP/full" "${opts[@]}" --max-steps 4 > "$TMP/full.jsonl"
    dp 2 "$TMP/shard" "${opts[@]}" --max-steps 4 --shard-optimizer > "$TMP/shard.jsonl"
    same_checkpoint "$TMP/full/checkpoint-2" "$TMP/shard/checkpoint-2"
    same_checkpoint "$TMP/full/checkpoint-4" "$TMP/shard/checkpoint-4"
    # the same losses and norms (the clipping was active: norms above 0.05)
    strip() { sed -E 's/, "samples_per_s".*//' "$1"; }
    diff <(strip "$TMP/full.jsonl") <(strip "$TMP/shard.jsonl")
    run "$JSONCHECK" .grad_norm < <(head -n 1 "$TMP/shard.jsonl")
    awk -v g="$output" 'BEGIN { exit !(g > 0.05) }'
    # a sharded run resumed unsharded, and the other way round
    dp 2 "$TMP/a" "${opts[@]}" --max-steps 2 --shard-optimizer > /dev/null
    dp 2 "$TMP/a" "${opts[@]}" --max-steps 4 --resume > /dev/null
    same_checkpoint "$TMP/full/checkpoint-4" "$TMP/a/checkpoint-4"
    dp 2 "$TMP/b" "${opts[@]}" --max-steps 2 > /dev/null
    dp 2 "$TMP/b" "${opts[@]}" --max-steps 4 --resume --shard-optimizer > /dev/null
    same_checkpoint "$TMP/full/checkpoint-4" "$TMP/b/checkpoint-4"
    # three ranks: rank 0 receives from two owners
    dp 3 "$TMP/full3" "${opts[@]}" --max-steps 2 > /dev/null
    dp 3 "$TMP/shard3" "${opts[@]}" --max-steps 2 --shard-optimizer > /dev/null
    same_checkpoint "$TMP/full3/checkpoint-2" "$TMP/shard3/checkpoint-2"
}

@test "mpirun -np 2 trains as one process with twice the batch; resume keeps the count" {
    command -v mpirun > /dev/null || skip "no mpirun"
    # OpenMPI's plugins leak at exit; keep check-asan's leak checker to osp
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    mpirun --oversubscribe -np 2 "$BIN/osp-train" dit -q --threads 1 -m "$MODEL" \
        --data "$FEATS" --run "$TMP/dp" --batch 1 --lr 1e-3 --max-steps 6 > "$TMP/dp.jsonl"
    train "$TMP/one" --max-steps 6 > "$TMP/one.jsonl"
    # rank 0 alone reports; the losses agree within float tolerance
    [ "$(wc -l < "$TMP/dp.jsonl")" -eq 6 ]
    paste -d'\n' "$TMP/dp.jsonl" "$TMP/one.jsonl" | sed -E 's/.*"loss": ([^,]*),.*/\1/' |
        awk 'NR % 2 { a = $1; next } { d = a - $1; if (d < 0) d = -d
                                       if (d > 1e-5 * $1) { print NR / 2 ": " a " vs " $1; bad = 1 } }
             END { exit bad }'
    # and the parameters they end with, each tensor within 1e-4 of itself
    "$TENSORCMP" --files "$TMP/dp/checkpoint-6/model/diffusion_pytorch_model.safetensors" \
        "$TMP/one/checkpoint-6/model/diffusion_pytorch_model.safetensors" 1e-4
    run "$JSONCHECK" .world_size < "$TMP/dp/checkpoint-6/train_state.json"
    assert_output 2
    fails_with 2 "$BIN/osp-train" dit -q -m "$MODEL" --data "$FEATS" --run "$TMP/dp" --resume \
        --max-steps 7
    stderr_has "processes"
    # every rank reads the --init weights into the --config model
    mpirun --oversubscribe -np 2 "$BIN/osp-train" dit -q --threads 1 -m "$MODEL" \
        --config "$MODEL/config.json" --data "$FEATS" --run "$TMP/dp2" --max-steps 1 > /dev/null
    run ls -A "$TMP/dp2"
    assert_output "$(printf '%s\n' checkpoint-1 lock)"
}
