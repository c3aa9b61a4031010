#!/usr/bin/env bats
# osp-train on the GPU (make test-cuda runs this with the CUDA build): the
# same tiny dit run on --device cuda and on --device cpu agrees within float
# tolerance (weights, EMA, AdamW moments, losses); a resumed GPU run equals
# the uninterrupted one bit for bit; a GPU checkpoint loads on the CPU; two
# ranks sharing the GPU train like one with twice the batch; osp-train vae
# likewise agrees with the CPU, and --init-2d lands on the device exactly;
# -v logs the device memory at exit.
# OSP_TEST_DEVICE=cpu runs the same cases CPU against CPU, to check the
# suite itself on a machine without a GPU.

load ../bats/helpers

TENSORCMP=$TEST_BUILD/tests/tools/tensorcmp
DEV=${OSP_TEST_DEVICE:-cuda}

setup_file() {
    tiny_latte_suite
}

setup() {
    tiny_latte_case
}

teardown() {
    rm -rf "$TMP"
}

# train DEVICE RUN ARGS...: clipping, EMA and accumulation all on
train() {
    local device=$1 run=$2
    shift 2
    "$BIN/osp-train" dit -q --device "$device" -m "$MODEL" --data "$FEATS" --run "$run" \
        --batch 2 --accum 2 --lr 1e-3 --max-grad-norm 0.05 --ema 0.9 "$@"
}

# losses FILE: the "loss" column
losses() {
    sed -E 's/.*"loss": ([^,]*),.*/\1/' "$1"
}

# bats test_tags=cuda-quick
@test "cuda and cpu train alike: losses, weights, EMA and AdamW state within 1e-3" {
    train "$DEV" "$TMP/gpu" --max-steps 4 > "$TMP/gpu.jsonl"
    train cpu "$TMP/cpu" --max-steps 4 > "$TMP/cpu.jsonl"
    paste <(losses "$TMP/gpu.jsonl") <(losses "$TMP/cpu.jsonl") |
        awk '{ d = $1 - $2; if (d < 0) d = -d; print; if (d > 1e-3 * ($2 < 0 ? -$2 : $2)) bad = 1 }
             END { exit bad }'
    [ "$(wc -l < "$TMP/gpu.jsonl")" -eq 4 ]
    local c=checkpoint-4
    for f in model/diffusion_pytorch_model.safetensors ema/diffusion_pytorch_model.safetensors \
        optimizer.safetensors; do
        "$TENSORCMP" --files "$TMP/gpu/$c/$f" "$TMP/cpu/$c/$f" 1e-3
    done
}

@test "a resumed cuda run continues bit for bit; its checkpoint loads on the cpu" {
    train "$DEV" "$TMP/a" --max-steps 4 --checkpoint-every 2 > "$TMP/a.jsonl"
    train "$DEV" "$TMP/b" --max-steps 2 --checkpoint-every 2 > "$TMP/b.jsonl"
    train "$DEV" "$TMP/b" --max-steps 4 --checkpoint-every 2 --resume >> "$TMP/b.jsonl"
    diff <(cut -d, -f1-7 "$TMP/a.jsonl") <(cut -d, -f1-7 "$TMP/b.jsonl")
    for f in model/diffusion_pytorch_model.safetensors ema/diffusion_pytorch_model.safetensors \
        optimizer.safetensors; do
        cmp "$TMP/a/checkpoint-4/$f" "$TMP/b/checkpoint-4/$f"
    done
    "$BIN/osp-denoise" --device cpu -m "$TMP/a/checkpoint-4/ema" --scheduler ddim --steps 2 \
        --guidance 1 "$FEATS/clip-000.msgpack" -o "$TMP/out.msgpack"
}

@test "mpirun -np 2 on one GPU (through the host) trains as one process with twice the batch" {
    command -v mpirun > /dev/null || skip "no mpirun on this machine"
    # OpenMPI's plugins leak at exit; keep check-asan's leak checker to osp
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    mpirun --oversubscribe -np 2 "$BIN/osp-train" dit -q --device "$DEV" -m "$MODEL" \
        --data "$FEATS" --run "$TMP/dp" --batch 1 --lr 1e-3 --max-steps 3 \
        --shard-optimizer > "$TMP/dp.jsonl"
    "$BIN/osp-train" dit -q --device "$DEV" -m "$MODEL" --data "$FEATS" --run "$TMP/one" \
        --batch 2 --lr 1e-3 --max-steps 3 > "$TMP/one.jsonl"
    paste <(losses "$TMP/dp.jsonl") <(losses "$TMP/one.jsonl") |
        awk '{ d = $1 - $2; if (d < 0) d = -d; print; if (d > 1e-4 * ($2 < 0 ? -$2 : $2)) bad = 1 }
             END { exit bad }'
    "$TENSORCMP" --files "$TMP/dp/checkpoint-3/model/diffusion_pytorch_model.safetensors" \
        "$TMP/one/checkpoint-3/model/diffusion_pytorch_model.safetensors" 1e-4
}

