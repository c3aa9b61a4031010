#!/usr/bin/env bats
# osp-train inflate (tail initialisation, spec/causalvae.md section 9) on a
# small random diffusers AutoencoderKL (tests/data/vae2d, made by its
# make.py with diffusers 0.24.0): on one frame the inflated CausalVideoVAE
# computes the 2-D VAE's moments and decoded image, through osp-encode and
# osp-decode; and the bad inputs.

load helpers

DATA=$REPO/tests/data/vae2d
TENSORCMP=$TEST_BUILD/tests/tools/tensorcmp

setup() {
    TMP=$(mktemp -d)
}

teardown() {
    rm -rf "$TMP"
}

inflate() {
    "$BIN/osp-train" inflate -q "$@"
}

@test "on one frame the inflated VAE computes what the 2-D VAE does" {
    inflate --init-2d "$DATA/model" --config "$DATA/config3d.json" -o "$TMP/vae"
    cmp "$DATA/config3d.json" "$TMP/vae/config.json"
    [ -f "$TMP/vae/diffusion_pytorch_model.safetensors" ]
    "$MKSTREAM" convert "$DATA/io.safetensors" "$TMP/image.msgpack" video
    "$BIN/osp-encode" -q --device cpu -m "$TMP/vae" --moments "$TMP/image.msgpack" \
        -o "$TMP/moments.msgpack"
    run "$TENSORCMP" "$TMP/moments.msgpack" moments "$DATA/io.safetensors" moments 2e-5
    echo "moments: $output"
    assert_success
    "$BIN/osp-encode" -q --device cpu -m "$TMP/vae" --mode mean "$TMP/image.msgpack" |
        "$BIN/osp-decode" -q --device cpu -m "$TMP/vae" -o "$TMP/decoded.msgpack"
    run "$TENSORCMP" "$TMP/decoded.msgpack" video "$DATA/io.safetensors" decoded 2e-5
    echo "decoded: $output"
    assert_success
}

@test "a single .safetensors file gives the same model as the folder" {
    inflate --init-2d "$DATA/model" --config "$DATA/config3d.json" -o "$TMP/a"
    inflate --init-2d "$DATA/model/diffusion_pytorch_model.safetensors" \
        --config "$DATA/config3d.json" -o "$TMP/b/"
    cmp "$TMP/a/diffusion_pytorch_model.safetensors" "$TMP/b/diffusion_pytorch_model.safetensors"
}

@test "bad inputs: one line, a documented code, nothing left behind" {
    fails_with 2 "$BIN/osp-train" inflate --init-2d "$DATA/model" -o "$TMP/out"
    fails_with 2 "$BIN/osp-train" inflate --init-2d "$DATA/model" --config "$DATA/config3d.json"
    fails_with 5 "$BIN/osp-train" inflate --init-2d "$TMP/no-such" \
        --config "$DATA/config3d.json" -o "$TMP/out"
    fails_with 5 "$BIN/osp-train" inflate --init-2d "$DATA/model" --config "$TMP/none.json" \
        -o "$TMP/out"
    # widths that differ: the tensor and both shapes
    sed 's/"hidden_size": 32/"hidden_size": 64/' "$DATA/config3d.json" > "$TMP/wide.json"
    fails_with 3 "$BIN/osp-train" inflate --init-2d "$DATA/model" --config "$TMP/wide.json" \
        -o "$TMP/out"
    [[ $stderr == *"tensor 'encoder.conv_in.weight' has shape [32, 3, 3, 3], expected"* ]]
    [[ $stderr == *"expected [64, 3, 3, 3]" ]]
    # more res-blocks than the 2-D VAE has: the missing tensor
    sed 's/"num_res_blocks": 1/"num_res_blocks": 2/' "$DATA/config3d.json" > "$TMP/deep.json"
    fails_with 3 "$BIN/osp-train" inflate --init-2d "$DATA/model" --config "$TMP/deep.json" \
        -o "$TMP/out"
    assert_regex "$stderr" "no tensor 'encoder.down_blocks.0.resnets.1.norm1.weight'"
    [ "$(ls -A "$TMP")" = "$(printf 'deep.json\nwide.json')" ]
    # an existing folder is not overwritten
    mkdir "$TMP/out"
    fails_with 5 "$BIN/osp-train" inflate --init-2d "$DATA/model" \
        --config "$DATA/config3d.json" -o "$TMP/out"
    assert_regex "$stderr" "already exists"
    [ -z "$(ls -A "$TMP/out")" ]
}

@test "osp-train vae --init-2d starts from the inflated VAE" {
    mkdir "$TMP/clips"
    "$TEST_BUILD/tests/tools/mkvideo" "$TMP/clips/a.avi" 5 32 32 default
    inflate --init-2d "$DATA/model" --config "$DATA/config3d.json" -o "$TMP/vae"
    # learning rate 0: the step leaves every weight where it started
    "$BIN/osp-train" vae -q --threads 1 -m "$DATA/config3d.json" --init-2d "$DATA/model" \
        --data "$TMP/clips" --run "$TMP/run" --frames 5 --size 32 --max-steps 1 --lr 0 \
        --loss-weights 1e-6,0,0.5 > /dev/null
    "$MKSTREAM" convert "$DATA/io.safetensors" "$TMP/image.msgpack" video
    "$BIN/osp-encode" -q -m "$TMP/vae" --moments "$TMP/image.msgpack" -o "$TMP/a.msgpack"
    "$BIN/osp-encode" -q -m "$TMP/run/checkpoint-1/model" --moments "$TMP/image.msgpack" \
        -o "$TMP/b.msgpack"
    cmp "$TMP/a.msgpack" "$TMP/b.msgpack"
    # a model folder and --init-2d contradict each other
    fails_with 2 "$BIN/osp-train" vae -m "$TMP/vae" --init-2d "$DATA/model" \
        --data "$TMP/clips" --run "$TMP/run2" --frames 5 --size 32 --loss-weights 1e-6,0,0.5
    [[ $stderr == *"--init-2d needs -m CONFIG.json"* ]]
    [ ! -e "$TMP/run2/checkpoint-1" ]
    # a missing 2-D VAE (I/O), and one whose widths disagree with the config
    local args=(--data "$TMP/clips" --frames 5 --size 32 --loss-weights 1e-6,0,0.5)
    fails_with 5 "$BIN/osp-train" vae -m "$DATA/config3d.json" --init-2d "$TMP/no-such" \
        --run "$TMP/run3" "${args[@]}"
    sed 's/"hidden_size": 32/"hidden_size": 64/' "$DATA/config3d.json" > "$TMP/wide.json"
    fails_with 3 "$BIN/osp-train" vae -m "$TMP/wide.json" --init-2d "$DATA/model" \
        --run "$TMP/run4" "${args[@]}"
    [[ $stderr == *"tensor 'encoder.conv_in.weight' has shape [32, 3, 3, 3], expected"* ]]
    [ "$(ls -A "$TMP/run3")" = lock ] && [ "$(ls -A "$TMP/run4")" = lock ]
}
