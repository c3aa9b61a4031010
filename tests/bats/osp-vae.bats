#!/usr/bin/env bats
# osp-encode and osp-decode end to end, against fixtures/vae: the numbers
# (through streams), the file outputs, the pipes, and the failure modes.

load helpers

TENSORCMP=$TEST_BUILD/tests/tools/tensorcmp

setup() {
    need_fixtures
    VAE=$FIXTURES/vae/model
    TMP=$(mktemp -d)
    "$MKSTREAM" convert "$FIXTURES/vae/video/input.safetensors" "$TMP/video.msgpack" video
}

teardown() {
    rm -rf "$TMP"
}

@test "encode --mode mean and --moments match the fixture" {
    run "$BIN/osp-encode" -m "$VAE" --mode mean "$TMP/video.msgpack" -o "$TMP/mean.msgpack"
    assert_success
    run "$TENSORCMP" "$TMP/mean.msgpack" latent "$FIXTURES/vae/video/expected.safetensors" mean 1e-4 0.18215
    assert_success
    "$BIN/osp-encode" -m "$VAE" --moments < "$TMP/video.msgpack" > "$TMP/moments.msgpack"
    run "$TENSORCMP" "$TMP/moments.msgpack" moments "$FIXTURES/vae/video/expected.safetensors" moments 1e-4
    assert_success
}

@test "decode of the mean latent matches the fixture's decoded frames" {
    "$BIN/osp-encode" -m "$VAE" --mode mean "$TMP/video.msgpack" |
        "$BIN/osp-decode" -m "$VAE" > "$TMP/decoded.msgpack"
    run "$TENSORCMP" "$TMP/decoded.msgpack" video "$FIXTURES/vae/video/expected.safetensors" decoded 2e-4
    assert_success
}

@test "tiled encode matches the tiled fixture" {
    "$MKSTREAM" convert "$FIXTURES/vae/tiled/input.safetensors" "$TMP/tiled.msgpack" video
    "$BIN/osp-encode" -m "$VAE" --moments --tile-size 32 --tile-overlap 0.25 "$TMP/tiled.msgpack" > "$TMP/m.msgpack"
    run "$TENSORCMP" "$TMP/m.msgpack" moments "$FIXTURES/vae/tiled/expected.safetensors" moments 1e-4
    assert_success
    "$BIN/osp-encode" -m "$VAE" --moments --no-tile "$TMP/tiled.msgpack" > "$TMP/u.msgpack"
    run "$TENSORCMP" "$TMP/u.msgpack" moments "$FIXTURES/vae/tiled/expected.safetensors" moments_untiled 1e-4
    assert_success
}

@test "sampling is deterministic per seed and recorded in meta" {
    "$BIN/osp-encode" -m "$VAE" --seed 7 "$TMP/video.msgpack" > "$TMP/a.msgpack"
    "$BIN/osp-encode" -m "$VAE" --seed 7 "$TMP/video.msgpack" > "$TMP/b.msgpack"
    "$BIN/osp-encode" -m "$VAE" --seed 8 "$TMP/video.msgpack" > "$TMP/c.msgpack"
    cmp "$TMP/a.msgpack" "$TMP/b.msgpack"
    ! cmp -s "$TMP/a.msgpack" "$TMP/c.msgpack"
    run "$BIN/osp-info" --format json "$TMP/a.msgpack"
    assert_success
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.seed')" = 7 ]
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.scale')" = 0.18215 ]
}

@test "video files, PNG frames and PNG folders round-trip through the tools" {
    "$BIN/osp-encode" -m "$VAE" --mode mean "$TMP/video.msgpack" > "$TMP/lat.msgpack"
    run "$BIN/osp-decode" -m "$VAE" "$TMP/lat.msgpack" -o "$TMP/clip.mp4"
    assert_success
    [ -s "$TMP/clip.mp4" ]
    run "$BIN/osp-encode" -m "$VAE" "$TMP/clip.mp4" -o "$TMP/from-mp4.msgpack"
    assert_success
    run "$BIN/osp-info" --format json "$TMP/from-mp4.msgpack"
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].shape')" = "[1,4,3,4,4]" ]
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.source_frames')" = 9 ]

    mkdir "$TMP/frames"
    run "$BIN/osp-decode" -m "$VAE" "$TMP/lat.msgpack" -o "$TMP/frames/f-%d.png"
    assert_success
    [ "$(ls "$TMP/frames" | wc -l)" = 9 ]
    run "$BIN/osp-encode" -m "$VAE" "$TMP/frames" --frames 5 -o "$TMP/from-png.msgpack"
    assert_success
    run "$BIN/osp-info" --format json "$TMP/from-png.msgpack"
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].shape')" = "[1,4,2,4,4]" ]
    run "$BIN/osp-encode" -m "$VAE" "$TMP/frames/f-0.png" --size 16x16 -o "$TMP/img.msgpack"
    assert_success
    run "$BIN/osp-info" --format json "$TMP/img.msgpack"
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].shape')" = "[1,4,1,2,2]" ]
}

@test "other stream tensors pass through encode and decode" {
    "$MKSTREAM" sample "$TMP/extra.msgpack"
    cat "$TMP/video.msgpack" "$TMP/extra.msgpack" |
        "$BIN/osp-encode" -m "$VAE" --mode mean | "$BIN/osp-decode" -m "$VAE" > "$TMP/out.msgpack"
    run "$BIN/osp-info" --format json "$TMP/out.msgpack"
    assert_success
    [ "$(echo "$output" | "$JSONCHECK" '.tensors#')" = 3 ]
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].name')" = video ]
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[2].name')" = mask ]
}

@test "bad invocations fail with one line and the documented code, leaving no file" {
    fails_with 2 "$BIN/osp-encode" "$TMP/video.msgpack"
    fails_with 2 "$BIN/osp-encode" -m "$VAE" --frames 4 "$TMP/video.msgpack"
    fails_with 2 "$BIN/osp-encode" -m "$VAE" --size 12 "$TMP/video.msgpack"
    fails_with 2 "$BIN/osp-decode" -m "$VAE" --tile --no-tile "$TMP/video.msgpack"
    fails_with 5 "$BIN/osp-encode" -m "$VAE" "$TMP/missing.mp4"
    fails_with 5 "$BIN/osp-encode" -m "$TMP/no-model" "$TMP/video.msgpack"
    fails_with 3 "$BIN/osp-decode" -m "$VAE" "$TMP/video.msgpack" -o "$TMP/never.mp4"
    [ ! -e "$TMP/never.mp4" ]
    "$BIN/osp-encode" -m "$VAE" "$TMP/video.msgpack" > "$TMP/lat.msgpack"
    fails_with 2 "$BIN/osp-decode" -m "$VAE" "$TMP/lat.msgpack" -o "$TMP/one.png"
    [ -z "$(ls "$TMP" | grep -v msgpack)" ]
    printf 'garbage' > "$TMP/bad.mp4"
    fails_with 3 "$BIN/osp-encode" -m "$VAE" "$TMP/bad.mp4" -o "$TMP/never.msgpack"
    [ ! -e "$TMP/never.msgpack" ]
}