# vae DEVICE RUN ARGS...: the fixture VAE with LPIPS and the discriminator on from batch 1.
# lr 1e-5: Adam's first steps move each weight by about ±lr whatever its
# gradient's size, so a near-zero gradient whose sign rounding flips moves
# it by 2 lr; at 1e-3 step 3's loss differed by 2e-3 between the emulated
# GPU (make EMU=1) and the CPU, over the tolerance, for that reason alone.
vae() {
    local device=$1 run=$2
    shift 2
    "$BIN/osp-train" vae -q --device "$device" -m "$FIXTURES/vae/model" \
        --lpips "$REPO/tests/data/lpips_vgg/tiny.safetensors" --data "$SHARED/clips" \
        --run "$run" --frames 5 --size 32 --disc-start 1 --lr 1e-5 "$@"
}

# bats test_tags=cuda-quick
@test "osp-train vae: cuda and cpu agree (VAE, discriminator, both optimizers)" {
    need_fixtures
    mkdir -p "$SHARED/clips"
    [ -f "$SHARED/clips/a.avi" ] || "$TEST_BUILD/tests/tools/mkvideo" "$SHARED/clips/a.avi" 9 32 32 default
    vae "$DEV" "$TMP/gpu" --max-steps 3 --checkpoint-every 1 > "$TMP/gpu.jsonl"
    vae cpu "$TMP/cpu" --max-steps 3 --checkpoint-every 1 > "$TMP/cpu.jsonl"
    paste <(losses "$TMP/gpu.jsonl") <(losses "$TMP/cpu.jsonl") |
        awk '{ d = $1 - $2; if (d < 0) d = -d; print; if (d > 1e-3 * ($2 < 0 ? -$2 : $2)) bad = 1 }
             END { exit bad }'
    local c=checkpoint-3 f
    # the VAE and the discriminator (1e-6 emulated), then both optimizers:
    # their moments carry the adaptive GAN weight (|grad nll| / |grad g|,
    # about 400) times g_loss, a mean of logits of both signs, whose
    # rounding differs between devices by 2e-4; emulated, the moments
    # differed by 5e-5 after step 1 (its gradients) and 1e-3 after step 3
    for f in model/diffusion_pytorch_model.safetensors discriminator.safetensors; do
        "$TENSORCMP" --files "$TMP/gpu/$c/$f" "$TMP/cpu/$c/$f" 1e-4
    done
    for f in optimizer.safetensors optimizer_disc.safetensors; do
        "$TENSORCMP" --files "$TMP/gpu/checkpoint-1/$f" "$TMP/cpu/checkpoint-1/$f" 1e-3
        "$TENSORCMP" --files "$TMP/gpu/$c/$f" "$TMP/cpu/$c/$f" 1e-2
    done
}

# bats test_tags=cuda-quick
@test "osp-train vae --init-2d on the device starts from the inflated VAE" {
    local data=$REPO/tests/data/vae2d
    mkdir -p "$TMP/clips"
    "$TEST_BUILD/tests/tools/mkvideo" "$TMP/clips/a.avi" 5 32 32 default
    "$BIN/osp-train" inflate -q --device cpu --init-2d "$data/model" \
        --config "$data/config3d.json" -o "$TMP/vae"
    "$BIN/osp-train" vae -q --device "$DEV" -m "$data/config3d.json" --init-2d "$data/model" \
        --data "$TMP/clips" --run "$TMP/run" --frames 5 --size 32 --max-steps 1 --lr 0 \
        --loss-weights 1e-6,0,0.5 > /dev/null
    "$TENSORCMP" --files "$TMP/run/checkpoint-1/model/diffusion_pytorch_model.safetensors" \
        "$TMP/vae/diffusion_pytorch_model.safetensors" 0
}

@test "-v on the device logs the device memory at exit" {
    [ "$DEV" = cuda ] || skip "the device memory line is for a GPU (OSP_TEST_DEVICE=$DEV)"
    run --separate-stderr "$BIN/osp-train" dit -v --device cuda -m "$MODEL" --data "$FEATS" \
        --run "$TMP/mem" --batch 1 --lr 1e-3 --max-steps 1
    [ "$status" -eq 0 ]
    # tensors' peak, peak with the allocator's cache (never below it), now
    line=$(grep -E 'device memory: peak [0-9.]+ MiB in tensors, [0-9.]+ MiB with the cache; at exit [0-9.]+ MiB in tensors, [0-9.]+ MiB cached' <<<"$stderr")
    peak=$(sed -E 's/.*peak ([0-9.]+) MiB in tensors, ([0-9.]+) MiB.*/\1 \2/' <<<"$line")
    awk -v p="${peak% *}" -v r="${peak#* }" 'BEGIN { exit !(p > 0 && r >= p) }'
}
